/**
 * Detector configuration: thresholds, warm-up sizes and shadow mode, with their defaults and one validator.
 * Pure: no environment reads here (the processor reads the environment and passes the values in).
 */
import type { Decision } from '../../../schemas/events.ts';
import { TriplineError } from '../../shared/errors.ts';

export interface TaskTypeOverrides {
  /** Alert at or above this score for this task type. @default the global `alertThreshold` */
  alertThreshold?: number;
  /** Revoke at or above this score for this task type. @default the global `revokeThreshold` */
  revokeThreshold?: number;
  /** Shadow mode for this task type; when set it wins over the global `shadow` (both ways). @default global */
  shadow?: boolean;
}

export interface DetectorConfig {
  /** Completed benign tasks a task type needs before its own baseline is used (before: `rules`). @default 20 */
  warmupTasks: number;
  /** Completed benign tasks one agent needs within a type before its own baseline is used. @default 30 */
  agentWarmupTasks: number;
  /** Scores at or above this alert. 0–100. @default 50 */
  alertThreshold: number;
  /** Scores at or above this revoke the task's credentials. 0–100, not below `alertThreshold`. @default 80 */
  revokeThreshold: number;
  /** Per task type thresholds and shadow mode. @default {} */
  perTaskType: Readonly<Record<string, TaskTypeOverrides>>;
  /** Global shadow mode: decide and record, but do not act. @default false */
  shadow: boolean;
  /**
   * An event that starts more than this many milliseconds after its task ended is "credentials used after the
   * task ended" (a hard rule). The grace absorbs clock skew between the task span and its children. @default 1000
   */
  afterEndGraceMs?: number;
}

/** Default of the optional `afterEndGraceMs`. */
export const DEFAULT_AFTER_END_GRACE_MS = 1000;

export const DEFAULT_DETECTOR_CONFIG: DetectorConfig = Object.freeze({
  warmupTasks: 20,
  agentWarmupTasks: 30,
  alertThreshold: 50,
  revokeThreshold: 80,
  perTaskType: Object.freeze({}),
  shadow: false,
  afterEndGraceMs: DEFAULT_AFTER_END_GRACE_MS,
});

function invalid(key: string, message: string): TriplineError {
  return new TriplineError('CONFIG_INVALID', `detector config: ${key} ${message}`, { details: { key } });
}

function checkThreshold(key: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 100) {
    throw invalid(key, `must be a number from 0 to 100 (got ${JSON.stringify(value)})`);
  }
  return value;
}

function checkCount(key: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw invalid(key, `must be an integer >= ${min} (got ${JSON.stringify(value)})`);
  }
  return value;
}

/**
 * Fill defaults, validate every key (the error names the key and the allowed range) and deep-freeze.
 * Throws `TriplineError` with code `CONFIG_INVALID`.
 */
export function resolveDetectorConfig(partial: Partial<DetectorConfig> = {}): DetectorConfig {
  const merged = { ...DEFAULT_DETECTOR_CONFIG, ...partial };
  const alertThreshold = checkThreshold('alertThreshold', merged.alertThreshold);
  const revokeThreshold = checkThreshold('revokeThreshold', merged.revokeThreshold);
  if (revokeThreshold < alertThreshold)
    throw invalid('revokeThreshold', `must not be below alertThreshold (${alertThreshold})`);
  if (typeof merged.shadow !== 'boolean') throw invalid('shadow', 'must be a boolean');
  const perTaskType: Record<string, TaskTypeOverrides> = {};
  for (const [type, o] of Object.entries(merged.perTaskType)) {
    const key = `perTaskType.${type}`;
    const out: TaskTypeOverrides = {};
    if (o.alertThreshold !== undefined) out.alertThreshold = checkThreshold(`${key}.alertThreshold`, o.alertThreshold);
    if (o.revokeThreshold !== undefined)
      out.revokeThreshold = checkThreshold(`${key}.revokeThreshold`, o.revokeThreshold);
    const a = out.alertThreshold ?? alertThreshold;
    const r = out.revokeThreshold ?? revokeThreshold;
    if (r < a) throw invalid(`${key}.revokeThreshold`, `must not be below the alert threshold (${a})`);
    if (o.shadow !== undefined) {
      if (typeof o.shadow !== 'boolean') throw invalid(`${key}.shadow`, 'must be a boolean');
      out.shadow = o.shadow;
    }
    perTaskType[type] = Object.freeze(out);
  }
  return Object.freeze({
    warmupTasks: checkCount('warmupTasks', merged.warmupTasks, 1),
    agentWarmupTasks: checkCount('agentWarmupTasks', merged.agentWarmupTasks, 1),
    alertThreshold,
    revokeThreshold,
    perTaskType: Object.freeze(perTaskType),
    shadow: merged.shadow,
    afterEndGraceMs: checkCount('afterEndGraceMs', merged.afterEndGraceMs ?? DEFAULT_AFTER_END_GRACE_MS, 0),
  });
}

/** The thresholds and shadow flag that apply to one task type. */
export function thresholdsFor(
  taskType: string,
  config: DetectorConfig,
): { alert: number; revoke: number; shadow: boolean } {
  const o = Object.hasOwn(config.perTaskType, taskType) ? config.perTaskType[taskType] : undefined;
  return {
    alert: o?.alertThreshold ?? config.alertThreshold,
    revoke: o?.revokeThreshold ?? config.revokeThreshold,
    shadow: o?.shadow ?? config.shadow,
  };
}

/**
 * Map a 0–100 score to a decision with the task type's thresholds (`>=` on both). `shadow` says the decision
 * is to be recorded but not acted on; it is reported for every decision, `allow` included.
 */
export function decide(
  score: number,
  taskType: string,
  config: DetectorConfig,
): { decision: Decision; shadow: boolean } {
  const t = thresholdsFor(taskType, config);
  const decision: Decision = score >= t.revoke ? 'revoke' : score >= t.alert ? 'alert' : 'allow';
  return { decision, shadow: t.shadow };
}
