/**
 * Drill: a processor killed with SIGKILL mid-batch; another takes over. Two processors run as their own
 * processes (`node services/app/processor-main.ts`, one consumer group) and share a ClickHouse server
 * (test/drills/clickhouse-server.ts); agents keep exporting through the gateway the whole time.
 *
 * The batch processor A is writing when it dies holds the rogue task's revoking event: the rogue task (on one of
 * A's partitions) first sends benign events, which A scores and writes; then its privilege escalation arrives, A
 * revokes the task and starts writing the batch, and the server holds that batch's insert into `events`. A is
 * killed (SIGKILL) while the insert waits, then the server completes it — a process that died after its write
 * reached the server and before it committed its offsets. B takes A's partitions over after the session timeout
 * and replays what A never committed.
 *
 * After B owns every partition the rogue agent tries again. After recovery: every acknowledged event stored once,
 * the rogue task revoked exactly once, its status `revoked` as the store reads it, and the revocation published
 * on the revocations topic (the kill reached the other processes).
 * Time to recover: from the kill until every event acknowledged before it is stored and a task sent to A's
 * partitions after the kill is stored (B has taken them over).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { Partitioners } from 'kafkajs';
import type { PartitionMetadata } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Revocation } from '../../schemas/events.ts';
import { startGatewayService } from '../../services/app/distributed.ts';
import { openClickHouseStore } from '../../services/store/clickhouse/store.ts';
import type { RunningGateway } from '../../services/app/distributed.ts';
import { kafkaBrokers } from '../helpers/kafka-broker.ts';
import { waitFor } from '../helpers/wait.ts';
import { readTopic } from '../integration/kafka/fixtures.ts';
import {
  concludeDrill,
  drillConfig,
  drillEnv,
  drillLogger,
  drillRunId,
  openAuditClient,
  seconds,
  startAgents,
  storedEvents,
  taskExport,
  tenantOf,
  waitUntilStored,
} from './helpers.ts';
import type { Agents } from './helpers.ts';
import { startClickHouseServer, startService } from './processes.ts';
import type { ClickHouseServer, ServiceProcess } from './processes.ts';

const DATABASE = 'drill_sigkill';
const PARTITIONS = 4;
const PREFIX = 'kill';

/** The partition number Kafka's default partitioner gives a key (the gateway keys records by trace id). */
function partitionOf(key: string): number {
  const metadata: PartitionMetadata[] = Array.from({ length: PARTITIONS }, (_, partitionId) => ({
    partitionErrorCode: 0,
    partitionId,
    leader: 0,
    replicas: [0],
    isr: [0],
  }));
  return Partitioners.DefaultPartitioner()({
    topic: 'any',
    partitionMetadata: metadata,
    message: { key, value: null },
  });
}

/** A trace id (32 hex, numbered from `from`; all zeros is no trace id) whose records go to one of `partitions`: an agent's run is one trace. */
function traceIdOn(partitions: readonly number[], from = 1): string {
  for (let n = from; ; n += 1) {
    const traceId = n.toString(16).padStart(32, '0');
    if (partitions.includes(partitionOf(traceId))) return traceId;
  }
}

/** The partitions a processor owns now, from its log (`joined the processor group`). */
function partitionsOf(processor: ServiceProcess): number[] {
  const joins = processor
    .output()
    .split('\n')
    .filter((line) => line.includes('joined the processor group'))
    .map((line) => (JSON.parse(line) as { partitions: number[] }).partitions);
  return joins.at(-1) ?? [];
}

describe('drill: a processor killed with SIGKILL mid-batch, another takes over', () => {
  const brokers = kafkaBrokers();
  const run = drillRunId();
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-drill-sigkill-'));
  const logger = drillLogger();
  let server: ClickHouseServer;
  let audit: ClickHouseClient;
  let env: Record<string, string>;
  let processorA: ServiceProcess;
  let processorB: ServiceProcess;
  let gateway: RunningGateway;
  let agents: Agents | undefined;

  beforeAll(async () => {
    server = await startClickHouseServer(dataDir);
    env = drillEnv({
      brokers,
      run,
      dataDir,
      database: DATABASE,
      partitions: PARTITIONS,
      extra: { CLICKHOUSE_URL: server.url },
    });
    processorA = await startService('processor', { ...env, CLICKHOUSE_USER: 'processor-a' });
    processorB = await startService('processor', { ...env, CLICKHOUSE_USER: 'processor-b' });
    await waitFor(
      'both processors to share the partitions',
      () => partitionsOf(processorA).length === PARTITIONS / 2 && partitionsOf(processorB).length === PARTITIONS / 2,
      60_000,
    );
    const { config, kafka } = drillConfig(env);
    gateway = await startGatewayService(config, { kafka, logger });
    audit = openAuditClient({ url: server.url });
  }, 180_000);

  afterAll(async () => {
    await agents?.stop().catch(() => undefined);
    await gateway.stop();
    await Promise.all([processorA.signal('SIGKILL'), processorB.signal('SIGTERM')]);
    await audit.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it('stores every event once and revokes the rogue task once', async () => {
    const onA = partitionsOf(processorA);
    const rogue = `${PREFIX}-rogue`;
    const rogueTrace = traceIdOn(onA);

    const running = startAgents({
      target: () => gateway.otlpUrl,
      count: 3,
      eventsPerTask: 9,
      pauseMs: 40,
      prefix: PREFIX,
    });
    agents = running;
    const { ledger } = running;
    // The rogue task's benign start, written by A like any other task.
    const start = taskExport({
      taskId: rogue,
      agentId: `${PREFIX}-rogue-agent`,
      events: 4,
      end: false,
      traceId: rogueTrace,
    });
    await running.send(start);
    await waitUntilStored(audit, DATABASE, new Set(start.ids), { prefix: PREFIX, timeoutMs: 60_000 });

    // The escalation: A decides the kill and starts writing its batch; the server holds the insert.
    await server.hold('processor-a', 'events', rogue);
    await running.send(
      taskExport({
        taskId: rogue,
        agentId: `${PREFIX}-rogue-agent`,
        events: 0,
        rogue: true,
        end: false,
        traceId: rogueTrace,
      }),
    );
    await waitFor(
      'processor A to be writing the batch with the rogue event',
      async () => (await server.held()) > 0,
      60_000,
    );
    const storedAtKill = await storedEvents(audit, DATABASE, PREFIX);
    const acknowledgedAtKill = new Set(ledger.acked);
    const killedAt = Date.now();
    await processorA.signal('SIGKILL');
    await server.release();
    // A task on A's partitions, sent after the kill: stored once B has taken them over.
    const afterKill = taskExport({
      taskId: `${PREFIX}-after-kill`,
      agentId: `${PREFIX}-agent-after-kill`,
      events: 3,
      traceId: traceIdOn(onA, Number.parseInt(rogueTrace, 16) + 1),
    });
    await running.send(afterKill);

    const backlogStoredAt = await waitUntilStored(audit, DATABASE, acknowledgedAtKill, { prefix: PREFIX });
    const takenOverAt = await waitUntilStored(audit, DATABASE, new Set(afterKill.ids), { prefix: PREFIX });
    const recoveredAt = Math.max(backlogStoredAt, takenOverAt);
    await waitFor('processor B to own every partition', () => partitionsOf(processorB).length === PARTITIONS, 60_000);
    // The rogue agent keeps trying: B must know the task is revoked already, and not revoke it a second time.
    await running.send(
      taskExport({
        taskId: rogue,
        agentId: `${PREFIX}-rogue-agent`,
        events: 0,
        rogue: true,
        end: false,
        traceId: rogueTrace,
      }),
    );
    await running.stop();
    await waitUntilStored(audit, DATABASE, ledger.acked, { prefix: PREFIX });

    await concludeDrill({
      drill: 'Processor killed (SIGKILL) mid-batch',
      client: audit,
      database: DATABASE,
      ledger,
      prefix: PREFIX,
      rogueTaskIds: [rogue],
      recoverMs: recoveredAt - killedAt,
      details: `killed while its insert of a batch was in flight (${storedAtKill} of ${acknowledgedAtKill.size} events acknowledged so far stored); the other processor took its ${PARTITIONS / 2} partitions over (session timeout 6 s) and stored the first task sent there after the kill ${seconds(takenOverAt - killedAt)} after it; agents kept exporting (${ledger.refusals()} refused)`,
    });

    // The kill took effect, not only a row: the task reads as revoked (what the API shows) and the revocation
    // was published for every process's kill switch.
    const store = await openClickHouseStore({ url: server.url, dataDir: '', database: DATABASE });
    try {
      expect((await store.getTask(await tenantOf(audit, DATABASE, rogue), rogue))?.status).toBe('revoked');
    } finally {
      await store.close();
    }
    const records = await readTopic(brokers, env.TRIPLINE_TOPIC_REVOCATIONS ?? '', 1, 60_000);
    const published = records
      .map((record) => JSON.parse(record.value?.toString() ?? '{}') as Revocation)
      .filter((revocation) => revocation.taskId === rogue);
    expect(new Set(published.map((revocation) => revocation.id)).size).toBe(1);
  }, 300_000);
});
