/**
 * Migrations: the numbered `.sql` files of schemas/clickhouse/, applied in order once each, recorded in the
 * `schema_migrations` ledger (the bootstrap, 000, creates it). A file changed after it was applied is not run
 * again; a change ships as a new numbered file.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { TriplineError, messageOf } from '../../shared/errors.ts';
import type { StoreLogger } from './client.ts';
import { CODE, clickHouseErrorCode } from './error-codes.ts';

export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../../schemas/clickhouse/', import.meta.url));
const MIGRATION_FILE = /^(\d{3})_([a-z0-9_]+)\.sql$/;
const DATABASE_PLACEHOLDER = '{database:Identifier}';

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

/** Applies the migrations of `dir` that the ledger of `database` does not hold yet, in order. */
export async function runMigrations(
  client: ClickHouseClient,
  database: string,
  dir: string,
  logger: StoreLogger,
): Promise<void> {
  let migrations: Migration[];
  try {
    migrations = loadMigrations(dir, database);
  } catch (error) {
    if (error instanceof TriplineError) throw error;
    throw new TriplineError('STORE_MIGRATION_FAILED', `Cannot read the migrations in ${dir}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  const [bootstrap, ...rest] = migrations;
  if (bootstrap === undefined) return;
  await apply(client, bootstrap);
  const applied = await appliedChecksums(client, database);
  for (const migration of [bootstrap, ...rest]) {
    const recorded = applied.get(migration.version);
    if (recorded === undefined) {
      if (migration !== bootstrap) await apply(client, migration);
      await client.insert({
        table: `${database}.schema_migrations`,
        values: [{ version: migration.version, name: migration.name, checksum: migration.checksum }],
        format: 'JSONEachRow',
      });
      logger.info({ database, migration: migration.name }, 'applied migration');
    } else if (recorded !== migration.checksum) {
      logger.warn(
        { database, migration: migration.name },
        'migration file changed after it was applied; it is not run again (add a new numbered file instead)',
      );
    }
  }
}

/** The ledger: each applied version's checksum (of its first application). */
async function appliedChecksums(client: ClickHouseClient, database: string): Promise<Map<number, string>> {
  const result = await client.query({
    query: `SELECT version, argMin(checksum, applied_at) AS checksum FROM ${database}.schema_migrations GROUP BY version`,
    format: 'JSONEachRow',
    query_params: {},
  });
  const rows = await result.json<{ version: number; checksum: string }>();
  return new Map(rows.map((row) => [row.version, row.checksum]));
}

async function apply(client: ClickHouseClient, migration: Migration): Promise<void> {
  for (const statement of migration.statements) {
    try {
      await client.command({ query: statement });
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
