/**
 * The distributed path end to end on a real broker: real `@opentelemetry/sdk-node` agents (one process each,
 * OTLP/HTTP protobuf) → gateway → Kafka → two processors in one consumer group → ClickHouse (the in-process
 * engine, shared by both processors and the API in this test process: chdb serves one data directory per
 * process) → the API shows the revocation.
 *
 * Mid-stream one processor dies abruptly: from then on its next batch is written to ClickHouse (events) and
 * then it hangs for good, never committing the offsets, never heartbeating (after max.poll.interval) — a
 * process that crashed between the store write and the commit. The group moves its partitions to the other
 * processor, which replays the uncommitted records. Every event must then be in ClickHouse exactly once, and
 * the rogue task revoked exactly once (in the store, through the API, and on the revocations topic).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFleet } from '../../../collectors/simulator/fleet.ts';
import { generateScenario } from '../../../collectors/simulator/scenarios.ts';
import type { TaskPlan } from '../../../collectors/simulator/scenarios.ts';
import type { Revocation } from '../../../schemas/events.ts';
import { startApiService, startGatewayService, startProcessorService } from '../../../services/app/distributed.ts';
import type { RunningApiService, RunningGateway, RunningProcessorService } from '../../../services/app/distributed.ts';
import { openClickHouseStore } from '../../../services/store/clickhouse/store.ts';
import type { Store } from '../../../services/store/store.ts';
import { kafkaBrokers } from '../../helpers/kafka-broker.ts';
import { waitFor } from '../../helpers/wait.ts';
import { distributedConfig, freshKafkaSettings, readTopic, testLogger } from './fixtures.ts';
import { TEST_AGENT_TOKEN, adminHeaders } from '../../helpers/auth.ts';

const TYPES = ['summarize_ticket', 'triage_alert'];
const WARMUP = 3;

/** A store that works until `kill()`; then the next event write lands and the caller hangs for good. */
function crashableStore(inner: Store): { store: Store; kill(): void; hung(): boolean; bury(): void } {
  let killed = false;
  let dead = false;
  let hung = false;
  let wake: (() => void) | undefined;
  const live = async <T>(work: () => Promise<T>): Promise<T> => {
    if (dead) throw new Error('this processor is dead');
    return work();
  };
  const store: Store = {
    migrate: () => live(() => inner.migrate()),
    ping: () => live(() => inner.ping()),
    childTasks: (tenant, parents, limit) => live(() => inner.childTasks(tenant, parents, limit)),
    async insertEvents(rows) {
      await live(() => inner.insertEvents(rows));
      if (killed) {
        hung = true;
        await new Promise<void>((resolve) => (wake = resolve));
        throw new Error('this processor is dead');
      }
    },
    insertAlerts: (rows) => live(() => inner.insertAlerts(rows)),
    insertRevocations: (rows) => live(() => inner.insertRevocations(rows)),
    upsertTasks: (rows) => live(() => inner.upsertTasks(rows)),
    saveBaselines: (rows) => live(() => inner.saveBaselines(rows)),
    insertModelUsage: (rows) => live(() => inner.insertModelUsage(rows)),
    spend: (query) => live(() => inner.spend(query)),
    modelCallsForTask: (tenant, taskId, limit) => live(() => inner.modelCallsForTask(tenant, taskId, limit)),
    getTask: (tenant, taskId) => live(() => inner.getTask(tenant, taskId)),
    getTasks: (tenant, taskIds) => live(() => inner.getTasks(tenant, taskIds)),
    taskCredentials: (tenant, taskIds) => live(() => inner.taskCredentials(tenant, taskIds)),
    listActiveTasks: (tenant) => live(() => inner.listActiveTasks(tenant)),
    eventsForTask: (tenant, taskId) => live(() => inner.eventsForTask(tenant, taskId)),
    eventsForTasks: (tenant, taskIds) => live(() => inner.eventsForTasks(tenant, taskIds)),
    listAlerts: (filter) => live(() => inner.listAlerts(filter)),
    listRevocations: (filter) => live(() => inner.listRevocations(filter)),
    loadBaselines: (tenant) => live(() => inner.loadBaselines(tenant)),
    counts: () => live(() => inner.counts()),
    close: () => Promise.resolve(),
  };
  return {
    store,
    kill: () => (killed = true),
    hung: () => hung,
    bury() {
      dead = true;
      wake?.();
    },
  };
}

const eventsOf = (plans: readonly TaskPlan[]): number =>
  plans.reduce((sum, plan) => sum + plan.events.length + plan.afterEnd.length, 0);

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { headers: adminHeaders });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('agents → gateway → Kafka → two processors → ClickHouse → API, one processor killed mid-stream', () => {
  const brokers = kafkaBrokers();
  const settings = freshKafkaSettings(brokers, { partitions: 6, env: { TRIPLINE_KAFKA_MAX_POLL_INTERVAL_MS: '1000' } });
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-kafka-pipeline-'));
  const config = distributedConfig(brokers, dataDir, {
    CLICKHOUSE_DATABASE: 'pipeline',
    TRIPLINE_WARMUP_TASKS: String(WARMUP),
    TRIPLINE_TASK_IDLE_TIMEOUT_MS: '600000',
  });
  const logger = testLogger();
  let store: Store;
  let p1: RunningProcessorService;
  let p2: RunningProcessorService;
  let crash: ReturnType<typeof crashableStore>;
  let gateway: RunningGateway;
  let api: RunningApiService;

  const warmup = generateScenario({
    seed: 31,
    benignPerType: WARMUP * 3,
    attacksPerPattern: 0,
    agentsPerType: 2,
    taskTypes: TYPES,
  }).tasks;
  const stream = generateScenario({
    seed: 32,
    benignPerType: 5,
    attacksPerPattern: 0,
    agentsPerType: 3,
    taskTypes: TYPES,
  }).tasks;
  const extra = generateScenario({
    seed: 33,
    benignPerType: 6,
    attacksPerPattern: 0,
    agentsPerType: 2,
    taskTypes: TYPES,
  }).tasks;
  const rogue = generateScenario({
    seed: 34,
    benignPerType: 0,
    attacksPerPattern: 1,
    agentsPerType: 1,
    taskTypes: [TYPES[0] ?? ''],
    patterns: ['privilege_escalation'],
  }).tasks[0] as TaskPlan;
  rogue.agentId = 'rogue-agent-7';
  const sent: TaskPlan[] = [];

  beforeAll(async () => {
    store = await openClickHouseStore({ dataDir, database: config.store.database });
    await store.migrate();
    crash = crashableStore(store);
    p1 = await startProcessorService(config, { kafka: settings, store, logger });
    p2 = await startProcessorService(config, { kafka: settings, store: crash.store, logger, drainTimeoutMs: 2000 });
    gateway = await startGatewayService(config, { kafka: settings, logger });
    api = await startApiService(config, { kafka: settings, store, logger });
    await waitFor(
      'both processors to share the partitions',
      () => p1.source.assignedPartitions().length === 3 && p2.source.assignedPartitions().length === 3,
      30_000,
    );

    await runFleet({ endpoint: gateway.otlpUrl, plans: warmup, token: TEST_AGENT_TOKEN });
    sent.push(...warmup);
    await waitFor(
      'the warm-up tasks to complete',
      async () => {
        const tasks = await store.getTasks(
          'default',
          warmup.map((plan) => plan.taskId),
        );
        return tasks.length === warmup.length && tasks.every((task) => task.status !== 'active');
      },
      60_000,
    );
    // Both processors took part in the warm-up. What each consumed is counted, not the tasks it holds now: under
    // load a rebalance may since have moved a processor's partitions, and its tasks with them.
    expect(p1.source.stats().records).toBeGreaterThan(0);
    expect(p2.source.stats().records).toBeGreaterThan(0);
    await waitFor(
      'both processors to share the partitions again',
      () => p1.source.assignedPartitions().length === 3 && p2.source.assignedPartitions().length === 3,
      60_000,
    );

    // The stream: benign tasks and the rogue one; processor 2 is killed after the first task is through.
    let killed = false;
    await runFleet({
      endpoint: gateway.otlpUrl,
      token: TEST_AGENT_TOKEN,
      plans: [...stream.slice(0, 4), rogue, ...stream.slice(4)],
      onTask: () => {
        if (!killed) {
          killed = true;
          crash.kill();
        }
      },
    });
    sent.push(...stream, rogue);
    // Make sure processor 2 took a batch after the kill (it owns half the partitions, so this rarely needs more).
    for (let round = 0; round < 3 && !crash.hung(); round += 1) {
      const more = extra.slice(round * 4, round * 4 + 4);
      await runFleet({ endpoint: gateway.otlpUrl, plans: more, token: TEST_AGENT_TOKEN });
      sent.push(...more);
      await waitFor('processor 2 to take a batch', () => crash.hung(), 5000).catch(() => undefined);
    }
  }, 300_000);

  afterAll(async () => {
    crash.bury();
    await p2.processor.stop().catch(() => undefined);
    await Promise.allSettled([gateway.stop(), p2.stop()]);
    await Promise.allSettled([p1.stop(), api.stop()]);
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it('kills processor 2 after it wrote a batch it never committed, and moves its partitions to processor 1', async () => {
    expect(crash.hung()).toBe(true);
    await waitFor('processor 1 to own every partition', () => p1.source.assignedPartitions().length === 6, 60_000);
  }, 120_000);

  it('stores every event exactly once', async () => {
    const expected = eventsOf(sent);
    await waitFor(
      `all ${expected} events in ClickHouse`,
      async () => (await store.counts()).events >= expected,
      90_000,
    );
    // Some more time for stray duplicates to show up, then the exact count.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await store.counts()).events).toBe(expected);
    for (const plan of [rogue, ...stream]) {
      const stored = await store.eventsForTask('default', plan.taskId);
      expect(stored.length, `events of ${plan.taskId}`).toBe(plan.events.length + plan.afterEnd.length);
      expect(new Set(stored.map((entry) => entry.event.id)).size).toBe(stored.length);
    }
    expect(p1.source.stats().records).toBeGreaterThan(0);
  }, 120_000);

  it('revokes the rogue task exactly once, and the API shows it', async () => {
    const task = await waitFor(
      'the API to show the rogue task revoked',
      async () => {
        const { status, body } = await getJson(`${api.apiUrl}/v1/tasks/${rogue.taskId}`);
        return status === 200 && body.status === 'revoked' ? body : undefined;
      },
      60_000,
    );
    expect(task.agentId).toBe('rogue-agent-7');
    const { body } = await getJson(`${api.apiUrl}/v1/revocations?task_id=${rogue.taskId}`);
    const items = body.items as Record<string, unknown>[];
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ taskId: rogue.taskId, action: 'revoke', source: 'detector' });

    // No task was revoked twice, whatever was replayed.
    const all = await store.listRevocations({ tenant: 'default', limit: 1000 });
    const perTask = new Map<string, number>();
    for (const revocation of all.items) perTask.set(revocation.taskId, (perTask.get(revocation.taskId) ?? 0) + 1);
    for (const [taskId, count] of perTask) expect(count, `revocations of ${taskId}`).toBe(1);

    // Published for enforcement points: one revocation id for the rogue on the revocations topic (a replay
    // may publish it again, with the same id).
    const records = await readTopic(brokers, settings.topics.revocations, all.items.length);
    const documents = records.map((record) => JSON.parse(record.value?.toString() ?? '{}') as Revocation);
    const rogueIds = new Set(documents.filter((doc) => doc.taskId === rogue.taskId).map((doc) => doc.id));
    expect(rogueIds.size).toBe(1);
    expect([...rogueIds][0]).toBe(items[0]?.id);
    expect(records.find((record) => record.key?.toString() === rogue.taskId)).toBeDefined();
    // Every process applied it to its kill switch.
    await waitFor('the kill switches to know', () =>
      [p1, api].every((service) => service.killSwitch.isRevoked('default', rogue.taskId)),
    );
  }, 120_000);
});
