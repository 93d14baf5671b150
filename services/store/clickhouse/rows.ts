/**
 * The rows of the `alerts`, `revocations`, `tasks` and `baselines` tables: what goes in (snake_case, as the
 * columns are named), the column lists to read them with, and the mapping between the rows and the records.
 */
import type { Alert, Decision, Regime, Revocation, RevocationAction, TaskStatus } from '../../../schemas/events.ts';
import { parseEscalationBasis } from '../../core/escalation-policy.ts';
import type { BaselineRecord, TaskRecord } from '../store.ts';
import { fromMicros, utcText } from './values.ts';

export interface AlertRowIn {
  id: string;
  tenant: string;
  task_id: string;
  task_type: string;
  agent_id: string;
  event_id: string;
  time: string;
  score: number;
  decision: string;
  regime: string;
  reasons: string[];
  shadow: boolean;
}
export type AlertRowOut = Omit<AlertRowIn, 'time'> & { time_us: number };
export const ALERT_COLUMNS = `id, tenant, task_id, task_type, agent_id, event_id, toUnixTimestamp64Micro(time) AS time_us,
  score, decision, regime, reasons, shadow`;

export interface RevocationRowIn {
  id: string;
  tenant: string;
  task_id: string;
  task_type: string;
  agent_id: string;
  action: string;
  source: string;
  actor: string;
  reason: string;
  reasons: string[];
  score: number;
  event_id: string;
  time: string;
  /** JSON of the escalation basis ('' when absent). */
  escalation: string;
}
export type RevocationRowOut = Omit<RevocationRowIn, 'time'> & { time_us: number };
export const REVOCATION_COLUMNS = `id, tenant, task_id, task_type, agent_id, action, source, actor, reason, reasons, score,
  event_id, toUnixTimestamp64Micro(time) AS time_us, escalation`;

export interface TaskRowIn {
  tenant: string;
  task_id: string;
  task_name: string;
  parent_task_id: string;
  task_type: string;
  agent_id: string;
  status: string;
  score: number;
  decision: string;
  regime: string;
  reasons: string[];
  count_tool_call: number;
  count_data_access: number;
  count_privilege_change: number;
  started_at: string;
  last_event_at: string;
  ended_at: string | null;
  version: number;
}
export type TaskRowOut = Omit<TaskRowIn, 'started_at' | 'last_event_at' | 'ended_at'> & {
  started_us: number;
  last_event_us: number;
  ended_us: number | null;
};
export const TASK_COLUMNS = `tenant, task_id, task_name, parent_task_id, task_type, agent_id, status, score, decision, regime, reasons,
  count_tool_call, count_data_access, count_privilege_change, toUnixTimestamp64Micro(started_at) AS started_us,
  toUnixTimestamp64Micro(last_event_at) AS last_event_us, toUnixTimestamp64Micro(ended_at) AS ended_us, version`;

export interface BaselineRowIn {
  tenant: string;
  task_type: string;
  agent_id: string;
  tasks: number;
  model: string;
  updated_at: string;
}
export type BaselineRowOut = Omit<BaselineRowIn, 'updated_at'> & { updated_us: number };
export const BASELINE_COLUMNS =
  'tenant, task_type, agent_id, tasks, model, toUnixTimestamp64Micro(updated_at) AS updated_us';

export function alertToRow(a: Alert): AlertRowIn {
  return {
    id: a.id,
    tenant: a.tenant,
    task_id: a.taskId,
    task_type: a.taskType,
    agent_id: a.agentId,
    event_id: a.eventId,
    time: utcText(a.timeMs),
    score: a.score,
    decision: a.decision,
    regime: a.regime,
    reasons: a.reasons,
    shadow: a.shadow,
  };
}

/** A stored alert row (selected with ALERT_COLUMNS) back into an Alert. */
export function rowToAlert(r: AlertRowOut): Alert {
  return {
    id: r.id,
    tenant: r.tenant,
    taskId: r.task_id,
    taskType: r.task_type,
    agentId: r.agent_id,
    eventId: r.event_id,
    timeMs: fromMicros(r.time_us),
    score: r.score,
    decision: r.decision as Decision,
    regime: r.regime as Regime,
    reasons: r.reasons,
    shadow: r.shadow,
  };
}

/** A revocation as a row of the `revocations` table (JSONEachRow). */
export function revocationToRow(v: Revocation): RevocationRowIn {
  return {
    id: v.id,
    tenant: v.tenant,
    task_id: v.taskId,
    task_type: v.taskType,
    agent_id: v.agentId,
    action: v.action,
    source: v.source,
    actor: v.actor,
    reason: v.reason,
    reasons: v.reasons,
    score: v.score,
    event_id: v.eventId,
    time: utcText(v.timeMs),
    escalation: v.escalation === undefined ? '' : JSON.stringify(v.escalation),
  };
}

export function rowToRevocation(r: RevocationRowOut): Revocation {
  return {
    id: r.id,
    tenant: r.tenant,
    taskId: r.task_id,
    taskType: r.task_type,
    agentId: r.agent_id,
    action: r.action as RevocationAction,
    source: r.source as Revocation['source'],
    actor: r.actor,
    reason: r.reason,
    reasons: r.reasons,
    score: r.score,
    eventId: r.event_id,
    timeMs: fromMicros(r.time_us),
    ...escalationOfRow(r.escalation),
  };
}

/** The escalation basis of a stored row: absent when empty or unreadable (the row still stands). */
export function escalationOfRow(text: string | undefined): Pick<Revocation, 'escalation'> {
  if (text === undefined || text === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return {};
  }
  const basis = parseEscalationBasis(value);
  return basis === undefined ? {} : { escalation: basis };
}

export function taskToRow(t: TaskRecord): TaskRowIn {
  return {
    tenant: t.tenant,
    task_id: t.taskId,
    task_name: t.name,
    parent_task_id: t.parentTaskId ?? '',
    task_type: t.taskType,
    agent_id: t.agentId,
    status: t.status,
    score: t.score,
    decision: t.decision,
    regime: t.regime,
    reasons: t.reasons,
    count_tool_call: t.counts.tool_call,
    count_data_access: t.counts.data_access,
    count_privilege_change: t.counts.privilege_change,
    started_at: utcText(t.startedMs),
    last_event_at: utcText(t.lastEventMs),
    ended_at: t.endedMs === null ? null : utcText(t.endedMs),
    version: t.version,
  };
}

export function rowToTask(r: TaskRowOut): TaskRecord {
  return {
    tenant: r.tenant,
    taskId: r.task_id,
    name: r.task_name,
    ...(r.parent_task_id === '' ? {} : { parentTaskId: r.parent_task_id }),
    taskType: r.task_type,
    agentId: r.agent_id,
    status: r.status as TaskStatus,
    score: r.score,
    decision: r.decision as Decision,
    regime: r.regime as Regime,
    reasons: r.reasons,
    counts: {
      tool_call: r.count_tool_call,
      data_access: r.count_data_access,
      privilege_change: r.count_privilege_change,
    },
    startedMs: fromMicros(r.started_us),
    lastEventMs: fromMicros(r.last_event_us),
    endedMs: r.ended_us === null ? null : fromMicros(r.ended_us),
    version: r.version,
  };
}

export function baselineToRow(b: BaselineRecord): BaselineRowIn {
  return {
    tenant: b.tenant,
    task_type: b.taskType,
    agent_id: b.agentId,
    tasks: b.tasks,
    model: b.model,
    updated_at: utcText(b.updatedMs),
  };
}

export function rowToBaseline(r: BaselineRowOut): BaselineRecord {
  return {
    tenant: r.tenant,
    taskType: r.task_type,
    agentId: r.agent_id,
    tasks: r.tasks,
    model: r.model,
    updatedMs: fromMicros(r.updated_us),
  };
}
