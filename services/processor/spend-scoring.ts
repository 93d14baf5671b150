/**
 * Model calls in the processor: each is priced (services/core/spend/prices.ts), added to its task's spend and to
 * the windows of the agent, task type and tenant budgets this processor counts, and checked against the budgets.
 * A budget's warning alerts, its limit revokes the task — through the same alert and revocation as a detector
 * verdict (core/decide.ts, the kill switch, the store), with reasons naming the budget, the spend and the window.
 * Beside the budgets, the task's spend against its type's p99 (`spend.per_task`, core/spend/spend-baseline.ts,
 * learned from the tasks the detector learns) alerts at 5× and revokes at 10×.
 */
import type { Decision, ModelUsage, TaskBoundary } from '../../schemas/events.ts';
import { thresholdsFor } from '../core/detect/index.ts';
import { alertOf, detectorRevocation } from '../core/decide.ts';
import {
  addSpend,
  budgetVerdict,
  checkTaskBudgets,
  costOf,
  spendContribution,
  withSpendFeature,
} from '../core/spend/index.ts';
import type { SpendSettings } from '../core/spend/index.ts';
import type { BatchOutput } from './batch-output.ts';
import type { ProcessorParts } from './processor-parts.ts';
import { markSeen, noteLearningEffect, onlyAcceptedEvidence, taskKey } from './task-table.ts';

/** Without settings: no budgets, every model priced at the shipped table's fallback (the app passes the table). */
export const DEFAULT_SPEND: SpendSettings = {
  prices: { date: '2025-08-01', fallback: { input: 10, output: 30 }, models: new Map() },
  budgets: [],
};

export function scoreUsage(
  parts: ProcessorParts,
  usage: ModelUsage,
  output: BatchOutput,
  names: ReadonlyMap<string, string>,
  boundaries: readonly TaskBoundary[] = [],
): void {
  const task = parts.resolver.taskFor(usage);
  parts.resolver.adoptClaims(task, usage, names, output);
  for (const boundary of boundaries) parts.resolver.adoptClaims(task, boundary, names, output);
  // Counted already (rebuilt from the store, or delivered twice).
  if (!markSeen(task, usage.id)) return;
  const { prices, budgets, ledger } = parts.spend;
  const cost = costOf(prices, usage.model, usage.inputTokens, usage.outputTokens);
  addSpend(task.spend, usage, cost);
  const key = taskKey(usage.tenant, usage.taskId);
  output.tasks.set(key, task);
  output.usages ??= [];
  // Stored under the task as resolved: its id, type and agent (the span itself may name none of them).
  output.usages.push({
    usage: { ...usage, taskType: task.state.taskType, agentId: task.state.agentId },
    costUsd: cost.usd,
    priced: cost.priced,
  });
  const who = { tenant: usage.tenant, agentId: task.state.agentId, taskType: task.state.taskType };
  const findings = [
    ...checkTaskBudgets(budgets, who, task.spend),
    ...ledger.add(budgets, who, usage, cost, usage.endMs),
  ];
  const thresholds = thresholdsFor(task.state.taskType, parts.detector);
  const typeSpend = spendContribution(
    parts.spend.baselines.reference(usage.tenant, task.state.taskType),
    task.spend,
    task.state.taskType,
    parts.detector.warmupTasks,
  );
  const verdict = withSpendFeature(budgetVerdict(findings, thresholds.shadow), typeSpend, thresholds);
  if (verdict === undefined) return;
  if (task.peak === undefined || verdict.score >= task.peak.score) task.peak = verdict;
  noteLearningEffect(task, 'excluded');
  if (onlyAcceptedEvidence(task, verdict)) return;
  const level: Decision = verdict.decision;
  if (!task.raised.has(level)) {
    task.raised.add(level);
    const alert = alertOf(task.state, usage, verdict);
    output.alerts.push(alert);
    parts.killSwitch.alert(alert);
  }
  if (level === 'revoke' && !verdict.shadow && task.status !== 'revoked') {
    task.status = 'revoked';
    const revocation = detectorRevocation(task.state, verdict, usage.id, parts.now(), {
      revokeThreshold: thresholds.revoke,
      scope: task.scope,
    });
    const first = verdict.contributions[0];
    revocation.reason = `${first?.feature.startsWith('budget.') === true ? 'spend budget reached' : 'spend far above its task type'}: ${first?.reason ?? ''}`;
    if (task.parentId !== '') revocation.parentTaskId = task.parentId;
    parts.killSwitch.apply(revocation);
    output.revocations.push(revocation);
  }
}
