/** Telling ClickHouse's own answers (errors with a numeric code) from failures to reach it. */

/**
 * The numeric code of a ClickHouseError as a string (`'60'` for UNKNOWN_TABLE), or undefined for anything else
 * (a network error, a timeout). Duck-typed: chdb and the HTTP client each bundle their own ClickHouseError class.
 * The code, not the `type`, is what to test: the client parses the type out of the message's last parenthesis,
 * which is wrong for some chdb messages.
 */
export function clickHouseErrorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error) || !('type' in error)) return undefined;
  return typeof error.code === 'string' && /^\d+$/.test(error.code) ? error.code : undefined;
}

/** ClickHouse error codes the store reacts to. */
export const CODE = {
  UNKNOWN_TABLE: '60',
  UNKNOWN_DATABASE: '81',
  TABLE_ALREADY_EXISTS: '57',
  DATABASE_ALREADY_EXISTS: '82',
  REQUIRED_PASSWORD: '194',
  AUTHENTICATION_FAILED: '516',
} as const;
