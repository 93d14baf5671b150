/**
 * What a decision produces, built once for every mode and caller: the alert of a verdict, and the revocations a
 * detector, a person or an escalation makes. Pure: time and the task come in as values; every id is deterministic,
 * so a replayed batch (Kafka redelivery, a restart) finds the same alert and revocation again.
 */
import type { Alert, Revocation, Verdict } from '../../schemas/events.ts';
import { sha256Hex } from './sha256.ts';

/** The actor of revocations an escalation makes (they never count towards escalating again). */
export const ESCALATION_ACTOR = 'tripline/escalation';

/** Who a revocation or alert is about. */
export interface TaskIdentity {
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
}

/**
 * A deterministic id from its parts: the same inputs give the same id in every process and on every replay (the
 * SHA-256 of each part followed by a NUL, as `services/shared/ids.ts` `stableId` computes it; a test holds them equal).
 */
export function decisionId(...parts: readonly (string | number)[]): string {
  let text = '';
  for (const part of parts) text += `${String(part)}\u0000`;
  return sha256Hex(text).slice(0, 32);
}

export function reasonsOf(verdict: Pick<Verdict, 'contributions'>): string[] {
  return verdict.contributions.map((contribution) => contribution.reason);
}

/** The alert of a verdict that alerted or revoked: one per task and level, however often the batch is replayed. */
export function alertOf(task: TaskIdentity, event: { id: string; endMs: number }, verdict: Verdict): Alert {
  return {
    id: decisionId(task.tenant, task.taskId, 'alert', verdict.decision, verdict.shadow ? 'shadow' : 'live'),
    ...identity(task),
    eventId: event.id,
    timeMs: event.endMs,
    score: verdict.score,
    decision: verdict.decision,
    regime: verdict.regime,
    reasons: reasonsOf(verdict),
    shadow: verdict.shadow,
  };
}

/** The detector's kill: named by the event that caused it, so a replay finds the same id. */
export function detectorRevocation(task: TaskIdentity, verdict: Verdict, eventId: string, timeMs: number): Revocation {
  return {
    id: decisionId(task.tenant, task.taskId, 'revoke', eventId),
    ...identity(task),
    action: 'revoke',
    source: 'detector',
    actor: 'tripline',
    reason: 'score reached the revoke threshold',
    reasons: reasonsOf(verdict),
    score: verdict.score,
    eventId,
    timeMs,
  };
}

/** A person's kill or restore, with the actor and the reason they gave. */
export function manualRevocation(
  task: TaskIdentity,
  action: Revocation['action'],
  actor: string,
  reason: string,
  score: number,
  timeMs: number,
): Revocation {
  return {
    id: decisionId(task.tenant, task.taskId, action, actor, timeMs, reason),
    ...identity(task),
    action,
    source: 'manual',
    actor,
    reason,
    reasons: [],
    score,
    eventId: '',
    timeMs,
  };
}

/** The revocation of one task of an agent that escalated after repeated revocations of its tasks. */
export function escalationRevocation(
  task: TaskIdentity,
  escalation: { atMs: number; untilMs: number; taskIds: readonly string[] },
  windowMs: number,
  score: number,
  eventId: string,
  timeMs: number,
): Revocation {
  const minutes = Math.max(1, Math.round(windowMs / 60_000));
  return {
    id: decisionId(task.tenant, task.taskId, 'revoke', ESCALATION_ACTOR, escalation.atMs),
    ...identity(task),
    action: 'revoke',
    source: 'detector',
    actor: ESCALATION_ACTOR,
    reason: `escalated to agent ${task.agentId}: ${escalation.taskIds.length} of its tasks were revoked within ${minutes} min; its tasks are revoked until ${new Date(escalation.untilMs).toISOString()}`,
    reasons: escalation.taskIds.map((taskId) => `task ${taskId} was revoked`),
    score,
    eventId,
    timeMs,
  };
}

function identity(task: TaskIdentity): TaskIdentity {
  return { tenant: task.tenant, taskId: task.taskId, taskType: task.taskType, agentId: task.agentId };
}
