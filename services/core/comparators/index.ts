/**
 * Simple comparator detectors for the evaluation (not part of Tripline's decision path): a rules-only detector
 * and a single global z-score, with the same observe/score shape. See docs/detection.md.
 */
export { DEFAULT_COMPARATOR_THRESHOLDS, decideComparator } from './types.ts';
export type { Comparator, ComparatorThresholds, ComparatorVerdict, TaskInit } from './types.ts';
export { DEFAULT_RULES_CONFIG, createRulesDetector } from './rules.ts';
export type { RulesConfig, RulesState } from './rules.ts';
export { DEFAULT_ZSCORE_CONFIG, ZSCORE_FEATURES, createZScoreDetector } from './zscore.ts';
export type { ZScoreConfig, ZScoreModel, ZScoreState } from './zscore.ts';
