/**
 * The logger shape the libraries accept. pino's Logger satisfies it; the verifier library never
 * imports pino, so a service passes in whatever logger it already has.
 */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(bindings: Record<string, unknown>): Logger;
  /** pino's: lets hot paths skip building a line that would be dropped. */
  isLevelEnabled?(level: string): boolean;
}

const noop: LogFn = () => {};

/** A logger that drops everything. The default where none is passed. */
export const silentLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
  isLevelEnabled: () => false,
};
