/**
 * The store port: everything Tripline keeps. The ClickHouse adapter (`clickhouse/store.ts`) implements it over
 * the in-process engine (chdb) or a ClickHouse server; the SQL is the same for both.
 * Writes are idempotent by id: a replayed batch creates no duplicate rows as seen through the read methods.
 */
import type {
  Alert,
  AgentEvent,
  Decision,
  ModelUsage,
  Regime,
  Revocation,
  TaskStatus,
  Verdict,
} from '../../schemas/events.ts';

/** An event as stored: the classified span plus the verdict it got. */
export interface ScoredEvent {
  event: AgentEvent;
  verdict: Verdict;
}

/** A model call as stored: its tokens and model, the task it was counted for, and what it cost. */
export interface ModelUsageRow {
  usage: ModelUsage;
  costUsd: number;
  /** Its model is in the price table (else it was priced at the table's fallback). */
  priced: boolean;
}

/** What to group spend by (GET /v1/spend). */
export const SPEND_GROUPS = ['task', 'agent', 'task_type'] as const;
export type SpendGroup = (typeof SPEND_GROUPS)[number];

/** Spend of one task, agent or task type over a time range. */
export interface SpendRow {
  key: string;
  costUsd: number;
  inputTokens: number;
  outputTokens: number;
  calls: number;
  /** Calls priced at the fallback (model not in the price table). */
  unpriced: number;
  /** Model names used (at most 8). */
  models: string[];
}

/** The latest known state of a task (one row per task; the newest `version` wins). */
export interface TaskRecord {
  tenant: string;
  taskId: string;
  /**
   * The task id the agent declared after the task began under its trace id (a wrapper span that ended after the
   * framework's spans); '' when the task id is the declared one or none was declared.
   */
  name: string;
  /** The task it declared it was started inside (`tripline.task.parent_id`: a claim, for linking only); absent for none. */
  parentTaskId?: string;
  taskType: string;
  agentId: string;
  status: TaskStatus;
  score: number;
  decision: Decision;
  regime: Regime;
  reasons: string[];
  counts: { tool_call: number; data_access: number; privilege_change: number };
  startedMs: number;
  lastEventMs: number;
  endedMs: number | null;
  /** Monotonic per task; the row with the highest version is the current state. */
  version: number;
}

/** Who a task's first task token (POST /v1/tasks) was issued to, and for which type: what its spans must agree with. */
export interface TaskCredential {
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  issuedMs: number;
}

export interface BaselineRecord {
  tenant: string;
  taskType: string;
  /** '' for the task type's baseline; an agent id for a per-agent baseline within the type. */
  agentId: string;
  /** Number of completed benign tasks the baseline was learned from. */
  tasks: number;
  /** The serialized baseline (the detector's own format, JSON). */
  model: string;
  updatedMs: number;
}

export interface ListFilter {
  tenant?: string;
  taskId?: string;
  agentId?: string;
  /** Only rows at or after this time (epoch ms). */
  sinceMs?: number;
  /** Page size (1–1000). */
  limit: number;
  /** Opaque cursor from the previous page's `nextCursor`. */
  cursor?: string;
}

export interface Page<T> {
  items: T[];
  /** Pass as `cursor` to get the next (older) page; absent on the last page. */
  nextCursor?: string;
}

export interface Store {
  /** Apply pending migrations (idempotent). Called once at start-up. */
  migrate(): Promise<void>;
  insertEvents(rows: readonly ScoredEvent[]): Promise<void>;
  insertAlerts(rows: readonly Alert[]): Promise<void>;
  insertRevocations(rows: readonly Revocation[]): Promise<void>;
  upsertTasks(rows: readonly TaskRecord[]): Promise<void>;
  saveBaselines(rows: readonly BaselineRecord[]): Promise<void>;
  /** Model calls with their cost (services/processor/spend-scoring.ts); idempotent by the call's id. */
  insertModelUsage(rows: readonly ModelUsageRow[]): Promise<void>;
  /**
   * Spend grouped by task, agent or task type over [fromMs, toMs), costliest first, at most `limit` groups; `taskId`
   * keeps one task's calls only.
   */
  spend(query: {
    tenant: string;
    by: SpendGroup;
    fromMs: number;
    toMs: number;
    limit: number;
    taskId?: string;
  }): Promise<SpendRow[]>;
  /** One task's model calls with their cost, oldest first, at most `limit` (its timeline reads them). */
  modelCallsForTask(tenant: string, taskId: string, limit: number): Promise<ModelUsageRow[]>;

  /**
   * The current record of a task, by its id or else by its declared name. Its status follows the revocations log
   * where the log is newer than the task's snapshot (a revocation is stored the moment it is decided, the snapshot
   * after the batch's events).
   */
  getTask(tenant: string, taskId: string): Promise<TaskRecord | null>;
  /** The current records of several tasks of one tenant (missing ones are left out). */
  getTasks(tenant: string, taskIds: readonly string[]): Promise<TaskRecord[]>;
  /** The first credentials of those of these tasks that were issued task tokens (the others are left out). */
  taskCredentials(tenant: string, taskIds: readonly string[]): Promise<TaskCredential[]>;
  /**
   * The tasks of a tenant that declared one of `parentTaskIds` as their parent, at most `limit`, oldest first (status
   * reconciled as for getTask).
   */
  childTasks(tenant: string, parentTaskIds: readonly string[], limit: number): Promise<TaskRecord[]>;
  /** Tasks not yet completed or revoked, for rebuilding state after a restart or rebalance. */
  listActiveTasks(tenant?: string): Promise<TaskRecord[]>;
  /** The task's events in time order (to rebuild its detector state); the first `limit` only when given. */
  eventsForTask(tenant: string, taskId: string, limit?: number): Promise<ScoredEvent[]>;
  /** The events of several tasks of a tenant, by task id, each task's in time order; tasks without events are absent. */
  eventsForTasks(tenant: string, taskIds: readonly string[]): Promise<Map<string, ScoredEvent[]>>;
  listAlerts(filter: ListFilter): Promise<Page<Alert>>;
  listRevocations(filter: ListFilter): Promise<Page<Revocation>>;
  loadBaselines(tenant?: string): Promise<BaselineRecord[]>;
  /** Row counts per table (deduplicated), for tests and the console: full-table reads, never for health checks. */
  counts(): Promise<Record<'events' | 'alerts' | 'revocations' | 'tasks' | 'baselines', number>>;
  /**
   * Resolves when the store answers and its tables exist, reading no table (readiness probes call it often);
   * rejects with a TriplineError otherwise.
   */
  ping(): Promise<void>;

  close(): Promise<void>;
}
