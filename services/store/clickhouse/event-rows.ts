/**
 * The `events` table's rows: a scored event as the row written (snake_case, as the columns are named) and a
 * row read with EVENT_COLUMNS back into the event and its verdict.
 */
import type { EventKind } from '../../../schemas/conventions.ts';
import type {
  AgentEvent,
  AttributeValue,
  Contribution,
  DataAccessDetail,
  Decision,
  PrivilegeDetail,
  Regime,
  ToolCallDetail,
  Verdict,
} from '../../../schemas/events.ts';
import type { ScoredEvent } from '../store.ts';
import { toolFactsOfRow, toolFactsText } from './tool-facts.ts';
import { fromMicros, utcText, wellFormed } from './values.ts';

export interface EventRowIn {
  id: string;
  tenant: string;
  task_id: string;
  task_type: string;
  agent_id: string;
  kind: string;
  name: string;
  trace_id: string;
  span_id: string;
  parent_span_id: string;
  start_time: string;
  end_time: string;
  error: boolean;
  error_type: string | null;
  tool_name: string | null;
  tool_type: string | null;
  tool_side_effect: string | null;
  tool_target: string | null;
  tool_call_id: string | null;
  /** JSON of the tool call's counterparties and the rest of `toolFacts` ('' when none). */
  tool_facts: string;
  data_resource: string | null;
  data_system: string | null;
  data_operation: string | null;
  data_rows: number | null;
  data_bytes: number | null;
  data_classification: string | null;
  data_host: string | null;
  privilege_action: string | null;
  scopes_before: string[];
  scopes_after: string[];
  privilege_resource: string | null;
  privilege_granted_by: string | null;
  privilege_approved: boolean | null;
  attributes: string;
  score: number;
  decision: string;
  regime: string;
  reasons: string[];
  contributions: string;
  hard_rule: string | null;
  shadow: boolean;
}

export type EventRowOut = Omit<EventRowIn, 'start_time' | 'end_time' | 'reasons'> & {
  start_us: number;
  end_us: number;
};

export const EVENT_COLUMNS = `id, tenant, task_id, task_type, agent_id, kind, name, trace_id, span_id, parent_span_id,
  toUnixTimestamp64Micro(start_time) AS start_us, toUnixTimestamp64Micro(end_time) AS end_us, error, error_type,
  tool_name, tool_type, tool_side_effect, tool_target, tool_call_id, tool_facts,
  data_resource, data_system, data_operation, data_rows, data_bytes, data_classification, data_host,
  privilege_action, scopes_before, scopes_after, privilege_resource, privilege_granted_by, privilege_approved,
  attributes, score, decision, regime, contributions, hard_rule, shadow`;

export function eventToRow({ event: e, verdict: v }: ScoredEvent): EventRowIn {
  return {
    id: e.id,
    tenant: e.tenant,
    task_id: e.taskId,
    task_type: e.taskType,
    agent_id: e.agentId,
    kind: e.kind,
    name: e.name,
    trace_id: e.traceId,
    span_id: e.spanId,
    parent_span_id: e.parentSpanId,
    start_time: utcText(e.startMs),
    end_time: utcText(e.endMs),
    error: e.error,
    error_type: e.errorType ?? null,
    tool_name: e.tool?.name ?? null,
    tool_type: e.tool?.type ?? null,
    tool_side_effect: e.tool?.sideEffect ?? null,
    tool_target: e.tool?.target ?? null,
    tool_call_id: e.tool?.callId ?? null,
    tool_facts: toolFactsText(e.tool),
    data_resource: e.data?.resource ?? null,
    data_system: e.data?.system ?? null,
    data_operation: e.data?.operation ?? null,
    data_rows: e.data?.rows ?? null,
    data_bytes: e.data?.bytes ?? null,
    data_classification: e.data?.classification ?? null,
    data_host: e.data?.host ?? null,
    privilege_action: e.privilege?.action ?? null,
    scopes_before: e.privilege?.scopesBefore ?? [],
    scopes_after: e.privilege?.scopesAfter ?? [],
    privilege_resource: e.privilege?.resource ?? null,
    privilege_granted_by: e.privilege?.grantedBy ?? null,
    privilege_approved: e.privilege?.approved ?? null,
    attributes: JSON.stringify(e.attributes),
    score: v.score,
    decision: v.decision,
    regime: v.regime,
    reasons: v.contributions.map((c) => c.reason),
    contributions: JSON.stringify(v.contributions),
    hard_rule: v.hardRule ?? null,
    shadow: v.shadow,
  };
}

/** The `events` columns an insert names, in the order of eventRowValues (and of EventRowIn's keys). */
export const EVENT_ROW_COLUMNS: readonly (keyof EventRowIn)[] = [
  'id',
  'tenant',
  'task_id',
  'task_type',
  'agent_id',
  'kind',
  'name',
  'trace_id',
  'span_id',
  'parent_span_id',
  'start_time',
  'end_time',
  'error',
  'error_type',
  'tool_name',
  'tool_type',
  'tool_side_effect',
  'tool_target',
  'tool_call_id',
  'tool_facts',
  'data_resource',
  'data_system',
  'data_operation',
  'data_rows',
  'data_bytes',
  'data_classification',
  'data_host',
  'privilege_action',
  'scopes_before',
  'scopes_after',
  'privilege_resource',
  'privilege_granted_by',
  'privilege_approved',
  'attributes',
  'score',
  'decision',
  'regime',
  'reasons',
  'contributions',
  'hard_rule',
  'shadow',
];

/**
 * eventToRow's values in EVENT_ROW_COLUMNS order, as compactRows would make them of its row (strings well-formed;
 * the JSON text columns are JSON.stringify's text, always well-formed as it escapes lone surrogates), without the
 * keyed row in between or reading its values back out of it.
 */
export function eventRowValues({ event: e, verdict: v }: ScoredEvent): unknown[] {
  const { tool, data, privilege } = e;
  const reasons: unknown[] = [];
  for (const c of v.contributions) reasons.push(cell(c.reason));
  return [
    cell(e.id),
    cell(e.tenant),
    cell(e.taskId),
    cell(e.taskType),
    cell(e.agentId),
    cell(e.kind),
    cell(e.name),
    cell(e.traceId),
    cell(e.spanId),
    cell(e.parentSpanId),
    utcText(e.startMs),
    utcText(e.endMs),
    cell(e.error),
    cell(e.errorType ?? null),
    cell(tool?.name ?? null),
    cell(tool?.type ?? null),
    cell(tool?.sideEffect ?? null),
    cell(tool?.target ?? null),
    cell(tool?.callId ?? null),
    toolFactsText(tool),
    cell(data?.resource ?? null),
    cell(data?.system ?? null),
    cell(data?.operation ?? null),
    cell(data?.rows ?? null),
    cell(data?.bytes ?? null),
    cell(data?.classification ?? null),
    cell(data?.host ?? null),
    cell(privilege?.action ?? null),
    cell(privilege?.scopesBefore ?? []),
    cell(privilege?.scopesAfter ?? []),
    cell(privilege?.resource ?? null),
    cell(privilege?.grantedBy ?? null),
    cell(privilege?.approved ?? null),
    JSON.stringify(e.attributes),
    cell(v.score),
    cell(v.decision),
    cell(v.regime),
    reasons,
    JSON.stringify(v.contributions),
    cell(v.hardRule ?? null),
    cell(v.shadow),
  ];
}

/** A value as compactRows leaves it: strings well-formed, objects and arrays copied where a string in them is not. */
function cell(value: unknown): unknown {
  if (typeof value === 'string') return value.isWellFormed() ? value : value.toWellFormed();
  return typeof value === 'object' && value !== null ? wellFormed(value) : value;
}

/** Copies the entries whose value is not null (absent optional fields stay absent, not `undefined`). */
function present<T extends object>(fields: { [K in keyof T]: T[K] | null }): Partial<T> {
  const out: Partial<T> = {};
  for (const key of Object.keys(fields) as (keyof T)[]) {
    const value = fields[key];
    if (value !== null) out[key] = value;
  }
  return out;
}

/** A stored event row (selected with EVENT_COLUMNS) back into the event and the verdict it got. */
export function rowToEvent(r: EventRowOut): ScoredEvent {
  const event: AgentEvent = {
    id: r.id,
    tenant: r.tenant,
    kind: r.kind as EventKind,
    taskId: r.task_id,
    taskType: r.task_type,
    agentId: r.agent_id,
    traceId: r.trace_id,
    spanId: r.span_id,
    parentSpanId: r.parent_span_id,
    name: r.name,
    startMs: fromMicros(r.start_us),
    endMs: fromMicros(r.end_us),
    error: r.error,
    ...present<{ errorType: string }>({ errorType: r.error_type }),
    attributes: JSON.parse(r.attributes) as Record<string, AttributeValue>,
  };
  if (r.tool_name !== null) {
    event.tool = {
      name: r.tool_name,
      ...present<Omit<ToolCallDetail, 'name'>>({
        type: r.tool_type,
        sideEffect: r.tool_side_effect as ToolCallDetail['sideEffect'] | null,
        target: r.tool_target,
        callId: r.tool_call_id,
      }),
      ...toolFactsOfRow(r.tool_facts),
    };
  }
  if (r.data_resource !== null) {
    event.data = {
      resource: r.data_resource,
      ...present<Omit<DataAccessDetail, 'resource'>>({
        system: r.data_system,
        operation: r.data_operation,
        rows: r.data_rows,
        bytes: r.data_bytes,
        classification: r.data_classification as DataAccessDetail['classification'] | null,
        host: r.data_host,
      }),
    };
  }
  if (r.privilege_action !== null) {
    event.privilege = {
      action: r.privilege_action,
      scopesBefore: r.scopes_before,
      scopesAfter: r.scopes_after,
      ...present<Omit<PrivilegeDetail, 'action' | 'scopesBefore' | 'scopesAfter'>>({
        resource: r.privilege_resource,
        grantedBy: r.privilege_granted_by,
        approved: r.privilege_approved,
      }),
    };
  }
  const verdict: Verdict = {
    score: r.score,
    decision: r.decision as Decision,
    regime: r.regime as Regime,
    contributions: JSON.parse(r.contributions) as Contribution[],
    ...present<{ hardRule: string }>({ hardRule: r.hard_rule }),
    shadow: r.shadow,
  };
  return { event, verdict };
}
