/**
 * Replays labelled tasks through a detector exactly as the processor drives Tripline's detector
 * (services/processor/processor.ts): per task, each event is folded in and scored against the baselines as they
 * are at that moment; the task completes at its boundary and is learned only if it completed (was not
 * revoked) and was never flagged (no alert or revoke that was acted on, other than a warm-up alert:
 * `excludesFromLearning`); events after the end are scored
 * against the ended task. Tasks run one after another in the order given.
 *
 * Tripline's detector learns through the same `BaselineBook` the processor uses (type, agent and fleet
 * baselines). The comparators learn through their own `learn` with the same rule and warm-up.
 */
import type { TaskLabel } from '../../collectors/simulator/scenarios.ts';
import type { AgentEvent, Decision, Regime, Verdict } from '../../schemas/events.ts';
import type { Comparator } from '../core/comparators/types.ts';
import {
  learningEffect,
  markEnded,
  newTaskState,
  observe,
  recordVerdict,
  score,
  summarize,
} from '../core/detect/index.ts';
import type { DetectorConfig, LearningEffect, TaskSummary } from '../core/detect/index.ts';
import { strongerEffect, thresholdsFor } from '../core/detect/index.ts';
import { DEFAULT_LOOP_POLICY, limitsFor } from '../core/loop-policy.ts';
import type { LoopPolicy } from '../core/loop-policy.ts';
import { newLoopState, observeLoops, withLoopFindings } from '../core/loops.ts';
import {
  SpendBaselines,
  SpendLedger,
  addSpend,
  budgetVerdict,
  checkTaskBudgets,
  costOf,
  emptySpend,
  spendContribution,
  withSpendFeature,
} from '../core/spend/index.ts';
import type { SpendSettings } from '../core/spend/index.ts';
import { BaselineBook } from '../processor/baseline-book.ts';
import type { LabelledTask } from './plan-events.ts';

/** What one detector decided on one event. */
export interface EventDecision {
  score: number;
  decision: Decision;
  /** Tripline only. */
  regime?: Regime;
  /** Tripline only: the hard rule that decided, and a revoke's contributions (escalation-replay.ts weighs them). */
  hardRule?: string;
  contributions?: { feature: string; score: number }[];
  reasons: string[];
}

export interface TaskOutcome {
  taskId: string;
  taskType: string;
  agentId: string;
  label: TaskLabel;
  attackStart: number | undefined;
  /** Per event, in `[...events, ...afterEnd]` order. */
  decisions: EventDecision[];
  /** Start and end times of those events (for delays in milliseconds). */
  times: { startMs: number; endMs: number }[];
  /** The task was learned as normal (unknown for outcomes read back from the pipeline). */
  learned?: boolean;
}

/** Decides whether a completed task teaches the baselines; the processor's rule is the default. */
export type LearningPolicy = (task: {
  flagged: boolean;
  revoked: boolean;
  peak: EventDecision | undefined;
  events: number;
}) => boolean;

/** The processor's rule: learn completed (not revoked) tasks that never alerted. */
export const PROCESSOR_POLICY: LearningPolicy = ({ flagged, revoked, events }) => !flagged && !revoked && events > 0;

export interface ReplayOptions {
  policy?: LearningPolicy;
  /** Called for each task Tripline learns (e.g. to collect summaries). */
  onLearn?: (summary: TaskSummary) => void;
  /** Loop and rate limits, as the processor applies them (services/core/loops.ts). @default DEFAULT_LOOP_POLICY */
  loops?: LoopPolicy;
  /**
   * Prices and budgets the tasks' model calls are held to, as the processor holds them
   * (services/processor/spend-scoring.ts); absent: model calls are not checked.
   */
  spend?: SpendSettings;
}

function timesOf(task: LabelledTask): { startMs: number; endMs: number }[] {
  return [...task.events, ...task.afterEnd].map((event) => ({ startMs: event.startMs, endMs: event.endMs }));
}

function toDecision(verdict: Verdict): EventDecision {
  return {
    score: verdict.score,
    decision: verdict.decision,
    regime: verdict.regime,
    ...(verdict.hardRule === undefined ? {} : { hardRule: verdict.hardRule }),
    ...(verdict.decision === 'revoke'
      ? { contributions: verdict.contributions.map(({ feature, score }) => ({ feature, score })) }
      : {}),
    reasons: verdict.contributions.slice(0, 3).map((c) => c.reason),
  };
}

/** Tripline's detector over the tasks, with the processor's learning rule (or `options.policy`). */
export function replayTripline(
  tasks: readonly LabelledTask[],
  config: DetectorConfig,
  options: ReplayOptions = {},
): { outcomes: TaskOutcome[]; book: BaselineBook } {
  const policy = options.policy ?? PROCESSOR_POLICY;
  const loops = options.loops ?? DEFAULT_LOOP_POLICY;
  const book = new BaselineBook();
  const ledger = new SpendLedger();
  const spendBaselines = new SpendBaselines();
  const outcomes = tasks.map((task): TaskOutcome => {
    const first = task.events[0] ?? task.afterEnd[0];
    let state = newTaskState({
      tenant: task.boundary.tenant,
      taskId: task.taskId,
      taskType: task.taskType,
      agentId: task.agentId,
      startMs: first?.startMs ?? task.boundary.startMs,
    });
    let flagged = false;
    let revoked = false;
    let effect = 'teaches' as LearningEffect;
    let peak: EventDecision | undefined;
    const decisions: EventDecision[] = [];
    const loopState = newLoopState();
    const scoreOne = (event: AgentEvent): void => {
      state = observe(state, event);
      const scored = score(event, state, book.lookup(event.tenant, state.taskType, state.agentId), config);
      const verdict = loops.enabled
        ? withLoopFindings(
            scored,
            observeLoops(loopState, event, limitsFor(loops, state.taskType)),
            thresholdsFor(state.taskType, config),
          )
        : scored;
      recordVerdict(state, verdict);
      const decision = toDecision(verdict);
      decisions.push(decision);
      if (peak === undefined || decision.score >= peak.score) peak = decision;
      effect = strongerEffect(effect, learningEffect(verdict));
      if (effect === 'excluded') flagged = true;
      if (verdict.decision === 'revoke' && !verdict.shadow) revoked = true;
    };
    // Model calls after an event (or before the first) are checked against the budgets right after it; a budget's
    // verdict stands for that event when it is the stronger one.
    const spend = emptySpend();
    const spendVerdict = (afterEvent: number): Verdict | undefined => {
      const settings = options.spend;
      if (settings === undefined) return undefined;
      const findings = [];
      let added = 0;
      for (const { afterEvent: after, usage } of task.usages ?? []) {
        if (after !== afterEvent) continue;
        added += 1;
        const cost = costOf(settings.prices, usage.model, usage.inputTokens, usage.outputTokens);
        addSpend(spend, usage, cost);
        const who = { tenant: usage.tenant, agentId: state.agentId, taskType: state.taskType };
        findings.push(
          ...checkTaskBudgets(settings.budgets, who, spend),
          ...ledger.add(settings.budgets, who, usage, cost, usage.endMs),
        );
        // The call that reaches a limit (or ten times the type's p99) revokes the task there: its reason names the
        // spend at that call.
        const reference = spendBaselines.reference(task.boundary.tenant, state.taskType);
        if (
          findings.some((found) => found.level === 'limit') ||
          (spendContribution(reference, spend, state.taskType, config.warmupTasks)?.score ?? 0) >=
            config.revokeThreshold
        )
          break;
      }
      if (added === 0) return undefined;
      const typeSpend = spendContribution(
        spendBaselines.reference(task.boundary.tenant, state.taskType),
        spend,
        state.taskType,
        config.warmupTasks,
      );
      return withSpendFeature(budgetVerdict(findings, config.shadow), typeSpend, thresholdsFor(state.taskType, config));
    };
    const applySpend = (verdict: Verdict | undefined): void => {
      const last = decisions.length - 1;
      if (verdict === undefined || last < 0 || verdict.score <= (decisions[last]?.score ?? 0)) return;
      const decision = toDecision(verdict);
      decisions[last] = decision;
      if (peak === undefined || decision.score >= peak.score) peak = decision;
      flagged = true;
      if (verdict.decision === 'revoke' && !verdict.shadow) revoked = true;
    };
    const before = spendVerdict(-1);
    task.events.forEach((event, index) => {
      scoreOne(event);
      if (index === 0) applySpend(before);
      applySpend(spendVerdict(index));
    });
    state = markEnded(state, task.boundary.endMs);
    const learned = policy({ flagged, revoked, peak, events: task.events.length });
    if (learned && options.spend !== undefined) spendBaselines.learn(task.boundary.tenant, state.taskType, spend.usd);
    if (learned && effect === 'held' && policy === PROCESSOR_POLICY) {
      book.holdWarmupTask(task.boundary.tenant, task.taskType, task.agentId, summarize(state), config.warmupTasks);
    } else if (learned) {
      const summary = summarize(state);
      book.learnTask(task.boundary.tenant, task.taskType, task.agentId, summary);
      options.onLearn?.(summary);
    }
    for (const event of task.afterEnd) scoreOne(event);
    return {
      taskId: task.taskId,
      taskType: task.taskType,
      agentId: task.agentId,
      label: task.label,
      attackStart: task.attackStart,
      decisions,
      times: timesOf(task),
      learned: learned && effect !== 'held',
    };
  });
  return { outcomes, book };
}

/** A comparator over the same tasks with the same learning rule. */
export function replayComparator<S, M>(
  tasks: readonly LabelledTask[],
  detector: Comparator<S, M>,
  policy: LearningPolicy = PROCESSOR_POLICY,
): TaskOutcome[] {
  const model = detector.newModel();
  return tasks.map((task): TaskOutcome => {
    const first = task.events[0] ?? task.afterEnd[0];
    let state = detector.newTaskState({
      tenant: task.boundary.tenant,
      taskId: task.taskId,
      taskType: task.taskType,
      agentId: task.agentId,
      startMs: first?.startMs ?? task.boundary.startMs,
    });
    let flagged = false;
    let revoked = false;
    let peak: EventDecision | undefined;
    const decisions: EventDecision[] = [];
    const scoreOne = (event: AgentEvent): void => {
      state = detector.observe(state, event);
      const verdict = detector.score(event, state, model);
      decisions.push(verdict);
      if (peak === undefined || verdict.score >= peak.score) peak = verdict;
      if (verdict.decision !== 'allow') flagged = true;
      if (verdict.decision === 'revoke') revoked = true;
    };
    for (const event of task.events) scoreOne(event);
    state = detector.markEnded(state, task.boundary.endMs);
    const learned = policy({ flagged, revoked, peak, events: task.events.length });
    if (learned) detector.learn(model, state);
    for (const event of task.afterEnd) scoreOne(event);
    return {
      taskId: task.taskId,
      taskType: task.taskType,
      agentId: task.agentId,
      label: task.label,
      attackStart: task.attackStart,
      decisions,
      times: timesOf(task),
      learned,
    };
  });
}
