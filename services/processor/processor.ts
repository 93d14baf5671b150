/**
 * The processor: folds each event into its task's state, scores it against the baselines, acts on the
 * decision (alert, revoke) and writes everything to the store. The same code runs behind the in-process bus
 * and behind Kafka.
 *
 * A batch is computed once and then written with retries until the store takes it, so a store outage delays
 * results but never double-counts an event in task state or loses one. Every output has a deterministic id,
 * so a batch replayed after a crash (Kafka mode) creates no duplicate alert or revocation.
 *
 * This module wires the parts together: the tasks held in memory (task-table.ts), which task a span is
 * (task-resolver.ts), when work runs and is written (batch-scheduler.ts, result-writer.ts), scoring (batch-scoring.ts),
 * task ends (task-ends.ts), tasks rebuilt from the store (task-history.ts), kills and restores (manual-actions.ts),
 * escalation to the agent (agent-escalation.ts) and task trees (task-tree.ts: a kill reaches the descendants).
 */
import type { Revocation, TaskStatus } from '../../schemas/events.ts';
import type { EventBatch } from '../bus/bus.ts';
import type { DetectorConfig } from '../core/detect/index.ts';
import { DISABLED_LOOP_POLICY } from '../core/loop-policy.ts';
import type { LoopPolicy } from '../core/loop-policy.ts';
import { SpendBaselines, SpendLedger } from '../core/spend/index.ts';
import type { SpendSettings } from '../core/spend/index.ts';
import { DEFAULT_SPEND } from './spend-scoring.ts';
import type { EscalationPolicy } from '../killswitch/escalation.ts';
import type { KillSwitch } from '../killswitch/kill-switch.ts';
import { messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { Store } from '../store/store.ts';
import { AgentEscalation } from './agent-escalation.ts';
import { BaselineBook } from './baseline-book.ts';
import { emptyOutput } from './batch-output.ts';
import { BatchScheduler } from './batch-scheduler.ts';
import { applyRemoteRevocation, manualAction } from './manual-actions.ts';
import type { ManualAction } from './manual-actions.ts';
import { applyEscalations } from './processor-parts.ts';
import type { ProcessorHooks, ProcessorParts } from './processor-parts.ts';
import { createResultWriter } from './result-writer.ts';
import type { ResultWriter } from './result-writer.ts';
import { completeIdleTasks } from './task-ends.ts';
import { registerTask, restoreActiveTasks } from './task-history.ts';
import type { RegisteredTask } from './task-history.ts';
import { TaskResolver } from './task-resolver.ts';
import { TaskTable, taskKey, totalEvents } from './task-table.ts';
import { KillMemory, watchTaskTrees } from './task-tree.ts';

export type { ManualAction } from './manual-actions.ts';
export type { ProcessorHooks } from './processor-parts.ts';

export interface ProcessorOptions {
  store: Store;
  killSwitch: KillSwitch;
  detector: DetectorConfig;
  /**
   * Loop and rate limits with their action ladders (services/core/loops.ts; the apps pass the policy file's,
   * TRIPLINE_LIMITS_FILE). @default DISABLED_LOOP_POLICY (nothing counted)
   */
  loops?: LoopPolicy;
  logger: Logger;
  taskIdleTimeoutMs: number;
  /** Completed tasks kept in memory to recognise late events (credentials used after the task ended). */
  endedTaskMemory?: number;
  /**
   * Live tasks held per tenant; beyond it the tenant's oldest live tasks are completed early (docs/limits.md).
   * @default DEFAULT_MAX_LIVE_TASKS_PER_TENANT (50,000)
   */
  maxLiveTasksPerTenant?: number;
  now?: () => number;
  /**
   * Escalation: this many confident revocations of one agent's tasks within the window revoke the agent's other
   * tasks in the narrowest scope they share, and the tasks it starts there during the block
   * (services/killswitch/escalation.ts, services/core/escalation-policy.ts). Only that agent.
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
   * How long a store write waits for more results to join it (up to WRITE_ROUND_MIN_EVENTS events): fewer, larger
   * inserts cost the store less per event (docs/scaling.md). Kills are not held back. Wall-clock time, whatever
   * `now` says. @default 0 (the app passes TRIPLINE_STORE_WRITE_LINGER_MS)
   */
  writeLingerMs?: number;
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
  /**
   * Model-call prices and spend budgets (services/core/spend/; TRIPLINE_MODEL_PRICES, TRIPLINE_BUDGETS).
   * @default the shipped price table, no budgets
   */
  spend?: SpendSettings;
  /**
   * Learn completed benign tasks into the book as they end (embedded mode). The distributed mode turns it off:
   * the learner of record rebuilds the book from the store and every processor swaps in the version it
   * publishes (`useBaselines`), so no processor's book depends on its partitions.
   * @default true
   */
  learnOnline?: boolean;
  /** The book to start from (with its published version). @default the store's `baselines` rows, version 0 */
  baselines?: { book: BaselineBook; version: number };
}

/** What the processor knows of a task right now (memory only). */
export interface TaskSnapshot {
  status: TaskStatus;
  score: number;
  taskType: string;
  agentId: string;
  /** A loop or rate limit refuses the task's calls until `untilMs` (it stays active). */
  refusing?: { reason: string; untilMs: number };
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
  registerTask(task: RegisteredTask): Promise<void>;
  /**
   * Tell the processor it may now receive tasks that another processor began (Kafka partitions were
   * assigned to it): tasks it has not seen are looked up in the store before their next event is scored.
   */
  ownershipChanged(): void;
  baselines(): BaselineBook;
  /** Swap in a published book between two batches (distributed mode); every later event is scored against it. */
  useBaselines(book: BaselineBook, version: number): Promise<void>;
  /** The published version in force (0: the store's rows, or learned online). */
  baselineVersion(): number;
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

export async function createProcessor(options: ProcessorOptions): Promise<Processor> {
  const { store, killSwitch, logger } = options;
  const now = options.now ?? Date.now;
  const book =
    options.baselines?.book ??
    BaselineBook.fromRecords(await store.loadBaselines(), (record, error) =>
      logger.error(
        { tenant: record.tenant, taskType: record.taskType, agentId: record.agentId, err: messageOf(error) },
        'ignoring an unreadable baseline',
      ),
    );
  let baselineVersion = options.baselines?.version ?? 0;
  const ownershipSinceMs = now();
  const tasks = new TaskTable(options.endedTaskMemory ?? 20_000, now, options.maxLiveTasksPerTenant);
  const escalation =
    options.escalation === undefined ? undefined : new AgentEscalation(options.escalation, { killSwitch, logger, now });
  const parts: ProcessorParts = {
    store,
    killSwitch,
    logger,
    detector: options.detector,
    loops: options.loops ?? DISABLED_LOOP_POLICY,
    now,
    hooks: options.hooks,
    tasks,
    resolver: new TaskResolver(tasks),
    book,
    learnOnline: options.learnOnline ?? true,
    escalation,
    kills: new KillMemory(),
    spend: { ...(options.spend ?? DEFAULT_SPEND), ledger: new SpendLedger(), baselines: new SpendBaselines() },
  };
  await restoreActiveTasks(parts);
  const writer = createResultWriter({
    store,
    logger,
    lingerMs: options.writeLingerMs ?? 0,
    ...(options.writeRevocations === undefined ? {} : { writeRevocations: options.writeRevocations }),
  });
  const scheduler = new BatchScheduler(
    parts,
    writer,
    { persistAhead: options.persistAhead ?? 0, scoreInOrder: options.scoreInOrder === true },
    ownershipSinceMs,
  );
  const unsubscribeEscalations = watchEscalations(parts, scheduler);
  const unsubscribeTrees = watchTaskTrees(parts, scheduler);
  const manual = (action: ManualAction, kind: Revocation['action']): Promise<Revocation> =>
    scheduler.serialize(async () => {
      const { revocation, output } = await manualAction(parts, action, kind);
      await scheduler.persist(output);
      return revocation;
    });

  return {
    handle: (batch) => scheduler.handle(batch),
    sweep: () =>
      scheduler.serialize(async () => {
        const output = emptyOutput();
        completeIdleTasks(parts, now() - options.taskIdleTimeoutMs, output);
        if (output.tasks.size > 0) await scheduler.persist(output);
      }),
    revoke: (action) => manual(action, 'revoke'),
    restore: (action) => manual(action, 'restore'),
    registerTask: (task) => registerTask(parts, task, scheduler),
    ownershipChanged: () => scheduler.ownershipChanged(),
    applyRevocation: (revocation) =>
      scheduler.serialize(async () => {
        const output = applyRemoteRevocation(parts, revocation);
        if (output !== undefined) await scheduler.persist(output);
      }),
    forget: (list) => forgetTasks(parts, scheduler, writer, list),
    baselines: () => parts.book,
    useBaselines: (next, version) =>
      scheduler.serialize(() => {
        parts.book = next;
        baselineVersion = version;
        return Promise.resolve();
      }),
    baselineVersion: () => baselineVersion,
    liveTasks: () => tasks.size,
    taskSnapshot(tenant, taskId) {
      const task = parts.resolver.held(tenant, taskId);
      if (task === undefined) return undefined;
      return {
        status: task.status,
        score: task.peak?.score ?? 0,
        taskType: task.state.taskType,
        agentId: task.state.agentId,
        events: totalEvents(task) + Object.values(task.countsBeforeRestore).reduce((sum, count) => sum + count, 0),
        ...(task.refusing === undefined || task.refusing.untilMs <= now()
          ? {}
          : { refusing: { reason: task.refusing.reason, untilMs: task.refusing.untilMs } }),
      };
    },
    async stop() {
      writer.stopping();
      unsubscribeEscalations?.();
      unsubscribeTrees();
      await scheduler.settle();
      await writer.drain();
    },
  };
}

/**
 * Every revocation this process applies — its own, or another process's carried over Kafka — is folded into the
 * escalation window, which counts the confident ones. The escalation itself runs inside the serialized work (it touches task state).
 * Returns the unsubscribe, undefined when the processor never escalates.
 */
function watchEscalations(parts: ProcessorParts, scheduler: BatchScheduler): (() => void) | undefined {
  const { escalation } = parts;
  if (escalation === undefined) return undefined;
  let scheduled = false;
  return parts.killSwitch.subscribe((message) => {
    if (message.type !== 'revocation' || !escalation.observe(message.revocation) || scheduled) return;
    scheduled = true;
    scheduler
      .serialize(async () => {
        scheduled = false;
        const output = emptyOutput();
        applyEscalations(parts, output);
        if (output.revocations.length > 0 || output.tasks.size > 0) await scheduler.persist(output);
      })
      .catch((error: unknown) => parts.logger.error({ err: messageOf(error) }, 'escalation failed'));
  });
}

/** Drops tasks whose partitions moved to another processor, once what was scored of them is written. */
async function forgetTasks(
  parts: ProcessorParts,
  scheduler: BatchScheduler,
  writer: ResultWriter,
  list: readonly { tenant: string; taskId: string }[],
): Promise<void> {
  // A lookup under way would bring a forgotten task back: let it finish first.
  const lookups = scheduler.lookupsOf(list);
  if (lookups.length > 0) await Promise.all(lookups);
  await scheduler.serialize(async () => {
    // Batches are scored ahead of their writes: once a task is forgotten, whoever looks it up in the store
    // next (this processor, if the partition comes back) must find everything scored so far.
    await writer.drain();
    for (const { tenant, taskId } of list) parts.tasks.forget(taskKey(tenant, taskId));
  });
}
