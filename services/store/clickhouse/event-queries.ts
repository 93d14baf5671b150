/** Reads of the `events` table: a task's events, or several tasks' events, in time order. */
import type { ScoredEvent } from '../store.ts';
import { EVENT_COLUMNS, rowToEvent } from './event-rows.ts';
import type { EventRowOut } from './event-rows.ts';
import type { Reader } from './reader.ts';

/** Task ids per query of a many-task read: a server takes query parameters in the URL (1 MiB at most by default). */
const TASK_IDS_PER_QUERY = 500;

/** The events of one task, in time order (the first `limit` when given). */
export async function eventsOfTask(
  reader: Reader,
  tenant: string,
  taskId: string,
  limit?: number,
): Promise<ScoredEvent[]> {
  const rows = (await reader.select(
    `SELECT ${EVENT_COLUMNS} FROM ${reader.db}.events FINAL
     WHERE tenant = {tenant:String} AND task_id = {taskId:String}
     ORDER BY start_time, end_time, id${limit === undefined ? '' : ' LIMIT {limit:UInt32}'}`,
    limit === undefined ? { tenant, taskId } : { tenant, taskId, limit },
  )) as EventRowOut[];
  return rows.map(rowToEvent);
}

/** The events of several tasks, per task in time order (tasks without events are absent). */
export async function eventsOfTasks(
  reader: Reader,
  tenant: string,
  taskIds: readonly string[],
): Promise<Map<string, ScoredEvent[]>> {
  const byTask = new Map<string, ScoredEvent[]>();
  for (let i = 0; i < taskIds.length; i += TASK_IDS_PER_QUERY) {
    const rows = (await reader.select(
      `SELECT ${EVENT_COLUMNS} FROM ${reader.db}.events FINAL
       WHERE tenant = {tenant:String} AND task_id IN {taskIds:Array(String)}
       ORDER BY task_id, start_time, end_time, id`,
      { tenant, taskIds: taskIds.slice(i, i + TASK_IDS_PER_QUERY) },
    )) as EventRowOut[];
    for (const row of rows) {
      const events = byTask.get(row.task_id);
      if (events === undefined) byTask.set(row.task_id, [rowToEvent(row)]);
      else events.push(rowToEvent(row));
    }
  }
  return byTask;
}
