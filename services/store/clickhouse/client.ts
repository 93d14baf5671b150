/**
 * The one place a `@clickhouse/client` client is made: a ClickHouse server over HTTP(S) when a `url` is set,
 * else the in-process engine (chdb) at `dataDir`. Both run the same SQL; only the connection differs. Each caller
 * passes the settings, application name and logging it needs.
 *
 * chdb runs on the calling thread's libuv pool and must only be used from the main thread (it hangs after use
 * from a worker thread). libchdb binds one data directory per process and lets several connections share it, so
 * every embedded client of a process is a connection to the same engine, not an engine of its own.
 */
import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import type { ClickHouseClient, ClickHouseSettings, Logger as ClientLogger } from '@clickhouse/client';
import { mkdirSync, realpathSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

import { TriplineError, messageOf } from '../../shared/errors.ts';
import { chdbConnection } from './chdb.ts';

/** The subset of a pino logger the ClickHouse adapters use. */
export interface StoreLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** Where ClickHouse is: the `store` part of TriplineConfig, or any subset of it that says where. */
export interface ClickHouseTarget {
  /** A ClickHouse server's HTTP(S) endpoint; when set, `dataDir` is ignored. */
  url?: string | undefined;
  /** @default 'default' (the client's default) */
  username?: string | undefined;
  /** @default '' */
  password?: string | undefined;
  /** The in-process engine's data directory (created if missing). */
  dataDir: string;
}

/** How one caller's client behaves. */
export interface ClientSetup {
  /** The application name a server sees (a server connection only). */
  application: string;
  /** Applied to every query of the client. */
  settings: ClickHouseSettings;
  /** Per-request timeout against a server. @default the client's default */
  requestTimeoutMs?: number;
  /** Where the client's own warnings and errors go. @default the client's (the console) */
  logger?: StoreLogger;
}

/** Applied to every query: 64-bit integers (counts, microsecond times) come back as JSON numbers. */
export const QUERY_SETTINGS: ClickHouseSettings = { output_format_json_quote_64bit_integers: 0 };
/** Inserts: correctly rounded float parsing, so a Float64 read back is the double that was written. */
export const INSERT_SETTINGS: ClickHouseSettings = { precise_float_parsing: 1 };
/**
 * The store's bulk inserts (events, alerts, tasks, usage): as INSERT_SETTINGS, and without the two steps that cost
 * more than they give here. `optimize_on_insert` would collapse duplicate ids within one insert block, which every
 * read's FINAL does anyway (the store's reading rule); parallel parsing starts threads for blocks of a few thousand
 * rows that one thread parses sooner. Measured on the in-process engine: 0.47 → 0.22 CPU-s per 10k event rows,
 * together with the compact row format (test/bench/store-insert.bench.ts).
 */
export const BULK_INSERT_SETTINGS: ClickHouseSettings = {
  ...INSERT_SETTINGS,
  optimize_on_insert: 0,
  input_format_parallel_parsing: 0,
};
/**
 * QUERY_SETTINGS unset, for a statement that returns no rows: the in-process engine turns a client's settings into
 * `SET …;` statements before the query, and a multi-statement query is lexed whole, an insert's rows included.
 */
export const WITHOUT_QUERY_SETTINGS: ClickHouseSettings = Object.fromEntries(
  Object.keys(QUERY_SETTINGS).map((name) => [name, undefined]),
);
/** BULK_INSERT_SETTINGS as an INSERT's SETTINGS clause (names and numbers only, so nothing needs quoting). */
export const BULK_INSERT_SETTINGS_SQL = Object.entries(BULK_INSERT_SETTINGS)
  .map(([name, value]) => `${name} = ${String(value)}`)
  .join(', ');

const DATABASE_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Whether `name` can be spliced into SQL as a database name: letters, digits and `_`, not starting with a digit. */
export function isDatabaseName(name: string): boolean {
  return DATABASE_PATTERN.test(name);
}

/** Whether the target names a server (a non-empty url) rather than the in-process engine. */
export function isServerUrl(url: string | undefined): url is string {
  return url !== undefined && url !== '';
}

/** A client on the server at `target.url`, or on the in-process engine at `target.dataDir`. */
export function openClickHouseClient(target: ClickHouseTarget, setup: ClientSetup): ClickHouseClient {
  if (isServerUrl(target.url)) return serverClient(target.url, target, setup);
  return embeddedClient(embeddedDataDir(target.dataDir), setup);
}

/** A client on the server at `url` (not contacted until the first query). */
export function serverClient(
  url: string,
  credentials: Omit<ClickHouseTarget, 'dataDir' | 'url'>,
  setup: ClientSetup,
): ClickHouseClient {
  return createClient({
    url,
    ...(credentials.username === undefined ? {} : { username: credentials.username }),
    ...(credentials.password === undefined ? {} : { password: credentials.password }),
    ...(setup.requestTimeoutMs === undefined ? {} : { request_timeout: setup.requestTimeoutMs }),
    application: setup.application,
    clickhouse_settings: setup.settings,
    ...(setup.logger === undefined ? {} : { log: clientLog(setup.logger) }),
  });
}

/**
 * The embedded engine's data directory, created if missing, with symlinks resolved (chdb resolves none). Refused
 * off the main thread.
 */
export function embeddedDataDir(dataDir: string): string {
  if (!isMainThread) {
    throw new TriplineError(
      'CONFIG_INVALID',
      'The embedded store (chdb) must run on the main thread: it hangs after use from a worker thread. Open it in the main thread or set a ClickHouse url.',
    );
  }
  if (dataDir === '')
    throw new TriplineError('CONFIG_INVALID', 'dataDir must be a directory path when no ClickHouse url is set');
  try {
    mkdirSync(dataDir, { recursive: true });
    return realpathSync(dataDir);
  } catch (error) {
    throw new TriplineError('CONFIG_INVALID', `dataDir ${dataDir} cannot be created: ${messageOf(error)}`, {
      cause: error,
    });
  }
}

/** A client on the in-process engine at `dir` (a directory as `embeddedDataDir` returns it). */
export function embeddedClient(dir: string, setup: ClientSetup): ClickHouseClient {
  return createClient({
    connection: chdbConnection(dir),
    clickhouse_settings: setup.settings,
    ...(setup.logger === undefined ? {} : { log: clientLog(setup.logger) }),
  });
}

/**
 * Routes the client's own log lines (warnings and errors; by default it writes them to the console) to the
 * store's logger. Its errors are also thrown to the caller, which wraps them in a TriplineError.
 */
function clientLog(logger: StoreLogger): { LoggerClass: new () => ClientLogger; level: ClickHouseLogLevel } {
  const forward = (params: { module: string; message: string; err?: Error }): void => {
    logger.warn(
      { module: params.module, ...(params.err === undefined ? {} : { err: messageOf(params.err) }) },
      `ClickHouse client: ${params.message}`,
    );
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
