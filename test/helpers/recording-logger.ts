import type { Logger } from '../../src/shared/logger.js';

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  msg: string;
  fields: Record<string, unknown>;
}

export interface RecordingLogger extends Logger {
  readonly lines: LogLine[];
  /** Resolves with the first line (already logged or future) that matches; rejects after timeoutMs. */
  waitFor(pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
}

/** A Logger that keeps every line (children share the record, with their bindings merged in). */
export function recordingLogger(): RecordingLogger {
  const lines: LogLine[] = [];
  const waiters = new Set<(line: LogLine) => void>();
  const make = (bindings: Record<string, unknown>): RecordingLogger => {
    const at = (level: LogLine['level']) => (a: object | string, b?: string) => {
      const line: LogLine = typeof a === 'string' ? { level, msg: a, fields: { ...bindings } } : { level, msg: b ?? '', fields: { ...bindings, ...(a as Record<string, unknown>) } };
      lines.push(line);
      for (const w of [...waiters]) w(line);
    };
    return {
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      child: (more) => make({ ...bindings, ...more }),
      lines,
      waitFor(pred, timeoutMs = 5000) {
        const seen = lines.find(pred);
        if (seen) return Promise.resolve(seen);
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => {
            waiters.delete(check);
            reject(new Error(`no matching log line within ${timeoutMs} ms`));
          }, timeoutMs);
          const check = (line: LogLine) => {
            if (!pred(line)) return;
            clearTimeout(timer);
            waiters.delete(check);
            resolve(line);
          };
          waiters.add(check);
        });
      },
    };
  };
  return make({});
}
