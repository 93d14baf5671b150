import { describe, expect, it } from 'vitest';
import {
  computeFence,
  distFromValues,
  emptyDist,
  excessScore,
  goodTuringNew,
  pushValue,
} from '../../../services/core/detect/stats.ts';

describe('computeFence', () => {
  it('is empty for no data', () => {
    expect(computeFence([]).n).toBe(0);
    expect(computeFence([]).upper).toBe(0);
  });
  it('reports robust quantiles and an upper fence above the highest value', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    const f = computeFence(sorted);
    expect(f.p50).toBeCloseTo(50.5);
    expect(f.p99).toBeCloseTo(99.01);
    expect(f.max).toBe(100);
    expect(f.upper).toBeGreaterThan(100);
  });
  it('is not pulled up by a single outlier the way mean + k·sd would be', () => {
    const base = Array.from({ length: 99 }, () => 10);
    const withOutlier = [...base, 10_000];
    const f = computeFence(withOutlier);
    expect(f.p50).toBe(10);
    expect(f.madLog).toBe(0);
    // The outlier itself was seen, so the fence covers it; but p99 stays near the body.
    expect(f.p99).toBeLessThan(200);
  });
  it('allows more room with few samples', () => {
    const few = computeFence([5, 6, 7, 8, 9]);
    const many = computeFence(Array.from({ length: 500 }, (_, i) => 5 + (i % 5)));
    expect(few.upper).toBeGreaterThan(many.upper);
  });
});

describe('windowed distributions', () => {
  it('keeps at most `window` values, newest last, and a sorted copy in step', () => {
    const d = emptyDist();
    for (const v of [5, 1, 4, 2, 3, 9]) pushValue(d, v, 4);
    expect(d.values).toEqual([4, 2, 3, 9]);
    expect(d.sorted).toEqual([2, 3, 4, 9]);
  });
  it('treats negative and non-finite values as 0', () => {
    const d = emptyDist();
    pushValue(d, -3, 10);
    pushValue(d, Number.NaN, 10);
    expect(d.values).toEqual([0, 0]);
  });
  it('rebuilds from values alone', () => {
    const d = distFromValues([3, 1, 2], 2);
    expect(d.values).toEqual([1, 2]);
    expect(d.sorted).toEqual([1, 2]);
    expect(d.fence.n).toBe(2);
  });
});

describe('excessScore', () => {
  it('is 0 up to the fence, 100 at k times the fence, linear in log between', () => {
    expect(excessScore(10, 10, 6)).toBe(0);
    expect(excessScore(60, 10, 6)).toBeCloseTo(100);
    expect(excessScore(Math.sqrt(6) * 10, 10, 6)).toBeCloseTo(50);
    expect(excessScore(1e9, 10, 6)).toBe(100);
  });
});

describe('goodTuringNew', () => {
  it('is small when every item recurs and large when tasks keep bringing new items', () => {
    expect(goodTuringNew({ a: 30, b: 28 }, 30)).toBeLessThan(0.02);
    const churn: Record<string, number> = {};
    for (let i = 0; i < 30; i++) churn[`r${String(i)}`] = 1;
    expect(goodTuringNew(churn, 30)).toBeGreaterThan(0.95);
  });
});
