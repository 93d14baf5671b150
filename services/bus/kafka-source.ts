/**
 * The processor's side of the Kafka bus: an EventSource over one consumer group reading the three span topics.
 *
 * Records. Each record is an OTLP `ExportTraceServiceRequest`/`TracesData` in protobuf (what Tripline's gateway
 * and the upstream collector's kafka exporter with `otlp_proto` write; `otlp_json` records, which start with
 * `{`, are read too). A record may hold many resources and spans; its key may be a task id (the gateway), a
 * trace id (the collector with `partition_traces_by_id: true`) or null, and is not needed to decode it. Spans are
 * classified with the same `classifyRequest` as in embedded mode; the tenant is the `tripline-tenant` header, or
 * `default`. A record that cannot be decoded, is empty or holds no span is copied to the dead-letter topic with
 * headers `tripline-dlq-reason`, `tripline-dlq-topic`, `tripline-dlq-partition`, `tripline-dlq-offset` (its
 * own headers and key kept) and skipped: it never blocks its partition.
 *
 * Batches. The batches of one fetch (all partitions the fetch returned, across the three topics) are merged and
 * handed to the handler as one EventBatch (or several of at most `maxEventsPerBatch` events, the task-boundary
 * spans with the last), so the store takes few, large writes and the events of a task that arrived on different
 * topics meet in one batch.
 *
 * Commits (at-least-once). Offsets are committed only after the handler resolved, i.e. after the results are
 * durable in ClickHouse, and after the dead letters were acknowledged. A member that dies before committing
 * leaves its records to the next owner, which replays them; the processor's outputs have deterministic ids so
 * the replay adds no duplicate. Records this process already handed to its handler are never handed again
 * (kept per partition), even if a failed commit makes Kafka deliver them again. On a rebalance kafkajs lets
 * the batch in hand finish and commit before the member rejoins (the classic, eager protocol).
 *
 * Co-partitioning. The consumer uses `coPartitionAssigner`, so this member owns the same partition numbers of
 * all three topics. `onAssignment` reports each new assignment (the processor then looks up tasks it has not
 * seen in the store before scoring them), `onTasksReleased` the tasks of partition numbers it lost, so their
 * state can be dropped and rebuilt by whoever owns them next.
 */
import { Buffer } from 'node:buffer';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { CompressionTypes, Partitioners } from 'kafkajs';
import type { Batch, Consumer, IHeaders, Kafka, KafkaMessage, Message, Producer } from 'kafkajs';
import type { OtlpFormat } from '../../schemas/otlp.ts';
import { decodeTraceRequest } from '../../collectors/gateway/otlp-codec.ts';
import { classifyRequest } from '../core/classify.ts';
import { TriplineError, messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { EventBatch, EventSource } from './bus.ts';
import { coPartitionAssigner } from './kafka-assigner.ts';
import { spanTopics } from './kafka-config.ts';
import type { KafkaSettings } from './kafka-config.ts';
import { TENANT_HEADER } from './kafka-publisher.ts';

export const DEFAULT_TENANT = 'default';

/** Headers a dead-letter record carries besides the original record's own. */
export const DEAD_LETTER_HEADERS = {
  reason: 'tripline-dlq-reason',
  topic: 'tripline-dlq-topic',
  partition: 'tripline-dlq-partition',
  offset: 'tripline-dlq-offset',
} as const;

export interface TaskRef {
  tenant: string;
  taskId: string;
}

export interface KafkaSourceOptions {
  kafka: Kafka;
  settings: Pick<KafkaSettings, 'groupId' | 'topics' | 'consumer' | 'partitions'>;
  logger: Logger;
  /** A group without committed offsets starts at the earliest record. @default true */
  fromBeginning?: boolean;
  /**
   * Runs after the handler resolved and before the offsets are committed; a rejection is retried (the
   * handler is not run again). The processor service flushes its alert/revocation publications here.
   */
  beforeCommit?: () => Promise<void>;
  /**
   * After each (re)join of the group: the partition numbers this member owns now and those it gained (which
   * may hold tasks another processor began). Runs before any record of the new assignment is handed over.
   */
  onAssignment?: (assignment: { partitions: number[]; gained: number[] }) => void;
  /** Tasks seen on partition numbers this member lost in a rebalance. */
  onTasksReleased?: (tasks: TaskRef[]) => void;
  /** Most task ids remembered per partition number for `onTasksReleased`. @default 50000 */
  tasksPerPartitionMemory?: number;
  /**
   * How long `stop()` waits for the batch in hand; after it the member leaves without committing that batch
   * (it is replayed by the next owner). @default 30000
   */
  drainTimeoutMs?: number;
  /**
   * Most events per handler call: a big fetch is handed over in several calls (the task-boundary spans with the
   * last one), all of them before the fetch's offsets are committed. @default 5000
   */
  maxEventsPerBatch?: number;
}

export interface KafkaSourceStats {
  records: number;
  deadLetters: number;
  /** Records skipped because this process had handled them already. */
  skippedReplays: number;
  batches: number;
  events: number;
  boundaries: number;
  commits: number;
  failedCommits: number;
}

export interface KafkaEventSource extends EventSource {
  /** Partition numbers this member owns now. */
  assignedPartitions(): number[];
  stats(): Readonly<KafkaSourceStats>;
}

interface Part {
  topic: string;
  partition: number;
  lastOffset: string;
  /** Highest offset handed to the handler from this part (null when the part held none to hand). */
  handledUpTo: bigint | null;
  events: EventBatch;
  deadLetters: { topic: string; messages: Message[] };
  tasks: TaskRef[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

type Decoded = { ok: true; events: EventBatch } | { ok: false; reason: string };

/** Decodes and classifies one span record (exported for tests). */
export function decodeSpanRecord(value: Buffer | null, headers: IHeaders | undefined): Decoded {
  if (value === null || value.byteLength === 0) return { ok: false, reason: 'empty record' };
  const format: OtlpFormat = value[0] === 0x7b ? 'json' : 'protobuf';
  let tenant = DEFAULT_TENANT;
  const header = headerString(headers, TENANT_HEADER);
  if (header !== undefined && header !== '' && header.length <= 256) tenant = header;
  try {
    const request = decodeTraceRequest(value, format);
    let spans = 0;
    for (const resourceSpans of request.resourceSpans) for (const scopeSpans of resourceSpans.scopeSpans) spans += scopeSpans.spans.length;
    if (spans === 0) return { ok: false, reason: `no spans in the ${format === 'json' ? 'OTLP/JSON' : 'OTLP protobuf'} record` };
    const classified = classifyRequest(request, tenant);
    return { ok: true, events: { events: classified.events, boundaries: classified.boundaries } };
  } catch (error) {
    return { ok: false, reason: `not an OTLP trace record (${format}): ${messageOf(error)}` };
  }
}

function headerString(headers: IHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  const first = Array.isArray(value) ? value[0] : value;
  if (first === undefined) return undefined;
  return typeof first === 'string' ? first : first.toString('utf8');
}

export function createKafkaSource(options: KafkaSourceOptions): KafkaEventSource {
  const { kafka, settings, logger } = options;
  const topics = spanTopics(settings.topics);
  const consumer: Consumer = kafka.consumer({
    groupId: settings.groupId,
    partitionAssigners: [coPartitionAssigner],
    sessionTimeout: settings.consumer.sessionTimeoutMs,
    heartbeatInterval: settings.consumer.heartbeatIntervalMs,
    rebalanceTimeout: settings.consumer.rebalanceTimeoutMs,
    maxBytes: settings.consumer.maxBytes,
    maxWaitTimeInMs: 500,
    allowAutoTopicCreation: false,
  });
  const deadLetterProducer: Producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    // Idempotence needs unlimited retries (kafkajs warns otherwise); short backoffs.
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 2000 },
  });
  const stats: KafkaSourceStats = { records: 0, deadLetters: 0, skippedReplays: 0, batches: 0, events: 0, boundaries: 0, commits: 0, failedCommits: 0 };
  /** Per `topic|partition`: the highest offset handed to the handler by this process. */
  const handled = new Map<string, bigint>();
  /** Per partition number: tasks seen there (most recent last), for onTasksReleased. */
  const tasksByNumber = new Map<number, Map<string, TaskRef>>();
  const taskMemory = options.tasksPerPartitionMemory ?? 50_000;
  let assigned: number[] = [];
  let pending: Part[] = [];
  /** Parts whose eachBatch call waits for its flush. */
  const waiting = new Set<Part>();
  let flushScheduled = false;
  let inFlight: Promise<void> = Promise.resolve();
  let handler: ((batch: EventBatch) => Promise<void>) | undefined;
  let started = false;
  let stopping: Promise<void> | undefined;
  let stopRequested = false;

  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    const numbers = new Set<number>();
    for (const list of Object.values(event.payload.memberAssignment)) for (const n of list) numbers.add(n);
    const released: TaskRef[] = [];
    for (const n of assigned) {
      if (numbers.has(n)) continue;
      const tasks = tasksByNumber.get(n);
      if (tasks !== undefined) released.push(...tasks.values());
      tasksByNumber.delete(n);
    }
    const gained = [...numbers].filter((n) => !assigned.includes(n)).sort((a, b) => a - b);
    assigned = [...numbers].sort((a, b) => a - b);
    try {
      options.onAssignment?.({ partitions: [...assigned], gained });
    } catch (error) {
      logger.error({ err: messageOf(error) }, 'onAssignment failed');
    }
    logger.info({ partitions: assigned, memberId: event.payload.memberId, leader: event.payload.isLeader, releasedTasks: released.length }, 'joined the processor group');
    if (released.length > 0) {
      try {
        options.onTasksReleased?.(released);
      } catch (error) {
        logger.error({ err: messageOf(error) }, 'onTasksReleased failed');
      }
    }
  });
  consumer.on(consumer.events.CRASH, (event) => {
    const fields = { err: messageOf(event.payload.error), restart: event.payload.restart };
    if (event.payload.restart) logger.warn(fields, 'the Kafka consumer lost the cluster; restarting it');
    else logger.error(fields, 'the Kafka consumer crashed and will not restart');
  });

  function rememberTasks(partition: number, tasks: readonly TaskRef[]): void {
    let map = tasksByNumber.get(partition);
    if (map === undefined) {
      map = new Map();
      tasksByNumber.set(partition, map);
    }
    for (const task of tasks) {
      const key = `${task.tenant}\u0000${task.taskId}`;
      map.delete(key);
      map.set(key, task);
    }
    while (map.size > taskMemory) {
      const oldest = map.keys().next().value;
      if (oldest === undefined) break;
      map.delete(oldest);
    }
  }

  function toPart(batch: Batch): Omit<Part, 'resolve' | 'reject'> {
    const key = `${batch.topic}|${batch.partition}`;
    const already = handled.get(key);
    const part: Omit<Part, 'resolve' | 'reject'> = {
      topic: batch.topic,
      partition: batch.partition,
      lastOffset: batch.lastOffset(),
      handledUpTo: null,
      events: { events: [], boundaries: [] },
      deadLetters: { topic: settings.topics.deadLetter, messages: [] },
      tasks: [],
    };
    const tasks = new Map<string, TaskRef>();
    for (const message of batch.messages) {
      const offset = BigInt(message.offset);
      if (already !== undefined && offset <= already) {
        stats.skippedReplays += 1;
        continue;
      }
      stats.records += 1;
      part.handledUpTo = offset;
      const decoded = decodeSpanRecord(message.value, message.headers);
      if (!decoded.ok) {
        part.deadLetters.messages.push(deadLetterOf(message, decoded.reason, batch));
        logger.warn({ topic: batch.topic, partition: batch.partition, offset: message.offset, reason: decoded.reason }, 'moving an undecodable record to the dead-letter topic');
        continue;
      }
      for (const event of decoded.events.events) {
        part.events.events.push(event);
        tasks.set(`${event.tenant}\u0000${event.taskId}`, { tenant: event.tenant, taskId: event.taskId });
      }
      for (const boundary of decoded.events.boundaries) part.events.boundaries.push(boundary);
    }
    part.tasks = [...tasks.values()];
    return part;
  }

  function deadLetterOf(message: KafkaMessage, reason: string, batch: Batch): Message {
    const headers: IHeaders = { ...message.headers };
    headers[DEAD_LETTER_HEADERS.reason] = reason.slice(0, 1000);
    headers[DEAD_LETTER_HEADERS.topic] = batch.topic;
    headers[DEAD_LETTER_HEADERS.partition] = String(batch.partition);
    headers[DEAD_LETTER_HEADERS.offset] = message.offset;
    return { key: message.key, value: message.value, headers };
  }

  function scheduleFlush(): void {
    if (flushScheduled) return;
    flushScheduled = true;
    // Let every eachBatch call of the same fetch (they start together) join this flush.
    void nextTurn().then(() => {
      flushScheduled = false;
      const parts = pending;
      pending = [];
      inFlight = inFlight.then(() => flush(parts));
    });
  }

  async function flush(parts: Part[]): Promise<void> {
    try {
      const merged: EventBatch = { events: [], boundaries: [] };
      const deadLetters: Message[] = [];
      for (const part of parts) {
        for (const event of part.events.events) merged.events.push(event);
        for (const boundary of part.events.boundaries) merged.boundaries.push(boundary);
        deadLetters.push(...part.deadLetters.messages);
      }
      if (deadLetters.length > 0) {
        await retrying('sending dead letters', () =>
          deadLetterProducer.send({ topic: settings.topics.deadLetter, messages: deadLetters, acks: -1, compression: CompressionTypes.None }),
        );
        stats.deadLetters += deadLetters.length;
      }
      if (merged.events.length > 0 || merged.boundaries.length > 0) {
        if (handler === undefined) throw new Error('the Kafka source was started without a handler');
        const size = Math.max(1, options.maxEventsPerBatch ?? 5000);
        for (let start = 0; start < merged.events.length || start === 0; start += size) {
          const last = start + size >= merged.events.length;
          const chunk: EventBatch = { events: merged.events.slice(start, start + size), boundaries: last ? merged.boundaries : [] };
          await handler(chunk);
          stats.batches += 1;
          stats.events += chunk.events.length;
          stats.boundaries += chunk.boundaries.length;
        }
      }
      for (const part of parts) {
        if (part.handledUpTo !== null) {
          const key = `${part.topic}|${part.partition}`;
          const previous = handled.get(key);
          if (previous === undefined || part.handledUpTo > previous) handled.set(key, part.handledUpTo);
        }
        if (part.tasks.length > 0) rememberTasks(part.partition, part.tasks);
      }
      if (options.beforeCommit !== undefined) await retrying('publishing alerts and revocations', options.beforeCommit);
      await commit(parts);
      for (const part of parts) part.resolve();
    } catch (error) {
      for (const part of parts) part.reject(error);
    }
  }

  /** Retries a post-handler step (the handler's results are durable; it must not run again). */
  async function retrying(what: string, step: () => Promise<unknown>): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await step();
        return;
      } catch (error) {
        if (stopRequested && attempt >= 3) throw error;
        const delay = Math.min(5000, 100 * 2 ** Math.min(attempt, 10));
        logger.error({ err: messageOf(error), attempt, retryInMs: delay }, `${what} failed; retrying`);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  async function commit(parts: readonly Part[]): Promise<void> {
    const offsets = new Map<string, { topic: string; partition: number; offset: string }>();
    for (const part of parts) {
      const next = (BigInt(part.lastOffset) + 1n).toString();
      const key = `${part.topic}|${part.partition}`;
      const previous = offsets.get(key);
      if (previous === undefined || BigInt(next) > BigInt(previous.offset)) offsets.set(key, { topic: part.topic, partition: part.partition, offset: next });
    }
    if (offsets.size === 0) return;
    try {
      await consumer.commitOffsets([...offsets.values()]);
      stats.commits += 1;
    } catch (error) {
      // The results are durable; whoever owns these partitions next replays the records harmlessly.
      stats.failedCommits += 1;
      logger.warn({ err: messageOf(error), partitions: [...offsets.keys()] }, 'committing offsets failed; the records will be replayed');
    }
  }

  return {
    async start(batchHandler) {
      if (started) throw new Error('the Kafka source is already started');
      started = true;
      handler = batchHandler;
      try {
        await deadLetterProducer.connect();
        await consumer.connect();
        await consumer.subscribe({ topics, fromBeginning: options.fromBeginning ?? true });
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: Math.max(1, Math.min(256, topics.length * settings.partitions)),
          eachBatch: async (payload) => {
            const { batch } = payload;
            if (stopRequested || batch.messages.length === 0) return;
            const done = new Promise<void>((resolve, reject) => {
              const part: Part = {
                ...toPart(batch),
                resolve: () => {
                  waiting.delete(part);
                  resolve();
                },
                reject: (error) => {
                  waiting.delete(part);
                  reject(error instanceof Error ? error : new Error(String(error)));
                },
              };
              waiting.add(part);
              pending.push(part);
            });
            scheduleFlush();
            // Keep the membership alive while a long batch is written (a rebalance notice is acted on by kafkajs
            // after this batch, committed, returns), but not forever: a hung handler must lose its partitions.
            const keepAliveUntil = Date.now() + settings.consumer.maxPollIntervalMs;
            const beat = setInterval(() => {
              if (Date.now() < keepAliveUntil) payload.heartbeat().catch(() => undefined);
            }, settings.consumer.heartbeatIntervalMs);
            try {
              await done;
            } finally {
              clearInterval(beat);
            }
            payload.resolveOffset(batch.lastOffset());
          },
        });
      } catch (error) {
        throw new TriplineError('KAFKA_UNAVAILABLE', `could not start the Kafka consumer (group ${settings.groupId}): ${messageOf(error)}`, { cause: error });
      }
    },

    stop() {
      stopping ??= (async () => {
        stopRequested = true;
        if (started) {
          try {
            consumer.pause(topics.map((topic) => ({ topic })));
          } catch {
            // not running yet
          }
          // The batch in hand finishes and commits before the member leaves the group.
          let timer: NodeJS.Timeout | undefined;
          const drained = (async () => {
            await inFlight.catch(() => undefined);
            await nextTurn();
            await inFlight.catch(() => undefined);
            return true;
          })();
          const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), options.drainTimeoutMs ?? 30_000)));
          if (!(await Promise.race([drained, timeout]))) {
            logger.warn('stopping with a batch in hand: it stays uncommitted and is replayed by the next owner');
            // Release kafkajs' workers (they wait for eachBatch) so the consumer can leave the group.
            const stopping = new TriplineError('SHUTTING_DOWN', 'the Kafka source is stopping');
            for (const part of [...waiting]) part.reject(stopping);
          }
          clearTimeout(timer);
        }
        await consumer.disconnect().catch((error: unknown) => logger.warn({ err: messageOf(error) }, 'disconnecting the Kafka consumer failed'));
        await deadLetterProducer.disconnect().catch(() => undefined);
      })();
      return stopping;
    },

    assignedPartitions: () => [...assigned],
    stats: () => stats,
  };
}
