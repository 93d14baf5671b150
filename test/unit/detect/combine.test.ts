import { describe, expect, it } from 'vitest';
import { combine, combineFamilies } from '../../../services/core/detect/combine.ts';

describe('combine', () => {
  it('is 0 for nothing and the score itself for one family', () => {
    expect(combineFamilies([])).toBe(0);
    expect(combineFamilies([63])).toBe(63);
  });
  it('adds a bounded bonus for independent families', () => {
    // 60 + 40 · 0.5 · 0.6 = 72
    expect(combineFamilies([60, 60])).toBeCloseTo(72);
    // Three families at 40 stay under a revoke threshold of 80.
    expect(combineFamilies([40, 40, 40])).toBeCloseTo(59.2);
    expect(combineFamilies([99, 99, 99, 99])).toBeLessThanOrEqual(100);
  });
  it('ignores weak corroboration below the floor', () => {
    expect(combineFamilies([50, 10, 10, 10, 10, 10])).toBe(50);
  });
  it('counts one family once (the strongest feature stands for it)', () => {
    expect(
      combine([
        { family: 'volume', score: 70 },
        { family: 'volume', score: 65 },
      ]),
    ).toBe(70);
    expect(
      combine([
        { family: 'volume', score: 70 },
        { family: 'host', score: 50 },
      ]),
    ).toBeCloseTo(77.5);
  });
});
