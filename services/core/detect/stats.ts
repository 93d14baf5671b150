/**
 * Robust statistics for baselines: a bounded window of per-task values kept sorted, and the "fence" (upper
 * bound of normal) precomputed from it with `simple-statistics` quantiles and median absolute deviation.
 * Scoring reads fences only, so no quantile is computed per event.
 */
import { medianAbsoluteDeviation, quantileSorted } from 'simple-statistics';

/** Per-task values kept per distribution (newest last). Older values fall out, so baselines follow drift. */
export const DEFAULT_WINDOW = 512;

/**
 * Precomputed summary of a distribution. Quantiles use linear interpolation (numpy's default).
 * `upper` is the upper fence of normal: the larger of the highest value seen and p99 plus one robust spread,
 * computed on log(1 + x) (counts, rows and bytes are heavy-tailed), plus a small-sample allowance 1/√n.
 */
export interface Fence {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Median absolute deviation of log(1 + x). */
  madLog: number;
  upper: number;
}

export interface Dist {
  /** Arrival order, newest last; at most the baseline's window. The only serialized part. */
  values: number[];
  /** Derived: `values` sorted ascending. */
  sorted: number[];
  /** Derived: the fence computed from `sorted`. */
  fence: Fence;
}

export const EMPTY_FENCE: Fence = Object.freeze({ n: 0, p50: 0, p90: 0, p99: 0, max: 0, madLog: 0, upper: 0 });

/** Robust spread multiplier above p99, in log space. */
const SPREAD_K = 1;
/** Normal-equivalent sigma from a MAD. */
const MAD_TO_SIGMA = 1.4826;
/** Normal-equivalent sigma from the p50–p90 gap. */
const P90_TO_SIGMA = 1.2816;
const MIN_SPREAD = 0.05;
/** Allowance for few samples: + SMALL_N/√n in log space (n = 20 → ×1.25, n = 500 → ×1.05). */
const SMALL_N = 1;

export function computeFence(sorted: readonly number[]): Fence {
  const n = sorted.length;
  if (n === 0) return EMPTY_FENCE;
  const s = sorted as number[];
  const p50 = quantileSorted(s, 0.5);
  const p90 = quantileSorted(s, 0.9);
  const p99 = quantileSorted(s, 0.99);
  const max = s[n - 1] ?? 0;
  const logs = new Array<number>(n);
  for (let i = 0; i < n; i++) logs[i] = Math.log1p(Math.max(0, s[i] ?? 0));
  const madLog = n > 1 ? medianAbsoluteDeviation(logs) : 0;
  const spread = Math.max(MAD_TO_SIGMA * madLog, (Math.log1p(p90) - Math.log1p(p50)) / P90_TO_SIGMA, MIN_SPREAD);
  const upperLog = Math.max(Math.log1p(max), Math.log1p(p99) + SPREAD_K * spread) + SMALL_N / Math.sqrt(n);
  return { n, p50, p90, p99, max, madLog, upper: Math.expm1(upperLog) };
}

export function emptyDist(): Dist {
  return { values: [], sorted: [], fence: EMPTY_FENCE };
}

/** Index of the first element >= v in a sorted array. */
function lowerBound(a: readonly number[], v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] ?? 0) < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Append a value (dropping the oldest past `window`) and keep `sorted` in step. Does not refresh the fence. */
export function pushValue(d: Dist, value: number, window: number): void {
  const v = Number.isFinite(value) && value > 0 ? value : 0;
  d.values.push(v);
  d.sorted.splice(lowerBound(d.sorted, v), 0, v);
  while (d.values.length > window) {
    const old = d.values.shift() ?? 0;
    d.sorted.splice(lowerBound(d.sorted, old), 1);
  }
}

export function refreshFence(d: Dist): void {
  d.fence = computeFence(d.sorted);
}

/** Rebuild the derived parts of a Dist from its values (after parsing). */
export function distFromValues(values: readonly number[], window: number): Dist {
  const kept = values.slice(Math.max(0, values.length - window));
  const d: Dist = { values: kept, sorted: [...kept].sort((a, b) => a - b), fence: EMPTY_FENCE };
  refreshFence(d);
  return d;
}

/**
 * How far `x` lies beyond the upper fence, as 0–100: 0 up to the fence, then linear in log(x / upper),
 * reaching 100 at `k` times the fence. Monotone non-decreasing in `x`.
 */
export function excessScore(x: number, upper: number, k: number): number {
  if (!(x > upper) || upper <= 0) return upper <= 0 && x > 0 ? 100 : 0;
  const s = (100 * Math.log(x / upper)) / Math.log(k);
  return s >= 100 ? 100 : s;
}

/**
 * Good–Turing estimate (incidence form, Chao) that the next task brings an item never seen before:
 * (singletons + 0.5) / (tasks + 1), where singletons are items seen in exactly one task. A type whose tasks
 * keep touching new things has a high value and novelty there is not surprising.
 */
export function goodTuringNew(counts: Readonly<Record<string, number>>, tasks: number): number {
  let singletons = 0;
  for (const k in counts) if (counts[k] === 1) singletons++;
  return Math.min(1, (singletons + 0.5) / (tasks + 1));
}
