/**
 * Per-tenant ingest rate limits: two token buckets per tenant, one in spans and one in bytes (of the decoded
 * request body: a few spans with huge attributes cost as much memory as many small ones). A request is admitted
 * while neither of the tenant's buckets is in debt and charged after it is handled with the spans and bytes it
 * held (the span count is known only then), so one request may overdraw a bucket and the next ones wait (429) until
 * it refills. Over time a tenant gets `spansPerSecond` and `bytesPerSecond`, with bursts up to `burstSpans` and
 * `burstBytes`; each process enforces its own limit.
 */
export interface RateLimit {
  spansPerSecond: number;
  burstSpans: number;
  /** @default unlimited (no byte bucket) */
  bytesPerSecond?: number;
  /** @default 2 × bytesPerSecond */
  burstBytes?: number;
}

export interface TenantRateLimiter {
  /** Undefined when the tenant may send now; else the seconds until it may (for Retry-After). */
  admit(tenant: string): number | undefined;
  charge(tenant: string, spans: number, bytes?: number): void;
}

interface Bucket {
  spans: number;
  bytes: number;
  atMs: number;
}

/** Buckets of tenants idle this long are forgotten (a full bucket and a forgotten one behave alike). */
const IDLE_FORGET_MS = 10 * 60_000;

export function createTenantRateLimiter(limit: RateLimit, now: () => number = Date.now): TenantRateLimiter {
  const buckets = new Map<string, Bucket>();
  const spansPerMs = limit.spansPerSecond / 1000;
  const bytesPerSecond = limit.bytesPerSecond ?? Number.POSITIVE_INFINITY;
  const burstBytes = limit.burstBytes ?? bytesPerSecond * 2;
  const bytesPerMs = bytesPerSecond / 1000;
  let lastSweepMs = now();

  const bucketOf = (tenant: string): Bucket => {
    const at = now();
    if (at - lastSweepMs > IDLE_FORGET_MS) {
      lastSweepMs = at;
      for (const [key, bucket] of buckets) if (at - bucket.atMs > IDLE_FORGET_MS) buckets.delete(key);
    }
    let bucket = buckets.get(tenant);
    if (bucket === undefined) {
      bucket = { spans: limit.burstSpans, bytes: burstBytes, atMs: at };
      buckets.set(tenant, bucket);
      return bucket;
    }
    const elapsed = at - bucket.atMs;
    bucket.spans = Math.min(limit.burstSpans, bucket.spans + elapsed * spansPerMs);
    if (Number.isFinite(burstBytes)) bucket.bytes = Math.min(burstBytes, bucket.bytes + elapsed * bytesPerMs);
    bucket.atMs = at;
    return bucket;
  };

  return {
    admit(tenant) {
      const bucket = bucketOf(tenant);
      if (bucket.spans >= 0 && bucket.bytes >= 0) return undefined;
      const spanWait = bucket.spans < 0 ? -bucket.spans / limit.spansPerSecond : 0;
      const byteWait = bucket.bytes < 0 ? -bucket.bytes / bytesPerSecond : 0;
      return Math.max(1, Math.ceil(Math.max(spanWait, byteWait)));
    },
    charge(tenant, spans, bytes = 0) {
      if (spans <= 0 && bytes <= 0) return;
      const bucket = bucketOf(tenant);
      if (spans > 0) bucket.spans -= spans;
      if (bytes > 0 && Number.isFinite(burstBytes)) bucket.bytes -= bytes;
    },
  };
}
