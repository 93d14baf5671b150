/**
 * What a decision produces, built once for every mode and caller: the alert of a verdict, and the revocations a
 * detector, a person or an escalation makes. Pure: time and the task come in as values; every id is deterministic,
 * so a replayed batch (Kafka redelivery, a restart) finds the same alert and revocation again.
 */
import type { Alert, Revocation, Verdict } from '../../schemas/events.ts';
import {
  ESCALATION_ACTOR,
  describeScope,
  detectorBasis,
  escalationBasis,
  isWholeAgent,
  manualBasis,
} from './escalation-policy.ts';
import type { EscalationScope } from './escalation-policy.ts';
import { isLoopFeature } from './loops.ts';
import type { LoopFinding } from './loops.ts';
import { sha256Hex } from './sha256.ts';

export { ESCALATION_ACTOR };

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

/** What a detector kill's escalation basis is decided on: the type's revoke threshold and the task's scope. */
export interface DetectorContext {
  revokeThreshold: number;
  scope: EscalationScope;
}

/**
 * The detector's kill: named by the event that caused it, so a replay finds the same id. It says whether it
 * counts toward escalating the agent (services/core/escalation-policy.ts).
 */
export function detectorRevocation(
  task: TaskIdentity,
  verdict: Verdict,
  eventId: string,
  timeMs: number,
  context: DetectorContext,
): Revocation {
  return {
    id: decisionId(task.tenant, task.taskId, 'revoke', eventId),
    ...identity(task),
    action: 'revoke',
    source: 'detector',
    actor: 'tripline',
    reason: typedReason(verdict) ?? 'score reached the revoke threshold',
    reasons: reasonsOf(verdict),
    score: verdict.score,
    eventId,
    timeMs,
    escalation: detectorBasis(verdict, context.revokeThreshold, context.scope),
  };
}

/** A loop or rate limit that revoked names itself as the reason (`loop.repeat: tool … was called 20 times …`). */
function typedReason(verdict: Verdict): string | undefined {
  if (verdict.hardRule === undefined || !isLoopFeature(verdict.hardRule)) return undefined;
  return verdict.contributions.find((contribution) => contribution.feature === verdict.hardRule)?.reason;
}

/**
 * The alert of a loop or rate limit's `refuse` step: the task's calls are refused until `untilMs`. One per task and
 * feature, however often the batch is replayed.
 */
export function refusalAlert(
  task: TaskIdentity,
  event: { id: string; endMs: number },
  verdict: Verdict,
  finding: LoopFinding,
  untilMs: number,
): Alert {
  return {
    id: decisionId(task.tenant, task.taskId, 'alert', 'refuse', finding.feature, verdict.shadow ? 'shadow' : 'live'),
    ...identity(task),
    eventId: event.id,
    timeMs: event.endMs,
    score: verdict.score,
    decision: 'alert',
    regime: verdict.regime,
    reasons: [
      `${finding.reason} until ${new Date(untilMs).toISOString()}`,
      ...reasonsOf(verdict).filter((r) => r !== finding.reason),
    ],
    shadow: verdict.shadow,
    refuseUntilMs: untilMs,
  };
}

/** A person's kill or restore, with the actor and the reason they gave (a kill counts toward escalation). */
export function manualRevocation(
  task: TaskIdentity,
  action: Revocation['action'],
  actor: string,
  reason: string,
  score: number,
  timeMs: number,
  scope: EscalationScope = {},
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
    ...(action === 'revoke' ? { escalation: manualBasis(scope) } : {}),
  };
}

/**
 * The revocation of one task (of scope `taskScope`) in the scope an agent was escalated at after repeated
 * revocations of its tasks. It never counts toward escalating again.
 */
export function escalationRevocation(
  task: TaskIdentity,
  escalation: { atMs: number; untilMs: number; taskIds: readonly string[]; scope?: EscalationScope },
  windowMs: number,
  score: number,
  eventId: string,
  timeMs: number,
  taskScope: EscalationScope = {},
): Revocation {
  const minutes = Math.max(1, Math.round(windowMs / 60_000));
  const scoped = isWholeAgent(escalation.scope) ? '' : ` for ${describeScope(escalation.scope)}`;
  return {
    id: decisionId(task.tenant, task.taskId, 'revoke', ESCALATION_ACTOR, escalation.atMs),
    ...identity(task),
    action: 'revoke',
    source: 'detector',
    actor: ESCALATION_ACTOR,
    reason: `escalated to agent ${task.agentId}${scoped}: ${escalation.taskIds.length} of its tasks were revoked within ${minutes} min; its tasks${scoped} are revoked until ${new Date(escalation.untilMs).toISOString()}`,
    reasons: escalation.taskIds.map((taskId) => `task ${taskId} was revoked`),
    score,
    eventId,
    timeMs,
    escalation: escalationBasis(taskScope),
  };
}

function identity(task: TaskIdentity): TaskIdentity {
  return { tenant: task.tenant, taskId: task.taskId, taskType: task.taskType, agentId: task.agentId };
}
