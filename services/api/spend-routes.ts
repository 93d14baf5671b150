/**
 * Spend of model calls (docs/budgets.md), read from the store's `model_usage`:
 *
 *   GET /v1/spend?by=task|agent|task_type&window=24h&from=&to=&task_id=&limit=   spend per group, costliest first
 *
 * `window` (`30m`, `24h`, `7d`; default 24h) ends at `to` (default now), unless `from` is given. The task view
 * (GET /v1/tasks/:taskId) carries its own spend through `taskSpend`.
 */
import type { FastifyInstance } from 'fastify';
import { tenantOf } from './access.ts';
import { parseTime } from './detection-routes.ts';
import { TriplineError } from '../shared/errors.ts';
import type { SpendRow, Store } from '../store/store.ts';

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };
const MAX_WINDOW_MS = 366 * 86_400_000;

const spendQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    by: { type: 'string', enum: ['task', 'agent', 'task_type'], default: 'task' },
    window: { type: 'string', pattern: '^[0-9]{1,5}[mhd]$', default: '24h' },
    from: { type: 'string', minLength: 1, maxLength: 64 },
    to: { type: 'string', minLength: 1, maxLength: 64 },
    task_id: { type: 'string', minLength: 1, maxLength: 256 },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  },
} as const;

interface SpendQuery {
  by: 'task' | 'agent' | 'task_type';
  window: string;
  from?: string;
  to?: string;
  task_id?: string;
  limit: number;
}

function windowMs(text: string): number {
  const ms = Number(text.slice(0, -1)) * (UNIT_MS[text.slice(-1)] ?? 0);
  if (!(ms > 0 && ms <= MAX_WINDOW_MS))
    throw new TriplineError('VALIDATION_FAILED', `window=${text} must be from 1m to 366d`, {
      details: { key: 'window' },
    });
  return ms;
}

/** A spend row as the API shows it. */
export function spendView(row: SpendRow): Record<string, unknown> {
  return {
    key: row.key,
    costUsd: Math.round(row.costUsd * 1e6) / 1e6,
    inputTokens: row.inputTokens,
    outputTokens: row.outputTokens,
    calls: row.calls,
    unpricedCalls: row.unpriced,
    models: row.models,
  };
}

/** One task's spend over all time (the task view), or null when it made no model call. */
export async function taskSpend(
  store: Pick<Store, 'spend'>,
  tenant: string,
  taskId: string,
  nowMs: number,
): Promise<Record<string, unknown> | null> {
  const rows = await store.spend({ tenant, by: 'task', fromMs: 0, toMs: nowMs + 86_400_000, limit: 1, taskId });
  const row = rows[0];
  return row === undefined ? null : spendView(row);
}

export function registerSpendRoutes(
  app: FastifyInstance,
  store: Pick<Store, 'spend'>,
  now: () => number = Date.now,
): void {
  app.get<{ Querystring: SpendQuery }>('/v1/spend', { schema: { querystring: spendQuery } }, async (request) => {
    const { query } = request;
    const toMs = query.to === undefined ? now() : parseTime('to', query.to);
    const fromMs = query.from === undefined ? toMs - windowMs(query.window) : parseTime('from', query.from);
    if (fromMs > toMs)
      throw new TriplineError('VALIDATION_FAILED', 'from must not be after to', { details: { key: 'from' } });
    const rows = await store.spend({
      tenant: tenantOf(request),
      by: query.by,
      fromMs,
      toMs,
      limit: query.limit,
      ...(query.task_id === undefined ? {} : { taskId: query.task_id }),
    });
    const items = rows.map(spendView);
    return {
      by: query.by,
      from: new Date(fromMs).toISOString(),
      to: new Date(toMs).toISOString(),
      totalUsd: Math.round(rows.reduce((sum, row) => sum + row.costUsd, 0) * 1e6) / 1e6,
      items,
    };
  });
}
