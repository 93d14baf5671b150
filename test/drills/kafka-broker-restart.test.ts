/**
 * Drill: the Kafka broker restarted during ingest, and during processing. A broker of this test's own (free
 * ports, own state; the shared test broker is not touched) is stopped and started again with its data.
 *
 *   1. During ingest: a real `@opentelemetry/sdk-node` agent and drill agents export while the broker is down.
 *      The gateway answers 503 with Retry-After (never 200 for spans Kafka did not acknowledge), the agents
 *      retry, and once the broker is back every span is scored, none lost, none duplicated.
 *   2. During processing: the processor has decided to revoke a rogue task and is writing the batch when the
 *      broker stops. Its alert and revocation cannot be published, its offsets cannot be committed, and ingest
 *      answers 503 while agents keep exporting; once the broker is back the batch is published and committed
 *      (or replayed harmlessly) and the backlog is consumed.
 *
 * The OTel SDK retries at most 5 times, honouring Retry-After, and only within its exporter timeout (10 s by
 * default) and the batch processor's export timeout (30 s): with Tripline's default Retry-After of 2 s an agent
 * on default settings rides out about 8-10 s of Kafka outage. This drill's outage (stop and restart of a JVM,
 * slow on a busy machine) may take longer, so the gateway advertises Retry-After 10 s and the SDK agent's
 * timeouts are 120 s. Time to recover: from the broker answering again until every acknowledged event is stored.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Revocation } from '../../schemas/events.ts';
import { startGatewayService, startProcessorService } from '../../services/app/distributed.ts';
import type { RunningGateway, RunningProcessorService } from '../../services/app/distributed.ts';
import { openClickHouseStore } from '../../services/store/clickhouse/store.ts';
import type { ScoredEvent, Store } from '../../services/store/store.ts';
import { startOwnBroker } from '../helpers/kafka-broker.ts';
import type { OwnBroker } from '../helpers/kafka-broker.ts';
import { waitFor } from '../helpers/wait.ts';
import { readTopic } from '../integration/kafka/fixtures.ts';
import {
  Ledger,
  concludeDrill,
  drillConfig,
  drillEnv,
  drillLogger,
  drillRunId,
  openAuditClient,
  postTraces,
  seconds,
  startAgents,
  startSdkAgent,
  storedEvents,
  taskExport,
  tenantOf,
  waitUntilStored,
} from './helpers.ts';
import type { ExportAnswer } from './helpers.ts';

const DATABASE = 'drill_broker';
const EVENTS_PER_TASK = 6;

/** The store, except that the insert of events holding `text` waits until released (the batch in hand). */
function holdingStore(inner: Store): { store: Store; hold(text: string): void; holding(): boolean; release(): void } {
  let text: string | undefined;
  let waiting: (() => void) | undefined;
  let released: Promise<void> = Promise.resolve();
  const store: Store = {
    migrate: () => inner.migrate(),
    ping: () => inner.ping(),
    childTasks: (tenant, parents, limit) => inner.childTasks(tenant, parents, limit),
    async insertEvents(rows: readonly ScoredEvent[]) {
      if (text !== undefined && rows.some((row) => row.event.taskId === text)) {
        text = undefined;
        released = new Promise<void>((resolve) => (waiting = resolve));
        await released;
      }
      await inner.insertEvents(rows);
    },
    insertAlerts: (rows) => inner.insertAlerts(rows),
    insertRevocations: (rows) => inner.insertRevocations(rows),
    upsertTasks: (rows) => inner.upsertTasks(rows),
    saveBaselines: (rows) => inner.saveBaselines(rows),
    insertModelUsage: (rows) => inner.insertModelUsage(rows),
    spend: (query) => inner.spend(query),
    modelCallsForTask: (tenant, taskId, limit) => inner.modelCallsForTask(tenant, taskId, limit),
    getTask: (tenant, taskId) => inner.getTask(tenant, taskId),
    getTasks: (tenant, taskIds) => inner.getTasks(tenant, taskIds),
    taskCredentials: (tenant, taskIds) => inner.taskCredentials(tenant, taskIds),
    listActiveTasks: (tenant) => inner.listActiveTasks(tenant),
    eventsForTask: (tenant, taskId) => inner.eventsForTask(tenant, taskId),
    eventsForTasks: (tenant, taskIds) => inner.eventsForTasks(tenant, taskIds),
    listAlerts: (filter) => inner.listAlerts(filter),
    listRevocations: (filter) => inner.listRevocations(filter),
    loadBaselines: (tenant) => inner.loadBaselines(tenant),
    counts: () => inner.counts(),
    close: () => inner.close(),
  };
  return {
    store,
    hold: (taskId) => (text = taskId),
    holding: () => waiting !== undefined,
    release() {
      waiting?.();
      waiting = undefined;
    },
  };
}

describe('drill: the Kafka broker restarted during ingest and during processing', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-drill-broker-'));
  const logger = drillLogger();
  let broker: OwnBroker;
  let held: ReturnType<typeof holdingStore>;
  let processor: RunningProcessorService;
  let gateway: RunningGateway;
  let audit: ClickHouseClient;
  let revocationsTopic: string;

  beforeAll(async () => {
    broker = await startOwnBroker();
    const env = drillEnv({
      brokers: broker.brokers,
      run: drillRunId(),
      dataDir,
      database: DATABASE,
      partitions: 3,
      // Retry-After 10 s: the SDK retries at most 5 times, so the outage it survives is about 5 × Retry-After.
      extra: { TRIPLINE_KAFKA_PUBLISH_TIMEOUT_MS: '2000', TRIPLINE_KAFKA_RETRY_AFTER_SECONDS: '10' },
    });
    revocationsTopic = env.TRIPLINE_TOPIC_REVOCATIONS ?? '';
    const { config, kafka } = drillConfig(env);
    const store = await openClickHouseStore({ dataDir, database: DATABASE });
    await store.migrate();
    held = holdingStore(store);
    processor = await startProcessorService(config, { kafka, store: held.store, logger });
    gateway = await startGatewayService(config, { kafka, logger });
    audit = openAuditClient({ dataDir });
  }, 240_000);

  afterAll(async () => {
    held.release();
    await gateway.stop();
    await processor.stop();
    await held.store.close();
    await audit.close();
    await broker.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it('during ingest: answers 503 with Retry-After while the broker is down, and loses no span once it is back', async () => {
    const prefix = 'kafka-ingest';
    const sdk = startSdkAgent(gateway.otlpUrl, `${prefix}-sdk-agent`, 120_000);
    const agents = startAgents({ target: () => gateway.otlpUrl, count: 2, eventsPerTask: 9, pauseMs: 50, prefix });
    const before = [`${prefix}-sdk-before-1`, `${prefix}-sdk-before-2`];
    const during = [`${prefix}-sdk-during-1`, `${prefix}-sdk-during-2`, `${prefix}-sdk-during-3`];
    const outage = { stoppedAt: 0, repairedAt: 0 };
    const probes: ExportAnswer[] = [];
    try {
      for (const taskId of before) sdk.runTask(taskId, EVENTS_PER_TASK);
      await sdk.forceFlush();
      await waitFor(
        'the first tasks to be scored',
        async () => (await storedEvents(audit, DATABASE, prefix)) >= before.length * EVENTS_PER_TASK,
        60_000,
      );

      outage.stoppedAt = Date.now();
      await broker.stop();
      // While it is down: 503 + Retry-After (the first after the publish timeout, later ones at once). The probes
      // are then sent again until acknowledged, like every export: their spans may have reached Kafka anyway.
      for (let i = 0; i < 3; i += 1) {
        const probe = taskExport({ taskId: `${prefix}-probe-${i}`, agentId: `${prefix}-probe-agent`, events: 3 });
        probes.push(await postTraces(gateway.otlpUrl, probe.body));
        void agents.send(probe);
      }
      expect(probes.map((answer) => answer.status)).toEqual([503, 503, 503]);
      expect(probes.every((answer) => answer.retryAfter === '10')).toBe(true);
      const refused = gateway.publisher.stats().unavailable;
      expect(refused).toBeGreaterThanOrEqual(3);

      // The agents keep working; their exports are refused and retried until the broker is back.
      for (const taskId of during) sdk.runTask(taskId, EVENTS_PER_TASK);
      const flushed = sdk.forceFlush();
      await waitFor(
        "the SDK agent's export to be refused",
        () => gateway.publisher.stats().unavailable > refused,
        30_000,
      );
      await broker.restart();
      outage.repairedAt = Date.now();
      await flushed;
    } finally {
      await sdk.shutdown();
    }
    await agents.stop();

    const ledger = new Ledger();
    for (const source of [agents.ledger, sdk.ledger]) {
      for (const id of source.acked) ledger.acked.add(id);
      for (const [id, taskId] of source.taskOf) ledger.taskOf.set(id, taskId);
    }
    const recoveredAt = await waitUntilStored(audit, DATABASE, ledger.acked, {
      prefix,
      taskOf: ledger.taskOf,
      timeoutMs: 90_000,
    });
    // Every SDK task scored once, with its counts (the task span completed it).
    for (const taskId of [...before, ...during]) {
      const task = await waitFor(`task ${taskId} to complete`, async () => {
        const record = await held.store.getTask(await tenantOf(audit, DATABASE, taskId), taskId);
        return record?.status === 'completed' ? record : undefined;
      });
      expect(task.counts).toEqual({ tool_call: 2, data_access: 2, privilege_change: 2 });
    }
    await concludeDrill({
      drill: 'Kafka broker restarted during ingest',
      client: audit,
      database: DATABASE,
      ledger,
      prefix,
      recoverMs: recoveredAt - outage.repairedAt,
      details: `broker down ${seconds(outage.repairedAt - outage.stoppedAt)}; ingest answered ${agents.ledger.count(503)} × 503 with Retry-After to the drill agents (the SDK agent's refusals are retried inside the SDK); real OTel SDK agent: ${sdk.ledger.acked.size} events`,
    });
    expect(
      (
        await postTraces(
          gateway.otlpUrl,
          taskExport({ taskId: 'after-the-outage', agentId: 'probe-agent', events: 3 }).body,
        )
      ).status,
    ).toBe(200);
  }, 300_000);

  it('during processing: the batch in hand when the broker stops is published, committed or replayed, never lost', async () => {
    const prefix = 'kafka-processing';
    const agents = startAgents({ target: () => gateway.otlpUrl, count: 3, eventsPerTask: 9, pauseMs: 40, prefix });
    await waitFor('agents in full swing', async () => (await storedEvents(audit, DATABASE, prefix)) > 500, 60_000);
    const rogue = `${prefix}-rogue`;
    held.hold(rogue);
    await agents.send(taskExport({ taskId: rogue, agentId: `${prefix}-rogue-agent`, events: 2, rogue: true }));
    await waitFor('the processor to be writing the batch that revokes the rogue task', () => held.holding(), 60_000);
    const failedCommitsBefore = processor.source.stats().failedCommits;
    const stoppedAt = Date.now();
    await broker.stop();
    held.release();
    // Down for a while, agents exporting (and refused) meanwhile.
    await sleep(3000);
    await broker.restart();
    const repairedAt = Date.now();
    await agents.stop();
    const recoveredAt = await waitUntilStored(audit, DATABASE, agents.ledger.acked, {
      prefix,
      taskOf: agents.ledger.taskOf,
      timeoutMs: 90_000,
    });

    await concludeDrill({
      drill: 'Kafka broker restarted during processing',
      client: audit,
      database: DATABASE,
      ledger: agents.ledger,
      prefix,
      rogueTaskIds: [rogue],
      recoverMs: recoveredAt - repairedAt,
      details: `broker down ${seconds(repairedAt - stoppedAt)} while the processor held a batch; ${processor.source.stats().failedCommits - failedCommitsBefore} offset commits failed; ingest answered ${agents.ledger.count(503)} × 503 with Retry-After meanwhile`,
    });
    // The revocation decided while the broker was going down reached the revocations topic, under one id.
    const published = (await readTopic(broker.brokers, revocationsTopic, 1, 60_000)).map(
      (record) => JSON.parse(record.value?.toString() ?? '{}') as Revocation,
    );
    expect(
      new Set(published.filter((revocation) => revocation.taskId === rogue).map((revocation) => revocation.id)).size,
    ).toBe(1);
  }, 300_000);
});
