/**
 * A hook around each token-store operation on Redis (one Lua script, or a script and its replica
 * wait): tracing puts a child span of the current request around it (telemetry/otel-tracing.ts). The
 * store names the operation only; keys and arguments never leave it.
 */
export type CommandTracer = <T>(op: string, run: () => Promise<T>) => Promise<T>;
