/**
 * Kills and restores through the processor on the memory store: a person's kill and restore with actor and
 * reason, refused when they contradict the task's status; a task known only to the store; a restore after a
 * detector kill; a decision made in another process; a task given credentials before its first event.
 */
import { describe, expect, it } from 'vitest';
import type { Revocation } from '../../../schemas/events.ts';
import { createMemoryStore } from '../../../services/store/memory-store.ts';
import { benignTask, dataAccess, rng, taskCtx, toolCall } from '../detect/fixtures.ts';
import { TENANT, exfiltration, revocationsOf, rootOf, startProcessor, warmUp } from './harness.ts';

const NOW = Date.now() - 3_600_000;

describe('manual kills and restores (memory store)', () => {
  it('records a kill and a restore with actor and reason, and refuses contradictions', async () => {
    const { processor, store, messages } = await startProcessor();
    const task = benignTask('summarize_ticket', 'manual-1', rng(7), { start: NOW });
    await processor.handle({ events: task.events, boundaries: [] });

    await expect(
      processor.restore({ tenant: TENANT, taskId: 'manual-1', actor: 'alice', reason: 'x' }),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
    const kill = await processor.revoke({ tenant: TENANT, taskId: 'manual-1', actor: 'alice', reason: 'looks odd' });
    expect(kill).toMatchObject({
      tenant: TENANT,
      taskId: 'manual-1',
      action: 'revoke',
      source: 'manual',
      actor: 'alice',
      reason: 'looks odd',
      taskType: 'summarize_ticket',
    });
    expect(processor.taskSnapshot(TENANT, 'manual-1')?.status).toBe('revoked');
    expect((await store.getTask(TENANT, 'manual-1'))?.status).toBe('revoked');
    await expect(
      processor.revoke({ tenant: TENANT, taskId: 'manual-1', actor: 'alice', reason: 'again' }),
    ).rejects.toMatchObject({ code: 'CONFLICT' });

    const restore = await processor.restore({
      tenant: TENANT,
      taskId: 'manual-1',
      actor: 'bob',
      reason: 'checked with the owner',
    });
    expect(restore).toMatchObject({
      action: 'restore',
      source: 'manual',
      actor: 'bob',
      reason: 'checked with the owner',
    });
    expect((await store.getTask(TENANT, 'manual-1'))?.status).toBe('active');
    await expect(
      processor.revoke({ tenant: TENANT, taskId: 'no-such-task', actor: 'a', reason: 'r' }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });

    const history = await store.listRevocations({ tenant: TENANT, taskId: 'manual-1', limit: 10 });
    expect(history.items.map((item) => item.action)).toEqual(['restore', 'revoke']);
    expect(revocationsOf(messages).map((item) => item.id)).toEqual([kill.id, restore.id]);

    // A task once killed by hand teaches the baseline nothing when it ends, even restored before.
    await processor.handle({ events: [], boundaries: [rootOf(task.events)] });
    expect((await store.getTask(TENANT, 'manual-1'))?.status).toBe('completed');
    expect(processor.baselines().get(TENANT, 'summarize_ticket')).toBeUndefined();
    await processor.stop();
  });

  it('kills a task only the store knows, and restores it as completed', async () => {
    const store = createMemoryStore();
    const first = await startProcessor({ store });
    const task = benignTask('summarize_ticket', 'stored-only', rng(8), { start: NOW });
    await first.processor.handle({ events: task.events, boundaries: [rootOf(task.events)] });
    await first.processor.stop();

    const second = await startProcessor({ store });
    expect(second.processor.taskSnapshot(TENANT, 'stored-only')).toBeUndefined();
    await second.processor.revoke({ tenant: TENANT, taskId: 'stored-only', actor: 'alice', reason: 'audit' });
    expect(second.processor.taskSnapshot(TENANT, 'stored-only')).toMatchObject({
      status: 'revoked',
      taskType: 'summarize_ticket',
    });
    await second.processor.restore({ tenant: TENANT, taskId: 'stored-only', actor: 'alice', reason: 'fine' });
    expect(await store.getTask(TENANT, 'stored-only')).toMatchObject({
      status: 'completed',
      counts: { tool_call: expect.any(Number) as number },
    });
    expect((await store.eventsForTask(TENANT, 'stored-only')).length).toBe(task.events.length);
    await second.processor.stop();
  });

  it('after a restore, judges the task on what it does next: what the person accepted does not revoke again', async () => {
    const { processor, store, messages } = await startProcessor();
    await warmUp(processor, NOW);
    const attack = exfiltration('restored-1', NOW + 3_000_000);
    await processor.handle({ events: attack, boundaries: [] });
    expect(revocationsOf(messages)).toHaveLength(1);
    await processor.restore({ tenant: TENANT, taskId: 'restored-1', actor: 'bob', reason: 'a sanctioned export' });
    const alertsBefore = messages.filter((message) => message.type === 'alert').length;

    const ctx = taskCtx('summarize_ticket', 'restored-1', 'agent-rogue', NOW + 3_010_000);
    ctx.seq = attack.length;
    // The post the person accepted, again: still scored (the tool and host are new to the type), not acted on.
    toolCall(ctx, 'http_request', { target: 'paste.example.net', sideEffect: 'write' });
    await processor.handle({ events: ctx.events, boundaries: [] });
    const [after] = (await store.eventsForTask(TENANT, 'restored-1')).slice(-1);
    expect(after?.event.id).toBe(ctx.events[0]?.id);
    expect(messages.filter((message) => message.type === 'alert')).toHaveLength(alertsBefore);
    expect((await store.getTask(TENANT, 'restored-1'))?.status).toBe('active');
    expect(revocationsOf(messages).map((item) => item.action)).toEqual(['revoke', 'restore']);
    expect((await store.getTask(TENANT, 'restored-1'))?.counts.tool_call).toBe(3);
    await processor.stop();
  });

  it('after a restore at the highest score, new evidence alerts and revokes again', async () => {
    const { processor, store, messages } = await startProcessor();
    await warmUp(processor, NOW);
    const attack = exfiltration('restored-2', NOW + 3_000_000);
    await processor.handle({ events: attack, boundaries: [] });
    expect(processor.taskSnapshot(TENANT, 'restored-2')?.score).toBe(100);
    await processor.restore({ tenant: TENANT, taskId: 'restored-2', actor: 'bob', reason: 'a sanctioned export' });
    const alertsBefore = messages.filter((message) => message.type === 'alert').length;

    // After the restore the task reads the restricted table again and posts it elsewhere: a new exfiltration.
    const ctx = taskCtx('summarize_ticket', 'restored-2', 'agent-rogue', NOW + 3_010_000);
    ctx.seq = attack.length;
    dataAccess(ctx, 'crm.customers', { rows: 50_000, bytes: 40_000_000, classification: 'restricted' });
    toolCall(ctx, 'http_request', { target: 'drop.example.org', sideEffect: 'write' });
    await processor.handle({ events: ctx.events, boundaries: [] });
    expect(revocationsOf(messages).map((item) => item.action)).toEqual(['revoke', 'restore', 'revoke']);
    expect(messages.filter((message) => message.type === 'alert').length).toBeGreaterThan(alertsBefore);
    expect((await store.getTask(TENANT, 'restored-2'))?.status).toBe('revoked');
    await processor.stop();
  });

  it("applies another process's kill and restore without writing a revocation", async () => {
    const { processor, store, messages } = await startProcessor();
    const task = benignTask('summarize_ticket', 'remote-1', rng(9), { start: NOW });
    await processor.handle({ events: task.events, boundaries: [] });
    const decided: Revocation = {
      id: 'remote-kill',
      tenant: TENANT,
      taskId: 'remote-1',
      taskType: 'summarize_ticket',
      agentId: task.agentId,
      action: 'revoke',
      source: 'manual',
      actor: 'carol',
      reason: 'api',
      reasons: [],
      score: 0,
      eventId: '',
      timeMs: Date.now(),
    };
    await processor.applyRevocation(decided);
    expect(processor.taskSnapshot(TENANT, 'remote-1')?.status).toBe('revoked');
    expect((await store.getTask(TENANT, 'remote-1'))?.status).toBe('revoked');
    // Applying it again changes nothing; a task this processor does not hold is ignored.
    await processor.applyRevocation(decided);
    await processor.applyRevocation({ ...decided, taskId: 'elsewhere' });
    expect(await store.getTask(TENANT, 'elsewhere')).toBeNull();
    await processor.applyRevocation({ ...decided, id: 'remote-restore', action: 'restore' });
    expect((await store.getTask(TENANT, 'remote-1'))?.status).toBe('active');
    expect((await store.listRevocations({ tenant: TENANT, limit: 10 })).items).toEqual([]);
    expect(messages).toEqual([]);
    await processor.stop();
  });

  it('holds a task given credentials before its first event: a kill finds it, its events are its own', async () => {
    const revokedEvents: string[] = [];
    const { processor, store } = await startProcessor({
      hooks: { onRevokedTaskEvent: (event) => revokedEvents.push(event.id) },
    });
    await processor.registerTask({
      tenant: TENANT,
      taskId: 'issued-1',
      taskType: 'summarize_ticket',
      agentId: 'agent-9',
      startMs: NOW,
      isNew: true,
    });
    expect(processor.taskSnapshot(TENANT, 'issued-1')).toEqual({
      status: 'active',
      score: 0,
      taskType: 'summarize_ticket',
      agentId: 'agent-9',
      events: 0,
    });
    await processor.revoke({ tenant: TENANT, taskId: 'issued-1', actor: 'alice', reason: 'not expected today' });
    const ctx = taskCtx('summarize_ticket', 'issued-1', 'agent-9', NOW + 1000);
    toolCall(ctx, 'get_ticket');
    await processor.handle({ events: ctx.events, boundaries: [] });
    expect(revokedEvents).toEqual(ctx.events.map((event) => event.id));
    expect(await store.getTask(TENANT, 'issued-1')).toMatchObject({ status: 'revoked', counts: { tool_call: 1 } });

    // A task the store already knows is loaded instead of held empty.
    const known = benignTask('summarize_ticket', 'known-1', rng(10), { start: NOW });
    const other = await startProcessor({ store });
    await other.processor.handle({ events: known.events, boundaries: [rootOf(known.events)] });
    await other.processor.stop();
    const fresh = await startProcessor({ store });
    await fresh.processor.registerTask({
      tenant: TENANT,
      taskId: 'known-1',
      taskType: 'summarize_ticket',
      agentId: 'agent-9',
      startMs: NOW,
    });
    expect(fresh.processor.taskSnapshot(TENANT, 'known-1')).toMatchObject({
      status: 'completed',
      agentId: known.agentId,
    });
    await fresh.processor.stop();
    await processor.stop();
  });
});
