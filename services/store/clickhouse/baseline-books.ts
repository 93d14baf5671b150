/**
 * Published baseline books (the `baseline_books` table, migration 020): the learner writes the whole book as one
 * versioned row, processors and the API read the newest. Also the feedback count the learner watches (a new
 * false-positive mark makes it publish at once). The table is also created on first use, from the migration's DDL.
 */
import { readFileSync } from 'node:fs';
import type { ClickHouseClient } from '@clickhouse/client';

import { TriplineError } from '../../shared/errors.ts';
import type { BaselineRecord } from '../store.ts';
import { isDatabaseName } from './client.ts';
import { run, select } from './detection-context.ts';
import type { DetectionContext } from './detection-context.ts';
import { createFeedbackTable } from './feedback-queries.ts';
import { utcText } from './values.ts';

const BOOKS_TABLE_SQL = readFileSync(
  new URL('../../../schemas/clickhouse/020_baseline_books.sql', import.meta.url),
  'utf8',
)
  .replace(/^--.*$/gm, '')
  .replace('{database:Identifier}', '{db}')
  .trim()
  .replace(/;$/, '');

/** One published version of every baseline of every tenant. */
export interface PublishedBook {
  version: number;
  builtMs: number;
  /** The process that built it. */
  learner: string;
  /** Tasks learned. */
  tasks: number;
  /** False-positive marks in the store when it was built. */
  feedback: number;
  records: BaselineRecord[];
}

export interface BaselineBooks {
  /** Create the table (and the feedback table it watches) if missing (idempotent). */
  ensureSchema(): Promise<void>;
  publish(book: PublishedBook): Promise<void>;
  /** The newest version, 0 when none was published. */
  latestVersion(): Promise<number>;
  /** The newest book (or the given version), null when there is none. */
  load(version?: number): Promise<PublishedBook | null>;
  /** False-positive marks in the store: the learner publishes at once when it grows. */
  feedbackCount(): Promise<number>;
}

interface BookRow {
  version: number;
  built_ms: number;
  learner: string;
  tasks: number;
  feedback: number;
  records: string;
}

/**
 * Versions kept besides the one being published: a book is the whole of every baseline (megabytes for a large
 * fleet) and the learner may publish one a minute, so older versions are deleted; the newest few stay to compare
 * with, and a processor that just read the newest version's number still finds it.
 */
export const KEPT_BOOK_VERSIONS = 10;

export function createBaselineBooks(client: ClickHouseClient, database: string): BaselineBooks {
  if (!isDatabaseName(database))
    throw new TriplineError(
      'CONFIG_INVALID',
      `database must be letters, digits and _ (got ${JSON.stringify(database)})`,
    );
  const context: DetectionContext = { client, db: database };
  const db = database;
  let schema: Promise<void> | undefined;
  const ensureSchema = (): Promise<void> => {
    schema ??= run('creating the baseline_books table', async () => {
      await client.command({ query: BOOKS_TABLE_SQL.replaceAll('{db}', `\`${db}\``) });
      await createFeedbackTable(context);
    }).catch((error: unknown) => {
      schema = undefined;
      throw error;
    });
    return schema;
  };
  /** Deletes all but the newest KEPT_BOOK_VERSIONS - 1 versions older than `publishing`. */
  const pruneBefore = (publishing: number): Promise<void> =>
    run('pruning old baseline books', async () => {
      const rows = await select<{ version: number }>(
        context,
        `SELECT version FROM ${db}.baseline_books FINAL WHERE version < {publishing:UInt64}
         ORDER BY version DESC LIMIT 1 OFFSET {kept:UInt64}`,
        { publishing, kept: KEPT_BOOK_VERSIONS - 1 },
      );
      const newestDropped = rows[0]?.version;
      if (newestDropped === undefined) return;
      await client.command({
        query: `DELETE FROM ${db}.baseline_books WHERE version <= {newestDropped:UInt64}`,
        query_params: { newestDropped },
      });
    });
  return {
    ensureSchema,
    async publish(book) {
      await ensureSchema();
      await pruneBefore(book.version);
      await run('insert into baseline_books', async () => {
        await client.insert({
          table: `${db}.baseline_books`,
          format: 'JSONEachRow',
          values: [
            {
              version: book.version,
              built_at: utcText(book.builtMs),
              learner: book.learner,
              tasks: book.tasks,
              feedback: book.feedback,
              records: JSON.stringify(book.records),
            },
          ],
        });
      });
    },
    async latestVersion() {
      await ensureSchema();
      return run('latest baseline book', async () => {
        const rows = await select<{ version: number }>(
          context,
          `SELECT max(version) AS version FROM ${db}.baseline_books`,
        );
        return rows[0]?.version ?? 0;
      });
    },
    async load(version) {
      await ensureSchema();
      return run('loading a baseline book', async () => {
        const rows = await select<BookRow>(
          context,
          `SELECT version, toUnixTimestamp64Milli(built_at) AS built_ms, learner, tasks, feedback, records
           FROM ${db}.baseline_books FINAL
           ${version === undefined ? '' : 'WHERE version = {version:UInt64}'}
           ORDER BY version DESC LIMIT 1`,
          version === undefined ? {} : { version },
        );
        const row = rows[0];
        if (row === undefined) return null;
        return {
          version: row.version,
          builtMs: row.built_ms,
          learner: row.learner,
          tasks: row.tasks,
          feedback: row.feedback,
          records: parseRecords(row.records, row.version),
        };
      });
    },
    async feedbackCount() {
      await ensureSchema();
      return run('counting feedback', async () => {
        const rows = await select<{ marks: number }>(
          context,
          `SELECT count() AS marks FROM ${db}.feedback FINAL WHERE kind = 'false_positive'`,
        );
        return rows[0]?.marks ?? 0;
      });
    },
  };
}

function parseRecords(text: string, version: number): BaselineRecord[] {
  try {
    const parsed: unknown = JSON.parse(text);
    if (Array.isArray(parsed)) return parsed as BaselineRecord[];
  } catch {
    // reported below
  }
  throw new TriplineError('STORE_UNAVAILABLE', `baseline book ${String(version)} is not a JSON array of baselines`);
}
