/**
 * The gateway's side of the Kafka bus: an EventPublisher that writes each OTLP request's spans to the span
 * topics as OTLP protobuf records and resolves only once Kafka acknowledged them.
 *
 * Records. A request's spans are grouped by (kind, trace id); each group becomes one `ExportTraceServiceRequest`
 * record (byte-identical to the upstream collector's `otlp_proto` `TracesData`) holding only that group's spans
 * inside the same resource and scope wrappers as the original. The record goes to the topic of its kind, keyed
 * by trace id (kafkajs' default partitioner: murmur2, like Java's), so one trace's events (and the task
 * declaration that may come last in it) stay ordered on one partition number of each topic. Task-boundary spans (the span that stands for the whole task, see
 * classify.ts) go to the tool_calls topic. A group larger than `maxRecordBytes` is split into several records.
 * The tenant travels in the `tripline-tenant` header. Spans that are none of the three kinds and no task
 * boundary are not forwarded (the processor would drop them too).
 *
 * Delivery. kafkajs' idempotent producer (`acks: -1`, retries without limit, as idempotence requires) behind a
 * small accumulator (kafkajs does not batch on its own): one produce request at a time carries the records of
 * many `publish()` calls, for all topics and partitions (one request per broker). The next request goes out once
 * the one in flight is answered and the queue holds ENOUGH_BYTES, or its oldest record has waited `lingerMs`:
 * at low load records wait for company instead of paying a produce request each, at high load the queue fills
 * while a request is in flight and goes out at once. A produce request holds at most `maxBatchBytes` per
 * partition. `publish()` resolves when Kafka acknowledged every record of the call.
 *
 * Back-pressure. `publish()` rejects with PIPELINE_UNAVAILABLE (→ 503 + Retry-After) when Kafka has not
 * acknowledged within `publishTimeoutMs`; the request's records that were not sent yet are withdrawn, those in
 * flight may still land, and the agent's retry then adds duplicates that the processor's deterministic ids make
 * harmless. Accepted-but-unacknowledged bytes are capped at `maxInFlightBytes`: past it, `publish()` rejects at
 * once with PIPELINE_BUSY (429) while Kafka is healthy, or PIPELINE_UNAVAILABLE (503) while it is failing.
 */
import { Buffer } from 'node:buffer';
import type { Kafka, Message } from 'kafkajs';
import { TriplineError, messageOf } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { EventPublisher } from '../bus.ts';
import type { KafkaSettings, KafkaTopics } from './config.ts';
import { SpanTopicPartitionCounts } from './partition-counts.ts';
import { settle } from './produce-queue.ts';
import type { Publication } from './produce-queue.ts';
import { ProduceSender } from './produce-sender.ts';
import { buildSpanRecords } from './span-record-encoding.ts';
import type { SpanRecord } from './span-record-encoding.ts';

export { AGENTS_HEADER, TENANT_HEADER, buildSpanRecords, recordHeaders } from './span-record-encoding.ts';
export type { SpanRecord } from './span-record-encoding.ts';

export interface KafkaPublisherOptions {
  kafka: Kafka;
  topics: KafkaTopics;
  producer: KafkaSettings['producer'];
  logger: Logger;
  /** Produce requests in flight at once (kafkajs serialises them per broker for idempotence). @default 1 */
  maxConcurrentSends?: number;
}

export interface KafkaPublisherStats {
  publishes: number;
  records: number;
  spans: number;
  bytes: number;
  /** Produce calls (`sendBatch`) and the records they carried. */
  sends: number;
  /** Publishes answered PIPELINE_BUSY / PIPELINE_UNAVAILABLE. */
  busy: number;
  unavailable: number;
  failedSends: number;
}

export interface KafkaEventPublisher extends EventPublisher {
  /**
   * Publishes records already built (the gateway's byte-level router, services/otlp/route.ts):
   * the same acknowledgement, time-out and back-pressure as `publish`.
   */
  publishRecords(records: readonly SpanRecord[]): Promise<void>;
  /** Connects the producer (call once before publishing). */
  start(): Promise<void>;
  /** Encoded bytes accepted and not yet acknowledged (queued or in flight). */
  inFlightBytes(): number;
  stats(): Readonly<KafkaPublisherStats>;
}

export function createKafkaPublisher(options: KafkaPublisherOptions): KafkaEventPublisher {
  const { topics, logger } = options;
  const settings = options.producer;
  const stats: KafkaPublisherStats = {
    publishes: 0,
    records: 0,
    spans: 0,
    bytes: 0,
    sends: 0,
    busy: 0,
    unavailable: 0,
    failedSends: 0,
  };
  const sender = new ProduceSender({
    kafka: options.kafka,
    settings,
    logger,
    maxConcurrentSends: options.maxConcurrentSends ?? 1,
    stats,
  });
  const partitionCounts = new SpanTopicPartitionCounts(options.kafka, topics);
  const retryAfterSeconds = settings.retryAfterSeconds;
  const shuttingDown = (): TriplineError =>
    new TriplineError('SHUTTING_DOWN', 'Tripline is stopping', { details: { retryAfterSeconds: 5 } });

  /** Why Kafka cannot take `bytes` more now (undefined: it can), counted in the stats. */
  function refusal(bytes: number): TriplineError | undefined {
    if (sender.stuck()) {
      // Waiting out the timeout would only hold the agent and memory: Kafka is not answering now.
      stats.unavailable += 1;
      return sender.unavailable(
        `Kafka has not acknowledged spans for more than ${settings.publishTimeoutMs} ms; retry later`,
      );
    }
    const { bytesInFlight } = sender;
    if (bytesInFlight > 0 && bytesInFlight + bytes > settings.maxInFlightBytes) {
      if (sender.unhealthy()) {
        stats.unavailable += 1;
        return sender.unavailable(`Kafka is not acknowledging spans (${bytesInFlight} bytes waiting); retry later`);
      }
      stats.busy += 1;
      return new TriplineError(
        'PIPELINE_BUSY',
        `${bytesInFlight} bytes of spans are waiting for Kafka (limit ${settings.maxInFlightBytes}); retry later`,
        {
          details: { retryAfterSeconds: 1 },
        },
      );
    }
    return undefined;
  }

  /** Queues the records of one accepted publication; it is answered when Kafka acknowledged them all. */
  function accept(records: readonly SpanRecord[], bytes: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const publication: Publication = {
        acceptedAt: Date.now(),
        remaining: records.length,
        settled: false,
        withdrawn: false,
        resolve,
        reject,
        timer: undefined,
      };
      publication.timer = setTimeout(() => {
        publication.withdrawn = true;
        stats.unavailable += 1;
        settle(
          publication,
          sender.unavailable(`Kafka did not acknowledge the spans within ${settings.publishTimeoutMs} ms; retry later`),
        );
      }, settings.publishTimeoutMs);
      for (const record of records) {
        const message: Message = {
          key: record.key,
          value: Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength),
          headers: record.headers,
        };
        sender.queue.push({
          topic: record.topic,
          partition: partitionCounts.partitionOf(record.topic, record.key),
          message,
          bytes: record.value.byteLength,
          publication,
        });
      }
      sender.bytesInFlight += bytes;
      sender.schedule();
    });
  }

  return {
    async start() {
      try {
        await sender.connect();
        await partitionCounts.refresh();
      } catch (error) {
        throw new TriplineError('KAFKA_UNAVAILABLE', `could not connect the Kafka producer: ${messageOf(error)}`, {
          cause: error,
          details: { retryAfterSeconds },
        });
      }
      sender.connected = true;
      partitionCounts.refreshEvery(5 * 60_000, logger);
      sender.schedule();
    },

    publish(batch, request) {
      if (sender.closed) return Promise.reject(shuttingDown());
      let records: SpanRecord[];
      try {
        records = buildSpanRecords(batch, request, topics, settings.maxRecordBytes);
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
      return this.publishRecords(records);
    },

    publishRecords(records) {
      if (sender.closed) return Promise.reject(shuttingDown());
      if (records.length === 0) return Promise.resolve();
      let bytes = 0;
      for (const record of records) bytes += record.value.byteLength;
      const refused = refusal(bytes);
      if (refused !== undefined) return Promise.reject(refused);
      stats.publishes += 1;
      stats.records += records.length;
      stats.bytes += bytes;
      for (const record of records) stats.spans += record.spans;
      return accept(records, bytes);
    },

    async close() {
      if (sender.closed) return;
      sender.closed = true;
      // Drain what was accepted (without lingering), for at most one publish timeout.
      if (sender.connected) await sender.drain();
      partitionCounts.stopRefreshing();
      await sender.shutdown(shuttingDown());
    },

    inFlightBytes: () => sender.bytesInFlight,
    stats: () => stats,
  };
}
