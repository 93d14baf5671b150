import { pino } from 'pino';
import type { Logger as PinoLogger } from 'pino';
import type { LogLevel } from '../config.ts';

export type Logger = PinoLogger;

/** Structured JSON logs on stdout. Secrets never go in: tokens and passwords are redacted by path. */
export function createLogger(level: LogLevel, name = 'tripline'): Logger {
  return pino({
    name,
    level,
    redact: { paths: ['req.headers.authorization', '*.password', '*.token', 'password', 'token'], censor: '[redacted]' },
  });
}
