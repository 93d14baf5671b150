/** What every detection read model runs on: a client, the database, and the SELECT and error rule they share. */
import type { ClickHouseClient } from '@clickhouse/client';

import { TriplineError, messageOf } from '../../shared/errors.ts';
import { QUERY_SETTINGS } from './client.ts';

export interface DetectionContext {
  readonly client: ClickHouseClient;
  /** The database holding Tripline's tables (checked to be a plain identifier). */
  readonly db: string;
}

/** Runs one operation, its failures as TriplineErrors (STORE_UNAVAILABLE unless already one). */
export async function run<T>(operation: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof TriplineError) throw error;
    throw new TriplineError('STORE_UNAVAILABLE', `ClickHouse ${operation} failed: ${messageOf(error)}`, {
      cause: error,
      details: { operation },
    });
  }
}

/** Rows as ClickHouse sent them, of the shape the caller's column list produces. */
export async function select<T>(
  context: DetectionContext,
  query: string,
  params: Record<string, unknown> = {},
): Promise<T[]> {
  const result = await context.client.query({
    query,
    format: 'JSONEachRow',
    query_params: params,
    clickhouse_settings: QUERY_SETTINGS,
  });
  return result.json<T>();
}
