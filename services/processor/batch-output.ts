/**
 * What one step of the processor's work produced (a batch scored, a task swept, a kill): the events with their
 * verdicts, alerts, revocations and the tasks that changed, and its snapshot for the result writer.
 */
import type { Alert, Revocation } from '../../schemas/events.ts';
import type { ModelUsageRow, ScoredEvent } from '../store/store.ts';
import type { BaselineBook } from './baseline-book.ts';
import type { Results } from './result-writer.ts';
import type { LiveTask, TaskTable } from './task-table.ts';

export interface BatchOutput {
  events: ScoredEvent[];
  alerts: Alert[];
  revocations: Revocation[];
  /** The tasks that changed, by task key. */
  tasks: Map<string, LiveTask>;
  /** Model calls counted, with their cost (absent: none). */
  usages?: ModelUsageRow[];
}

export const emptyOutput = (): BatchOutput => ({ events: [], alerts: [], revocations: [], tasks: new Map() });

/** The output's results as of now: its task records under new versions and the baselines learned since the last. */
export function resultsOf(output: BatchOutput, tasks: TaskTable, book: BaselineBook, nowMs: () => number): Results {
  const live = [...output.tasks.values()];
  // Before recordOf gives them a version: a task never written yet is new to the store.
  const firstRecords = live.some((task) => task.version === 0);
  return {
    events: output.events,
    ...(output.usages === undefined ? {} : { usages: output.usages }),
    alerts: output.alerts,
    revocations: output.revocations,
    tasks: live.map((task) => tasks.recordOf(task)),
    ...(firstRecords ? { firstRecords } : {}),
    baselines: book.takeDirty(nowMs()),
  };
}
