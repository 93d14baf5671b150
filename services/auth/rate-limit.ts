/**
 * Per-tenant ingest rate limits: a token bucket per tenant, in spans. A request is admitted while the
 * tenant's bucket is not in debt and charged after it is handled with the spans it held (the count is known
 * only then), so one request may overdraw the bucket and the next ones wait until it refills. Over time a
 * tenant gets `spansPerSecond`, with bursts up to `burstSpans`; each process enforces its own limit.
 */
export interface RateLimit {
  spansPerSecond: number;
  burstSpans: number;
}

export interface TenantRateLimiter {
  /** Undefined when the tenant may send now; else the seconds until it may (for Retry-After). */
  admit(tenant: string): number | undefined;
  charge(tenant: string, spans: number): void;
}

interface Bucket {
  tokens: number;
  atMs: number;
}

/** Buckets of tenants idle this long are forgotten (a full bucket and a forgotten one behave alike). */
const IDLE_FORGET_MS = 10 * 60_000;

export function createTenantRateLimiter(limit: RateLimit, now: () => number = Date.now): TenantRateLimiter {
  const buckets = new Map<string, Bucket>();
  const perMs = limit.spansPerSecond / 1000;
  let lastSweepMs = now();

  const bucketOf = (tenant: string): Bucket => {
    const at = now();
    if (at - lastSweepMs > IDLE_FORGET_MS) {
      lastSweepMs = at;
      for (const [key, bucket] of buckets) if (at - bucket.atMs > IDLE_FORGET_MS) buckets.delete(key);
    }
    let bucket = buckets.get(tenant);
    if (bucket === undefined) {
      bucket = { tokens: limit.burstSpans, atMs: at };
      buckets.set(tenant, bucket);
      return bucket;
    }
    bucket.tokens = Math.min(limit.burstSpans, bucket.tokens + (at - bucket.atMs) * perMs);
    bucket.atMs = at;
    return bucket;
  };

  return {
    admit(tenant) {
      const bucket = bucketOf(tenant);
      if (bucket.tokens >= 0) return undefined;
      return Math.max(1, Math.ceil(-bucket.tokens / limit.spansPerSecond));
    },
    charge(tenant, spans) {
      if (spans <= 0) return;
      bucketOf(tenant).tokens -= spans;
    },
  };
}
