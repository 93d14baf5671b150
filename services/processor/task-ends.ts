/**
 * How tasks end: a root span ends its trace's task (or a span declares who the task is), or a task goes idle.
 * A task that completes benign teaches its baselines, and moves among the recently ended tasks.
 */
import type { TaskBoundary } from '../../schemas/events.ts';
import { markEnded, summarize } from '../core/detect/index.ts';
import type { BatchOutput } from './batch-output.ts';
import { runHook } from './processor-parts.ts';
import type { ProcessorParts } from './processor-parts.ts';
import { newLiveTask, taskKey, totalEvents } from './task-table.ts';
import type { LiveTask } from './task-table.ts';

/**
 * A boundary: a root span ended its trace's task, or a span declared who the task is. A root of a trace this
 * processor holds no task for is remembered, not made a task: most traces' roots end tasks that never had an
 * event (and would be empty tasks), and a trace's events may still come (another topic, another export).
 */
export function endTask(
  parts: ProcessorParts,
  boundary: TaskBoundary,
  output: BatchOutput,
  names: ReadonlyMap<string, string>,
): void {
  const key = taskKey(boundary.tenant, boundary.taskId);
  let task = parts.tasks.get(key);
  if (task === undefined && boundary.ends && boundary.claims?.taskId !== undefined) {
    task = newLiveTask(boundary.tenant, boundary.taskId, boundary.taskType, boundary.agentId, boundary.startMs);
    task.agentSettled = boundary.claims.agentId !== undefined;
  }
  if (task === undefined) {
    if (boundary.ends) parts.resolver.traces.rememberEnd(boundary.tenant, boundary.traceId, boundary);
    return;
  }
  parts.resolver.adoptClaims(task, boundary, names, output);
  if (!boundary.ends) return;
  completeTask(parts, key, task, boundary.endMs, boundary.traceId);
  output.tasks.set(key, task);
  // The trace's own task, when the root declared another one for itself (its spans all went there until then).
  const own = taskKey(boundary.tenant, boundary.traceId);
  const traceTask = own === key ? undefined : parts.tasks.getLive(own);
  if (traceTask !== undefined) {
    completeTask(parts, own, traceTask, boundary.endMs, boundary.traceId);
    output.tasks.set(own, traceTask);
  }
}

/** Completes the tasks idle since before `cutoffMs` (their last event is their end). */
export function completeIdleTasks(parts: ProcessorParts, cutoffMs: number, output: BatchOutput): void {
  for (const [key, task] of parts.tasks.live()) {
    if (task.state.lastEventMs < cutoffMs) {
      completeTask(parts, key, task, task.state.lastEventMs);
      output.tasks.set(key, task);
    }
  }
}

/**
 * A tenant holding more live tasks than the table's `maxLivePerTenant` (an agent starting millions of task ids):
 * its oldest live tasks are completed as if idle (their last event is their end), so memory per tenant stays
 * bounded. Logged once per call with the count.
 */
export function completeOverflow(parts: ProcessorParts, output: BatchOutput): void {
  let completed = 0;
  let tenant = '';
  for (const [key, task] of parts.tasks.overflowing()) {
    completeTask(parts, key, task, task.state.lastEventMs);
    output.tasks.set(key, task);
    completed++;
    tenant = task.state.tenant;
  }
  if (completed > 0)
    parts.logger.warn(
      { tenant, completed, maxLiveTasksPerTenant: parts.tasks.maxLivePerTenant },
      'live tasks over the limit of a tenant: the oldest completed early',
    );
}

export function completeTask(
  parts: ProcessorParts,
  key: string,
  task: LiveTask,
  endMs: number,
  traceId?: string,
): void {
  const wasEnded = task.state.endedMs !== null;
  task.state = markEnded(task.state, endMs, traceId);
  if (task.status === 'active') task.status = 'completed';
  const onEnded = parts.hooks?.onTaskEnded;
  if (!wasEnded && onEnded !== undefined)
    runHook(parts, 'onTaskEnded', () => onEnded(task.state.tenant, task.state.taskId, endMs));
  if (!task.flagged && task.status === 'completed' && !task.learned && totalEvents(task) > 0) {
    const { tenant, taskType, agentId } = task.state;
    if (!parts.learnOnline) {
      // The learner of record learns it from the store.
    } else if (task.warmupAlerted)
      parts.book.holdWarmupTask(tenant, taskType, agentId, summarize(task.state), parts.detector.warmupTasks);
    else parts.book.learnTask(tenant, taskType, agentId, summarize(task.state));
    // What it spent on model calls is what the type's tasks spend (spend.per_task; memory only).
    parts.spend.baselines.learn(tenant, taskType, task.spend.usd);
    task.learned = true;
  }
  parts.tasks.retire(key, task);
}
