/**
 * Model calls in ClickHouse (`model_usage`, schemas/clickhouse/016_model_usage.sql): the rows written, their checks,
 * and spend grouped by task, agent or task type.
 */
import type { ModelUsageRow, SpendGroup, SpendRow } from '../store.ts';
import type { Check } from './checks.ts';
import type { Reader } from './reader.ts';
import { MAX_TIME_MS, utcText } from './values.ts';

export interface ModelUsageRowIn {
  id: string;
  tenant: string;
  task_id: string;
  task_type: string;
  agent_id: string;
  trace_id: string;
  time: string;
  operation: string;
  model: string;
  provider: string;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  priced: boolean;
}

export function usageToRow({ usage, costUsd, priced }: ModelUsageRow): ModelUsageRowIn {
  return {
    id: usage.id,
    tenant: usage.tenant,
    task_id: usage.taskId,
    task_type: usage.taskType,
    agent_id: usage.agentId,
    trace_id: usage.traceId,
    time: utcText(usage.endMs),
    operation: usage.operation,
    model: usage.model,
    provider: usage.provider ?? '',
    input_tokens: usage.inputTokens,
    output_tokens: usage.outputTokens,
    cost_usd: costUsd,
    priced,
  };
}

const count = (value: unknown): boolean => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

export function checkUsage({ usage, costUsd }: ModelUsageRow): Check {
  if (typeof usage.id !== 'string' || usage.id === '') return 'usage.id must be a non-empty string';
  if (typeof usage.taskId !== 'string' || typeof usage.tenant !== 'string') return 'usage.taskId must be a string';
  if (!(Number.isFinite(usage.endMs) && usage.endMs >= 0 && usage.endMs < MAX_TIME_MS))
    return `usage.endMs must be epoch milliseconds between 1970 and 2200 (got ${String(usage.endMs)})`;
  if (!count(usage.inputTokens) || !count(usage.outputTokens)) return 'usage tokens must be non-negative integers';
  if (!Number.isFinite(costUsd) || costUsd < 0) return `costUsd must be a non-negative number (got ${String(costUsd)})`;
  return undefined;
}

const GROUP_COLUMN: Record<SpendGroup, string> = { task: 'task_id', agent: 'agent_id', task_type: 'task_type' };

interface SpendRowOut {
  key: string;
  cost_usd: number;
  input_tokens: number | string;
  output_tokens: number | string;
  calls: number | string;
  unpriced: number | string;
  models: string[];
}

/** Spend grouped by `by` over [fromMs, toMs), costliest first. */
export async function spendBy(
  reader: Reader,
  query: { tenant: string; by: SpendGroup; fromMs: number; toMs: number; limit: number; taskId?: string },
): Promise<SpendRow[]> {
  const column = GROUP_COLUMN[query.by];
  const task = query.taskId === undefined ? '' : 'AND task_id = {taskId:String}';
  const rows = (await reader.select(
    `SELECT ${column} AS key, sum(cost_usd) AS cost_usd, sum(input_tokens) AS input_tokens,
            sum(output_tokens) AS output_tokens, count() AS calls, countIf(NOT priced) AS unpriced,
            arraySlice(groupUniqArray(model), 1, 8) AS models
       FROM ${reader.db}.model_usage FINAL
      WHERE tenant = {tenant:String} AND time >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')
        AND time < fromUnixTimestamp64Milli({to:Int64}, 'UTC') ${task}
      GROUP BY key
      ORDER BY cost_usd DESC, key
      LIMIT {limit:UInt32}`,
    {
      tenant: query.tenant,
      from: Math.floor(query.fromMs),
      to: Math.ceil(query.toMs),
      limit: query.limit,
      ...(query.taskId === undefined ? {} : { taskId: query.taskId }),
    },
  )) as SpendRowOut[];
  return rows.map((row) => ({
    key: row.key,
    costUsd: row.cost_usd,
    inputTokens: Number(row.input_tokens),
    outputTokens: Number(row.output_tokens),
    calls: Number(row.calls),
    unpriced: Number(row.unpriced),
    models: [...row.models].sort(),
  }));
}

interface ModelCallRowOut extends Omit<ModelUsageRowIn, 'input_tokens' | 'output_tokens'> {
  time_ms: number | string;
  input_tokens: number | string;
  output_tokens: number | string;
}

/** One task's model calls, oldest first, at most `limit`. */
export async function taskModelCalls(
  reader: Reader,
  tenant: string,
  taskId: string,
  limit: number,
): Promise<ModelUsageRow[]> {
  const rows = (await reader.select(
    `SELECT id, tenant, task_id, task_type, agent_id, trace_id, toUnixTimestamp64Milli(time) AS time_ms, operation,
            model, provider, input_tokens, output_tokens, cost_usd, priced
       FROM ${reader.db}.model_usage FINAL
      WHERE tenant = {tenant:String} AND task_id = {taskId:String}
      ORDER BY time, id
      LIMIT {limit:UInt32}`,
    { tenant, taskId, limit },
  )) as ModelCallRowOut[];
  return rows.map((row) => {
    const timeMs = Number(row.time_ms);
    return {
      usage: {
        id: row.id,
        tenant: row.tenant,
        taskId: row.task_id,
        taskType: row.task_type,
        agentId: row.agent_id,
        traceId: row.trace_id,
        spanId: row.id.slice(-16),
        startMs: timeMs,
        endMs: timeMs,
        operation: row.operation,
        model: row.model,
        ...(row.provider === '' ? {} : { provider: row.provider }),
        inputTokens: Number(row.input_tokens),
        outputTokens: Number(row.output_tokens),
      },
      costUsd: row.cost_usd,
      priced: row.priced,
    };
  });
}
