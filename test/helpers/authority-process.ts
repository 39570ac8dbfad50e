import { runCli, type CliProcess } from './cli-process.js';
import { authorityClient, type AuthorityClient } from './grpc-client.js';

/** A real `token-authority serve` process on free loopback ports. */
export interface AuthorityProcess {
  readonly name: string;
  readonly proc: CliProcess;
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly httpBase: string;
  readonly client: AuthorityClient;
  /** The public JWKS it serves over HTTP. */
  jwks(): Promise<{ keys: Array<{ kid: string }> }>;
  /** The authority's own verifier: its applied sequence, from /healthz. */
  appliedSeq(): Promise<number>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
  /** SIGKILL (no shutdown at all) and wait for the exit. */
  kill(): Promise<void>;
}

/** Starts `token-authority serve` with `env` (plus loopback port 0 defaults) and waits until it serves. */
export async function startAuthorityProcess(name: string, env: Record<string, string>, opts: { deadlineMs?: number } = {}): Promise<AuthorityProcess> {
  const proc = runCli(['serve'], { TA_GRPC_ADDR: '127.0.0.1:0', TA_HTTP_ADDR: '127.0.0.1:0', TA_LOG_LEVEL: 'info', TA_SHUTDOWN_GRACE: '2s', ...env });
  let line: Record<string, unknown>;
  try {
    line = await proc.waitForLine((l) => l.msg === 'token authority serving', 20_000);
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
  const grpcPort = line.grpcPort as number;
  const httpPort = line.httpPort as number;
  const httpBase = `http://127.0.0.1:${httpPort}`;
  const client = authorityClient(grpcPort, opts.deadlineMs ? { deadlineMs: opts.deadlineMs } : {});
  const end = async (signal: NodeJS.Signals) => {
    client.close();
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.kill(signal);
    await proc.exited;
  };
  return {
    name,
    proc,
    grpcPort,
    httpPort,
    httpBase,
    client,
    async jwks() {
      return (await (await fetch(`${httpBase}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
    },
    async appliedSeq() {
      const body = (await (await fetch(`${httpBase}/healthz`)).json()) as { appliedSeq?: number };
      return body.appliedSeq ?? -1;
    },
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
  };
}

/** The `kid` in a JWS header. */
export function kidOf(token: string): string {
  return (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8')) as { kid: string }).kid;
}
