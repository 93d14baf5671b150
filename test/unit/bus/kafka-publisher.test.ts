/**
 * The Kafka publisher's accumulator against a fake kafkajs producer (fake timers, no broker): records of several
 * OTLP requests share a produce request, a record waits at most the linger for company, enough queued bytes go
 * out at once, and a publish() resolves only once Kafka acknowledged its records.
 */
import type { Kafka, TopicMessages } from 'kafkajs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadKafkaSettings } from '../../../services/bus/kafka/config.ts';
import { createKafkaPublisher } from '../../../services/bus/kafka/publisher.ts';
import type { KafkaEventPublisher, SpanRecord } from '../../../services/bus/kafka/publisher.ts';
import { createLogger } from '../../../services/shared/logger.ts';

interface Send {
  topicMessages: TopicMessages[];
  /** Which producer sent it (1 for the first the publisher made). */
  producer: number;
  answer(): void;
  fail(error: Error): void;
}

function fakeKafka(): { kafka: Kafka; sends: Send[] } {
  const sends: Send[] = [];
  let producers = 0;
  const newProducer = (number: number): object => ({
    connect: () => Promise.resolve(),
    disconnect: () => Promise.resolve(),
    sendBatch: (request: { topicMessages: TopicMessages[] }) =>
      new Promise((resolve, reject) =>
        sends.push({ topicMessages: request.topicMessages, producer: number, answer: () => resolve([]), fail: reject }),
      ),
  });
  const producer = (): object => {
    producers += 1;
    return newProducer(producers);
  };
  const admin = {
    connect: () => Promise.resolve(),
    disconnect: () => Promise.resolve(),
    fetchTopicMetadata: ({ topics }: { topics: string[] }) =>
      Promise.resolve({
        topics: topics.map((name) => ({
          name,
          partitions: Array.from({ length: 6 }, (_, partitionId) => ({ partitionId })),
        })),
      }),
  };
  return { kafka: { producer, admin: () => admin } as unknown as Kafka, sends };
}

const settings = loadKafkaSettings({ brokers: ['kafka:9092'], clientId: 'test', partitions: 6, groupId: 'test' }, {});
const LINGER = settings.producer.lingerMs;

const record = (key: string, bytes: number): SpanRecord => ({
  topic: settings.topics.tool_call,
  key,
  value: new Uint8Array(bytes),
  headers: { 'tripline-tenant': 't' },
  spans: 1,
});
const messagesOf = (send: Send | undefined): string[] =>
  (send?.topicMessages ?? []).flatMap((topic) => topic.messages.map((message) => String(message.key)));

/** Lets promise callbacks run (fake timers leave microtasks alone). */
const settle = async (): Promise<void> => {
  await vi.advanceTimersByTimeAsync(0);
};

describe('Kafka publisher accumulator', () => {
  let publisher: KafkaEventPublisher;
  let sends: Send[];

  beforeEach(async () => {
    vi.useFakeTimers();
    const fake = fakeKafka();
    sends = fake.sends;
    publisher = createKafkaPublisher({
      kafka: fake.kafka,
      topics: settings.topics,
      producer: settings.producer,
      logger: createLogger('silent'),
    });
    await publisher.start();
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('lingers up to lingerMs for company, then sends the records of several requests in one produce request', async () => {
    expect(LINGER).toBe(100);
    let firstDone = false;
    const first = publisher.publishRecords([record('a', 1000), record('b', 1000)]).then(() => (firstDone = true));
    await vi.advanceTimersByTimeAsync(LINGER / 2);
    const second = publisher.publishRecords([record('c', 1000)]);
    await vi.advanceTimersByTimeAsync(LINGER / 2 - 1);
    expect(sends).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(sends).toHaveLength(1);
    expect(messagesOf(sends[0]).sort()).toEqual(['a', 'b', 'c']);
    // Acknowledged only when Kafka answers.
    await settle();
    expect(firstDone).toBe(false);
    sends[0]?.answer();
    await Promise.all([first, second]);
    expect(firstDone).toBe(true);
  });

  it('sends at once when enough bytes are queued, and the next request fills while one is in flight', async () => {
    const big = publisher.publishRecords([record('big', 300 * 1024)]);
    await settle();
    expect(sends).toHaveLength(1);
    const during = publisher.publishRecords([record('small', 1000)]);
    await vi.advanceTimersByTimeAsync(10);
    sends[0]?.answer();
    await big;
    // The small record waits out its own linger (counted from its arrival), not a new one.
    await vi.advanceTimersByTimeAsync(LINGER - 11);
    expect(sends).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sends).toHaveLength(2);
    expect(messagesOf(sends[1])).toEqual(['small']);
    sends[1]?.answer();
    await during;
  });

  it('rejects the publishers of a produce request Kafka refuses', async () => {
    const refused = publisher.publishRecords([record('x', 1000)]);
    const outcome = refused.then(
      () => 'resolved',
      (error: unknown) => (error as { code?: string }).code,
    );
    await vi.advanceTimersByTimeAsync(LINGER);
    sends[0]?.fail(new Error('not authorised'));
    expect(await outcome).toBe('PIPELINE_UNAVAILABLE');
  });

  it('sends nothing more with a producer whose produce request failed: a new producer takes over', async () => {
    // kafkajs rolls the idempotence sequence numbers of a failed request back, also of partitions the broker
    // wrote: that producer's next batch there would be taken for a duplicate and dropped.
    const refused = publisher.publishRecords([record('x', 1000)]).catch(() => 'refused');
    await vi.advanceTimersByTimeAsync(LINGER);
    sends[0]?.fail(new Error('Connection error: connect ECONNREFUSED'));
    expect(await refused).toBe('refused');
    const next = publisher.publishRecords([record('y', 1000)]);
    await vi.advanceTimersByTimeAsync(LINGER);
    expect(sends.map((send) => send.producer)).toEqual([1, 2]);
    sends[1]?.answer();
    await next;
  });

  it('sends what is queued without lingering when closing', async () => {
    const queued = publisher.publishRecords([record('last', 1000)]);
    const closing = publisher.close();
    await settle();
    expect(sends).toHaveLength(1);
    sends[0]?.answer();
    await queued;
    await closing;
  });
});
