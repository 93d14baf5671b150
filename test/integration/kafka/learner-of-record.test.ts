/**
 * One learner of record (issue 16, point 1) on a real broker: real `@opentelemetry/sdk-node` agents → gateway →
 * Kafka → processors → ClickHouse (the in-process engine) → API, whose learner rebuilds the baselines from the
 * store and publishes versioned books that every processor polls and swaps in.
 *
 * The same generated fleet runs twice, in two databases: through one processor, and through three processors
 * over six partitions with one of them stopped in the middle of the stream (a rebalance). After the warm-up the
 * learner publishes once; every processor reports that version, and every task of the stream gets the same
 * verdict in both runs. Then an operator marks an alert of the three-processor run a false positive: the learner
 * publishes a new version at once, every processor (three again) reports it, and the same behaviour no longer
 * alerts, whichever processor scores it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFleet } from '../../../collectors/simulator/fleet.ts';
import { generateScenario } from '../../../collectors/simulator/scenarios.ts';
import type { TaskPlan } from '../../../collectors/simulator/scenarios.ts';
import { startApiService, startGatewayService, startProcessorService } from '../../../services/app/distributed.ts';
import type { RunningApiService, RunningGateway, RunningProcessorService } from '../../../services/app/distributed.ts';
import type { KafkaSettings } from '../../../services/bus/kafka/config.ts';
import { openClickHouseStore } from '../../../services/store/clickhouse/store.ts';
import type { Store } from '../../../services/store/store.ts';
import { TEST_AGENT_TOKEN, adminHeaders } from '../../helpers/auth.ts';
import { kafkaBrokers } from '../../helpers/kafka-broker.ts';
import { waitFor } from '../../helpers/wait.ts';
import { distributedConfig, freshKafkaSettings, testLogger } from './fixtures.ts';

const TYPES = ['summarize_ticket', 'triage_alert'];
const WARMUP = 3;
const TENANT = 'default';

const warmup = generateScenario({
  seed: 61,
  benignPerType: WARMUP * 3,
  attacksPerPattern: 0,
  agentsPerType: 2,
  taskTypes: TYPES,
}).tasks;
const stream = [
  ...generateScenario({ seed: 62, benignPerType: 4, attacksPerPattern: 0, agentsPerType: 3, taskTypes: TYPES }).tasks,
  ...generateScenario({
    seed: 63,
    benignPerType: 0,
    attacksPerPattern: 1,
    agentsPerType: 1,
    taskTypes: TYPES,
    patterns: ['exfiltration_burst', 'privilege_escalation', 'unseen_tool', 'risky_sequence'],
  }).tasks,
];

/** A benign summarize_ticket task that also translates the ticket: a tool the type has never used. */
function translating(taskId: string, seed: number): TaskPlan {
  const plan = generateScenario({
    seed,
    benignPerType: 1,
    attacksPerPattern: 0,
    agentsPerType: 1,
    taskTypes: ['summarize_ticket'],
  }).tasks[0] as TaskPlan;
  plan.taskId = taskId;
  plan.agentId = 'translator-1';
  plan.events.splice(2, 0, {
    kind: 'tool_call',
    tool: 'translate_text',
    sideEffect: 'read',
    gapMs: 700,
    durationMs: 300,
  });
  return plan;
}

interface Cluster {
  store: Store;
  settings: KafkaSettings;
  config: ReturnType<typeof distributedConfig>;
  processors: RunningProcessorService[];
  gateway: RunningGateway;
  api: RunningApiService;
}

const brokers = kafkaBrokers();
const dataDir = mkdtempSync(join(tmpdir(), 'tripline-learner-of-record-'));
const logger = testLogger();
const clusters: Cluster[] = [];

async function startCluster(database: string, processors: number): Promise<Cluster> {
  const settings = freshKafkaSettings(brokers, { partitions: 6 });
  const config = distributedConfig(brokers, dataDir, {
    CLICKHOUSE_DATABASE: database,
    TRIPLINE_WARMUP_TASKS: String(WARMUP),
    // Revoke at 90, so an unseen read-only tool alerts rather than revokes (the false-positive case).
    TRIPLINE_REVOKE_THRESHOLD: '90',
    TRIPLINE_TASK_IDLE_TIMEOUT_MS: '600000',
    // The learner publishes when told (and on feedback), so the whole stream is scored against one book.
    TRIPLINE_LEARNER_INTERVAL_MS: '86400000',
    TRIPLINE_BASELINE_POLL_MS: '200',
  });
  const store = await openClickHouseStore({ dataDir, database, logger });
  await store.migrate();
  const cluster: Cluster = {
    store,
    settings,
    config,
    processors: [],
    gateway: await startGatewayService(config, { kafka: settings, logger }),
    api: await startApiService(config, { kafka: settings, store, logger }),
  };
  clusters.push(cluster);
  for (let i = 0; i < processors; i += 1)
    cluster.processors.push(await startProcessorService(config, { kafka: settings, store, logger }));
  await waitForPartitions(cluster);
  return cluster;
}

function waitForPartitions(cluster: Cluster): Promise<unknown> {
  return waitFor(
    'the processors to share the six partitions',
    () =>
      cluster.processors.reduce((sum, p) => sum + p.source.assignedPartitions().length, 0) === 6 &&
      cluster.processors.every((p) => p.source.assignedPartitions().length > 0),
    60_000,
  );
}

async function waitForEnded(cluster: Cluster, plans: readonly TaskPlan[]): Promise<void> {
  await waitFor(
    `${String(plans.length)} tasks to end`,
    async () => {
      const tasks = await cluster.store.getTasks(
        TENANT,
        plans.map((plan) => plan.taskId),
      );
      return tasks.length === plans.length && tasks.every((task) => task.status !== 'active');
    },
    120_000,
    250,
  );
}

/** The learner publishes now; resolves with the version once every processor scores against it. */
async function publishAndSpread(cluster: Cluster): Promise<number> {
  const learner = cluster.api.learner;
  if (learner === undefined) throw new Error('the API runs no learner');
  const { version } = await learner.rebuildNow();
  await waitForVersion(cluster, version);
  return version;
}

function waitForVersion(cluster: Cluster, version: number): Promise<unknown> {
  return waitFor(
    `every processor to score against baseline book ${String(version)}`,
    () => cluster.processors.every((p) => p.processor.baselineVersion() === version),
    30_000,
  );
}

async function verdicts(cluster: Cluster, plans: readonly TaskPlan[]): Promise<Map<string, string>> {
  const tasks = await cluster.store.getTasks(
    TENANT,
    plans.map((plan) => plan.taskId),
  );
  return new Map(tasks.map((task) => [task.taskId, `${task.status}/${task.decision}`]));
}

async function warmUp(cluster: Cluster): Promise<number> {
  await runFleet({ endpoint: cluster.gateway.otlpUrl, plans: warmup, token: TEST_AGENT_TOKEN });
  await waitForEnded(cluster, warmup);
  return publishAndSpread(cluster);
}

describe('one learner of record: the same verdicts through one processor and through three', () => {
  let one: Cluster;
  let three: Cluster;
  const versions: { one: number; three: number; afterWarmup: number[] } = { one: 0, three: 0, afterWarmup: [] };

  beforeAll(async () => {
    one = await startCluster(`learner_one_${String(process.pid)}`, 1);
    versions.one = await warmUp(one);
    await runFleet({ endpoint: one.gateway.otlpUrl, plans: stream, token: TEST_AGENT_TOKEN });
    await waitForEnded(one, stream);

    three = await startCluster(`learner_three_${String(process.pid)}`, 3);
    versions.three = await warmUp(three);
    versions.afterWarmup = three.processors.map((p) => p.processor.baselineVersion());
    // The stream, with the third processor stopped after a few tasks: its partitions move to the other two.
    let stopping: Promise<void> | undefined;
    let seen = 0;
    await runFleet({
      endpoint: three.gateway.otlpUrl,
      plans: stream,
      token: TEST_AGENT_TOKEN,
      onTask: () => {
        seen += 1;
        if (seen === 4) stopping = three.processors[2]?.stop();
      },
    });
    await stopping;
    await waitForEnded(three, stream);
  }, 600_000);

  afterAll(async () => {
    for (const cluster of clusters) {
      await Promise.allSettled([cluster.gateway.stop()]);
      await Promise.allSettled(cluster.processors.map((p) => p.stop()));
      await Promise.allSettled([cluster.api.stop()]);
      await cluster.store.close();
    }
    rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it('learns one book from every partition: every processor reports its version', async () => {
    expect(versions.one).toBeGreaterThan(0);
    expect(versions.three).toBeGreaterThan(0);
    expect(versions.afterWarmup).toEqual([versions.three, versions.three, versions.three]);
    // Both books learned the same warm-up tasks, whichever processor scored them (a task that alerted in its
    // type's warm-up is held, as online, so not every warm-up task is learned yet).
    const learned = (cluster: Cluster): (number | undefined)[] =>
      TYPES.map((type) => cluster.api.baselines.current().book.get(TENANT, type)?.tasks);
    expect(learned(one).every((tasks) => tasks !== undefined && tasks >= WARMUP)).toBe(true);
    expect(learned(three)).toEqual(learned(one));
    // No processor saved a baseline of its own: the stored rows are the learner's.
    const stored = await three.store.loadBaselines(TENANT);
    expect(TYPES.map((type) => stored.find((r) => r.taskType === type && r.agentId === '')?.tasks)).toEqual(
      learned(three),
    );
  });

  it('gives every task of the stream the same verdict, with a rebalance in the middle', async () => {
    const single = await verdicts(one, stream);
    const many = await verdicts(three, stream);
    expect(single.size).toBe(stream.length);
    expect(many).toEqual(single);
    // The stream has both outcomes, so equal verdicts are not all-allow.
    expect([...single.values()].some((verdict) => verdict.startsWith('completed/allow'))).toBe(true);
    expect([...single.values()].some((verdict) => !verdict.endsWith('/allow'))).toBe(true);
    // The third processor really left: the other two own every partition.
    expect(three.processors.slice(0, 2).reduce((sum, p) => sum + p.source.assignedPartitions().length, 0)).toBe(6);
  });

  it('a false-positive mark changes the next verdict on every processor', async () => {
    // Three processors again (another rebalance); each scores against the book in force.
    three.processors[2] = await startProcessorService(three.config, {
      kafka: three.settings,
      store: three.store,
      logger,
    });
    await waitForPartitions(three);
    await waitForVersion(three, versions.three);

    const first = translating('translate-1', 71);
    await runFleet({ endpoint: three.gateway.otlpUrl, plans: [first], token: TEST_AGENT_TOKEN });
    await waitForEnded(three, [first]);
    const alerts = await three.store.listAlerts({ tenant: TENANT, taskId: first.taskId, limit: 10 });
    expect(alerts.items.map((alert) => alert.decision)).toContain('alert');
    expect((await verdicts(three, [first])).get(first.taskId)).toBe('completed/alert');

    const response = await fetch(`${three.api.apiUrl}/v1/alerts/${alerts.items[0]?.id ?? ''}/false-positive`, {
      method: 'POST',
      headers: { ...adminHeaders, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'translating a ticket is part of the job' }),
    });
    expect(response.status).toBe(201);
    // The learner publishes at once (no rebuild was asked for here); every processor swaps the new book in.
    const marked = await waitFor(
      'a book that learned the mark',
      () => {
        const { book, version } = three.api.baselines.current();
        return book.get(TENANT, 'summarize_ticket')?.falsePositivesLearned === 1 ? version : undefined;
      },
      30_000,
    );
    expect(marked).toBeGreaterThan(versions.three);
    await waitForVersion(three, marked);
    for (const p of three.processors)
      expect(p.processor.baselines().get(TENANT, 'summarize_ticket')?.falsePositivesLearned).toBe(1);

    // The same behaviour again, until every processor has scored one: none alerts.
    const scoredBy = new Set<number>();
    const again: TaskPlan[] = [];
    for (let round = 0; round < 8 && scoredBy.size < three.processors.length; round += 1) {
      const plans = Array.from({ length: 6 }, (_, i) => translating(`translate-${String(round)}-${String(i)}`, 80 + i));
      await runFleet({ endpoint: three.gateway.otlpUrl, plans, token: TEST_AGENT_TOKEN });
      await waitForEnded(three, plans);
      again.push(...plans);
      for (const plan of plans)
        three.processors.forEach((p, index) => {
          if (p.processor.taskSnapshot(TENANT, plan.taskId) !== undefined) scoredBy.add(index);
        });
    }
    expect(scoredBy.size).toBe(3);
    const after = await verdicts(three, again);
    expect([...after.values()]).toEqual(again.map(() => 'completed/allow'));
  }, 300_000);
});
