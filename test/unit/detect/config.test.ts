import { describe, expect, it } from 'vitest';
import { DEFAULT_DETECTOR_CONFIG, decide, resolveDetectorConfig } from '../../../services/core/detect/index.ts';
import { isTriplineError } from '../../../services/shared/errors.ts';

describe('detector config', () => {
  it('has the documented defaults', () => {
    expect(DEFAULT_DETECTOR_CONFIG).toMatchObject({
      warmupTasks: 20,
      agentWarmupTasks: 30,
      alertThreshold: 50,
      revokeThreshold: 80,
      shadow: false,
    });
    expect(Object.isFrozen(resolveDetectorConfig())).toBe(true);
  });
  it('rejects bad values naming the key and the range', () => {
    const bad = (p: Parameters<typeof resolveDetectorConfig>[0]): unknown => {
      try {
        resolveDetectorConfig(p);
      } catch (error) {
        return error;
      }
      return undefined;
    };
    const e1 = bad({ alertThreshold: 120 });
    expect(isTriplineError(e1, 'CONFIG_INVALID')).toBe(true);
    expect((e1 as Error).message).toMatch(/alertThreshold must be a number from 0 to 100/);
    expect((bad({ alertThreshold: 90, revokeThreshold: 80 }) as Error).message).toMatch(
      /revokeThreshold must not be below alertThreshold/,
    );
    expect((bad({ warmupTasks: 0 }) as Error).message).toMatch(/warmupTasks must be an integer >= 1/);
    expect((bad({ perTaskType: { x: { revokeThreshold: 10 } } }) as Error).message).toMatch(
      /perTaskType.x.revokeThreshold/,
    );
  });
});

describe('decide', () => {
  const config = resolveDetectorConfig({
    perTaskType: { strict: { alertThreshold: 30, revokeThreshold: 60 }, canary: { shadow: true } },
  });
  it('applies the global thresholds with >=', () => {
    expect(decide(49.9, 'any', config)).toEqual({ decision: 'allow', shadow: false });
    expect(decide(50, 'any', config)).toEqual({ decision: 'alert', shadow: false });
    expect(decide(80, 'any', config)).toEqual({ decision: 'revoke', shadow: false });
  });
  it('applies per-type thresholds', () => {
    expect(decide(35, 'strict', config).decision).toBe('alert');
    expect(decide(65, 'strict', config).decision).toBe('revoke');
    expect(decide(65, 'other', config).decision).toBe('alert');
  });
  it('reports shadow mode globally or per type; the per-type setting wins', () => {
    expect(decide(90, 'canary', config)).toEqual({ decision: 'revoke', shadow: true });
    const global = resolveDetectorConfig({ shadow: true, perTaskType: { live: { shadow: false } } });
    expect(decide(90, 'x', global).shadow).toBe(true);
    expect(decide(90, 'live', global).shadow).toBe(false);
  });
  it('does not read inherited keys as task types', () => {
    expect(decide(60, 'toString', config).decision).toBe('alert');
  });
});
