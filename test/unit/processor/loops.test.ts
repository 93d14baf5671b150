/**
 * Loops and rate limits in the processor: a task repeating one call is alerted, then refused (its snapshot says
 * why and until when, it stays active), then revoked with the loop's typed reason through the kill switch; a task
 * calling the same tool with different arguments is none of these.
 */
import { describe, expect, it } from 'vitest';
import type { Alert } from '../../../schemas/events.ts';
import { DEFAULT_LOOP_LIMITS, parseLoopPolicy } from '../../../services/core/loop-policy.ts';
import { taskCtx, toolCall } from '../detect/fixtures.ts';
import { TENANT, revocationsOf, startProcessor } from './harness.ts';

const NOW = 1_750_000_100_000;
const policy = parseLoopPolicy({ defaults: { repeat: { alert: 3, refuse: 5, revoke: 8 }, refuseForMs: 30_000 } });

describe('processor: loops and rate limits', () => {
  it('alerts, refuses, then revokes a task that repeats one call, with typed reasons', async () => {
    const h = await startProcessor({ loops: policy, now: () => NOW });
    const ctx = taskCtx('refund', 'loop-1');
    const calls = () => Array.from({ length: 1 }, () => toolCall(ctx, 'get_order', { argumentsHash: 'aa11' }));
    for (let i = 0; i < 4; i += 1) await h.processor.handle({ events: calls(), boundaries: [] });
    const alerts = h.messages.flatMap((m) => (m.type === 'alert' ? [m.alert] : []));
    expect(alerts.map((a: Alert) => a.reasons[0])).toEqual([
      'loop.repeat: tool get_order was called 3 times with the same arguments in this task (alert)',
    ]);
    expect(h.processor.taskSnapshot(TENANT, 'loop-1')?.refusing).toBeUndefined();

    await h.processor.handle({ events: calls(), boundaries: [] });
    const snapshot = h.processor.taskSnapshot(TENANT, 'loop-1');
    expect(snapshot?.status).toBe('active');
    expect(snapshot?.refusing).toEqual({
      reason:
        'loop.repeat: tool get_order was called 5 times with the same arguments in this task (its next calls are refused)',
      untilMs: NOW + 30_000,
    });
    const refusal = h.messages.flatMap((m) => (m.type === 'alert' ? [m.alert] : [])).at(-1);
    expect(refusal?.reasons[0]).toBe(`${snapshot?.refusing?.reason} until ${new Date(NOW + 30_000).toISOString()}`);
    expect(revocationsOf(h.messages)).toEqual([]);

    for (let i = 0; i < 3; i += 1) await h.processor.handle({ events: calls(), boundaries: [] });
    const [revocation, ...more] = revocationsOf(h.messages);
    expect(more).toEqual([]);
    expect(revocation).toMatchObject({
      taskId: 'loop-1',
      action: 'revoke',
      source: 'detector',
      reason:
        'loop.repeat: tool get_order was called 8 times with the same arguments in this task (the task is revoked)',
      score: 100,
      escalation: { counts: true, basis: 'hard_rule' },
    });
    expect(revocation?.reasons[0]).toBe(revocation?.reason);
    expect(h.processor.taskSnapshot(TENANT, 'loop-1')?.status).toBe('revoked');
    await h.processor.stop();
  });

  it('leaves a task alone that calls one tool with different arguments', async () => {
    const h = await startProcessor({ loops: policy, now: () => NOW });
    const ctx = taskCtx('refund', 'varied-1');
    const events = Array.from({ length: 30 }, (_, i) => toolCall(ctx, 'get_order', { argumentsHash: `h${i}` }));
    await h.processor.handle({ events, boundaries: [] });
    expect(h.messages.filter((m) => m.type === 'alert')).toEqual([]);
    expect(revocationsOf(h.messages)).toEqual([]);
    expect(h.processor.taskSnapshot(TENANT, 'varied-1')).toMatchObject({ status: 'active' });
    expect(h.processor.taskSnapshot(TENANT, 'varied-1')?.refusing).toBeUndefined();
    await h.processor.stop();
  });

  it('counts nothing without a policy (a processor built directly)', async () => {
    const h = await startProcessor({ now: () => NOW });
    const ctx = taskCtx('refund', 'nopolicy-1');
    const events = Array.from({ length: (DEFAULT_LOOP_LIMITS.repeat.revoke ?? 0) + 5 }, () =>
      toolCall(ctx, 'get_order', { argumentsHash: 'same' }),
    );
    await h.processor.handle({ events, boundaries: [] });
    expect(revocationsOf(h.messages)).toEqual([]);
    await h.processor.stop();
  });
});
