import type { ClickHouseClient } from '@clickhouse/client';

/** What the store's query modules need of it: its database, and SELECT through its operation bookkeeping. */
export interface Reader {
  /** The database holding Tripline's tables (checked to be a plain identifier). */
  readonly db: string;
  /** Rows as ClickHouse sent them, on the store's main connection unless `client` is given; callers assert the row shape their column list produces. */
  select(query: string, params?: Record<string, unknown>, client?: ClickHouseClient): Promise<unknown[]>;
}
