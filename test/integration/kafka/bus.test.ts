/**
 * The Kafka bus on a real broker: the gateway's records (grouping, wrappers, keys, topics), the publisher's
 * back-pressure, the consumer group's co-partitioned assignment, commit-after-handler (with the next fetch
 * handed over meanwhile, and a failed fetch handed over again), and a hung member's partitions moving to another
 * member with its uncommitted records replayed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { decodeTraceRequest } from '../../../services/otlp/codec.ts';
import { createKafka, ensureTopics } from '../../../services/bus/kafka/client.ts';
import { spanTopics } from '../../../services/bus/kafka/config.ts';
import type { KafkaSettings } from '../../../services/bus/kafka/config.ts';
import { TENANT_HEADER, buildSpanRecords, createKafkaPublisher } from '../../../services/bus/kafka/publisher.ts';
import type { KafkaEventPublisher } from '../../../services/bus/kafka/publisher.ts';
import { createKafkaSource } from '../../../services/bus/kafka/source.ts';
import type { KafkaEventSource } from '../../../services/bus/kafka/source.ts';
import type { EventBatch } from '../../../services/bus/bus.ts';
import { classifyRequest } from '../../../services/core/classify.ts';
import { isTriplineError } from '../../../services/shared/errors.ts';
import type { OtlpTraceRequest } from '../../../schemas/otlp.ts';
import { kafkaBrokers } from '../../helpers/kafka-broker.ts';
import { waitFor } from '../../helpers/wait.ts';
import { freshKafkaSettings, plainKafka, syntheticRequest, testLogger } from './fixtures.ts';

const logger = testLogger();
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function publisherFor(settings: KafkaSettings): Promise<KafkaEventPublisher> {
  const kafka = createKafka(settings, logger, { role: 'test-gateway' });
  await ensureTopics(kafka, settings, logger);
  const publisher = createKafkaPublisher({ kafka, topics: settings.topics, producer: settings.producer, logger });
  await publisher.start();
  cleanups.push(() => publisher.close());
  return publisher;
}

function sourceFor(settings: KafkaSettings): KafkaEventSource {
  const source = createKafkaSource({
    kafka: createKafka(settings, logger, { role: 'test-processor' }),
    settings,
    logger,
    drainTimeoutMs: 2000,
  });
  cleanups.push(() => source.stop());
  return source;
}

/** Reads the processor group's committed offsets, summed over the span topics' partitions. */
async function committedOffsets(brokers: string[], settings: KafkaSettings): Promise<() => Promise<number>> {
  const admin = plainKafka(brokers).admin();
  await admin.connect();
  cleanups.push(() => admin.disconnect());
  return async () => {
    const offsets = await admin.fetchOffsets({ groupId: settings.groupId, topics: spanTopics(settings.topics) });
    return offsets
      .flatMap((topic) => topic.partitions)
      .reduce((sum, partition) => sum + Math.max(0, Number(partition.offset)), 0);
  };
}

async function publishAll(
  publisher: KafkaEventPublisher,
  requests: OtlpTraceRequest[],
  tenant = 'acme',
): Promise<number> {
  let events = 0;
  await Promise.all(
    requests.map((request) => {
      const batch = classifyRequest(request, tenant);
      events += batch.events.length;
      return publisher.publish(batch, request);
    }),
  );
  return events;
}

describe('gateway records', () => {
  const topics = freshKafkaSettings(['127.0.0.1:1']).topics;

  it('groups spans by kind and trace, keeps the wrappers, keys by trace id, routes boundaries to tool_calls', () => {
    const a = syntheticRequest({ taskId: 'task-a', spans: 6, withBoundary: true });
    const b = syntheticRequest({ taskId: 'task-b', spans: 3 });
    const traceA = a.resourceSpans[0]?.scopeSpans[0]?.spans[0]?.traceId ?? '';
    const traceB = b.resourceSpans[0]?.scopeSpans[0]?.spans[0]?.traceId ?? '';
    // A request with two resources (two tasks) and a span that is none of the three kinds.
    const request: OtlpTraceRequest = { resourceSpans: [...a.resourceSpans, ...b.resourceSpans] };
    const noise = structuredClone(a.resourceSpans[0]?.scopeSpans[0]?.spans[0]);
    if (noise === undefined) throw new Error('no span');
    noise.spanId = 'ffffffffffffffff';
    noise.name = 'GET /health';
    noise.attributes = [{ key: 'http.method', value: { stringValue: 'GET' } }];
    a.resourceSpans[0]?.scopeSpans[0]?.spans.push(noise);
    const batch = classifyRequest(request, 'acme');
    expect(batch.dropped).toBe(1);

    const records = buildSpanRecords(batch, request, topics, 900_000);
    const summary = records
      .map((record) => ({ topic: record.topic, key: record.key, spans: record.spans }))
      .sort((x, y) => `${x.topic}${x.key}`.localeCompare(`${y.topic}${y.key}`));
    expect(summary).toEqual(
      [
        { topic: topics.tool_call, key: traceA, spans: 3 }, // 2 tool calls + the task-boundary span
        { topic: topics.data_access, key: traceA, spans: 2 },
        { topic: topics.privilege_change, key: traceA, spans: 2 },
        { topic: topics.tool_call, key: traceB, spans: 1 },
        { topic: topics.data_access, key: traceB, spans: 1 },
        { topic: topics.privilege_change, key: traceB, spans: 1 },
      ].sort((x, y) => `${x.topic}${x.key}`.localeCompare(`${y.topic}${y.key}`)),
    );
    for (const record of records) {
      expect(record.headers[TENANT_HEADER]).toBe('acme');
      const decoded = decodeTraceRequest(record.value, 'protobuf');
      expect(decoded.resourceSpans).toHaveLength(1);
      const original = (record.key === traceA ? a : b).resourceSpans[0];
      expect(decoded.resourceSpans[0]?.resource).toEqual(original?.resource);
      expect(decoded.resourceSpans[0]?.scopeSpans[0]?.scope).toEqual(original?.scopeSpans[0]?.scope);
      // Classifying the record again gives the same events: the consumer needs nothing but the record.
      const again = classifyRequest(decoded, 'acme');
      expect(again.events.length + again.boundaries.length).toBe(record.spans);
    }
  });

  it('splits a group over several records above the record limit, and refuses a single span above it', () => {
    const request = syntheticRequest({ taskId: 'big', spans: 300 });
    const batch = classifyRequest(request, 'acme');
    const records = buildSpanRecords(batch, request, topics, 4096);
    expect(records.length).toBeGreaterThan(3);
    expect(records.every((record) => record.value.byteLength <= 4096)).toBe(true);
    expect(records.reduce((sum, record) => sum + record.spans, 0)).toBe(300);
    expect(() => buildSpanRecords(batch, request, topics, 64)).toThrow(/Kafka record limit/);
  });
});

describe('the bus on a real broker', () => {
  it('delivers every event once to a group of two co-partitioned processors, each task to one of them', async () => {
    const brokers = kafkaBrokers();
    const settings = freshKafkaSettings(brokers, { partitions: 6 });
    const publisher = await publisherFor(settings);
    const seen: { member: number; events: EventBatch['events'] }[] = [];
    const sources = [sourceFor(settings), sourceFor(settings)];
    await Promise.all(
      sources.map((source, member) =>
        source.start((batch) => Promise.resolve(void seen.push({ member, events: batch.events }))),
      ),
    );
    await waitFor('both members to be assigned', () =>
      sources.every((source) => source.assignedPartitions().length === 3),
    );

    // Same partition numbers of every topic on one member: the assignment is per number, and disjoint.
    const [first, second] = sources.map((source) => source.assignedPartitions());
    expect([...(first ?? []), ...(second ?? [])].sort()).toEqual([0, 1, 2, 3, 4, 5]);

    // Each task is one trace exported in five requests, as an agent's run is.
    const traces = Array.from({ length: 12 }, (_, i) => `${String(i).padStart(2, '0')}${'ab'.repeat(15)}`);
    const requests = Array.from({ length: 60 }, (_, i) =>
      syntheticRequest({ taskId: `task-${i % 12}`, spans: 30, traceId: traces[i % 12] ?? '' }),
    );
    const sent = await publishAll(publisher, requests);
    await waitFor('every event to arrive', () => seen.reduce((sum, entry) => sum + entry.events.length, 0) >= sent);
    const ids = seen.flatMap((entry) => entry.events.map((event) => event.id));
    expect(ids).toHaveLength(sent);
    expect(new Set(ids).size).toBe(sent);
    const memberOfTask = new Map<string, Set<number>>();
    for (const entry of seen)
      for (const event of entry.events)
        memberOfTask.set(event.taskId, (memberOfTask.get(event.taskId) ?? new Set()).add(entry.member));
    expect(memberOfTask.size).toBe(12);
    for (const [task, members] of memberOfTask)
      expect(members.size, `task ${task} was split across processors`).toBe(1);
    expect(new Set(seen.map((entry) => entry.member)).size).toBe(2);
    expect(seen.every((entry) => entry.events.every((event) => event.tenant === 'acme'))).toBe(true);
  });

  it('commits offsets only after the handler resolved', async () => {
    const brokers = kafkaBrokers();
    const settings = freshKafkaSettings(brokers, { partitions: 1 });
    const publisher = await publisherFor(settings);
    await publishAll(publisher, [syntheticRequest({ taskId: 'gated', spans: 9 })]);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let handed = 0;
    const source = sourceFor(settings);
    await source.start(async (batch) => {
      handed += batch.events.length;
      await gate;
    });
    await waitFor('the batch to reach the handler', () => handed === 9);
    const committed = await committedOffsets(brokers, settings);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await committed()).toBe(0);
    release();
    await waitFor('the offsets to be committed', async () => (await committed()) === 3);
  });

  it('hands the next fetch over while the previous one is written, and commits each, in order, once it is durable', async () => {
    const brokers = kafkaBrokers();
    const settings = freshKafkaSettings(brokers, { partitions: 1 });
    const publisher = await publisherFor(settings);
    const writes: { events: number; durable: () => void }[] = [];
    const source = sourceFor(settings);
    await source.start(
      (batch) => new Promise<void>((resolve) => writes.push({ events: batch.events.length, durable: resolve })),
    );
    const committed = await committedOffsets(brokers, settings);

    await publishAll(publisher, [syntheticRequest({ taskId: 'first', spans: 9 })]);
    await waitFor(
      'the first fetch to reach the handler',
      () => writes.reduce((sum, write) => sum + write.events, 0) === 9,
    );
    const firstFetch = writes.length;
    // The first fetch is still being written: the next one reaches the handler anyway.
    await publishAll(publisher, [syntheticRequest({ taskId: 'second', spans: 9 })]);
    await waitFor(
      'the second fetch to reach the handler',
      () => writes.reduce((sum, write) => sum + write.events, 0) === 18,
    );
    // The later fetch is durable first: nothing is committed before the earlier one is.
    for (const write of writes.slice(firstFetch)) write.durable();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await committed()).toBe(0);
    for (const write of writes.slice(0, firstFetch)) write.durable();
    await waitFor('every offset to be committed', async () => (await committed()) === 6);
  });

  it('hands the records of a fetch whose handling failed over again, and commits them once handled', async () => {
    const brokers = kafkaBrokers();
    const settings = freshKafkaSettings(brokers, { partitions: 1 });
    const publisher = await publisherFor(settings);
    const sent = await publishAll(publisher, [syntheticRequest({ taskId: 'failing', spans: 9 })]);
    let calls = 0;
    const got: string[] = [];
    const source = sourceFor(settings);
    await source.start((batch) => {
      calls += 1;
      for (const event of batch.events) got.push(event.id);
      return calls === 1 ? Promise.reject(new Error('the store refused the batch')) : Promise.resolve();
    });
    await waitFor('the records to be handed over again', () => got.length === 2 * sent, 30_000);
    expect(new Set(got).size).toBe(sent);
    const admin = plainKafka(brokers).admin();
    await admin.connect();
    cleanups.push(() => admin.disconnect());
    await waitFor('the offsets to be committed', async () => {
      const offsets = await admin.fetchOffsets({ groupId: settings.groupId, topics: spanTopics(settings.topics) });
      return (
        offsets
          .flatMap((topic) => topic.partitions)
          .reduce((sum, partition) => sum + Math.max(0, Number(partition.offset)), 0) === 3
      );
    });
  }, 60_000);

  it('answers PIPELINE_BUSY past the in-flight byte cap', async () => {
    const brokers = kafkaBrokers();
    const settings = freshKafkaSettings(brokers, {
      partitions: 1,
      env: { TRIPLINE_KAFKA_MAX_IN_FLIGHT_BYTES: String(1024 * 1024), TRIPLINE_KAFKA_LINGER_MS: '50' },
    });
    const publisher = await publisherFor(settings);
    const big = (i: number): OtlpTraceRequest => syntheticRequest({ taskId: `big-${i}`, spans: 3000 });
    const requests = [big(1), big(2), big(3), big(4)];
    const results = await Promise.allSettled(
      requests.map((request) => publisher.publish(classifyRequest(request, 'acme'), request)),
    );
    const busy = results.filter(
      (result) => result.status === 'rejected' && isTriplineError(result.reason, 'PIPELINE_BUSY'),
    );
    expect(results[0]?.status).toBe('fulfilled');
    expect(busy.length).toBeGreaterThan(0);
    const reason: unknown = busy[0]?.status === 'rejected' ? busy[0].reason : undefined;
    expect(isTriplineError(reason) ? reason.details.retryAfterSeconds : undefined).toBe(1);
    expect(publisher.inFlightBytes()).toBe(0);
  });

  it("moves a hung processor's partitions to another member, which replays the uncommitted records", async () => {
    const brokers = kafkaBrokers();
    const settings = freshKafkaSettings(brokers, {
      partitions: 2,
      env: { TRIPLINE_KAFKA_MAX_POLL_INTERVAL_MS: '1000' },
    });
    const publisher = await publisherFor(settings);
    const hung = sourceFor(settings);
    let hungGot = 0;
    await hung.start((batch) => {
      hungGot += batch.events.length;
      return new Promise<void>(() => undefined); // never resolves: results "written", offsets never committed
    });
    await waitFor('the hung member to own every partition', () => hung.assignedPartitions().length === 2);
    const sent = await publishAll(
      publisher,
      Array.from({ length: 4 }, (_, i) =>
        syntheticRequest({ taskId: `t-${i}`, spans: 12, traceId: `${String(i).repeat(2)}${'cd'.repeat(15)}` }),
      ),
    );
    await waitFor('the hung member to take a batch', () => hungGot > 0);

    const healthy = sourceFor(settings);
    const got = new Set<string>();
    await healthy.start((batch) => {
      for (const event of batch.events) got.add(event.id);
      return Promise.resolve();
    });
    // The hung member stops heartbeating after max.poll.interval (1 s) and is expelled after the session
    // timeout (6 s); the healthy member then owns both partitions and replays from the last commit.
    await waitFor(
      'the healthy member to own both partitions and replay every record',
      () => healthy.assignedPartitions().length === 2 && got.size === sent,
      45_000,
    );
    expect(healthy.assignedPartitions()).toEqual([0, 1]);
  }, 60_000);
});
