/**
 * The gateway's side of the Kafka bus: an EventPublisher that writes each OTLP request's spans to the span
 * topics as OTLP protobuf records and resolves only once Kafka acknowledged them.
 *
 * Records. A request's spans are grouped by (kind, task id); each group becomes one `ExportTraceServiceRequest`
 * record (byte-identical to the upstream collector's `otlp_proto` `TracesData`) holding only that group's spans
 * inside the same resource and scope wrappers as the original. The record goes to the topic of its kind, keyed
 * by task id (kafkajs' default partitioner: murmur2, like Java's), so one task's events stay ordered on one
 * partition number of each topic. Task-boundary spans (the span that stands for the whole task, see
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
import { CompressionTypes } from 'kafkajs';
import type { Kafka, Message, Producer, TopicMessages } from 'kafkajs';
import type { OtlpResourceSpans, OtlpScopeSpans, OtlpSpan, OtlpTraceRequest } from '../../../schemas/otlp.ts';
import { encodeTraceRequest } from '../../otlp/codec.ts';
import type { ClassifiedBatch } from '../../core/classify.ts';
import { TriplineError, messageOf } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { EventPublisher } from '../bus.ts';
import type { KafkaSettings, KafkaTopics } from './config.ts';
import { KeyHashPartitioner, partitionOfKey } from './partitioner.ts';

/** A produce request holds at most this many times `maxBatchBytes` (each partition at most `maxBatchBytes`). */
const MAX_REQUEST_BATCHES = 16;

/**
 * Queued bytes worth a produce request without waiting for `lingerMs` (or `maxBatchBytes` when smaller): past
 * ~4 OTLP requests of 100 spans, a bigger produce request saves little CPU per span (kafkajs' encoding: ~850 µs
 * per OTLP request sent alone, ~460 µs in fours, ~350 µs in tens), and clients that wait for their answer before
 * sending again (an OTel exporter has one export in flight) are not held once a few of them are queued.
 */
const ENOUGH_BYTES = 256 * 1024;

/** Record header carrying the tenant of the spans (set by the gateway from the ingest credential). */
export const TENANT_HEADER = 'tripline-tenant';

export interface SpanRecord {
  topic: string;
  /** Task id. */
  key: string;
  value: Uint8Array;
  headers: Record<string, string>;
  /** Spans in the record. */
  spans: number;
}

interface Entry {
  resourceSpans: OtlpResourceSpans;
  scopeSpans: OtlpScopeSpans;
  span: OtlpSpan;
}

/**
 * The records for one classified request (pure; exported for tests and the benchmark).
 *
 * @throws TriplineError OTLP_PAYLOAD_TOO_LARGE when a single span encodes larger than `maxRecordBytes`.
 */
export function buildSpanRecords(batch: Pick<ClassifiedBatch, 'events' | 'boundaries'>, request: OtlpTraceRequest, topics: KafkaTopics, maxRecordBytes: number): SpanRecord[] {
  const tenant = batch.events[0]?.tenant ?? batch.boundaries[0]?.tenant;
  if (tenant === undefined) return [];
  // Keyed by trace: every span of a trace reaches one processor, which resolves the trace's task (a task may be
  // declared by a span that arrives after the others).
  const routes = new Map<string, { topic: string; key: string }>();
  for (const event of batch.events) routes.set(event.traceId + event.spanId, { topic: topics[event.kind], key: event.traceId });
  for (const boundary of batch.boundaries) routes.set(boundary.traceId + boundary.spanId, { topic: topics.tool_call, key: boundary.traceId });

  const groups = new Map<string, { topic: string; key: string; entries: Entry[] }>();
  for (const resourceSpans of request.resourceSpans) {
    for (const scopeSpans of resourceSpans.scopeSpans) {
      for (const span of scopeSpans.spans) {
        const route = routes.get(span.traceId + span.spanId);
        if (route === undefined) continue;
        const groupKey = `${route.topic}\u0000${route.key}`;
        let group = groups.get(groupKey);
        if (group === undefined) {
          group = { ...route, entries: [] };
          groups.set(groupKey, group);
        }
        group.entries.push({ resourceSpans, scopeSpans, span });
      }
    }
  }

  const records: SpanRecord[] = [];
  const headers = { [TENANT_HEADER]: tenant };
  for (const group of groups.values()) {
    for (const { value, spans } of encodeSplit(group.entries, maxRecordBytes)) {
      records.push({ topic: group.topic, key: group.key, value, headers, spans });
    }
  }
  return records;
}

/** Encodes entries as one request, halving until each part fits `maxBytes`. */
function encodeSplit(entries: readonly Entry[], maxBytes: number): { value: Uint8Array; spans: number }[] {
  const value = encodeTraceRequest(wrap(entries));
  if (value.byteLength <= maxBytes) return [{ value, spans: entries.length }];
  if (entries.length === 1) {
    const span = entries[0]?.span;
    throw new TriplineError('OTLP_PAYLOAD_TOO_LARGE', `span ${span?.spanId ?? '?'} (${span?.name ?? '?'}) encodes to ${value.byteLength} bytes, more than the Kafka record limit of ${maxBytes} bytes (TRIPLINE_KAFKA_MAX_RECORD_BYTES)`);
  }
  const half = Math.ceil(entries.length / 2);
  return [...encodeSplit(entries.slice(0, half), maxBytes), ...encodeSplit(entries.slice(half), maxBytes)];
}

/** Rebuilds the resource and scope wrappers around a run of spans (consecutive spans share wrappers). */
function wrap(entries: readonly Entry[]): OtlpTraceRequest {
  const resourceSpans: OtlpResourceSpans[] = [];
  let lastResource: OtlpResourceSpans | undefined;
  let lastScope: OtlpScopeSpans | undefined;
  let currentResource: OtlpResourceSpans | undefined;
  let currentScope: OtlpScopeSpans | undefined;
  for (const entry of entries) {
    if (entry.resourceSpans !== lastResource || currentResource === undefined) {
      lastResource = entry.resourceSpans;
      lastScope = undefined;
      currentResource = { scopeSpans: [] };
      if (entry.resourceSpans.resource !== undefined) currentResource.resource = entry.resourceSpans.resource;
      if (entry.resourceSpans.schemaUrl !== undefined) currentResource.schemaUrl = entry.resourceSpans.schemaUrl;
      resourceSpans.push(currentResource);
    }
    if (entry.scopeSpans !== lastScope || currentScope === undefined) {
      lastScope = entry.scopeSpans;
      currentScope = { spans: [] };
      if (entry.scopeSpans.scope !== undefined) currentScope.scope = entry.scopeSpans.scope;
      if (entry.scopeSpans.schemaUrl !== undefined) currentScope.schemaUrl = entry.scopeSpans.schemaUrl;
      currentResource.scopeSpans.push(currentScope);
    }
    currentScope.spans.push(entry.span);
  }
  return { resourceSpans };
}

// ------------------------------------------------------------------------------------------------------------

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

interface Publication {
  /** When it was accepted (Date.now()): its records wait at most `lingerMs` from then. */
  acceptedAt: number;
  remaining: number;
  settled: boolean;
  /** Timed out: its queued records are skipped. */
  withdrawn: boolean;
  resolve: () => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout | undefined;
}

interface Queued {
  topic: string;
  /** The partition the record will go to (for sizing produce requests; kafkajs partitions it itself). */
  partition: number;
  message: Message;
  bytes: number;
  publication: Publication;
}

export function createKafkaPublisher(options: KafkaPublisherOptions): KafkaEventPublisher {
  const { topics, logger } = options;
  const settings = options.producer;
  const maxConcurrentSends = options.maxConcurrentSends ?? 1;
  const compression = settings.compression === 'gzip' ? CompressionTypes.GZIP : settings.compression === 'zstd' ? CompressionTypes.ZSTD : CompressionTypes.None;
  const newProducer = (): Producer =>
    options.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // kafkajs' DefaultPartitioner (murmur2 of the key), without its per-key Long arithmetic.
      createPartitioner: KeyHashPartitioner,
      // Idempotence needs unlimited retries; short backoffs find a broker that came back within a second or two
      // (the OTel SDK retries only for its export timeout).
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 2000 },
    });
  let producer: Producer = newProducer();
  const queue: Queued[] = [];
  let queueHead = 0;
  /** Bytes of the queued records (not yet taken into a produce request). */
  let queuedBytes = 0;
  const enoughBytes = Math.min(ENOUGH_BYTES, settings.maxBatchBytes);
  const partitionCounts = new Map<string, number>();
  let refreshTimer: NodeJS.Timeout | undefined;
  let bytesInFlight = 0;
  let sending = 0;
  /** Start times of the sends in flight, by send number. */
  const sendStarts = new Map<number, number>();
  let lastSendFailed = false;
  let lingerTimer: NodeJS.Timeout | undefined;
  let closed = false;
  let connected = false;
  const idleWaiters: (() => void)[] = [];
  const stats: KafkaPublisherStats = { publishes: 0, records: 0, spans: 0, bytes: 0, sends: 0, busy: 0, unavailable: 0, failedSends: 0 };
  const retryAfterSeconds = settings.retryAfterSeconds;

  function queuedCount(): number {
    return queue.length - queueHead;
  }

  /** A send has been running longer than the publish timeout: Kafka is down or too slow. */
  function stuck(): boolean {
    const now = Date.now();
    for (const start of sendStarts.values()) if (now - start > settings.publishTimeoutMs) return true;
    return false;
  }

  /** Kafka is failing: the last send failed, or one is stuck. */
  function unhealthy(): boolean {
    return lastSendFailed || stuck();
  }

  function unavailable(message: string, cause?: unknown): TriplineError {
    return new TriplineError('PIPELINE_UNAVAILABLE', message, { cause, details: { retryAfterSeconds } });
  }

  function settle(publication: Publication, error?: unknown): void {
    if (publication.settled) return;
    publication.settled = true;
    if (publication.timer !== undefined) clearTimeout(publication.timer);
    if (error === undefined) publication.resolve();
    else publication.reject(error);
  }

  /**
   * Starts the next produce request when one may go: none is in flight (kafkajs sends one at a time per broker
   * for idempotence), and the queue is worth a request — it holds ENOUGH_BYTES, or its oldest record has
   * waited `lingerMs`, or the publisher is closing. Else a timer fires when the oldest record's linger ends.
   * So the window grows when the load is low (records wait up to `lingerMs` for company instead of going out
   * alone: each produce request and each partition batch in it has a fixed cost) and vanishes when it is high
   * (ENOUGH_BYTES arrive at once), while a request in flight still lets the next one fill up.
   */
  function schedule(): void {
    if (!connected || sending >= maxConcurrentSends || queuedCount() === 0) return;
    const wait = lingerLeft();
    if (wait <= 0) {
      sendNext();
      return;
    }
    if (lingerTimer !== undefined) return; // armed for the same oldest record
    lingerTimer = setTimeout(() => {
      lingerTimer = undefined;
      schedule();
    }, Math.ceil(wait));
  }

  /** Milliseconds the queued records should still wait for company (0 or less: send now). */
  function lingerLeft(): number {
    if (closed || settings.lingerMs === 0 || queuedBytes >= enoughBytes) return 0;
    const oldest = queue[queueHead];
    return oldest === undefined ? 0 : oldest.publication.acceptedAt + settings.lingerMs - Date.now();
  }

  /**
   * The next produce request: records in queue order, at most `maxBatchBytes` per partition (kafkajs writes
   * a request's records of one partition as one record batch, which the broker caps at `message.max.bytes`)
   * and MAX_REQUEST_BATCHES times that in all. A record whose partition is full waits, and so do the later
   * records of that partition, so each partition keeps its order.
   */
  function takeBatch(): Queued[] {
    const taken: Queued[] = [];
    const deferred: Queued[] = [];
    const perPartition = new Map<string, number>();
    const full = new Set<string>();
    const maxRequestBytes = settings.maxBatchBytes * MAX_REQUEST_BATCHES;
    let total = 0;
    let index = queueHead;
    for (; index < queue.length; index += 1) {
      const next = queue[index];
      if (next === undefined) continue;
      if (next.publication.withdrawn) {
        bytesInFlight -= next.bytes;
        queuedBytes -= next.bytes;
        continue;
      }
      if (taken.length > 0 && total + next.bytes > maxRequestBytes) break;
      const slot = `${next.topic}|${String(next.partition)}`;
      const used = perPartition.get(slot) ?? 0;
      if (full.has(slot) || (used > 0 && used + next.bytes > settings.maxBatchBytes)) {
        full.add(slot);
        deferred.push(next);
        continue;
      }
      perPartition.set(slot, used + next.bytes);
      total += next.bytes;
      queuedBytes -= next.bytes;
      taken.push(next);
    }
    if (deferred.length === 0 && index - queueHead < 4096 && index < queue.length) {
      queueHead = index;
    } else {
      const rest = queue.slice(index);
      queue.length = 0;
      queue.push(...deferred, ...rest);
      queueHead = 0;
    }
    if (queueHead > 1024 && queueHead * 2 > queue.length) {
      queue.splice(0, queueHead);
      queueHead = 0;
    }
    return taken;
  }

  /** The partition the producer's partitioner (KeyHashPartitioner) picks for a key. */
  function partitionOf(topic: string, key: string): number {
    return partitionOfKey(key, partitionCounts.get(topic) ?? 1);
  }

  async function refreshPartitionCounts(): Promise<void> {
    const admin = options.kafka.admin();
    try {
      await admin.connect();
      const metadata = await admin.fetchTopicMetadata({ topics: [topics.tool_call, topics.data_access, topics.privilege_change] });
      for (const topic of metadata.topics) partitionCounts.set(topic.name, topic.partitions.length);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  function sendNext(): void {
    if (lingerTimer !== undefined) {
      clearTimeout(lingerTimer);
      lingerTimer = undefined;
    }
    if (sending >= maxConcurrentSends) return;
    const batch = takeBatch();
    if (batch.length === 0) {
      notifyIdle();
      return;
    }
    sending += 1;
    stats.sends += 1;
    const sendNumber = stats.sends;
    sendStarts.set(sendNumber, Date.now());
    const byTopic = new Map<string, Message[]>();
    for (const item of batch) {
      let list = byTopic.get(item.topic);
      if (list === undefined) {
        list = [];
        byTopic.set(item.topic, list);
      }
      list.push(item.message);
    }
    const topicMessages: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    producer
      .sendBatch({ topicMessages, acks: -1, compression })
      .then(
        () => {
          lastSendFailed = false;
          for (const item of batch) {
            bytesInFlight -= item.bytes;
            item.publication.remaining -= 1;
            if (item.publication.remaining === 0) settle(item.publication);
          }
        },
        (error: unknown) => {
          // Idempotent kafkajs retries retriable errors without limit, so this is a lasting failure (e.g. a
          // record over the broker's limit, authorisation): answer the publishers; the agents retry.
          lastSendFailed = true;
          stats.failedSends += 1;
          const tooLarge = (error as { type?: unknown }).type === 'MESSAGE_TOO_LARGE';
          logger.error(
            { err: messageOf(error), records: batch.length },
            tooLarge
              ? "Kafka refused a produce request as too large: set TRIPLINE_KAFKA_MAX_BATCH_BYTES (and _MAX_RECORD_BYTES) below the broker's message.max.bytes"
              : 'Kafka refused a produce request',
          );
          const failure = unavailable(`Kafka refused the spans: ${messageOf(error)}`, error);
          for (const item of batch) {
            bytesInFlight -= item.bytes;
            settle(item.publication, failure);
          }
          replaceProducer();
        },
      )
      .finally(() => {
        sending -= 1;
        sendStarts.delete(sendNumber);
        if (queuedCount() > 0) schedule();
        else notifyIdle();
      });
  }

  /**
   * A failed produce request may have been written to some of its partitions (e.g. the broker answered
   * NOT_LEADER for one partition while stopping, then went away) while kafkajs, when it gives up, rolls the
   * idempotence sequence numbers of all of them back. The producer's next batch to such a partition then
   * carries the sequence number of a batch the broker holds, and the broker acknowledges it as a duplicate
   * without writing it: spans answered 200 and lost (found by the broker-restart drill,
   * test/drills/kafka-broker-restart.test.ts). So after a failure nothing more is sent with that producer: a new
   * one (a new producer id, sequences from 0) replaces it, connected with retries until Kafka answers.
   */
  function replaceProducer(): void {
    const failed = producer;
    connected = false;
    failed.disconnect().catch((error: unknown) => logger.debug({ err: messageOf(error) }, 'disconnecting a failed Kafka producer failed'));
    producer = newProducer();
    const replacement = producer;
    const connect = (attempt: number): void => {
      if (closed || producer !== replacement) return;
      replacement.connect().then(
        () => {
          if (producer !== replacement) return;
          connected = true;
          logger.info('a new Kafka producer replaced the one whose produce request failed');
          schedule();
        },
        (error: unknown) => {
          const delay = Math.min(5000, 100 * 2 ** Math.min(attempt, 6));
          logger.warn({ err: messageOf(error), retryInMs: delay }, 'connecting a new Kafka producer failed; retrying');
          setTimeout(() => connect(attempt + 1), delay).unref();
        },
      );
    };
    connect(1);
  }

  function notifyIdle(): void {
    if (sending > 0 || queuedCount() > 0) return;
    for (const resolve of idleWaiters.splice(0)) resolve();
  }

  function idle(): Promise<void> {
    if (sending === 0 && queuedCount() === 0) return Promise.resolve();
    return new Promise((resolve) => idleWaiters.push(resolve));
  }

  return {
    async start() {
      try {
        await producer.connect();
        await refreshPartitionCounts();
      } catch (error) {
        throw new TriplineError('KAFKA_UNAVAILABLE', `could not connect the Kafka producer: ${messageOf(error)}`, { cause: error, details: { retryAfterSeconds } });
      }
      connected = true;
      // Partitions may be added while running: keep the sizing of produce requests close to the truth.
      refreshTimer = setInterval(() => {
        refreshPartitionCounts().catch((error: unknown) => logger.debug({ err: messageOf(error) }, 'refreshing partition counts failed'));
      }, 5 * 60_000);
      refreshTimer.unref();
      schedule();
    },

    publish(batch, request) {
      if (closed) return Promise.reject(new TriplineError('SHUTTING_DOWN', 'Tripline is stopping', { details: { retryAfterSeconds: 5 } }));
      let records: SpanRecord[];
      try {
        records = buildSpanRecords(batch, request, topics, settings.maxRecordBytes);
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
      return this.publishRecords(records);
    },

    publishRecords(records) {
      if (closed) return Promise.reject(new TriplineError('SHUTTING_DOWN', 'Tripline is stopping', { details: { retryAfterSeconds: 5 } }));
      if (records.length === 0) return Promise.resolve();
      if (stuck()) {
        // Waiting out the timeout would only hold the agent and memory: Kafka is not answering now.
        stats.unavailable += 1;
        return Promise.reject(unavailable(`Kafka has not acknowledged spans for more than ${settings.publishTimeoutMs} ms; retry later`));
      }
      let bytes = 0;
      for (const record of records) bytes += record.value.byteLength;
      if (bytesInFlight > 0 && bytesInFlight + bytes > settings.maxInFlightBytes) {
        if (unhealthy()) {
          stats.unavailable += 1;
          return Promise.reject(unavailable(`Kafka is not acknowledging spans (${bytesInFlight} bytes waiting); retry later`));
        }
        stats.busy += 1;
        return Promise.reject(
          new TriplineError('PIPELINE_BUSY', `${bytesInFlight} bytes of spans are waiting for Kafka (limit ${settings.maxInFlightBytes}); retry later`, {
            details: { retryAfterSeconds: 1 },
          }),
        );
      }
      stats.publishes += 1;
      stats.records += records.length;
      stats.bytes += bytes;
      for (const record of records) stats.spans += record.spans;
      return new Promise<void>((resolve, reject) => {
        const publication: Publication = { acceptedAt: Date.now(), remaining: records.length, settled: false, withdrawn: false, resolve, reject, timer: undefined };
        publication.timer = setTimeout(() => {
          publication.withdrawn = true;
          stats.unavailable += 1;
          settle(publication, unavailable(`Kafka did not acknowledge the spans within ${settings.publishTimeoutMs} ms; retry later`));
        }, settings.publishTimeoutMs);
        for (const record of records) {
          const message: Message = { key: record.key, value: Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength), headers: record.headers };
          queue.push({ topic: record.topic, partition: partitionOf(record.topic, record.key), message, bytes: record.value.byteLength, publication });
        }
        bytesInFlight += bytes;
        queuedBytes += bytes;
        schedule();
      });
    },

    async close() {
      if (closed) return;
      closed = true;
      if (connected) {
        // Drain what was accepted (without lingering), for at most one publish timeout.
        if (lingerTimer !== undefined) clearTimeout(lingerTimer);
        lingerTimer = undefined;
        schedule();
        let timer: NodeJS.Timeout | undefined;
        const drained = await Promise.race([
          idle().then(() => true),
          new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), settings.publishTimeoutMs))),
        ]);
        clearTimeout(timer);
        if (!drained) logger.warn({ bytes: bytesInFlight }, 'stopping with spans Kafka has not acknowledged');
      }
      if (lingerTimer !== undefined) clearTimeout(lingerTimer);
      if (refreshTimer !== undefined) clearInterval(refreshTimer);
      const stopping = new TriplineError('SHUTTING_DOWN', 'Tripline is stopping', { details: { retryAfterSeconds: 5 } });
      for (let i = queueHead; i < queue.length; i += 1) {
        const item = queue[i];
        if (item !== undefined) settle(item.publication, stopping);
      }
      queue.length = 0;
      queueHead = 0;
      queuedBytes = 0;
      await producer.disconnect().catch((error: unknown) => logger.warn({ err: messageOf(error) }, 'disconnecting the Kafka producer failed'));
      connected = false;
    },

    inFlightBytes: () => bytesInFlight,
    stats: () => stats,
  };
}
