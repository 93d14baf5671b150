/**
 * Read queries of the built-in console (services/api/console.ts) that the Store port does not offer: the tasks
 * people look at (riskiest first) and events per kind over the last minutes. Read-only, on the same ClickHouse
 * the store uses: a server over HTTP when `url` is set, else the in-process engine (chdb) at `dataDir`, which
 * lets several connections of one process share its data directory (the store's own connection stays the
 * only writer). Same read rule as the store: every table is read with FINAL.
 */
import { EVENT_KINDS } from '../../../schemas/conventions.ts';
import type { EventKind } from '../../../schemas/conventions.ts';
import type { Decision, Regime, TaskStatus } from '../../../schemas/events.ts';
import { TriplineError, messageOf } from '../../shared/errors.ts';
import { QUERY_SETTINGS, isDatabaseName, openClickHouseClient } from './client.ts';

/** Where the store is: the `store` part of TriplineConfig. */
export interface ConsoleQueryOptions {
  /** A ClickHouse server's HTTP(S) endpoint; when set, `dataDir` is ignored. */
  url: string | undefined;
  username?: string;
  password?: string;
  /** The embedded engine's data directory (the store's). */
  dataDir: string;
  database: string;
}

export interface ConsoleTask {
  taskId: string;
  taskType: string;
  agentId: string;
  status: TaskStatus;
  score: number;
  decision: Decision;
  regime: Regime;
  reasons: string[];
  counts: Record<EventKind, number>;
  startedMs: number;
  lastEventMs: number;
  /** The parent task it declared ('' for none) and how many tasks declared it their parent. */
  parentTaskId: string;
  children: number;
  /** What its model calls cost and used (null without any: docs/budgets.md). */
  spend?: { usd: number; tokens: number } | null;
}

export interface TaskTotals {
  tasks: number;
  active: number;
  revoked: number;
  flagged: number;
}

export interface Activity {
  /** Start of the first bucket, epoch ms. */
  startMs: number;
  bucketMs: number;
  /** Events per kind and bucket, oldest first, by the time Tripline stored them (a call recorded twice counts once). */
  series: Record<EventKind, number[]>;
}

export interface ConsoleQueries {
  /** Revoked tasks first, then by score and recency. */
  tasks(tenant: string, limit: number): Promise<{ items: ConsoleTask[]; totals: TaskTotals }>;
  /** Events per kind in `buckets` buckets of `bucketMs` ending at `nowMs`. */
  activity(tenant: string, options: { nowMs: number; bucketMs: number; buckets: number }): Promise<Activity>;
  close(): Promise<void>;
}

/** Events whose span started this long before the window are not looked at (lets ClickHouse skip old parts). */
const LATE_ARRIVAL_MS = 3_600_000;

interface TaskRow {
  task_id: string;
  task_type: string;
  agent_id: string;
  status: TaskStatus;
  score: number;
  decision: Decision;
  regime: Regime;
  reasons: string[];
  count_tool_call: number;
  count_data_access: number;
  count_privilege_change: number;
  started_ms: number;
  last_event_ms: number;
  parent_task_id: string;
}

export async function openConsoleQueries(options: ConsoleQueryOptions): Promise<ConsoleQueries> {
  if (!isDatabaseName(options.database)) {
    throw new TriplineError(
      'CONFIG_INVALID',
      `database must be letters, digits and _ (got ${JSON.stringify(options.database)})`,
    );
  }
  const db = options.database;
  const client = openClickHouseClient(options, { application: 'tripline-console', settings: QUERY_SETTINGS });

  try {
    await client.query({ query: 'SELECT 1', format: 'JSONEachRow' }).then((result) => result.json());
  } catch (error) {
    await client.close().catch(() => undefined);
    throw new TriplineError('STORE_UNAVAILABLE', `The console cannot read ClickHouse: ${messageOf(error)}`, {
      cause: error,
    });
  }

  async function select<T>(query: string, params: Record<string, unknown>): Promise<T[]> {
    try {
      const result = await client.query({ query, format: 'JSONEachRow', query_params: params });
      return await result.json<T>();
    } catch (error) {
      throw new TriplineError('STORE_UNAVAILABLE', `ClickHouse console query failed: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }

  return {
    async tasks(tenant, limit) {
      const [rows, totals] = await Promise.all([
        select<TaskRow>(
          `SELECT task_id, task_type, agent_id, status, score, decision, regime, reasons, parent_task_id,
                  count_tool_call, count_data_access, count_privilege_change,
                  toUnixTimestamp64Milli(started_at) AS started_ms, toUnixTimestamp64Milli(last_event_at) AS last_event_ms
           FROM ${db}.tasks FINAL
           WHERE tenant = {tenant:String}
           ORDER BY status = 'revoked' DESC, score DESC, last_event_at DESC, task_id
           LIMIT {limit:UInt32}`,
          { tenant, limit },
        ),
        select<TaskTotals>(
          `SELECT count() AS tasks, countIf(status = 'active') AS active, countIf(status = 'revoked') AS revoked, countIf(decision != 'allow') AS flagged
           FROM ${db}.tasks FINAL
           WHERE tenant = {tenant:String}`,
          { tenant },
        ),
      ]);
      const children = new Map(
        rows.length === 0
          ? []
          : (
              await select<{ parent_task_id: string; children: number }>(
                `SELECT parent_task_id, count() AS children FROM ${db}.tasks FINAL
                 WHERE tenant = {tenant:String} AND parent_task_id IN {ids:Array(String)}
                 GROUP BY parent_task_id`,
                { tenant, ids: rows.map((row) => row.task_id) },
              )
            ).map((row) => [row.parent_task_id, row.children]),
      );
      // What each listed task's model calls cost (docs/budgets.md); tasks without any are left out.
      const spend = new Map(
        rows.length === 0
          ? []
          : (
              await select<{ task_id: string; cost_usd: number; tokens: number | string }>(
                `SELECT task_id, sum(cost_usd) AS cost_usd, sum(input_tokens + output_tokens) AS tokens
                 FROM ${db}.model_usage FINAL
                 WHERE tenant = {tenant:String} AND task_id IN {ids:Array(String)}
                 GROUP BY task_id`,
                { tenant, ids: rows.map((row) => row.task_id) },
              )
            ).map((row) => [row.task_id, { usd: row.cost_usd, tokens: Number(row.tokens) }]),
      );
      return {
        items: rows.map((row) => ({
          taskId: row.task_id,
          taskType: row.task_type,
          agentId: row.agent_id,
          status: row.status,
          score: row.score,
          decision: row.decision,
          regime: row.regime,
          reasons: row.reasons,
          counts: {
            tool_call: row.count_tool_call,
            data_access: row.count_data_access,
            privilege_change: row.count_privilege_change,
          },
          startedMs: row.started_ms,
          lastEventMs: row.last_event_ms,
          parentTaskId: row.parent_task_id,
          children: children.get(row.task_id) ?? 0,
          spend: spend.get(row.task_id) ?? null,
        })),
        totals: totals[0] ?? { tasks: 0, active: 0, revoked: 0, flagged: 0 },
      };
    },

    async activity(tenant, { nowMs, bucketMs, buckets }) {
      const startMs = Math.floor(nowMs / bucketMs) * bucketMs - (buckets - 1) * bucketMs;
      const rows = await select<{ kind: string; bucket: number; n: number }>(
        `SELECT kind, intDiv(toUnixTimestamp64Milli(ingested_at) - {startMs:Int64}, {bucketMs:UInt32}) AS bucket, count() AS n
         FROM ${db}.events FINAL
         WHERE tenant = {tenant:String}
           AND start_time >= fromUnixTimestamp64Milli({horizonMs:Int64}, 'UTC')
           AND ingested_at >= fromUnixTimestamp64Milli({startMs:Int64}, 'UTC')
           AND JSONExtractString(tool_facts, 'sameCallOf') = ''
         GROUP BY kind, bucket`,
        { tenant, startMs, bucketMs, horizonMs: startMs - LATE_ARRIVAL_MS },
      );
      const series = Object.fromEntries(
        EVENT_KINDS.map((kind) => [kind, new Array<number>(buckets).fill(0)]),
      ) as Record<EventKind, number[]>;
      for (const row of rows) {
        const values = series[row.kind as EventKind] as number[] | undefined;
        if (values === undefined) continue;
        const index = Math.min(buckets - 1, Math.max(0, row.bucket));
        values[index] = (values[index] ?? 0) + row.n;
      }
      return { startMs, bucketMs, series };
    },

    close: () => client.close(),
  };
}
