/** Alerts for the detection read models: one alert by id, and what shadow mode would have done over a time range. */
import type { Alert, Decision, Regime } from '../../../schemas/events.ts';
import { TriplineError } from '../../shared/errors.ts';
import { run, select } from './detection-context.ts';
import type { DetectionContext } from './detection-context.ts';
import { ALERT_COLUMNS, rowToAlert } from './rows.ts';
import type { AlertRowOut } from './rows.ts';
import { fromMicros, toMicros } from './values.ts';

/** One task's alerts in a range, collapsed: its strongest decision, live or shadow. */
export interface TaskAlertSummary {
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  shadow: boolean;
  decision: Exclude<Decision, 'allow'>;
  score: number;
  regime: Regime;
  reasons: string[];
  firstMs: number;
}

export interface TimeRange {
  tenant: string;
  fromMs: number;
  toMs: number;
  taskType?: string;
}

function checkRange(range: TimeRange): void {
  if (!Number.isFinite(range.fromMs) || !Number.isFinite(range.toMs) || range.fromMs < 0 || range.toMs < range.fromMs) {
    throw new TriplineError(
      'VALIDATION_FAILED',
      `the time range must be epoch milliseconds with from <= to (got ${String(range.fromMs)} .. ${String(range.toMs)})`,
    );
  }
}

export function getAlert(context: DetectionContext, tenant: string, alertId: string): Promise<Alert | null> {
  return run('getAlert', async () => {
    const rows = await select<AlertRowOut>(
      context,
      `SELECT ${ALERT_COLUMNS}
       FROM ${context.db}.alerts FINAL WHERE tenant = {tenant:String} AND id = {id:String} LIMIT 1`,
      { tenant, id: alertId },
    );
    const row = rows[0];
    return row === undefined ? null : rowToAlert(row);
  });
}

/** Per task with alerts in the range: the strongest decision, separately for shadow and live alerts. Throws (synchronously) on a bad range. */
export function alertsInRange(context: DetectionContext, range: TimeRange): Promise<TaskAlertSummary[]> {
  checkRange(range);
  return run('alertsInRange', async () => {
    const rows = await select<{
      tenant: string;
      task_id: string;
      task_type: string;
      agent_id: string;
      shadow: boolean;
      revoke: number;
      top_score: number;
      regime: string;
      reasons: string[];
      first_us: number;
    }>(
      context,
      `SELECT tenant, task_id, task_type, agent_id, shadow, max(decision = 'revoke') AS revoke, max(score) AS top_score,
              argMax(regime, score) AS regime, argMax(reasons, score) AS reasons, min(toUnixTimestamp64Micro(time)) AS first_us
       FROM ${context.db}.alerts FINAL
       WHERE tenant = {tenant:String}
         AND time >= fromUnixTimestamp64Micro({fromUs:Int64}, 'UTC') AND time < fromUnixTimestamp64Micro({toUs:Int64}, 'UTC')
         ${range.taskType === undefined ? '' : 'AND task_type = {taskType:String}'}
       GROUP BY tenant, task_id, task_type, agent_id, shadow
       ORDER BY top_score DESC, task_id`,
      rangeParams(range),
    );
    return rows.map((r) => ({
      tenant: r.tenant,
      taskId: r.task_id,
      taskType: r.task_type,
      agentId: r.agent_id,
      shadow: r.shadow,
      decision: r.revoke > 0 ? 'revoke' : 'alert',
      score: r.top_score,
      regime: r.regime as Regime,
      reasons: r.reasons,
      firstMs: fromMicros(r.first_us),
    }));
  });
}

/** Tasks started in the range, per task type. Throws (synchronously) on a bad range. */
export function taskCountsByType(context: DetectionContext, range: TimeRange): Promise<Map<string, number>> {
  checkRange(range);
  return run('taskCountsByType', async () => {
    const rows = await select<{ task_type: string; tasks: number }>(
      context,
      `SELECT task_type, count() AS tasks FROM ${context.db}.tasks FINAL
       WHERE tenant = {tenant:String}
         AND started_at >= fromUnixTimestamp64Micro({fromUs:Int64}, 'UTC') AND started_at < fromUnixTimestamp64Micro({toUs:Int64}, 'UTC')
         ${range.taskType === undefined ? '' : 'AND task_type = {taskType:String}'}
       GROUP BY task_type ORDER BY task_type`,
      rangeParams(range),
    );
    return new Map(rows.map((r) => [r.task_type, r.tasks]));
  });
}

function rangeParams(range: TimeRange): Record<string, unknown> {
  return {
    tenant: range.tenant,
    fromUs: toMicros(range.fromMs),
    toUs: toMicros(range.toMs),
    ...(range.taskType === undefined ? {} : { taskType: range.taskType }),
  };
}
