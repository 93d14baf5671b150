/**
 * What escalation would do on the evaluation's workload (the detector's replay turns it off to measure the
 * detector alone): the replay's per-event decisions, in event time across every agent, drive the same
 * escalation window the processor and the authority use (services/killswitch/escalation.ts), once with the rule
 * before issue 20 (every revocation counts, the whole agent is blocked) and once with today's
 * (services/core/escalation-policy.ts: only confident revocations count, the narrowest shared scope is blocked).
 *
 * As the processor does: a task is held from its first event until its end; when an agent escalates, its held
 * active tasks in scope are revoked, and so is each of its tasks in scope at its next event while the block lasts.
 * Approximation: the decisions are the replay's, so a benign task revoked by escalation is still learned there
 * (the processor would not learn it); the blast radius counted here is the first-order one.
 */
import type { EscalationBasis, Revocation } from '../../schemas/events.ts';
import { escalationRevocation } from '../core/decide.ts';
import { thresholdsFor } from '../core/detect/index.ts';
import type { DetectorConfig } from '../core/detect/index.ts';
import { covers, detectorBasis, noteScope } from '../core/escalation-policy.ts';
import type { EscalationScope } from '../core/escalation-policy.ts';
import { EscalationWindow } from '../killswitch/escalation.ts';
import type { Escalation, EscalationPolicy } from '../killswitch/escalation.ts';
import type { LabelledTask } from './plan-events.ts';
import type { EventDecision, TaskOutcome } from './replay.ts';

/** The product's defaults (TRIPLINE_ESCALATION_*). */
export const DEFAULT_ESCALATION_POLICY: EscalationPolicy = { revocations: 3, windowMs: 600_000, blockMs: 900_000 };

export interface EscalationRun {
  rule: 'every_revocation' | 'confident_scoped';
  escalations: number;
  /** Escalations among whose counted revocations is a benign task's (an escalation caused by false positives). */
  causedByFalsePositives: number;
  /** Escalations that blocked less than the whole agent. */
  scoped: number;
  /** Benign tasks revoked by an escalation (the detector did not revoke them). */
  benignRevoked: number;
  /** Attack tasks revoked by an escalation before or without the detector revoking them. */
  attacksRevoked: number;
  /** The most benign tasks one block revoked (the blast radius of one escalation on this workload). */
  mostBenignPerBlock: number;
}

export interface EscalationReport {
  policy: EscalationPolicy;
  benign: number;
  attacks: number;
  before: EscalationRun;
  after: EscalationRun;
}

interface Moment {
  timeMs: number;
  task: number;
  /** Index of the event in `[...events, ...afterEnd]`, or -1 for the task's end. */
  event: number;
}

interface Held {
  task: LabelledTask;
  scope: EscalationScope;
  status: 'unseen' | 'active' | 'ended' | 'revoked';
  by?: 'detector' | 'escalation';
}

export function replayEscalation(
  tasks: readonly LabelledTask[],
  outcomes: readonly TaskOutcome[],
  config: DetectorConfig,
  policy: EscalationPolicy = DEFAULT_ESCALATION_POLICY,
): EscalationReport {
  const benign = tasks.filter((task) => task.label === 'benign').length;
  return {
    policy,
    benign,
    attacks: tasks.length - benign,
    before: run(tasks, outcomes, config, policy, 'every_revocation'),
    after: run(tasks, outcomes, config, policy, 'confident_scoped'),
  };
}

function momentsOf(tasks: readonly LabelledTask[]): Moment[] {
  const moments: Moment[] = [];
  tasks.forEach((task, index) => {
    [...task.events, ...task.afterEnd].forEach((event, position) =>
      moments.push({ timeMs: event.endMs, task: index, event: position }),
    );
    moments.push({ timeMs: task.boundary.endMs, task: index, event: -1 });
  });
  // Stable: at one instant, tasks in plan order, a task's events before its end.
  return moments.sort((a, b) => a.timeMs - b.timeMs);
}

function basisFor(
  rule: EscalationRun['rule'],
  decision: EventDecision,
  held: Held,
  config: DetectorConfig,
): EscalationBasis {
  if (rule === 'every_revocation') return { counts: true, basis: 'confident_score' };
  const verdict = {
    score: decision.score,
    regime: decision.regime ?? 'type_baseline',
    contributions: decision.contributions ?? [],
    ...(decision.hardRule === undefined ? {} : { hardRule: decision.hardRule }),
  };
  return detectorBasis(verdict, thresholdsFor(held.task.taskType, config).revoke, held.scope);
}

function run(
  tasks: readonly LabelledTask[],
  outcomes: readonly TaskOutcome[],
  config: DetectorConfig,
  policy: EscalationPolicy,
  rule: EscalationRun['rule'],
): EscalationRun {
  const window = new EscalationWindow(policy);
  const benignIds = new Set(tasks.filter((task) => task.label === 'benign').map((task) => task.taskId));
  const held: Held[] = tasks.map((task) => ({ task, scope: {}, status: 'unseen' }));
  const result: EscalationRun = {
    rule,
    escalations: 0,
    causedByFalsePositives: 0,
    scoped: 0,
    benignRevoked: 0,
    attacksRevoked: 0,
    mostBenignPerBlock: 0,
  };
  const benignPerBlock = new Map<Escalation, number>();
  const byEscalation = (entry: Held, escalation: Escalation, timeMs: number): void => {
    entry.status = 'revoked';
    entry.by = 'escalation';
    if (entry.task.label === 'benign') {
      result.benignRevoked += 1;
      const count = (benignPerBlock.get(escalation) ?? 0) + 1;
      benignPerBlock.set(escalation, count);
      result.mostBenignPerBlock = Math.max(result.mostBenignPerBlock, count);
    } else result.attacksRevoked += 1;
    window.observe(escalationRevocation(identity(entry), escalation, policy.windowMs, 0, '', timeMs, entry.scope));
  };
  for (const moment of momentsOf(tasks)) {
    const entry = held[moment.task];
    if (entry === undefined) continue;
    const { task } = entry;
    if (moment.event < 0) {
      if (entry.status === 'active') entry.status = 'ended';
      continue;
    }
    const event = [...task.events, ...task.afterEnd][moment.event];
    if (event !== undefined) noteScope(entry.scope, event.attributes);
    if (entry.status === 'unseen') entry.status = 'active';
    const block = window.blocking(task.boundary.tenant, task.agentId, entry.scope, moment.timeMs);
    if (block !== undefined && entry.status === 'active') byEscalation(entry, block, moment.timeMs);
    const decision = outcomes[moment.task]?.decisions[moment.event];
    if (decision?.decision !== 'revoke' || entry.status === 'revoked') continue;
    entry.status = 'revoked';
    entry.by = 'detector';
    const escalation = window.observe(detectorKill(entry, moment, basisFor(rule, decision, entry, config)));
    if (escalation === undefined) continue;
    result.escalations += 1;
    if (escalation.scope !== undefined) result.scoped += 1;
    if (escalation.taskIds.some((taskId) => benignIds.has(taskId))) result.causedByFalsePositives += 1;
    for (const other of held)
      if (
        other.status === 'active' &&
        other.task.agentId === escalation.agentId &&
        other.task.boundary.tenant === escalation.tenant &&
        covers(escalation.scope, other.scope)
      )
        byEscalation(other, escalation, moment.timeMs);
  }
  return result;
}

function identity(entry: Held): { tenant: string; taskId: string; taskType: string; agentId: string } {
  const { task } = entry;
  return { tenant: task.boundary.tenant, taskId: task.taskId, taskType: task.taskType, agentId: task.agentId };
}

function detectorKill(entry: Held, moment: Moment, escalation: EscalationBasis): Revocation {
  return {
    id: `${entry.task.taskId}:${String(moment.event)}`,
    ...identity(entry),
    action: 'revoke',
    source: 'detector',
    actor: 'tripline',
    reason: 'score reached the revoke threshold',
    reasons: [],
    score: 0,
    eventId: '',
    timeMs: moment.timeMs,
    escalation,
  };
}

/** One line per rule, for the markdown report. */
export function escalationLines(report: EscalationReport): string[] {
  const minutes = (ms: number): string => `${String(Math.round(ms / 60_000))} min`;
  const line = (name: string, r: EscalationRun): string =>
    `- ${name}: ${String(r.escalations)} escalations (${String(r.causedByFalsePositives)} caused by false positives, ${String(r.scoped)} narrower than the agent); benign tasks revoked by escalation ${String(r.benignRevoked)} of ${String(report.benign)} (at most ${String(r.mostBenignPerBlock)} by one block); attack tasks revoked by escalation before the detector ${String(r.attacksRevoked)} of ${String(report.attacks)}`;
  return [
    `Escalation on this workload (${String(report.policy.revocations)} revocations of one agent within ${minutes(report.policy.windowMs)} block for ${minutes(report.policy.blockMs)}; the detector's decisions above, in event time):`,
    line('every revocation counts, whole agent (before issue 20)', report.before),
    line('confident revocations only, narrowest shared scope (now)', report.after),
  ];
}
