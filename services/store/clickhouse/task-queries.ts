/** Reads of the `tasks` table, each task's status reconciled with the revocations log. */
import type { ClickHouseClient } from '@clickhouse/client';

import type { TaskCredential, TaskRecord } from '../store.ts';
import type { Reader } from './reader.ts';
import { TASK_COLUMNS, rowToTask } from './rows.ts';
import type { TaskRowOut } from './rows.ts';

/** The task `taskId` of `tenant`, or the one that declared `taskId` as its name. */
export async function findTask(reader: Reader, tenant: string, taskId: string): Promise<TaskRecord | null> {
  const rows = await selectTasks(reader, 'tenant = {tenant:String} AND task_id = {taskId:String}', { tenant, taskId });
  const row = rows[0] ?? (await taskByName(reader, tenant, taskId));
  return row === undefined ? null : rowToTask(row);
}

/** The tasks of `tenant` among `taskIds` (those that exist), read over `client` when given. */
export async function findTasks(
  reader: Reader,
  tenant: string,
  taskIds: readonly string[],
  client?: ClickHouseClient,
): Promise<TaskRecord[]> {
  const rows = await selectTasks(
    reader,
    'tenant = {tenant:String} AND task_id IN {taskIds:Array(String)}',
    { tenant, taskIds: [...taskIds] },
    {},
    client,
  );
  return rows.map(rowToTask);
}

/** The first token issued to each of these tasks that has one (credentials table). */
export async function findTaskCredentials(
  reader: Reader,
  tenant: string,
  taskIds: readonly string[],
): Promise<TaskCredential[]> {
  const rows = (await reader.select(
    `SELECT task_id, argMin(task_type, issued_at) AS task_type, argMin(agent_id, issued_at) AS agent_id,
            toUnixTimestamp64Milli(min(issued_at)) AS issued_ms
     FROM ${reader.db}.credentials FINAL
     WHERE tenant = {tenant:String} AND task_id IN {taskIds:Array(String)}
     GROUP BY task_id`,
    { tenant, taskIds: [...taskIds] },
  )) as { task_id: string; task_type: string; agent_id: string; issued_ms: number | string }[];
  return rows.map((row) => ({
    tenant,
    taskId: row.task_id,
    taskType: row.task_type,
    agentId: row.agent_id,
    issuedMs: Number(row.issued_ms),
  }));
}

/** The tasks of `tenant` that declared one of `parentTaskIds` as their parent, oldest first, at most `limit`. */
export async function childTasksOf(
  reader: Reader,
  tenant: string,
  parentTaskIds: readonly string[],
  limit: number,
): Promise<TaskRecord[]> {
  const children = (await reader.select(
    `SELECT task_id FROM ${reader.db}.tasks FINAL
     WHERE tenant = {tenant:String} AND parent_task_id IN {parents:Array(String)}
     ORDER BY started_at, task_id LIMIT {limit:UInt32}`,
    { tenant, parents: [...parentTaskIds], limit },
  )) as { task_id: string }[];
  if (children.length === 0) return [];
  const rows = await selectTasks(
    reader,
    'tenant = {tenant:String} AND task_id IN {taskIds:Array(String)}',
    { tenant, taskIds: children.map((child) => child.task_id) },
    { orderBy: 'started_us, task_id' },
  );
  return rows.map(rowToTask);
}

/** The active tasks (of `tenant`, or of every tenant), oldest first. */
export async function activeTasks(reader: Reader, tenant: string | undefined): Promise<TaskRecord[]> {
  const rows = await selectTasks(
    reader,
    tenant === undefined ? '1' : 'tenant = {tenant:String}',
    tenant === undefined ? {} : { tenant },
    {
      where: "status = 'active'",
      orderBy: 'tenant, started_us, task_id',
    },
  );
  return rows.map(rowToTask);
}

/** The task that took `name` as its declared name (the newest, should two traces have declared it). */
async function taskByName(reader: Reader, tenant: string, name: string): Promise<TaskRowOut | undefined> {
  const named = (await reader.select(
    `SELECT task_id FROM ${reader.db}.tasks FINAL WHERE tenant = {tenant:String} AND task_name = {name:String} ORDER BY version DESC LIMIT 1`,
    { tenant, name },
  )) as { task_id: string }[];
  const taskId = named[0]?.task_id;
  if (taskId === undefined) return undefined;
  return (await selectTasks(reader, 'tenant = {tenant:String} AND task_id = {taskId:String}', { tenant, taskId }))[0];
}

/**
 * Task records with their status reconciled with the revocations log. A revocation (or restore) row is written
 * the moment it is decided, the task's snapshot afterwards (its version is the microsecond it was taken): a
 * process that dies in between leaves a snapshot older than the kill, and whoever rebuilds the task from the
 * store must not miss the kill (or the restore). So the log's latest row wins when it is newer than the
 * snapshot. `filter` applies to both tables (tenant and task_id only); `outer.where` to the reconciled rows.
 */
async function selectTasks(
  reader: Reader,
  filter: string,
  params: Record<string, unknown>,
  outer: { where?: string; orderBy?: string } = {},
  client?: ClickHouseClient,
): Promise<TaskRowOut[]> {
  const db = reader.db;
  return (await reader.select(
    `SELECT ${TASK_COLUMNS} FROM (
       SELECT t.* REPLACE (multiIf(
         toUnixTimestamp64Micro(r.last_time) <= t.version, t.status,
         r.last_action = 'revoke', 'revoked',
         t.status = 'revoked', if(t.ended_at IS NULL, 'active', 'completed'),
         t.status) AS status)
       FROM (SELECT * FROM ${db}.tasks FINAL WHERE ${filter}) AS t
       LEFT JOIN (
         SELECT tenant, task_id, argMax(action, time) AS last_action, max(time) AS last_time
         FROM ${db}.revocations FINAL WHERE ${filter} GROUP BY tenant, task_id
       ) AS r ON t.tenant = r.tenant AND t.task_id = r.task_id
     )
     ${outer.where === undefined ? '' : `WHERE ${outer.where}`}
     ${outer.orderBy === undefined ? '' : `ORDER BY ${outer.orderBy}`}`,
    params,
    client,
  )) as TaskRowOut[];
}
