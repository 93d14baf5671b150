/**
 * Throughput and CPU of the distributed path on a real broker, at 100 spans per OTLP request (realistic span
 * sizes, ~450 bytes of protobuf each):
 *
 *   1. kafkajs alone: idempotent producer, acks -1, one send at a time, at several batch sizes (messages per
 *      send), compression none, GZIP (the only codec kafkajs ships) and ZSTD (Node's zlib);
 *   2. the gateway's publisher in process (classify → group → encode → accumulate → Kafka ack), compression
 *      none, GZIP and ZSTD (Node's zlib, registered by services/bus/kafka/codecs.ts);
 *   3. the gateway service over HTTP (OTLP/HTTP protobuf → decode → classify → Kafka ack, default settings) in a child process,
 *      its CPU read from /proc, with 32 concurrent clients in this process;
 *   4. Kafka → processor → ClickHouse: (a) the consumer alone (fetch, decompress, decode, classify, commit) with
 *      a handler that does nothing, then (b) a processor service (detector, in-process ClickHouse engine)
 *      draining pre-filled topics; CPU of this process, which includes the engine's threads.
 *
 *   test/kafka/broker.sh start
 *   KAFKA_BROKERS=127.0.0.1:39092 npx node test/bench/kafka.bench.ts [spans=200000]   # Node 24 from node_modules
 *   BENCH_PARTS=3,4 KAFKA_BROKERS=… npx node test/bench/kafka.bench.ts                 # only some parts
 *   BENCH_PROFILE_DIR=/tmp/p BENCH_PARTS=4 KAFKA_BROKERS=… …   # CPU profiles of part 4's measured windows
 *
 * Every run uses fresh topics. CPU-seconds per 10k spans are user+system time of the process named; the
 * broker's JVM is reported separately (from /proc, when the broker runs on this machine via broker.sh).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { CompressionTypes, Kafka, Partitioners, logLevel } from 'kafkajs';
import { encodeTraceRequest } from '../../services/otlp/codec.ts';
import { createKafka, ensureTopics } from '../../services/bus/kafka/client.ts';
import { registerKafkaCodecs } from '../../services/bus/kafka/codecs.ts';
import type { KafkaSettings } from '../../services/bus/kafka/config.ts';
import { buildSpanRecords } from '../../services/bus/kafka/publisher.ts';
import { createKafkaSource } from '../../services/bus/kafka/source.ts';
import { classifyRequest } from '../../services/core/classify.ts';
import { startGatewayService, startProcessorService } from '../../services/app/distributed.ts';
import { createLogger } from '../../services/shared/logger.ts';
import { openClickHouseStore } from '../../services/store/clickhouse/store.ts';
import { agentHeaders } from '../helpers/auth.ts';
import {
  SPANS_PER_REQUEST,
  kafkaBrokerPid,
  otlpRequests,
  profileWindow,
  publishRequests,
  threadCpuByName,
  threadCpuGrowth,
  benchBrokers,
  startBenchPublisher,
} from './bench-util.ts';
import { distributedConfig, freshKafkaSettings } from '../integration/kafka/fixtures.ts';

const logger = createLogger('error', 'kafka-bench');
const brokers = benchBrokers('kafka.bench');

/** With BENCH_PROFILE_DIR set, a profile of the measured window only, written to `<dir>/<name>.cpuprofile`. */
async function profiling(name: string): Promise<() => Promise<void>> {
  const dir = process.env.BENCH_PROFILE_DIR;
  if (dir === undefined || dir === '') return () => Promise.resolve();
  const stop = await profileWindow(join(dir, `${name}.cpuprofile`));
  return async () => {
    await stop();
    console.log(`   profile: ${join(dir, `${name}.cpuprofile`)} (node test/bench/cpuprofile-summary.ts <file>)`);
  };
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
}

/** utime + stime of a process from /proc (seconds), or NaN. */
function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

const fmt = (value: number, digits = 0): string =>
  value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main(): Promise<void> {
  const totalSpans = Number(process.argv[2] ?? 200_000);
  const requestCount = Math.max(10, Math.round(totalSpans / SPANS_PER_REQUEST));
  const broker = kafkaBrokerPid(brokers);
  console.log(
    `kafka.bench: brokers ${brokers.join(',')}, ${fmt(requestCount * SPANS_PER_REQUEST)} spans per run, ${SPANS_PER_REQUEST} spans per OTLP request`,
  );
  const sample = otlpRequests(50, 'sample');
  const sampleRecords = sample.flatMap((request) =>
    buildSpanRecords(classifyRequest(request, 'default'), request, freshKafkaSettings(brokers).topics, 900_000),
  );
  const recordBytes = sampleRecords.reduce((sum, record) => sum + record.value.byteLength, 0) / sampleRecords.length;
  const requestBytes = sample.reduce((sum, request) => sum + encodeTraceRequest(request).byteLength, 0) / sample.length;
  const joined = Buffer.concat(sampleRecords.slice(0, 30).map((record) => Buffer.from(record.value)));
  console.log(
    `request ${fmt(requestBytes)} B (${fmt(requestBytes / (SPANS_PER_REQUEST + 0.2))} B/span); ${fmt(sampleRecords.length / sample.length, 1)} records/request of ${fmt(recordBytes)} B; GZIP of 30 records: ${fmt((gzipSync(joined).byteLength / joined.byteLength) * 100, 1)}% of the size`,
  );

  const parts = new Set((process.env.BENCH_PARTS ?? '1,2,3,4').split(',').map((part) => part.trim()));
  if (parts.has('1')) await rawKafkajs(Math.round(recordBytes));
  if (parts.has('2'))
    for (const compression of ['none', 'gzip', 'zstd'] as const)
      await publisherInProcess(requestCount, compression, broker);
  if (parts.has('3')) await gatewayOverHttp(requestCount, broker);
  if (parts.has('4')) {
    await processorToClickHouse(requestCount, broker, 'source-only');
    const perCore = await processorToClickHouse(requestCount, broker, 'full');
    // The pure detector in the same run (same machine, same moment): the processor's rate per core against it.
    const pure = await pureDetectorRate();
    console.log(
      `\n4c. the pure detector (observe + score, test/bench/detect.bench.ts) in this run: ${fmt(pure)} events/s per core; the processor end to end (scored and stored, all its threads): ${fmt(perCore)} events per CPU-second = ${fmt((perCore / pure) * 100, 1)}% of it`,
    );
  }
}

/** The median observe+score rate per core that test/bench/detect.bench.ts reports, run as a child now. */
async function pureDetectorRate(): Promise<number> {
  const script = fileURLToPath(new URL('./detect.bench.ts', import.meta.url));
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  await new Promise((resolve) => child.once('exit', resolve));
  const match = /observe\+score: median ([\d,]+) events\/s per core/.exec(out);
  if (match?.[1] === undefined) throw new Error(`detect.bench.ts printed no rate: ${out}`);
  return Number(match[1].replaceAll(',', ''));
}

async function freshTopics(env: Record<string, string> = {}): Promise<KafkaSettings> {
  const settings = freshKafkaSettings(brokers, { partitions: 6, env });
  await ensureTopics(createKafka(settings, logger, { role: 'bench-admin' }), settings, logger);
  return settings;
}

// 1 ----------------------------------------------------------------------------------------------------------
async function rawKafkajs(messageBytes: number): Promise<void> {
  console.log(
    `\n1. kafkajs 2.2.4 alone: idempotent, acks -1, one send() at a time, ${fmt(messageBytes)}-byte messages`,
  );
  console.log('   batch  compression      msgs/s       MB/s   CPU µs/msg');
  const settings = await freshTopics();
  registerKafkaCodecs();
  const kafka = new Kafka({ clientId: 'bench-raw', brokers, logLevel: logLevel.NOTHING });
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  const payload = Buffer.alloc(messageBytes, 'x');
  try {
    // Up to 150 per send: kafkajs puts a send's messages for one partition into one record batch, which must
    // stay below the broker's message.max.bytes (1 MiB by default) uncompressed... and compressed.
    for (const batch of [1, 10, 50, 150]) {
      for (const compression of [CompressionTypes.None, CompressionTypes.GZIP, CompressionTypes.ZSTD]) {
        const total = Math.max(batch * 20, Math.round((batch === 1 ? 20e6 : 150e6) / messageBytes / batch) * batch);
        const messages = Array.from({ length: batch }, (_, i) => ({ key: `k${i % 64}`, value: payload }));
        await producer.send({ topic: settings.topics.tool_call, acks: -1, compression, messages }); // warm up
        const cpu = process.cpuUsage();
        const t0 = performance.now();
        for (let sent = 0; sent < total; sent += batch)
          await producer.send({ topic: settings.topics.tool_call, acks: -1, compression, messages });
        const seconds = (performance.now() - t0) / 1000;
        const used = cpuSeconds(cpu);
        console.log(
          `   ${String(batch).padStart(5)}  ${(compression === CompressionTypes.GZIP ? 'gzip' : compression === CompressionTypes.ZSTD ? 'zstd' : 'none').padEnd(11)} ${fmt(total / seconds).padStart(11)} ${fmt((total * messageBytes) / seconds / 1e6, 1).padStart(10)} ${fmt((used / total) * 1e6, 1).padStart(12)}`,
        );
      }
    }
  } finally {
    await producer.disconnect();
  }
}

// 2 ----------------------------------------------------------------------------------------------------------
async function publisherInProcess(
  requestCount: number,
  compression: 'none' | 'gzip' | 'zstd',
  broker: number | undefined,
): Promise<void> {
  const settings = await freshTopics({ TRIPLINE_KAFKA_COMPRESSION: compression });
  const publisher = await startBenchPublisher(settings, logger, 'bench-gateway');
  const all = otlpRequests(requestCount, `pub-${compression}-${randomUUID().slice(0, 6)}`);
  const concurrency = 64;
  const brokerCpu0 = broker === undefined ? Number.NaN : procCpuSeconds(broker);
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await publishRequests(publisher, all, concurrency);
  const seconds = (performance.now() - t0) / 1000;
  const used = cpuSeconds(cpu);
  const brokerUsed = broker === undefined ? Number.NaN : procCpuSeconds(broker) - brokerCpu0;
  const stats = publisher.stats();
  await publisher.close();
  if (compression === 'none')
    console.log(
      '\n2. gateway publisher in process (classify, group, encode, batch, Kafka ack), 64 requests outstanding',
    );
  console.log(
    `   compression ${compression.padEnd(4)}: ${fmt(stats.spans / seconds).padStart(8)} spans/s, ${fmt((used / stats.spans) * 10_000, 3)} CPU-s per 10k spans (broker JVM ${fmt((brokerUsed / stats.spans) * 10_000, 3)}), ${fmt(stats.records / stats.sends, 1)} records per produce request`,
  );
}

// 3 ----------------------------------------------------------------------------------------------------------
async function gatewayOverHttp(requestCount: number, broker: number | undefined): Promise<void> {
  const settings = await freshTopics();
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--gateway-child'], {
    env: { ...process.env, BENCH_KAFKA_SETTINGS: JSON.stringify(settings) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const first = await lines.next();
  const { url } = JSON.parse(String(first.value)) as { url: string };
  const bodies = otlpRequests(Math.min(requestCount, 500), `http-${randomUUID().slice(0, 6)}`).map((request) =>
    encodeTraceRequest(request),
  );
  const post = async (body: Uint8Array): Promise<void> => {
    const response = await fetch(`${url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', ...agentHeaders },
      body,
    });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`gateway answered ${response.status}`);
  };
  for (const body of bodies.slice(0, 20)) await post(body); // warm up
  const pid = child.pid ?? 0;
  const childCpu0 = procCpuSeconds(pid);
  const brokerCpu0 = broker === undefined ? Number.NaN : procCpuSeconds(broker);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < requestCount) {
        const body = bodies[next % bodies.length];
        next += 1;
        if (body !== undefined) await post(body);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const childUsed = procCpuSeconds(pid) - childCpu0;
  const brokerUsed = broker === undefined ? Number.NaN : procCpuSeconds(broker) - brokerCpu0;
  const spans = requestCount * SPANS_PER_REQUEST;
  child.stdin.end();
  await lines.next();
  console.log('\n3. gateway service over OTLP/HTTP (protobuf), 32 concurrent clients, answered after the Kafka ack');
  console.log(
    `   ${fmt(spans / seconds)} spans/s (${fmt(requestCount / seconds)} requests/s), gateway process ${fmt((childUsed / spans) * 10_000, 3)} CPU-s per 10k spans (broker JVM ${fmt((brokerUsed / spans) * 10_000, 3)})`,
  );
}

// 4 ----------------------------------------------------------------------------------------------------------
async function processorToClickHouse(
  requestCount: number,
  broker: number | undefined,
  mode: 'source-only' | 'full',
): Promise<number> {
  const settings = await freshTopics();
  const publisher = await startBenchPublisher(settings, logger, 'bench-fill');
  const events = await publishRequests(publisher, otlpRequests(requestCount, `proc-${randomUUID().slice(0, 6)}`));
  await publisher.close();

  if (mode === 'source-only') {
    const source = createKafkaSource({
      kafka: createKafka(settings, logger, { role: 'bench-source' }),
      settings,
      logger,
      maxEventsPerBatch: 2000,
    });
    const profiled = await profiling('source');
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    let handed = 0;
    await source.start((batch) => {
      handed += batch.events.length;
      return Promise.resolve();
    });
    while (handed < events) await new Promise((resolve) => setTimeout(resolve, 20));
    const seconds = (performance.now() - t0) / 1000;
    const used = cpuSeconds(cpu);
    await profiled();
    await source.stop();
    console.log('\n4a. Kafka → decode → classify → commit (the processor source with a handler that does nothing)');
    console.log(`   ${fmt(events / seconds)} spans/s, ${fmt((used / events) * 10_000, 3)} CPU-s per 10k spans`);
    return events / used;
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-kafka-bench-'));
  const config = distributedConfig(brokers, dataDir, { LOG_LEVEL: 'error' });
  // The database the processor's own readers (published baseline books) look in.
  const store = await openClickHouseStore({ dataDir, database: config.store.database });
  await store.migrate();
  await store.counts(); // load the engine before the clock starts
  // Counts the processor's inserts of events (its handler calls are not its store writes: the writer merges them).
  let eventWrites = 0;
  const insertEvents = store.insertEvents.bind(store);
  store.insertEvents = (rows) => {
    eventWrites += 1;
    return insertEvents(rows);
  };
  try {
    const brokerCpu0 = broker === undefined ? Number.NaN : procCpuSeconds(broker);
    const profiled = await profiling('processor');
    const mainThread = process.threadCpuUsage();
    const threads = threadCpuByName();
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    const processor = await startProcessorService(config, { kafka: settings, store, logger });
    while (processor.source.stats().events < events) await new Promise((resolve) => setTimeout(resolve, 20));
    const seconds = (performance.now() - t0) / 1000;
    const used = cpuSeconds(cpu);
    const mainUsage = process.threadCpuUsage(mainThread);
    const mainUsed = (mainUsage.user + mainUsage.system) / 1e6;
    const byThread = threadCpuGrowth(threads, threadCpuByName());
    await profiled();
    const brokerUsed = broker === undefined ? Number.NaN : procCpuSeconds(broker) - brokerCpu0;
    const stats = processor.source.stats();
    await processor.stop();
    const counts = await store.counts();
    console.log(
      '\n4b. Kafka → processor (decode, classify, score, decide) → ClickHouse (in-process engine), committed after the write',
    );
    console.log(
      `   ${fmt(events / seconds)} spans/s, ${fmt((used / events) * 10_000, 3)} CPU-s per 10k spans: main thread ${fmt((mainUsed / events) * 10_000, 3)}, the engine's and libuv's threads ${fmt(((used - mainUsed) / events) * 10_000, 3)} (broker JVM ${fmt((brokerUsed / events) * 10_000, 3)}), ${fmt(events / stats.batches)} events per handler call, ${fmt(events / Math.max(1, eventWrites))} per store write; stored ${fmt(counts.events)} events, ${fmt(counts.tasks)} tasks`,
    );
    console.log(
      `   by thread (CPU-s per 10k spans): ${byThread
        .slice(0, 8)
        .map(([name, seconds]) => `${name} ${fmt((seconds / events) * 10_000, 3)}`)
        .join(', ')}`,
    );
    return events / used;
  } finally {
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------------------------------
// Child mode: the gateway service alone in its own process.
if (process.argv[2] === '--gateway-child') {
  const settings = JSON.parse(process.env.BENCH_KAFKA_SETTINGS ?? '{}') as KafkaSettings;
  const config = distributedConfig(brokers, tmpdir(), {
    LOG_LEVEL: 'error',
    TRIPLINE_OTLP_MAX_BODY_BYTES: String(64 * 1024 * 1024),
    TRIPLINE_TENANT_SPANS_PER_SECOND: '10000000',
  });
  const gateway = await startGatewayService(config, { kafka: settings, logger });
  process.stdout.write(`${JSON.stringify({ url: gateway.otlpUrl })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => {
    void gateway.stop().then(() => {
      process.stdout.write(`${JSON.stringify({ stats: gateway.publisher.stats() })}\n`);
      process.exit(0);
    });
  });
} else {
  await main();
}
