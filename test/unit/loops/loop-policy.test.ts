/**
 * The loop and rate-limit policy: the shipped file is the documented defaults; per-type overrides merge over the
 * defaults feature by feature; a bad document or file stops start-up naming TRIPLINE_LIMITS_FILE and the value.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../services/app/config.ts';
import { DEFAULT_LIMITS_FILE, readLoopPolicy } from '../../../services/app/loop-limits.ts';
import {
  DEFAULT_LOOP_LIMITS,
  LoopPolicyError,
  limitsFor,
  parseLoopPolicy,
} from '../../../services/core/loop-policy.ts';
import { TriplineError } from '../../../services/shared/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'tripline-limits-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function rejection<E extends Error>(kind: abstract new (...args: never[]) => E, call: () => unknown): E {
  try {
    call();
  } catch (error) {
    if (error instanceof kind) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('loop policy', () => {
  it('ships policies/limits.json with the documented defaults, and loads it when nothing is set', () => {
    const shipped = parseLoopPolicy(JSON.parse(readFileSync(DEFAULT_LIMITS_FILE, 'utf8')));
    expect(shipped.defaults).toEqual(DEFAULT_LOOP_LIMITS);
    expect(loadConfig({}).loops).toEqual({ enabled: true, defaults: DEFAULT_LOOP_LIMITS, taskTypes: {} });
    expect(readLoopPolicy({ TRIPLINE_LIMITS_FILE: 'off' }).enabled).toBe(false);
  });

  it('merges a task type over the defaults feature by feature, and null leaves a step out', () => {
    const policy = parseLoopPolicy({
      version: 1,
      defaults: { repeat: { alert: 4 } },
      taskTypes: {
        crawler: { toolRate: { windowMs: 10_000, revoke: 900 }, repeat: { refuse: null }, refuseForMs: 5000 },
      },
    });
    expect(policy.defaults.repeat).toEqual({ alert: 4, refuse: 10, revoke: 20 });
    const crawler = limitsFor(policy, 'crawler');
    expect(crawler.repeat).toEqual({ alert: 4, revoke: 20 });
    expect(crawler.toolRate).toEqual({ windowMs: 10_000, alert: 60, refuse: 120, revoke: 900 });
    expect(crawler.refuseForMs).toBe(5000);
    expect(crawler.cycle).toEqual(DEFAULT_LOOP_LIMITS.cycle);
    expect(limitsFor(policy, 'other')).toBe(policy.defaults);
    // A task type named like an Object property is a task type like any other.
    expect(limitsFor(policy, 'constructor')).toBe(policy.defaults);
  });

  it.each([
    [[1, 2], '(document)'],
    [{ version: 2 }, 'version'],
    [{ defaults: { repeat: { alert: 0 } } }, 'defaults.repeat.alert'],
    [{ defaults: { repeat: { alert: 'five' } } }, 'defaults.repeat.alert'],
    [{ defaults: { repeat: { alert: 9, refuse: 5 } } }, 'defaults.repeat.refuse'],
    [{ defaults: { repeats: {} } }, 'defaults.repeats'],
    [{ defaults: { cycle: { minLength: 1 } } }, 'defaults.cycle.minLength'],
    [{ defaults: { cycle: { minLength: 4, maxLength: 3 } } }, 'defaults.cycle.maxLength'],
    [{ defaults: { toolRate: { windowMs: 10 } } }, 'defaults.toolRate.windowMs'],
    [{ taskTypes: { t: { refuseForMs: -1 } } }, 'taskTypes.t.refuseForMs'],
    [{ taskTypes: [] }, 'taskTypes'],
  ])('rejects %j naming %s', (document, path) => {
    const error = rejection(LoopPolicyError, () => parseLoopPolicy(document));
    expect(error.path).toBe(path);
    expect(error.message.startsWith(`${path}: `)).toBe(true);
  });

  it.each([
    ['missing file', join(dir, 'absent.json'), 'a readable loop and rate-limit policy file'],
    ['not JSON', file('bad.json', '{ repeat: 5'), 'a JSON file'],
    ['wrong shape', file('shape.json', '{"defaults":{"repeat":{"alert":-3}}}'), 'defaults.repeat.alert'],
  ])('stops start-up on a %s, naming TRIPLINE_LIMITS_FILE', (_, path, expected) => {
    const error = rejection(TriplineError, () => loadConfig({ TRIPLINE_LIMITS_FILE: path }));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain('TRIPLINE_LIMITS_FILE');
    expect(error.message).toContain(expected);
  });
});
