/**
 * Operator feedback: an alert marked as a false positive. The task's behaviour then counts as normal for its
 * type: its state is rebuilt from its stored events, summarized with `markedFalsePositive`, learned into the
 * type's, the agent's and the fleet's baselines (the processor's `BaselineBook`), and those baselines are saved.
 * `describeBaseline` reports `falsePositivesLearned`, so the feedback is visible in the baseline.
 *
 * A task is learned once, however many of its alerts are marked or how often: the feedback row (one per task)
 * is written first and later marks find it. The learner includes marked tasks when it rebuilds from history.
 * In the distributed mode only the mark is written: the learner of record learns it and publishes a new book,
 * which every processor swaps in within the bound of docs/detection.md ("One learner of record").
 */
import { serializeBaseline } from '../core/detect/index.ts';
import { FLEET_TASK_TYPE } from '../processor/baseline-book.ts';
import type { BaselineBook } from '../processor/baseline-book.ts';
import { TriplineError } from '../shared/errors.ts';
import { stableId } from '../shared/ids.ts';
import type { DetectionQueries, FeedbackRecord } from '../store/clickhouse/detection-queries.ts';
import type { BaselineRecord, Store } from '../store/store.ts';
import { summarizeStored } from './stored-task.ts';

export interface FeedbackDeps {
  store: Store;
  queries: DetectionQueries;
  /** The baselines the detector scores against (embedded: `processor.baselines()`). */
  baselines: (tenant: string) => BaselineBook | Promise<BaselineBook>;
  afterEndGraceMs?: number;
  now?: () => number;
  /**
   * Distributed mode: the learner of record learns the mark from the store (services/learner/publish.ts) and
   * publishes a new book; here only the mark is written (then `onMarked`), and `baselines` is never edited.
   * @default false (embedded: learned into the processor's book at once)
   */
  learnedByLearner?: boolean;
  /** Called after a new mark is written (the learner in this process publishes at once). */
  onMarked?: () => void;
}

export interface FalsePositiveInput {
  tenant: string;
  alertId: string;
  actor: string;
  reason: string;
}

export interface FalsePositiveResult {
  /** False when the task had already been marked (nothing was learned again). */
  created: boolean;
  feedback: FeedbackRecord;
  /** The type's baseline after learning: tasks learned and how many of them were marked false positives. */
  baseline: { taskType: string; tasks: number; falsePositivesLearned: number } | null;
}

export interface Feedback {
  markFalsePositive(input: FalsePositiveInput): Promise<FalsePositiveResult>;
}

export function createFeedback(deps: FeedbackDeps): Feedback {
  const now = deps.now ?? Date.now;
  let chain: Promise<unknown> = Promise.resolve();

  function baselineView(book: BaselineBook, tenant: string, taskType: string): FalsePositiveResult['baseline'] {
    const b = book.get(tenant, taskType);
    return b === undefined ? null : { taskType, tasks: b.tasks, falsePositivesLearned: b.falsePositivesLearned };
  }

  async function mark(input: FalsePositiveInput): Promise<FalsePositiveResult> {
    const alert = await deps.queries.getAlert(input.tenant, input.alertId);
    if (alert === null) throw new TriplineError('NOT_FOUND', `no alert ${input.alertId}`);
    const existing = await deps.queries.getFeedback(input.tenant, alert.taskId);
    if (existing !== null) {
      return {
        created: false,
        feedback: existing,
        baseline: baselineView(await deps.baselines(input.tenant), input.tenant, alert.taskType),
      };
    }
    const task = await deps.store.getTask(input.tenant, alert.taskId);
    if (task === null) throw new TriplineError('NOT_FOUND', `no task ${alert.taskId} for alert ${input.alertId}`);
    if (task.status === 'active') {
      throw new TriplineError(
        'CONFLICT',
        `task ${task.taskId} is still running; mark its alert as a false positive once the task has ended`,
      );
    }
    const events = (await deps.store.eventsForTask(input.tenant, task.taskId)).map((row) => row.event);
    const summary = summarizeStored(
      {
        tenant: task.tenant,
        taskId: task.taskId,
        taskType: task.taskType,
        agentId: task.agentId,
        endMs: task.endedMs ?? task.lastEventMs,
      },
      events,
      {
        markedFalsePositive: true,
        ...(deps.afterEndGraceMs === undefined ? {} : { afterEndGraceMs: deps.afterEndGraceMs }),
      },
    );
    if (summary === undefined)
      throw new TriplineError('CONFLICT', `task ${task.taskId} has no stored events to learn from`);

    const timeMs = now();
    const feedback: FeedbackRecord = {
      id: stableId(input.tenant, task.taskId, 'false_positive'),
      tenant: input.tenant,
      taskId: task.taskId,
      taskType: task.taskType,
      agentId: task.agentId,
      alertId: alert.id,
      kind: 'false_positive',
      actor: input.actor,
      reason: input.reason,
      timeMs,
    };
    // The feedback row first: if learning or saving fails after it, a retry finds the mark and does not learn
    // twice; the book marks what it learned dirty, so the processor saves it with its next batch anyway.
    await deps.queries.insertFeedback(feedback);
    if (deps.learnedByLearner === true) {
      deps.onMarked?.();
      return {
        created: true,
        feedback,
        baseline: baselineView(await deps.baselines(input.tenant), input.tenant, task.taskType),
      };
    }
    const book = await deps.baselines(input.tenant);
    book.learnTask(task.tenant, task.taskType, task.agentId, summary);
    const records: BaselineRecord[] = [];
    for (const [taskType, agentId] of [
      [task.taskType, ''],
      [task.taskType, task.agentId],
      [FLEET_TASK_TYPE, ''],
    ] as const) {
      const baseline = book.get(task.tenant, taskType, agentId);
      if (baseline !== undefined)
        records.push({
          tenant: task.tenant,
          taskType,
          agentId,
          tasks: baseline.tasks,
          model: serializeBaseline(baseline),
          updatedMs: timeMs,
        });
    }
    await deps.store.saveBaselines(records);
    return { created: true, feedback, baseline: baselineView(book, task.tenant, task.taskType) };
  }

  return {
    markFalsePositive(input) {
      // Operator actions are rare: one at a time, so two marks of one task cannot both learn it.
      const result = chain.then(() => mark(input));
      chain = result.catch(() => undefined);
      return result;
    },
  };
}
