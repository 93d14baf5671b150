/**
 * The approvals' store over ClickHouse: the tables of schemas/clickhouse/017_approvals.sql (applied by the
 * spine's `store.migrate()` with the others). It opens its own client on the same ClickHouse as the spine's store
 * (the server at `url`, or a connection to the in-process engine at `dataDir`). Every read uses FINAL.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { ApprovalStatus, ApprovalStep } from '../../core/approvals.ts';
import { TriplineError, messageOf } from '../../shared/errors.ts';
import type {
  ApprovalFilter,
  ApprovalRecord,
  ApprovalStepRecord,
  ApprovalStore,
} from '../../killswitch/approval-store.ts';
import { INSERT_SETTINGS, QUERY_SETTINGS, isDatabaseName, openClickHouseClient } from './client.ts';
import { fromMicros, utcText, wellFormed } from './values.ts';

export interface ClickHouseApprovalStoreOptions {
  url?: string | undefined;
  username?: string;
  password?: string;
  dataDir: string;
  database: string;
}

interface ApprovalRowOut {
  id: string;
  tenant: string;
  task_id: string;
  task_type: string;
  agent_id: string;
  tool: string;
  resource: string;
  arguments: string;
  binding_hash: string;
  status: string;
  policies: string[];
  reasons: string[];
  decision_id: string;
  requested_us: number;
  expires_us: number;
  decided_us: number | null;
  decided_by: string;
  decision_reason: string;
  used_us: number | null;
  version: number;
}

interface StepRowOut {
  tenant: string;
  approval_id: string;
  task_id: string;
  step: string;
  time_us: number;
  actor: string;
  reason: string;
}

const APPROVAL_COLUMNS = `id, tenant, task_id, task_type, agent_id, tool, resource, arguments, binding_hash, status, policies, reasons,
  decision_id, toUnixTimestamp64Micro(requested_at) AS requested_us, toUnixTimestamp64Micro(expires_at) AS expires_us,
  toUnixTimestamp64Micro(decided_at) AS decided_us, decided_by, decision_reason, toUnixTimestamp64Micro(used_at) AS used_us, version`;

const nullableMs = (us: number | null): number | null => (us === null ? null : fromMicros(us));

function rowToApproval(r: ApprovalRowOut): ApprovalRecord {
  return {
    id: r.id,
    tenant: r.tenant,
    taskId: r.task_id,
    taskType: r.task_type,
    agentId: r.agent_id,
    tool: r.tool,
    resource: r.resource,
    arguments: r.arguments,
    bindingHash: r.binding_hash,
    status: r.status as ApprovalStatus,
    policies: r.policies,
    reasons: r.reasons,
    decisionId: r.decision_id,
    requestedMs: fromMicros(r.requested_us),
    expiresMs: fromMicros(r.expires_us),
    decidedMs: nullableMs(r.decided_us),
    decidedBy: r.decided_by,
    decisionReason: r.decision_reason,
    usedMs: nullableMs(r.used_us),
    version: r.version,
  };
}

function approvalToRow(r: ApprovalRecord): object {
  return {
    id: r.id,
    tenant: r.tenant,
    task_id: r.taskId,
    task_type: r.taskType,
    agent_id: r.agentId,
    tool: r.tool,
    resource: r.resource,
    arguments: r.arguments,
    binding_hash: r.bindingHash,
    status: r.status,
    policies: r.policies,
    reasons: r.reasons,
    decision_id: r.decisionId,
    requested_at: utcText(r.requestedMs),
    expires_at: utcText(r.expiresMs),
    decided_at: r.decidedMs === null ? null : utcText(r.decidedMs),
    decided_by: r.decidedBy,
    decision_reason: r.decisionReason,
    used_at: r.usedMs === null ? null : utcText(r.usedMs),
    version: r.version,
  };
}

export async function openClickHouseApprovalStore(options: ClickHouseApprovalStoreOptions): Promise<ApprovalStore> {
  if (!isDatabaseName(options.database))
    throw new TriplineError(
      'CONFIG_INVALID',
      `database must be letters, digits and _ (got ${JSON.stringify(options.database)})`,
    );
  const client = openClickHouseClient(options, { application: 'tripline-approvals', settings: QUERY_SETTINGS });
  try {
    await client.query({ query: 'SELECT 1', format: 'JSONEachRow' }).then((result) => result.json());
  } catch (error) {
    await client.close().catch(() => undefined);
    throw new TriplineError('STORE_UNAVAILABLE', `The approvals cannot reach ClickHouse: ${messageOf(error)}`, {
      cause: error,
    });
  }
  return new ClickHouseApprovalStore(client, options.database);
}

class ClickHouseApprovalStore implements ApprovalStore {
  readonly #client: ClickHouseClient;
  readonly #db: string;
  #closing: Promise<void> | undefined;
  readonly #inflight = new Set<Promise<unknown>>();

  constructor(client: ClickHouseClient, database: string) {
    this.#client = client;
    this.#db = database;
  }

  async #run<T>(operation: string, work: () => Promise<T>): Promise<T> {
    if (this.#closing !== undefined)
      throw new TriplineError('SHUTTING_DOWN', `The approvals store is closed; ${operation} was not run`);
    const promise = work();
    this.#inflight.add(promise);
    try {
      return await promise;
    } catch (error) {
      if (error instanceof TriplineError) throw error;
      throw new TriplineError('STORE_UNAVAILABLE', `ClickHouse ${operation} failed: ${messageOf(error)}`, {
        cause: error,
        details: { operation },
      });
    } finally {
      this.#inflight.delete(promise);
    }
  }

  #select<T>(operation: string, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
    return this.#run(operation, async () => {
      const result = await this.#client.query({ query, format: 'JSONEachRow', query_params: params });
      return result.json<T>();
    });
  }

  async #insert(table: string, values: object[]): Promise<void> {
    if (values.length === 0) return;
    await this.#run(`insert into ${table}`, async () => {
      await this.#client.insert({
        table: `${this.#db}.${table}`,
        values: values.map(wellFormed),
        format: 'JSONEachRow',
        clickhouse_settings: INSERT_SETTINGS,
      });
    });
  }

  upsertApprovals(rows: readonly ApprovalRecord[]): Promise<void> {
    return this.#insert('approvals', rows.map(approvalToRow));
  }

  insertApprovalSteps(rows: readonly ApprovalStepRecord[]): Promise<void> {
    return this.#insert(
      'approval_steps',
      rows.map((r) => ({
        tenant: r.tenant,
        approval_id: r.approvalId,
        task_id: r.taskId,
        step: r.step,
        time: utcText(r.timeMs),
        actor: r.actor,
        reason: r.reason,
      })),
    );
  }

  async getApproval(tenant: string, id: string): Promise<ApprovalRecord | null> {
    const rows = await this.#select<ApprovalRowOut>(
      'getApproval',
      `SELECT ${APPROVAL_COLUMNS} FROM ${this.#db}.approvals FINAL WHERE tenant = {tenant:String} AND id = {id:String} LIMIT 1`,
      { tenant, id },
    );
    const row = rows[0];
    return row === undefined ? null : rowToApproval(row);
  }

  async listApprovals(filter: ApprovalFilter): Promise<ApprovalRecord[]> {
    const where = ['tenant = {tenant:String}'];
    const params: Record<string, unknown> = { tenant: filter.tenant, limit: Math.max(1, Math.min(1000, filter.limit)) };
    if (filter.status !== undefined) {
      where.push('status = {status:String}');
      params.status = filter.status;
    }
    if (filter.taskId !== undefined) {
      where.push('task_id = {taskId:String}');
      params.taskId = filter.taskId;
    }
    const rows = await this.#select<ApprovalRowOut>(
      'listApprovals',
      `SELECT ${APPROVAL_COLUMNS} FROM ${this.#db}.approvals FINAL WHERE ${where.join(' AND ')}
       ORDER BY requested_at DESC, id DESC LIMIT {limit:UInt32}`,
      params,
    );
    return rows.map(rowToApproval);
  }

  async listOpenApprovals(nowMs: number): Promise<ApprovalRecord[]> {
    const rows = await this.#select<ApprovalRowOut>(
      'listOpenApprovals',
      `SELECT ${APPROVAL_COLUMNS} FROM ${this.#db}.approvals FINAL
       WHERE status IN ('pending', 'approved') OR (status = 'denied' AND expires_at > {now:DateTime64(6, 'UTC')})
       ORDER BY requested_at LIMIT 100000`,
      { now: utcText(nowMs) },
    );
    return rows.map(rowToApproval);
  }

  async listTaskApprovalSteps(tenant: string, taskId: string): Promise<ApprovalStepRecord[]> {
    const rows = await this.#select<StepRowOut>(
      'listTaskApprovalSteps',
      `SELECT tenant, approval_id, task_id, step, toUnixTimestamp64Micro(time) AS time_us, actor, reason
       FROM ${this.#db}.approval_steps FINAL WHERE tenant = {tenant:String} AND task_id = {taskId:String}
       ORDER BY time, indexOf(['requested', 'approved', 'denied', 'expired', 'used'], step), approval_id`,
      { tenant, taskId },
    );
    return rows.map((r) => ({
      tenant: r.tenant,
      approvalId: r.approval_id,
      taskId: r.task_id,
      step: r.step as ApprovalStep,
      timeMs: fromMicros(r.time_us),
      actor: r.actor,
      reason: r.reason,
    }));
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#inflight]);
      await this.#client.close();
    })();
    return this.#closing;
  }
}
