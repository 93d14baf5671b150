/**
 * The store port over ClickHouse: a ClickHouse server over HTTP when `url` is set, else the in-process engine
 * (chdb) at `dataDir`. Both run the same SQL through `@clickhouse/client`; only the connection differs.
 *
 * Reading rule (why FINAL): every table is a ReplacingMergeTree, and replays insert rows again (on a
 * non-replicated MergeTree `insert_deduplication_token` does nothing unless `non_replicated_deduplication_window`
 * is set, and a replay may come in a different batch anyway). Merges collapse the copies at an unknown time, so
 * every read says FINAL, which deduplicates at query time whether or not the parts have merged. FINAL is chosen
 * over `argMax(...) GROUP BY id` or `LIMIT 1 BY id` because it keeps whole rows (no per-column argMax over 40
 * columns), lets `WHERE`/`ORDER BY` stay plain SQL, and is what a Grafana panel writes too
 * (`FROM tripline.events FINAL`). Filters on non-key columns (status, time) are applied after the FINAL merge
 * (ClickHouse does not move them to PREWHERE under FINAL), so a task whose newest version is `completed` is not
 * listed as active because an older version was. The price: a sorting key must be fixed by the id. For events it
 * is (tenant, task_id, start_time, id), all taken from the one span the id names; alerts and revocations sort by
 * (tenant, id) alone.
 *
 * chdb runs on the calling thread's libuv pool and must only be used from the main thread (it hangs after use
 * from a worker thread), and libchdb binds one data directory per process.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { Readable } from 'node:stream';

import type { Alert, Revocation } from '../../../schemas/events.ts';
import { TriplineError, messageOf } from '../../shared/errors.ts';
import type {
  BaselineRecord,
  ListFilter,
  ModelUsageRow,
  Page,
  ScoredEvent,
  SpendGroup,
  SpendRow,
  Store,
  TaskCredential,
  TaskRecord,
} from '../store.ts';
import { checkUsage, spendBy, taskModelCalls, usageToRow } from './spend-queries.ts';
import {
  BULK_INSERT_SETTINGS_SQL,
  WITHOUT_QUERY_SETTINGS,
  embeddedClient,
  isDatabaseName,
  isServerUrl,
} from './client.ts';
import type { StoreLogger } from './client.ts';
import { checkAlert, checkBaseline, checkEvent, checkRevocation, checkTask } from './checks.ts';
import type { Check } from './checks.ts';
import { CODE, clickHouseErrorCode } from './error-codes.ts';
import { EVENT_ROW_COLUMNS, eventRowValues } from './event-rows.ts';
import { eventsOfTask, eventsOfTasks } from './event-queries.ts';
import { DEFAULT_MIGRATIONS_DIR, runMigrations } from './migrations.ts';
import { pageQuery, toPage } from './page-queries.ts';
import type { ListRow } from './page-queries.ts';
import type { Reader } from './reader.ts';
import {
  ALERT_COLUMNS,
  BASELINE_COLUMNS,
  REVOCATION_COLUMNS,
  alertToRow,
  baselineToRow,
  revocationToRow,
  rowToAlert,
  rowToBaseline,
  rowToRevocation,
  taskToRow,
} from './rows.ts';
import type { AlertRowOut, BaselineRowOut, RevocationRowOut } from './rows.ts';
import { openEmbeddedEngine, openServer, releaseEmbedded, storeClientSetup } from './store-connection.ts';
import { activeTasks, childTasksOf, findTask, findTaskCredentials, findTasks } from './task-queries.ts';
import { compactRows } from './values.ts';
import type { PositionalRows } from './values.ts';

export type { StoreLogger } from './client.ts';

export interface ClickHouseStoreOptions {
  /**
   * A ClickHouse server's HTTP(S) endpoint, e.g. `http://clickhouse:8123`. When set, `dataDir` is ignored.
   * @default undefined (the in-process engine at `dataDir`)
   */
  url?: string;
  /** @default 'default' (the client's default) */
  username?: string;
  /** @default '' */
  password?: string;
  /** The in-process engine's data directory (created if missing). One process may hold it at a time. */
  dataDir: string;
  /** The database holding Tripline's tables; letters, digits and `_`, not starting with a digit. @default 'tripline' (by the caller's config) */
  database: string;
  /** Where start-up, migration and rejected-row messages go. @default a logger that drops everything */
  logger?: StoreLogger;
  /** Per-request timeout against a server. @default 30000 */
  requestTimeoutMs?: number;
  /** The folder of numbered `.sql` migrations. @default `schemas/clickhouse/` of this repository */
  migrationsDir?: string;
}

const noopLogger: StoreLogger = {
  info() {
    /* dropped */
  },
  warn() {
    /* dropped */
  },
};

/** Open the store. Call `migrate()` before the first read or write. */
export async function openClickHouseStore(options: ClickHouseStoreOptions): Promise<Store> {
  const logger = options.logger ?? noopLogger;
  const database = options.database;
  if (!isDatabaseName(database)) {
    throw new TriplineError(
      'CONFIG_INVALID',
      `database must be letters, digits and _ and not start with a digit (got ${JSON.stringify(database)})`,
    );
  }
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  if (!Number.isInteger(requestTimeoutMs) || requestTimeoutMs < 1) {
    throw new TriplineError('CONFIG_INVALID', `requestTimeoutMs must be a positive integer (got ${requestTimeoutMs})`);
  }
  const migrationsDir = options.migrationsDir ?? DEFAULT_MIGRATIONS_DIR;
  if (isServerUrl(options.url)) {
    const client = await openServer(options.url, options, requestTimeoutMs, logger);
    return new ClickHouseStore(client, database, migrationsDir, logger, undefined);
  }
  const { client, key, dir } = await openEmbeddedEngine(options.dataDir, database, logger);
  // One chdb connection runs one query at a time: the kill path's writes and reads get connections of their own.
  const side = (): ClickHouseClient => embeddedClient(dir, storeClientSetup(logger));
  return new ClickHouseStore(client, database, migrationsDir, logger, key, { revocations: side(), lookups: side() });
}

type Table = 'events' | 'alerts' | 'revocations' | 'tasks' | 'baselines';

/** Event rows straight as their values (eventRowValues: no keyed row in between to read them back out of). */
const EVENT_ROWS: PositionalRows<ScoredEvent> = { columns: EVENT_ROW_COLUMNS, values: eventRowValues };

class ClickHouseStore implements Store {
  readonly #client: ClickHouseClient;
  /**
   * Connections of their own (the embedded engine; a server's HTTP pool needs none): revocation inserts (the audit
   * row of a kill) and task lookups (a processor's scoring of a task it has not seen waits for them), so that
   * neither queues behind a bulk insert of events.
   */
  readonly #side: { revocations: ClickHouseClient; lookups: ClickHouseClient } | undefined;
  readonly #db: string;
  readonly #migrationsDir: string;
  readonly #logger: StoreLogger;
  /** Set for the embedded engine: this store's entry in the embedded stores open in this process. */
  readonly #embeddedKey: string | undefined;
  readonly #inflight = new Set<Promise<unknown>>();
  /** What the query modules read through. */
  readonly #reader: Reader;
  #migrating: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(
    client: ClickHouseClient,
    database: string,
    migrationsDir: string,
    logger: StoreLogger,
    embeddedKey: string | undefined,
    side?: { revocations: ClickHouseClient; lookups: ClickHouseClient },
  ) {
    this.#client = client;
    this.#side = side;
    this.#db = database;
    this.#migrationsDir = migrationsDir;
    this.#logger = logger;
    this.#embeddedKey = embeddedKey;
    this.#reader = { db: database, select: (query, params, on) => this.#select(query, params, on) };
  }

  /** Runs one operation: refuses after close, tracks it so close() can drain it, maps failures to TriplineError. */
  async #run<T>(operation: string, work: () => Promise<T>): Promise<T> {
    if (this.#closing !== undefined) {
      throw new TriplineError('SHUTTING_DOWN', `The store is closed; ${operation} was not run`);
    }
    const promise = work();
    this.#inflight.add(promise);
    try {
      return await promise;
    } catch (error) {
      if (error instanceof TriplineError) throw error;
      const code = clickHouseErrorCode(error);
      const hint = code === CODE.UNKNOWN_TABLE || code === CODE.UNKNOWN_DATABASE ? ' (has migrate() run?)' : '';
      throw new TriplineError('STORE_UNAVAILABLE', `ClickHouse ${operation} failed${hint}: ${messageOf(error)}`, {
        cause: error,
        details: { operation },
      });
    } finally {
      this.#inflight.delete(promise);
    }
  }

  /** Rows as ClickHouse sent them; callers assert the row shape their column list produces. */
  async #select(query: string, params: Record<string, unknown> = {}, client = this.#client): Promise<unknown[]> {
    const result = await client.query({ query, format: 'JSONEachRow', query_params: params });
    return result.json();
  }

  async #insert<T>(
    table: Table | 'model_usage',
    rows: readonly T[],
    check: (row: T) => Check,
    toRow: ((row: T) => object) | PositionalRows<T>,
    idOf: (row: T) => string,
    client = this.#client,
  ): Promise<void> {
    const positional = typeof toRow === 'function' ? undefined : toRow;
    // Keyed rows, or (positional rows) each row's line at once: its values die young instead of waiting for the rest.
    const accepted: object[] = [];
    const lines: string[] = [];
    const rejected: { id: string; problem: string }[] = [];
    for (const row of rows) {
      const problem = check(row);
      if (problem !== undefined) rejected.push({ id: idOf(row), problem });
      else if (positional !== undefined) lines.push(JSON.stringify(positional.values(row)));
      else if (typeof toRow === 'function') accepted.push(toRow(row));
    }
    if (rejected.length > 0) {
      this.#logger.warn(
        { table, rejected: rejected.length, of: rows.length, examples: rejected.slice(0, 10) },
        'store left out rows that cannot be stored',
      );
    }
    if (accepted.length === 0 && lines.length === 0) return;
    let columns: readonly string[];
    if (positional === undefined) {
      const compact = compactRows(accepted);
      columns = compact.columns;
      for (const values of compact.values) lines.push(JSON.stringify(values));
    } else columns = positional.columns;
    const body = lines.join('\n');
    await this.#run(`insert into ${table}`, async () => {
      // The settings in the statement, and none as `clickhouse_settings`: the in-process engine would prefix `SET …;`
      // statements, and a multi-statement query is lexed whole, rows included (+0.16 CPU-s per 10k event rows).
      const result = await client.exec({
        query: `INSERT INTO ${this.#db}.${table} (${columns.join(', ')}) SETTINGS ${BULK_INSERT_SETTINGS_SQL} FORMAT JSONCompactEachRow`,
        values: Readable.from([body]),
        clickhouse_settings: WITHOUT_QUERY_SETTINGS,
      });
      // An insert answers nothing: the response is released at once (as client.insert does).
      result.stream.destroy();
    });
  }

  migrate(): Promise<void> {
    // One migration at a time in this process; a later call re-reads the ledger and finds nothing to do.
    const previous = this.#migrating ?? Promise.resolve();
    const next = previous
      .catch(() => undefined)
      .then(() =>
        this.#run('migration', () => runMigrations(this.#client, this.#db, this.#migrationsDir, this.#logger)),
      );
    this.#migrating = next;
    return next;
  }

  insertEvents(rows: readonly ScoredEvent[]): Promise<void> {
    return this.#insert('events', rows, checkEvent, EVENT_ROWS, (row) => row.event.id);
  }

  insertAlerts(rows: readonly Alert[]): Promise<void> {
    return this.#insert('alerts', rows, checkAlert, alertToRow, (row) => row.id);
  }

  insertRevocations(rows: readonly Revocation[]): Promise<void> {
    return this.#insert(
      'revocations',
      rows,
      checkRevocation,
      revocationToRow,
      (row) => row.id,
      this.#side?.revocations,
    );
  }

  upsertTasks(rows: readonly TaskRecord[]): Promise<void> {
    return this.#insert(
      'tasks',
      rows,
      checkTask,
      taskToRow,
      (row) => `${row.tenant}/${row.taskId}@${String(row.version)}`,
    );
  }

  saveBaselines(rows: readonly BaselineRecord[]): Promise<void> {
    return this.#insert(
      'baselines',
      rows,
      checkBaseline,
      baselineToRow,
      (row) => `${row.tenant}/${row.taskType}/${row.agentId}`,
    );
  }

  insertModelUsage(rows: readonly ModelUsageRow[]): Promise<void> {
    return this.#insert('model_usage', rows, checkUsage, usageToRow, (row) => row.usage.id);
  }

  spend(query: {
    tenant: string;
    by: SpendGroup;
    fromMs: number;
    toMs: number;
    limit: number;
    taskId?: string;
  }): Promise<SpendRow[]> {
    return this.#run('spend', () => spendBy(this.#reader, query));
  }

  modelCallsForTask(tenant: string, taskId: string, limit: number): Promise<ModelUsageRow[]> {
    return this.#run('modelCallsForTask', () => taskModelCalls(this.#reader, tenant, taskId, limit));
  }

  getTask(tenant: string, taskId: string): Promise<TaskRecord | null> {
    return this.#run('getTask', () => findTask(this.#reader, tenant, taskId));
  }

  getTasks(tenant: string, taskIds: readonly string[]): Promise<TaskRecord[]> {
    if (taskIds.length === 0) return Promise.resolve([]);
    return this.#run('getTasks', () => findTasks(this.#reader, tenant, taskIds, this.#side?.lookups));
  }

  taskCredentials(tenant: string, taskIds: readonly string[]): Promise<TaskCredential[]> {
    if (taskIds.length === 0) return Promise.resolve([]);
    return this.#run('taskCredentials', () => findTaskCredentials(this.#reader, tenant, taskIds));
  }

  childTasks(tenant: string, parentTaskIds: readonly string[], limit: number): Promise<TaskRecord[]> {
    if (parentTaskIds.length === 0 || limit <= 0) return Promise.resolve([]);
    return this.#run('childTasks', () => childTasksOf(this.#reader, tenant, parentTaskIds, limit));
  }

  listActiveTasks(tenant?: string): Promise<TaskRecord[]> {
    return this.#run('listActiveTasks', () => activeTasks(this.#reader, tenant));
  }

  eventsForTask(tenant: string, taskId: string, limit?: number): Promise<ScoredEvent[]> {
    return this.#run('eventsForTask', () => eventsOfTask(this.#reader, tenant, taskId, limit));
  }

  eventsForTasks(tenant: string, taskIds: readonly string[]): Promise<Map<string, ScoredEvent[]>> {
    return this.#run('eventsForTasks', () => eventsOfTasks(this.#reader, tenant, taskIds));
  }

  listAlerts(filter: ListFilter): Promise<Page<Alert>> {
    return this.#list('alerts', ALERT_COLUMNS, filter, (row) => rowToAlert(row as AlertRowOut));
  }

  listRevocations(filter: ListFilter): Promise<Page<Revocation>> {
    return this.#list('revocations', REVOCATION_COLUMNS, filter, (row) => rowToRevocation(row as RevocationRowOut));
  }

  async #list<T>(
    table: 'alerts' | 'revocations',
    columns: string,
    filter: ListFilter,
    toRecord: (row: ListRow) => T,
  ): Promise<Page<T>> {
    const { query, params } = pageQuery(this.#db, table, columns, filter);
    return this.#run(`list ${table}`, async () =>
      toPage((await this.#select(query, params)) as ListRow[], filter.limit, toRecord),
    );
  }

  loadBaselines(tenant?: string): Promise<BaselineRecord[]> {
    return this.#run('loadBaselines', async () => {
      const where = tenant === undefined ? '' : 'WHERE tenant = {tenant:String}';
      const rows = (await this.#select(
        `SELECT ${BASELINE_COLUMNS} FROM ${this.#db}.baselines FINAL ${where} ORDER BY tenant, task_type, agent_id`,
        tenant === undefined ? {} : { tenant },
      )) as BaselineRowOut[];
      return rows.map(rowToBaseline);
    });
  }

  counts(): Promise<Record<Table, number>> {
    return this.#run('counts', async () => {
      const db = this.#db;
      const rows = (await this.#select(
        `SELECT
           (SELECT count() FROM ${db}.events FINAL) AS events,
           (SELECT count() FROM ${db}.alerts FINAL) AS alerts,
           (SELECT count() FROM ${db}.revocations FINAL) AS revocations,
           (SELECT count() FROM ${db}.tasks FINAL) AS tasks,
           (SELECT count() FROM ${db}.baselines FINAL) AS baselines`,
      )) as Record<Table, number>[];
      return rows[0] ?? { events: 0, alerts: 0, revocations: 0, tasks: 0, baselines: 0 };
    });
  }

  ping(): Promise<void> {
    return this.#run('ping', async () => {
      // Metadata only, and over the lookups connection where there is one: a probe never waits behind a bulk insert.
      const rows = (await this.#select(
        `EXISTS TABLE ${this.#db}.revocations`,
        {},
        this.#side?.lookups ?? this.#client,
      )) as { result: number }[];
      if (rows[0]?.result !== 1) {
        throw new TriplineError('STORE_UNAVAILABLE', `ClickHouse has no ${this.#db}.revocations (has migrate() run?)`);
      }
    });
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#inflight]);
      try {
        await this.#client.close();
        await this.#side?.revocations.close();
        await this.#side?.lookups.close();
      } finally {
        if (this.#embeddedKey !== undefined) releaseEmbedded(this.#embeddedKey);
      }
      this.#logger.info({ database: this.#db }, 'store closed');
    })();
    return this.#closing;
  }
}
