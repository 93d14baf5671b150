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
import { learningEffect, markEnded, newTaskState, observe, score, strongerEffect, summarize } from '../core/detect/index.ts';
import { UNKNOWN_TASK_TYPE } from '../core/classify.ts';
import type { DetectorConfig, LearningEffect, TaskState } from '../core/detect/index.ts';
import type { EventBatch } from '../bus/bus.ts';
import { EscalationWindow } from '../killswitch/escalation.ts';
import { alertOf, detectorRevocation, escalationRevocation, manualRevocation, reasonsOf } from '../core/decide.ts';
import type { Escalation, EscalationPolicy } from '../killswitch/escalation.ts';
import type { KillSwitch } from '../killswitch/kill-switch.ts';
import { TriplineError, messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { ScoredEvent, Store, TaskRecord } from '../store/store.ts';
import { BaselineBook } from './baseline-book.ts';
import { createResultWriter } from './result-writer.ts';
import { TraceTasks } from './trace-tasks.ts';

export interface ProcessorOptions {
  store: Store;
  killSwitch: KillSwitch;
  detector: DetectorConfig;
  logger: Logger;
  taskIdleTimeoutMs: number;
  /** Completed tasks kept in memory to recognise late events (credentials used after the task ended). */
  endedTaskMemory?: number;
  now?: () => number;
  /**
   * Escalation to the agent: this many revocations of one agent's tasks within the window revoke the agent's
   * other tasks, and the tasks it starts during the block (services/killswitch/escalation.ts). Only that agent.
   * @default undefined (never escalate)
   */
  escalation?: EscalationPolicy;
  /** Called as the processor goes (the kill switch's verification and leases). A throwing hook is logged and ignored. */
  hooks?: ProcessorHooks;
  /**
   * Events `handle()` may have scored ahead of their writes and still resolve before they are written. 0: every
   * `handle()` resolves once its batch is written — what Kafka needs (offsets are committed after it). The
   * in-process bus holds nothing durably anyway and hands over one batch at a time, so the embedded mode sets
   * this above 0. Either way the next batch (and the kill it may decide) is scored while earlier ones are still
   * being written, up to this many unwritten events (at least SCORE_AHEAD_EVENTS), instead of waiting for
   * ClickHouse. Writes are retried until they succeed; `stop()` waits for all of them.
   * @default 0
   */
  persistAhead?: number;
  /**
   * Where revocations are written (the moment they are decided). The embedded mode passes a writer with a
   * ClickHouse connection of its own, so the audit row of a kill never queues behind a large insert of events.
   * @default store.insertRevocations
   */
  writeRevocations?: (rows: readonly Revocation[]) => Promise<void>;
  /**
   * Score strictly in arrival order: a batch with a task whose history is being looked up waits for it whole,
   * and later batches wait behind it. Otherwise the other tasks' events (a kill) go ahead, and a task waiting
   * for its history may then be scored against what tasks that ended meanwhile taught the baseline; its scores
   * are no longer exactly what a replay in arrival order gives. The embedded mode's lookups are local and fast,
   * so it keeps the order; a Kafka processor taking over partitions does not.
   * @default false
   */
  scoreInOrder?: boolean;
}

export interface ProcessorHooks {
  /** An event of a task that is revoked now (after scoring): evidence the agent kept acting, or not. */
  onRevokedTaskEvent?: (event: AgentEvent) => void;
  /** A task completed (its task span ended, or it went idle). */
  onTaskEnded?: (tenant: string, taskId: string, endMs: number) => void;
}

/** What the processor knows of a task right now (memory only). */
export interface TaskSnapshot {
  status: TaskStatus;
  score: number;
  taskType: string;
  agentId: string;
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
   * A task was given credentials before it sent any event (POST /v1/tasks): hold it in memory so a person can
   * kill it at once and its first events are scored as its own. A task the store already knows is loaded instead.
   */
  registerTask(task: { tenant: string; taskId: string; taskType: string; agentId: string; startMs: number; isNew?: boolean }): Promise<void>;
  /**
   * Tell the processor it may now receive tasks that another processor began (Kafka partitions were
   * assigned to it): tasks it has not seen are looked up in the store before their next event is scored.
   */
  ownershipChanged(): void;
  baselines(): BaselineBook;
  /** Live tasks in memory (active, revoked, or recently ended). */
  liveTasks(): number;
  /** A task's status and peak score if it is in memory (active, revoked, or recently ended). */
  taskSnapshot(tenant: string, taskId: string): TaskSnapshot | undefined;
  /**
   * A revocation or restore decided in another process (the API service, another processor): update the
   * task's status here, so this processor's next write of the task does not undo it. Writes no revocation.
   */
  applyRevocation(revocation: Revocation): Promise<void>;
  /** Drop tasks whose partitions moved to another processor (it rebuilds them from the store). */
  forget(tasks: readonly { tenant: string; taskId: string }[]): Promise<void>;
  stop(): Promise<void>;
}

interface LiveTask {
  state: TaskState;
  /** The task id the agent declared after the task began under its trace id ('' for none). */
  name: string;
  /**
   * The agent came from a span's own claim (`gen_ai.agent.id` / `gen_ai.agent.name`) or a credential, not from a
   * stand-in (`service.name`): a later span's claim does not replace it.
   */
  agentSettled: boolean;
  /** The type is the one its agent's tasks declared so far, taken while this task has declared none. */
  typeInferred: boolean;
  status: TaskStatus;
  version: number;
  peak: Verdict | undefined;
  /** Decisions already raised as alerts for this task, so each level alerts once. */
  raised: Set<Decision>;
  /** A task that alerted or was revoked never teaches the baseline. */
  flagged: boolean;
  /** It alerted during its type's warm-up only: held, learned once such tasks are the type's norm. */
  warmupAlerted: boolean;
  /** After a manual restore, the detector revokes again only if the score rises above this. */
  restoredAtScore: number | undefined;
  learned: boolean;
  /** Ids of the events folded into `state`, so an event delivered again (a Kafka replay) is not counted twice. */
  seen: Set<string>;
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
  /** Which task each trace is, declared names, agents' declared types, roots that came first. */
  const traces = new TraceTasks<TaskBoundary>();
  /**
   * Tasks whose stored history is being looked up, each with the step that scores their events once it is in.
   * Their events (in this batch and in later ones, until that step ran) wait for it; every other event — a kill
   * among them — and the next batches do not.
   */
  const awaitingHistory = new Map<string, Promise<void>>();
  const book = BaselineBook.fromRecords(await store.loadBaselines(), (record, error) =>
    logger.error({ tenant: record.tenant, taskType: record.taskType, agentId: record.agentId, err: messageOf(error) }, 'ignoring an unreadable baseline'),
  );
  let lastVersion = 0;
  let chain: Promise<unknown> = Promise.resolve();
  let ownershipSinceMs = now();
  const escalations = options.escalation === undefined ? undefined : new EscalationWindow(options.escalation);
  /** Escalations decided but not yet applied to the agent's other tasks. */
  const pendingEscalations: Escalation[] = [];
  let escalationScheduled = false;

  function hook(name: keyof ProcessorHooks, call: () => void): void {
    try {
      call();
    } catch (error) {
      logger.error({ hook: name, err: messageOf(error) }, 'a processor hook failed');
    }
  }

  await restoreActiveTasks();

  // Every revocation this process applies — its own, or another process's carried over Kafka — counts toward
  // escalating that agent. The escalation itself runs inside the serialized work (it touches task state).
  const unsubscribeEscalations =
    escalations === undefined
      ? undefined
      : killSwitch.subscribe((message) => {
          if (message.type !== 'revocation') return;
          const escalation = escalations.observe(message.revocation);
          if (escalation === undefined) return;
          logger.warn({ agentId: escalation.agentId, tasks: escalation.taskIds, until: new Date(escalation.untilMs).toISOString() }, 'escalating to the agent after repeated revocations');
          pendingEscalations.push(escalation);
          if (!escalationScheduled) {
            escalationScheduled = true;
            serialize(async () => {
              escalationScheduled = false;
              const output = emptyOutput();
              applyEscalations(output);
              if (output.revocations.length > 0 || output.tasks.size > 0) await persist(output);
            }).catch((error: unknown) => logger.error({ err: messageOf(error) }, 'escalation failed'));
          }
        });

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
    // A chunk's events at a time, so a store with many long tasks is not read into memory at once.
    for (let start = 0; start < active.length; start += RESTORE_CHUNK) {
      for (const { record, events } of await withEvents(active.slice(start, start + RESTORE_CHUNK))) await rebuildTask(record, events);
    }
    if (active.length > 0) logger.info({ tasks: active.length }, 'rebuilt task state from the store');
  }

  /** The tasks with their stored events: one query per tenant (and per 500 tasks), not one per task. */
  async function withEvents(records: readonly TaskRecord[]): Promise<{ record: TaskRecord; events: ScoredEvent[] }[]> {
    const byTenant = new Map<string, TaskRecord[]>();
    for (const record of records) {
      const list = byTenant.get(record.tenant);
      if (list === undefined) byTenant.set(record.tenant, [record]);
      else list.push(record);
    }
    const out: { record: TaskRecord; events: ScoredEvent[] }[] = [];
    for (const [tenant, list] of byTenant) {
      const events = await store.eventsForTasks(tenant, list.map((record) => record.taskId));
      for (const record of list) out.push({ record, events: events.get(record.taskId) ?? [] });
    }
    return out;
  }

  /** Rebuild a task's detector state from its stored events, as if this processor had seen them. */
  async function rebuildTask(record: TaskRecord, stored?: readonly ScoredEvent[]): Promise<void> {
    const events = stored ?? (await store.eventsForTask(record.tenant, record.taskId));
    const task = newLiveTask(record.tenant, record.taskId, record.taskType, record.agentId, record.startedMs);
    task.name = record.name;
    task.agentSettled = true;
    traces.rememberName(record.tenant, record.name, record.taskId);
    task.status = record.status;
    task.version = record.version;
    lastVersion = Math.max(lastVersion, record.version);
    for (const { event, verdict } of events) {
      task.seen.add(event.id);
      task.state = observe(task.state, event);
      if (task.peak === undefined || verdict.score > task.peak.score) task.peak = verdict;
      if (verdict.decision !== 'allow' && !verdict.shadow) task.raised.add(verdict.decision);
      noteLearningEffect(task, learningEffect(verdict));
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
  function unknownTasks(batch: EventBatch): Map<string, Set<string>> {
    const horizon = ownershipSinceMs + HISTORY_SLACK_MS;
    const unknown = new Map<string, Set<string>>();
    for (const item of [...batch.events, ...batch.boundaries]) {
      const key = taskKey(item.tenant, item.taskId);
      if (item.startMs >= horizon || live.has(key) || ended.has(key) || awaitingHistory.has(key)) continue;
      const ids = unknown.get(item.tenant) ?? new Set<string>();
      ids.add(item.taskId);
      unknown.set(item.tenant, ids);
    }
    return unknown;
  }

  /**
   * Reads the stored records of the batch's unknown tasks, and the events of those the store knows (outside the
   * serialized work).
   */
  async function fetchHistory(unknown: Map<string, Set<string>>): Promise<{ record: TaskRecord; events: ScoredEvent[] }[]> {
    const records: TaskRecord[] = [];
    for (const [tenant, ids] of unknown) records.push(...(await store.getTasks(tenant, [...ids])));
    return withEvents(records);
  }

  /** Rebuilds the fetched tasks that are still unknown when their batch's turn comes. */
  async function applyHistory(found: readonly { record: TaskRecord; events: ScoredEvent[] }[]): Promise<void> {
    for (const { record, events } of found) {
      const key = taskKey(record.tenant, record.taskId);
      if (!live.has(key) && !ended.has(key)) await rebuildTask(record, events);
    }
  }

  function newLiveTask(tenant: string, taskId: string, taskType: string, agentId: string, startMs: number): LiveTask {
    return {
      state: newTaskState({ tenant, taskId, taskType, agentId, startMs }),
      name: '',
      agentSettled: false,
      typeInferred: false,
      status: 'active',
      version: 0,
      peak: undefined,
      raised: new Set(),
      flagged: false,
      warmupAlerted: false,
      restoredAtScore: undefined,
      learned: false,
      seen: new Set(),
    };
  }

  function taskFor(event: AgentEvent): LiveTask {
    const key = taskKey(event.tenant, event.taskId);
    const existing = live.get(key) ?? ended.get(key);
    if (existing !== undefined) return existing;
    const task = newLiveTask(event.tenant, event.taskId, event.taskType, event.agentId, event.startMs);
    task.agentSettled = event.claims?.agentId !== undefined;
    if (event.claims !== undefined && event.claims.taskType === undefined) inferType(task);
    else if (event.claims?.taskType !== undefined) traces.noteAgentType(event.tenant, event.agentId, event.claims.taskType);
    live.set(key, task);
    return task;
  }

  /** A task that declared no type yet takes the one its agent's tasks declared (`TraceTasks.usualType`). */
  function inferType(task: LiveTask): void {
    if (task.state.taskType !== UNKNOWN_TASK_TYPE) return;
    const usual = traces.usualType(task.state.tenant, task.state.agentId);
    if (usual === undefined) return;
    task.state.taskType = usual;
    task.typeInferred = true;
  }

  /**
   * Resolves each span's task from its trace (services/processor/trace-tasks.ts), in arrival order, and rewrites
   * its task id. Returns the names declared for tasks that began under their trace id.
   */
  function resolveTasks(batch: EventBatch): Map<string, string> {
    const names = new Map<string, string>();
    const resolve = (item: AgentEvent | TaskBoundary): void => {
      // An event made without classification (a test, a replay of stored events) names its task outright.
      const declared = item.claims === undefined ? item.taskId : item.claims.taskId;
      const resolution = traces.resolve(item.tenant, item.traceId, declared, holds);
      item.taskId = resolution.taskId;
      if (resolution.named !== undefined) names.set(taskKey(item.tenant, resolution.taskId), resolution.named);
    };
    for (const event of batch.events) resolve(event);
    for (const boundary of batch.boundaries) resolve(boundary);
    return names;
  }

  function holds(tenant: string, taskId: string): boolean {
    const key = taskKey(tenant, taskId);
    return live.has(key) || ended.has(key);
  }

  /**
   * What a later span of the task says about it that its first did not: the name the agent declared, a type where
   * the task had none, the agent where the task had only a stand-in. A type or agent a credential gave is kept.
   */
  function adoptClaims(task: LiveTask, item: AgentEvent | TaskBoundary, names: ReadonlyMap<string, string>, output: BatchOutput): void {
    const key = taskKey(item.tenant, item.taskId);
    const name = names.get(key);
    let changed = false;
    if (name !== undefined && task.name === '') {
      task.name = name;
      changed = true;
    }
    const claims = item.claims;
    if (claims?.agentId !== undefined && !task.agentSettled && !task.learned) {
      task.state.agentId = claims.agentId;
      task.agentSettled = true;
      changed = true;
      // Its first spans (a database call exported before the tool span around it) did not name the agent.
      if (claims.taskType === undefined) inferType(task);
    }
    if (claims?.taskType !== undefined && (task.state.taskType === UNKNOWN_TASK_TYPE || task.typeInferred) && !task.learned) {
      changed ||= task.state.taskType !== claims.taskType;
      task.state.taskType = claims.taskType;
      task.typeInferred = false;
      traces.noteAgentType(task.state.tenant, task.state.agentId, claims.taskType);
    }
    if (changed) output.tasks.set(key, task);
  }

  function scoreEvent(event: AgentEvent, output: BatchOutput, names: ReadonlyMap<string, string>): void {
    const task = taskFor(event);
    adoptClaims(task, event, names, output);
    // Already folded in (rebuilt from the store, or delivered twice): its verdict is stored; scoring it again
    // would count it twice.
    if (task.seen.has(event.id)) return;
    task.seen.add(event.id);
    const wasRevoked = task.status === 'revoked';
    task.state = observe(task.state, event);
    const verdict = score(event, task.state, book.lookup(event.tenant, task.state.taskType, task.state.agentId), options.detector);
    output.events.push({ event, verdict });
    if (task.peak === undefined || verdict.score >= task.peak.score) task.peak = verdict;
    output.tasks.set(taskKey(event.tenant, event.taskId), task);
    if (wasRevoked && options.hooks?.onRevokedTaskEvent !== undefined) {
      const onRevoked = options.hooks.onRevokedTaskEvent;
      hook('onRevokedTaskEvent', () => onRevoked(event));
    }
    // An escalated agent's new tasks are revoked as they appear, for as long as the block lasts.
    const block = escalations?.blocked(event.tenant, task.state.agentId, now());
    if (block !== undefined && task.status === 'active') {
      revokeForEscalation(task, block, event.id, output);
    }

    if (verdict.decision === 'allow') return;
    noteLearningEffect(task, learningEffect(verdict));
    const level: Decision = verdict.decision;
    if (!task.raised.has(level)) {
      task.raised.add(level);
      const alert = alertOf(task.state, event, verdict);
      output.alerts.push(alert);
      killSwitch.alert(alert);
    }
    const mayRevoke = task.restoredAtScore === undefined || verdict.score > task.restoredAtScore;
    if (level === 'revoke' && !verdict.shadow && task.status !== 'revoked' && mayRevoke) {
      task.status = 'revoked';
      const revocation = detectorRevocation(task.state, verdict, event.id, now());
      killSwitch.apply(revocation);
      output.revocations.push(revocation);
    }
  }

  /**
   * A boundary: a root span ended its trace's task, or a span declared who the task is. A root of a trace this
   * processor holds no task for is remembered, not made a task: most traces' roots end tasks that never had an
   * event (and would be empty tasks), and a trace's events may still come (another topic, another export).
   */
  function endTask(boundary: TaskBoundary, output: BatchOutput, names: ReadonlyMap<string, string>): void {
    const key = taskKey(boundary.tenant, boundary.taskId);
    let task = live.get(key) ?? ended.get(key);
    if (task === undefined && boundary.ends && boundary.claims?.taskId !== undefined) {
      task = newLiveTask(boundary.tenant, boundary.taskId, boundary.taskType, boundary.agentId, boundary.startMs);
      task.agentSettled = boundary.claims.agentId !== undefined;
    }
    if (task === undefined) {
      if (boundary.ends) traces.rememberEnd(boundary.tenant, boundary.traceId, boundary);
      return;
    }
    adoptClaims(task, boundary, names, output);
    if (!boundary.ends) return;
    completeTask(key, task, boundary.endMs, boundary.traceId);
    output.tasks.set(key, task);
    // The trace's own task, when the root declared another one for itself (its spans all went there until then).
    const own = taskKey(boundary.tenant, boundary.traceId);
    const traceTask = own === key ? undefined : live.get(own);
    if (traceTask !== undefined) {
      completeTask(own, traceTask, boundary.endMs, boundary.traceId);
      output.tasks.set(own, traceTask);
    }
  }

  function completeTask(key: string, task: LiveTask, endMs: number, traceId?: string): void {
    const wasEnded = task.state.endedMs !== null;
    task.state = markEnded(task.state, endMs, traceId);
    if (task.status === 'active') task.status = 'completed';
    if (!wasEnded && options.hooks?.onTaskEnded !== undefined) {
      const onEnded = options.hooks.onTaskEnded;
      hook('onTaskEnded', () => onEnded(task.state.tenant, task.state.taskId, endMs));
    }
    if (!task.flagged && task.status === 'completed' && !task.learned && totalEvents(task) > 0) {
      if (task.warmupAlerted) book.holdWarmupTask(task.state.tenant, task.state.taskType, task.state.agentId, summarize(task.state), options.detector.warmupTasks);
      else book.learnTask(task.state.tenant, task.state.taskType, task.state.agentId, summarize(task.state));
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

  function noteLearningEffect(task: LiveTask, effect: LearningEffect): void {
    const combined = strongerEffect(task.flagged ? 'excluded' : task.warmupAlerted ? 'held' : 'teaches', effect);
    task.flagged = combined === 'excluded';
    task.warmupAlerted = combined === 'held';
  }

  /** Revokes one task of an escalated agent (applied to the kill switch now, stored with the output). */
  function revokeForEscalation(task: LiveTask, escalation: Escalation, eventId: string, output: BatchOutput): void {
    task.status = 'revoked';
    task.flagged = true;
    const revocation = escalationRevocation(task.state, escalation, options.escalation?.windowMs ?? 0, task.peak?.score ?? 0, eventId, now());
    killSwitch.apply(revocation);
    output.revocations.push(revocation);
    output.tasks.set(taskKey(task.state.tenant, task.state.taskId), task);
  }

  /** Revokes every active task this processor holds of each agent that escalated (never another agent's). */
  function applyEscalations(output: BatchOutput): void {
    for (const escalation of pendingEscalations.splice(0)) {
      for (const task of live.values()) {
        if (task.status !== 'active' || task.state.tenant !== escalation.tenant || task.state.agentId !== escalation.agentId) continue;
        revokeForEscalation(task, escalation, '', output);
      }
    }
  }

  function taskRecordOf(task: LiveTask): TaskRecord {
    task.version = nextVersion();
    const { state, peak } = task;
    return {
      tenant: state.tenant,
      taskId: state.taskId,
      name: task.name,
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

  const writer = createResultWriter({ store, logger, ...(options.writeRevocations === undefined ? {} : { writeRevocations: options.writeRevocations }) });
  const { retrying } = writer;
  const persistAhead = options.persistAhead ?? 0;
  const scoreAhead = Math.max(persistAhead, SCORE_AHEAD_EVENTS);

  /** Snapshots the output's task records and dirty baselines now, and queues its write. Resolves when durable. */
  function persist(output: BatchOutput): Promise<void> {
    return writer.write({ events: output.events, alerts: output.alerts, revocations: output.revocations, tasks: [...output.tasks.values()].map(taskRecordOf), baselines: book.takeDirty(now()) });
  }

  const emptyOutput = (): BatchOutput => ({ events: [], alerts: [], revocations: [], tasks: new Map() });

  /**
   * Scores a batch in two steps: at once, the events of the tasks this processor knows (or knows to be new);
   * once their history is in, the events of the tasks it had to look up (and of tasks still waiting for an
   * earlier lookup). `scored` resolves when the first step is done, `durable` when both steps' results are.
   */
  function scoreBatch(batch: EventBatch): { scored: Promise<void>; durable: Promise<void> } {
    const names = resolveTasks(batch);
    // Looked up at once, beside the work in progress; retried like writes (a store outage delays these tasks'
    // events rather than failing the batch).
    const unknown = unknownTasks(batch);
    const history = unknown.size === 0 ? undefined : retrying('task history', unknown.size, () => fetchHistory(unknown), 'reading task history failed; retrying');
    history?.catch(() => undefined);
    const deferred = new Set<string>();
    const earlier = new Set<Promise<void>>();
    for (const [tenant, ids] of unknown) for (const taskId of ids) deferred.add(taskKey(tenant, taskId));
    for (const item of [...batch.events, ...batch.boundaries]) {
      const key = taskKey(item.tenant, item.taskId);
      const waiting = awaitingHistory.get(key);
      if (waiting === undefined) continue;
      deferred.add(key);
      earlier.add(waiting);
    }
    if (options.scoreInOrder === true && (deferred.size > 0 || awaitingHistory.size > 0)) {
      for (const item of [...batch.events, ...batch.boundaries]) deferred.add(taskKey(item.tenant, item.taskId));
      for (const waiting of awaitingHistory.values()) earlier.add(waiting);
    }
    const isDeferred = (item: { tenant: string; taskId: string }): boolean => deferred.has(taskKey(item.tenant, item.taskId));

    const first = serialize(() => scoreSome(batch.events.filter((event) => !isDeferred(event)), batch.boundaries.filter((boundary) => !isDeferred(boundary)), names));
    if (deferred.size === 0) return { scored: first.then(() => undefined), durable: first.then(async ({ durable }) => durable) };

    // Later batches' events of these tasks wait for this step, which waits for the earlier ones.
    const second = (async () => {
      await Promise.all([history, ...earlier]);
      const records = (await history) ?? [];
      return serialize(async () => {
        await applyHistory(records);
        return scoreSome(batch.events.filter(isDeferred), batch.boundaries.filter(isDeferred), names);
      });
    })();
    const settled = second.then(
      () => undefined,
      () => undefined,
    );
    for (const key of deferred) awaitingHistory.set(key, settled);
    void settled.then(() => {
      for (const key of deferred) if (awaitingHistory.get(key) === settled) awaitingHistory.delete(key);
    });
    const durable = Promise.all([first, second]).then(async ([a, b]) => {
      await Promise.all([a.durable, b.durable]);
    });
    durable.catch(() => undefined);
    // In order, the batch counts as scored only once its waiting tasks are (so the bus hands over no more meanwhile).
    const scored = options.scoreInOrder === true ? Promise.all([first, second]).then(() => undefined) : first.then(() => undefined);
    return { scored, durable };
  }

  /**
   * Scores events and task ends (serialized work) and queues their results' write. Resolves once scored; the
   * write is wrapped, since a promise returned as is would make the serialized work wait for it.
   */
  async function scoreSome(batchEvents: readonly AgentEvent[], boundaries: readonly TaskBoundary[], names: ReadonlyMap<string, string>): Promise<{ durable: Promise<void> }> {
    const output = emptyOutput();
    const events = [...batchEvents].sort((a, b) => a.startMs - b.startMs);
    // Per task its first end; declarations and further ends apply after the events, declarations before the ends
    // (a type declared beside the root is the type the task is learned as).
    const ends = new Map<string, TaskBoundary>();
    const declarations: TaskBoundary[] = [];
    const repeatedEnds: TaskBoundary[] = [];
    for (const boundary of boundaries) {
      const key = taskKey(boundary.tenant, boundary.taskId);
      if (!boundary.ends) declarations.push(boundary);
      else if (ends.has(key)) repeatedEnds.push(boundary);
      else ends.set(key, boundary);
    }
    for (const event of events) {
      const key = taskKey(event.tenant, event.taskId);
      // A task's end applies before events of other traces that started after it, also when both arrive in one
      // batch (credentials used after the task ended). Spans of the ending root's own trace are the task's, whatever
      // their timestamps: they end before their root, and are exported with it or before it.
      const end = ends.get(key);
      if (end !== undefined && end.traceId !== event.traceId && end.endMs < event.startMs) {
        endTask(end, output, names);
        ends.delete(key);
      }
      const isNew = !live.has(key) && !ended.has(key);
      scoreEvent(event, output, names);
      // The trace's root arrived first (its events came later, from another topic or another exporter).
      const earlierEnd = isNew && !ends.has(key) ? traces.takeEnd(event.tenant, event.traceId) : undefined;
      if (earlierEnd !== undefined) ends.set(key, { ...earlierEnd, taskId: event.taskId });
    }
    for (const boundary of [...declarations, ...ends.values(), ...repeatedEnds]) endTask(boundary, output, names);
    applyEscalations(output);
    const durable = persist(output);
    durable.catch(() => undefined);
    // The next batch is scored while this one is written, unless too much is unwritten already (memory).
    if (writer.unwrittenEvents() > scoreAhead) await durable;
    return { durable };
  }

  /** The task held for an id or a declared name (undefined when this processor holds none). */
  function heldTask(tenant: string, taskIdOrName: string): LiveTask | undefined {
    const key = taskKey(tenant, taskIdOrName);
    const task = live.get(key) ?? ended.get(key);
    if (task !== undefined) return task;
    const named = traces.taskNamed(tenant, taskIdOrName);
    return named === undefined ? undefined : (live.get(taskKey(tenant, named)) ?? ended.get(taskKey(tenant, named)));
  }

  async function manual(action: ManualAction, kind: Revocation['action']): Promise<Revocation> {
    let task = heldTask(action.tenant, action.taskId);
    if (task === undefined) {
      const record = await store.getTask(action.tenant, action.taskId);
      if (record === null) throw new TriplineError('NOT_FOUND', `no task ${action.taskId}`);
      task = heldTask(record.tenant, record.taskId);
      if (task === undefined) {
        await rebuildTask(record);
        task = heldTask(record.tenant, record.taskId);
      }
    }
    if (task === undefined) throw new TriplineError('NOT_FOUND', `no task ${action.taskId}`);
    const key = taskKey(task.state.tenant, task.state.taskId);
    if (kind === 'revoke' && task.status === 'revoked') throw new TriplineError('CONFLICT', `task ${action.taskId} is already revoked`);
    if (kind === 'restore' && task.status !== 'revoked') throw new TriplineError('CONFLICT', `task ${action.taskId} is not revoked (status ${task.status})`);
    const peakScore = task.peak?.score ?? 0;
    const revocation = manualRevocation(task.state, kind, action.actor, action.reason, peakScore, now());
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
    applyEscalations(output);
    await persist(output);
    return revocation;
  }

  return {
    handle(batch) {
      const { durable, scored } = scoreBatch(batch);
      if (persistAhead === 0) return durable;
      return scored.then(() => {
        if (writer.unwrittenEvents() <= persistAhead) {
          durable.catch((error: unknown) => logger.error({ err: messageOf(error), events: batch.events.length }, 'results of a batch were not written'));
          return undefined;
        }
        return durable;
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
    async registerTask(task) {
      const key = taskKey(task.tenant, task.taskId);
      if (live.has(key) || ended.has(key)) return;
      // Known at once, so a kill of the task (by a person or the detector) never finds it missing.
      const placeholder = newLiveTask(task.tenant, task.taskId, task.taskType, task.agentId, task.startMs);
      live.set(key, placeholder);
      // An id Tripline just made up has no history anywhere.
      if (task.isNew === true) return;
      // Read outside the serialized work: a kill being scored never waits for this lookup.
      const record = await store.getTask(task.tenant, task.taskId);
      await serialize(async () => {
        // A stored history replaces the placeholder unless the placeholder has been used meanwhile.
        const untouched = live.get(key) === placeholder && placeholder.seen.size === 0 && placeholder.status === 'active';
        if (record !== null && untouched) {
          live.delete(key);
          await rebuildTask(record);
        }
      });
    },
    ownershipChanged() {
      ownershipSinceMs = now();
    },
    applyRevocation(revocation) {
      return serialize(async () => {
        const key = taskKey(revocation.tenant, revocation.taskId);
        const task = live.get(key) ?? ended.get(key);
        if (task === undefined) return;
        if (revocation.action === 'revoke') {
          if (task.status === 'revoked') return;
          task.status = 'revoked';
          task.flagged = true;
        } else {
          if (task.status !== 'revoked') return;
          task.status = task.state.endedMs === null ? 'active' : 'completed';
          task.restoredAtScore = task.peak?.score ?? 0;
        }
        const output = emptyOutput();
        output.tasks.set(key, task);
        await persist(output);
      });
    },
    async forget(tasks) {
      // A lookup under way would bring a forgotten task back: let it finish first.
      const lookups = tasks.map(({ tenant, taskId }) => awaitingHistory.get(taskKey(tenant, taskId))).filter((lookup) => lookup !== undefined);
      if (lookups.length > 0) await Promise.all(lookups);
      await serialize(async () => {
        // Batches are scored ahead of their writes: once a task is forgotten, whoever looks it up in the store
        // next (this processor, if the partition comes back) must find everything scored so far.
        await writer.drain();
        for (const { tenant, taskId } of tasks) {
          const key = taskKey(tenant, taskId);
          live.delete(key);
          ended.delete(key);
        }
      });
    },
    baselines: () => book,
    liveTasks: () => live.size + ended.size,
    taskSnapshot(tenant, taskId) {
      const task = heldTask(tenant, taskId);
      if (task === undefined) return undefined;
      return { status: task.status, score: task.peak?.score ?? 0, taskType: task.state.taskType, agentId: task.state.agentId };
    },
    async stop() {
      writer.stopping();
      unsubscribeEscalations?.();
      await Promise.all([...awaitingHistory.values()]);
      await chain;
      await writer.drain();
    },
  };
}

/** Most unwritten events before scoring waits for the writes (when `persistAhead` is lower). */
const SCORE_AHEAD_EVENTS = 50_000;

/** Agents' clocks and delivery delays: events this much younger than the ownership change may still have history. */
const HISTORY_SLACK_MS = 5 * 60_000;

/** Active tasks rebuilt per step at start (their events are read together). */
const RESTORE_CHUNK = 2000;

function taskKey(tenant: string, taskId: string): string {
  return `${tenant}\u0000${taskId}`;
}

function totalEvents(task: LiveTask): number {
  const { counts } = task.state;
  return counts.tool_call + counts.data_access + counts.privilege_change;
}
