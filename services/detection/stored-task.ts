/**
 * A task's summary rebuilt from its stored events, as the processor summarizes it when the task completes:
 * the events up to the task's end (events more than the after-end grace later are not part of the task's
 * behaviour), folded in time order, then ended at the stored end. Used by the learner and by feedback.
 */
import type { AgentEvent } from '../../schemas/events.ts';
import { DEFAULT_AFTER_END_GRACE_MS, markEnded, newTaskState, observe, summarize } from '../core/detect/index.ts';
import type { TaskSummary } from '../core/detect/index.ts';

export interface StoredTaskRef {
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  /** When the task ended (its last event's end if it never ended explicitly). */
  endMs: number;
}

/** Undefined when the task has no event to learn from (the processor learns only tasks with events). */
export function summarizeStored(
  task: StoredTaskRef,
  events: readonly AgentEvent[],
  options: { markedFalsePositive?: boolean; afterEndGraceMs?: number } = {},
): TaskSummary | undefined {
  const grace = options.afterEndGraceMs ?? DEFAULT_AFTER_END_GRACE_MS;
  const during = events.filter((event) => event.startMs <= task.endMs + grace).sort((a, b) => a.startMs - b.startMs);
  const first = during[0];
  if (first === undefined) return undefined;
  let state = newTaskState({
    tenant: task.tenant,
    taskId: task.taskId,
    taskType: task.taskType,
    agentId: task.agentId,
    startMs: first.startMs,
  });
  for (const event of during) state = observe(state, event);
  state = markEnded(state, task.endMs);
  const summary = summarize(state);
  return options.markedFalsePositive === true ? { ...summary, markedFalsePositive: true } : summary;
}
