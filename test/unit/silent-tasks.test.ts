/**
 * The silent-task watch (services/killswitch/silent-tasks.ts) on a clock of its own: a credentialed task that checks
 * or leases before its grace period ends is not alerted on; the first use after it is, once; a task with telemetry
 * never is; a check by task id (no token at hand) counts the grace from its first use.
 */
import { describe, expect, it } from 'vitest';
import type { Alert } from '../../schemas/events.ts';
import { createSilentTaskWatch } from '../../services/killswitch/silent-tasks.ts';

const task = { tenant: 't1', taskId: 'task-1', taskType: 'summarize_ticket', agentId: 'agent-1' };

function watch(graceMs: number): {
  clock: { now: number };
  raised: Alert[];
  observe: ReturnType<typeof createSilentTaskWatch>['observe'];
} {
  const clock = { now: 1_000_000 };
  const raised: Alert[] = [];
  const silent = createSilentTaskWatch({ graceMs, now: () => clock.now, raise: (alert) => raised.push(alert) });
  return { clock, raised, observe: (use, snapshot, how) => silent.observe(use, snapshot, how) };
}

describe('silent credentialed tasks', () => {
  it('alert once on the first check or lease past the grace period after the token was issued', () => {
    const { clock, raised, observe } = watch(30_000);
    const use = { ...task, issuedAtMs: clock.now };
    clock.now += 29_999;
    observe(use, undefined, 'check');
    expect(raised).toEqual([]);
    clock.now += 1;
    observe(use, { status: 'active', score: 12, taskType: task.taskType, agentId: task.agentId, events: 0 }, 'lease');
    observe(use, undefined, 'check');
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({
      tenant: 't1',
      taskId: 'task-1',
      agentId: 'agent-1',
      decision: 'alert',
      score: 12,
      reasons: [
        'identity.no_telemetry: task task-1 asked for a lease 30 s after it got credentials and has sent no telemetry under its task id',
      ],
    });
  });

  it('never alert on a task with telemetry, and count a check by task id from its first use', () => {
    const { clock, raised, observe } = watch(1000);
    const loud = { ...task, taskId: 'loud', issuedAtMs: clock.now - 60_000 };
    observe(loud, { status: 'active', score: 0, taskType: task.taskType, agentId: task.agentId, events: 3 }, 'check');
    expect(raised).toEqual([]);
    const byId = { ...task, taskId: 'by-id' };
    observe(byId, undefined, 'check');
    expect(raised).toEqual([]);
    clock.now += 1000;
    observe(byId, undefined, 'check');
    expect(raised.map((alert) => alert.taskId)).toEqual(['by-id']);
  });
});
