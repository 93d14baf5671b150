/**
 * Spend as a per-type baseline feature (`spend.per_task`): what a task's model calls cost so far against the p99
 * of what completed benign tasks of its type cost. Ten times the p99 is anomalous without any budget (a revoke at
 * the default thresholds), five times raises an alert. Pure; memory is bounded (SPEND_WINDOW tasks per type,
 * MAX_SPEND_TYPES types, least recently learned dropped first).
 */
import type { Contribution, Decision, Verdict } from '../../../schemas/events.ts';
import type { Spend } from './budgets.ts';
import { fmtTokens, fmtUsd } from './budgets.ts';

/** Completed tasks per type whose spend the p99 is taken over (the most recent). */
export const SPEND_WINDOW = 256;
export const MAX_SPEND_TYPES = 10_000;
/** The p99 is never taken below this (USD): a type whose tasks spend nothing is not alarmed by cents. */
export const MIN_SPEND_REFERENCE_USD = 0.25;
export const SPEND_REVOKE_FACTOR = 10;
export const SPEND_ALERT_FACTOR = 5;
export const SPEND_REVOKE_SCORE = 90;
export const SPEND_ALERT_SCORE = 55;

export interface SpendReference {
  /** Completed benign tasks learned. */
  tasks: number;
  p99: number;
}

export class SpendBaselines {
  readonly #types = new Map<string, { values: number[]; next: number; p99: number; tasks: number }>();
  readonly #maxTypes: number;

  constructor(maxTypes = MAX_SPEND_TYPES) {
    this.#maxTypes = maxTypes;
  }

  /** A completed benign task of the type spent `usd` (0 for a task without model calls). */
  learn(tenant: string, taskType: string, usd: number): void {
    const key = `${tenant}\u0000${taskType}`;
    let entry = this.#types.get(key);
    if (entry === undefined) {
      entry = { values: [], next: 0, p99: 0, tasks: 0 };
      if (this.#types.size >= this.#maxTypes) {
        const oldest = this.#types.keys().next().value;
        if (oldest !== undefined) this.#types.delete(oldest);
      }
    } else {
      this.#types.delete(key);
    }
    this.#types.set(key, entry);
    if (entry.values.length < SPEND_WINDOW) entry.values.push(usd);
    else entry.values[entry.next] = usd;
    entry.next = (entry.next + 1) % SPEND_WINDOW;
    entry.tasks += 1;
    const sorted = [...entry.values].sort((a, b) => a - b);
    entry.p99 = sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)] ?? 0;
  }

  reference(tenant: string, taskType: string): SpendReference | undefined {
    const entry = this.#types.get(`${tenant}\u0000${taskType}`);
    return entry === undefined ? undefined : { tasks: entry.tasks, p99: entry.p99 };
  }

  get size(): number {
    return this.#types.size;
  }
}

/**
 * The `spend.per_task` contribution of a task's spend, or undefined while the type has fewer than `minTasks`
 * learned tasks or the spend is under SPEND_ALERT_FACTOR times its reference.
 */
export function spendContribution(
  reference: SpendReference | undefined,
  spend: Spend,
  taskType: string,
  minTasks: number,
): Contribution | undefined {
  if (reference === undefined || reference.tasks < minTasks) return undefined;
  const floor = Math.max(reference.p99, MIN_SPEND_REFERENCE_USD);
  const ratio = spend.usd / floor;
  if (ratio < SPEND_ALERT_FACTOR) return undefined;
  return {
    feature: 'spend.per_task',
    score: ratio >= SPEND_REVOKE_FACTOR ? SPEND_REVOKE_SCORE : SPEND_ALERT_SCORE,
    reason: `spent ${fmtUsd(spend.usd)} on model calls in this task (${fmtTokens(spend.inputTokens)} tokens in, ${fmtTokens(spend.outputTokens)} out); p99 for tasks of type ${taskType} is ${fmtUsd(reference.p99)}${reference.p99 < MIN_SPEND_REFERENCE_USD ? ` (taken as ${fmtUsd(MIN_SPEND_REFERENCE_USD)})` : ''}: ${ratio >= 100 ? Math.round(ratio) : ratio.toFixed(1)}× it`,
  };
}

/**
 * The budgets' verdict with the `spend.per_task` contribution (the task's spend against its type's p99) beside it:
 * the higher score decides, by the type's thresholds; a budget's limit always revokes. Undefined when neither says
 * anything (or the spend feature alone stays under the alert threshold).
 */
export function withSpendFeature(
  budget: Verdict | undefined,
  typeSpend: Contribution | undefined,
  thresholds: { alert: number; revoke: number; shadow: boolean },
): Verdict | undefined {
  if (typeSpend === undefined) return budget;
  const score = Math.max(budget?.score ?? 0, typeSpend.score);
  const decision: Decision =
    budget?.decision === 'revoke' || score >= thresholds.revoke
      ? 'revoke'
      : score >= thresholds.alert || budget !== undefined
        ? 'alert'
        : 'allow';
  if (decision === 'allow') return undefined;
  const contributions = [...(budget?.contributions ?? []), typeSpend].sort((a, b) => b.score - a.score);
  return {
    score,
    decision,
    regime: budget === undefined ? 'type_baseline' : budget.regime,
    contributions,
    shadow: thresholds.shadow,
    ...(budget?.hardRule === undefined ? {} : { hardRule: budget.hardRule }),
  };
}
