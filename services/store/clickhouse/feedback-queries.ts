/**
 * Operator feedback (false positives) in the `feedback` table. The table comes with migration 009; the detection
 * queries also create it on first use (idempotent), from the same DDL.
 */
import { readFileSync } from 'node:fs';

import { run, select } from './detection-context.ts';
import type { DetectionContext } from './detection-context.ts';
import { fromMicros, utcText } from './values.ts';

/**
 * DDL of the feedback table, from its migration (schemas/clickhouse/009_feedback.sql), so a store that has not
 * run that migration yet still gets the table on first use; `{db}` is the database.
 */
export const FEEDBACK_TABLE_SQL = readFileSync(
  new URL('../../../schemas/clickhouse/009_feedback.sql', import.meta.url),
  'utf8',
)
  .replace(/^--.*$/gm, '')
  .replace('{database:Identifier}', '{db}')
  .trim()
  .replace(/;$/, '');

export interface FeedbackRecord {
  id: string;
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  alertId: string;
  kind: 'false_positive';
  actor: string;
  reason: string;
  timeMs: number;
}

interface FeedbackRow {
  id: string;
  tenant: string;
  task_id: string;
  task_type: string;
  agent_id: string;
  alert_id: string;
  kind: string;
  actor: string;
  reason: string;
  time_us: number;
}

function rowToFeedback(r: FeedbackRow): FeedbackRecord {
  return {
    id: r.id,
    tenant: r.tenant,
    taskId: r.task_id,
    taskType: r.task_type,
    agentId: r.agent_id,
    alertId: r.alert_id,
    kind: 'false_positive',
    actor: r.actor,
    reason: r.reason,
    timeMs: fromMicros(r.time_us),
  };
}

const FEEDBACK_COLUMNS =
  'id, tenant, task_id, task_type, agent_id, alert_id, kind, actor, reason, toUnixTimestamp64Micro(time) AS time_us';

/** Creates the feedback table if it is missing. */
export async function createFeedbackTable(context: DetectionContext): Promise<void> {
  await run('creating the feedback table', async () => {
    await context.client.command({ query: FEEDBACK_TABLE_SQL.replaceAll('{db}', `\`${context.db}\``) });
  });
}

export async function insertFeedback(context: DetectionContext, record: FeedbackRecord): Promise<void> {
  await run('insert into feedback', async () => {
    await context.client.insert({
      table: `${context.db}.feedback`,
      format: 'JSONEachRow',
      values: [
        {
          id: record.id,
          tenant: record.tenant,
          task_id: record.taskId,
          task_type: record.taskType,
          agent_id: record.agentId,
          alert_id: record.alertId,
          kind: record.kind,
          actor: record.actor,
          reason: record.reason,
          time: utcText(record.timeMs),
        },
      ],
    });
  });
}

/** The false-positive mark of a task, if an operator set one. */
export function getFeedback(context: DetectionContext, tenant: string, taskId: string): Promise<FeedbackRecord | null> {
  return run('getFeedback', async () => {
    const rows = await select<FeedbackRow>(
      context,
      `SELECT ${FEEDBACK_COLUMNS} FROM ${context.db}.feedback FINAL WHERE tenant = {tenant:String} AND task_id = {taskId:String} AND kind = 'false_positive' LIMIT 1`,
      { tenant, taskId },
    );
    const row = rows[0];
    return row === undefined ? null : rowToFeedback(row);
  });
}

/** Every feedback record (of `tenant`, when given), oldest first. */
export function listFeedback(context: DetectionContext, tenant: string | undefined): Promise<FeedbackRecord[]> {
  return run('listFeedback', async () => {
    const rows = await select<FeedbackRow>(
      context,
      `SELECT ${FEEDBACK_COLUMNS} FROM ${context.db}.feedback FINAL ${tenant === undefined ? '' : 'WHERE tenant = {tenant:String}'} ORDER BY time, task_id`,
      tenant === undefined ? {} : { tenant },
    );
    return rows.map(rowToFeedback);
  });
}
