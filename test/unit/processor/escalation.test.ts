/**
 * Escalation through the processor on the memory store: the third counted revocation of one agent's tasks within
 * the window revokes that agent's other active tasks in the scope the revocations share (the whole agent when
 * they share none), and its new tasks there while the block lasts; another agent's tasks, and the same agent's
 * tasks for other end users, are untouched. Unconfident kills and escalation kills never escalate. Without a
 * policy, nothing escalates.
 */
import { describe, expect, it } from 'vitest';
import type { AttributeValue, Revocation } from '../../../schemas/events.ts';
import { ESCALATION_ACTOR } from '../../../services/core/decide.ts';
import { createLocalKillSwitch } from '../../../services/killswitch/kill-switch.ts';
import { privilegeChange, taskCtx, toolCall } from '../detect/fixtures.ts';
import { TENANT, revocationsOf, startProcessor } from './harness.ts';

const NOW = Date.now() - 3_600_000;
const DAY = 86_400_000;
const POLICY = { revocations: 3, windowMs: 3_600_000, blockMs: 3_600_000 };

async function startTask(
  processor: Awaited<ReturnType<typeof startProcessor>>['processor'],
  taskId: string,
  agentId: string,
  startMs: number,
  attributes: Record<string, AttributeValue> = {},
  eventIndex = 0,
): Promise<void> {
  const ctx = taskCtx('summarize_ticket', taskId, agentId, startMs);
  ctx.seq = eventIndex;
  toolCall(ctx, 'get_ticket', { type: 'function', sideEffect: 'read' }).attributes = attributes;
  await processor.handle({ events: ctx.events, boundaries: [] });
}

const user = (id: string): Record<string, AttributeValue> => ({ 'enduser.id': id, 'service.name': 'mail-assistant' });

describe('escalation to the agent (memory store)', () => {
  it("revokes the agent's other tasks and its new ones after repeated revocations, and no other agent's", async () => {
    const { processor, store, messages } = await startProcessor({ escalation: POLICY, taskIdleTimeoutMs: DAY });
    for (let i = 0; i < 4; i += 1) await startTask(processor, `bad-${String(i)}`, 'agent-bad', NOW + i * 1000);
    await startTask(processor, 'good-1', 'agent-good', NOW);
    for (let i = 0; i < 3; i += 1)
      await processor.revoke({ tenant: TENANT, taskId: `bad-${String(i)}`, actor: 'alice', reason: 'misbehaving' });
    // Work is serialized: the sweep (no task is idle for a day) runs after the escalation's own step.
    await processor.sweep();

    const escalated = revocationsOf(messages).filter((revocation) => revocation.actor === ESCALATION_ACTOR);
    expect(escalated.map((revocation) => revocation.taskId)).toEqual(['bad-3']);
    expect(escalated[0]?.reason).toMatch(/escalated to agent agent-bad: 3 of its tasks were revoked within 60 min/);
    expect(escalated[0]?.reasons).toEqual([
      'task bad-0 was revoked',
      'task bad-1 was revoked',
      'task bad-2 was revoked',
    ]);
    expect((await store.getTask(TENANT, 'bad-3'))?.status).toBe('revoked');
    expect((await store.listRevocations({ tenant: TENANT, taskId: 'bad-3', limit: 10 })).items).toHaveLength(1);
    expect((await store.getTask(TENANT, 'good-1'))?.status).toBe('active');

    // While the block lasts, a new task of the agent is revoked as it appears; another agent's is not.
    await startTask(processor, 'bad-new', 'agent-bad', NOW + 10_000);
    await startTask(processor, 'good-new', 'agent-good', NOW + 10_000);
    expect(processor.taskSnapshot(TENANT, 'bad-new')?.status).toBe('revoked');
    expect(processor.taskSnapshot(TENANT, 'good-new')?.status).toBe('active');
    const onNew = revocationsOf(messages).find((revocation) => revocation.taskId === 'bad-new');
    expect(onNew).toMatchObject({ actor: ESCALATION_ACTOR, source: 'detector' });
    expect(onNew?.eventId).not.toBe('');
    await processor.stop();
  });

  it("blocks the end user the repeated kills share: that person's tasks of the agent, no one else's", async () => {
    const { processor, messages } = await startProcessor({ escalation: POLICY, taskIdleTimeoutMs: DAY });
    for (let i = 0; i < 4; i += 1) await startTask(processor, `u1-${String(i)}`, 'shared', NOW + i, user('u1'));
    await startTask(processor, 'u2-0', 'shared', NOW, user('u2'));
    await startTask(processor, 'nobody-0', 'shared', NOW);
    for (let i = 0; i < 3; i += 1)
      await processor.revoke({ tenant: TENANT, taskId: `u1-${String(i)}`, actor: 'alice', reason: 'poisoned inbox' });
    await processor.sweep();

    const escalated = revocationsOf(messages).filter((revocation) => revocation.actor === ESCALATION_ACTOR);
    expect(escalated.map((revocation) => revocation.taskId)).toEqual(['u1-3']);
    expect(escalated[0]?.reason).toMatch(/escalated to agent shared for end user u1: 3 of its tasks were revoked/);
    expect(escalated[0]?.escalation).toEqual({ counts: false, basis: 'escalation', endUser: 'u1' });
    expect(processor.taskSnapshot(TENANT, 'u2-0')?.status).toBe('active');
    expect(processor.taskSnapshot(TENANT, 'nobody-0')?.status).toBe('active');

    // New work: u1's is revoked as it appears; u2's and unnamed work go on; a task that named u2 first stays u2's.
    await startTask(processor, 'u1-new', 'shared', NOW + 10_000, user('u1'));
    await startTask(processor, 'u2-new', 'shared', NOW + 10_000, user('u2'));
    await startTask(processor, 'u2-new', 'shared', NOW + 10_100, user('u1'), 1);
    await startTask(processor, 'later-u1', 'shared', NOW + 10_000);
    expect(processor.taskSnapshot(TENANT, 'u1-new')?.status).toBe('revoked');
    expect(processor.taskSnapshot(TENANT, 'u2-new')?.status).toBe('active');
    expect(processor.taskSnapshot(TENANT, 'later-u1')?.status).toBe('active');
    // A task whose spans name u1 only later is revoked once they do.
    await startTask(processor, 'later-u1', 'shared', NOW + 10_200, user('u1'), 1);
    expect(processor.taskSnapshot(TENANT, 'later-u1')?.status).toBe('revoked');
    await processor.stop();
  });

  it('never escalates on unconfident or escalation kills, and does on hard rules', async () => {
    const killSwitch = createLocalKillSwitch();
    const { processor, messages } = await startProcessor({ escalation: POLICY, taskIdleTimeoutMs: DAY, killSwitch });
    await startTask(processor, 'bystander', 'agent-x', NOW);
    const kill = (taskId: string, extra: Partial<Revocation>): void =>
      killSwitch.apply({
        id: `kill-${taskId}`,
        tenant: TENANT,
        taskId,
        taskType: 'summarize_ticket',
        agentId: 'agent-x',
        action: 'revoke',
        source: 'detector',
        actor: 'tripline',
        reason: 'score reached the revoke threshold',
        reasons: [],
        score: 90,
        eventId: '',
        timeMs: NOW + 1000,
        ...extra,
      });
    for (let i = 0; i < 10; i += 1) {
      kill(`fp-${String(i)}`, { escalation: { counts: false, basis: 'below_confidence' } });
      kill(`warm-${String(i)}`, { escalation: { counts: false, basis: 'warmup' } });
      kill(`old-${String(i)}`, {});
      kill(`esc-${String(i)}`, { actor: ESCALATION_ACTOR, escalation: { counts: true, basis: 'manual' } });
    }
    await processor.sweep();
    expect(processor.taskSnapshot(TENANT, 'bystander')?.status).toBe('active');

    // The detector's own hard-rule kills (an unapproved admin scope) for one end user do escalate, at that user.
    for (let i = 0; i < 3; i += 1) {
      const ctx = taskCtx('summarize_ticket', `rogue-${String(i)}`, 'agent-x', NOW + 2000 + i);
      privilegeChange(ctx, 'elevate', ['tickets:read'], ['tickets:read', 'admin'], { approved: false }).attributes =
        user('u9');
      await processor.handle({ events: ctx.events, boundaries: [] });
    }
    await startTask(processor, 'u9-other', 'agent-x', NOW + 3000, user('u9'));
    await processor.sweep();
    const detector = revocationsOf(messages).filter((r) => r.taskId.startsWith('rogue-'));
    expect(detector.map((r) => r.escalation)).toEqual(
      Array.from({ length: 3 }, () => ({ counts: true, basis: 'hard_rule', endUser: 'u9' })),
    );
    expect(processor.taskSnapshot(TENANT, 'u9-other')?.status).toBe('revoked');
    expect(processor.taskSnapshot(TENANT, 'bystander')?.status).toBe('active');
    await processor.stop();
  });

  it('escalates nothing without a policy', async () => {
    const { processor, store, messages } = await startProcessor({ taskIdleTimeoutMs: DAY });
    for (let i = 0; i < 4; i += 1) await startTask(processor, `calm-${String(i)}`, 'agent-x', NOW + i * 1000);
    for (let i = 0; i < 3; i += 1)
      await processor.revoke({ tenant: TENANT, taskId: `calm-${String(i)}`, actor: 'alice', reason: 'test' });
    await processor.sweep();
    expect(revocationsOf(messages)).toHaveLength(3);
    expect((await store.getTask(TENANT, 'calm-3'))?.status).toBe('active');
    await processor.stop();
  });
});
