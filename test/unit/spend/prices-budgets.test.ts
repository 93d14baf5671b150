/**
 * Costs from the price table (services/core/spend/prices.ts) and budgets (services/core/spend/budgets.ts): the
 * shipped table reads and is dated, models match by name and dated variant, unknown models are priced at the
 * fallback and say so; budgets parse with errors naming the budget, warn at their fraction, revoke at the limit
 * with a reason naming the budget, the spend and the window; windows slide and hold a bounded number of keys.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  SpendLedger,
  addSpend,
  budgetVerdict,
  checkTaskBudgets,
  costOf,
  emptySpend,
  parseBudgets,
  parsePriceTable,
} from '../../../services/core/spend/index.ts';
import type { Budget, PriceTable } from '../../../services/core/spend/index.ts';

const shipped = parsePriceTable(JSON.parse(readFileSync('policies/model-prices.json', 'utf8')) as unknown);
if (typeof shipped === 'string') throw new Error(shipped);
const table: PriceTable = shipped;

function budgets(document: unknown): Budget[] {
  const parsed = parseBudgets(document);
  if (typeof parsed === 'string') throw new Error(parsed);
  return parsed;
}

const who = { tenant: 'acme', agentId: 'refund-agent', taskType: 'refund' };

describe('prices', () => {
  it('ships a dated table and prices known models, dated variants and provider-prefixed names', () => {
    expect(table.date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    // gpt-4o: $2.50 in, $10 out per million tokens.
    expect(costOf(table, 'gpt-4o', 1_000_000, 100_000)).toEqual({ usd: 3.5, priced: true, entry: 'gpt-4o' });
    expect(costOf(table, 'gpt-4o-2024-08-06', 1000, 0).entry).toBe('gpt-4o');
    expect(costOf(table, 'gpt-4o-mini-2024-07-18', 1000, 0).entry).toBe('gpt-4o-mini');
    expect(costOf(table, 'openai/GPT-4o', 1000, 0).entry).toBe('gpt-4o');
    expect(costOf(table, 'claude-3-5-sonnet-20241022', 1000, 0).entry).toBe('claude-3-5-sonnet');
    expect(costOf(table, 'models/gemini-2.5-flash', 1000, 0).entry).toBe('gemini-2.5-flash');
  });

  it('prices a model it does not know at the fallback, and says so', () => {
    const cost = costOf(table, 'function:model:', 100_000, 10_000);
    expect(cost.priced).toBe(false);
    expect(cost.usd).toBeCloseTo((100_000 * table.fallback.input + 10_000 * table.fallback.output) / 1e6, 10);
    // A name that only shares a prefix without a separator is not the same model.
    expect(costOf(table, 'o1x', 1, 1).priced).toBe(false);
  });

  it('lays an operator table over the shipped one and refuses bad prices with a sentence', () => {
    const mine = parsePriceTable(
      { models: { 'gpt-4o': { input: 5, output: 15 }, 'my-model': { input: 1, output: 2 } } },
      table,
    );
    if (typeof mine === 'string') throw new Error(mine);
    expect(mine.date).toBe(table.date);
    expect(costOf(mine, 'gpt-4o', 1_000_000, 0).usd).toBe(5);
    expect(costOf(mine, 'my-model', 0, 1_000_000).usd).toBe(2);
    expect(costOf(mine, 'gpt-4.1', 1_000_000, 0).usd).toBe(2);
    expect(parsePriceTable({ date: '2025-01-01', fallback: { input: 1 } })).toMatch(
      /"fallback"\.output must be a number/,
    );
    expect(parsePriceTable({ models: { x: { input: -1, output: 1 } } }, table)).toMatch(/"models"\."x"\.input/);
    expect(parsePriceTable({ date: 'yesterday', fallback: { input: 1, output: 1 } })).toMatch(/"date"/);
    expect(parsePriceTable({ model: {} }, table)).toMatch(/unknown key "model"/);
  });
});

describe('budgets', () => {
  it('refuses a malformed budgets file with the budget it is about', () => {
    expect(parseBudgets({})).toMatch(/\{"budgets": \[\.\.\.\]\}/);
    expect(parseBudgets({ budgets: [{ scope: 'galaxy', usd: 1 }] })).toMatch(/budgets\[0\]\.scope must be one of/);
    expect(parseBudgets({ budgets: [{ scope: 'task' }] })).toMatch(/budgets\[0\] needs a limit/);
    expect(parseBudgets({ budgets: [{ scope: 'agent', usd: 1 }] })).toMatch(/budgets\[0\]\.window must be a duration/);
    expect(parseBudgets({ budgets: [{ scope: 'task', usd: 1, window: '1h' }] })).toMatch(/takes no window/);
    expect(parseBudgets({ budgets: [{ scope: 'task', usd: 1, warnAt: 2 }] })).toMatch(/warnAt/);
    expect(parseBudgets({ budgets: [{ scope: 'task', limit: 1 }] })).toMatch(/budgets\[0\] has an unknown key "limit"/);
    expect(
      parseBudgets({
        budgets: [
          { id: 'a', scope: 'task', usd: 1 },
          { id: 'a', scope: 'task', usd: 2 },
        ],
      }),
    ).toMatch(/used twice/);
  });

  it('warns at the fraction and revokes at the limit, naming the budget, the spend, the tokens and the models', () => {
    const list = budgets({ budgets: [{ id: 'per-task', scope: 'task', usd: 5 }] });
    const spend = emptySpend();
    // 1.6M tokens in and 0 out of gpt-4o: $4.00, 80% of $5.
    addSpend(
      spend,
      { model: 'gpt-4o', inputTokens: 1_600_000, outputTokens: 0 },
      costOf(table, 'gpt-4o', 1_600_000, 0),
    );
    const warn = checkTaskBudgets(list, who, spend);
    expect(warn).toEqual([expect.objectContaining({ level: 'warn', feature: 'budget.task' })]);
    expect(warn[0]?.reason).toBe(
      'task budget "per-task" $5.00 per task: spent $4.00 (1.60M tokens in, 0 out, gpt-4o) in this task: 80% of the limit',
    );
    expect(budgetVerdict(warn, false)).toMatchObject({ decision: 'alert', score: 60 });
    addSpend(
      spend,
      { model: 'gpt-4o', inputTokens: 12_000, outputTokens: 38_000 },
      costOf(table, 'gpt-4o', 12_000, 38_000),
    );
    const reached = checkTaskBudgets(list, who, spend);
    expect(reached[0]?.reason).toBe(
      'task budget "per-task" $5.00 per task: spent $4.41 (1.61M tokens in, 38k out, gpt-4o) in this task: 88% of the limit',
    );
    addSpend(spend, { model: 'mystery', inputTokens: 0, outputTokens: 30_000 }, costOf(table, 'mystery', 0, 30_000));
    const over = checkTaskBudgets(list, who, spend);
    expect(over).toEqual([expect.objectContaining({ level: 'limit' })]);
    expect(over[0]?.reason).toBe(
      'task budget "per-task" $5.00 per task: spent $5.31 (1.61M tokens in, 68k out, gpt-4o, mystery; 1 call of a model not in the price table, priced at its fallback) in this task',
    );
    expect(budgetVerdict(over, false)).toMatchObject({
      decision: 'revoke',
      score: 100,
      hardRule: 'budget.task',
      shadow: false,
      contributions: [{ feature: 'budget.task', score: 100, reason: over[0]?.reason }],
    });
  });

  it('holds a token budget, and a task budget matched to one task type only', () => {
    const list = budgets({
      budgets: [
        { id: 'tokens', scope: 'task', tokens: 1000, warnAt: 0.5 },
        { id: 'other-type', scope: 'task', usd: 0.000001, match: 'triage' },
      ],
    });
    const spend = addSpend(
      emptySpend(),
      { model: 'gpt-4o', inputTokens: 700, outputTokens: 400 },
      costOf(table, 'gpt-4o', 700, 400),
    );
    expect(checkTaskBudgets(list, who, spend).map((found) => [found.budget.id, found.level])).toEqual([
      ['tokens', 'limit'],
    ]);
    expect(checkTaskBudgets(list, who, spend)[0]?.reason).toMatch(/^task budget "tokens" 1.0k tokens per task: spent/);
  });

  it('counts agent, task type and tenant budgets over a sliding window, per key unless matched', () => {
    const list = budgets({
      budgets: [
        { id: 'agent-hour', scope: 'agent', usd: 1, window: '1h' },
        { id: 'type-day', scope: 'task_type', match: 'refund', tokens: 10_000_000, window: '1d' },
        { id: 'tenant-week', scope: 'tenant', usd: 100, window: '7d', tenant: 'other' },
      ],
    });
    const ledger = new SpendLedger();
    const call = { model: 'gpt-4o', inputTokens: 200_000, outputTokens: 0 }; // $0.50
    const cost = costOf(table, 'gpt-4o', 200_000, 0);
    const t0 = 1_700_000_000_000;
    expect(ledger.add(list, who, call, cost, t0)).toEqual([]);
    const second = ledger.add(list, who, call, cost, t0 + 60_000);
    expect(second.map((found) => [found.budget.id, found.level])).toEqual([['agent-hour', 'limit']]);
    expect(second[0]?.reason).toBe(
      'agent budget "agent-hour" $1.00 per 1h for agent refund-agent: spent $1.00 (400k tokens in, 0 out, gpt-4o) in the last 1h',
    );
    // Another agent has its own window.
    expect(ledger.add(list, { ...who, agentId: 'other-agent' }, call, cost, t0 + 60_000)).toEqual([]);
    // Two hours later the first calls have left the window.
    expect(ledger.add(list, who, call, cost, t0 + 2 * 3_600_000)).toEqual([]);
    expect(ledger.spendOf(list[0] as Budget, who)?.usd).toBeCloseTo(0.5, 10);
    // The type budget counts tokens of every agent of the type.
    expect(ledger.spendOf(list[1] as Budget, who)?.inputTokens).toBe(800_000);
    // The tenant budget is for tenant `other` only.
    expect(ledger.spendOf(list[2] as Budget, who)).toBeUndefined();
  });

  it('holds at most its bound of keys per budget, dropping the least recently used', () => {
    const list = budgets({ budgets: [{ id: 'agent-hour', scope: 'agent', usd: 1, window: '1h' }] });
    const ledger = new SpendLedger(100);
    const cost = costOf(table, 'gpt-4o', 1, 0);
    for (let i = 0; i < 1000; i++)
      ledger.add(
        list,
        { ...who, agentId: `agent-${String(i)}` },
        { model: 'gpt-4o', inputTokens: 1, outputTokens: 0 },
        cost,
        0,
      );
    expect(ledger.size).toBe(100);
    expect(ledger.spendOf(list[0] as Budget, { ...who, agentId: 'agent-999' })?.calls).toBe(1);
    expect(ledger.spendOf(list[0] as Budget, { ...who, agentId: 'agent-0' })).toBeUndefined();
  });
});
