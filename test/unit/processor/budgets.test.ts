/**
 * Spend budgets in the processor (services/processor/spend-scoring.ts), on the in-memory store: model calls are
 * folded into their task's spend (priced by the shipped table) and stored; a task's calls that reach its budget's
 * warning alert, those that reach its limit revoke it once, through the kill switch and the store, with the
 * budget's reason; tasks under budget are left alone; an agent budget over a window revokes the agent's task that
 * crosses it; a call delivered twice counts once; shadow mode records without revoking.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ModelUsage } from '../../../schemas/events.ts';
import { DEFAULT_DETECTOR_CONFIG } from '../../../services/core/detect/index.ts';
import { parseBudgets, parsePriceTable } from '../../../services/core/spend/index.ts';
import type { SpendSettings } from '../../../services/core/spend/index.ts';
import { taskCtx, toolCall } from '../detect/fixtures.ts';
import { TENANT, WARMUP, revocationsOf, rootOf, startProcessor } from './harness.ts';

const NOW = Date.now() - 3_600_000;

function settings(budgets: unknown): SpendSettings {
  const prices = parsePriceTable(JSON.parse(readFileSync('policies/model-prices.json', 'utf8')) as unknown);
  const parsed = parseBudgets(budgets);
  if (typeof prices === 'string' || typeof parsed === 'string') throw new Error('bad test settings');
  return { prices, budgets: parsed };
}

let seq = 0;
function chat(
  taskId: string,
  atMs: number,
  inputTokens: number,
  outputTokens: number,
  model = 'gpt-4o',
  agentId = 'agent-1',
): ModelUsage {
  seq += 1;
  return {
    id: `trace-${taskId}:chat-${String(seq)}`,
    tenant: TENANT,
    taskId,
    taskType: 'summarize_ticket',
    agentId,
    claims: { taskId, taskType: 'summarize_ticket', agentId },
    traceId: `trace-${taskId}`,
    spanId: `chat-${String(seq)}`,
    startMs: atMs,
    endMs: atMs + 800,
    operation: 'chat',
    model,
    inputTokens,
    outputTokens,
  };
}

describe('spend budgets in the processor (memory store)', () => {
  it('revokes the task whose model calls reach its budget, alerts at the warning, and leaves the others', async () => {
    const h = await startProcessor({
      spend: settings({ budgets: [{ id: 'per-task', scope: 'task', usd: 5, warnAt: 0.8 }] }),
      detector: { ...DEFAULT_DETECTOR_CONFIG, warmupTasks: WARMUP },
    });
    const ctx = taskCtx('summarize_ticket', 'looping', 'agent-1', NOW);
    const events = [toolCall(ctx, 'search_kb'), toolCall(ctx, 'search_kb')];
    // 1.7M tokens in of gpt-4o ($4.25, 85%): a warning.
    await h.processor.handle({ events, boundaries: [], usages: [chat('looping', NOW + 10, 1_700_000, 0)] });
    expect(h.processor.taskSnapshot(TENANT, 'looping')).toMatchObject({ status: 'active', score: 60 });
    const warned = await h.store.listAlerts({ tenant: TENANT, taskId: 'looping', limit: 10 });
    expect(warned.items).toEqual([expect.objectContaining({ decision: 'alert' })]);
    expect(warned.items[0]?.reasons[0]).toMatch(
      /^task budget "per-task" \$5\.00 per task: spent \$4\.25 .* 85% of the limit$/,
    );

    // Another call, delivered twice, takes it over: $4.25 + $0.75 + 38k out ($0.38) = $5.38.
    const over = chat('looping', NOW + 20, 300_000, 38_000);
    await h.processor.handle({ events: [], boundaries: [], usages: [over, over] });
    const [revocation] = revocationsOf(h.messages);
    expect(revocationsOf(h.messages)).toHaveLength(1);
    expect(revocation).toMatchObject({ taskId: 'looping', action: 'revoke', source: 'detector', eventId: over.id });
    expect(revocation?.reason).toMatch(/^spend budget reached: task budget "per-task"/);
    expect(revocation?.reasons).toEqual([
      'task budget "per-task" $5.00 per task: spent $5.38 (2.00M tokens in, 38k out, gpt-4o) in this task',
    ]);
    expect(await h.store.getTask(TENANT, 'looping')).toMatchObject({ status: 'revoked', score: 100 });
    expect((await h.store.listRevocations({ tenant: TENANT, taskId: 'looping', limit: 10 })).items).toHaveLength(1);

    // A frugal task next to it is not touched.
    await h.processor.handle({
      events: [],
      boundaries: [],
      usages: [chat('frugal', NOW + 30, 20_000, 2000, 'gpt-4o-mini')],
    });
    expect(h.processor.taskSnapshot(TENANT, 'frugal')).toMatchObject({ status: 'active', score: 0 });

    // The calls are stored with their cost, once each.
    const spend = await h.store.spend({ tenant: TENANT, by: 'task', fromMs: 0, toMs: Date.now(), limit: 10 });
    expect(spend.map((row) => [row.key, row.calls, Math.round(row.costUsd * 100) / 100])).toEqual([
      ['looping', 2, 5.38],
      ['frugal', 1, 0],
    ]);
    expect(h.errors).toEqual([]);
    await h.processor.stop();
  });

  it('revokes the task that takes its agent over a windowed agent budget', async () => {
    const h = await startProcessor({
      spend: settings({ budgets: [{ id: 'agent-hour', scope: 'agent', usd: 2, window: '1h' }] }),
    });
    // Three tasks of one agent, $0.75 each: the third crosses $2 within the hour.
    for (const [index, taskId] of ['a', 'b', 'c'].entries())
      await h.processor.handle({
        events: [],
        boundaries: [],
        usages: [chat(taskId, NOW + index * 60_000, 300_000, 0)],
      });
    expect(revocationsOf(h.messages).map((revocation) => revocation.taskId)).toEqual(['c']);
    expect(revocationsOf(h.messages)[0]?.reasons[0]).toBe(
      'agent budget "agent-hour" $2.00 per 1h for agent agent-1: spent $2.25 (900k tokens in, 0 out, gpt-4o) in the last 1h',
    );
    // Another agent's task is under its own window.
    await h.processor.handle({ events: [], boundaries: [], usages: [chat('d', NOW, 300_000, 0, 'gpt-4o', 'agent-2')] });
    expect(revocationsOf(h.messages)).toHaveLength(1);
    await h.processor.stop();
  });

  it("without a budget, revokes a task that spends ten times its type's p99 (spend.per_task)", async () => {
    const h = await startProcessor({ spend: settings({ budgets: [] }) });
    // Warm-up: tasks of the type that spend a few cents each (20k tokens in of gpt-4o-mini and a bit more).
    for (let i = 0; i < WARMUP; i += 1) {
      const ctx = taskCtx('summarize_ticket', `cheap-${String(i)}`, 'agent-1', NOW + i * 10_000);
      const events = [toolCall(ctx, 'search_kb')];
      await h.processor.handle({
        events,
        boundaries: [rootOf(events)],
        usages: [chat(`cheap-${String(i)}`, NOW + i * 10_000 + 5, 20_000 + i * 1000, 2000, 'gpt-4o-mini')],
      });
    }
    expect(revocationsOf(h.messages)).toEqual([]);
    // $3.20 in one task: more than ten times the floor of the reference ($0.25).
    const ctx = taskCtx('summarize_ticket', 'spender', 'agent-1', NOW + 500_000);
    await h.processor.handle({
      events: [toolCall(ctx, 'search_kb')],
      boundaries: [],
      usages: [chat('spender', NOW + 500_010, 1_000_000, 70_000)],
    });
    const [revocation] = revocationsOf(h.messages);
    expect(revocation?.taskId).toBe('spender');
    expect(revocation?.reason).toMatch(/^spend far above its task type: spent \$3\.20 on model calls in this task/);
    expect(revocation?.reasons[0]).toBe(
      'spent $3.20 on model calls in this task (1.00M tokens in, 70k out); p99 for tasks of type summarize_ticket is $0.0056 (taken as $0.25): 12.8× it',
    );
    await h.processor.stop();
  });

  it('in shadow mode records the decision and revokes nothing', async () => {
    const h = await startProcessor({
      spend: settings({ budgets: [{ scope: 'task', tokens: 1000 }] }),
      detector: { ...DEFAULT_DETECTOR_CONFIG, shadow: true },
    });
    await h.processor.handle({ events: [], boundaries: [], usages: [chat('quiet', NOW, 5000, 0)] });
    expect(revocationsOf(h.messages)).toEqual([]);
    const alerts = await h.store.listAlerts({ tenant: TENANT, taskId: 'quiet', limit: 10 });
    expect(alerts.items).toEqual([expect.objectContaining({ decision: 'revoke', shadow: true })]);
    await h.processor.stop();
  });
});
