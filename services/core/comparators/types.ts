/**
 * The shape every simple comparator detector shares, so the evaluation can run them beside Tripline's
 * detector on the same events: per-task state folded event by event (`observe`), a score per event
 * (`score`), an explicit task end (`markEnded`) and learning from completed benign tasks (`learn`).
 * Pure: no I/O, no clock, no randomness.
 */
import type { AgentEvent, Decision } from '../../../schemas/events.ts';

export interface ComparatorVerdict {
  /** 0–100, compared with the same thresholds as Tripline's (`>=`). */
  score: number;
  decision: Decision;
  /** What fired, for people. */
  reasons: string[];
}

export interface ComparatorThresholds {
  /** @default 50 */
  alertThreshold: number;
  /** @default 80 */
  revokeThreshold: number;
}

export const DEFAULT_COMPARATOR_THRESHOLDS: Readonly<ComparatorThresholds> = Object.freeze({
  alertThreshold: 50,
  revokeThreshold: 80,
});

export interface TaskInit {
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  startMs: number;
}

export interface Comparator<State, Model> {
  /** Short name for tables (`rules-only`, `global z-score`). */
  readonly name: string;
  /** One sentence on what it does. */
  readonly description: string;
  newModel(): Model;
  newTaskState(init: TaskInit): State;
  /** Fold the event into the task's state (mutates and returns it). */
  observe(state: State, event: AgentEvent): State;
  /** Score an event already folded into `state`. */
  score(event: AgentEvent, state: State, model: Model): ComparatorVerdict;
  markEnded(state: State, endMs: number): State;
  /** Learn a completed task the caller considers benign (mutates and returns `model`). */
  learn(model: Model, state: State): Model;
}

export function decideComparator(score: number, thresholds: ComparatorThresholds): Decision {
  return score >= thresholds.revokeThreshold ? 'revoke' : score >= thresholds.alertThreshold ? 'alert' : 'allow';
}
