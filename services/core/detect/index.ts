/**
 * Tripline's detector: per-task state, per-task-type baselines, scoring and decisions. Pure and
 * deterministic (no I/O, no clock, no randomness): the processor feeds it events and baselines and acts on
 * the verdicts. See `score.ts` (and the *-features.ts modules it calls) for the features, `combine.ts` for how
 * they add up.
 *
 * Typical use per event:
 *   observe(state, event); const v = score(event, state, { type, agent, fleet }, config); recordVerdict(state, v);
 * Per completed benign task:
 *   const s = summarize(state); learn(typeBaseline, s); learn(agentBaseline, s); learn(fleetBaseline, s);
 */
export {
  DEFAULT_AFTER_END_GRACE_MS,
  DEFAULT_DETECTOR_CONFIG,
  decide,
  resolveDetectorConfig,
  thresholdsFor,
} from './config.ts';
export type { DetectorConfig, TaskTypeOverrides } from './config.ts';
export { MAX_TASK_KEYS, START_TOOL, markEnded, newTaskState, observe, recordVerdict, sameCallOf } from './state.ts';
export { MAX_SAME_CALL_SPANS, isSameCall, markedSameCall } from './same-call.ts';
export type { SameCallSpan } from './same-call.ts';
export { MAX_KEY_CHARS } from './signals.ts';
export type { RateWindow, ResourceUse, TaskState } from './state.ts';
export { summarize } from './summary.ts';
export type { ResourceSummary, TaskSummary } from './summary.ts';
export {
  BASELINE_FORMAT,
  DIST_NAMES,
  FLEET_TASK_TYPE,
  distValue,
  emptyBaseline,
  learn,
  rebuildBaseline,
} from './baseline.ts';
export { cloneBaseline, parseBaseline, serializeBaseline } from './baseline-codec.ts';
export { describeBaseline } from './baseline-view.ts';
export type { Baseline, BaselineDerived, DistName, NoveltyCategory, ResourceStats, ToolStats } from './baseline.ts';
export type { Dist, Fence } from './stats.ts';
export { K_BASELINE, K_RULES, PRIORS, learningEffect, regimeFor, score, strongerEffect } from './score.ts';
export type { BaselineLookup, LearningEffect } from './score.ts';
export { BONUS_FLOOR, FAMILY_BONUS, combine, combineFamilies } from './combine.ts';
