import type { TracingSettings } from '../config/tracing-settings.js';
import type { Logger } from '../shared/logger.js';
import type { Tracing } from './tracing.js';

/**
 * The tracing of one process from its resolved settings (config.tracing), or undefined when tracing
 * is off. The OpenTelemetry SDK and exporters are loaded only here and only when it is on, so a
 * process with tracing off neither loads nor holds them.
 */
export async function createTracing(settings: TracingSettings | undefined, opts: { instanceId: string; logger: Logger }): Promise<Tracing | undefined> {
  if (!settings) return undefined;
  const { createOtelTracing } = await import('./otel-tracing.js');
  return createOtelTracing(settings, opts);
}
