/**
 * Detection read models over ClickHouse, beside the Store port: what shadow mode would have done over a time
 * range, alerts by id, operator feedback (false positives), and what the learner rebuilds baselines from.
 * Takes a `@clickhouse/client` client and the database Tripline's tables live in; the same SQL runs on a
 * ClickHouse server and on the in-process engine (chdb). Every read says FINAL (see clickhouse-store.ts).
 *
 * The `feedback` table comes with migration 009; `ensureSchema` also creates it on first use (idempotent).
 */
import { createClient } from '@clickhouse/client';
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import { mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import type { AgentEvent, Alert, Decision, Regime } from '../../../schemas/events.ts';
import { TriplineError, messageOf } from '../../shared/errors.ts';
import { ALERT_COLUMNS, EVENT_COLUMNS, rowToAlert, rowToEvent } from './store.ts';
import type { AlertRowOut, EventRowOut } from './store.ts';
import { chdbConnection } from './chdb.ts';

const DATABASE_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
const QUERY_SETTINGS: ClickHouseSettings = { output_format_json_quote_64bit_integers: 0 };
/** Largest number of task ids sent in one `IN` list. */
const ID_CHUNK = 500;

/**
 * DDL of the feedback table, from its migration (schemas/clickhouse/009_feedback.sql), so a store that has not
 * run that migration yet still gets the table on first use; `{db}` is the database.
 */
export const FEEDBACK_TABLE_SQL = readFileSync(new URL('../../../schemas/clickhouse/009_feedback.sql', import.meta.url), 'utf8')
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

/** One task's alerts in a range, collapsed: its strongest decision, live or shadow. */
export interface TaskAlertSummary {
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  shadow: boolean;
  decision: Exclude<Decision, 'allow'>;
  score: number;
  regime: Regime;
  reasons: string[];
  firstMs: number;
}

/** A completed task the learner may learn from. */
export interface LearnableTask {
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  startedMs: number;
  /** The task's end (its last event when it never ended explicitly). */
  endMs: number;
  /** An operator marked one of its alerts a false positive. */
  markedFalsePositive: boolean;
  /** Its only acted-on alerts came in its type's warm-up (rules regime, no revocation): held, as online. */
  heldInWarmup: boolean;
}

export interface TimeRange {
  tenant: string;
  fromMs: number;
  toMs: number;
  taskType?: string;
}

export interface DetectionQueries {
  /** Create the feedback table if it is missing (idempotent). */
  ensureSchema(): Promise<void>;
  getAlert(tenant: string, alertId: string): Promise<Alert | null>;
  /** Per task with alerts in the range: the strongest decision, separately for shadow and live alerts. */
  alertsInRange(range: TimeRange): Promise<TaskAlertSummary[]>;
  /** Tasks started in the range, per task type. */
  taskCountsByType(range: TimeRange): Promise<Map<string, number>>;
  insertFeedback(record: FeedbackRecord): Promise<void>;
  getFeedback(tenant: string, taskId: string): Promise<FeedbackRecord | null>;
  listFeedback(tenant?: string): Promise<FeedbackRecord[]>;
  /**
   * Tasks to learn from, in the order they ended: completed tasks with no live alert and never revoked
   * (the processor's rule), plus ended tasks an operator marked false positive. Keyset paging.
   */
  learnableTasks(options: {
    tenant?: string;
    after?: { endMs: number; tenant: string; taskId: string };
    limit: number;
    /** Shadow-mode alerts also keep a task out (the processor counts only acted-on alerts today). @default false */
    shadowAlertsBlock?: boolean;
  }): Promise<LearnableTask[]>;
  /** Events of several tasks of a tenant, per task in time order (as `Store.eventsForTask`). */
  eventsForTasks(tenant: string, taskIds: readonly string[]): Promise<Map<string, AgentEvent[]>>;
}

const fromMicros = (us: number): number => us / 1000;
const toMicros = (ms: number): number => Math.round(ms * 1000);

function utcText(ms: number): string {
  const us = toMicros(ms);
  const seconds = Math.floor(us / 1_000_000);
  const fraction = us - seconds * 1_000_000;
  const iso = new Date(seconds * 1000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${String(fraction).padStart(6, '0')}`;
}

function checkRange(range: TimeRange): void {
  if (!Number.isFinite(range.fromMs) || !Number.isFinite(range.toMs) || range.fromMs < 0 || range.toMs < range.fromMs) {
    throw new TriplineError('VALIDATION_FAILED', `the time range must be epoch milliseconds with from <= to (got ${String(range.fromMs)} .. ${String(range.toMs)})`);
  }
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

export function createDetectionQueries(client: ClickHouseClient, database: string): DetectionQueries {
  if (!DATABASE_PATTERN.test(database)) throw new TriplineError('CONFIG_INVALID', `database must be letters, digits and _ (got ${JSON.stringify(database)})`);
  const db = database;
  let schema: Promise<void> | undefined;

  async function run<T>(operation: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof TriplineError) throw error;
      throw new TriplineError('STORE_UNAVAILABLE', `ClickHouse ${operation} failed: ${messageOf(error)}`, { cause: error, details: { operation } });
    }
  }

  async function select<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
    const result = await client.query({ query, format: 'JSONEachRow', query_params: params, clickhouse_settings: QUERY_SETTINGS });
    return result.json<T>();
  }

  const ensureSchema = (): Promise<void> => {
    schema ??= run('creating the feedback table', async () => {
      await client.command({ query: FEEDBACK_TABLE_SQL.replaceAll('{db}', `\`${db}\``) });
    }).catch((error: unknown) => {
      schema = undefined;
      throw error;
    });
    return schema;
  };

  const FEEDBACK_COLUMNS = 'id, tenant, task_id, task_type, agent_id, alert_id, kind, actor, reason, toUnixTimestamp64Micro(time) AS time_us';

  return {
    ensureSchema,

    getAlert(tenant, alertId) {
      return run('getAlert', async () => {
        const rows = await select<AlertRowOut>(
          `SELECT ${ALERT_COLUMNS}
           FROM ${db}.alerts FINAL WHERE tenant = {tenant:String} AND id = {id:String} LIMIT 1`,
          { tenant, id: alertId },
        );
        const row = rows[0];
        return row === undefined ? null : rowToAlert(row);
      });
    },

    alertsInRange(range) {
      checkRange(range);
      return run('alertsInRange', async () => {
        const rows = await select<{
          tenant: string;
          task_id: string;
          task_type: string;
          agent_id: string;
          shadow: boolean;
          revoke: number;
          top_score: number;
          regime: string;
          reasons: string[];
          first_us: number;
        }>(
          `SELECT tenant, task_id, task_type, agent_id, shadow, max(decision = 'revoke') AS revoke, max(score) AS top_score,
                  argMax(regime, score) AS regime, argMax(reasons, score) AS reasons, min(toUnixTimestamp64Micro(time)) AS first_us
           FROM ${db}.alerts FINAL
           WHERE tenant = {tenant:String}
             AND time >= fromUnixTimestamp64Micro({fromUs:Int64}, 'UTC') AND time < fromUnixTimestamp64Micro({toUs:Int64}, 'UTC')
             ${range.taskType === undefined ? '' : 'AND task_type = {taskType:String}'}
           GROUP BY tenant, task_id, task_type, agent_id, shadow
           ORDER BY top_score DESC, task_id`,
          { tenant: range.tenant, fromUs: toMicros(range.fromMs), toUs: toMicros(range.toMs), ...(range.taskType === undefined ? {} : { taskType: range.taskType }) },
        );
        return rows.map((r) => ({
          tenant: r.tenant,
          taskId: r.task_id,
          taskType: r.task_type,
          agentId: r.agent_id,
          shadow: r.shadow,
          decision: r.revoke > 0 ? 'revoke' : 'alert',
          score: r.top_score,
          regime: r.regime as Regime,
          reasons: r.reasons,
          firstMs: fromMicros(r.first_us),
        }));
      });
    },

    taskCountsByType(range) {
      checkRange(range);
      return run('taskCountsByType', async () => {
        const rows = await select<{ task_type: string; tasks: number }>(
          `SELECT task_type, count() AS tasks FROM ${db}.tasks FINAL
           WHERE tenant = {tenant:String}
             AND started_at >= fromUnixTimestamp64Micro({fromUs:Int64}, 'UTC') AND started_at < fromUnixTimestamp64Micro({toUs:Int64}, 'UTC')
             ${range.taskType === undefined ? '' : 'AND task_type = {taskType:String}'}
           GROUP BY task_type ORDER BY task_type`,
          { tenant: range.tenant, fromUs: toMicros(range.fromMs), toUs: toMicros(range.toMs), ...(range.taskType === undefined ? {} : { taskType: range.taskType }) },
        );
        return new Map(rows.map((r) => [r.task_type, r.tasks]));
      });
    },

    async insertFeedback(record) {
      await ensureSchema();
      await run('insert into feedback', async () => {
        await client.insert({
          table: `${db}.feedback`,
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
    },

    async getFeedback(tenant, taskId) {
      await ensureSchema();
      return run('getFeedback', async () => {
        const rows = await select<FeedbackRow>(
          `SELECT ${FEEDBACK_COLUMNS} FROM ${db}.feedback FINAL WHERE tenant = {tenant:String} AND task_id = {taskId:String} AND kind = 'false_positive' LIMIT 1`,
          { tenant, taskId },
        );
        const row = rows[0];
        return row === undefined ? null : rowToFeedback(row);
      });
    },

    async listFeedback(tenant) {
      await ensureSchema();
      return run('listFeedback', async () => {
        const rows = await select<FeedbackRow>(
          `SELECT ${FEEDBACK_COLUMNS} FROM ${db}.feedback FINAL ${tenant === undefined ? '' : 'WHERE tenant = {tenant:String}'} ORDER BY time, task_id`,
          tenant === undefined ? {} : { tenant },
        );
        return rows.map(rowToFeedback);
      });
    },

    async learnableTasks(options) {
      await ensureSchema();
      if (!Number.isInteger(options.limit) || options.limit < 1 || options.limit > 100_000) {
        throw new TriplineError('VALIDATION_FAILED', `limit must be an integer from 1 to 100000 (got ${String(options.limit)})`);
      }
      const conditions: string[] = [];
      const params: Record<string, unknown> = { limit: options.limit };
      if (options.tenant !== undefined) {
        conditions.push('tenant = {tenant:String}');
        params.tenant = options.tenant;
      }
      if (options.after !== undefined) {
        conditions.push('(end_us, tenant, task_id) > ({afterUs:Int64}, {afterTenant:String}, {afterTask:String})');
        params.afterUs = toMicros(options.after.endMs);
        params.afterTenant = options.after.tenant;
        params.afterTask = options.after.taskId;
      }
      return run('learnableTasks', async () => {
        // A warm-up alert (rules regime, decision alert) holds a task instead of keeping it out, as the processor does
        // (services/core/detect/score.ts, learningEffect): a hard rule in warm-up always revokes.
        const acted = options.shadowAlertsBlock === true ? '1' : 'NOT shadow';
        const rows = await select<{ tenant: string; task_id: string; task_type: string; agent_id: string; started_us: number; end_us: number; marked: number; held: number }>(
          `SELECT * FROM (
             SELECT tenant, task_id, task_type, agent_id, toUnixTimestamp64Micro(started_at) AS started_us,
                    toUnixTimestamp64Micro(coalesce(ended_at, last_event_at)) AS end_us,
                    (tenant, task_id) IN (SELECT tenant, task_id FROM ${db}.feedback FINAL WHERE kind = 'false_positive') AS marked,
                    (tenant, task_id) IN (SELECT tenant, task_id FROM ${db}.alerts FINAL WHERE ${acted} AND regime = 'rules' AND decision = 'alert') AS held,
                    status
             FROM ${db}.tasks FINAL
             WHERE status != 'active'
           )
           WHERE (marked
                  OR (status = 'completed'
                      AND (tenant, task_id) NOT IN (SELECT tenant, task_id FROM ${db}.alerts FINAL WHERE ${acted} AND NOT (regime = 'rules' AND decision = 'alert'))
                      AND (tenant, task_id) NOT IN (SELECT tenant, task_id FROM ${db}.revocations FINAL WHERE action = 'revoke')))
             ${conditions.length === 0 ? '' : `AND ${conditions.join(' AND ')}`}
           ORDER BY end_us, tenant, task_id
           LIMIT {limit:UInt32}`,
          params,
        );
        return rows.map((r) => ({
          tenant: r.tenant,
          taskId: r.task_id,
          taskType: r.task_type,
          agentId: r.agent_id,
          startedMs: fromMicros(r.started_us),
          endMs: fromMicros(r.end_us),
          markedFalsePositive: r.marked > 0,
          heldInWarmup: r.held > 0 && r.marked === 0,
        }));
      });
    },

    eventsForTasks(tenant, taskIds) {
      return run('eventsForTasks', async () => {
        const out = new Map<string, AgentEvent[]>();
        for (let i = 0; i < taskIds.length; i += ID_CHUNK) {
          const chunk = taskIds.slice(i, i + ID_CHUNK);
          const rows = await select<EventRowOut>(
            `SELECT ${EVENT_COLUMNS} FROM ${db}.events FINAL
             WHERE tenant = {tenant:String} AND task_id IN {taskIds:Array(String)}
             ORDER BY task_id, start_time, end_time, id`,
            { tenant, taskIds: chunk },
          );
          for (const row of rows) {
            const list = out.get(row.task_id) ?? [];
            list.push(rowToEvent(row).event);
            out.set(row.task_id, list);
          }
        }
        return out;
      });
    },
  };
}

export interface DetectionClientOptions {
  /** A ClickHouse server's HTTP(S) URL; unset = the in-process engine at `dataDir`. */
  url?: string | undefined;
  username?: string;
  password?: string;
  dataDir: string;
}

/**
 * A client of its own, for processes that have no store open (the learner) or before the store shares its
 * client. On the in-process engine it joins the process's data directory (libchdb lets connections share it; it
 * must be the directory any store in this process uses, and the main thread).
 */
export function openDetectionClient(options: DetectionClientOptions): ClickHouseClient {
  if (options.url !== undefined && options.url !== '') {
    return createClient({
      url: options.url,
      ...(options.username === undefined ? {} : { username: options.username }),
      ...(options.password === undefined ? {} : { password: options.password }),
      application: 'tripline-detection',
      clickhouse_settings: QUERY_SETTINGS,
    });
  }
  if (!isMainThread) throw new TriplineError('CONFIG_INVALID', 'The embedded store (chdb) must be used from the main thread');
  mkdirSync(options.dataDir, { recursive: true });
  const connection = chdbConnection(realpathSync(options.dataDir));
  return createClient({ connection, clickhouse_settings: QUERY_SETTINGS });
}
