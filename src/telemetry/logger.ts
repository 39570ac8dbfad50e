import { pino, type Logger as PinoLogger } from 'pino';

/**
 * The one root logger, made in the entry point. Secrets are redacted here, once, whatever a call
 * site passes: tokens never reach a log line.
 */
export function createRootLogger(level: string, name = 'token-authority'): PinoLogger {
  return pino({
    name,
    level,
    base: { pid: process.pid },
    redact: {
      paths: [
        'token', 'accessToken', 'refreshToken', 'access_token', 'refresh_token', 'authorization',
        '*.token', '*.accessToken', '*.refreshToken', '*.access_token', '*.refresh_token', '*.authorization',
        'privateJwk', '*.privateJwk', 'headers.authorization', 'metadata.authorization',
      ],
      censor: '[redacted]',
    },
  });
}
