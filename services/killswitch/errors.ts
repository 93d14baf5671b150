/**
 * Error codes of the kill switch (credentials, policy, leases, verification), in the same shape as the
 * registry in services/shared/errors.ts: a stable code, an HTTP status for the API edge, a `retriable` flag.
 * The API's error handler answers both kinds alike (`{ error: { code, message, details } }`).
 * The codes live in the one registry (services/shared/errors.ts, documented in docs/errors.md).
 */
import { ERRORS, TriplineError } from '../shared/errors.ts';

const KILL_SWITCH_CODES = [
  'POLICY_DENIED',
  'AGENT_BLOCKED',
  'TASK_REVOKED',
  'TOKEN_INVALID',
  'SECRET_NOT_FOUND',
  'SECRET_PROVIDER_FAILED',
  'POLICY_INVALID',
] as const;
export type KillSwitchErrorCode = (typeof KILL_SWITCH_CODES)[number];

/** The kill switch's entries of the one error registry. */
export const KILL_SWITCH_ERRORS: Readonly<Record<KillSwitchErrorCode, (typeof ERRORS)[KillSwitchErrorCode]>> =
  Object.fromEntries(KILL_SWITCH_CODES.map((code) => [code, ERRORS[code]])) as Record<
    KillSwitchErrorCode,
    (typeof ERRORS)[KillSwitchErrorCode]
  >;

/** A TriplineError with one of the kill switch's codes. */
export class KillSwitchError extends TriplineError {
  declare readonly code: KillSwitchErrorCode;

  constructor(
    code: KillSwitchErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'KillSwitchError';
  }
}

export function isKillSwitchError(error: unknown, code?: KillSwitchErrorCode): error is KillSwitchError {
  return error instanceof KillSwitchError && (code === undefined || error.code === code);
}
