/**
 * One registry of Tripline's errors. Each entry has a stable code, an HTTP status for the API edge and a
 * `retriable` flag that retry loops read. `docs/errors.md` documents every code (a test checks it).
 */
export const ERRORS = {
  CONFIG_INVALID: {
    status: 500,
    retriable: false,
    summary: 'A configuration variable has a bad value; start-up stops.',
  },
  STORE_LOCKED: {
    status: 503,
    retriable: false,
    summary: 'Another Tripline process holds the embedded data directory.',
  },
  STORE_UNAVAILABLE: { status: 503, retriable: true, summary: 'ClickHouse could not be reached or refused a write.' },
  STORE_MIGRATION_FAILED: { status: 500, retriable: false, summary: 'A schema migration failed; start-up stops.' },
  OTLP_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    retriable: false,
    summary: 'The OTLP request has a content type other than protobuf or JSON.',
  },
  OTLP_BAD_REQUEST: { status: 400, retriable: false, summary: 'The OTLP request body could not be decoded.' },
  OTLP_PAYLOAD_TOO_LARGE: {
    status: 413,
    retriable: false,
    summary: 'The OTLP request is larger than the limit after decompression.',
  },
  PIPELINE_BUSY: { status: 429, retriable: true, summary: 'The pipeline is full; retry after the advertised delay.' },
  PIPELINE_UNAVAILABLE: {
    status: 503,
    retriable: true,
    summary: 'The bus (Kafka) is not accepting events; retry later.',
  },
  NOT_FOUND: { status: 404, retriable: false, summary: 'No such task, alert or revocation.' },
  VALIDATION_FAILED: {
    status: 400,
    retriable: false,
    summary: 'The request body or query does not match the route schema.',
  },
  CONFLICT: {
    status: 409,
    retriable: false,
    summary: 'The request conflicts with the current state (e.g. restoring a task that is not revoked).',
  },
  KAFKA_UNAVAILABLE: { status: 503, retriable: true, summary: 'The Kafka cluster could not be reached.' },
  SHUTTING_DOWN: { status: 503, retriable: true, summary: 'The process is stopping.' },
  POLICY_DENIED: {
    status: 403,
    retriable: false,
    summary: 'The policy denied the request (no credentials are issued); the body names the policies that decided.',
  },
  AGENT_BLOCKED: {
    status: 403,
    retriable: true,
    summary:
      'The agent was escalated after repeated confident revocations and may not start tasks in the blocked scope (an end user, a conversation, or the whole agent) until the block ends.',
  },
  TASK_REVOKED: {
    status: 403,
    retriable: false,
    summary: 'The task was revoked: its credentials and leases are dead; a person may restore it.',
  },
  TOKEN_INVALID: {
    status: 401,
    retriable: false,
    summary: 'The bearer token is missing, malformed, expired, revoked or not signed by this Tripline.',
  },
  SECRET_NOT_FOUND: { status: 404, retriable: false, summary: 'No secret provider holds a secret of that name.' },
  SECRET_PROVIDER_FAILED: {
    status: 502,
    retriable: true,
    summary: 'The secret provider (e.g. an external vault behind the webhook provider) failed or timed out.',
  },
  UNAUTHENTICATED: {
    status: 401,
    retriable: false,
    summary:
      'No API or ingest token was sent, or the token is unknown or revoked (send "Authorization: Bearer <token>").',
  },
  FORBIDDEN: {
    status: 403,
    retriable: false,
    summary:
      "The token's role may not do this (viewer reads; operator kills, restores and marks false positives; admin manages tokens and secrets; agent ingests and starts tasks).",
  },
  STREAM_TENANT_LIMIT: {
    status: 429,
    retriable: true,
    summary:
      'The tenant holds as many /v1/stream connections as it may; close one or retry after the advertised delay.',
  },
  STREAM_FULL: {
    status: 503,
    retriable: true,
    summary: 'The API process holds as many /v1/stream connections as it may; retry after the advertised delay.',
  },
  TENANT_RATE_LIMITED: {
    status: 429,
    retriable: true,
    summary: 'The tenant sent more spans than its ingest rate limit; retry after the advertised delay.',
  },
  POLICY_INVALID: {
    status: 500,
    retriable: false,
    summary: 'A policy file does not parse or does not validate against the schema; start-up stops.',
  },
} as const satisfies Record<string, { status: number; retriable: boolean; summary: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class TriplineError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retriable: boolean;
  /** Extra fields for the API body and the log line (never secrets). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TriplineError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.retriable = ERRORS[code].retriable;
    this.details = Object.freeze({ ...options.details });
  }
}

export function isTriplineError(error: unknown, code?: ErrorCode): error is TriplineError {
  return error instanceof TriplineError && (code === undefined || error.code === code);
}

/** Message of any thrown value, for logs and error bodies. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
