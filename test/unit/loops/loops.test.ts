/**
 * The loop and rate-limit detector (services/core/loops.ts): each kind of finding at each step of its ladder,
 * once per task and feature, with a sentence naming the tool, the count and the window; benign variety finds
 * nothing; the state stays bounded.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_LOOP_LIMITS } from '../../../services/core/loop-policy.ts';
import { MAX_LOOP_KEYS, newLoopState, observeLoops, stepOf, withLoopFindings } from '../../../services/core/loops.ts';
import type { LoopFinding, LoopLimits, LoopState } from '../../../services/core/loops.ts';
import type { Verdict } from '../../../schemas/events.ts';
import { contentHash, toolDetail } from '../../../services/core/tool-detail.ts';
import { taskCtx, toolCall } from '../detect/fixtures.ts';
import type { TaskCtx } from '../detect/fixtures.ts';

const LIMITS: LoopLimits = {
  repeat: { alert: 3, refuse: 5, revoke: 8 },
  cycle: { minLength: 2, maxLength: 4, alert: 3, refuse: 4, revoke: 6 },
  noProgress: { alert: 4, refuse: 6, revoke: 9 },
  toolRate: { windowMs: 10_000, alert: 50, refuse: 80, revoke: 100 },
  taskRate: { windowMs: 10_000, alert: 60, refuse: 90, revoke: 120 },
  refuseForMs: 5_000,
};

/** Feeds calls and returns the findings, flattened, with the call index each came at (1-based). */
function feed(
  state: LoopState,
  ctx: TaskCtx,
  calls: readonly { tool: string; args?: string; result?: string; gapMs?: number }[],
  limits: LoopLimits = LIMITS,
): (LoopFinding & { at: number })[] {
  const out: (LoopFinding & { at: number })[] = [];
  calls.forEach((call, index) => {
    ctx.t += call.gapMs ?? 500;
    const event = toolCall(ctx, call.tool, {
      durMs: 1,
      ...(call.args === undefined ? {} : { argumentsHash: call.args }),
      ...(call.result === undefined ? {} : { resultHash: call.result }),
    });
    for (const finding of observeLoops(state, event, limits)) out.push({ ...finding, at: index + 1 });
  });
  return out;
}

describe('loop detector', () => {
  it('finds exact repeats (same tool and arguments hash) at each step of the ladder, once each', () => {
    const state = newLoopState();
    const calls = Array.from({ length: 12 }, () => ({ tool: 'get_order', args: 'h-ord-7' }));
    const found = feed(state, taskCtx('refund', 't-repeat'), calls).filter((f) => f.feature === 'loop.repeat');
    expect(found.map((f) => [f.action, f.at, f.count])).toEqual([
      ['alert', 3, 3],
      ['refuse', 5, 5],
      ['revoke', 8, 8],
    ]);
    expect(found[2]?.reason).toBe(
      'loop.repeat: tool get_order was called 8 times with the same arguments in this task (the task is revoked)',
    );
  });

  it('does not count calls of one tool with different arguments, or without recorded arguments, as repeats', () => {
    const state = newLoopState();
    const calls = [
      ...Array.from({ length: 12 }, (_, i) => ({ tool: 'get_order', args: `h-ord-${i}` })),
      ...Array.from({ length: 12 }, () => ({ tool: 'get_order' })),
    ];
    const found = feed(state, taskCtx('refund', 't-varied'), calls);
    expect(found.filter((f) => f.feature === 'loop.repeat')).toEqual([]);
    expect(found.filter((f) => f.feature === 'loop.cycle')).toEqual([]);
  });

  it('finds a three-tool cycle and names its tools', () => {
    const state = newLoopState();
    const cycle = ['search', 'open_page', 'summarize'];
    const calls = Array.from({ length: 21 }, (_, i) => ({ tool: cycle[i % 3] as string }));
    const found = feed(state, taskCtx('research', 't-cycle'), calls).filter((f) => f.feature === 'loop.cycle');
    expect(found.map((f) => [f.action, f.count])).toEqual([
      ['alert', 3],
      ['refuse', 4],
      ['revoke', 6],
    ]);
    // The third full repetition ends at call 9, the sixth at call 18.
    expect(found.map((f) => f.at)).toEqual([9, 12, 18]);
    expect(found[0]?.reason).toContain('search → open_page → summarize');
    expect(found[0]?.reason).toContain('repeated 3 times in a row');
  });

  it('finds a two-tool cycle, and a broken cycle starts counting again', () => {
    const state = newLoopState();
    const ctx = taskCtx('triage', 't-cycle2');
    const ab = (n: number) => Array.from({ length: n }, (_, i) => ({ tool: i % 2 === 0 ? 'query_logs' : 'lookup_ip' }));
    // Two repetitions, a different call, two repetitions: never three in a row.
    expect(feed(state, ctx, [...ab(4), { tool: 'create_incident' }, ...ab(4)])).toEqual([]);
    const found = feed(state, ctx, ab(2)).filter((f) => f.feature === 'loop.cycle');
    expect(found.map((f) => [f.action, f.count])).toEqual([['alert', 3]]);
    expect(found[0]?.reason).toContain('query_logs → lookup_ip');
  });

  it('does not call one tool repeated a cycle', () => {
    const state = newLoopState();
    const found = feed(
      state,
      taskCtx('summarize', 't-same'),
      Array.from({ length: 30 }, () => ({ tool: 'get_ticket' })),
    );
    expect(found.filter((f) => f.feature === 'loop.cycle')).toEqual([]);
  });

  it('finds no progress: the same tool returning the same result', () => {
    const state = newLoopState();
    const calls = Array.from({ length: 10 }, (_, i) => ({ tool: 'poll_job', args: `h-${i}`, result: 'h-pending' }));
    const found = feed(state, taskCtx('batch', 't-poll'), calls).filter((f) => f.feature === 'loop.no_progress');
    expect(found.map((f) => [f.action, f.at])).toEqual([
      ['alert', 4],
      ['refuse', 6],
      ['revoke', 9],
    ]);
    expect(found[0]?.reason).toBe(
      'loop.no_progress: tool poll_job returned the same result 4 times in this task (alert)',
    );
  });

  it('limits the calls of one tool and of the task within the window, and forgets calls outside it', () => {
    const limits: LoopLimits = {
      ...LIMITS,
      toolRate: { windowMs: 1_000, alert: 5, refuse: 8 },
      taskRate: { windowMs: 1_000, alert: 9 },
    };
    const slow = newLoopState();
    // One call every 300 ms: at most four within a second.
    const spaced = Array.from({ length: 40 }, (_, i) => ({ tool: 'fetch', args: `h-${i}`, gapMs: 300 }));
    expect(feed(slow, taskCtx('crawl', 't-slow'), spaced, limits)).toEqual([]);
    const fast = newLoopState();
    const burst = Array.from({ length: 10 }, (_, i) => ({
      tool: i % 2 === 0 ? 'fetch' : 'parse',
      args: `h-${i}`,
      gapMs: 10,
    }));
    const flood = [...burst, ...Array.from({ length: 10 }, (_, i) => ({ tool: 'fetch', args: `h-x${i}`, gapMs: 10 }))];
    const found = feed(fast, taskCtx('crawl', 't-fast'), flood, limits).filter((f) => f.feature.startsWith('rate.'));
    expect(found.map((f) => [f.feature, f.action, f.at])).toEqual([
      ['rate.tool', 'alert', 9],
      ['rate.task', 'alert', 9],
      ['rate.tool', 'refuse', 13],
    ]);
    expect(found[0]?.reason).toBe('rate.tool: tool fetch was called 5 times within 1 s (alert)');
    expect(found[1]?.reason).toBe('rate.task: the task made 9 tool calls within 1 s, the last to fetch (alert)');
  });

  it('skips a step left out of the ladder', () => {
    expect(stepOf({ alert: 3, revoke: 6 }, 4)).toBe('alert');
    expect(stepOf({ alert: 3, revoke: 6 }, 7)).toBe('revoke');
    expect(stepOf({ refuse: 2 }, 1)).toBeUndefined();
    const state = newLoopState();
    const limits = { ...LIMITS, repeat: { revoke: 4 } };
    const found = feed(
      state,
      taskCtx('x', 't-skip'),
      Array.from({ length: 5 }, () => ({ tool: 'a', args: 'h' })),
      limits,
    );
    expect(found.filter((f) => f.feature === 'loop.repeat').map((f) => [f.action, f.at])).toEqual([['revoke', 4]]);
  });

  it('stays bounded whatever a task sends', () => {
    const state = newLoopState();
    const ctx = taskCtx('x', 't-many');
    const calls = Array.from({ length: MAX_LOOP_KEYS + 500 }, (_, i) => ({
      tool: `tool_${i}`,
      args: `h-${i}`,
      result: `r-${i}`,
      gapMs: 1,
    }));
    feed(state, ctx, calls, DEFAULT_LOOP_LIMITS);
    expect(state.repeats.size).toBe(MAX_LOOP_KEYS);
    expect(state.results.size).toBe(MAX_LOOP_KEYS);
    expect(state.toolTimes.size).toBe(MAX_LOOP_KEYS);
    expect(state.recent.length).toBeLessThanOrEqual(16);
    expect(state.taskTimes.length).toBeLessThanOrEqual(DEFAULT_LOOP_LIMITS.taskRate.revoke ?? 0);
  });

  it('ignores events that are not tool calls', () => {
    const state = newLoopState();
    const ctx = taskCtx('x', 't-data');
    const event = { ...toolCall(ctx, 'a', { argumentsHash: 'h' }), kind: 'data_access' as const };
    for (let i = 0; i < 20; i += 1) expect(observeLoops(state, event, LIMITS)).toEqual([]);
  });
});

describe('loop findings in a verdict', () => {
  const allow: Verdict = { score: 12, decision: 'allow', regime: 'type_baseline', contributions: [], shadow: false };
  const finding = (action: LoopFinding['action']): LoopFinding => ({
    feature: 'loop.repeat',
    action,
    tool: 'get_order',
    count: 5,
    reason: 'loop.repeat: …',
  });

  it('raises the decision to alert for an alert or refuse step, and to a revoke hard rule for a revoke step', () => {
    const alerted = withLoopFindings(allow, [finding('refuse')], { alert: 50, revoke: 80 });
    expect(alerted).toMatchObject({ decision: 'alert', score: 50 });
    expect(alerted.hardRule).toBeUndefined();
    expect(alerted.contributions[0]).toEqual({ feature: 'loop.repeat', score: 50, reason: 'loop.repeat: …' });
    const revoked = withLoopFindings(allow, [finding('revoke')], { alert: 50, revoke: 80 });
    expect(revoked).toMatchObject({ decision: 'revoke', score: 100, hardRule: 'loop.repeat' });
    expect(withLoopFindings(allow, [], { alert: 50, revoke: 80 })).toBe(allow);
  });
});

describe('arguments and result hashes', () => {
  const hashing = { secret: 'a-secret-of-sixteen-chars', tenant: 'acme' };

  it('are keyed: equal content of one tenant hashes equal, another tenant or secret differently', () => {
    const a = contentHash(hashing, 'arguments', '{"order_id":"ord-7"}');
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(contentHash(hashing, 'arguments', '  {"order_id":"ord-7"}\n')).toBe(a);
    expect(contentHash(hashing, 'arguments', '{"order_id":"ord-8"}')).not.toBe(a);
    expect(contentHash(hashing, 'result', '{"order_id":"ord-7"}')).not.toBe(a);
    expect(contentHash({ ...hashing, tenant: 'other' }, 'arguments', '{"order_id":"ord-7"}')).not.toBe(a);
    expect(contentHash({ ...hashing, secret: 'another-secret-16+' }, 'arguments', '{"order_id":"ord-7"}')).not.toBe(a);
  });

  it('are set on a classified tool call, never the content itself', () => {
    const detail = toolDetail(
      'execute_tool get_order',
      new Map<string, unknown>([
        ['gen_ai.tool.name', 'get_order'],
        ['gen_ai.tool.call.arguments', '{"order_id":"ord-7"}'],
        ['gen_ai.tool.call.result', '{"status":"pending"}'],
      ]) as Parameters<typeof toolDetail>[1],
      hashing,
    );
    expect(detail.argumentsHash).toBe(contentHash(hashing, 'arguments', '{"order_id":"ord-7"}'));
    expect(detail.resultHash).toBe(contentHash(hashing, 'result', '{"status":"pending"}'));
    expect(JSON.stringify(detail)).not.toContain('ord-7');
  });
});
