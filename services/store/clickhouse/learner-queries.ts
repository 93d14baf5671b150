/** What the learner rebuilds baselines from: the tasks it may learn from, and their events. */
import type { AgentEvent } from '../../../schemas/events.ts';
import { TriplineError } from '../../shared/errors.ts';
import { run, select } from './detection-context.ts';
import type { DetectionContext } from './detection-context.ts';
import { EVENT_COLUMNS, rowToEvent } from './event-rows.ts';
import type { EventRowOut } from './event-rows.ts';
import { fromMicros, toMicros } from './values.ts';

/** Largest number of task ids sent in one `IN` list. */
const ID_CHUNK = 500;

/** A completed task the learner may learn from. */
export interface LearnableTask {
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  startedMs: number;
  /** The task's end (its last event when it never ended explicitly). */
  endMs: number;
  /** An operator marked one of its alerts a false positive. */
  markedFalsePositive: boolean;
  /** Its only acted-on alerts came in its type's warm-up (rules regime, no revocation): held, as online. */
  heldInWarmup: boolean;
}

export interface LearnableTaskOptions {
  tenant?: string;
  after?: { endMs: number; tenant: string; taskId: string };
  limit: number;
  /** Shadow-mode alerts also keep a task out (the processor counts only acted-on alerts today). @default false */
  shadowAlertsBlock?: boolean;
}

/**
 * Tasks to learn from, in the order they ended: completed tasks with no live alert and never revoked (the
 * processor's rule), plus ended tasks an operator marked false positive. Keyset paging. Needs the feedback table.
 */
export async function learnableTasks(
  context: DetectionContext,
  options: LearnableTaskOptions,
): Promise<LearnableTask[]> {
  if (!Number.isInteger(options.limit) || options.limit < 1 || options.limit > 100_000) {
    throw new TriplineError(
      'VALIDATION_FAILED',
      `limit must be an integer from 1 to 100000 (got ${String(options.limit)})`,
    );
  }
  const conditions: string[] = [];
  const params: Record<string, unknown> = { limit: options.limit };
  if (options.tenant !== undefined) {
    conditions.push('tenant = {tenant:String}');
    params.tenant = options.tenant;
  }
  if (options.after !== undefined) {
    conditions.push('(end_us, tenant, task_id) > ({afterUs:Int64}, {afterTenant:String}, {afterTask:String})');
    params.afterUs = toMicros(options.after.endMs);
    params.afterTenant = options.after.tenant;
    params.afterTask = options.after.taskId;
  }
  const db = context.db;
  return run('learnableTasks', async () => {
    // A warm-up alert (rules regime, decision alert) holds a task instead of keeping it out, as the processor does
    // (services/core/detect/score.ts, learningEffect): a hard rule in warm-up always revokes.
    const acted = options.shadowAlertsBlock === true ? '1' : 'NOT shadow';
    const rows = await select<{
      tenant: string;
      task_id: string;
      task_type: string;
      agent_id: string;
      started_us: number;
      end_us: number;
      marked: number;
      held: number;
    }>(
      context,
      `SELECT * FROM (
         SELECT tenant, task_id, task_type, agent_id, toUnixTimestamp64Micro(started_at) AS started_us,
                toUnixTimestamp64Micro(coalesce(ended_at, last_event_at)) AS end_us,
                (tenant, task_id) IN (SELECT tenant, task_id FROM ${db}.feedback FINAL WHERE kind = 'false_positive') AS marked,
                (tenant, task_id) IN (SELECT tenant, task_id FROM ${db}.alerts FINAL WHERE ${acted} AND regime = 'rules' AND decision = 'alert') AS held,
                status
         FROM ${db}.tasks FINAL
         WHERE status != 'active'
       )
       WHERE (marked
              OR (status = 'completed'
                  AND (tenant, task_id) NOT IN (SELECT tenant, task_id FROM ${db}.alerts FINAL WHERE ${acted} AND NOT (regime = 'rules' AND decision = 'alert'))
                  AND (tenant, task_id) NOT IN (SELECT tenant, task_id FROM ${db}.revocations FINAL WHERE action = 'revoke')))
         ${conditions.length === 0 ? '' : `AND ${conditions.join(' AND ')}`}
       ORDER BY end_us, tenant, task_id
       LIMIT {limit:UInt32}`,
      params,
    );
    return rows.map((r) => ({
      tenant: r.tenant,
      taskId: r.task_id,
      taskType: r.task_type,
      agentId: r.agent_id,
      startedMs: fromMicros(r.started_us),
      endMs: fromMicros(r.end_us),
      markedFalsePositive: r.marked > 0,
      heldInWarmup: r.held > 0 && r.marked === 0,
    }));
  });
}

/** Events of several tasks of a tenant, per task in time order (as `Store.eventsForTask`). */
export function eventsForTasks(
  context: DetectionContext,
  tenant: string,
  taskIds: readonly string[],
): Promise<Map<string, AgentEvent[]>> {
  return run('eventsForTasks', async () => {
    const out = new Map<string, AgentEvent[]>();
    for (let i = 0; i < taskIds.length; i += ID_CHUNK) {
      const chunk = taskIds.slice(i, i + ID_CHUNK);
      const rows = await select<EventRowOut>(
        context,
        `SELECT ${EVENT_COLUMNS} FROM ${context.db}.events FINAL
         WHERE tenant = {tenant:String} AND task_id IN {taskIds:Array(String)}
         ORDER BY task_id, start_time, end_time, id`,
        { tenant, taskIds: chunk },
      );
      for (const row of rows) {
        const list = out.get(row.task_id) ?? [];
        list.push(rowToEvent(row).event);
        out.set(row.task_id, list);
      }
    }
    return out;
  });
}
