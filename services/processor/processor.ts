/**
 * The processor: folds each event into its task's state, scores it against the baselines, acts on the
 * decision (alert, revoke) and writes everything to the store. The same code runs behind the in-process bus
 * and behind Kafka.
 *
 * A batch is computed once and then written with retries until the store takes it, so a store outage delays
 * results but never double-counts an event in task state or loses one. Every output has a deterministic id,
 * so a batch replayed after a crash (Kafka mode) creates no duplicate alert or revocation.
 */
import type { Alert, AgentEvent, Decision, Revocation, TaskBoundary, TaskStatus, Verdict } from '../../schemas/events.ts';
import { markEnded, newTaskState, observe, score, summarize } from '../core/detect/index.ts';
import type { DetectorConfig, TaskState } from '../core/detect/index.ts';
import type { EventBatch } from '../bus/bus.ts';
import type { KillSwitch } from '../killswitch/kill-switch.ts';
import { TriplineError, messageOf } from '../shared/errors.ts';
import { stableId } from '../shared/ids.ts';
import type { Logger } from '../shared/logger.ts';
import type { ScoredEvent, Store, TaskRecord } from '../store/store.ts';
import { BaselineBook } from './baseline-book.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProcessorOptions {
  store: Store;
  killSwitch: KillSwitch;
  detector: DetectorConfig;
  logger: Logger;
  taskIdleTimeoutMs: number;
  /** Completed tasks kept in memory to recognise late events (credentials used after the task ended). */
  endedTaskMemory?: number;
  now?: () => number;
}

export interface ManualAction {
  tenant: string;
  taskId: string;
  actor: string;
  reason: string;
}

export interface Processor {
  /** Score a batch and write its results; resolves when they are durable. */
  handle(batch: EventBatch): Promise<void>;
  /** Complete tasks idle for longer than the timeout (called by a timer). */
  sweep(): Promise<void>;
  revoke(action: ManualAction): Promise<Revocation>;
  restore(action: ManualAction): Promise<Revocation>;
  /**
   * Tell the processor it may now receive tasks that another processor began (Kafka partitions were
   * assigned to it): tasks it has not seen are looked up in the store before their next event is scored.
   */
  ownershipChanged(): void;
  baselines(): BaselineBook;
  /** Live tasks in memory (active, revoked, or recently ended). */
  liveTasks(): number;
  stop(): Promise<void>;
}

interface LiveTask {
  state: TaskState;
  status: TaskStatus;
  version: number;
  peak: Verdict | undefined;
  /** Decisions already raised as alerts for this task, so each level alerts once. */
  raised: Set<Decision>;
  /** A task that alerted or was revoked never teaches the baseline. */
  flagged: boolean;
  /** After a manual restore, the detector revokes again only if the score rises above this. */
  restoredAtScore: number | undefined;
  learned: boolean;
}

interface BatchOutput {
  events: ScoredEvent[];
  alerts: Alert[];
  revocations: Revocation[];
  tasks: Map<string, LiveTask>;
}

export async function createProcessor(options: ProcessorOptions): Promise<Processor> {
  const { store, killSwitch, logger } = options;
  const now = options.now ?? Date.now;
  const endedTaskMemory = options.endedTaskMemory ?? 20_000;
  const live = new Map<string, LiveTask>();
  const ended = new Map<string, LiveTask>();
  const book = BaselineBook.fromRecords(await store.loadBaselines(), (record, error) =>
    logger.error({ tenant: record.tenant, taskType: record.taskType, agentId: record.agentId, err: messageOf(error) }, 'ignoring an unreadable baseline'),
  );
  let lastVersion = 0;
  let chain: Promise<unknown> = Promise.resolve();
  let stopped = false;
  let ownershipSinceMs = now();

  await restoreActiveTasks();

  /** Run work one at a time: batches, sweeps and manual actions all touch task state. */
  function serialize<T>(work: () => Promise<T>): Promise<T> {
    const result = chain.then(work);
    chain = result.catch(() => undefined);
    return result;
  }

  function nextVersion(): number {
    lastVersion = Math.max(lastVersion + 1, now() * 1000);
    return lastVersion;
  }

  async function restoreActiveTasks(): Promise<void> {
    const active = await store.listActiveTasks();
    for (const record of active) await rebuildTask(record);
    if (active.length > 0) logger.info({ tasks: active.length }, 'rebuilt task state from the store');
  }

  /** Rebuild a task's detector state from its stored events, as if this processor had seen them. */
  async function rebuildTask(record: TaskRecord): Promise<void> {
    const task = newLiveTask(record.tenant, record.taskId, record.taskType, record.agentId, record.startedMs);
    task.status = record.status;
    task.version = record.version;
    lastVersion = Math.max(lastVersion, record.version);
    for (const { event, verdict } of await store.eventsForTask(record.tenant, record.taskId)) {
      task.state = observe(task.state, event);
      if (task.peak === undefined || verdict.score > task.peak.score) task.peak = verdict;
      if (verdict.decision !== 'allow' && !verdict.shadow) {
        task.flagged = true;
        task.raised.add(verdict.decision);
      }
    }
    if (record.endedMs !== null) task.state = markEnded(task.state, record.endedMs);
    const key = taskKey(record.tenant, record.taskId);
    if (record.status === 'active') live.set(key, task);
    else ended.set(key, task);
  }

  /**
   * Before scoring, load what the store knows of tasks this processor has not seen, when they may have a
   * history elsewhere: events that started before this processor took ownership (a restart, or a Kafka
   * partition that moved here). Tasks that start later were never anyone else's, so the common case costs
   * no query.
   */
  async function loadHistory(batch: EventBatch): Promise<void> {
    const horizon = ownershipSinceMs + HISTORY_SLACK_MS;
    const unknown = new Map<string, Set<string>>();
    for (const item of [...batch.events, ...batch.boundaries]) {
      const key = taskKey(item.tenant, item.taskId);
      if (item.startMs >= horizon || live.has(key) || ended.has(key)) continue;
      const ids = unknown.get(item.tenant) ?? new Set<string>();
      ids.add(item.taskId);
      unknown.set(item.tenant, ids);
    }
    for (const [tenant, ids] of unknown) {
      for (const record of await store.getTasks(tenant, [...ids])) await rebuildTask(record);
    }
  }

  function newLiveTask(tenant: string, taskId: string, taskType: string, agentId: string, startMs: number): LiveTask {
    return {
      state: newTaskState({ tenant, taskId, taskType, agentId, startMs }),
      status: 'active',
      version: 0,
      peak: undefined,
      raised: new Set(),
      flagged: false,
      restoredAtScore: undefined,
      learned: false,
    };
  }

  function taskFor(event: AgentEvent): LiveTask {
    const key = taskKey(event.tenant, event.taskId);
    const existing = live.get(key) ?? ended.get(key);
    if (existing !== undefined) return existing;
    const task = newLiveTask(event.tenant, event.taskId, event.taskType, event.agentId, event.startMs);
    live.set(key, task);
    return task;
  }

  function scoreEvent(event: AgentEvent, output: BatchOutput): void {
    const task = taskFor(event);
    task.state = observe(task.state, event);
    const verdict = score(event, task.state, book.lookup(event.tenant, task.state.taskType, task.state.agentId), options.detector);
    output.events.push({ event, verdict });
    if (task.peak === undefined || verdict.score >= task.peak.score) task.peak = verdict;
    output.tasks.set(taskKey(event.tenant, event.taskId), task);

    if (verdict.decision === 'allow') return;
    if (!verdict.shadow) task.flagged = true;
    const level: Decision = verdict.decision;
    if (!task.raised.has(level)) {
      task.raised.add(level);
      const alert = alertOf(task, event, verdict);
      output.alerts.push(alert);
      killSwitch.alert(alert);
    }
    const mayRevoke = task.restoredAtScore === undefined || verdict.score > task.restoredAtScore;
    if (level === 'revoke' && !verdict.shadow && task.status !== 'revoked' && mayRevoke) {
      task.status = 'revoked';
      const revocation = revocationOf(task, 'detector', 'tripline', 'score reached the revoke threshold', verdict.score, event.id, reasonsOf(verdict));
      killSwitch.apply(revocation);
      output.revocations.push(revocation);
    }
  }

  function endTask(boundary: TaskBoundary, output: BatchOutput): void {
    const key = taskKey(boundary.tenant, boundary.taskId);
    const task =
      live.get(key) ??
      ended.get(key) ??
      newLiveTask(boundary.tenant, boundary.taskId, boundary.taskType, boundary.agentId, boundary.startMs);
    completeTask(key, task, boundary.endMs);
    output.tasks.set(key, task);
  }

  function completeTask(key: string, task: LiveTask, endMs: number): void {
    task.state = markEnded(task.state, endMs);
    if (task.status === 'active') task.status = 'completed';
    if (!task.flagged && task.status === 'completed' && !task.learned && totalEvents(task) > 0) {
      book.learnTask(task.state.tenant, task.state.taskType, task.state.agentId, summarize(task.state));
      task.learned = true;
    }
    live.delete(key);
    ended.delete(key);
    ended.set(key, task);
    if (ended.size > endedTaskMemory) {
      const oldest = ended.keys().next().value;
      if (oldest !== undefined) ended.delete(oldest);
    }
  }

  function taskRecordOf(task: LiveTask): TaskRecord {
    task.version = nextVersion();
    const { state, peak } = task;
    return {
      tenant: state.tenant,
      taskId: state.taskId,
      taskType: state.taskType,
      agentId: state.agentId,
      status: task.status,
      score: peak?.score ?? 0,
      decision: peak?.decision ?? 'allow',
      regime: peak?.regime ?? 'rules',
      reasons: peak === undefined ? [] : reasonsOf(peak),
      counts: { ...state.counts },
      startedMs: state.startedMs,
      lastEventMs: state.lastEventMs,
      endedMs: state.endedMs,
      version: task.version,
    };
  }

  function revocationOf(
    task: LiveTask,
    source: Revocation['source'],
    actor: string,
    reason: string,
    scoreValue: number,
    eventId: string,
    reasons: string[] = [],
    action: Revocation['action'] = 'revoke',
  ): Revocation {
    const { state } = task;
    const timeMs = now();
    return {
      // Detector revocations are named by the event that caused them, so a replay finds the same id.
      id: source === 'detector' ? stableId(state.tenant, state.taskId, action, eventId) : stableId(state.tenant, state.taskId, action, actor, timeMs, reason),
      tenant: state.tenant,
      taskId: state.taskId,
      taskType: state.taskType,
      agentId: state.agentId,
      action,
      source,
      actor,
      reason,
      reasons,
      score: scoreValue,
      eventId,
      timeMs,
    };
  }

  async function persist(output: BatchOutput): Promise<void> {
    const tasks = [...output.tasks.values()].map(taskRecordOf);
    const baselines = book.takeDirty(now());
    for (let attempt = 1; ; attempt += 1) {
      try {
        if (output.events.length > 0) await store.insertEvents(output.events);
        if (output.alerts.length > 0) await store.insertAlerts(output.alerts);
        if (output.revocations.length > 0) await store.insertRevocations(output.revocations);
        if (tasks.length > 0) await store.upsertTasks(tasks);
        if (baselines.length > 0) await store.saveBaselines(baselines);
        return;
      } catch (error) {
        if (stopped && attempt >= 3) throw error;
        const delay = Math.min(5000, 50 * 2 ** Math.min(attempt, 10));
        logger.error({ err: messageOf(error), attempt, retryInMs: delay, events: output.events.length }, 'writing results failed; retrying');
        await sleep(delay);
      }
    }
  }

  const emptyOutput = (): BatchOutput => ({ events: [], alerts: [], revocations: [], tasks: new Map() });

  async function manual(action: ManualAction, kind: Revocation['action']): Promise<Revocation> {
    const key = taskKey(action.tenant, action.taskId);
    if (!live.has(key) && !ended.has(key)) {
      const record = await store.getTask(action.tenant, action.taskId);
      if (record === null) throw new TriplineError('NOT_FOUND', `no task ${action.taskId}`);
      await rebuildTask(record);
    }
    const task = live.get(key) ?? ended.get(key);
    if (task === undefined) throw new TriplineError('NOT_FOUND', `no task ${action.taskId}`);
    if (kind === 'revoke' && task.status === 'revoked') throw new TriplineError('CONFLICT', `task ${action.taskId} is already revoked`);
    if (kind === 'restore' && task.status !== 'revoked') throw new TriplineError('CONFLICT', `task ${action.taskId} is not revoked (status ${task.status})`);
    const peakScore = task.peak?.score ?? 0;
    const revocation = revocationOf(task, 'manual', action.actor, action.reason, peakScore, '', [], kind);
    if (kind === 'revoke') {
      task.status = 'revoked';
      task.flagged = true;
    } else {
      task.status = task.state.endedMs === null ? 'active' : 'completed';
      task.restoredAtScore = peakScore;
    }
    killSwitch.apply(revocation);
    const output = emptyOutput();
    output.revocations.push(revocation);
    output.tasks.set(key, task);
    await persist(output);
    return revocation;
  }

  return {
    handle(batch) {
      return serialize(async () => {
        await loadHistory(batch);
        const output = emptyOutput();
        const events = [...batch.events].sort((a, b) => a.startMs - b.startMs);
        for (const event of events) scoreEvent(event, output);
        for (const boundary of batch.boundaries) endTask(boundary, output);
        await persist(output);
      });
    },
    sweep() {
      return serialize(async () => {
        const cutoff = now() - options.taskIdleTimeoutMs;
        const output = emptyOutput();
        for (const [key, task] of live) {
          if (task.state.lastEventMs < cutoff) {
            completeTask(key, task, task.state.lastEventMs);
            output.tasks.set(key, task);
          }
        }
        if (output.tasks.size > 0) await persist(output);
      });
    },
    revoke: (action) => serialize(() => manual(action, 'revoke')),
    restore: (action) => serialize(() => manual(action, 'restore')),
    ownershipChanged() {
      ownershipSinceMs = now();
    },
    baselines: () => book,
    liveTasks: () => live.size + ended.size,
    async stop() {
      stopped = true;
      await chain;
    },
  };
}

/** Agents' clocks and delivery delays: events this much younger than the ownership change may still have history. */
const HISTORY_SLACK_MS = 5 * 60_000;

function taskKey(tenant: string, taskId: string): string {
  return `${tenant}\u0000${taskId}`;
}

function totalEvents(task: LiveTask): number {
  const { counts } = task.state;
  return counts.tool_call + counts.data_access + counts.privilege_change;
}

export function reasonsOf(verdict: Verdict): string[] {
  return verdict.contributions.map((contribution) => contribution.reason);
}

function alertOf(task: LiveTask, event: AgentEvent, verdict: Verdict): Alert {
  const { state } = task;
  return {
    // One alert per task and level: the same id however often the batch is replayed.
    id: stableId(state.tenant, state.taskId, 'alert', verdict.decision, verdict.shadow ? 'shadow' : 'live'),
    tenant: state.tenant,
    taskId: state.taskId,
    taskType: state.taskType,
    agentId: state.agentId,
    eventId: event.id,
    timeMs: event.endMs,
    score: verdict.score,
    decision: verdict.decision,
    regime: verdict.regime,
    reasons: reasonsOf(verdict),
    shadow: verdict.shadow,
  };
}
