/**
 * Tripline's gateway vs the upstream OpenTelemetry Collector at the same job (issue 7, claim 2): OTLP/HTTP
 * protobuf in, the three span kinds out to the three Kafka topics, on the same machine, broker, topics and
 * payload files.
 *
 *   bash collectors/otelcol/build.sh            # once: the collector binary (cached outside the repository)
 *   node test/bench/gateway-vs-collector.bench.ts
 *
 * Systems under test (each a fresh process per run, pinned with `taskset -c 1`):
 *   collector     otelcol built from collectors/otelcol/builder.yaml, run with collectors/otelcol/config.yaml
 *   gateway       Tripline's gateway as users run it: `node services/app/gateway-main.ts` (fastify)
 *   gateway-http  the same decoder, classification and Kafka publisher behind bare `node:http`
 *                 (test/bench/bare-http-gateway.ts), to see what fastify costs
 * The load generator (test/bench/load-generator.ts), this orchestrator and the broker (unless KAFKA_BROKERS
 * points elsewhere) are pinned to core 0. Payloads: protobuf files of 100 spans each, made at start by
 * test/bench/payloads/generate.ts in a temp dir (GenAI/MCP/OpenInference/OpenLLMetry tool calls, database
 * and HTTP data access, privilege changes; ~580 bytes/span).
 *
 * Each run: fresh topics; start the SUT; warm up at the run's load for BENCH_WARMUP_SECONDS; wait until Kafka
 * holds every warm-up span; read the SUT's CPU (/proc/<pid>/stat utime+stime); offer the load for BENCH_SECONDS;
 * wait until Kafka holds every accepted span (or 20 s without progress); read CPU and peak RSS (VmHWM); stop the
 * SUT. Spans are counted on the topics by a consumer in this process (a protobuf walk, no decode).
 * The warm-up is long (30 s) because a gateway is a long-running process and the figure wanted is its steady
 * state: at 2,000 spans/s V8 keeps compiling the gateway's code for ~40 s after start (perf showed its compiler
 * threads at 10% of the process's CPU in the first 20 s, 5% in the third), and its CPU per span falls ~25% in
 * that time. A compiled collector has no such phase. The warm-up's own cost is printed too ("first s"), so the
 * start-up phase is not hidden.
 *   spans/s        spans answered 200 per second of the measured window
 *   loss           spans offered but not on Kafka (non-200 answers, transport errors, or accepted and lost)
 *   CPU-s/10k      SUT CPU seconds per 10,000 spans accepted (includes exporting them to Kafka)
 *   first s        the same during the warm-up: the SUT's first BENCH_WARMUP_SECONDS of work after it first answered
 *   peak RSS       VmHWM of the SUT process
 *   p50/p99        request latency from the scheduled start (open loop: no coordinated omission)
 * Fixed offered loads (BENCH_LOADS), then "sustained": the offered load raised ×1.5 from the highest fixed load
 * until a run is not clean (any loss, < 97% of the offered rate achieved, or 256 requests outstanding at once),
 * and "saturation": closed loop with BENCH_CONCURRENCY requests outstanding.
 *
 * Environment: BENCH_SECONDS (10), BENCH_WARMUP_SECONDS (30), BENCH_LOADS (2000,5000,10000,20000),
 * BENCH_SUTS (collector,gateway,gateway-http), BENCH_CONCURRENCY (32), BENCH_SUSTAINED (1; 0 skips the search),
 * BENCH_GATEWAY_COMPRESSION (zstd: the codec config.yaml gives the collector's kafka exporter),
 * BENCH_SATURATION (1; 0 skips the closed-loop run), BENCH_PRODUCER (1: the gateway's producer batching sweep;
 * 0 skips), BENCH_PROFILE (1: a --cpu-prof of the gateway at each of BENCH_PROFILE_RATES, summarized),
 * BENCH_PROFILE_RATES (10000; spans/s, comma-separated), BENCH_OUT (a directory for results.json and logs),
 * KAFKA_BROKERS, TRIPLINE_OTELCOL_BIN, TRIPLINE_OTELCOL_CONFIG.
 * A quick look at the low rates only:
 *   BENCH_LOADS=2000,5000 BENCH_SUTS=collector,gateway BENCH_SUSTAINED=0 BENCH_SATURATION=0 BENCH_PRODUCER=0 \
 *     BENCH_PROFILE=0 node test/bench/gateway-vs-collector.bench.ts
 * Raw kafkajs throughput at several batch sizes is test/bench/kafka.bench.ts (section 1), not repeated here.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import type { Consumer } from 'kafkajs';
import { registerKafkaCodecs } from '../../services/bus/kafka/codecs.ts';
import { startBroker, stopBroker, waitForBroker } from '../helpers/kafka-broker.ts';
import type { BrokerEnv } from '../helpers/kafka-broker.ts';
import { otelcolBinary, otelcolCollectorEnv, otelcolVersion, startOtelcol } from '../helpers/otelcol.ts';
import { freePort } from '../helpers/tripline-process.ts';
import { canPin, countOtlpSpans, cpuSecondsOf, memoryOf, pinProcess } from './bench-util.ts';
import { formatSummary, summarize } from './cpuprofile-summary.ts';
import type { LoadResult } from './load-generator.ts';
import { generatePayloads } from './payloads/generate.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LOAD_GENERATOR = fileURLToPath(new URL('./load-generator.ts', import.meta.url));
const BARE_GATEWAY = fileURLToPath(new URL('./bare-http-gateway.ts', import.meta.url));
const GATEWAY_MAIN = join(ROOT, 'services', 'app', 'gateway-main.ts');
/** The agent token the load generator sends (the collector ignores it). */
const BENCH_AGENT_TOKEN = 'bench-agent-token-0123456789abcdef';

const num = (name: string, fallback: number): number => {
  const value = process.env[name];
  return value === undefined || value.trim() === '' ? fallback : Number(value);
};
const SECONDS = num('BENCH_SECONDS', 10);
const WARMUP_SECONDS = num('BENCH_WARMUP_SECONDS', 30);
const LOADS = (process.env.BENCH_LOADS ?? '2000,5000,10000,20000')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const CONCURRENCY = num('BENCH_CONCURRENCY', 32);
const SUTS = (process.env.BENCH_SUTS ?? 'collector,gateway,gateway-http').split(',').map((s) => s.trim()) as SutName[];
const SUSTAINED = num('BENCH_SUSTAINED', 1) === 1;
const PRODUCER = num('BENCH_PRODUCER', 1) === 1;
const PROFILE = num('BENCH_PROFILE', 1) === 1;
const PROFILE_RATES = (process.env.BENCH_PROFILE_RATES ?? '10000')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const SATURATION = num('BENCH_SATURATION', 1) === 1;
const PARTITIONS = 6;
/** Kafka compression of the Tripline gateways: by default the codec collectors/otelcol/config.yaml gives the collector. */
const GATEWAY_COMPRESSION = process.env.BENCH_GATEWAY_COMPRESSION ?? 'zstd';

type SutName = 'collector' | 'gateway' | 'gateway-http';
const LABEL: Record<SutName, string> = {
  collector: `otelcol ${otelcolVersion()}`,
  gateway: 'Tripline gateway (fastify)',
  'gateway-http': 'Tripline gateway (node:http)',
};

interface Topics {
  tool_call: string;
  data_access: string;
  privilege_change: string;
}

interface RunningSut {
  pid: number;
  url: string;
  stop(): Promise<void>;
  log(): string;
}

interface Row {
  sut: SutName;
  variant: string;
  mode: 'rate' | 'concurrency';
  offered: number | null;
  concurrency: number | null;
  achieved: number;
  spansSent: number;
  spansOk: number;
  spansOnKafka: number;
  loss: number;
  non200: number;
  behindSchedule: number;
  cpuPer10k: number;
  /** CPU-s per 10k spans during the warm-up, from when the SUT first answered. */
  warmupCpuPer10k: number;
  peakRssMiB: number;
  p50: number;
  p99: number;
  loadGenCpuShare: number;
  brokerCpuShare: number;
  clean: boolean;
}

const log = (message: string): void => {
  process.stderr.write(`${message}\n`);
};

// ---------------------------------------------------------------------------------------------------------
// Counting spans on the topics

interface TopicCounter {
  spans(): number;
  /** Waits until `target` spans were counted, or `idleMs` passed without any progress; returns the count. */
  waitFor(target: number, idleMs?: number): Promise<number>;
  stop(): Promise<void>;
}

async function startTopicCounter(brokers: string[], topics: Topics): Promise<TopicCounter> {
  // The collector's config.yaml (and a gateway set to zstd) write ZSTD batches: kafkajs needs the codec to read them.
  registerKafkaCodecs();
  const kafka = new Kafka({ clientId: 'bench-counter', brokers, logLevel: logLevel.NOTHING });
  const consumer: Consumer = kafka.consumer({
    groupId: `bench-counter-${randomBytes(4).toString('hex')}`,
    maxWaitTimeInMs: 100,
    sessionTimeout: 30_000,
  });
  const state = { spans: 0, joined: false };
  consumer.on(consumer.events.GROUP_JOIN, () => (state.joined = true));
  await consumer.connect();
  await consumer.subscribe({
    topics: [topics.tool_call, topics.data_access, topics.privilege_change],
    fromBeginning: true,
  });
  await consumer.run({
    partitionsConsumedConcurrently: 3,
    eachBatch: async ({ batch }) => {
      for (const message of batch.messages) if (message.value !== null) state.spans += countOtlpSpans(message.value);
      await Promise.resolve();
    },
  });
  const deadline = Date.now() + 30_000;
  while (!state.joined && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  return {
    spans: () => state.spans,
    async waitFor(target, idleMs = 20_000) {
      let last = state.spans;
      let since = Date.now();
      while (state.spans < target) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        if (state.spans !== last) {
          last = state.spans;
          since = Date.now();
        } else if (Date.now() - since > idleMs) {
          break;
        }
      }
      return state.spans;
    },
    stop: () => consumer.disconnect(),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Systems under test

function answersHttp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/v1/traces', method: 'GET', timeout: 1000, agent: false },
      (res) => {
        res.resume();
        resolve(true);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
    req.end();
  });
}

async function startNodeSut(
  script: string,
  port: number,
  brokers: string[],
  topics: Topics,
  env: Record<string, string>,
  nodeArgs: string[],
  pinned: boolean,
): Promise<RunningSut> {
  const argv = [...nodeArgs, script];
  const child: ChildProcess = spawn(
    pinned ? 'taskset' : process.execPath,
    pinned ? ['-c', '1', process.execPath, ...argv] : argv,
    {
      cwd: ROOT,
      env: {
        ...process.env,
        KAFKA_BROKERS: brokers.join(','),
        KAFKA_PARTITIONS: String(PARTITIONS),
        TRIPLINE_TOPIC_TOOL_CALLS: topics.tool_call,
        TRIPLINE_TOPIC_DATA_ACCESS: topics.data_access,
        TRIPLINE_TOPIC_PRIVILEGE_CHANGES: topics.privilege_change,
        TRIPLINE_OTLP_HOST: '127.0.0.1',
        TRIPLINE_OTLP_PORT: String(port),
        LOG_LEVEL: 'warn',
        TRIPLINE_KAFKA_COMPRESSION: GATEWAY_COMPRESSION,
        // Agents send a token, as in production; the tenant's ingest limit is not what is measured.
        TRIPLINE_AGENT_TOKEN: BENCH_AGENT_TOKEN,
        TRIPLINE_TENANT_SPANS_PER_SECOND: '10000000',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const append = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-200_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 60_000;
  while (!(await answersHttp(port))) {
    if (child.exitCode !== null) throw new Error(`${script} exited with ${String(child.exitCode)}:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${script} did not answer on port ${String(port)}:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error('no pid');
  return {
    pid,
    url: `http://127.0.0.1:${String(port)}`,
    log: () => output,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function startSut(
  sut: SutName,
  brokers: string[],
  topics: Topics,
  options: { env?: Record<string, string>; nodeArgs?: string[]; pinned: boolean; logDir: string },
): Promise<RunningSut> {
  const port = await freePort();
  if (sut === 'collector') {
    const grpcPort = await freePort();
    const collector = await startOtelcol({
      otlpHttpPort: port,
      env: {
        ...otelcolCollectorEnv({
          brokers,
          topics,
          otlpHttpEndpoint: `127.0.0.1:${String(port)}`,
          otlpGrpcEndpoint: `127.0.0.1:${String(grpcPort)}`,
        }),
        ...options.env,
      },
      ...(options.pinned ? { cpus: '1' } : {}),
      logFile: join(options.logDir, 'otelcol.log'),
    });
    return {
      pid: collector.pid,
      url: collector.otlpUrl,
      log: () => collector.log(),
      async stop() {
        await collector.stop();
      },
    };
  }
  return startNodeSut(
    sut === 'gateway' ? GATEWAY_MAIN : BARE_GATEWAY,
    port,
    brokers,
    topics,
    options.env ?? {},
    options.nodeArgs ?? [],
    options.pinned,
  );
}

// ---------------------------------------------------------------------------------------------------------
// Load

async function runLoad(
  url: string,
  dir: string,
  load: { rate?: number; concurrency?: number },
  seconds: number,
  pinned: boolean,
): Promise<LoadResult> {
  const args = [LOAD_GENERATOR, '--url', url, '--dir', dir, '--seconds', String(seconds), '--token', BENCH_AGENT_TOKEN];
  if (load.rate !== undefined) args.push('--rate', String(load.rate));
  else args.push('--concurrency', String(load.concurrency ?? CONCURRENCY));
  const child = spawn(pinned ? 'taskset' : process.execPath, pinned ? ['-c', '0', process.execPath, ...args] : args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`load generator failed (${String(code)}): ${err}`);
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as LoadResult;
}

interface Context {
  brokers: string[];
  brokerPid: number | undefined;
  payloadDir: string;
  pinned: boolean;
  outDir: string;
}

let runCounter = 0;
/** The system under test running now, and the broker this benchmark started: stopped on SIGINT/SIGTERM too. */
let activeSut: RunningSut | undefined;
let ownBroker: BrokerEnv | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping`);
    void (async () => {
      await activeSut?.stop().catch(() => undefined);
      if (ownBroker !== undefined) await stopBroker(ownBroker).catch(() => undefined);
      process.exit(130);
    })();
  });
}
/** Milliseconds from the last SUT's spawn to the start of its measured window (to cut start-up out of profiles). */
let measuredFromMs = 0;

const createdTopics: Topics[] = [];

async function createTopics(brokers: string[]): Promise<Topics> {
  runCounter += 1;
  const prefix = `bench-${randomBytes(3).toString('hex')}-${String(runCounter)}`;
  const topics: Topics = {
    tool_call: `${prefix}.tool_calls`,
    data_access: `${prefix}.data_access`,
    privilege_change: `${prefix}.privilege_changes`,
  };
  const names = [topics.tool_call, topics.data_access, topics.privilege_change];
  const admin = new Kafka({
    clientId: 'bench-admin',
    brokers,
    logLevel: logLevel.NOTHING,
    retry: { retries: 10 },
  }).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: names.map((topic) => ({ topic, numPartitions: PARTITIONS, replicationFactor: 1 })),
    });
    // Every partition has a leader before the run starts.
    for (let attempt = 0; ; attempt++) {
      try {
        const metadata = await admin.fetchTopicMetadata({ topics: names });
        if (
          metadata.topics.every(
            (topic) =>
              topic.partitions.length === PARTITIONS && topic.partitions.every((partition) => partition.leader >= 0),
          )
        )
          break;
      } catch (error) {
        if (attempt > 100) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await admin.disconnect();
  }
  createdTopics.push(topics);
  return topics;
}

/** Deletes every topic the benchmark made (when it used a cluster it did not start). */
async function deleteTopics(brokers: string[]): Promise<void> {
  const admin = new Kafka({ clientId: 'bench-admin', brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.deleteTopics({
      topics: createdTopics.flatMap((topics) => [topics.tool_call, topics.data_access, topics.privilege_change]),
    });
  } catch {
    // best effort
  } finally {
    await admin.disconnect();
  }
}

async function measure(
  ctx: Context,
  sut: SutName,
  load: { rate?: number; concurrency?: number },
  options: {
    variant?: string;
    env?: Record<string, string>;
    nodeArgs?: string[];
    afterStop?: (dir: string) => void;
  } = {},
): Promise<Row> {
  const topics = await createTopics(ctx.brokers);
  const counter = await startTopicCounter(ctx.brokers, topics);
  const logDir = join(ctx.outDir, `run-${String(runCounter)}-${sut}`);
  mkdirSync(logDir, { recursive: true });
  const spawnedAt = Date.now();
  const running = await startSut(sut, ctx.brokers, topics, {
    pinned: ctx.pinned,
    logDir,
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.nodeArgs === undefined ? {} : { nodeArgs: options.nodeArgs }),
  });
  activeSut = running;
  try {
    const startCpu = cpuSecondsOf(running.pid);
    const warm = await runLoad(running.url, ctx.payloadDir, load, WARMUP_SECONDS, ctx.pinned);
    await counter.waitFor(warm.spansOk, 10_000);
    const warmupCpu = cpuSecondsOf(running.pid) - startCpu;
    const before = counter.spans();
    measuredFromMs = Date.now() - spawnedAt;
    const cpu0 = cpuSecondsOf(running.pid);
    const broker0 = ctx.brokerPid === undefined ? Number.NaN : cpuSecondsOf(ctx.brokerPid);
    const result = await runLoad(running.url, ctx.payloadDir, load, SECONDS, ctx.pinned);
    const onKafka = (await counter.waitFor(before + result.spansOk)) - before;
    const cpu1 = cpuSecondsOf(running.pid);
    const broker1 = ctx.brokerPid === undefined ? Number.NaN : cpuSecondsOf(ctx.brokerPid);
    const peak = memoryOf(running.pid).peakRssMiB;
    const non200 = result.requests - result.ok;
    const loss = result.spansSent - Math.min(onKafka, result.spansOk);
    const offered = load.rate ?? null;
    const problems = [
      ...(loss > 0 ? [`${fmt(loss)} spans lost`] : []),
      ...(non200 > 0 ? [`answers ${JSON.stringify(result.statuses)}`] : []),
      ...(result.behindSchedule > 0
        ? [`${fmt(result.behindSchedule)} times ${String(256)} requests were outstanding`]
        : []),
      ...(offered !== null && result.achievedSpansPerSecond < offered * 0.97 ? ['< 97% of the offered rate'] : []),
    ];
    const clean = problems.length === 0;
    const row: Row = {
      sut,
      variant: options.variant ?? '',
      mode: result.mode,
      offered,
      concurrency: result.concurrency,
      achieved: result.achievedSpansPerSecond,
      spansSent: result.spansSent,
      spansOk: result.spansOk,
      spansOnKafka: onKafka,
      loss,
      non200,
      behindSchedule: result.behindSchedule,
      cpuPer10k: ((cpu1 - cpu0) / Math.max(1, onKafka)) * 10_000,
      warmupCpuPer10k: (warmupCpu / Math.max(1, warm.spansOk)) * 10_000,
      peakRssMiB: peak,
      p50: result.latencyMs.p50,
      p99: result.latencyMs.p99,
      loadGenCpuShare: result.loadGeneratorCpuSeconds / result.seconds,
      brokerCpuShare: (broker1 - broker0) / result.seconds,
      clean,
    };
    log(
      `  ${LABEL[sut]}${row.variant === '' ? '' : ` [${row.variant}]`} ${offered === null ? `closed loop ×${String(row.concurrency)}` : `${fmt(offered)} spans/s offered`}: ` +
        `${fmt(row.achieved)} spans/s, loss ${fmt(row.loss)}, ${fmt(row.cpuPer10k, 3)} CPU-s/10k (first ${String(WARMUP_SECONDS)} s: ${fmt(row.warmupCpuPer10k, 3)}), peak RSS ${fmt(row.peakRssMiB)} MiB, p50 ${fmt(row.p50, 1)} ms, p99 ${fmt(row.p99, 1)} ms` +
        `${row.clean ? '' : ` (NOT CLEAN: ${problems.join('; ')})`}; load generator ${fmt(row.loadGenCpuShare * 100)}% of a core, broker ${fmt(row.brokerCpuShare * 100)}%`,
    );
    return row;
  } finally {
    activeSut = undefined;
    await running.stop();
    options.afterStop?.(logDir);
    await counter.stop().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Output

function fmt(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return '–';
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

const ratio = (a: number, b: number): string =>
  Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? (a / b).toFixed(2) : '–';

function loadLabel(row: Row): string {
  if (row.mode === 'concurrency') return `saturation (${String(row.concurrency)} in flight)`;
  return row.variant === 'sustained' ? `sustained ${fmt(row.offered ?? 0)}` : fmt(row.offered ?? 0);
}

function table(rows: Row[]): string {
  const lines = [
    `| offered spans/s | system | spans/s | loss | CPU-s / 10k spans | first ${String(WARMUP_SECONDS)} s | peak RSS MiB | p50 ms | p99 ms |`,
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of rows) {
    lines.push(
      `| ${loadLabel(row)} | ${LABEL[row.sut]}${row.variant !== '' && row.variant !== 'sustained' ? ` [${row.variant}]` : ''} | ${fmt(row.achieved)} | ${fmt(row.loss)} | ${fmt(row.cpuPer10k, 3)} | ${fmt(row.warmupCpuPer10k, 3)} | ${fmt(row.peakRssMiB)} | ${fmt(row.p50, 1)} | ${fmt(row.p99, 1)} |`,
    );
  }
  return lines.join('\n');
}

function ratioTable(rows: Row[], a: SutName, b: SutName, title: string): string {
  const lines = [
    title,
    '',
    `| offered spans/s | spans/s | CPU-s / 10k spans | first ${String(WARMUP_SECONDS)} s | peak RSS | p50 | p99 |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const keyOf = (row: Row): string =>
    row.variant === 'sustained' ? 'sustained' : row.mode === 'concurrency' ? 'saturation' : String(row.offered);
  const left = rows.filter((row) => row.sut === a && (row.variant === '' || row.variant === 'sustained'));
  // A load given twice (BENCH_LOADS=2000,2000) pairs its first runs, then its second ones.
  const paired = new Set<Row>();
  for (const row of left) {
    const other = rows.find(
      (candidate) =>
        !paired.has(candidate) &&
        candidate.sut === b &&
        keyOf(candidate) === keyOf(row) &&
        (candidate.variant === '' || candidate.variant === 'sustained'),
    );
    if (other === undefined) continue;
    paired.add(other);
    const label =
      keyOf(row) === 'sustained'
        ? `max sustained (${fmt(row.offered ?? 0)} vs ${fmt(other.offered ?? 0)})`
        : keyOf(row) === 'saturation'
          ? 'saturation'
          : fmt(row.offered ?? 0);
    lines.push(
      `| ${label} | ${ratio(row.achieved, other.achieved)} | ${ratio(row.cpuPer10k, other.cpuPer10k)} | ${ratio(row.warmupCpuPer10k, other.warmupCpuPer10k)} | ${ratio(row.peakRssMiB, other.peakRssMiB)} | ${ratio(row.p50, other.p50)} | ${ratio(row.p99, other.p99)} |`,
    );
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const pinned = canPin();
  if (pinned) pinProcess(process.pid, '0');
  else log('warning: taskset or a second CPU is missing: running unpinned');
  const outDir = process.env.BENCH_OUT ?? mkdtempSync(join(tmpdir(), 'tripline-bench-gvc-'));
  mkdirSync(outDir, { recursive: true });
  const payloadDir = join(outDir, 'payloads');
  const payloads = await generatePayloads(payloadDir, { requests: 200, spansPerRequest: 100, seed: 7 });
  if (SUTS.includes('collector')) otelcolBinary(); // fails early, naming collectors/otelcol/build.sh

  let brokers: string[];
  let brokerEnv: BrokerEnv | undefined;
  let brokerPid: number | undefined;
  const configured = process.env.KAFKA_BROKERS?.trim();
  if (configured !== undefined && configured !== '') {
    brokers = configured.split(',');
  } else {
    const port = 40_000 + Math.floor(Math.random() * 10_000) * 2;
    brokerEnv = { KAFKA_PORT: String(port), TRIPLINE_KAFKA_STATE: join(outDir, 'kafka') };
    log(`starting a Kafka broker on 127.0.0.1:${String(port)} (test/kafka/broker.sh)`);
    ownBroker = brokerEnv;
    brokers = (await startBroker(brokerEnv)).brokers.split(',');
    brokerPid = Number(readFileSync(join(outDir, 'kafka', 'kafka.pid'), 'utf8').trim());
    if (pinned) pinProcess(brokerPid, '0');
  }
  await waitForBroker(brokers);
  const ctx: Context = { brokers, brokerPid, payloadDir, pinned, outDir };
  const cpuModel = cpus()[0]?.model ?? 'unknown CPU';
  log(
    `gateway-vs-collector: ${String(cpus().length)} × ${cpuModel}; Node ${process.version}; otelcol ${otelcolVersion()}; ` +
      `${String(payloads.files.length)} payloads of 100 spans, ${fmt(payloads.meanBytes)} bytes each; ${String(SECONDS)} s per run (+${String(WARMUP_SECONDS)} s warm-up); ` +
      `${pinned ? 'load generator + broker on core 0, system under test on core 1' : 'unpinned'}; results in ${outDir}`,
  );

  const rows: Row[] = [];
  try {
    for (const sut of SUTS) {
      log(`\n${LABEL[sut]}`);
      for (const rate of LOADS) rows.push(await measure(ctx, sut, { rate }));
      if (SUSTAINED) {
        // The highest clean fixed load, then ×1.5 steps while runs stay clean.
        const fixed = rows.filter((row) => row.sut === sut && row.mode === 'rate' && row.variant === '');
        let best = [...fixed].reverse().find((row) => row.clean);
        if (best !== undefined && best === fixed[fixed.length - 1]) {
          let rate = (best.offered ?? 0) * 1.5;
          for (let step = 0; step < 8; step++) {
            const row = await measure(ctx, sut, { rate: Math.round(rate) }, { variant: 'probe' });
            if (!row.clean) break;
            best = row;
            rate *= 1.5;
          }
        }
        if (best !== undefined) rows.push({ ...best, variant: 'sustained' });
      }
      if (SATURATION) rows.push(await measure(ctx, sut, { concurrency: CONCURRENCY }));
    }

    if (PRODUCER && SUTS.includes('gateway')) {
      log(
        '\nTripline gateway: Kafka producer settings (TRIPLINE_KAFKA_COMPRESSION / _MAX_BATCH_BYTES / _LINGER_MS), closed loop',
      );
      for (const [compression, batch, linger] of [
        ['none', '900000', '100'],
        ['gzip', '900000', '100'],
        ['zstd', '65536', '100'],
        ['zstd', '262144', '100'],
        ['zstd', '900000', '0'],
        ['zstd', '900000', '20'],
        ['zstd', '900000', '100'],
        ['zstd', '900000', '200'],
        ['zstd', '4194304', '100'],
      ] as const) {
        rows.push(
          await measure(
            ctx,
            'gateway',
            { concurrency: CONCURRENCY },
            {
              variant: `${compression}, batch ${fmt(Number(batch))} B, linger ${linger} ms`,
              env: {
                TRIPLINE_KAFKA_COMPRESSION: compression,
                TRIPLINE_KAFKA_MAX_BATCH_BYTES: batch,
                TRIPLINE_KAFKA_LINGER_MS: linger,
              },
            },
          ),
        );
      }
    }

    const profiles: { rate: number; text: string }[] = [];
    if (PROFILE && SUTS.includes('gateway')) {
      for (const rate of PROFILE_RATES) {
        log(`\nTripline gateway under --cpu-prof at ${fmt(rate)} spans/s (the measured window only)`);
        const profileDir = join(outDir, `cpu-profile-${String(rate)}`);
        mkdirSync(profileDir, { recursive: true });
        await measure(
          ctx,
          'gateway',
          { rate },
          { variant: 'cpu-prof', nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] },
        );
        const file = readdirSync(profileDir).find((name) => name.endsWith('.cpuprofile'));
        if (file === undefined) {
          log('no .cpuprofile was written');
          continue;
        }
        const text = formatSummary(
          summarize(
            JSON.parse(readFileSync(join(profileDir, file), 'utf8')) as Parameters<typeof summarize>[0],
            30,
            measuredFromMs,
          ),
        );
        log(text);
        profiles.push({ rate, text });
      }
    }

    writeFileSync(
      join(outDir, 'results.json'),
      JSON.stringify(
        { rows, seconds: SECONDS, payloadBytes: payloads.meanBytes, node: process.version, otelcol: otelcolVersion() },
        null,
        2,
      ),
    );
    const main = rows.filter((row) => row.variant === '' || row.variant === 'sustained');
    const producer = rows.filter((row) => row.variant.includes(', batch '));
    console.log(
      `\n## Gateway vs collector (${String(SECONDS)} s per run, 100 spans per request, ${fmt(payloads.meanBytes)} bytes per request)\n`,
    );
    console.log(table(main.filter((row) => row.sut !== 'gateway-http')));
    if (SUTS.includes('gateway') && SUTS.includes('collector'))
      console.log(
        `\n${ratioTable(main, 'gateway', 'collector', '### Ratios: Tripline gateway (fastify) / otelcol (CPU ≤ 1.00 is the goal)')}`,
      );
    if (SUTS.includes('gateway-http') && SUTS.includes('collector'))
      console.log(
        `\n${ratioTable(main, 'gateway-http', 'collector', '### Ratios: Tripline gateway (node:http) / otelcol')}`,
      );
    if (SUTS.includes('gateway-http') && SUTS.includes('gateway')) {
      console.log(`\n## fastify vs bare node:http (same decoder, classification and publisher)\n`);
      console.log(table(main.filter((row) => row.sut !== 'collector')));
      console.log(`\n${ratioTable(main, 'gateway', 'gateway-http', '### Ratios: fastify / node:http')}`);
    }
    if (producer.length > 0) {
      console.log(
        `\n## Tripline gateway: Kafka producer settings (closed loop, ${String(CONCURRENCY)} requests in flight)\n`,
      );
      console.log(table(producer));
    }
    for (const profile of profiles)
      console.log(`\n## CPU profile of the gateway at ${fmt(profile.rate)} spans/s\n\n\`\`\`\n${profile.text}\n\`\`\``);
    console.log(`\nresults: ${join(outDir, 'results.json')}`);
  } finally {
    if (brokerEnv === undefined) await deleteTopics(brokers);
    else await stopBroker(brokerEnv).catch((error: unknown) => log(`stopping the broker failed: ${String(error)}`));
    if (process.env.BENCH_OUT === undefined && existsSync(join(outDir, 'kafka')))
      rmSync(join(outDir, 'kafka'), { recursive: true, force: true });
  }
}

await main();
