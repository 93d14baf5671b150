/**
 * The embedded ClickHouse engine (chdb) as a `@clickhouse/client` connection. chdb is loaded on first use, not
 * on import: its engine library maps ~140 MB into any process that loads it, and the processes that never open
 * an embedded store (a Kafka gateway, anything given CLICKHOUSE_URL) import these modules too.
 */
import type { createClient } from '@clickhouse/client';
import type { createChdbConnection } from 'chdb/connection';
import { createRequire } from 'node:module';

type ClientConnection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>['connection']>;

let create: typeof createChdbConnection | undefined;

/** A connection to the chdb engine on `path` (an existing directory; chdb resolves no symlinks). */
export function chdbConnection(path: string): ClientConnection {
  create ??= (
    createRequire(import.meta.url)('chdb/connection') as { createChdbConnection: typeof createChdbConnection }
  ).createChdbConnection;
  // chdb declares the Connection contract from the standalone @clickhouse/client-common, which the client now
  // bundles as its own copy: the same shape under two type identities, hence the cast.
  return create({ path }) as unknown as ClientConnection;
}

/**
 * Waits until the embedded engine runs nothing: queries still running on libuv's threads (a closed connection's
 * included: closing one defers its teardown behind them) and deferred teardowns. A process that exits meanwhile does
 * not exit until they end (measured: `process.exit()` waited out a 15 s query), and an engine torn down by the exit
 * under a running query can leave it blocked for good. Resolves at once when this process never loaded chdb.
 */
export async function drainEmbeddedEngine(): Promise<void> {
  if (create === undefined) return;
  const chdb = createRequire(import.meta.url)('chdb') as { drainPending?: () => Promise<void> };
  await chdb.drainPending?.();
}
