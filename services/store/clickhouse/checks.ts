/**
 * Validation: a row that cannot be stored faithfully (NaN score, time out of range, unknown enum value, an empty
 * id that would collapse with every other empty id) is left out of its batch and reported with logger.warn, so one
 * bad row neither fails nor corrupts the others; retrying could not fix it, so nothing is thrown. The types already hold
 * the shape; these checks cover what the type system cannot see (values decoded from JSON, NaN, Infinity).
 */
import { EVENT_KINDS } from '../../../schemas/conventions.ts';
import { DECISIONS, REGIMES, REVOCATION_ACTIONS, TASK_STATUSES } from '../../../schemas/events.ts';
import type { Alert, Contribution, Revocation } from '../../../schemas/events.ts';
import type { BaselineRecord, ScoredEvent, TaskRecord } from '../store.ts';
import { MAX_TIME_MS } from './values.ts';

export type Check = string | undefined;

export function isString(value: unknown): value is string {
  return typeof value === 'string';
}

function requireId(name: string, value: unknown): Check {
  return isString(value) && value !== '' ? undefined : `${name} must be a non-empty string`;
}

function requireStrings(names: Record<string, unknown>): Check {
  for (const [name, value] of Object.entries(names)) if (!isString(value)) return `${name} must be a string`;
  return undefined;
}

function requireTime(name: string, value: unknown): Check {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value < MAX_TIME_MS
    ? undefined
    : `${name} must be epoch milliseconds between 1970 and 2200 (got ${String(value)})`;
}

function requireFinite(name: string, value: unknown): Check {
  return typeof value === 'number' && Number.isFinite(value)
    ? undefined
    : `${name} must be a finite number (got ${String(value)})`;
}

function requireCount(name: string, value: unknown): Check {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
    ? undefined
    : `${name} must be a non-negative integer (got ${String(value)})`;
}

function requireBoolean(name: string, value: unknown): Check {
  return typeof value === 'boolean' ? undefined : `${name} must be a boolean`;
}

function requireOneOf(name: string, allowed: readonly string[], value: unknown): Check {
  return isString(value) && allowed.includes(value)
    ? undefined
    : `${name} must be one of ${allowed.join(', ')} (got ${String(value)})`;
}

function requireStringArray(name: string, value: unknown): Check {
  return Array.isArray(value) && value.every(isString) ? undefined : `${name} must be an array of strings`;
}

function firstProblem(...checks: Check[]): Check {
  return checks.find((check) => check !== undefined);
}

export function checkEvent(row: ScoredEvent): Check {
  const { event, verdict } = row;
  // The first problem, as firstProblem finds it, without evaluating the checks after it or an array per event.
  return (
    requireId('event.id', event.id) ??
    requireEventStrings(event) ??
    requireOneOf('event.kind', EVENT_KINDS, event.kind) ??
    requireTime('event.startMs', event.startMs) ??
    requireTime('event.endMs', event.endMs) ??
    requireBoolean('event.error', event.error) ??
    (event.data?.rows === undefined ? undefined : requireCount('event.data.rows', event.data.rows)) ??
    (event.data?.bytes === undefined ? undefined : requireCount('event.data.bytes', event.data.bytes)) ??
    (event.privilege === undefined
      ? undefined
      : requireStringArray('event.privilege.scopesBefore', event.privilege.scopesBefore)) ??
    (event.privilege === undefined
      ? undefined
      : requireStringArray('event.privilege.scopesAfter', event.privilege.scopesAfter)) ??
    checkAttributes(event.attributes) ??
    requireFinite('verdict.score', verdict.score) ??
    requireOneOf('verdict.decision', DECISIONS, verdict.decision) ??
    requireOneOf('verdict.regime', REGIMES, verdict.regime) ??
    requireBoolean('verdict.shadow', verdict.shadow) ??
    checkContributions(verdict.contributions)
  );
}

const EVENT_STRINGS = ['tenant', 'taskId', 'taskType', 'agentId', 'traceId', 'spanId', 'parentSpanId', 'name'] as const;

/** As requireStrings, without building an object per event (this runs for every stored event). */
function requireEventStrings(event: ScoredEvent['event']): Check {
  for (const field of EVENT_STRINGS) if (!isString(event[field])) return `event.${field} must be a string`;
  return undefined;
}

function checkAttributes(attributes: unknown): Check {
  if (typeof attributes !== 'object' || attributes === null || Array.isArray(attributes))
    return 'event.attributes must be an object';
  const values = attributes as Record<string, unknown>;
  // for…in, not Object.entries: this runs for every stored event, and the entries array is pure garbage.
  for (const key in values) {
    const value = values[key];
    const ok = isString(value) || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
    if (!ok) return `event.attributes[${JSON.stringify(key)}] must be a string, a boolean or a finite number`;
  }
  return undefined;
}

function checkContributions(contributions: unknown): Check {
  if (!Array.isArray(contributions)) return 'verdict.contributions must be an array';
  for (const item of contributions as unknown[]) {
    if (typeof item !== 'object' || item === null) return 'verdict.contributions must hold objects';
    const { feature, score, reason } = item as Partial<Contribution>;
    const problem = firstProblem(
      requireStrings({ 'contribution.feature': feature, 'contribution.reason': reason }),
      requireFinite('contribution.score', score),
    );
    if (problem !== undefined) return problem;
  }
  return undefined;
}

export function checkAlert(row: Alert): Check {
  return firstProblem(
    requireId('id', row.id),
    requireStrings({
      tenant: row.tenant,
      taskId: row.taskId,
      taskType: row.taskType,
      agentId: row.agentId,
      eventId: row.eventId,
    }),
    requireTime('timeMs', row.timeMs),
    requireFinite('score', row.score),
    requireOneOf('decision', DECISIONS, row.decision),
    requireOneOf('regime', REGIMES, row.regime),
    requireStringArray('reasons', row.reasons),
    requireBoolean('shadow', row.shadow),
  );
}

export function checkRevocation(row: Revocation): Check {
  return firstProblem(
    requireId('id', row.id),
    requireStrings({
      tenant: row.tenant,
      taskId: row.taskId,
      taskType: row.taskType,
      agentId: row.agentId,
      actor: row.actor,
      reason: row.reason,
      eventId: row.eventId,
    }),
    requireOneOf('action', REVOCATION_ACTIONS, row.action),
    requireOneOf('source', ['detector', 'manual'], row.source),
    requireStringArray('reasons', row.reasons),
    requireFinite('score', row.score),
    requireTime('timeMs', row.timeMs),
  );
}

export function checkTask(row: TaskRecord): Check {
  return firstProblem(
    requireId('taskId', row.taskId),
    requireStrings({ tenant: row.tenant, taskType: row.taskType, agentId: row.agentId }),
    requireOneOf('status', TASK_STATUSES, row.status),
    requireFinite('score', row.score),
    requireOneOf('decision', DECISIONS, row.decision),
    requireOneOf('regime', REGIMES, row.regime),
    requireStringArray('reasons', row.reasons),
    requireCount('counts.tool_call', row.counts.tool_call),
    requireCount('counts.data_access', row.counts.data_access),
    requireCount('counts.privilege_change', row.counts.privilege_change),
    requireTime('startedMs', row.startedMs),
    requireTime('lastEventMs', row.lastEventMs),
    row.endedMs === null ? undefined : requireTime('endedMs', row.endedMs),
    requireCount('version', row.version),
  );
}

export function checkBaseline(row: BaselineRecord): Check {
  return firstProblem(
    requireStrings({ tenant: row.tenant, taskType: row.taskType, agentId: row.agentId, model: row.model }),
    requireCount('tasks', row.tasks),
    requireTime('updatedMs', row.updatedMs),
  );
}
