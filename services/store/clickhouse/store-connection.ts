/**
 * Opening the store's connections, with the failures told apart: a server's refused credentials from an
 * unreachable one, and an embedded data directory held by another process (or another store of this one) from an
 * engine that cannot open it. Each connection answers `SELECT version()` before it is handed out.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { TriplineError, messageOf } from '../../shared/errors.ts';
import { QUERY_SETTINGS, embeddedClient, embeddedDataDir, serverClient } from './client.ts';
import type { ClientSetup, ClickHouseTarget, StoreLogger } from './client.ts';
import { CODE, clickHouseErrorCode } from './error-codes.ts';

/** The store's client setup: the server sees the application `tripline`; the client's warnings go to `logger`. */
export function storeClientSetup(logger: StoreLogger, requestTimeoutMs?: number): ClientSetup {
  return {
    application: 'tripline',
    settings: QUERY_SETTINGS,
    logger,
    ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }),
  };
}

/**
 * Embedded stores open in this process, by data directory and database. libchdb serves one data directory per
 * process (other directories are refused while it is bound) and lets several connections share it; a second
 * store over the same directory AND database is refused here, since two owners of one store is a wiring bug.
 */
const openEmbedded = new Set<string>();

/** Lets another store open `key` (a data directory and database) again: its store has closed. */
export function releaseEmbedded(key: string): void {
  openEmbedded.delete(key);
}

export async function openServer(
  rawUrl: string,
  credentials: Omit<ClickHouseTarget, 'dataDir' | 'url'>,
  requestTimeoutMs: number,
  logger: StoreLogger,
): Promise<ClickHouseClient> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch (error) {
    throw new TriplineError('CONFIG_INVALID', `url must be an http(s) URL (got ${JSON.stringify(rawUrl)})`, {
      cause: error,
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TriplineError('CONFIG_INVALID', `url must be an http(s) URL (got protocol ${url.protocol})`);
  }
  const where = `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
  const client = serverClient(rawUrl, credentials, storeClientSetup(logger, requestTimeoutMs));
  try {
    const result = await client.query({ query: 'SELECT version() AS version', format: 'JSONEachRow' });
    const rows = await result.json<{ version: string }>();
    logger.info({ store: 'clickhouse', url: where, version: rows[0]?.version }, 'connected to ClickHouse');
    return client;
  } catch (error) {
    await client.close().catch(() => undefined);
    const code = clickHouseErrorCode(error);
    if (code === CODE.AUTHENTICATION_FAILED || code === CODE.REQUIRED_PASSWORD) {
      throw new TriplineError(
        'CONFIG_INVALID',
        `ClickHouse at ${where} refused the credentials; check the username and password`,
        {
          cause: error,
          details: { url: where },
        },
      );
    }
    throw new TriplineError('STORE_UNAVAILABLE', `ClickHouse at ${where} cannot be reached: ${messageOf(error)}`, {
      cause: error,
      details: { url: where },
    });
  }
}

/** The embedded engine at `dataDir`; `key` is the store's entry in `openEmbedded` and `dir` the resolved directory. */
export async function openEmbeddedEngine(
  dataDir: string,
  database: string,
  logger: StoreLogger,
): Promise<{ client: ClickHouseClient; key: string; dir: string }> {
  const dir = embeddedDataDir(dataDir);
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
    client = embeddedClient(dir, storeClientSetup(logger));
  } catch (error) {
    throw engineRefusal(error, dir);
  }
  openEmbedded.add(key);
  try {
    const result = await client.query({ query: 'SELECT version() AS version', format: 'JSONEachRow' });
    const rows = await result.json<{ version: string }>();
    logger.info({ store: 'chdb', dataDir: dir, database, version: rows[0]?.version }, 'opened the embedded store');
  } catch (error) {
    openEmbedded.delete(key);
    await client.close().catch(() => undefined);
    throw new TriplineError('STORE_UNAVAILABLE', `The embedded engine at ${dir} does not answer: ${messageOf(error)}`, {
      cause: error,
    });
  }
  return { client, key, dir };
}

/** Why the engine refused to open `dir`, as the error to throw. */
function engineRefusal(error: unknown, dir: string): TriplineError {
  const message = messageOf(error);
  // chdb's error says only "Failed to create connection for path ..."; the engine's reason ("Cannot lock file
  // <dir>/status. Another server instance in same directory is already running") goes to the process output,
  // not into the error. The status file names the holder's PID while the holder runs (it is removed on close).
  const holder = lockHolder(dir);
  if (holder !== undefined || message.includes('Cannot lock file') || message.includes('Another server instance')) {
    return new TriplineError(
      'STORE_LOCKED',
      `The data directory ${dir} is in use by another Tripline process${holder === undefined ? '' : ` (pid ${String(holder)})`}; stop it or set TRIPLINE_DATA_DIR to another directory`,
      { cause: error, details: { dataDir: dir, ...(holder === undefined ? {} : { pid: holder }) } },
    );
  }
  if (message.includes('only one active data directory per process')) {
    return new TriplineError(
      'STORE_LOCKED',
      `This process already has the embedded store open at another directory, and the in-process engine serves one data directory per process; close that store before opening ${dir}`,
      { cause: error, details: { dataDir: dir } },
    );
  }
  return new TriplineError('STORE_UNAVAILABLE', `The embedded engine cannot open ${dir}: ${message}`, {
    cause: error,
    details: { dataDir: dir },
  });
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
