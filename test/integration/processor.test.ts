/**
 * The processor over the real ClickHouse engine: scoring, alerting once, revoking once, replays that create
 * no duplicates, store outages that neither lose nor double-count events, state rebuilt from the store, and
 * kills that wait neither for other tasks' history lookups nor behind the results written beside them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentEvent, TaskBoundary } from '../../schemas/events.ts';
import { DEFAULT_DETECTOR_CONFIG } from '../../services/core/detect/index.ts';
import { createLocalKillSwitch } from '../../services/killswitch/kill-switch.ts';
import type { KillSwitchMessage } from '../../services/killswitch/kill-switch.ts';
import { createProcessor } from '../../services/processor/processor.ts';
import type { Processor } from '../../services/processor/processor.ts';
import { createLogger } from '../../services/shared/logger.ts';
import { openClickHouseStore } from '../../services/store/clickhouse/store.ts';
import type { Store } from '../../services/store/store.ts';
import { TENANT, benignTask, dataAccess, privilegeChange, rng, taskCtx, toolCall } from '../unit/detect/fixtures.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'tripline-processor-'));
const logger = createLogger('silent');
const WARMUP = 10;
let databaseCounter = 0;

async function freshStore(): Promise<Store> {
  databaseCounter += 1;
  const store = await openClickHouseStore({ dataDir, database: `processor_${process.pid}_${databaseCounter}`, logger });
  await store.migrate();
  return store;
}

function boundary(events: readonly AgentEvent[]): TaskBoundary {
  const first = events[0];
  const last = events[events.length - 1];
  if (first === undefined || last === undefined) throw new Error('empty task');
  return {
    tenant: first.tenant,
    taskId: first.taskId,
    taskType: first.taskType,
    agentId: first.agentId,
    traceId: first.traceId,
    spanId: `root-${first.taskId}`,
    startMs: first.startMs,
    endMs: last.endMs + 5,
    error: false,
    ends: true,
  };
}

/** The store, with `override`'s methods in place of its own. */
function wrapped(store: Store, override: Partial<Store>): Store {
  return new Proxy(store, {
    get(target, property, receiver) {
      const replaced: unknown = Reflect.get(override, property);
      if (replaced !== undefined) return replaced;
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function start(store: Store, messages: KillSwitchMessage[] = []): Promise<Processor> {
  const killSwitch = createLocalKillSwitch();
  killSwitch.subscribe((message) => messages.push(message));
  return createProcessor({
    store,
    killSwitch,
    logger,
    taskIdleTimeoutMs: 600_000,
    detector: { ...DEFAULT_DETECTOR_CONFIG, warmupTasks: WARMUP },
  });
}

/** Completes WARMUP + 5 benign summarize_ticket tasks so the type's baseline is in force. */
async function warmUp(processor: Processor, startMs: number): Promise<void> {
  const r = rng(42);
  for (let i = 0; i < WARMUP + 5; i += 1) {
    const task = benignTask('summarize_ticket', `warm-${i}`, r, { start: startMs + i * 60_000 });
    await processor.handle({ events: task.events, boundaries: [boundary(task.events)] });
  }
}

function exfiltration(taskId: string, startMs: number): AgentEvent[] {
  const ctx = taskCtx('summarize_ticket', taskId, 'agent-rogue', startMs);
  toolCall(ctx, 'search_tickets');
  dataAccess(ctx, 'crm.customers', { rows: 50_000, bytes: 40_000_000, classification: 'restricted' });
  toolCall(ctx, 'http_request', { target: 'paste.example.net', sideEffect: 'write' });
  return ctx.events;
}

describe('processor over the ClickHouse engine', () => {
  const now = Date.now() - 3_600_000;
  let store: Store;

  beforeAll(async () => {
    store = await freshStore();
  });
  afterAll(async () => {
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('learns from benign tasks, then revokes an exfiltration once, with reasons', async () => {
    const messages: KillSwitchMessage[] = [];
    const processor = await start(store, messages);
    await warmUp(processor, now);
    expect(processor.baselines().get(TENANT, 'summarize_ticket')?.tasks).toBe(WARMUP + 5);

    const attack = exfiltration('rogue-1', now + 3_000_000);
    await processor.handle({ events: attack, boundaries: [] });
    const task = await store.getTask(TENANT, 'rogue-1');
    expect(task).toMatchObject({ status: 'revoked', regime: 'type_baseline', decision: 'revoke' });
    expect(task?.reasons.join(' ')).toMatch(/crm\.customers/);

    const revocations = await store.listRevocations({ tenant: TENANT, taskId: 'rogue-1', limit: 10 });
    expect(revocations.items).toHaveLength(1);
    expect(messages.filter((message) => message.type === 'revocation')).toHaveLength(1);

    // The same batch delivered again (a replay after a crash) creates no second alert or revocation.
    await processor.handle({ events: attack, boundaries: [] });
    const again = await store.listRevocations({ tenant: TENANT, taskId: 'rogue-1', limit: 10 });
    expect(again.items.map((item) => item.id)).toEqual(revocations.items.map((item) => item.id));
    const alerts = await store.listAlerts({ tenant: TENANT, taskId: 'rogue-1', limit: 10 });
    expect(new Set(alerts.items.map((alert) => alert.decision)).size).toBe(alerts.items.length);
    const stored = await store.eventsForTask(TENANT, 'rogue-1');
    expect(stored).toHaveLength(attack.length);
    await processor.stop();
  });

  it('records manual kill and restore with actor and reason, and refuses contradictions', async () => {
    const processor = await start(store);
    const task = benignTask('summarize_ticket', 'manual-1', rng(7), { start: now + 4_000_000 });
    await processor.handle({ events: task.events, boundaries: [] });

    await expect(
      processor.restore({ tenant: TENANT, taskId: 'manual-1', actor: 'alice', reason: 'x' }),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
    const kill = await processor.revoke({ tenant: TENANT, taskId: 'manual-1', actor: 'alice', reason: 'looks odd' });
    expect(kill).toMatchObject({ action: 'revoke', source: 'manual', actor: 'alice', reason: 'looks odd' });
    await expect(
      processor.revoke({ tenant: TENANT, taskId: 'manual-1', actor: 'alice', reason: 'again' }),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
    const restore = await processor.restore({
      tenant: TENANT,
      taskId: 'manual-1',
      actor: 'bob',
      reason: 'checked with the owner',
    });
    expect(restore).toMatchObject({ action: 'restore', actor: 'bob' });
    expect((await store.getTask(TENANT, 'manual-1'))?.status).toBe('active');
    await expect(
      processor.revoke({ tenant: TENANT, taskId: 'no-such-task', actor: 'a', reason: 'r' }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });

    const history = await store.listRevocations({ tenant: TENANT, taskId: 'manual-1', limit: 10 });
    expect(history.items.map((item) => item.action)).toEqual(['restore', 'revoke']);
    await processor.stop();
  });

  it('retries a failing store without losing or double-counting events', async () => {
    let failures = 3;
    const flaky = new Proxy(store, {
      get(target, property, receiver) {
        if (property === 'insertEvents') {
          return async (rows: Parameters<Store['insertEvents']>[0]) => {
            if (failures > 0) {
              failures -= 1;
              throw new Error('simulated ClickHouse outage');
            }
            return target.insertEvents(rows);
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const processor = await start(flaky);
    const task = benignTask('summarize_ticket', 'flaky-1', rng(9), { start: now + 5_000_000 });
    await processor.handle({ events: task.events, boundaries: [] });
    expect(failures).toBe(0);
    expect(await store.eventsForTask(TENANT, 'flaky-1')).toHaveLength(task.events.length);
    const record = await store.getTask(TENANT, 'flaky-1');
    expect((record?.counts.tool_call ?? 0) + (record?.counts.data_access ?? 0)).toBe(task.events.length);
    await processor.stop();
  });

  it('rebuilds a task begun elsewhere before scoring its next event', async () => {
    const first = await start(store);
    const ctx = taskCtx('summarize_ticket', 'handover-1', 'agent-2', now + 6_000_000);
    for (let i = 0; i < 3; i += 1) dataAccess(ctx, 'crm.customers', { rows: 3 });
    await first.handle({ events: ctx.events, boundaries: [] });
    await first.stop();

    // A second processor (a restart, or a Kafka partition moving) continues the task.
    const second = await start(store);
    second.ownershipChanged();
    const more = taskCtx('summarize_ticket', 'handover-1', 'agent-2', now + 6_010_000);
    more.seq = ctx.seq; // the agent's next span, not a copy of its first
    dataAccess(more, 'crm.customers', { rows: 3 });
    await second.handle({ events: more.events, boundaries: [boundary(more.events)] });
    const record = await store.getTask(TENANT, 'handover-1');
    expect(record?.counts.data_access).toBe(4);
    expect(record?.status).toBe('completed');
    await second.stop();
  });

  it('rebuilds every active task at start with one events query per tenant, each task with its own events', async () => {
    const own = await freshStore();
    const first = await start(own);
    const tenants = [TENANT, 'tenant-b'];
    const tasks = new Map<string, AgentEvent[]>();
    for (const [t, tenant] of tenants.entries()) {
      for (let i = 0; i < 40; i += 1) {
        // The same task ids in both tenants, with different histories.
        const ctx = taskCtx('summarize_ticket', `restart-${String(i)}`, 'agent-5', now + 7_000_000 + i * 1000);
        for (let n = 0; n <= (i + t * 3) % 6; n += 1) dataAccess(ctx, 'crm.customers', { rows: 3 });
        const events = ctx.events.map((event) => ({ ...event, tenant }));
        tasks.set(`${tenant}/${ctx.taskId}`, events);
        await first.handle({ events, boundaries: [] });
      }
    }
    await first.stop();

    const calls = { one: 0, many: 0 };
    const counted = wrapped(own, {
      eventsForTask(tenant, taskId) {
        calls.one += 1;
        return own.eventsForTask(tenant, taskId);
      },
      eventsForTasks(tenant, taskIds) {
        calls.many += 1;
        return own.eventsForTasks(tenant, taskIds);
      },
    });
    const second = await start(counted);
    expect(calls).toEqual({ one: 0, many: tenants.length });
    // A replay of a task's events counts nothing twice: the restarted processor knows exactly those events.
    for (const [key, events] of tasks) {
      if (!key.endsWith('/restart-7')) continue;
      await second.handle({ events, boundaries: [boundary(events)] });
      const tenant = events[0]?.tenant ?? '';
      expect(await own.getTask(tenant, 'restart-7')).toMatchObject({
        status: 'completed',
        counts: { data_access: events.length },
      });
    }
    expect(second.taskSnapshot('tenant-b', 'restart-39')).toMatchObject({ status: 'active', agentId: 'agent-5' });
    await second.stop();
    await own.close();
  });

  it("scores a kill without waiting for another task's history lookup, and that task's events in order after it", async () => {
    let lookupsBlocked = false;
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const gated = wrapped(store, {
      async getTasks(tenant, taskIds) {
        if (lookupsBlocked) await released;
        return store.getTasks(tenant, taskIds);
      },
    });
    const messages: KillSwitchMessage[] = [];
    const processor = await start(gated, messages);
    // Tasks that started before the processor took over may have a history in the store: they are looked up.
    const startedBefore = Date.now() - 60_000;
    const known = taskCtx('summarize_ticket', 'quick-kill', 'agent-3', startedBefore);
    toolCall(known, 'get_ticket', { type: 'function', sideEffect: 'read' });
    await processor.handle({ events: [...known.events], boundaries: [] });

    // Another task this processor has not seen: its history lookup hangs until released.
    lookupsBlocked = true;
    const slow = taskCtx('summarize_ticket', 'slow-history', 'agent-4', startedBefore);
    const slowFirst = processor.handle({
      events: [toolCall(slow, 'get_ticket', { type: 'function', sideEffect: 'read' })],
      boundaries: [],
    });
    // The known task's unapproved administrative scope is revoked, and its results written, meanwhile.
    await processor.handle({
      events: [privilegeChange(known, 'elevate', ['tickets:read'], ['tickets:read', 'admin'], { approved: false })],
      boundaries: [],
    });
    expect(messages.flatMap((message) => (message.type === 'revocation' ? [message.revocation.taskId] : []))).toEqual([
      'quick-kill',
    ]);
    expect((await store.getTask(TENANT, 'quick-kill'))?.status).toBe('revoked');
    expect(processor.taskSnapshot(TENANT, 'slow-history')).toBeUndefined();

    // The waiting task's next event, in a later batch, waits for the same lookup and comes after its first.
    const slowSecond = processor.handle({
      events: [toolCall(slow, 'search_kb', { type: 'function', sideEffect: 'read' })],
      boundaries: [boundary(slow.events)],
    });
    release();
    await Promise.all([slowFirst, slowSecond]);
    const record = await store.getTask(TENANT, 'slow-history');
    expect(record).toMatchObject({ status: 'completed', counts: { tool_call: 2 } });
    await processor.stop();
  });

  it("writes a kill's revocation before the results decided with it", async () => {
    const calls: string[] = [];
    const traced = wrapped(store, {
      async insertRevocations(rows) {
        calls.push('revocations:start');
        await new Promise((resolve) => setTimeout(resolve, 50));
        await store.insertRevocations(rows);
        calls.push('revocations:end');
      },
      async insertAlerts(rows) {
        calls.push('alerts:start');
        await store.insertAlerts(rows);
      },
      async insertEvents(rows) {
        calls.push('events:start');
        await store.insertEvents(rows);
      },
    });
    const processor = await start(traced);
    const rogue = taskCtx('summarize_ticket', 'ordered-kill', 'agent-5', now + 8_000_000);
    toolCall(rogue, 'search_tickets');
    privilegeChange(rogue, 'elevate', ['tickets:read'], ['tickets:read', 'admin'], { approved: false });
    await processor.handle({ events: rogue.events, boundaries: [] });
    expect(calls).toEqual(['revocations:start', 'revocations:end', 'alerts:start', 'events:start']);
    await processor.stop();
  });
});
