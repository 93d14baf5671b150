/**
 * The loop and rate-limit policy (./loops.ts): the limits and action ladders every task type gets
 * (`defaults`), and per task type what it changes (`taskTypes`, merged over the defaults feature by feature).
 * Read from a JSON file at start-up (policies/limits.json, TRIPLINE_LIMITS_FILE); `parseLoopPolicy` checks a
 * parsed document and says where it is wrong. Format and defaults: docs/loops.md.
 */
import { TriplineError } from '../shared/errors.ts';
import { LOOP_ACTIONS } from './loops.ts';
import type { Ladder, LoopLimits } from './loops.ts';

export interface LoopPolicy {
  /** Off: nothing is counted (TRIPLINE_LIMITS_FILE=off). */
  enabled: boolean;
  defaults: LoopLimits;
  /** Per task type, its limits merged over the defaults. */
  taskTypes: Record<string, LoopLimits>;
}

/**
 * The shipped defaults, set well above what a busy benign task does (the evaluation's fleet: a handful of calls of
 * one tool per task, no tool called twice with the same arguments more than a few times) and low enough that a
 * runaway agent is refused within a minute and revoked soon after.
 */
export const DEFAULT_LOOP_LIMITS: LoopLimits = {
  repeat: { alert: 5, refuse: 10, revoke: 20 },
  cycle: { minLength: 2, maxLength: 4, alert: 6, refuse: 10, revoke: 20 },
  noProgress: { alert: 10, refuse: 20, revoke: 40 },
  toolRate: { windowMs: 60_000, alert: 60, refuse: 120, revoke: 300 },
  taskRate: { windowMs: 60_000, alert: 200, refuse: 400, revoke: 1000 },
  refuseForMs: 60_000,
};

export const DEFAULT_LOOP_POLICY: LoopPolicy = { enabled: true, defaults: DEFAULT_LOOP_LIMITS, taskTypes: {} };
/** Nothing counted (TRIPLINE_LIMITS_FILE=off, and a processor built without a policy). */
export const DISABLED_LOOP_POLICY: LoopPolicy = { enabled: false, defaults: DEFAULT_LOOP_LIMITS, taskTypes: {} };

/** A policy document that does not fit the format: `path` names the offending value (`defaults.repeat.alert`). */
export class LoopPolicyError extends TriplineError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('CONFIG_INVALID', `${path}: ${message}`, { details: { path } });
    this.name = 'LoopPolicyError';
    this.path = path;
  }
}

const LADDERS = ['repeat', 'cycle', 'noProgress', 'toolRate', 'taskRate'] as const;
const MAX_COUNT = 10_000_000;
const MAX_WINDOW_MS = 7 * 24 * 3_600_000;

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function count(value: unknown, path: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw new LoopPolicyError(path, `expected an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return value;
}

function onlyKeys(value: Record<string, unknown>, allowed: readonly string[], path: string): void {
  for (const key of Object.keys(value))
    if (!allowed.includes(key))
      throw new LoopPolicyError(`${path}.${key}`, `unknown key; expected one of ${allowed.join(', ')}`);
}

function ladderOf(value: unknown, base: Ladder, path: string, extra: readonly string[]): Ladder {
  if (!isObject(value)) throw new LoopPolicyError(path, 'expected an object');
  onlyKeys(value, [...LOOP_ACTIONS, ...extra], path);
  const ladder: Ladder = {};
  for (const action of LOOP_ACTIONS) {
    const step = value[action];
    // Absent: the base's step; null: the step is left out of the ladder.
    if (step === undefined) {
      const inherited = base[action];
      if (inherited !== undefined) ladder[action] = inherited;
    } else if (step !== null) ladder[action] = count(step, `${path}.${action}`, 1, MAX_COUNT);
  }
  let previous = 0;
  for (const action of LOOP_ACTIONS) {
    const at = ladder[action];
    if (at === undefined) continue;
    if (at < previous)
      throw new LoopPolicyError(`${path}.${action}`, `must not be below the earlier steps of the ladder (${previous})`);
    previous = at;
  }
  return ladder;
}

function limitsOf(value: unknown, base: LoopLimits, path: string): LoopLimits {
  if (!isObject(value)) throw new LoopPolicyError(path, 'expected an object');
  onlyKeys(value, [...LADDERS, 'refuseForMs'], path);
  const limits: LoopLimits = {
    repeat: { ...base.repeat },
    cycle: { ...base.cycle },
    noProgress: { ...base.noProgress },
    toolRate: { ...base.toolRate },
    taskRate: { ...base.taskRate },
    refuseForMs: base.refuseForMs,
  };
  if (value.repeat !== undefined) limits.repeat = ladderOf(value.repeat, base.repeat, `${path}.repeat`, []);
  if (value.noProgress !== undefined)
    limits.noProgress = ladderOf(value.noProgress, base.noProgress, `${path}.noProgress`, []);
  if (value.cycle !== undefined) {
    const raw = value.cycle as Record<string, unknown>;
    const ladder = ladderOf(raw, base.cycle, `${path}.cycle`, ['minLength', 'maxLength']);
    const minLength =
      raw.minLength === undefined ? base.cycle.minLength : count(raw.minLength, `${path}.cycle.minLength`, 2, 8);
    const maxLength =
      raw.maxLength === undefined ? base.cycle.maxLength : count(raw.maxLength, `${path}.cycle.maxLength`, 2, 8);
    if (maxLength < minLength)
      throw new LoopPolicyError(`${path}.cycle.maxLength`, `must not be below minLength (${minLength})`);
    limits.cycle = { ...ladder, minLength, maxLength };
  }
  for (const key of ['toolRate', 'taskRate'] as const) {
    const raw = value[key];
    if (raw === undefined) continue;
    const ladder = ladderOf(raw, base[key], `${path}.${key}`, ['windowMs']);
    const windowRaw = (raw as Record<string, unknown>).windowMs;
    const windowMs =
      windowRaw === undefined ? base[key].windowMs : count(windowRaw, `${path}.${key}.windowMs`, 1000, MAX_WINDOW_MS);
    limits[key] = { ...ladder, windowMs };
  }
  if (value.refuseForMs !== undefined)
    limits.refuseForMs = count(value.refuseForMs, `${path}.refuseForMs`, 1000, MAX_WINDOW_MS);
  return limits;
}

/** Checks a parsed policy document (see docs/loops.md) and returns the policy, or throws LoopPolicyError. */
export function parseLoopPolicy(document: unknown): LoopPolicy {
  if (!isObject(document)) throw new LoopPolicyError('(document)', 'expected a JSON object');
  onlyKeys(document, ['$comment', 'version', 'defaults', 'taskTypes'], '(document)');
  if (document.version !== undefined && document.version !== 1)
    throw new LoopPolicyError('version', `expected 1, got ${JSON.stringify(document.version)}`);
  const defaults =
    document.defaults === undefined
      ? DEFAULT_LOOP_LIMITS
      : limitsOf(document.defaults, DEFAULT_LOOP_LIMITS, 'defaults');
  const taskTypes: Record<string, LoopLimits> = {};
  if (document.taskTypes !== undefined) {
    if (!isObject(document.taskTypes)) throw new LoopPolicyError('taskTypes', 'expected an object');
    for (const [taskType, value] of Object.entries(document.taskTypes)) {
      if (taskType === '') throw new LoopPolicyError('taskTypes', 'a task type must not be empty');
      taskTypes[taskType] = limitsOf(value, defaults, `taskTypes.${taskType}`);
    }
  }
  return { enabled: true, defaults, taskTypes };
}

/** The limits of one task type. */
export function limitsFor(policy: LoopPolicy, taskType: string): LoopLimits {
  return Object.hasOwn(policy.taskTypes, taskType) ? (policy.taskTypes[taskType] as LoopLimits) : policy.defaults;
}
