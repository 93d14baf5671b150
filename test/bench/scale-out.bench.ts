/**
 * Scale-out of the processors: 1, then 2, then 3 processor processes (`node services/app/processor-main.ts`, as
 * the docker-compose `processor` command runs it) in one consumer group over the same span topics (6 partitions),
 * sharing one ClickHouse (the drills' stand-in, test/drills/clickhouse-server.ts, reached through CLICKHOUSE_URL).
 * It shows whether the CPU per event stays flat as processors are added.
 *
 *   KAFKA_PORT=39492 bash test/kafka/broker.sh start
 *   KAFKA_BROKERS=127.0.0.1:39492 node test/bench/scale-out.bench.ts [spans=200000]   # Node 24 from node_modules
 *   BENCH_PROCESSORS=1,3 KAFKA_BROKERS=… node test/bench/scale-out.bench.ts            # only some counts
 *   BENCH_PROCESSOR_ENV=TRIPLINE_STORE_WRITE_LINGER_MS=1000,TRIPLINE_BATCH_SIZE=5000 …  # processor settings
 *
 * Per count k: fresh topics, consumer group and database; k processors started one after another (each migrates
 * the database, then joins the group) and left until every one owns partitions and the group has been quiet for
 * a few seconds; then this process publishes the spans (100 per OTLP request, five requests per task, each
 * request its own trace, so records spread over all partitions) while the processors consume. The run ends when
 * the group's committed offsets reach the end of every span partition (a processor commits after its write), and
 * the store must then hold exactly the events published, read with FINAL, without duplicates.
 *
 * CPU-seconds are user + system time of each process from /proc (all threads), from just before the first span
 * is published to the end (the bench reads the store only after it); the stand-in's figure includes its engine's
 * background merges. A processor's share is the records on the partitions it owned (no rebalance happens in the window; the
 * bench says so if one does). Peak RSS is each processor's VmHWM, start-up included.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Admin } from 'kafkajs';
import { spanTopics } from '../../services/bus/kafka/config.ts';
import type { KafkaSettings } from '../../services/bus/kafka/config.ts';
import { createLogger } from '../../services/shared/logger.ts';
import { waitFor } from '../helpers/wait.ts';
import { plainKafka } from '../integration/kafka/fixtures.ts';
import { drillConfig, drillEnv, drillRunId, openAuditClient } from '../drills/helpers.ts';
import { startClickHouseServer, startService } from '../drills/processes.ts';
import type { ClickHouseServer, ServiceProcess } from '../drills/processes.ts';
import {
  SPANS_PER_REQUEST,
  startBenchPublisher,
  cpuSecondsOf,
  kafkaBrokerPid,
  memoryOf,
  otlpRequests,
  publishRequests,
  benchBrokers,
} from './bench-util.ts';

const PARTITIONS = 6;
/** The group must be quiet (no new assignment logged) this long before the clock starts. */
const SETTLE_MS = 3_000;
const logger = createLogger('error', 'scale-out-bench');
/** Settings given to every processor (BENCH_PROCESSOR_ENV=NAME=value,NAME=value). */
const processorEnv: Record<string, string> = Object.fromEntries(
  (process.env.BENCH_PROCESSOR_ENV ?? '')
    .split(',')
    .map((pair) => pair.trim())
    .filter((pair) => pair.includes('='))
    .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
);
const brokers = benchBrokers('scale-out.bench');

const fmt = (value: number, digits = 0): string =>
  value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** CPU seconds of a process, or NaN once it is gone. */
function cpuOf(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    return cpuSecondsOf(pid);
  } catch {
    return Number.NaN;
  }
}

/** Every assignment a processor logged (`joined the processor group`), oldest first. */
function assignmentsOf(processor: ServiceProcess): number[][] {
  return processor
    .output()
    .split('\n')
    .filter((line) => line.includes('joined the processor group') || line.includes('left the processor group'))
    .map((line) => (JSON.parse(line) as { partitions: number[] }).partitions);
}

/** The group is settled: each processor owns partitions, and together they own each partition number once. */
function settled(processors: readonly ServiceProcess[]): boolean {
  const owned = processors.map((processor) => assignmentsOf(processor).at(-1) ?? []);
  const all = owned.flat();
  return (
    owned.every((partitions) => partitions.length > 0) && all.length === PARTITIONS && new Set(all).size === PARTITIONS
  );
}

/** Records per partition number over the span topics (fresh topics: the end offset is the count). */
async function recordsPerPartition(admin: Admin, settings: KafkaSettings): Promise<number[]> {
  const counts = Array.from({ length: PARTITIONS }, () => 0);
  for (const topic of spanTopics(settings.topics))
    for (const { partition, high } of await admin.fetchTopicOffsets(topic))
      counts[partition] = (counts[partition] ?? 0) + Number(high);
  return counts;
}

/** Records the group has committed over the span topics (it commits after the store took them). */
async function committedRecords(admin: Admin, settings: KafkaSettings): Promise<number> {
  let committed = 0;
  const answer = await admin.fetchOffsets({ groupId: settings.groupId, topics: spanTopics(settings.topics) });
  for (const { partitions } of answer) for (const { offset } of partitions) committed += Math.max(0, Number(offset));
  return committed;
}

interface Row {
  processors: number;
  spans: number;
  events: number;
  stored: number;
  duplicates: number;
  wallSeconds: number;
  processorCpu: number[];
  standInCpu: number;
  brokerCpu: number;
  shares: number[];
  peakRssMiB: number[];
  rebalancedInWindow: boolean;
  /** Inserts into the events table (its highest block number: each insert takes the next one). */
  eventInserts: number;
  /** Assignments, warnings and errors the processors logged in the window. */
  notes: string[];
}

async function runWith(
  k: number,
  totalSpans: number,
  server: ClickHouseServer,
  audit: ClickHouseClient,
  dataDir: string,
  live: Set<ServiceProcess>,
): Promise<Row> {
  const run = drillRunId();
  const database = `scale_out_${run}`;
  // The drills' environment with Kafka's group timings left at Tripline's defaults (the drills shorten them to
  // notice a dead processor fast; on a loaded machine that also evicts a busy one).
  const {
    TRIPLINE_KAFKA_SESSION_TIMEOUT_MS: _session,
    TRIPLINE_KAFKA_HEARTBEAT_INTERVAL_MS: _heartbeat,
    TRIPLINE_KAFKA_REBALANCE_TIMEOUT_MS: _rebalance,
    ...env
  } = drillEnv({
    brokers,
    run: `scale-${run}`,
    dataDir,
    database,
    partitions: PARTITIONS,
    extra: { CLICKHOUSE_URL: server.url, ...processorEnv },
  });
  const { kafka: settings } = drillConfig(env);
  const processors: ServiceProcess[] = [];
  // One after another: each migrates the database before it joins the group.
  for (let i = 0; i < k; i += 1) {
    const processor = await startService('processor', { ...env, CLICKHOUSE_USER: `processor-${String(i + 1)}` });
    live.add(processor);
    processors.push(processor);
  }
  await waitFor(
    `${String(k)} processors to share the ${String(PARTITIONS)} partitions`,
    () => settled(processors),
    120_000,
  );
  // Quiet for SETTLE_MS: no assignment logged since.
  for (let seen = -1; ;) {
    const now = processors.reduce((sum, processor) => sum + assignmentsOf(processor).length, 0);
    if (now === seen && settled(processors)) break;
    seen = now;
    await sleep(SETTLE_MS);
  }
  const assignmentsAtStart = processors.map((processor) => assignmentsOf(processor).length);
  const outputAtStart = processors.map((processor) => processor.output().length);

  const requests = otlpRequests(Math.max(10, Math.round(totalSpans / SPANS_PER_REQUEST)), `scale-${run}`);
  const publisher = await startBenchPublisher(settings, logger, 'bench-fill');
  const kafka = plainKafka(brokers);
  const admin = kafka.admin();
  await admin.connect();
  try {
    const broker = kafkaBrokerPid(brokers);
    const standInPid = server.process().pid;
    const cpu0 = processors.map((processor) => cpuOf(processor.pid));
    const standIn0 = cpuOf(standInPid);
    const broker0 = cpuOf(broker);
    const t0 = performance.now();
    const startedAt = Date.now();
    const events = await publishRequests(publisher, requests);
    await publisher.close();
    const perPartition = await recordsPerPartition(admin, settings);
    const records = perPartition.reduce((sum, count) => sum + count, 0);
    await waitFor(
      'the group to commit every record',
      async () => {
        for (const processor of processors)
          if (!processor.running()) throw new Error(`a processor exited:\n${processor.output().slice(-2000)}`);
        return (await committedRecords(admin, settings)) >= records;
      },
      1_800_000,
      250,
    );
    const wallSeconds = (performance.now() - t0) / 1000;
    const processorCpu = processors.map((processor, i) => cpuOf(processor.pid) - (cpu0[i] ?? Number.NaN));
    const standInCpu = cpuOf(standInPid) - standIn0;
    const brokerCpu = cpuOf(broker) - broker0;
    const peakRssMiB = processors.map((processor) => memoryOf(processor.pid).peakRssMiB);
    const rebalancedInWindow = processors.some(
      (processor, i) => assignmentsOf(processor).length !== assignmentsAtStart[i],
    );
    const shares = processors.map(
      (processor) =>
        (assignmentsOf(processor).at(-1) ?? []).reduce((sum, partition) => sum + (perPartition[partition] ?? 0), 0) /
        Math.max(1, records),
    );

    // Every event once: committed means written, so the count must be exact now (FINAL collapses replays).
    const result = await audit.query({
      query: `SELECT count() AS rows, uniqExact(id) AS ids FROM ${database}.events FINAL`,
      format: 'JSONEachRow',
    });
    const [counts] = await result.json<{ rows: number; ids: number }>();
    const parts = await audit.query({
      query: `SELECT max(max_block_number) AS inserts FROM system.parts WHERE database = {database:String} AND table = 'events'`,
      query_params: { database },
      format: 'JSONEachRow',
    });
    const eventInserts = (await parts.json<{ inserts: number }>())[0]?.inserts ?? 0;
    const notes = processors.flatMap((processor, i) =>
      processor
        .output()
        .slice(outputAtStart[i] ?? 0)
        .split('\n')
        .filter((line) => /"level":[4-6]\d|processor group/.test(line))
        .map((line) => {
          const entry = JSON.parse(line) as { time?: number; msg?: string; err?: string; error?: string };
          const at = ((entry.time ?? 0) - startedAt) / 1000;
          return `+${fmt(at, 1)} s processor ${String(i + 1)}: ${entry.msg ?? ''} ${(entry.err ?? entry.error ?? '').slice(0, 120)}`;
        }),
    );
    const stored = counts?.ids ?? 0;
    const duplicates = (counts?.rows ?? 0) - stored;
    if (stored !== events || duplicates !== 0)
      console.error(
        `   k=${String(k)}: the store holds ${fmt(stored)} distinct events (${fmt(duplicates)} duplicates) of ${fmt(events)} published`,
      );
    return {
      processors: k,
      spans: requests.length * SPANS_PER_REQUEST,
      events,
      stored,
      duplicates,
      wallSeconds,
      processorCpu,
      standInCpu,
      brokerCpu,
      shares,
      peakRssMiB,
      rebalancedInWindow,
      eventInserts,
      notes,
    };
  } finally {
    await admin.disconnect();
    await publisher.close().catch(() => undefined);
    await Promise.all(processors.map((processor) => processor.signal('SIGTERM')));
    for (const processor of processors) live.delete(processor);
    // Its parts would go on merging in the next count's window.
    await audit.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  }
}

function report(row: Row): void {
  const per10k = (seconds: number): number => (seconds / row.events) * 10_000;
  const total = row.processorCpu.reduce((sum, seconds) => sum + seconds, 0);
  console.log(
    `k=${String(row.processors)}: ${fmt(row.events)} events (${fmt(row.spans)} spans) in ${fmt(row.wallSeconds, 1)} s = ${fmt(row.events / row.wallSeconds)} events/s; stored ${fmt(row.stored)}, ${fmt(row.duplicates)} duplicates${row.rebalancedInWindow ? '; THE GROUP REBALANCED IN THE WINDOW' : ''}`,
  );
  console.log(
    `   processors ${fmt(per10k(total), 3)} CPU-s per 10k events (each: ${row.processorCpu.map((seconds) => fmt(per10k(seconds), 3)).join(' / ')}); stand-in store ${fmt(per10k(row.standInCpu), 3)}; broker JVM ${fmt(per10k(row.brokerCpu), 3)}`,
  );
  console.log(
    `   share of records ${row.shares.map((share) => `${fmt(share * 100, 1)}%`).join(' / ')}; peak RSS ${row.peakRssMiB.map((mib) => `${fmt(mib)} MiB`).join(' / ')}; ${fmt(row.eventInserts)} inserts into events (${fmt(row.events / Math.max(1, row.eventInserts))} events each)`,
  );
  for (const note of row.notes.slice(0, 12)) console.log(`   ${note}`);
}

function table(rows: readonly Row[]): void {
  const per10k = (row: Row, seconds: number): number => (seconds / row.events) * 10_000;
  const processorsOf = (row: Row): number =>
    per10k(
      row,
      row.processorCpu.reduce((sum, seconds) => sum + seconds, 0),
    );
  const base = rows.find((row) => row.processors === 1) ?? rows[0];
  console.log(
    '\n| processors | wall s | events/s | CPU-s/10k events, all processors | per processor | stand-in store | broker JVM | vs k=1 | share of records | peak RSS MiB | events per insert |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const row of rows)
    console.log(
      `| ${String(row.processors)} | ${fmt(row.wallSeconds, 1)} | ${fmt(row.events / row.wallSeconds)} | ${fmt(processorsOf(row), 3)} | ${row.processorCpu.map((seconds) => fmt(per10k(row, seconds), 3)).join(' / ')} | ${fmt(per10k(row, row.standInCpu), 3)} | ${fmt(per10k(row, row.brokerCpu), 3)} | ${base === undefined ? '—' : fmt(processorsOf(row) / processorsOf(base), 2)} | ${row.shares.map((share) => `${fmt(share * 100)}%`).join(' / ')} | ${row.peakRssMiB.map((mib) => fmt(mib)).join(' / ')} | ${fmt(row.events / Math.max(1, row.eventInserts))} |`,
    );
}

const totalSpans = Number(process.argv[2] ?? 200_000);
const counts = (process.env.BENCH_PROCESSORS ?? '1,2,3').split(',').map((count) => Number(count.trim()));
console.log(
  `scale-out.bench: brokers ${brokers.join(',')}, ${fmt(totalSpans)} spans per run over ${String(PARTITIONS)} partitions, processors ${counts.join(', ')}${Object.keys(processorEnv).length > 0 ? `; processor settings ${JSON.stringify(processorEnv)}` : ''}`,
);
const dataDir = mkdtempSync(join(tmpdir(), 'tripline-scale-out-'));
const live = new Set<ServiceProcess>();
let server: ClickHouseServer | undefined;
let audit: ClickHouseClient | undefined;
try {
  server = await startClickHouseServer(dataDir);
  audit = openAuditClient({ url: server.url });
  const rows: Row[] = [];
  for (const k of counts) {
    const row = await runWith(k, totalSpans, server, audit, dataDir, live);
    report(row);
    rows.push(row);
  }
  table(rows);
  if (rows.some((row) => row.stored !== row.events || row.duplicates !== 0)) process.exitCode = 1;
} finally {
  await Promise.all([...live].map((processor) => processor.signal('SIGKILL')));
  await audit?.close();
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
