/**
 * The processor's verdicts through its public interface, on the in-memory store: benign tasks teach the
 * baseline once they complete and are never revoked; an anomalous task is revoked once, with reasons a person
 * can read, and the revocation is stored; the events a revoked task sends afterwards are still scored and
 * stored, and never revoke it again. The same through the in-process bus.
 */
import { describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../../schemas/events.ts';
import { createInProcessBus } from '../../../services/bus/in-process-bus.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import { benignTask, dataAccess, rng, taskCtx, toolCall } from '../detect/fixtures.ts';
import { TENANT, WARMUP, exfiltration, revocationsOf, rootOf, startProcessor, warmUp } from './harness.ts';

const NOW = Date.now() - 3_600_000;

describe('processor verdicts (memory store)', () => {
  it('learns benign tasks as they complete and revokes none of them', async () => {
    const h = await startProcessor();
    const tasks = await warmUp(h.processor, NOW);
    expect(h.processor.baselines().get(TENANT, 'summarize_ticket')?.tasks).toBe(WARMUP + 5);
    const records = await Promise.all(tasks.map((taskId) => h.store.getTask(TENANT, taskId)));
    expect(records.map((record) => record?.status)).toEqual(tasks.map(() => 'completed'));
    expect(revocationsOf(h.messages)).toEqual([]);
    expect((await h.store.listRevocations({ tenant: TENANT, limit: 10 })).items).toEqual([]);
    // The learned baseline is stored with the results.
    expect(
      (await h.store.loadBaselines()).find((row) => row.taskType === 'summarize_ticket' && row.agentId === '')?.tasks,
    ).toBe(WARMUP + 5);

    // A task that has not ended teaches nothing yet; once idle past the timeout it completes and is learned.
    const running = benignTask('summarize_ticket', 'still-running', rng(3), { start: NOW + 2_000_000 });
    await h.processor.handle({ events: running.events, boundaries: [] });
    expect(h.processor.taskSnapshot(TENANT, 'still-running')).toMatchObject({
      status: 'active',
      taskType: 'summarize_ticket',
    });
    expect(h.processor.baselines().get(TENANT, 'summarize_ticket')?.tasks).toBe(WARMUP + 5);
    await h.processor.sweep();
    expect(await h.store.getTask(TENANT, 'still-running')).toMatchObject({
      status: 'completed',
      counts: { tool_call: expect.any(Number) as number },
    });
    expect(h.processor.baselines().get(TENANT, 'summarize_ticket')?.tasks).toBe(WARMUP + 6);
    expect(h.errors).toEqual([]);
    await h.processor.stop();
  });

  it('revokes an exfiltration once, with readable reasons, and stores the revocation and its alerts', async () => {
    const h = await startProcessor();
    await warmUp(h.processor, NOW);
    const attack = exfiltration('rogue-1', NOW + 3_000_000);
    await h.processor.handle({ events: attack, boundaries: [] });

    const record = await h.store.getTask(TENANT, 'rogue-1');
    expect(record).toMatchObject({
      status: 'revoked',
      regime: 'type_baseline',
      decision: 'revoke',
      agentId: 'agent-rogue',
    });
    expect(record?.reasons.join(' ')).toMatch(/crm\.customers/);
    const stored = await h.store.listRevocations({ tenant: TENANT, taskId: 'rogue-1', limit: 10 });
    expect(stored.items).toHaveLength(1);
    const [revocation] = stored.items;
    expect(revocation).toMatchObject({
      action: 'revoke',
      source: 'detector',
      actor: 'tripline',
      taskType: 'summarize_ticket',
      agentId: 'agent-rogue',
    });
    expect(revocation?.reasons.length).toBeGreaterThan(0);
    for (const reason of revocation?.reasons ?? []) expect(reason).toMatch(/[a-z]{3,} /);
    expect(attack.map((event) => event.id)).toContain(revocation?.eventId);
    expect(revocationsOf(h.messages).map((item) => item.id)).toEqual([revocation?.id]);
    expect(h.processor.taskSnapshot(TENANT, 'rogue-1')).toMatchObject({ status: 'revoked', agentId: 'agent-rogue' });
    const alerts = await h.store.listAlerts({ tenant: TENANT, taskId: 'rogue-1', limit: 10 });
    expect(alerts.items.map((alert) => alert.decision)).toContain('revoke');
    expect(new Set(alerts.items.map((alert) => alert.decision)).size).toBe(alerts.items.length);

    // The same batch delivered again (a replay after a crash) counts nothing twice and decides nothing new.
    await h.processor.handle({ events: attack, boundaries: [] });
    expect(
      (await h.store.listRevocations({ tenant: TENANT, taskId: 'rogue-1', limit: 10 })).items.map((item) => item.id),
    ).toEqual([revocation?.id]);
    expect(revocationsOf(h.messages)).toHaveLength(1);
    expect(await h.store.eventsForTask(TENANT, 'rogue-1')).toHaveLength(attack.length);
    expect((await h.store.getTask(TENANT, 'rogue-1'))?.counts).toMatchObject({ tool_call: 2, data_access: 1 });
    await h.processor.stop();
  });

  it('scores and stores what a revoked task does afterwards, never revoking it again nor learning it', async () => {
    const afterRevocation: AgentEvent[] = [];
    const h = await startProcessor({ hooks: { onRevokedTaskEvent: (event) => afterRevocation.push(event) } });
    await warmUp(h.processor, NOW);
    const ctx = taskCtx('summarize_ticket', 'rogue-2', 'agent-rogue', NOW + 3_100_000);
    toolCall(ctx, 'search_tickets');
    dataAccess(ctx, 'crm.customers', { rows: 50_000, bytes: 40_000_000, classification: 'restricted' });
    toolCall(ctx, 'http_request', { target: 'paste.example.net', sideEffect: 'write' });
    await h.processor.handle({ events: [...ctx.events], boundaries: [] });
    const [revocation] = revocationsOf(h.messages);
    expect(revocationsOf(h.messages)).toHaveLength(1);
    // The events after the one that revoked it, in the same batch, are already the revoked task's.
    const revokedAt = ctx.events.findIndex((event) => event.id === revocation?.eventId);
    expect(revokedAt).toBeGreaterThanOrEqual(0);
    expect(afterRevocation.map((event) => event.id)).toEqual(ctx.events.slice(revokedAt + 1).map((event) => event.id));
    afterRevocation.length = 0;

    // The agent keeps going: its next events arrive after the kill.
    const before = ctx.events.length;
    toolCall(ctx, 'http_request', { target: 'paste.example.net', sideEffect: 'write' });
    dataAccess(ctx, 'crm.customers', { rows: 10, classification: 'restricted' });
    const later = ctx.events.slice(before);
    await h.processor.handle({ events: later, boundaries: [rootOf(ctx.events)] });
    expect(afterRevocation.map((event) => event.id)).toEqual(later.map((event) => event.id));
    expect(await h.store.eventsForTask(TENANT, 'rogue-2')).toHaveLength(ctx.events.length);
    expect((await h.store.getTask(TENANT, 'rogue-2'))?.status).toBe('revoked');
    expect((await h.store.listRevocations({ tenant: TENANT, taskId: 'rogue-2', limit: 10 })).items).toHaveLength(1);
    expect(revocationsOf(h.messages)).toHaveLength(1);
    // Its end teaches the baseline nothing.
    expect(h.processor.baselines().get(TENANT, 'summarize_ticket')?.tasks).toBe(WARMUP + 5);
    await h.processor.stop();
  });

  it('logs and ignores a hook that throws', async () => {
    const h = await startProcessor({
      hooks: {
        onTaskEnded: () => {
          throw new Error('hook down');
        },
      },
    });
    const task = benignTask('summarize_ticket', 'hooked', rng(5), { start: NOW });
    await h.processor.handle({ events: task.events, boundaries: [rootOf(task.events)] });
    expect((await h.store.getTask(TENANT, 'hooked'))?.status).toBe('completed');
    expect(h.errors).toEqual([
      expect.objectContaining({ hook: 'onTaskEnded', err: 'hook down', msg: 'a processor hook failed' }),
    ]);
    await h.processor.stop();
  });

  it('decides the same behind the in-process bus', async () => {
    const h = await startProcessor({ persistAhead: 10_000, scoreInOrder: true });
    const bus = createInProcessBus({
      capacity: 10_000,
      batchSize: 200,
      flushIntervalMs: 0,
      logger: createLogger('silent'),
    });
    await bus.start((batch) => h.processor.handle(batch));
    const r = rng(42);
    const request = { resourceSpans: [] };
    for (let i = 0; i < WARMUP + 5; i += 1) {
      const task = benignTask('summarize_ticket', `bus-warm-${String(i)}`, r, { start: NOW + i * 60_000 });
      await bus.publish(
        { events: task.events, boundaries: [rootOf(task.events)], usages: [], usageOnly: 0, dropped: 0 },
        request,
      );
      // One task at a time, as its agent would send it (a batch scores its tasks' ends after all its events).
      await bus.drained();
    }
    await bus.publish(
      { events: exfiltration('bus-rogue', NOW + 3_000_000), boundaries: [], usages: [], usageOnly: 0, dropped: 0 },
      request,
    );
    await bus.drained();
    await h.processor.stop();
    expect(h.processor.baselines().get(TENANT, 'summarize_ticket')?.tasks).toBe(WARMUP + 5);
    expect(revocationsOf(h.messages).map((item) => item.taskId)).toEqual(['bus-rogue']);
    expect(await h.store.getTask(TENANT, 'bus-rogue')).toMatchObject({ status: 'revoked', decision: 'revoke' });
    expect((await h.store.listRevocations({ tenant: TENANT, taskId: 'bus-rogue', limit: 10 })).items).toHaveLength(1);
    await bus.stop();
  });
});
