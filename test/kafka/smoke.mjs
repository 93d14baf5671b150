// Smoke test: kafkajs against a real broker (test/kafka/broker.sh start).
//   KAFKA_BROKERS=127.0.0.1:39092 node test/kafka/smoke.mjs
// Creates a 3-partition topic, produces 1000 messages (idempotent, acks -1, GZIP) in batches,
// consumes them with a consumer group (classic protocol, the only one kafkajs speaks) committing
// offsets, checks every message arrived exactly once and in order per partition, and checks the
// committed offsets with admin.fetchOffsets. Exits non-zero on any failure.
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';

const require = createRequire(import.meta.url);
const { Kafka, CompressionTypes, Partitioners, logLevel } = require('kafkajs');
const kafkajsVersion = require('kafkajs/package.json').version;

const brokers = (process.env.KAFKA_BROKERS ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
if (brokers.length === 0) {
  console.error('smoke: set KAFKA_BROKERS (e.g. from test/kafka/broker.sh start)');
  process.exit(2);
}

const TOTAL = 1000;
const BATCH = 100;
const PARTITIONS = 3;
const TIMEOUT_MS = Number(process.env.SMOKE_TIMEOUT_MS ?? 60_000);
const run = randomUUID().slice(0, 8);
const topic = `tripline-smoke-${run}`;
const groupId = `tripline-smoke-group-${run}`;

const t0 = performance.now();
const ms = () => Math.round(performance.now() - t0);
const step = (msg) => console.log(`smoke [${String(ms()).padStart(5)} ms] ${msg}`);
function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

const kafka = new Kafka({
  clientId: 'tripline-smoke',
  brokers,
  logLevel: process.env.SMOKE_DEBUG ? logLevel.DEBUG : logLevel.WARN,
});
const admin = kafka.admin();
const producer = kafka.producer({
  idempotent: true,
  maxInFlightRequests: 1,
  createPartitioner: Partitioners.DefaultPartitioner,
});
const consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1_000, maxWaitTimeInMs: 500 });

const watchdog = setTimeout(() => {
  console.error(`smoke: FAILED: timed out after ${TIMEOUT_MS} ms`);
  process.exit(1);
}, TIMEOUT_MS);

async function main() {
  step(`kafkajs ${kafkajsVersion}, node ${process.version}, brokers ${brokers.join(',')}`);
  await admin.connect();
  const cluster = await admin.describeCluster();
  step(`cluster ${cluster.clusterId}: ${cluster.brokers.length} broker(s), controller ${cluster.controller}`);

  const created = await admin.createTopics({
    topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  assert(created, 'createTopics returned false (topic already existed?)');
  const meta = await admin.fetchTopicMetadata({ topics: [topic] });
  assert(meta.topics[0].partitions.length === PARTITIONS, `${PARTITIONS} partitions`);
  step(`created topic ${topic} with ${PARTITIONS} partitions`);

  // Produce: idempotent, acks -1 (all), GZIP, 10 batches of 100.
  await producer.connect();
  const produceStart = performance.now();
  let acked = 0;
  for (let b = 0; b < TOTAL / BATCH; b++) {
    const messages = [];
    for (let i = b * BATCH; i < (b + 1) * BATCH; i++) {
      messages.push({
        key: `k${i % 7}`,
        value: JSON.stringify({ i, run, pad: 'x'.repeat(64) }),
        headers: { seq: String(i) },
      });
    }
    const res = await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages });
    for (const r of res) assert(r.errorCode === 0, `produce error code ${r.errorCode} on partition ${r.partition}`);
    acked += messages.length;
  }
  const produceMs = Math.round(performance.now() - produceStart);
  step(`produced ${acked} messages in ${TOTAL / BATCH} batches (idempotent, acks -1, GZIP) in ${produceMs} ms`);

  const watermarks = await admin.fetchTopicOffsets(topic);
  const highSum = watermarks.reduce((s, p) => s + Number(p.high), 0);
  step(`high watermarks ${watermarks.map((p) => `p${p.partition}=${p.high}`).join(' ')} (sum ${highSum})`);
  assert(highSum === TOTAL, `sum of high watermarks ${highSum} === ${TOTAL}`);
  assert(watermarks.filter((p) => Number(p.high) > 0).length > 1, 'messages spread over more than one partition');

  // Consume with a consumer group, committing offsets explicitly after each batch.
  const seen = new Map(); // i -> count
  const lastByKey = new Map(); // key -> last i, to check per-partition order
  let outOfOrder = 0;
  let resolveDone;
  const done = new Promise((r) => (resolveDone = r));
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const consumeStart = performance.now();
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      for (const m of batch.messages) {
        const v = JSON.parse(m.value.toString());
        assert(v.run === run, 'message from this run');
        assert(m.headers.seq.toString() === String(v.i), 'header matches value');
        seen.set(v.i, (seen.get(v.i) ?? 0) + 1);
        const key = m.key.toString();
        if ((lastByKey.get(key) ?? -1) > v.i) outOfOrder++;
        lastByKey.set(key, v.i);
        resolveOffset(m.offset);
      }
      // OffsetCommit for this partition: the next offset to read.
      if (batch.messages.length > 0) {
        const next = String(Number(batch.lastOffset()) + 1);
        await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }]);
      }
      await heartbeat();
      if (seen.size >= TOTAL) resolveDone();
    },
  });
  await done;
  const consumeMs = Math.round(performance.now() - consumeStart);
  const dupes = [...seen.values()].filter((c) => c > 1).length;
  step(`consumed ${seen.size} distinct messages in ${consumeMs} ms (duplicates ${dupes}, out of order ${outOfOrder})`);
  assert(seen.size === TOTAL, `all ${TOTAL} messages arrived`);
  for (let i = 0; i < TOTAL; i++) assert(seen.has(i), `message ${i} arrived`);
  assert(dupes === 0, 'no duplicates');
  assert(outOfOrder === 0, 'per-key order kept');

  const groups = await admin.describeGroups([groupId]);
  const g = groups.groups[0];
  step(
    `group ${groupId}: state ${g.state}, protocolType ${g.protocolType}, protocol ${g.protocol}, ${g.members.length} member(s)`,
  );
  assert(g.protocolType === 'consumer', 'classic consumer group');
  await consumer.disconnect();

  // Committed offsets must equal the high watermarks.
  const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
  const committed = offsets[0].partitions.sort((a, b) => a.partition - b.partition);
  step(`fetchOffsets: ${committed.map((p) => `p${p.partition}=${p.offset}`).join(' ')}`);
  for (const p of committed) {
    const high = watermarks.find((w) => w.partition === p.partition).high;
    assert(p.offset === high, `committed offset ${p.offset} === high watermark ${high} on partition ${p.partition}`);
  }

  await admin.deleteTopics({ topics: [topic] });
  await admin.deleteGroups([groupId]).catch(() => {});
  step('deleted topic and group');
}

let failed = false;
try {
  await main();
} catch (err) {
  failed = true;
  console.error(`smoke: FAILED: ${err?.stack ?? err}`);
} finally {
  clearTimeout(watchdog);
  await Promise.allSettled([consumer.disconnect(), producer.disconnect(), admin.disconnect()]);
}
if (!failed) console.log(`smoke: OK in ${ms()} ms`);
process.exit(failed ? 1 : 0);
