import { pino } from 'pino';
import type { DestinationStream, Logger as PinoLogger } from 'pino';
import type { LogLevel } from '../config.ts';

export type Logger = PinoLogger;

/**
 * Structured JSON logs on stdout (or `destination`). Secrets never go in: nothing logs a token or a secret
 * value on purpose, and these paths are redacted should one be passed by mistake.
 */
export function createLogger(level: LogLevel, name = 'tripline', destination?: DestinationStream): Logger {
  const options = {
    name,
    level,
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', 'authorization', '*.authorization', '*.password', '*.token', 'password', 'token'],
      censor: '[redacted]',
    },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}
