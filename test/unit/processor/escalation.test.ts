/**
 * Escalation to the agent through the processor on the memory store: the third revocation of one agent's tasks
 * within the window revokes that agent's other active tasks, and its new tasks while the block lasts; another
 * agent's tasks are untouched. Without a policy, nothing escalates.
 */
import { describe, expect, it } from 'vitest';
import { ESCALATION_ACTOR } from '../../../services/core/decide.ts';
import { taskCtx, toolCall } from '../detect/fixtures.ts';
import { TENANT, revocationsOf, startProcessor } from './harness.ts';

const NOW = Date.now() - 3_600_000;
const DAY = 86_400_000;
const POLICY = { revocations: 3, windowMs: 3_600_000, blockMs: 3_600_000 };

async function startTask(
  processor: Awaited<ReturnType<typeof startProcessor>>['processor'],
  taskId: string,
  agentId: string,
  startMs: number,
): Promise<void> {
  const ctx = taskCtx('summarize_ticket', taskId, agentId, startMs);
  toolCall(ctx, 'get_ticket', { type: 'function', sideEffect: 'read' });
  await processor.handle({ events: ctx.events, boundaries: [] });
}

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
