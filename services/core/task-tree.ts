/**
 * Task trees. A task started inside another task (an orchestrator's sub-agent, in the same process or over HTTP
 * with W3C baggage) declares it: `tripline.task.parent_id`. Pure: what the links may do, and the revocations and
 * alerts they make.
 *
 * The parent id is the child's claim, trusted for linking only. It lets a task do exactly two things to the task it
 * names, both bounded:
 *
 * - be killed with it: a kill of a task (by a person, the detector or an escalation) revokes its descendants, down
 *   the links, never up or sideways. Claiming a parent can only put the claimant itself in the way of a kill.
 * - raise its score and alert on it when the child itself is killed (a person's or the detector's kill, not one a
 *   tree or an escalation made): a contribution of its own family (`tree`), capped below the parent's revoke
 *   threshold. A child's kill never revokes its parent, so it never reaches the parent's other children either;
 *   the parent is revoked only on its own evidence (its next verdicts are scored from its own events).
 *
 * A restore of a task restores none of its descendants: each was revoked on its own, and a person restores each.
 */
import type { Alert, Contribution, Revocation, Verdict } from '../../schemas/events.ts';
import { combineFamilies } from './detect/combine.ts';
import { decisionId } from './decide.ts';
import type { TaskIdentity } from './decide.ts';
import { ESCALATION_ACTOR, taskTreeBasis } from './escalation-policy.ts';
import type { EscalationScope } from './escalation-policy.ts';

/** The actor of revocations a kill of an ancestor task makes (they never cascade again: the first kill did). */
export const TASK_TREE_ACTOR = 'tripline/task-tree';
/** Levels below a killed task whose tasks are revoked with it (a child is level 1). */
export const MAX_TREE_DEPTH = 8;
/** Most descendants one kill revokes; the ones beyond are logged and left to a person. */
export const MAX_TREE_REVOCATIONS = 1000;
/** Most children the API lists for a task (it says when there are more). */
export const MAX_LISTED_CHILDREN = 100;
/** The feature a child's kill adds to its parent's verdict (family `tree`). */
export const CHILD_REVOKED_FEATURE = 'tree.child_revoked';
/** Points each further child killed adds to the parent's contribution, above the first's (the alert threshold). */
export const FURTHER_CHILD_POINTS = 10;
/** How far below the revoke threshold a parent's score raised by its children stays. */
const BELOW_REVOKE = 0.1;

/** A revocation that kills its task's descendants: every kill but the ones a tree made (they are part of one). */
export function cascades(revocation: Revocation): boolean {
  return revocation.action === 'revoke' && revocation.actor !== TASK_TREE_ACTOR;
}

/**
 * A revocation that raises its task's parent: a kill of the child for what it did itself (a person's or the
 * detector's), not one its own ancestor's kill or an escalation of its agent made.
 */
export function raisesParent(revocation: Revocation): revocation is Revocation & { parentTaskId: string } {
  return (
    revocation.action === 'revoke' &&
    revocation.parentTaskId !== undefined &&
    revocation.parentTaskId !== '' &&
    revocation.parentTaskId !== revocation.taskId &&
    revocation.actor !== TASK_TREE_ACTOR &&
    revocation.actor !== ESCALATION_ACTOR
  );
}

/** The parent a span's claim names, or undefined for none (a task is never its own parent). */
export function parentOf(taskId: string, claimed: string | undefined): string | undefined {
  return claimed === undefined || claimed === '' || claimed === taskId ? undefined : claimed;
}

/**
 * The revocation of a descendant because `ancestor` (the kill of one of its ancestors) was made. Its id is fixed by
 * the descendant and the ancestor's kill, so every process that makes it (the decider from the store, the
 * processor holding the descendant) makes the same one.
 */
export function treeRevocation(
  task: TaskIdentity,
  ancestor: Revocation,
  score: number,
  timeMs: number,
  scope: EscalationScope = {},
): Revocation {
  const by = ancestor.source === 'manual' ? ` by ${ancestor.actor}` : '';
  return {
    id: decisionId(task.tenant, task.taskId, 'revoke', TASK_TREE_ACTOR, ancestor.id),
    tenant: task.tenant,
    taskId: task.taskId,
    taskType: task.taskType,
    agentId: task.agentId,
    action: 'revoke',
    source: ancestor.source,
    actor: TASK_TREE_ACTOR,
    reason: `its ancestor task ${ancestor.taskId} was revoked${by}: ${ancestor.reason}`,
    reasons: [`ancestor task ${ancestor.taskId} revoked`, ...ancestor.reasons.slice(0, 4)],
    score,
    eventId: '',
    timeMs,
    escalation: taskTreeBasis(scope),
  };
}

/** The family of a contribution: its feature's name before the first dot (as escalation-policy.ts reads it). */
function familyOf(feature: string): string {
  const dot = feature.indexOf('.');
  return dot === -1 ? feature : feature.slice(0, dot);
}

/**
 * The parent's verdict once `revokedChildren` of its children (this one, `child`, the last) were killed for what
 * they did: its own strongest evidence so far (`peak`) with a `tree` contribution naming the child, at the alert
 * threshold for the first child and `FURTHER_CHILD_POINTS` more for each further one. The score stays below the
 * revoke threshold and the decision is an alert whatever the sum: children never revoke their parent.
 */
export function childRevokedVerdict(
  peak: Verdict | undefined,
  child: Revocation,
  revokedChildren: number,
  thresholds: { alert: number; revoke: number; shadow: boolean },
): Verdict {
  const ceiling = Math.max(0, thresholds.revoke - BELOW_REVOKE);
  const points = Math.min(ceiling, thresholds.alert + FURTHER_CHILD_POINTS * Math.max(0, revokedChildren - 1));
  const contribution: Contribution = {
    feature: CHILD_REVOKED_FEATURE,
    score: Math.round(points * 10) / 10,
    reason: `its child task ${child.taskId} (${child.taskType}, agent ${child.agentId}) was revoked${
      child.source === 'manual' ? ` by ${child.actor}` : ''
    }: ${child.reason}${revokedChildren > 1 ? ` (${revokedChildren} of its children revoked)` : ''}`,
  };
  const own = (peak?.contributions ?? []).filter((item) => item.feature !== CHILD_REVOKED_FEATURE);
  const families = new Map<string, number>([['tree', contribution.score]]);
  for (const item of own) {
    const family = familyOf(item.feature);
    families.set(family, Math.max(families.get(family) ?? 0, item.score));
  }
  const combined = Math.min(ceiling, Math.max(peak?.score ?? 0, combineFamilies([...families.values()])));
  return {
    score: Math.round(combined * 10) / 10,
    decision: 'alert',
    regime: peak?.regime ?? 'rules',
    contributions: [contribution, ...own].sort((a, b) => b.score - a.score),
    shadow: thresholds.shadow,
  };
}

/** The alert on the parent for one child's kill: one per parent and child, however often it is replayed. */
export function childRevokedAlert(parent: TaskIdentity, child: Revocation, verdict: Verdict): Alert {
  return {
    id: decisionId(parent.tenant, parent.taskId, 'alert', CHILD_REVOKED_FEATURE, child.taskId),
    tenant: parent.tenant,
    taskId: parent.taskId,
    taskType: parent.taskType,
    agentId: parent.agentId,
    eventId: '',
    timeMs: child.timeMs,
    score: verdict.score,
    decision: verdict.decision,
    regime: verdict.regime,
    reasons: verdict.contributions.map((contribution) => contribution.reason),
    shadow: verdict.shadow,
  };
}
