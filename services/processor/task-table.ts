/**
 * The tasks a processor holds in memory: the live ones, and the recently ended ones (bounded) kept to recognise
 * late events — credentials used after the task ended. Each holds the task's detector state and what the
 * processor decided about it; `recordOf` snapshots one for the store under a fresh version.
 */
import type { Contribution, Decision, TaskStatus, Verdict } from '../../schemas/events.ts';
import { newTaskState, strongerEffect } from '../core/detect/index.ts';
import type { LearningEffect, TaskState } from '../core/detect/index.ts';
import { reasonsOf } from '../core/decide.ts';
import type { EscalationScope } from '../core/escalation-policy.ts';
import { newLoopState } from '../core/loops.ts';
import type { LoopFeature, LoopState } from '../core/loops.ts';
import { emptySpend } from '../core/spend/index.ts';
import type { Spend } from '../core/spend/index.ts';
import type { TaskRecord } from '../store/store.ts';

export interface LiveTask {
  state: TaskState;
  /** The task id the agent declared after the task began under its trace id ('' for none). */
  name: string;
  /** The parent task its spans declared first (`tripline.task.parent_id`; '' for none): a link, never authority. */
  parentId: string;
  /** Its children killed for what they did themselves (services/core/task-tree.ts), each raising its score once. */
  revokedChildren: Set<string>;
  /**
   * The agent came from a span's own claim (`gen_ai.agent.id` / `gen_ai.agent.name`) or a credential, not from a
   * stand-in (`service.name`): a later span's claim does not replace it.
   */
  agentSettled: boolean;
  /**
   * The stand-in the task began under before a later span's claim settled its agent ('' for none): a type the
   * task declares is noted for it too, as the next task of that framework begins under it again (Mastra's tool
   * spans name no agent; its model and run spans do).
   */
  standInAgentId: string;
  /** The type is the one its agent's tasks declared so far, taken while this task has declared none. */
  typeInferred: boolean;
  status: TaskStatus;
  version: number;
  peak: Verdict | undefined;
  /** Decisions already raised as alerts for this task, so each level alerts once. */
  raised: Set<Decision>;
  /** A task that alerted or was revoked never teaches the baseline. */
  flagged: boolean;
  /**
   * What its telemetry said against its credentials that was alerted already (`feature` NUL `subject`;
   * services/core/agent-binding.ts), so each alerts once; at most MAX_IDENTITY_FINDINGS.
   */
  identityFindings: Set<string>;
  /** The task type and agent its credentials (a task token from `POST /v1/tasks`) name; its spans must agree. */
  credential?: { taskType: string; agentId: string };
  /** It alerted during its type's warm-up only: held, learned once such tasks are the type's norm. */
  warmupAlerted: boolean;
  /** A person restored it: the detector judges it on what it did since (`markRestored`). */
  restored: boolean;
  /** Evidence a person accepted by restoring it (`evidenceKey`): a verdict made only of it is not acted on. */
  accepted: Set<string>;
  /** Its event counts before its last restore (the detector state starts afresh there; the record keeps all). */
  countsBeforeRestore: TaskState['counts'];
  learned: boolean;
  /**
   * Ids of the events folded into `state`, so an event delivered again (a Kafka replay) is not counted twice: the
   * newest MAX_SEEN_EVENTS only (`markSeen`), so a replay of an event older than those counts again.
   */
  seen: Set<string>;
  /** The end user and conversation its spans named first (escalation scope: core/escalation-policy.ts). */
  scope: EscalationScope;
  /** Its loop and rate counts (services/core/loops.ts; memory only: a restart counts afresh). */
  loops: LoopState;
  /** A loop or rate limit's `refuse` step: POST /v1/check denies its calls until then (the task stays active). */
  refusing?: Refusal;
  /** What its model calls cost and used (services/core/spend/), since it began or since a person restored it. */
  spend: Spend;
}

/** Why and until when a task's calls are refused (services/core/loops.ts). */
export interface Refusal {
  feature: LoopFeature;
  reason: string;
  untilMs: number;
}

let lastTenant: string | undefined;
let lastTaskId: string | undefined;
let lastKey = '';

/**
 * A task's key in the processor's maps. A batch asks for the same task's key many times in a row (each event's
 * several lookups, runs of one task's events): the last key is given again, a string already flat and hashed,
 * instead of a new one to flatten and hash at every lookup.
 */
export function taskKey(tenant: string, taskId: string): string {
  if (tenant !== lastTenant || taskId !== lastTaskId) {
    lastTenant = tenant;
    lastTaskId = taskId;
    lastKey = `${tenant}\u0000${taskId}`;
  }
  return lastKey;
}

export function newLiveTask(
  tenant: string,
  taskId: string,
  taskType: string,
  agentId: string,
  startMs: number,
): LiveTask {
  return {
    state: newTaskState({ tenant, taskId, taskType, agentId, startMs }),
    name: '',
    parentId: '',
    revokedChildren: new Set(),
    agentSettled: false,
    standInAgentId: '',
    typeInferred: false,
    status: 'active',
    version: 0,
    peak: undefined,
    raised: new Set(),
    flagged: false,
    identityFindings: new Set(),
    warmupAlerted: false,
    restored: false,
    accepted: new Set(),
    countsBeforeRestore: { tool_call: 0, data_access: 0, privilege_change: 0 },
    learned: false,
    seen: new Set(),
    scope: {},
    loops: newLoopState(),
    spend: emptySpend(),
  };
}

/**
 * Event ids remembered per task for de-duplication. Replays redeliver a batch or a partition's uncommitted tail,
 * not a task's whole history, so the newest ids are the ones that come again; an agent sending millions of distinct
 * ids keeps this many.
 */
export const MAX_SEEN_EVENTS = 4096;

/**
 * Records that `eventId` is folded into the task; false when it was already (a redelivery: do not count it again).
 * Beyond MAX_SEEN_EVENTS ids the oldest is forgotten.
 */
export function markSeen(task: LiveTask, eventId: string): boolean {
  const { seen } = task;
  if (seen.has(eventId)) return false;
  seen.add(eventId);
  if (seen.size > MAX_SEEN_EVENTS) {
    const oldest = seen.values().next().value;
    if (oldest !== undefined) seen.delete(oldest);
  }
  return true;
}

export function totalEvents(task: LiveTask): number {
  const { counts } = task.state;
  return counts.tool_call + counts.data_access + counts.privilege_change;
}

export function noteLearningEffect(task: LiveTask, effect: LearningEffect): void {
  const combined = strongerEffect(task.flagged ? 'excluded' : task.warmupAlerted ? 'held' : 'teaches', effect);
  task.flagged = combined === 'excluded';
  task.warmupAlerted = combined === 'held';
}

/** A kill by a person, another process or an escalation: the task never teaches the baseline. */
export function markRevoked(task: LiveTask): void {
  task.status = 'revoked';
  task.flagged = true;
}

/**
 * A restore: the task goes on (or stays completed). A person accepted what it did so far, so the detector judges it
 * on what it does from here: its state starts afresh (keeping the task's identity, start and end), each level may
 * alert again, and the evidence of the verdict it was restored at (its highest) is accepted. A later verdict with
 * evidence beyond that alerts and revokes as for any task; one made only of accepted evidence does neither.
 */
export function markRestored(task: LiveTask): void {
  task.status = task.state.endedMs === null ? 'active' : 'completed';
  task.restored = true;
  for (const contribution of task.peak?.contributions ?? []) {
    if (task.accepted.size < MAX_ACCEPTED) task.accepted.add(evidenceKey(contribution));
  }
  const before = task.state;
  task.countsBeforeRestore = sumCounts(task.countsBeforeRestore, before.counts);
  const { tenant, taskId, taskType, agentId } = before;
  const fresh = newTaskState({ tenant, taskId, taskType, agentId, startMs: before.startedMs });
  fresh.lastEventMs = before.lastEventMs;
  fresh.endedMs = before.endedMs;
  fresh.endedByTrace = before.endedByTrace;
  // The calls it made stay the calls they were: a later record of one of them is no new call after the restore.
  fresh.sameCalls = before.sameCalls;
  task.state = fresh;
  task.raised.clear();
  task.loops = newLoopState();
  delete task.refusing;
  // A person accepted what it spent so far: its task budgets count from here.
  task.spend = emptySpend();
}

/** Accepted evidence kept per task (a restore adds its verdict's contributions, a handful each). */
const MAX_ACCEPTED = 256;

/** Standalone figures in a reason ("50,000 rows", "40.0 MB"), not those inside a host, address or name. */
const FIGURE = /(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?(?![\w.])/g;

/** A contribution's feature and what it names, its figures aside ("read 5 rows" and "read 7 rows" are one). */
function evidenceKey(contribution: Contribution): string {
  return `${contribution.feature}\u0000${contribution.reason.replace(FIGURE, '#')}`;
}

/** Is this verdict of a restored task made only of evidence a person accepted by restoring it? */
export function onlyAcceptedEvidence(task: LiveTask, verdict: Verdict): boolean {
  if (!task.restored) return false;
  return verdict.contributions.every((contribution) => task.accepted.has(evidenceKey(contribution)));
}

function sumCounts(a: TaskState['counts'], b: TaskState['counts']): TaskState['counts'] {
  return {
    tool_call: a.tool_call + b.tool_call,
    data_access: a.data_access + b.data_access,
    privilege_change: a.privilege_change + b.privilege_change,
  };
}

/** Live tasks a processor holds per tenant by default (see TaskTable's `maxLivePerTenant`). */
export const DEFAULT_MAX_LIVE_TASKS_PER_TENANT = 50_000;

export class TaskTable {
  readonly #live = new Map<string, LiveTask>();
  /** Live tasks per tenant (the keys of `#live` start with the tenant). */
  readonly #liveCounts = new Map<string, number>();
  readonly #ended = new Map<string, LiveTask>();
  readonly #endedMemory: number;
  readonly #now: () => number;
  #lastVersion = 0;
  /** Live tasks held per tenant: beyond it, the tenant's oldest live tasks are completed (`overflowing`). */
  readonly maxLivePerTenant: number;

  /** `endedMemory`: completed tasks kept in memory, the oldest dropped first. */
  constructor(endedMemory: number, now: () => number, maxLivePerTenant = DEFAULT_MAX_LIVE_TASKS_PER_TENANT) {
    this.#endedMemory = endedMemory;
    this.#now = now;
    this.maxLivePerTenant = maxLivePerTenant;
  }

  /** The task held under `key` (live or recently ended). */
  get(key: string): LiveTask | undefined {
    return this.#live.get(key) ?? this.#ended.get(key);
  }

  has(key: string): boolean {
    return this.#live.has(key) || this.#ended.has(key);
  }

  holds(tenant: string, taskId: string): boolean {
    return this.has(taskKey(tenant, taskId));
  }

  /** The live task under `key` only (not an ended one). */
  getLive(key: string): LiveTask | undefined {
    return this.#live.get(key);
  }

  setLive(key: string, task: LiveTask): void {
    if (!this.#live.has(key)) this.#count(task.state.tenant, 1);
    this.#live.set(key, task);
  }

  deleteLive(key: string): void {
    const task = this.#live.get(key);
    if (task === undefined) return;
    this.#live.delete(key);
    this.#count(task.state.tenant, -1);
  }

  /** A task rebuilt from its stored record: live while active, else among the ended. */
  add(key: string, task: LiveTask): void {
    if (task.status === 'active') this.setLive(key, task);
    else this.#ended.set(key, task);
  }

  /** Moves a task that completed to the newest end of the ended tasks, dropping the oldest beyond the memory. */
  retire(key: string, task: LiveTask): void {
    this.deleteLive(key);
    this.#ended.delete(key);
    this.#ended.set(key, task);
    if (this.#ended.size > this.#endedMemory) {
      const oldest = this.#ended.keys().next().value;
      if (oldest !== undefined) this.#ended.delete(oldest);
    }
  }

  forget(key: string): void {
    this.deleteLive(key);
    this.#ended.delete(key);
  }

  /** Live tasks held for `tenant`. */
  liveCount(tenant: string): number {
    return this.#liveCounts.get(tenant) ?? 0;
  }

  /**
   * The live tasks beyond `maxLivePerTenant`, oldest begun first (Map insertion order), of the tenants over it:
   * the processor completes them (task-ends.ts `completeOverflow`).
   */
  *overflowing(): Generator<[string, LiveTask]> {
    const excess = new Map<string, number>();
    for (const [tenant, count] of this.#liveCounts)
      if (count > this.maxLivePerTenant) excess.set(tenant, count - this.maxLivePerTenant);
    if (excess.size === 0) return;
    for (const [key, task] of this.#live) {
      const left = excess.get(task.state.tenant);
      if (left === undefined) continue;
      if (left <= 1) excess.delete(task.state.tenant);
      else excess.set(task.state.tenant, left - 1);
      yield [key, task];
      if (excess.size === 0) return;
    }
  }

  #count(tenant: string, delta: number): void {
    const count = (this.#liveCounts.get(tenant) ?? 0) + delta;
    if (count <= 0) this.#liveCounts.delete(tenant);
    else this.#liveCounts.set(tenant, count);
  }

  /** The live tasks by key (a task may retire while this is iterated). */
  live(): MapIterator<[string, LiveTask]> {
    return this.#live.entries();
  }

  liveTasks(): MapIterator<LiveTask> {
    return this.#live.values();
  }

  /** Every task held: live, revoked, or recently ended. */
  *held(): Generator<LiveTask> {
    yield* this.#live.values();
    yield* this.#ended.values();
  }

  /** Tasks held: live, revoked, or recently ended. */
  get size(): number {
    return this.#live.size + this.#ended.size;
  }

  /** A version read from the store: the versions given from now on are above it. */
  noteVersion(version: number): void {
    this.#lastVersion = Math.max(this.#lastVersion, version);
  }

  /** The task's record for the store, under a new version (the highest version wins there). */
  recordOf(task: LiveTask): TaskRecord {
    task.version = this.#nextVersion();
    const { state, peak } = task;
    return {
      tenant: state.tenant,
      taskId: state.taskId,
      name: task.name,
      ...(task.parentId === '' ? {} : { parentTaskId: task.parentId }),
      taskType: state.taskType,
      agentId: state.agentId,
      status: task.status,
      score: peak?.score ?? 0,
      decision: peak?.decision ?? 'allow',
      regime: peak?.regime ?? 'rules',
      reasons: peak === undefined ? [] : reasonsOf(peak),
      counts: sumCounts(task.countsBeforeRestore, state.counts),
      startedMs: state.startedMs,
      lastEventMs: state.lastEventMs,
      endedMs: state.endedMs,
      version: task.version,
    };
  }

  #nextVersion(): number {
    this.#lastVersion = Math.max(this.#lastVersion + 1, this.#now() * 1000);
    return this.#lastVersion;
  }
}
