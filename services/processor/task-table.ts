/**
 * The tasks a processor holds in memory: the live ones, and the recently ended ones (bounded) kept to recognise
 * late events — credentials used after the task ended. Each holds the task's detector state and what the
 * processor decided about it; `recordOf` snapshots one for the store under a fresh version.
 */
import type { Decision, TaskStatus, Verdict } from '../../schemas/events.ts';
import { newTaskState, strongerEffect } from '../core/detect/index.ts';
import type { LearningEffect, TaskState } from '../core/detect/index.ts';
import { reasonsOf } from '../core/decide.ts';
import type { EscalationScope } from '../core/escalation-policy.ts';
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
  /** The end user and conversation its spans named first (escalation scope: core/escalation-policy.ts). */
  scope: EscalationScope;
}

export function taskKey(tenant: string, taskId: string): string {
  return `${tenant}\u0000${taskId}`;
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
    scope: {},
  };
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

/** A restore: the task goes on (or stays completed); the detector revokes it again only above `atScore`. */
export function markRestored(task: LiveTask, atScore: number): void {
  task.status = task.state.endedMs === null ? 'active' : 'completed';
  task.restoredAtScore = atScore;
}

export class TaskTable {
  readonly #live = new Map<string, LiveTask>();
  readonly #ended = new Map<string, LiveTask>();
  readonly #endedMemory: number;
  readonly #now: () => number;
  #lastVersion = 0;

  /** `endedMemory`: completed tasks kept in memory, the oldest dropped first. */
  constructor(endedMemory: number, now: () => number) {
    this.#endedMemory = endedMemory;
    this.#now = now;
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
    this.#live.set(key, task);
  }

  deleteLive(key: string): void {
    this.#live.delete(key);
  }

  /** A task rebuilt from its stored record: live while active, else among the ended. */
  add(key: string, task: LiveTask): void {
    if (task.status === 'active') this.#live.set(key, task);
    else this.#ended.set(key, task);
  }

  /** Moves a task that completed to the newest end of the ended tasks, dropping the oldest beyond the memory. */
  retire(key: string, task: LiveTask): void {
    this.#live.delete(key);
    this.#ended.delete(key);
    this.#ended.set(key, task);
    if (this.#ended.size > this.#endedMemory) {
      const oldest = this.#ended.keys().next().value;
      if (oldest !== undefined) this.#ended.delete(oldest);
    }
  }

  forget(key: string): void {
    this.#live.delete(key);
    this.#ended.delete(key);
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
      counts: { ...state.counts },
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
