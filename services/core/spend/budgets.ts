/**
 * Spend budgets: limits on what model calls cost (USD) and use (tokens in + out), per task (over the task's life)
 * or per agent, task type or tenant (over a sliding window). A call that brings spend to `warnAt` of a limit
 * alerts; one that reaches the limit revokes the task it belongs to, with a reason naming the budget, the spend
 * and the window. Pure: time comes from the calls; the window ledger is bounded (MAX_WINDOW_KEYS per budget).
 */
import type { Contribution, ModelUsage, Verdict } from '../../../schemas/events.ts';
import type { Cost } from './prices.ts';

export const BUDGET_SCOPES = ['task', 'agent', 'task_type', 'tenant'] as const;
export type BudgetScope = (typeof BUDGET_SCOPES)[number];

/** The feature a budget's finding is reported under: `budget.task`, `budget.agent`, `budget.task_type`, `budget.tenant`. */
export type BudgetFeature = `budget.${BudgetScope}`;

export interface Budget {
  id: string;
  scope: BudgetScope;
  /** Only this agent (scope agent), task type (scopes task and task_type) or tenant (scope tenant). */
  match?: string;
  /** Only this tenant (any scope). */
  tenant?: string;
  usd?: number;
  /** Tokens in + out. */
  tokens?: number;
  /** Fraction of a limit that alerts (0 < warnAt <= 1). */
  warnAt: number;
  /** The sliding window of agent, task_type and tenant budgets (null for task budgets: the task's life). */
  windowMs: number | null;
  /** The window as written (`1h`, `7d`). */
  window: string;
}

/** What model calls used: the task's, or one window's. */
export interface Spend {
  usd: number;
  inputTokens: number;
  outputTokens: number;
  calls: number;
  /** Calls priced at the table's fallback (their model is not in the table). */
  unpriced: number;
  /** USD by model, at most MAX_SPEND_MODELS (the rest under `other`). */
  models: Record<string, number>;
}

export interface BudgetFinding {
  budget: Budget;
  feature: BudgetFeature;
  level: 'warn' | 'limit';
  /** Spend over the limit (the larger of USD and tokens): 0.8 is 80%. */
  fraction: number;
  reason: string;
}

export const DEFAULT_WARN_AT = 0.8;
export const MAX_BUDGETS = 1000;
export const MAX_SPEND_MODELS = 8;
/** Keys (agents, task types, tenants) whose window spend one budget holds; the least recently used go first. */
export const MAX_WINDOW_KEYS = 10_000;
/** Buckets a window is counted in (a 1 h window in 1 min buckets). */
export const WINDOW_BUCKETS = 60;
const MIN_WINDOW_MS = 60_000;
const MAX_WINDOW_MS = 90 * 86_400_000;
const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

export function emptySpend(): Spend {
  return { usd: 0, inputTokens: 0, outputTokens: 0, calls: 0, unpriced: 0, models: {} };
}

/** Adds one call to a spend (mutates and returns it). */
export function addSpend(
  spend: Spend,
  usage: Pick<ModelUsage, 'model' | 'inputTokens' | 'outputTokens'>,
  cost: Cost,
): Spend {
  spend.usd += cost.usd;
  spend.inputTokens += usage.inputTokens;
  spend.outputTokens += usage.outputTokens;
  spend.calls += 1;
  if (!cost.priced) spend.unpriced += 1;
  const known = Object.hasOwn(spend.models, usage.model);
  const key = known || Object.keys(spend.models).length < MAX_SPEND_MODELS ? usage.model : 'other';
  spend.models[key] = (Object.hasOwn(spend.models, key) ? (spend.models[key] ?? 0) : 0) + cost.usd;
  return spend;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function windowMsOf(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const match = /^(\d{1,5})([mhd])$/.exec(text);
  if (match === null) return undefined;
  const ms = Number(match[1]) * (UNIT_MS[match[2] ?? ''] ?? 0);
  return ms >= MIN_WINDOW_MS && ms <= MAX_WINDOW_MS ? ms : undefined;
}

const BUDGET_KEYS = new Set(['id', 'scope', 'match', 'tenant', 'usd', 'tokens', 'warnAt', 'window']);

const positive = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= 1e12;

/**
 * Reads a budgets document (the shape of policies/budgets.json). Returns the budgets, or what is wrong as a
 * sentence naming the budget.
 */
export function parseBudgets(document: unknown): Budget[] | string {
  if (!isRecord(document) || !Array.isArray(document.budgets))
    return 'the budgets file must be a JSON object {"budgets": [...]}';
  if (document.budgets.length > MAX_BUDGETS) return `at most ${String(MAX_BUDGETS)} budgets`;
  const budgets: Budget[] = [];
  const ids = new Set<string>();
  for (const [index, item] of document.budgets.entries()) {
    const where = `budgets[${String(index)}]`;
    if (!isRecord(item)) return `${where} must be an object`;
    const unknown = Object.keys(item).find((key) => !BUDGET_KEYS.has(key));
    if (unknown !== undefined) return `${where} has an unknown key "${unknown}" (${[...BUDGET_KEYS].join(', ')})`;
    const scope = item.scope;
    if (typeof scope !== 'string' || !(BUDGET_SCOPES as readonly string[]).includes(scope))
      return `${where}.scope must be one of ${BUDGET_SCOPES.join(', ')}`;
    const id = item.id ?? `${scope}-${String(index)}`;
    if (typeof id !== 'string' || id === '' || id.length > 64)
      return `${where}.id must be a name of 1 to 64 characters`;
    if (ids.has(id)) return `${where}.id "${id}" is used twice`;
    ids.add(id);
    if (item.usd !== undefined && !positive(item.usd)) return `${where}.usd must be a positive number of USD`;
    if (item.tokens !== undefined && !positive(item.tokens)) return `${where}.tokens must be a positive number`;
    if (item.usd === undefined && item.tokens === undefined) return `${where} needs a limit: usd, tokens or both`;
    const warnAt = item.warnAt ?? DEFAULT_WARN_AT;
    if (typeof warnAt !== 'number' || !(warnAt > 0 && warnAt <= 1))
      return `${where}.warnAt must be a fraction in (0, 1]`;
    for (const key of ['match', 'tenant'] as const) {
      const value = item[key];
      if (value !== undefined && (typeof value !== 'string' || value === ''))
        return `${where}.${key} must be a non-empty string`;
    }
    let windowMs: number | null = null;
    let window = 'task';
    if (scope !== 'task') {
      const ms = windowMsOf(item.window);
      if (ms === undefined) return `${where}.window must be a duration from 1m to 90d such as "1h", "24h" or "7d"`;
      windowMs = ms;
      window = item.window as string;
    } else if (item.window !== undefined) {
      return `${where}: a task budget holds for the task's life; it takes no window`;
    }
    const budget: Budget = { id, scope: scope as BudgetScope, warnAt, windowMs, window };
    if (item.usd !== undefined) budget.usd = item.usd;
    if (item.tokens !== undefined) budget.tokens = item.tokens;
    if (typeof item.match === 'string') budget.match = item.match;
    if (typeof item.tenant === 'string') budget.tenant = item.tenant;
    budgets.push(budget);
  }
  return budgets;
}

/** Who a call's spend is counted for. */
export interface SpendIdentity {
  tenant: string;
  agentId: string;
  taskType: string;
}

/** The key a budget counts a call under ('' for task budgets), or undefined when the budget does not apply. */
export function budgetKey(budget: Budget, who: SpendIdentity): string | undefined {
  if (budget.tenant !== undefined && budget.tenant !== who.tenant) return undefined;
  const key =
    budget.scope === 'agent'
      ? who.agentId
      : budget.scope === 'task_type'
        ? who.taskType
        : budget.scope === 'tenant'
          ? who.tenant
          : who.taskType;
  if (budget.match !== undefined && budget.match !== key) return undefined;
  return budget.scope === 'task' ? '' : `${who.tenant}\u0000${key}`;
}

// ---------------------------------------------------------------------------------------------------------
// Reasons

export function fmtUsd(usd: number): string {
  return `$${usd.toFixed(usd >= 0.01 || usd === 0 ? 2 : 4)}`;
}

export function fmtTokens(n: number): string {
  if (n < 1000) return String(Math.round(n));
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(n < 10_000_000 ? 2 : 1)}M`;
}

function limitsText(budget: Budget): string {
  const parts: string[] = [];
  if (budget.usd !== undefined) parts.push(fmtUsd(budget.usd));
  if (budget.tokens !== undefined) parts.push(`${fmtTokens(budget.tokens)} tokens`);
  return parts.join(' and ');
}

/** The models a spend went to, costliest first (at most three named). */
function modelsText(spend: Spend): string {
  const models = Object.entries(spend.models)
    .sort((a, b) => b[1] - a[1])
    .map(([model]) => model);
  const named = models.slice(0, 3).join(', ');
  return models.length > 3 ? `${named} and ${String(models.length - 3)} more` : named;
}

function spendText(spend: Spend): string {
  const unpriced =
    spend.unpriced > 0
      ? `; ${String(spend.unpriced)} call${spend.unpriced === 1 ? '' : 's'} of a model not in the price table, priced at its fallback`
      : '';
  const models = modelsText(spend);
  return `${fmtUsd(spend.usd)} (${fmtTokens(spend.inputTokens)} tokens in, ${fmtTokens(spend.outputTokens)} out${models === '' ? '' : `, ${models}`}${unpriced})`;
}

function fractionOf(budget: Budget, spend: Spend): number {
  const usd = budget.usd === undefined ? 0 : spend.usd / budget.usd;
  const tokens = budget.tokens === undefined ? 0 : (spend.inputTokens + spend.outputTokens) / budget.tokens;
  return Math.max(usd, tokens);
}

function finding(budget: Budget, spend: Spend, who: SpendIdentity): BudgetFinding | undefined {
  const fraction = fractionOf(budget, spend);
  if (fraction < budget.warnAt) return undefined;
  const level = fraction >= 1 ? 'limit' : 'warn';
  const scopeName = budget.scope === 'task_type' ? 'task type' : budget.scope;
  const subject =
    budget.scope === 'task'
      ? `per task${budget.match === undefined ? '' : ` of type ${budget.match}`}`
      : `per ${budget.window} for ${scopeName} ${budget.scope === 'agent' ? who.agentId : budget.scope === 'task_type' ? who.taskType : who.tenant}`;
  const where = budget.scope === 'task' ? 'in this task' : `in the last ${budget.window}`;
  const share = level === 'warn' ? `: ${String(Math.floor(fraction * 100))}% of the limit` : '';
  return {
    budget,
    feature: `budget.${budget.scope}`,
    level,
    fraction,
    reason: `${scopeName} budget "${budget.id}" ${limitsText(budget)} ${subject}: spent ${spendText(spend)} ${where}${share}`,
  };
}

/** The task budgets a task's spend reached (warn or limit). */
export function checkTaskBudgets(budgets: readonly Budget[], who: SpendIdentity, spend: Spend): BudgetFinding[] {
  const findings: BudgetFinding[] = [];
  for (const budget of budgets) {
    if (budget.scope !== 'task' || budgetKey(budget, who) === undefined) continue;
    const found = finding(budget, spend, who);
    if (found !== undefined) findings.push(found);
  }
  return findings;
}

// ---------------------------------------------------------------------------------------------------------
// Windows

interface WindowSpend {
  /** Bucket number of the newest bucket. */
  head: number;
  buckets: Spend[];
}

/**
 * Spend over the sliding windows of agent, task type and tenant budgets, in WINDOW_BUCKETS buckets per window
 * (the window's oldest bucket counts whole until it leaves). Holds at most MAX_WINDOW_KEYS keys per budget.
 */
export class SpendLedger {
  readonly #windows = new Map<string, Map<string, WindowSpend>>();
  readonly #maxKeys: number;

  constructor(maxKeys = MAX_WINDOW_KEYS) {
    this.#maxKeys = maxKeys;
  }

  /** Counts a call at `timeMs` under every windowed budget it falls under; returns the budgets it reached. */
  add(
    budgets: readonly Budget[],
    who: SpendIdentity,
    usage: Pick<ModelUsage, 'model' | 'inputTokens' | 'outputTokens'>,
    cost: Cost,
    timeMs: number,
  ): BudgetFinding[] {
    const findings: BudgetFinding[] = [];
    for (const budget of budgets) {
      if (budget.windowMs === null) continue;
      const key = budgetKey(budget, who);
      if (key === undefined) continue;
      const window = this.#window(budget, key);
      const bucketMs = budget.windowMs / WINDOW_BUCKETS;
      const bucket = Math.floor(timeMs / bucketMs);
      advance(window, bucket);
      // A call older than the window is counted in its oldest bucket (clocks differ; it was spent all the same).
      const slot = Math.max(bucket, window.head - WINDOW_BUCKETS + 1);
      addSpend(window.buckets[slot % WINDOW_BUCKETS] as Spend, usage, cost);
      const found = finding(budget, sumOf(window), who);
      if (found !== undefined) findings.push(found);
    }
    return findings;
  }

  /** The spend in a budget's window for a key (as `budgetKey` makes it), or undefined when none is held. */
  spendOf(budget: Budget, who: SpendIdentity): Spend | undefined {
    const key = budgetKey(budget, who);
    const window = key === undefined ? undefined : this.#windows.get(budget.id)?.get(key);
    return window === undefined ? undefined : sumOf(window);
  }

  /** Keys held over all budgets. */
  get size(): number {
    let size = 0;
    for (const keys of this.#windows.values()) size += keys.size;
    return size;
  }

  #window(budget: Budget, key: string): WindowSpend {
    let keys = this.#windows.get(budget.id);
    if (keys === undefined) {
      keys = new Map();
      this.#windows.set(budget.id, keys);
    }
    let window = keys.get(key);
    if (window === undefined) {
      window = { head: Number.NEGATIVE_INFINITY, buckets: Array.from({ length: WINDOW_BUCKETS }, emptySpend) };
      if (keys.size >= this.#maxKeys) {
        const oldest = keys.keys().next().value;
        if (oldest !== undefined) keys.delete(oldest);
      }
    } else {
      keys.delete(key); // most recently used last
    }
    keys.set(key, window);
    return window;
  }
}

function advance(window: WindowSpend, bucket: number): void {
  if (bucket <= window.head) return;
  const gap = bucket - window.head;
  if (gap >= WINDOW_BUCKETS) for (let i = 0; i < WINDOW_BUCKETS; i++) window.buckets[i] = emptySpend();
  else for (let i = 1; i <= gap; i++) window.buckets[(window.head + i) % WINDOW_BUCKETS] = emptySpend();
  window.head = bucket;
}

function sumOf(window: WindowSpend): Spend {
  const total = emptySpend();
  for (const bucket of window.buckets) {
    total.usd += bucket.usd;
    total.inputTokens += bucket.inputTokens;
    total.outputTokens += bucket.outputTokens;
    total.calls += bucket.calls;
    total.unpriced += bucket.unpriced;
    for (const [model, usd] of Object.entries(bucket.models)) {
      const key =
        Object.hasOwn(total.models, model) || Object.keys(total.models).length < MAX_SPEND_MODELS ? model : 'other';
      total.models[key] = (Object.hasOwn(total.models, key) ? (total.models[key] ?? 0) : 0) + usd;
    }
  }
  return total;
}

// ---------------------------------------------------------------------------------------------------------
// Verdicts

/** Score of a budget warning (an alert at the default thresholds) and of a budget reached (a revocation). */
export const BUDGET_WARN_SCORE = 60;
export const BUDGET_LIMIT_SCORE = 100;

/**
 * The verdict of a call's budget findings: revoke (a hard rule named by the first budget reached) when a limit is
 * reached, else alert; undefined without findings. `shadow`: the task type's shadow mode (recorded, not acted on).
 */
export function budgetVerdict(findings: readonly BudgetFinding[], shadow: boolean): Verdict | undefined {
  if (findings.length === 0) return undefined;
  const ordered = [...findings].sort((a, b) => b.fraction - a.fraction);
  const contributions: Contribution[] = ordered.map((found) => ({
    feature: found.feature,
    score: found.level === 'limit' ? BUDGET_LIMIT_SCORE : BUDGET_WARN_SCORE,
    reason: found.reason,
  }));
  const reached = ordered.find((found) => found.level === 'limit');
  const verdict: Verdict = {
    score: reached === undefined ? BUDGET_WARN_SCORE : BUDGET_LIMIT_SCORE,
    decision: reached === undefined ? 'alert' : 'revoke',
    regime: 'rules',
    contributions,
    shadow,
  };
  if (reached !== undefined) verdict.hardRule = reached.feature;
  return verdict;
}
