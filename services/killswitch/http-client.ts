/**
 * Outbound HTTP for the kill switch (notifiers, the webhook secret provider): JSON POSTs with a hard timeout,
 * an HMAC-SHA256 signature scheme, and a retry loop with exponential backoff and jitter that honours
 * `Retry-After`. Results are values (`PostResult`), not exceptions: the caller decides.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

/** The signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` (Stripe's scheme). */
export const SIGNATURE_HEADER = 'x-tripline-signature';
export const TIMESTAMP_HEADER = 'x-tripline-timestamp';
export const IDEMPOTENCY_HEADER = 'idempotency-key';

export function signBody(secret: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex');
  return `t=${timestampSeconds},v1=${mac}`;
}

/**
 * Checks a signature header against the body (for receivers; Tripline's tests use it). Rejects signatures
 * older than `toleranceSeconds` (replays).
 */
export function verifySignature(
  secret: string,
  header: string | undefined,
  body: string,
  nowMs: number = Date.now(),
  toleranceSeconds = 300,
): boolean {
  if (header === undefined) return false;
  const parts = new Map(header.split(',').map((part) => part.trim().split('=', 2) as [string, string]));
  const timestamp = Number(parts.get('t'));
  const given = parts.get('v1');
  if (!Number.isSafeInteger(timestamp) || given === undefined) return false;
  if (Math.abs(nowMs / 1000 - timestamp) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest();
  const actual = Buffer.from(given, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export interface PostResult {
  ok: boolean;
  status?: number;
  /** Network error, timeout, or the response's first bytes. */
  error?: string;
  /** Seconds from `Retry-After`, when the server sent one. */
  retryAfterSeconds?: number;
  body?: string;
  attempts: number;
  elapsedMs: number;
}

export interface PostOptions {
  headers?: Record<string, string>;
  timeoutMs: number;
  /** Aborts the request (and the retry loop) early, e.g. on stop. */
  signal?: AbortSignal;
}

/** One POST of `body` (already serialized JSON). Never throws. */
export async function postJson(url: string, body: string, options: PostOptions): Promise<PostResult> {
  const started = performance.now();
  const signals = [AbortSignal.timeout(options.timeoutMs), ...(options.signal === undefined ? [] : [options.signal])];
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'tripline-killswitch', ...options.headers },
      body,
      signal: AbortSignal.any(signals),
    });
    const text = await response.text();
    const retryAfter = parseRetryAfter(response.headers.get('retry-after'));
    const result: PostResult = {
      ok: response.ok,
      status: response.status,
      body: text.slice(0, 4096),
      attempts: 1,
      elapsedMs: performance.now() - started,
    };
    if (!response.ok) result.error = `HTTP ${response.status}: ${text.slice(0, 200)}`;
    if (retryAfter !== undefined) result.retryAfterSeconds = retryAfter;
    return result;
  } catch (error) {
    const name = error instanceof Error ? error.name : '';
    const message =
      name === 'TimeoutError'
        ? `no answer within ${options.timeoutMs} ms`
        : name === 'AbortError'
          ? 'aborted'
          : error instanceof Error
            ? error.cause instanceof Error
              ? error.cause.message
              : error.message
            : String(error);
    return { ok: false, error: message, attempts: 1, elapsedMs: performance.now() - started };
  }
}

function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, Math.ceil((date - Date.now()) / 1000)) : undefined;
}

export interface RetryPolicy {
  /** Attempts in all (1 = no retry). */
  maxAttempts: number;
  /** First backoff; doubles each retry, with ±20% jitter. */
  initialBackoffMs: number;
  maxBackoffMs: number;
}

/** Retryable: network errors, timeouts, 408, 425, 429 and 5xx. Not: other 4xx (the request itself is wrong). */
export function isRetryable(result: PostResult): boolean {
  if (result.ok) return false;
  if (result.status === undefined) return true;
  return result.status === 408 || result.status === 425 || result.status === 429 || result.status >= 500;
}

/**
 * POSTs until it succeeds, a non-retryable answer comes, or the attempts run out. `makeHeaders` is called per
 * attempt (a fresh signature timestamp each time); the body — and so the idempotency key in it — stays the same.
 */
export async function postWithRetries(
  url: string,
  body: string,
  makeHeaders: () => Record<string, string>,
  options: { timeoutMs: number; retry: RetryPolicy; signal?: AbortSignal },
): Promise<PostResult> {
  const started = performance.now();
  let last: PostResult = { ok: false, error: 'not attempted', attempts: 0, elapsedMs: 0 };
  for (let attempt = 1; attempt <= options.retry.maxAttempts; attempt += 1) {
    last = await postJson(url, body, {
      headers: makeHeaders(),
      timeoutMs: options.timeoutMs,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    last.attempts = attempt;
    if (last.ok || !isRetryable(last) || attempt === options.retry.maxAttempts || options.signal?.aborted === true)
      break;
    const backoff = Math.min(options.retry.maxBackoffMs, options.retry.initialBackoffMs * 2 ** (attempt - 1));
    const jittered = backoff * (0.8 + Math.random() * 0.4);
    const wait =
      last.retryAfterSeconds === undefined
        ? jittered
        : Math.min(options.retry.maxBackoffMs, Math.max(jittered, last.retryAfterSeconds * 1000));
    try {
      await sleep(wait, undefined, options.signal === undefined ? {} : { signal: options.signal });
    } catch {
      break;
    }
  }
  last.elapsedMs = performance.now() - started;
  return last;
}
