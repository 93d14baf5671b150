/**
 * Scoring one step of a batch: each event folded into its task's state and scored against the baselines, the
 * decision acted on (an alert once per level, a revocation), and the batch's task ends applied in an order that
 * a replay in arrival order reproduces.
 */
import type { AgentEvent, Decision, ModelUsage, TaskBoundary, Verdict } from '../../schemas/events.ts';
import { learningEffect, markedSameCall, observe, sameCallOf, score, thresholdsFor } from '../core/detect/index.ts';
import type { SameCallSpan } from '../core/detect/index.ts';
import { alertOf, detectorRevocation, refusalAlert } from '../core/decide.ts';
import { limitsFor } from '../core/loop-policy.ts';
import { observeLoops, withLoopFindings } from '../core/loops.ts';
import { noteScope } from '../core/escalation-policy.ts';
import { emptyOutput } from './batch-output.ts';
import type { BatchOutput } from './batch-output.ts';
import { applyEscalations, runHook } from './processor-parts.ts';
import type { ProcessorParts } from './processor-parts.ts';
import { checkEventIdentity } from './identity-findings.ts';
import { completeOverflow, endTask } from './task-ends.ts';
import { markSeen, noteLearningEffect, onlyAcceptedEvidence, taskKey } from './task-table.ts';
import type { LiveTask } from './task-table.ts';
import { revokeUnderRevokedParent } from './task-tree.ts';
import { scoreUsage } from './spend-scoring.ts';

/** Scores events and task ends (the caller serializes it) and returns their results, not yet written. */
export function scoreItems(
  parts: ProcessorParts,
  batchEvents: readonly AgentEvent[],
  boundaries: readonly TaskBoundary[],
  names: ReadonlyMap<string, string>,
  usages: readonly ModelUsage[] = [],
): BatchOutput {
  const output = emptyOutput();
  const events = [...batchEvents].sort((a, b) => a.startMs - b.startMs);
  // Per task its first end; declarations and further ends apply after the events, declarations before the ends
  // (a type declared beside the root is the type the task is learned as).
  const ends = new Map<string, TaskBoundary>();
  const declarations: TaskBoundary[] = [];
  const repeatedEnds: TaskBoundary[] = [];
  for (const boundary of boundaries) {
    const key = taskKey(boundary.tenant, boundary.taskId);
    if (!boundary.ends) declarations.push(boundary);
    else if (ends.has(key)) repeatedEnds.push(boundary);
    else ends.set(key, boundary);
  }
  for (const event of events) {
    const key = taskKey(event.tenant, event.taskId);
    // A task's end applies before events of other traces that started after it, also when both arrive in one
    // batch (credentials used after the task ended). Spans of the ending root's own trace are the task's, whatever
    // their timestamps: they end before their root, and are exported with it or before it.
    const end = ends.get(key);
    if (end !== undefined && end.traceId !== event.traceId && end.endMs < event.startMs) {
      endTask(parts, end, output, names);
      ends.delete(key);
    }
    const isNew = !parts.tasks.has(key);
    scoreEvent(parts, event, output, names);
    // The trace's root arrived first (its events came later, from another topic or another exporter).
    const earlierEnd = isNew && !ends.has(key) ? parts.resolver.traces.takeEnd(event.tenant, event.traceId) : undefined;
    if (earlierEnd !== undefined) ends.set(key, { ...earlierEnd, taskId: event.taskId });
  }
  // Model calls count toward their tasks' spend before the tasks end (a root and its last call come together).
  // What the batch's boundaries say of a task (its type, its agent) applies first: a budget may name them.
  const declared = new Map<string, TaskBoundary[]>();
  for (const boundary of boundaries) {
    const key = taskKey(boundary.tenant, boundary.taskId);
    declared.set(key, [...(declared.get(key) ?? []), boundary]);
  }
  for (const usage of [...usages].sort((a, b) => a.endMs - b.endMs))
    scoreUsage(parts, usage, output, names, declared.get(taskKey(usage.tenant, usage.taskId)) ?? []);
  for (const boundary of [...declarations, ...ends.values(), ...repeatedEnds]) endTask(parts, boundary, output, names);
  completeOverflow(parts, output);
  applyEscalations(parts, output);
  return output;
}

function scoreEvent(
  parts: ProcessorParts,
  received: AgentEvent,
  output: BatchOutput,
  names: ReadonlyMap<string, string>,
): void {
  const task = parts.resolver.taskFor(received);
  parts.resolver.adoptClaims(task, received, names, output);
  // Already folded in (rebuilt from the store, or delivered twice): its verdict is stored; scoring it again
  // would count it twice.
  if (!markSeen(task, received.id)) return;
  checkEventIdentity(parts, task, received, output);
  const wasRevoked = task.status === 'revoked';
  task.state = observe(task.state, received);
  // Another instrumentation's record of a call already counted is stored marked as such (it is no second call).
  const sameCall = sameCallOf(task.state, received);
  const event = sameCall === undefined ? received : markedSameCall(received, sameCall.of);
  noteScope(task.scope, event.attributes);
  const scored = score(
    event,
    task.state,
    parts.book.lookup(event.tenant, task.state.taskType, task.state.agentId),
    parts.detector,
  );
  const verdict = withLoops(parts, task, event, scored, output, sameCall);
  output.events.push({ event, verdict });
  if (task.peak === undefined || verdict.score >= task.peak.score) task.peak = verdict;
  output.tasks.set(taskKey(event.tenant, event.taskId), task);
  const onRevoked = parts.hooks?.onRevokedTaskEvent;
  if (wasRevoked && onRevoked !== undefined) runHook(parts, 'onRevokedTaskEvent', () => onRevoked(event));
  // An escalated agent's new tasks in the block's scope are revoked as they appear, for as long as it lasts.
  const block = parts.escalation?.blocking(event.tenant, task.state.agentId, task.scope);
  if (block !== undefined && task.status === 'active') parts.escalation?.revokeTask(task, block, event.id, output);
  // A sub-agent's task first heard of after its parent's kill goes with it.
  revokeUnderRevokedParent(parts, task, output);

  if (verdict.decision === 'allow') return;
  noteLearningEffect(task, learningEffect(verdict));
  if (onlyAcceptedEvidence(task, verdict)) return;
  const level: Decision = verdict.decision;
  if (!task.raised.has(level)) {
    task.raised.add(level);
    const alert = alertOf(task.state, event, verdict);
    output.alerts.push(alert);
    parts.killSwitch.alert(alert);
  }
  if (level === 'revoke' && !verdict.shadow && task.status !== 'revoked') {
    task.status = 'revoked';
    const revocation = detectorRevocation(task.state, verdict, event.id, parts.now(), {
      revokeThreshold: thresholdsFor(task.state.taskType, parts.detector).revoke,
      scope: task.scope,
    });
    if (task.parentId !== '') revocation.parentTaskId = task.parentId;
    parts.killSwitch.apply(revocation);
    output.revocations.push(revocation);
  }
}

/**
 * Loops and rate limits (services/core/loops.ts): the event counted, its findings folded into the verdict (they
 * alert and revoke through the normal path), and a `refuse` step marking the task refusing for the policy's time
 * (POST /v1/check denies its calls meanwhile) with an alert of its own naming the reason.
 */
function withLoops(
  parts: ProcessorParts,
  task: LiveTask,
  event: AgentEvent,
  verdict: Verdict,
  output: BatchOutput,
  sameCall: SameCallSpan | undefined,
): Verdict {
  if (!parts.loops.enabled) return verdict;
  const limits = limitsFor(parts.loops, task.state.taskType);
  const findings = observeLoops(task.loops, event, limits, sameCall);
  if (findings.length === 0) return verdict;
  const thresholds = thresholdsFor(task.state.taskType, parts.detector);
  const merged = withLoopFindings(verdict, findings, thresholds);
  const refuse = findings.find((finding) => finding.action === 'refuse');
  if (refuse !== undefined && !merged.shadow && merged.decision !== 'revoke' && task.status === 'active') {
    const untilMs = parts.now() + limits.refuseForMs;
    task.refusing = { feature: refuse.feature, reason: refuse.reason, untilMs };
    const alert = refusalAlert(task.state, event, merged, refuse, untilMs);
    output.alerts.push(alert);
    parts.killSwitch.alert(alert);
    parts.logger.warn(
      { taskId: task.state.taskId, feature: refuse.feature, until: new Date(untilMs).toISOString() },
      "a loop or rate limit refuses the task's calls",
    );
  }
  return merged;
}
