/**
 * Pages of alerts and revocations, newest first, filtered by tenant, task, agent and time. Keyset pages with an
 * opaque cursor.
 */
import { TriplineError } from '../../shared/errors.ts';
import type { ListFilter, Page } from '../store.ts';
import { isString } from './checks.ts';
import { MAX_TIME_MS, toMicros } from './values.ts';

const MAX_PAGE = 1000;

/** What pagination needs of an alert or revocation row. */
export interface ListRow {
  id: string;
  time_us: number;
}

/** The query of one page of `table` (one row more than the page, to tell whether another follows); throws on a bad filter. */
export function pageQuery(
  db: string,
  table: 'alerts' | 'revocations',
  columns: string,
  filter: ListFilter,
): { query: string; params: Record<string, unknown> } {
  const { limit } = filter;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new TriplineError(
      'VALIDATION_FAILED',
      `limit must be an integer from 1 to ${MAX_PAGE} (got ${String(limit)})`,
      {
        details: { key: 'limit' },
      },
    );
  }
  const { conditions, params } = pageConditions(filter);
  const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
  return {
    query: `SELECT ${columns} FROM ${db}.${table} FINAL ${where} ORDER BY time DESC, id DESC LIMIT ${limit + 1}`,
    params,
  };
}

/** The page of the rows `pageQuery` selected. */
export function toPage<T>(rows: ListRow[], limit: number, toRecord: (row: ListRow) => T): Page<T> {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    items: page.map(toRecord),
    ...(rows.length > limit && last !== undefined ? { nextCursor: encodeCursor(last.time_us, last.id) } : {}),
  };
}

function pageConditions(filter: ListFilter): { conditions: string[]; params: Record<string, unknown> } {
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
      throw new TriplineError(
        'VALIDATION_FAILED',
        `sinceMs must be epoch milliseconds (got ${String(filter.sinceMs)})`,
        {
          details: { key: 'sinceMs' },
        },
      );
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
  return { conditions, params };
}

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
