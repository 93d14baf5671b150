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
import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import type { ClickHouseClient, ClickHouseSettings, Logger as ClientLogger } from '@clickhouse/client';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';

import { EVENT_KINDS } from '../../../schemas/conventions.ts';
import type { EventKind } from '../../../schemas/conventions.ts';
import { DECISIONS, REGIMES, REVOCATION_ACTIONS, TASK_STATUSES } from '../../../schemas/events.ts';
import type {
  Alert,
  AgentEvent,
  AttributeValue,
  Contribution,
  DataAccessDetail,
  Decision,
  PrivilegeDetail,
  Regime,
  Revocation,
  RevocationAction,
  TaskStatus,
  ToolCallDetail,
  Verdict,
} from '../../../schemas/events.ts';
import { TriplineError, messageOf } from '../../shared/errors.ts';
import type { BaselineRecord, ListFilter, Page, ScoredEvent, Store, TaskRecord } from '../store.ts';
import { chdbConnection } from './chdb.ts';

/** The subset of a pino logger the store uses. */
export interface StoreLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

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

const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../../schemas/clickhouse/', import.meta.url));
const DATABASE_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MIGRATION_FILE = /^(\d{3})_([a-z0-9_]+)\.sql$/;
const DATABASE_PLACEHOLDER = '{database:Identifier}';
/** Latest time accepted (2200-01-01): DateTime64(6) ends in 2299, and microseconds stay below 2^53. */
const MAX_TIME_MS = 7_258_118_400_000;
const MAX_PAGE = 1000;
/** Task ids per query of a many-task read: a server takes query parameters in the URL (1 MiB at most by default). */
const TASK_IDS_PER_QUERY = 500;

/** Applied to every query: 64-bit integers (counts, microsecond times) come back as JSON numbers. */
const QUERY_SETTINGS: ClickHouseSettings = { output_format_json_quote_64bit_integers: 0 };
/** Inserts: correctly rounded float parsing, so a Float64 read back is the double that was written. */
const INSERT_SETTINGS: ClickHouseSettings = { precise_float_parsing: 1 };

const noopLogger: StoreLogger = {
  info() {
    /* dropped */
  },
  warn() {
    /* dropped */
  },
};

/**
 * Routes the client's own log lines (warnings and errors; by default it writes them to the console) to the
 * store's logger. Its errors are also thrown to the caller, which wraps them in a TriplineError.
 */
function clientLog(logger: StoreLogger): { LoggerClass: new () => ClientLogger; level: ClickHouseLogLevel } {
  const forward = (params: { module: string; message: string; err?: Error }): void => {
    logger.warn({ module: params.module, ...(params.err === undefined ? {} : { err: messageOf(params.err) }) }, `ClickHouse client: ${params.message}`);
  };
  class ForwardingLogger implements ClientLogger {
    trace(): void {
      /* below the level */
    }
    debug(): void {
      /* below the level */
    }
    info(): void {
      /* below the level */
    }
    warn(params: { module: string; message: string; err?: Error }): void {
      forward(params);
    }
    error(params: { module: string; message: string; err: Error }): void {
      forward(params);
    }
  }
  return { LoggerClass: ForwardingLogger, level: ClickHouseLogLevel.WARN };
}

/**
 * Embedded stores open in this process, by data directory and database. libchdb serves one data directory per
 * process (other directories are refused while it is bound) and lets several connections share it; a second
 * store over the same directory AND database is refused here, since two owners of one store is a wiring bug.
 */
const openEmbedded = new Set<string>();

/** Open the store. Call `migrate()` before the first read or write. */
export async function openClickHouseStore(options: ClickHouseStoreOptions): Promise<Store> {
  const logger = options.logger ?? noopLogger;
  const database = options.database;
  if (!DATABASE_PATTERN.test(database)) {
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
  if (options.url !== undefined && options.url !== '') {
    const client = await openServer(options.url, options, requestTimeoutMs, logger);
    return new ClickHouseStore(client, database, migrationsDir, logger, undefined);
  }
  const { client, key } = await openEmbeddedEngine(options.dataDir, database, logger);
  // One chdb connection runs one query at a time: the kill path's writes and reads get connections of their own.
  const side = (): ClickHouseClient => createClient({ connection: chdbConnection(realpathSync(options.dataDir)), clickhouse_settings: QUERY_SETTINGS, log: clientLog(logger) });
  return new ClickHouseStore(client, database, migrationsDir, logger, key, { revocations: side(), lookups: side() });
}

async function openServer(
  rawUrl: string,
  options: ClickHouseStoreOptions,
  requestTimeoutMs: number,
  logger: StoreLogger,
): Promise<ClickHouseClient> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch (error) {
    throw new TriplineError('CONFIG_INVALID', `url must be an http(s) URL (got ${JSON.stringify(rawUrl)})`, { cause: error });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TriplineError('CONFIG_INVALID', `url must be an http(s) URL (got protocol ${url.protocol})`);
  }
  const where = `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
  const client = createClient({
    url: rawUrl,
    ...(options.username === undefined ? {} : { username: options.username }),
    ...(options.password === undefined ? {} : { password: options.password }),
    request_timeout: requestTimeoutMs,
    application: 'tripline',
    clickhouse_settings: QUERY_SETTINGS,
    log: clientLog(logger),
  });
  try {
    const result = await client.query({ query: 'SELECT version() AS version', format: 'JSONEachRow' });
    const rows = await result.json<{ version: string }>();
    logger.info({ store: 'clickhouse', url: where, version: rows[0]?.version }, 'connected to ClickHouse');
    return client;
  } catch (error) {
    await client.close().catch(() => undefined);
    const code = clickHouseErrorCode(error);
    if (code === CODE.AUTHENTICATION_FAILED || code === CODE.REQUIRED_PASSWORD) {
      throw new TriplineError('CONFIG_INVALID', `ClickHouse at ${where} refused the credentials; check the username and password`, {
        cause: error,
        details: { url: where },
      });
    }
    throw new TriplineError('STORE_UNAVAILABLE', `ClickHouse at ${where} cannot be reached: ${messageOf(error)}`, {
      cause: error,
      details: { url: where },
    });
  }
}

async function openEmbeddedEngine(
  dataDir: string,
  database: string,
  logger: StoreLogger,
): Promise<{ client: ClickHouseClient; key: string }> {
  if (!isMainThread) {
    throw new TriplineError(
      'CONFIG_INVALID',
      'The embedded store (chdb) must run on the main thread: it hangs after use from a worker thread. Open it in the main thread or set a ClickHouse url.',
    );
  }
  if (dataDir === '') throw new TriplineError('CONFIG_INVALID', 'dataDir must be a directory path when no ClickHouse url is set');
  let dir: string;
  try {
    mkdirSync(dataDir, { recursive: true });
    dir = realpathSync(dataDir);
  } catch (error) {
    throw new TriplineError('CONFIG_INVALID', `dataDir ${dataDir} cannot be created: ${messageOf(error)}`, { cause: error });
  }
  const key = `${dir}\u0000${database}`;
  if (openEmbedded.has(key)) {
    throw new TriplineError(
      'STORE_LOCKED',
      `The data directory ${dir} (database ${database}) is already open in this process; share the one store instead of opening it twice`,
      { details: { dataDir: dir, database } },
    );
  }
  let client: ClickHouseClient;
  try {
    const connection = chdbConnection(dir);
    client = createClient({ connection, clickhouse_settings: QUERY_SETTINGS, log: clientLog(logger) });
  } catch (error) {
    const message = messageOf(error);
    // chdb's error says only "Failed to create connection for path ..."; the engine's reason ("Cannot lock file
    // <dir>/status. Another server instance in same directory is already running") goes to the process output,
    // not into the error. The status file names the holder's PID while the holder runs (it is removed on close).
    const holder = lockHolder(dir);
    if (holder !== undefined || message.includes('Cannot lock file') || message.includes('Another server instance')) {
      throw new TriplineError(
        'STORE_LOCKED',
        `The data directory ${dir} is in use by another Tripline process${holder === undefined ? '' : ` (pid ${String(holder)})`}; stop it or set TRIPLINE_DATA_DIR to another directory`,
        { cause: error, details: { dataDir: dir, ...(holder === undefined ? {} : { pid: holder }) } },
      );
    }
    if (message.includes('only one active data directory per process')) {
      throw new TriplineError(
        'STORE_LOCKED',
        `This process already has the embedded store open at another directory, and the in-process engine serves one data directory per process; close that store before opening ${dir}`,
        { cause: error, details: { dataDir: dir } },
      );
    }
    throw new TriplineError('STORE_UNAVAILABLE', `The embedded engine cannot open ${dir}: ${message}`, {
      cause: error,
      details: { dataDir: dir },
    });
  }
  openEmbedded.add(key);
  try {
    const result = await client.query({ query: 'SELECT version() AS version', format: 'JSONEachRow' });
    const rows = await result.json<{ version: string }>();
    logger.info({ store: 'chdb', dataDir: dir, database, version: rows[0]?.version }, 'opened the embedded store');
  } catch (error) {
    openEmbedded.delete(key);
    await client.close().catch(() => undefined);
    throw new TriplineError('STORE_UNAVAILABLE', `The embedded engine at ${dir} does not answer: ${messageOf(error)}`, { cause: error });
  }
  return { client, key };
}

/**
 * The PID of another live process that holds the engine's lock on `dir`, read from the `status` file the engine
 * writes there (`PID: 1234`). Undefined when there is no such file, it names this process, or that process is gone
 * (a crash leaves the file behind).
 */
function lockHolder(dir: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, 'status'), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(/^PID:\s*(\d+)/m.exec(text)?.[1]);
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

/**
 * The numeric code of a ClickHouseError as a string (`'60'` for UNKNOWN_TABLE), or undefined for anything else
 * (a network error, a timeout). Duck-typed: chdb and the HTTP client each bundle their own ClickHouseError class.
 * The code, not the `type`, is what to test: the client parses the type out of the message's last parenthesis,
 * which is wrong for some chdb messages.
 */
function clickHouseErrorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error) || !('type' in error)) return undefined;
  return typeof error.code === 'string' && /^\d+$/.test(error.code) ? error.code : undefined;
}

/** ClickHouse error codes the store reacts to. */
const CODE = {
  UNKNOWN_TABLE: '60',
  UNKNOWN_DATABASE: '81',
  TABLE_ALREADY_EXISTS: '57',
  DATABASE_ALREADY_EXISTS: '82',
  REQUIRED_PASSWORD: '194',
  AUTHENTICATION_FAILED: '516',
} as const;

// ---------------------------------------------------------------------------------------------------------------
// Row shapes: what goes into and comes out of each table (snake_case, as the columns are named).

interface EventRowIn {
  id: string;
  tenant: string;
  task_id: string;
  task_type: string;
  agent_id: string;
  kind: string;
  name: string;
  trace_id: string;
  span_id: string;
  parent_span_id: string;
  start_time: string;
  end_time: string;
  error: boolean;
  error_type: string | null;
  tool_name: string | null;
  tool_type: string | null;
  tool_side_effect: string | null;
  tool_target: string | null;
  tool_call_id: string | null;
  data_resource: string | null;
  data_system: string | null;
  data_operation: string | null;
  data_rows: number | null;
  data_bytes: number | null;
  data_classification: string | null;
  data_host: string | null;
  privilege_action: string | null;
  scopes_before: string[];
  scopes_after: string[];
  privilege_resource: string | null;
  privilege_granted_by: string | null;
  privilege_approved: boolean | null;
  attributes: string;
  score: number;
  decision: string;
  regime: string;
  reasons: string[];
  contributions: string;
  hard_rule: string | null;
  shadow: boolean;
}

export type EventRowOut = Omit<EventRowIn, 'start_time' | 'end_time' | 'reasons'> & { start_us: number; end_us: number };

export const EVENT_COLUMNS = `id, tenant, task_id, task_type, agent_id, kind, name, trace_id, span_id, parent_span_id,
  toUnixTimestamp64Micro(start_time) AS start_us, toUnixTimestamp64Micro(end_time) AS end_us, error, error_type,
  tool_name, tool_type, tool_side_effect, tool_target, tool_call_id,
  data_resource, data_system, data_operation, data_rows, data_bytes, data_classification, data_host,
  privilege_action, scopes_before, scopes_after, privilege_resource, privilege_granted_by, privilege_approved,
  attributes, score, decision, regime, contributions, hard_rule, shadow`;

interface AlertRowIn {
  id: string;
  tenant: string;
  task_id: string;
  task_type: string;
  agent_id: string;
  event_id: string;
  time: string;
  score: number;
  decision: string;
  regime: string;
  reasons: string[];
  shadow: boolean;
}
export type AlertRowOut = Omit<AlertRowIn, 'time'> & { time_us: number };
export const ALERT_COLUMNS = `id, tenant, task_id, task_type, agent_id, event_id, toUnixTimestamp64Micro(time) AS time_us,
  score, decision, regime, reasons, shadow`;

export interface RevocationRowIn {
  id: string;
  tenant: string;
  task_id: string;
  task_type: string;
  agent_id: string;
  action: string;
  source: string;
  actor: string;
  reason: string;
  reasons: string[];
  score: number;
  event_id: string;
  time: string;
}
type RevocationRowOut = Omit<RevocationRowIn, 'time'> & { time_us: number };
const REVOCATION_COLUMNS = `id, tenant, task_id, task_type, agent_id, action, source, actor, reason, reasons, score,
  event_id, toUnixTimestamp64Micro(time) AS time_us`;

interface TaskRowIn {
  tenant: string;
  task_id: string;
  task_name: string;
  task_type: string;
  agent_id: string;
  status: string;
  score: number;
  decision: string;
  regime: string;
  reasons: string[];
  count_tool_call: number;
  count_data_access: number;
  count_privilege_change: number;
  started_at: string;
  last_event_at: string;
  ended_at: string | null;
  version: number;
}
type TaskRowOut = Omit<TaskRowIn, 'started_at' | 'last_event_at' | 'ended_at'> & {
  started_us: number;
  last_event_us: number;
  ended_us: number | null;
};
const TASK_COLUMNS = `tenant, task_id, task_name, task_type, agent_id, status, score, decision, regime, reasons,
  count_tool_call, count_data_access, count_privilege_change, toUnixTimestamp64Micro(started_at) AS started_us,
  toUnixTimestamp64Micro(last_event_at) AS last_event_us, toUnixTimestamp64Micro(ended_at) AS ended_us, version`;

interface BaselineRowIn {
  tenant: string;
  task_type: string;
  agent_id: string;
  tasks: number;
  model: string;
  updated_at: string;
}
type BaselineRowOut = Omit<BaselineRowIn, 'updated_at'> & { updated_us: number };
const BASELINE_COLUMNS = 'tenant, task_type, agent_id, tasks, model, toUnixTimestamp64Micro(updated_at) AS updated_us';

// ---------------------------------------------------------------------------------------------------------------
// Times: epoch milliseconds (fraction = microseconds) <-> DateTime64(6, 'UTC').

/** Microseconds since the epoch; sub-microsecond digits are rounded away. */
function toMicros(ms: number): number {
  return Math.round(ms * 1000);
}

/** Epoch milliseconds: the written value itself whenever it had at most microsecond precision. */
function fromMicros(us: number): number {
  return us / 1000;
}

/** `YYYY-MM-DD hh:mm:ss.ffffff` in UTC; the columns are typed 'UTC', so this text means the same instant anywhere. */
function utcText(ms: number): string {
  const us = toMicros(ms);
  const seconds = Math.floor(us / 1_000_000);
  const fraction = us - seconds * 1_000_000;
  const iso = new Date(seconds * 1000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${String(fraction).padStart(6, '0')}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Validation: a row that cannot be stored faithfully (NaN score, time out of range, unknown enum value, an empty
// id that would collapse with every other empty id) is left out of its batch and reported with logger.warn, so one
// bad row neither fails nor corrupts the others; retrying could not fix it, so nothing is thrown. The types already hold
// the shape; these checks cover what the type system cannot see (values decoded from JSON, NaN, Infinity).

type Check = string | undefined;

function isString(value: unknown): value is string {
  return typeof value === 'string';
}

function requireId(name: string, value: unknown): Check {
  return isString(value) && value !== '' ? undefined : `${name} must be a non-empty string`;
}

function requireStrings(names: Record<string, unknown>): Check {
  for (const [name, value] of Object.entries(names)) if (!isString(value)) return `${name} must be a string`;
  return undefined;
}

function requireTime(name: string, value: unknown): Check {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value < MAX_TIME_MS
    ? undefined
    : `${name} must be epoch milliseconds between 1970 and 2200 (got ${String(value)})`;
}

function requireFinite(name: string, value: unknown): Check {
  return typeof value === 'number' && Number.isFinite(value) ? undefined : `${name} must be a finite number (got ${String(value)})`;
}

function requireCount(name: string, value: unknown): Check {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
    ? undefined
    : `${name} must be a non-negative integer (got ${String(value)})`;
}

function requireBoolean(name: string, value: unknown): Check {
  return typeof value === 'boolean' ? undefined : `${name} must be a boolean`;
}

function requireOneOf(name: string, allowed: readonly string[], value: unknown): Check {
  return isString(value) && allowed.includes(value) ? undefined : `${name} must be one of ${allowed.join(', ')} (got ${String(value)})`;
}

function requireStringArray(name: string, value: unknown): Check {
  return Array.isArray(value) && value.every(isString) ? undefined : `${name} must be an array of strings`;
}

/**
 * The row with every string (values and keys, at any depth) free of lone UTF-16 surrogates, which JS strings
 * and JSON escapes allow but UTF-8 cannot hold: ClickHouse refuses the whole JSONEachRow insert over one
 * ("Cannot parse escape sequence"), a failure no retry fixes. They become U+FFFD. Copies only what changes.
 */
function wellFormed<T>(value: T): T {
  if (typeof value === 'string') return (value.isWellFormed() ? value : value.toWellFormed()) as T;
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((item: unknown, i) => {
      const fixed = wellFormed(item);
      if (fixed !== item) (copy ??= [...(value as unknown[])])[i] = fixed;
    });
    return (copy ?? value) as T;
  }
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return value;
  let copy: Record<string, unknown> | undefined;
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    const fixed = wellFormed(item);
    const fixedKey = key.isWellFormed() ? key : key.toWellFormed();
    if (fixed !== item || fixedKey !== key) {
      copy ??= { ...(value as Record<string, unknown>) };
      if (fixedKey !== key) Reflect.deleteProperty(copy, key);
      copy[fixedKey] = fixed;
    }
  }
  return (copy ?? value) as T;
}

function firstProblem(...checks: Check[]): Check {
  return checks.find((check) => check !== undefined);
}

function checkEvent(row: ScoredEvent): Check {
  const { event, verdict } = row;
  return firstProblem(
    requireId('event.id', event.id),
    requireStrings({
      'event.tenant': event.tenant,
      'event.taskId': event.taskId,
      'event.taskType': event.taskType,
      'event.agentId': event.agentId,
      'event.traceId': event.traceId,
      'event.spanId': event.spanId,
      'event.parentSpanId': event.parentSpanId,
      'event.name': event.name,
    }),
    requireOneOf('event.kind', EVENT_KINDS, event.kind),
    requireTime('event.startMs', event.startMs),
    requireTime('event.endMs', event.endMs),
    requireBoolean('event.error', event.error),
    event.data?.rows === undefined ? undefined : requireCount('event.data.rows', event.data.rows),
    event.data?.bytes === undefined ? undefined : requireCount('event.data.bytes', event.data.bytes),
    event.privilege === undefined ? undefined : requireStringArray('event.privilege.scopesBefore', event.privilege.scopesBefore),
    event.privilege === undefined ? undefined : requireStringArray('event.privilege.scopesAfter', event.privilege.scopesAfter),
    checkAttributes(event.attributes),
    requireFinite('verdict.score', verdict.score),
    requireOneOf('verdict.decision', DECISIONS, verdict.decision),
    requireOneOf('verdict.regime', REGIMES, verdict.regime),
    requireBoolean('verdict.shadow', verdict.shadow),
    checkContributions(verdict.contributions),
  );
}

function checkAttributes(attributes: unknown): Check {
  if (typeof attributes !== 'object' || attributes === null || Array.isArray(attributes)) return 'event.attributes must be an object';
  for (const [key, value] of Object.entries(attributes)) {
    const ok = isString(value) || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
    if (!ok) return `event.attributes[${JSON.stringify(key)}] must be a string, a boolean or a finite number`;
  }
  return undefined;
}

function checkContributions(contributions: unknown): Check {
  if (!Array.isArray(contributions)) return 'verdict.contributions must be an array';
  for (const item of contributions as unknown[]) {
    if (typeof item !== 'object' || item === null) return 'verdict.contributions must hold objects';
    const { feature, score, reason } = item as Partial<Contribution>;
    const problem = firstProblem(
      requireStrings({ 'contribution.feature': feature, 'contribution.reason': reason }),
      requireFinite('contribution.score', score),
    );
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function checkAlert(row: Alert): Check {
  return firstProblem(
    requireId('id', row.id),
    requireStrings({ tenant: row.tenant, taskId: row.taskId, taskType: row.taskType, agentId: row.agentId, eventId: row.eventId }),
    requireTime('timeMs', row.timeMs),
    requireFinite('score', row.score),
    requireOneOf('decision', DECISIONS, row.decision),
    requireOneOf('regime', REGIMES, row.regime),
    requireStringArray('reasons', row.reasons),
    requireBoolean('shadow', row.shadow),
  );
}

function checkRevocation(row: Revocation): Check {
  return firstProblem(
    requireId('id', row.id),
    requireStrings({
      tenant: row.tenant,
      taskId: row.taskId,
      taskType: row.taskType,
      agentId: row.agentId,
      actor: row.actor,
      reason: row.reason,
      eventId: row.eventId,
    }),
    requireOneOf('action', REVOCATION_ACTIONS, row.action),
    requireOneOf('source', ['detector', 'manual'], row.source),
    requireStringArray('reasons', row.reasons),
    requireFinite('score', row.score),
    requireTime('timeMs', row.timeMs),
  );
}

function checkTask(row: TaskRecord): Check {
  return firstProblem(
    requireId('taskId', row.taskId),
    requireStrings({ tenant: row.tenant, taskType: row.taskType, agentId: row.agentId }),
    requireOneOf('status', TASK_STATUSES, row.status),
    requireFinite('score', row.score),
    requireOneOf('decision', DECISIONS, row.decision),
    requireOneOf('regime', REGIMES, row.regime),
    requireStringArray('reasons', row.reasons),
    requireCount('counts.tool_call', row.counts.tool_call),
    requireCount('counts.data_access', row.counts.data_access),
    requireCount('counts.privilege_change', row.counts.privilege_change),
    requireTime('startedMs', row.startedMs),
    requireTime('lastEventMs', row.lastEventMs),
    row.endedMs === null ? undefined : requireTime('endedMs', row.endedMs),
    requireCount('version', row.version),
  );
}

function checkBaseline(row: BaselineRecord): Check {
  return firstProblem(
    requireStrings({ tenant: row.tenant, taskType: row.taskType, agentId: row.agentId, model: row.model }),
    requireCount('tasks', row.tasks),
    requireTime('updatedMs', row.updatedMs),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Mapping between the TS records and the rows.

function eventToRow({ event: e, verdict: v }: ScoredEvent): EventRowIn {
  return {
    id: e.id,
    tenant: e.tenant,
    task_id: e.taskId,
    task_type: e.taskType,
    agent_id: e.agentId,
    kind: e.kind,
    name: e.name,
    trace_id: e.traceId,
    span_id: e.spanId,
    parent_span_id: e.parentSpanId,
    start_time: utcText(e.startMs),
    end_time: utcText(e.endMs),
    error: e.error,
    error_type: e.errorType ?? null,
    tool_name: e.tool?.name ?? null,
    tool_type: e.tool?.type ?? null,
    tool_side_effect: e.tool?.sideEffect ?? null,
    tool_target: e.tool?.target ?? null,
    tool_call_id: e.tool?.callId ?? null,
    data_resource: e.data?.resource ?? null,
    data_system: e.data?.system ?? null,
    data_operation: e.data?.operation ?? null,
    data_rows: e.data?.rows ?? null,
    data_bytes: e.data?.bytes ?? null,
    data_classification: e.data?.classification ?? null,
    data_host: e.data?.host ?? null,
    privilege_action: e.privilege?.action ?? null,
    scopes_before: e.privilege?.scopesBefore ?? [],
    scopes_after: e.privilege?.scopesAfter ?? [],
    privilege_resource: e.privilege?.resource ?? null,
    privilege_granted_by: e.privilege?.grantedBy ?? null,
    privilege_approved: e.privilege?.approved ?? null,
    attributes: JSON.stringify(e.attributes),
    score: v.score,
    decision: v.decision,
    regime: v.regime,
    reasons: v.contributions.map((c) => c.reason),
    contributions: JSON.stringify(v.contributions),
    hard_rule: v.hardRule ?? null,
    shadow: v.shadow,
  };
}

/** Copies the entries whose value is not null (absent optional fields stay absent, not `undefined`). */
function present<T extends object>(fields: { [K in keyof T]: T[K] | null }): Partial<T> {
  const out: Partial<T> = {};
  for (const key of Object.keys(fields) as (keyof T)[]) {
    const value = fields[key];
    if (value !== null) out[key] = value;
  }
  return out;
}

/** A stored event row (selected with EVENT_COLUMNS) back into the event and the verdict it got. */
export function rowToEvent(r: EventRowOut): ScoredEvent {
  const event: AgentEvent = {
    id: r.id,
    tenant: r.tenant,
    kind: r.kind as EventKind,
    taskId: r.task_id,
    taskType: r.task_type,
    agentId: r.agent_id,
    traceId: r.trace_id,
    spanId: r.span_id,
    parentSpanId: r.parent_span_id,
    name: r.name,
    startMs: fromMicros(r.start_us),
    endMs: fromMicros(r.end_us),
    error: r.error,
    ...present<{ errorType: string }>({ errorType: r.error_type }),
    attributes: JSON.parse(r.attributes) as Record<string, AttributeValue>,
  };
  if (r.tool_name !== null) {
    event.tool = {
      name: r.tool_name,
      ...present<Omit<ToolCallDetail, 'name'>>({
        type: r.tool_type,
        sideEffect: r.tool_side_effect as ToolCallDetail['sideEffect'] | null,
        target: r.tool_target,
        callId: r.tool_call_id,
      }),
    };
  }
  if (r.data_resource !== null) {
    event.data = {
      resource: r.data_resource,
      ...present<Omit<DataAccessDetail, 'resource'>>({
        system: r.data_system,
        operation: r.data_operation,
        rows: r.data_rows,
        bytes: r.data_bytes,
        classification: r.data_classification as DataAccessDetail['classification'] | null,
        host: r.data_host,
      }),
    };
  }
  if (r.privilege_action !== null) {
    event.privilege = {
      action: r.privilege_action,
      scopesBefore: r.scopes_before,
      scopesAfter: r.scopes_after,
      ...present<Omit<PrivilegeDetail, 'action' | 'scopesBefore' | 'scopesAfter'>>({
        resource: r.privilege_resource,
        grantedBy: r.privilege_granted_by,
        approved: r.privilege_approved,
      }),
    };
  }
  const verdict: Verdict = {
    score: r.score,
    decision: r.decision as Decision,
    regime: r.regime as Regime,
    contributions: JSON.parse(r.contributions) as Contribution[],
    ...present<{ hardRule: string }>({ hardRule: r.hard_rule }),
    shadow: r.shadow,
  };
  return { event, verdict };
}

function alertToRow(a: Alert): AlertRowIn {
  return {
    id: a.id,
    tenant: a.tenant,
    task_id: a.taskId,
    task_type: a.taskType,
    agent_id: a.agentId,
    event_id: a.eventId,
    time: utcText(a.timeMs),
    score: a.score,
    decision: a.decision,
    regime: a.regime,
    reasons: a.reasons,
    shadow: a.shadow,
  };
}

/** A stored alert row (selected with ALERT_COLUMNS) back into an Alert. */
export function rowToAlert(r: AlertRowOut): Alert {
  return {
    id: r.id,
    tenant: r.tenant,
    taskId: r.task_id,
    taskType: r.task_type,
    agentId: r.agent_id,
    eventId: r.event_id,
    timeMs: fromMicros(r.time_us),
    score: r.score,
    decision: r.decision as Decision,
    regime: r.regime as Regime,
    reasons: r.reasons,
    shadow: r.shadow,
  };
}

/** A revocation as a row of the `revocations` table (JSONEachRow). */
export function revocationToRow(v: Revocation): RevocationRowIn {
  return {
    id: v.id,
    tenant: v.tenant,
    task_id: v.taskId,
    task_type: v.taskType,
    agent_id: v.agentId,
    action: v.action,
    source: v.source,
    actor: v.actor,
    reason: v.reason,
    reasons: v.reasons,
    score: v.score,
    event_id: v.eventId,
    time: utcText(v.timeMs),
  };
}

function rowToRevocation(r: RevocationRowOut): Revocation {
  return {
    id: r.id,
    tenant: r.tenant,
    taskId: r.task_id,
    taskType: r.task_type,
    agentId: r.agent_id,
    action: r.action as RevocationAction,
    source: r.source as Revocation['source'],
    actor: r.actor,
    reason: r.reason,
    reasons: r.reasons,
    score: r.score,
    eventId: r.event_id,
    timeMs: fromMicros(r.time_us),
  };
}

function taskToRow(t: TaskRecord): TaskRowIn {
  return {
    tenant: t.tenant,
    task_id: t.taskId,
    task_name: t.name,
    task_type: t.taskType,
    agent_id: t.agentId,
    status: t.status,
    score: t.score,
    decision: t.decision,
    regime: t.regime,
    reasons: t.reasons,
    count_tool_call: t.counts.tool_call,
    count_data_access: t.counts.data_access,
    count_privilege_change: t.counts.privilege_change,
    started_at: utcText(t.startedMs),
    last_event_at: utcText(t.lastEventMs),
    ended_at: t.endedMs === null ? null : utcText(t.endedMs),
    version: t.version,
  };
}

function rowToTask(r: TaskRowOut): TaskRecord {
  return {
    tenant: r.tenant,
    taskId: r.task_id,
    name: r.task_name,
    taskType: r.task_type,
    agentId: r.agent_id,
    status: r.status as TaskStatus,
    score: r.score,
    decision: r.decision as Decision,
    regime: r.regime as Regime,
    reasons: r.reasons,
    counts: { tool_call: r.count_tool_call, data_access: r.count_data_access, privilege_change: r.count_privilege_change },
    startedMs: fromMicros(r.started_us),
    lastEventMs: fromMicros(r.last_event_us),
    endedMs: r.ended_us === null ? null : fromMicros(r.ended_us),
    version: r.version,
  };
}

function baselineToRow(b: BaselineRecord): BaselineRowIn {
  return {
    tenant: b.tenant,
    task_type: b.taskType,
    agent_id: b.agentId,
    tasks: b.tasks,
    model: b.model,
    updated_at: utcText(b.updatedMs),
  };
}

function rowToBaseline(r: BaselineRowOut): BaselineRecord {
  return {
    tenant: r.tenant,
    taskType: r.task_type,
    agentId: r.agent_id,
    tasks: r.tasks,
    model: r.model,
    updatedMs: fromMicros(r.updated_us),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Pagination cursor: base64url of [time in microseconds, id] of the last row of the page. Pages are keyset pages
// on (time DESC, id DESC): rows inserted later with a newer time land before the cursor and never shift the
// pages that follow it.

function encodeCursor(timeUs: number, id: string): string {
  return Buffer.from(JSON.stringify([timeUs, id]), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): { timeUs: number; id: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (Array.isArray(parsed) && parsed.length === 2) {
    const [timeUs, id] = parsed as unknown[];
    if (typeof timeUs === 'number' && Number.isSafeInteger(timeUs) && isString(id)) return { timeUs, id };
  }
  throw new TriplineError('VALIDATION_FAILED', 'cursor is not a nextCursor returned by a previous page', {
    details: { key: 'cursor' },
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Migrations.

interface Migration {
  version: number;
  name: string;
  checksum: string;
  statements: string[];
}

/** Splits a file on `;` at the end of a line; whole-line `--` comments are dropped. */
function splitStatements(sql: string): string[] {
  const body = sql
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n');
  return body
    .split(/;[ \t]*(?:\r?\n|$)/)
    .map((statement) => statement.trim())
    .filter((statement) => statement !== '');
}

function loadMigrations(dir: string, database: string): Migration[] {
  const migrations: Migration[] = [];
  for (const file of readdirSync(dir).sort()) {
    const match = MIGRATION_FILE.exec(file);
    if (match === null) continue;
    const text = readFileSync(join(dir, file), 'utf8');
    const version = Number(match[1]);
    if (migrations.some((m) => m.version === version)) {
      throw new TriplineError('STORE_MIGRATION_FAILED', `Two migration files have the number ${match[1]} in ${dir}`);
    }
    migrations.push({
      version,
      name: file,
      checksum: createHash('sha256').update(text).digest('hex'),
      statements: splitStatements(text.replaceAll(DATABASE_PLACEHOLDER, `\`${database}\``)),
    });
  }
  if (migrations[0]?.version !== 0) {
    throw new TriplineError('STORE_MIGRATION_FAILED', `${dir} must hold 000_schema_migrations.sql (the bootstrap)`);
  }
  return migrations;
}

/** A concurrent migrator created the same object first: the state we wanted is there. */
function isAlreadyExists(error: unknown): boolean {
  const code = clickHouseErrorCode(error);
  return code === CODE.TABLE_ALREADY_EXISTS || code === CODE.DATABASE_ALREADY_EXISTS;
}

// ---------------------------------------------------------------------------------------------------------------

/** What pagination needs of an alert or revocation row. */
interface ListRow {
  id: string;
  time_us: number;
}

type Table = 'events' | 'alerts' | 'revocations' | 'tasks' | 'baselines';

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
  /** Set for the embedded engine: this store's entry in `openEmbedded`. */
  readonly #embeddedKey: string | undefined;
  readonly #inflight = new Set<Promise<unknown>>();
  #migrating: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(client: ClickHouseClient, database: string, migrationsDir: string, logger: StoreLogger, embeddedKey: string | undefined, side?: { revocations: ClickHouseClient; lookups: ClickHouseClient }) {
    this.#client = client;
    this.#side = side;
    this.#db = database;
    this.#migrationsDir = migrationsDir;
    this.#logger = logger;
    this.#embeddedKey = embeddedKey;
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

  async #insert<T>(table: Table, rows: readonly T[], check: (row: T) => Check, toRow: (row: T) => object, idOf: (row: T) => string, client = this.#client): Promise<void> {
    const values: object[] = [];
    const rejected: { id: string; problem: string }[] = [];
    for (const row of rows) {
      const problem = check(row);
      if (problem === undefined) values.push(wellFormed(toRow(row)));
      else rejected.push({ id: idOf(row), problem });
    }
    if (rejected.length > 0) {
      this.#logger.warn(
        { table, rejected: rejected.length, of: rows.length, examples: rejected.slice(0, 10) },
        'store left out rows that cannot be stored',
      );
    }
    if (values.length === 0) return;
    await this.#run(`insert into ${table}`, async () => {
      await client.insert({
        table: `${this.#db}.${table}`,
        values,
        format: 'JSONEachRow',
        clickhouse_settings: INSERT_SETTINGS,
      });
    });
  }

  migrate(): Promise<void> {
    // One migration at a time in this process; a later call re-reads the ledger and finds nothing to do.
    const previous = this.#migrating ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.#run('migration', () => this.#migrateNow()));
    this.#migrating = next;
    return next;
  }

  async #migrateNow(): Promise<void> {
    let migrations: Migration[];
    try {
      migrations = loadMigrations(this.#migrationsDir, this.#db);
    } catch (error) {
      if (error instanceof TriplineError) throw error;
      throw new TriplineError('STORE_MIGRATION_FAILED', `Cannot read the migrations in ${this.#migrationsDir}: ${messageOf(error)}`, {
        cause: error,
      });
    }
    const [bootstrap, ...rest] = migrations;
    if (bootstrap === undefined) return;
    await this.#apply(bootstrap);
    const applied = new Map(
      (
        (await this.#select(
          `SELECT version, argMin(checksum, applied_at) AS checksum FROM ${this.#db}.schema_migrations GROUP BY version`,
        )) as { version: number; checksum: string }[]
      ).map((row) => [row.version, row.checksum]),
    );
    for (const migration of [bootstrap, ...rest]) {
      const recorded = applied.get(migration.version);
      if (recorded === undefined) {
        if (migration !== bootstrap) await this.#apply(migration);
        await this.#client.insert({
          table: `${this.#db}.schema_migrations`,
          values: [{ version: migration.version, name: migration.name, checksum: migration.checksum }],
          format: 'JSONEachRow',
        });
        this.#logger.info({ database: this.#db, migration: migration.name }, 'applied migration');
      } else if (recorded !== migration.checksum) {
        this.#logger.warn(
          { database: this.#db, migration: migration.name },
          'migration file changed after it was applied; it is not run again (add a new numbered file instead)',
        );
      }
    }
  }

  async #apply(migration: Migration): Promise<void> {
    for (const statement of migration.statements) {
      try {
        await this.#client.command({ query: statement });
      } catch (error) {
        if (isAlreadyExists(error)) continue;
        if (clickHouseErrorCode(error) === undefined) throw error; // not the server's answer: unreachable
        throw new TriplineError('STORE_MIGRATION_FAILED', `Migration ${migration.name} failed: ${messageOf(error)}`, {
          cause: error,
          details: { migration: migration.name },
        });
      }
    }
  }

  insertEvents(rows: readonly ScoredEvent[]): Promise<void> {
    return this.#insert('events', rows, checkEvent, eventToRow, (row) => row.event.id);
  }

  insertAlerts(rows: readonly Alert[]): Promise<void> {
    return this.#insert('alerts', rows, checkAlert, alertToRow, (row) => row.id);
  }

  insertRevocations(rows: readonly Revocation[]): Promise<void> {
    return this.#insert('revocations', rows, checkRevocation, revocationToRow, (row) => row.id, this.#side?.revocations);
  }

  upsertTasks(rows: readonly TaskRecord[]): Promise<void> {
    return this.#insert('tasks', rows, checkTask, taskToRow, (row) => `${row.tenant}/${row.taskId}@${String(row.version)}`);
  }

  saveBaselines(rows: readonly BaselineRecord[]): Promise<void> {
    return this.#insert('baselines', rows, checkBaseline, baselineToRow, (row) => `${row.tenant}/${row.taskType}/${row.agentId}`);
  }

  getTask(tenant: string, taskId: string): Promise<TaskRecord | null> {
    return this.#run('getTask', async () => {
      const rows = await this.#selectTasks('tenant = {tenant:String} AND task_id = {taskId:String}', { tenant, taskId });
      const row = rows[0] ?? (await this.#taskByName(tenant, taskId));
      return row === undefined ? null : rowToTask(row);
    });
  }

  /** The task that took `name` as its declared name (the newest, should two traces have declared it). */
  async #taskByName(tenant: string, name: string): Promise<TaskRowOut | undefined> {
    const named = (await this.#select(
      `SELECT task_id FROM ${this.#db}.tasks FINAL WHERE tenant = {tenant:String} AND task_name = {name:String} ORDER BY version DESC LIMIT 1`,
      { tenant, name },
    )) as { task_id: string }[];
    const taskId = named[0]?.task_id;
    if (taskId === undefined) return undefined;
    return (await this.#selectTasks('tenant = {tenant:String} AND task_id = {taskId:String}', { tenant, taskId }))[0];
  }

  getTasks(tenant: string, taskIds: readonly string[]): Promise<TaskRecord[]> {
    if (taskIds.length === 0) return Promise.resolve([]);
    return this.#run('getTasks', async () => {
      const rows = await this.#selectTasks('tenant = {tenant:String} AND task_id IN {taskIds:Array(String)}', { tenant, taskIds: [...taskIds] }, {}, this.#side?.lookups);
      return rows.map(rowToTask);
    });
  }

  listActiveTasks(tenant?: string): Promise<TaskRecord[]> {
    return this.#run('listActiveTasks', async () => {
      const rows = await this.#selectTasks(tenant === undefined ? '1' : 'tenant = {tenant:String}', tenant === undefined ? {} : { tenant }, {
        where: "status = 'active'",
        orderBy: 'tenant, started_us, task_id',
      });
      return rows.map(rowToTask);
    });
  }

  /**
   * Task records with their status reconciled with the revocations log. A revocation (or restore) row is written
   * the moment it is decided, the task's snapshot afterwards (its version is the microsecond it was taken): a
   * process that dies in between leaves a snapshot older than the kill, and whoever rebuilds the task from the
   * store must not miss the kill (or the restore). So the log's latest row wins when it is newer than the
   * snapshot. `filter` applies to both tables (tenant and task_id only); `outer.where` to the reconciled rows.
   */
  async #selectTasks(filter: string, params: Record<string, unknown>, outer: { where?: string; orderBy?: string } = {}, client = this.#client): Promise<TaskRowOut[]> {
    const db = this.#db;
    return (await this.#select(
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

  eventsForTask(tenant: string, taskId: string): Promise<ScoredEvent[]> {
    return this.#run('eventsForTask', async () => {
      const rows = (await this.#select(
        `SELECT ${EVENT_COLUMNS} FROM ${this.#db}.events FINAL
         WHERE tenant = {tenant:String} AND task_id = {taskId:String}
         ORDER BY start_time, end_time, id`,
        { tenant, taskId },
      )) as EventRowOut[];
      return rows.map(rowToEvent);
    });
  }

  eventsForTasks(tenant: string, taskIds: readonly string[]): Promise<Map<string, ScoredEvent[]>> {
    return this.#run('eventsForTasks', async () => {
      const byTask = new Map<string, ScoredEvent[]>();
      for (let i = 0; i < taskIds.length; i += TASK_IDS_PER_QUERY) {
        const rows = (await this.#select(
          `SELECT ${EVENT_COLUMNS} FROM ${this.#db}.events FINAL
           WHERE tenant = {tenant:String} AND task_id IN {taskIds:Array(String)}
           ORDER BY task_id, start_time, end_time, id`,
          { tenant, taskIds: taskIds.slice(i, i + TASK_IDS_PER_QUERY) },
        )) as EventRowOut[];
        for (const row of rows) {
          const events = byTask.get(row.task_id);
          if (events === undefined) byTask.set(row.task_id, [rowToEvent(row)]);
          else events.push(rowToEvent(row));
        }
      }
      return byTask;
    });
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
    const { limit } = filter;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
      throw new TriplineError('VALIDATION_FAILED', `limit must be an integer from 1 to ${MAX_PAGE} (got ${String(limit)})`, {
        details: { key: 'limit' },
      });
    }
    const conditions: string[] = [];
    const params: Record<string, unknown> = {};
    if (filter.tenant !== undefined) {
      conditions.push('tenant = {tenant:String}');
      params.tenant = filter.tenant;
    }
    if (filter.taskId !== undefined) {
      conditions.push('task_id = {taskId:String}');
      params.taskId = filter.taskId;
    }
    if (filter.agentId !== undefined) {
      conditions.push('agent_id = {agentId:String}');
      params.agentId = filter.agentId;
    }
    if (filter.sinceMs !== undefined) {
      if (!Number.isFinite(filter.sinceMs)) {
        throw new TriplineError('VALIDATION_FAILED', `sinceMs must be epoch milliseconds (got ${String(filter.sinceMs)})`, {
          details: { key: 'sinceMs' },
        });
      }
      conditions.push("time >= fromUnixTimestamp64Micro({sinceUs:Int64}, 'UTC')");
      // Clamped to the times the store holds (writes stop at MAX_TIME_MS): a later `since` matches nothing,
      // rather than overflowing Int64 microseconds and failing as if the store were down.
      params.sinceUs = toMicros(Math.min(Math.max(0, filter.sinceMs), MAX_TIME_MS));
    }
    if (filter.cursor !== undefined) {
      const cursor = decodeCursor(filter.cursor);
      conditions.push("(time, id) < (fromUnixTimestamp64Micro({cursorUs:Int64}, 'UTC'), {cursorId:String})");
      params.cursorUs = cursor.timeUs;
      params.cursorId = cursor.id;
    }
    const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
    return this.#run(`list ${table}`, async () => {
      const rows = (await this.#select(
        `SELECT ${columns} FROM ${this.#db}.${table} FINAL ${where} ORDER BY time DESC, id DESC LIMIT ${limit + 1}`,
        params,
      )) as ListRow[];
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        items: page.map(toRecord),
        ...(rows.length > limit && last !== undefined ? { nextCursor: encodeCursor(last.time_us, last.id) } : {}),
      };
    });
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

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#inflight]);
      try {
        await this.#client.close();
        await this.#side?.revocations.close();
        await this.#side?.lookups.close();
      } finally {
        if (this.#embeddedKey !== undefined) openEmbedded.delete(this.#embeddedKey);
      }
      this.#logger.info({ database: this.#db }, 'store closed');
    })();
    return this.#closing;
  }
}
