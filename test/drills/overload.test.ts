/**
 * Drill: sustained overload at twice the capacity, in the two deployments, both writing to a ClickHouse server
 * (test/drills/clickhouse-server.ts): the distributed mode as deployed (the gateway and a processor each in its
 * own process, `node services/app/gateway-main.ts` and `processor-main.ts`, on the real broker: Kafka holds what the
 * processor has not consumed yet), and the embedded mode (`node services/app/main.ts`: the in-process bus, whose
 * capacity is what ingest answers 429 past).
 *
 *   1. Capacity: agents export as fast as they are answered (closed loop) for a few seconds; the capacity is the
 *      rate the pipeline stores events at (or the rate ingest takes them, if lower).
 *   2. Overload: for DRILL_OVERLOAD_SECONDS (default 10; 60 in `node scripts/drills.ts`) new spans arrive at twice
 *      that rate, open loop, into agents shaped like the OpenTelemetry SDK's batch processor: a bounded queue per
 *      agent (spans beyond it are dropped by the agent, never sent), one export in flight, 429/503 retried after
 *      Retry-After. The processes' memory is sampled throughout.
 *   3. Recovery: arrivals stop; the agents send what they hold; the pipeline works off its backlog.
 *
 * Asserted: every refusal is a 429 or 503 with Retry-After, no other error and no connection failure; memory stays
 * under a fixed bound; after recovery stored == sent (acknowledged), no duplicates. Time to recover: from the end
 * of the overload until every acknowledged event is stored.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaBrokers } from '../helpers/kafka-broker.ts';
import {
  Ledger,
  concludeDrill,
  drillEnv,
  drillRunId,
  exportUntilAcknowledged,
  openAuditClient,
  postTraces,
  seconds,
  storedEvents,
  taskExport,
  waitUntilStored,
} from './helpers.ts';
import type { TaskExport } from './helpers.ts';
import { freePort, startClickHouseServer, startService } from './processes.ts';
import type { ClickHouseServer, ServiceProcess } from './processes.ts';

const OVERLOAD_SECONDS = Number(process.env.DRILL_OVERLOAD_SECONDS ?? '10');
const WARMUP_MS = 3000;
const CALIBRATION_MS = 5000;
const AGENTS = 48;
const EVENTS_PER_TASK = 30;
/** Spans an agent holds before it drops new ones (the OpenTelemetry SDK's default maxQueueSize is 2048). */
const AGENT_QUEUE_EVENTS = 2048;
/**
 * The processes run with their JavaScript heap capped at HEAP_LIMIT_MIB: memory that grew with the load would
 * end them (out of memory) within the overload; and their resident memory must stay under MEMORY_BOUND_BYTES.
 */
const HEAP_LIMIT_MIB = 1024;
const MEMORY_BOUND_BYTES = 1.5 * 1024 * 1024 * 1024;
const HEAP_LIMIT = { NODE_OPTIONS: `--max-old-space-size=${HEAP_LIMIT_MIB}` };
/** The embedded bus's capacity: small, so that a short overload fills it (ingest then answers 429). */
const EMBEDDED_BUS_CAPACITY = 5000;

interface Load {
  ledger: Ledger;
  generated: number;
  dropped: number;
  /** Slowest answer to one export attempt (ms). */
  slowestMs: number;
  stop(): Promise<void>;
}

/**
 * Agents with a bounded queue each. `rate` events per second arrive (open loop) when given; without it every
 * agent always has a task to send (closed loop: as fast as answered).
 */
function startLoad(target: string, ledger: Ledger, rate: number | undefined, prefix: string): Load {
  const queues: TaskExport[][] = Array.from({ length: AGENTS }, () => []);
  let running = true;
  let sequence = 0;
  const load: Load = { ledger, generated: 0, dropped: 0, slowestMs: 0, stop: () => Promise.resolve() };
  const nextTask = (agent: number): TaskExport => {
    sequence += 1;
    load.generated += EVENTS_PER_TASK;
    return taskExport({
      taskId: `${prefix}-${sequence}`,
      agentId: `${prefix}-agent-${agent}`,
      events: EVENTS_PER_TASK,
    });
  };
  const timed = (): string => target;
  const arrivals = (async () => {
    if (rate === undefined) return;
    const startedAt = Date.now();
    let agent = 0;
    while (running) {
      const due = Math.floor(((Date.now() - startedAt) / 1000) * rate) - load.generated - load.dropped;
      for (let n = 0; n + EVENTS_PER_TASK <= due; n += EVENTS_PER_TASK) {
        agent = (agent + 1) % AGENTS;
        const queue = queues[agent] ?? [];
        if ((queue.length + 1) * EVENTS_PER_TASK > AGENT_QUEUE_EVENTS) {
          load.dropped += EVENTS_PER_TASK;
          continue;
        }
        queue.push(nextTask(agent));
      }
      await sleep(20);
    }
  })();
  const senders = queues.map(async (queue, agent) => {
    while (running || queue.length > 0) {
      const task = rate === undefined ? (running ? nextTask(agent) : undefined) : queue.shift();
      if (task === undefined) {
        if (rate === undefined) break;
        await sleep(5);
        continue;
      }
      const started = Date.now();
      await exportUntilAcknowledged(timed, task, ledger, { maxWaitMs: 5000, deadlineMs: 600_000 });
      load.slowestMs = Math.max(load.slowestMs, Date.now() - started);
    }
  });
  load.stop = async () => {
    running = false;
    await arrivals;
    await Promise.all(senders);
  };
  return load;
}

/** Calibrates, overloads, recovers; asserts and records the figures. */
async function overloadDrill(
  name: string,
  otlpUrl: string,
  audit: ClickHouseClient,
  database: string,
  processes: Record<string, ServiceProcess>,
  prefix: string,
): Promise<void> {
  const ledger = new Ledger();
  // 1. Capacity: the steady rates of a closed loop, after a warm-up.
  const calibration = startLoad(otlpUrl, ledger, undefined, `${prefix}-calibration`);
  await sleep(WARMUP_MS);
  const from = { at: Date.now(), acked: ledger.acked.size, stored: await storedEvents(audit, database, prefix) };
  await sleep(CALIBRATION_MS);
  const elapsed = (Date.now() - from.at) / 1000;
  const ackedRate = (ledger.acked.size - from.acked) / elapsed;
  const storedRate = ((await storedEvents(audit, database, prefix)) - from.stored) / elapsed;
  await calibration.stop();
  const capacity = Math.max(EVENTS_PER_TASK, Math.round(Math.min(ackedRate, storedRate)));
  await waitUntilStored(audit, database, ledger.acked, { prefix, timeoutMs: 600_000 });

  // 2. Overload at twice the capacity, memory sampled.
  const peaks = new Map<string, number>();
  const sample = (): void => {
    for (const [role, child] of Object.entries(processes))
      peaks.set(role, Math.max(peaks.get(role) ?? 0, child.rssBytes() ?? 0));
  };
  const sampler = setInterval(sample, 250);
  const refusedBefore = ledger.refusals();
  const overload = startLoad(otlpUrl, ledger, 2 * capacity, `${prefix}-overload`);
  await sleep(OVERLOAD_SECONDS * 1000);
  const overloadEndedAt = Date.now();
  for (const [role, child] of Object.entries(processes))
    expect(child.running(), `the ${role} survived the overload`).toBe(true);
  await overload.stop();
  const recoveredAt = await waitUntilStored(audit, database, ledger.acked, { prefix, timeoutMs: 600_000 });
  clearInterval(sampler);
  sample();
  const fresh = await postTraces(
    otlpUrl,
    taskExport({ taskId: `after-the-overload-${prefix}`, agentId: 'probe-agent', events: 3 }).body,
  );

  const mib = (bytes: number): string => `${Math.round(bytes / 1024 / 1024)} MiB`;
  await concludeDrill({
    drill: name,
    client: audit,
    database,
    ledger,
    prefix,
    recoverMs: recoveredAt - overloadEndedAt,
    details:
      `capacity ${capacity} events/s (ingest ${Math.round(ackedRate)}/s, stored ${Math.round(storedRate)}/s); offered ${2 * capacity}/s for ${OVERLOAD_SECONDS} s: ` +
      `${ledger.refusals() - refusedBefore} answers 429/503 (${ledger.count(429)} × 429), all with Retry-After; ${overload.dropped} events dropped by full agent queues (never sent); ` +
      `slowest export ${seconds(overload.slowestMs)}; peak resident memory (heap capped at ${HEAP_LIMIT_MIB} MiB) ${[...peaks].map(([role, bytes]) => `${role} ${mib(bytes)}`).join(', ')}`,
  });
  expect(ledger.refusedWithoutRetryAfter).toBe(0);
  expect(ledger.networkErrors).toBe(0);
  expect([...ledger.answers.keys()].filter((status) => ![200, 429, 503].includes(status))).toEqual([]);
  for (const [role, bytes] of peaks) expect(bytes, `peak memory of the ${role}`).toBeLessThan(MEMORY_BOUND_BYTES);
  expect(fresh.status).toBe(200);
}

describe('drill: sustained overload at twice the capacity', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-drill-overload-'));
  let server: ClickHouseServer;
  let audit: ClickHouseClient;
  const running: ServiceProcess[] = [];

  beforeAll(async () => {
    server = await startClickHouseServer(dataDir);
    audit = openAuditClient({ url: server.url });
  }, 180_000);

  afterAll(async () => {
    await Promise.all(running.map((child) => child.signal('SIGKILL')));
    await audit.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it(`distributed: gateway and processor processes on the real broker, ${OVERLOAD_SECONDS} s at twice the capacity`, async () => {
    const port = await freePort();
    const env = drillEnv({
      brokers: kafkaBrokers(),
      run: drillRunId(),
      dataDir: join(dataDir, 'distributed'),
      database: 'drill_overload_kafka',
      extra: { ...HEAP_LIMIT, CLICKHOUSE_URL: server.url, TRIPLINE_OTLP_PORT: String(port) },
    });
    const processor = await startService('processor', env);
    running.push(processor);
    const gateway = await startService('gateway', env);
    running.push(gateway);
    await overloadDrill(
      `Overload at 2× capacity for ${OVERLOAD_SECONDS} s (distributed)`,
      `http://127.0.0.1:${port}`,
      audit,
      'drill_overload_kafka',
      { gateway, processor },
      'load-kafka',
    );
    await Promise.all([gateway.signal('SIGTERM'), processor.signal('SIGTERM')]);
  }, 900_000);

  it(`embedded: one process, the in-process bus (capacity ${EMBEDDED_BUS_CAPACITY} events), ${OVERLOAD_SECONDS} s at twice the capacity`, async () => {
    const port = await freePort();
    const { KAFKA_BROKERS: _distributedOnly, ...env } = drillEnv({
      brokers: [],
      run: drillRunId(),
      dataDir: join(dataDir, 'embedded'),
      // A database of its own: at start the embedded processor rebuilds every active task it finds.
      database: 'drill_overload_embedded',
      extra: {
        ...HEAP_LIMIT,
        CLICKHOUSE_URL: server.url,
        TRIPLINE_OTLP_PORT: String(port),
        TRIPLINE_BUS_CAPACITY: String(EMBEDDED_BUS_CAPACITY),
      },
    });
    const tripline = await startService('all', env);
    running.push(tripline);
    await overloadDrill(
      `Overload at 2× capacity for ${OVERLOAD_SECONDS} s (embedded)`,
      `http://127.0.0.1:${port}`,
      audit,
      'drill_overload_embedded',
      { tripline },
      'load-embedded',
    );
    await tripline.signal('SIGTERM');
  }, 900_000);
});
