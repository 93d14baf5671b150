/**
 * Tasks this processor did not see begin, rebuilt from the store as if it had seen their events: every active
 * task at start, and, before their next event is scored, tasks that may have a history elsewhere (a restart, a
 * Kafka partition that moved here).
 */
import { learningEffect, markEnded, observe } from '../core/detect/index.ts';
import { noteScope } from '../core/escalation-policy.ts';
import type { EventBatch } from '../bus/bus.ts';
import type { ScoredEvent, Store, TaskRecord } from '../store/store.ts';
import { emptyOutput } from './batch-output.ts';
import type { BatchOutput } from './batch-output.ts';
import { checkClaimedIdentity } from './identity-findings.ts';
import type { ProcessorParts } from './processor-parts.ts';
import { markSeen, newLiveTask, noteLearningEffect, taskKey } from './task-table.ts';

/** A stored task with its stored events. */
export interface TaskHistory {
  record: TaskRecord;
  events: ScoredEvent[];
}

/** Agents' clocks and delivery delays: events this much younger than the ownership change may still have history. */
const HISTORY_SLACK_MS = 5 * 60_000;

/**
 * Backdated spans (issue 14): an item this much older than its task's newest item in the batch is an outlier and
 * sets off no history lookup; a lookup for a task whose newest item is this much older than the processor's clock
 * waits alone (its task's events wait for it, no other task's do, even scoring in order). So a hostile agent's spans
 * far in the past cannot stall the scoring, kills included, of other tasks. Documented in docs/security.md.
 */
export const BACKDATE_BOUND_MS = 60 * 60_000;

/** Active tasks rebuilt per step at start (their events are read together). */
const RESTORE_CHUNK = 2000;

export async function restoreActiveTasks(parts: ProcessorParts): Promise<void> {
  const active = await parts.store.listActiveTasks();
  // A chunk's events at a time, so a store with many long tasks is not read into memory at once.
  for (let start = 0; start < active.length; start += RESTORE_CHUNK) {
    for (const { record, events } of await withEvents(parts.store, active.slice(start, start + RESTORE_CHUNK)))
      await rebuildTask(parts, record, events);
  }
  if (active.length > 0) parts.logger.info({ tasks: active.length }, 'rebuilt task state from the store');
}

/** The tasks with their stored events: one query per tenant (and per 500 tasks), not one per task. */
async function withEvents(store: Store, records: readonly TaskRecord[]): Promise<TaskHistory[]> {
  const byTenant = new Map<string, TaskRecord[]>();
  for (const record of records) {
    const list = byTenant.get(record.tenant);
    if (list === undefined) byTenant.set(record.tenant, [record]);
    else list.push(record);
  }
  const out: TaskHistory[] = [];
  for (const [tenant, list] of byTenant) {
    const events = await store.eventsForTasks(
      tenant,
      list.map((record) => record.taskId),
    );
    for (const record of list) out.push({ record, events: events.get(record.taskId) ?? [] });
  }
  return out;
}

/** Rebuild a task's detector state from its stored events, as if this processor had seen them. */
export async function rebuildTask(
  parts: ProcessorParts,
  record: TaskRecord,
  stored?: readonly ScoredEvent[],
): Promise<void> {
  const events = stored ?? (await parts.store.eventsForTask(record.tenant, record.taskId));
  const task = newLiveTask(record.tenant, record.taskId, record.taskType, record.agentId, record.startedMs);
  task.name = record.name;
  task.parentId = record.parentTaskId ?? '';
  task.agentSettled = true;
  parts.resolver.traces.rememberName(record.tenant, record.name, record.taskId);
  task.status = record.status;
  task.version = record.version;
  parts.tasks.noteVersion(record.version);
  for (const { event, verdict } of events) {
    markSeen(task, event.id);
    task.state = observe(task.state, event);
    noteScope(task.scope, event.attributes);
    if (task.peak === undefined || verdict.score > task.peak.score) task.peak = verdict;
    if (verdict.decision !== 'allow' && !verdict.shadow) task.raised.add(verdict.decision);
    noteLearningEffect(task, learningEffect(verdict));
  }
  if (record.endedMs !== null) task.state = markEnded(task.state, record.endedMs);
  parts.tasks.add(taskKey(record.tenant, record.taskId), task);
}

/**
 * Before scoring, load what the store knows of tasks this processor has not seen, when they may have a
 * history elsewhere: events that started before this processor took ownership (a restart, or a Kafka
 * partition that moved here). Tasks that start later were never anyone else's, so the common case costs
 * no query. `awaiting`: tasks already being looked up. `backdated`: the keys (services/processor/task-table.ts) of
 * the unknown tasks whose newest item is more than BACKDATE_BOUND_MS before the processor's clock.
 */
export function unknownTasks(
  parts: ProcessorParts,
  batch: EventBatch,
  ownershipSinceMs: number,
  awaiting: (key: string) => boolean,
): { unknown: Map<string, Set<string>>; backdated: Set<string> } {
  const horizon = ownershipSinceMs + HISTORY_SLACK_MS;
  const lists = [batch.events, batch.boundaries, batch.usages ?? []];
  const newest = new Map<string, number>();
  for (const list of lists)
    for (const item of list) {
      const key = taskKey(item.tenant, item.taskId);
      newest.set(key, Math.max(newest.get(key) ?? item.startMs, item.startMs));
    }
  const unknown = new Map<string, Set<string>>();
  const backdated = new Set<string>();
  const nowMs = parts.now();
  for (const list of lists)
    for (const item of list) {
      const key = taskKey(item.tenant, item.taskId);
      const taskNewest = newest.get(key) ?? item.startMs;
      if (item.startMs >= horizon || item.startMs < taskNewest - BACKDATE_BOUND_MS) continue;
      if (parts.tasks.has(key) || awaiting(key)) continue;
      const ids = unknown.get(item.tenant) ?? new Set<string>();
      ids.add(item.taskId);
      unknown.set(item.tenant, ids);
      if (taskNewest < nowMs - BACKDATE_BOUND_MS) backdated.add(key);
    }
  return { unknown, backdated };
}

/**
 * Reads the stored records of the batch's unknown tasks, and the events of those the store knows (outside the
 * serialized work).
 */
export async function fetchHistory(store: Store, unknown: Map<string, Set<string>>): Promise<TaskHistory[]> {
  const records: TaskRecord[] = [];
  for (const [tenant, ids] of unknown) records.push(...(await store.getTasks(tenant, [...ids])));
  return withEvents(store, records);
}

/** Rebuilds the fetched tasks that are still unknown when their batch's turn comes. */
export async function applyHistory(parts: ProcessorParts, found: readonly TaskHistory[]): Promise<void> {
  for (const { record, events } of found) {
    if (!parts.tasks.has(taskKey(record.tenant, record.taskId))) await rebuildTask(parts, record, events);
  }
}

/** A task given credentials before it sent any event (see Processor.registerTask). */
export interface RegisteredTask {
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  startMs: number;
  isNew?: boolean;
}

/**
 * Holds a task that was given credentials before it sent any event, so a person can kill it at once and its first
 * events are scored as its own; a task the store already knows is loaded instead (in `serialize`d work).
 */
export async function registerTask(
  parts: ProcessorParts,
  task: RegisteredTask,
  scheduler: {
    serialize: (work: () => Promise<void>) => Promise<void>;
    persist: (output: BatchOutput) => Promise<void>;
  },
): Promise<void> {
  const key = taskKey(task.tenant, task.taskId);
  const credential = { taskType: task.taskType, agentId: task.agentId };
  const held = parts.tasks.get(key);
  if (held !== undefined) {
    if (held.credential !== undefined) return;
    // Its spans came first: from now on they must agree with its first credentials, and what they claimed so far too.
    held.credential = credential;
    await scheduler.serialize(async () => {
      const output = emptyOutput();
      checkClaimedIdentity(parts, held, output);
      if (output.alerts.length > 0) await scheduler.persist(output);
    });
    return;
  }
  // Known at once, so a kill of the task (by a person or the detector) never finds it missing.
  const placeholder = newLiveTask(task.tenant, task.taskId, task.taskType, task.agentId, task.startMs);
  // The credential's agent is the task's: a span's claim does not replace it (services/processor/identity-findings.ts).
  placeholder.agentSettled = true;
  placeholder.credential = credential;
  parts.tasks.setLive(key, placeholder);
  // An id Tripline just made up has no history anywhere.
  if (task.isNew === true) return;
  // Read outside the serialized work: a kill being scored never waits for this lookup.
  const record = await parts.store.getTask(task.tenant, task.taskId);
  await scheduler.serialize(async () => {
    // A stored history replaces the placeholder unless the placeholder has been used meanwhile.
    const untouched =
      parts.tasks.getLive(key) === placeholder && placeholder.seen.size === 0 && placeholder.status === 'active';
    if (record !== null && untouched) {
      parts.tasks.deleteLive(key);
      await rebuildTask(parts, record);
      const rebuilt = parts.tasks.getLive(key);
      if (rebuilt !== undefined) rebuilt.credential = credential;
    }
  });
}
