/**
 * The learner's core: rebuild every baseline from ClickHouse history. It learns, in the order the tasks ended,
 * the tasks the processor learns online (completed, never alerted live, never revoked; a task that alerted only in
 * its type's warm-up is held as online, `BaselineBook.holdWarmupTask`) plus the tasks an operator marked false
 * positive (learned with `markedFalsePositive`, so each baseline shows how many), each summarized from its stored
 * events exactly as the processor summarizes a completing task.
 */
import { BaselineBook } from '../processor/baseline-book.ts';
import type { DetectionQueries, LearnableTask } from '../store/clickhouse/detection-queries.ts';
import type { BaselineRecord } from '../store/store.ts';
import { summarizeStored } from '../detection/stored-task.ts';
import { DEFAULT_DETECTOR_CONFIG } from '../core/detect/index.ts';

export interface RebuildOptions {
  /** One tenant, or every tenant. */
  tenant?: string;
  /** Tasks read per query. @default 1000 */
  pageSize?: number;
  afterEndGraceMs?: number;
  /** The processor's `TRIPLINE_WARMUP_TASKS`: when held warm-up tasks are learned. @default 20 */
  warmupTasks?: number;
  /**
   * Shadow-mode alerts keep a task out too. Off to match the processor, which learns tasks whose only alerts
   * were in shadow mode; turn it on together with the processor (docs/detection.md, "Known limitations").
   * @default false
   */
  shadowAlertsBlock?: boolean;
  onProgress?: (tasksLearned: number) => void;
}

export interface RebuildResult {
  book: BaselineBook;
  /** Tasks learned, and how many of them were marked false positive. */
  tasks: number;
  falsePositives: number;
  /** Completed tasks without a stored event (not learned, as online). */
  skipped: number;
}

export async function rebuildBaselines(
  queries: DetectionQueries,
  options: RebuildOptions = {},
): Promise<RebuildResult> {
  const pageSize = options.pageSize ?? 1000;
  const book = new BaselineBook();
  const result: RebuildResult = { book, tasks: 0, falsePositives: 0, skipped: 0 };
  let after: { endMs: number; tenant: string; taskId: string } | undefined;
  for (;;) {
    const page = await queries.learnableTasks({
      limit: pageSize,
      shadowAlertsBlock: options.shadowAlertsBlock ?? false,
      ...(options.tenant === undefined ? {} : { tenant: options.tenant }),
      ...(after === undefined ? {} : { after }),
    });
    if (page.length === 0) break;
    const byTenant = new Map<string, LearnableTask[]>();
    for (const task of page) byTenant.set(task.tenant, [...(byTenant.get(task.tenant) ?? []), task]);
    const events = new Map<string, Awaited<ReturnType<DetectionQueries['eventsForTasks']>>>();
    for (const [tenant, tasks] of byTenant)
      events.set(
        tenant,
        await queries.eventsForTasks(
          tenant,
          tasks.map((task) => task.taskId),
        ),
      );
    for (const task of page) {
      const summary = summarizeStored(task, events.get(task.tenant)?.get(task.taskId) ?? [], {
        markedFalsePositive: task.markedFalsePositive,
        ...(options.afterEndGraceMs === undefined ? {} : { afterEndGraceMs: options.afterEndGraceMs }),
      });
      if (summary === undefined) {
        result.skipped++;
        continue;
      }
      if (task.heldInWarmup) {
        result.tasks += book.holdWarmupTask(
          task.tenant,
          task.taskType,
          task.agentId,
          summary,
          options.warmupTasks ?? DEFAULT_DETECTOR_CONFIG.warmupTasks,
        );
        continue;
      }
      book.learnTask(task.tenant, task.taskType, task.agentId, summary);
      result.tasks++;
      if (task.markedFalsePositive) result.falsePositives++;
    }
    options.onProgress?.(result.tasks);
    const last = page[page.length - 1];
    if (last === undefined || page.length < pageSize) break;
    after = { endMs: last.endMs, tenant: last.tenant, taskId: last.taskId };
  }
  return result;
}

/** The rebuilt baselines as store records (they replace the stored ones: a newer `updatedMs` wins). */
export function baselineRecords(book: BaselineBook, nowMs: number): BaselineRecord[] {
  return book.takeDirty(nowMs);
}
