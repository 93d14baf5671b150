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
 * (kept per partition), even if a failed commit makes Kafka deliver them again.
 *
 * Pipelining. The next fetch does not wait for the previous one's commit: a fetch's records are handed to the
 * handler as soon as the previous fetch's were (the processor scores them — and decides a kill among them —
 * while earlier results are still being written), and the commits follow in fetch order, each once its own
 * results are durable. At most `maxUncommittedFetches` fetches are handed over and not yet committed; past
 * that, the consumer stops fetching until a commit frees a slot. A rebalance (the classic, eager protocol) no
 * longer waits for those commits: one made after the member lost the partition fails or is superseded, and the
 * next owner replays the records from the last commit (harmlessly, as above). If a fetch's handling fails
 * (the handler rejects), nothing handed after it is committed either: the consumer goes back to the first
 * record not committed of each partition concerned (a seek) and hands those records again once the fetches in
 * the pipeline have settled.
 *
 * Co-partitioning. The consumer uses `coPartitionAssigner`, so this member owns the same partition numbers of
 * all three topics. `onAssignment` reports each new assignment (the processor then looks up tasks it has not
 * seen in the store before scoring them), `onTasksReleased` the tasks of partition numbers it lost, so their
 * state can be dropped and rebuilt by whoever owns them next.
 */
import { Buffer } from 'node:buffer';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { CompressionTypes, Partitioners } from 'kafkajs';
import type { Batch, Consumer, ConsumerRunConfig, IHeaders, Kafka, KafkaMessage, Message, Producer } from 'kafkajs';
import type { OtlpFormat } from '../../../schemas/otlp.ts';
import { decodeTraceRequest } from '../../otlp/codec.ts';
import { classifyRequest } from '../../core/classify.ts';
import { TriplineError, messageOf } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { EventBatch, EventSource } from '../bus.ts';
import { coPartitionAssigner } from './assigner.ts';
import { spanTopics } from './config.ts';
import type { KafkaSettings } from './config.ts';
import { TENANT_HEADER } from './publisher.ts';

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
  /** Fetches handed to the handler whose offsets are not committed yet, at most (see Pipelining). @default 4 */
  maxUncommittedFetches?: number;
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
  firstOffset: string;
  lastOffset: string;
  /** Highest offset handed to the handler from this part (null when the part held none to hand). */
  handledUpTo: bigint | null;
  events: EventBatch;
  deadLetters: { topic: string; messages: Message[] };
  tasks: TaskRef[];
  /** Its records were handed to the handler and the pipeline has room: kafkajs may fetch again. */
  accept: () => void;
  reject: (error: unknown) => void;
}

/** One fetch's parts on their way through the pipeline. */
interface Flush {
  parts: Part[];
  /** Resolves once the results of every handler call are durable. */
  durable: Promise<void>;
  deadLetters: Promise<void>;
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
  const newDeadLetterProducer = (): { producer: Producer; connected: Promise<void> | undefined } => ({
    producer: kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      // Idempotence needs unlimited retries (kafkajs warns otherwise); short backoffs.
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 2000 },
    }),
    connected: undefined,
  });
  let deadLetterProducer = newDeadLetterProducer();

  /**
   * Sends dead letters; after a failed send the producer is replaced, not reused: kafkajs rolls back the
   * idempotence sequences of a failed request, and the broker would then drop the next batch as a duplicate
   * of one it wrote (see replaceProducer in kafka-publisher.ts).
   */
  async function sendDeadLetters(messages: Message[]): Promise<void> {
    const current = deadLetterProducer;
    try {
      current.connected ??= current.producer.connect();
      await current.connected;
      await current.producer.send({ topic: settings.topics.deadLetter, messages, acks: -1, compression: CompressionTypes.None });
    } catch (error) {
      if (deadLetterProducer === current) {
        deadLetterProducer = newDeadLetterProducer();
        current.producer.disconnect().catch(() => undefined);
      }
      throw error;
    }
  }
  const stats: KafkaSourceStats = { records: 0, deadLetters: 0, skippedReplays: 0, batches: 0, events: 0, boundaries: 0, commits: 0, failedCommits: 0 };
  /** Per `topic|partition`: the highest offset handed to the handler by this process. */
  const handled = new Map<string, bigint>();
  /** Per partition number: tasks seen there (most recent last), for onTasksReleased. */
  const tasksByNumber = new Map<number, Map<string, TaskRef>>();
  const taskMemory = options.tasksPerPartitionMemory ?? 50_000;
  let assigned: number[] = [];
  let pending: Part[] = [];
  /** Parts whose eachBatch call waits for its records to be handed over. */
  const waiting = new Set<Part>();
  let flushScheduled = false;
  /** Hand-overs, one fetch at a time in fetch order. */
  let handing: Promise<unknown> = Promise.resolve();
  /** Commits, in fetch order; the tail is what `stop()` drains. */
  let inFlight: Promise<void> = Promise.resolve();
  const maxUncommitted = Math.max(1, options.maxUncommittedFetches ?? 4);
  /** Fetches handed over (or on their way) and not yet committed or failed. */
  let uncommitted = 0;
  /** Set when a fetch's handling failed: nothing handed after it is committed until the pipeline is empty. */
  let broken: Error | undefined;
  /** Partitions sent back to their first uncommitted record since `broken` was set. */
  const rewound = new Set<string>();
  const roomWaiters: (() => void)[] = [];
  /** When each fetch on its way was handed over, oldest first (they complete in order). */
  const outstanding: number[] = [];
  /** The member left the group because a fetch was not written for max.poll.interval (see the watchdog). */
  let expelled = false;
  let runConfig: ConsumerRunConfig | undefined;
  let watchdog: NodeJS.Timeout | undefined;
  let leaving: Promise<void> = Promise.resolve();
  let handler: ((batch: EventBatch) => Promise<void>) | undefined;
  let started = false;
  let stopping: Promise<void> | undefined;
  let stopRequested = false;

  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    const numbers = new Set<number>();
    for (const list of Object.values(event.payload.memberAssignment)) for (const n of list) numbers.add(n);
    reassign(numbers, { memberId: event.payload.memberId, leader: event.payload.isLeader });
  });
  consumer.on(consumer.events.CRASH, (event) => {
    const fields = { err: messageOf(event.payload.error), restart: event.payload.restart };
    if (event.payload.restart) logger.warn(fields, 'the Kafka consumer lost the cluster; restarting it');
    else logger.error(fields, 'the Kafka consumer crashed and will not restart');
  });

  /** This member owns the partition numbers `numbers` now (none once it left the group). */
  function reassign(numbers: Set<number>, fields: Record<string, unknown>): void {
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
    logger.info({ partitions: assigned, ...fields, releasedTasks: released.length }, numbers.size === 0 ? 'left the processor group' : 'joined the processor group');
    if (released.length > 0) {
      try {
        options.onTasksReleased?.(released);
      } catch (error) {
        logger.error({ err: messageOf(error) }, 'onTasksReleased failed');
      }
    }
  }

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

  function toPart(batch: Batch): Omit<Part, 'accept' | 'reject'> {
    const key = `${batch.topic}|${batch.partition}`;
    const already = handled.get(key);
    const part: Omit<Part, 'accept' | 'reject'> = {
      topic: batch.topic,
      partition: batch.partition,
      firstOffset: batch.messages[0]?.offset ?? batch.lastOffset(),
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
      uncommitted += 1;
      outstanding.push(Date.now());
      const handed = handing.then(() => handOver(parts));
      handing = handed.catch(() => undefined);
      inFlight = inFlight.then(() => complete(parts, handed));
    });
  }

  /**
   * Waits until fewer than `maxUncommitted` fetches are on their way (the one just handed over counts), so that
   * kafkajs fetches the next one only while there is room for it.
   */
  async function room(): Promise<void> {
    while (uncommitted >= maxUncommitted && !expelled && !stopRequested) await new Promise<void>((resolve) => roomWaiters.push(resolve));
  }

  function wakeRoomWaiters(): void {
    for (const wake of roomWaiters.splice(0)) wake();
  }

  function freeRoom(): void {
    uncommitted -= 1;
    outstanding.shift();
    wakeRoomWaiters();
    if (expelled && uncommitted === 0 && !stopRequested) rejoin();
  }

  /**
   * Hang detection (Java's max.poll.interval). Fetches are handed over without waiting for their results, so
   * kafkajs goes on fetching and heartbeating even when the handler hangs: when the oldest fetch on its way has
   * not been written for `maxPollIntervalMs`, the member leaves the group, and its partitions go to a member
   * that works (which replays their uncommitted records). It joins again once that fetch is done.
   */
  function checkProgress(): void {
    const oldest = outstanding[0];
    if (expelled || stopRequested || runConfig === undefined || oldest === undefined) return;
    if (Date.now() - oldest <= settings.consumer.maxPollIntervalMs) return;
    expelled = true;
    wakeRoomWaiters();
    logger.warn({ waitedMs: Date.now() - oldest }, 'a fetch has not been written within max.poll.interval: leaving the group so that another processor takes its partitions');
    leaving = consumer
      .stop()
      .then(() => reassign(new Set(), { reason: 'max.poll.interval' }))
      .catch((error: unknown) => logger.warn({ err: messageOf(error) }, 'leaving the group failed'));
  }

  function rejoin(): void {
    const config = runConfig;
    if (config === undefined) return;
    expelled = false;
    const run = async (): Promise<void> => {
      await leaving;
      if (stopRequested) return;
      logger.info('the fetches in hand are done: joining the processor group again');
      await consumer.run(config);
    };
    run().catch((error: unknown) => logger.error({ err: messageOf(error) }, 'joining the processor group again failed'));
  }

  /** Hands the fetch's events to the handler without waiting for their results to be durable. */
  function handOver(parts: Part[]): Flush {
    if (broken !== undefined) throw broken;
    const merged: EventBatch = { events: [], boundaries: [] };
    const deadLetterMessages: Message[] = [];
    for (const part of parts) {
      for (const event of part.events.events) merged.events.push(event);
      for (const boundary of part.events.boundaries) merged.boundaries.push(boundary);
      deadLetterMessages.push(...part.deadLetters.messages);
    }
    const deadLetters =
      deadLetterMessages.length === 0
        ? Promise.resolve()
        : retrying('sending dead letters', () => sendDeadLetters(deadLetterMessages)).then(() => {
            stats.deadLetters += deadLetterMessages.length;
          });
    deadLetters.catch(() => undefined);
    const results: Promise<void>[] = [];
    if (merged.events.length > 0 || merged.boundaries.length > 0) {
      if (handler === undefined) throw new Error('the Kafka source was started without a handler');
      const size = Math.max(1, options.maxEventsPerBatch ?? 5000);
      for (let start = 0; start < merged.events.length || start === 0; start += size) {
        const last = start + size >= merged.events.length;
        const chunk: EventBatch = { events: merged.events.slice(start, start + size), boundaries: last ? merged.boundaries : [] };
        // The processor takes the calls in order and scores each once the previous one is scored.
        results.push(
          handler(chunk).then(() => {
            stats.batches += 1;
            stats.events += chunk.events.length;
            stats.boundaries += chunk.boundaries.length;
          }),
        );
      }
    }
    const durable = Promise.all(results).then(() => undefined);
    durable.catch(() => undefined);
    for (const part of parts) {
      if (part.handledUpTo !== null) {
        const key = `${part.topic}|${part.partition}`;
        const previous = handled.get(key);
        if (previous === undefined || part.handledUpTo > previous) handled.set(key, part.handledUpTo);
      }
      // The processor holds these tasks from now on: they are released with their partition.
      if (part.tasks.length > 0) rememberTasks(part.partition, part.tasks);
      part.accept();
    }
    return { parts, durable, deadLetters };
  }

  /** Commits the fetch once its results are durable and its dead letters and publications acknowledged. */
  async function complete(parts: Part[], handed: Promise<Flush>): Promise<void> {
    try {
      const flush = await handed;
      await flush.deadLetters;
      await flush.durable;
      if (broken !== undefined) throw broken;
      if (options.beforeCommit !== undefined) await retrying('publishing alerts and revocations', options.beforeCommit);
      await commit(parts);
    } catch (error) {
      if (broken === undefined) {
        broken = error instanceof Error ? error : new Error(messageOf(error));
        logger.warn({ err: messageOf(error) }, 'handling a fetch failed; nothing after it is committed, and its records will be handed again');
      }
      for (const part of parts) {
        rewind(part);
        part.reject(error);
      }
    } finally {
      freeRoom();
      if (uncommitted === 0 && broken !== undefined) {
        broken = undefined;
        rewound.clear();
      }
    }
  }

  /** Sends the part's partition back to the part's first record, unless an earlier failed part already did. */
  function rewind(part: Part): void {
    const key = `${part.topic}|${part.partition}`;
    if (rewound.has(key)) return;
    rewound.add(key);
    handled.delete(key);
    try {
      consumer.seek({ topic: part.topic, partition: part.partition, offset: part.firstOffset });
    } catch (error) {
      // Not running (stopping): the next owner starts from the committed offset anyway.
      logger.warn({ err: messageOf(error), topic: part.topic, partition: part.partition }, 'could not go back to the first uncommitted record');
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
        deadLetterProducer.connected = deadLetterProducer.producer.connect();
        await deadLetterProducer.connected;
        await consumer.connect();
        await consumer.subscribe({ topics, fromBeginning: options.fromBeginning ?? true });
        runConfig = {
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: Math.max(1, Math.min(256, topics.length * settings.partitions)),
          eachBatch: async (payload) => {
            const { batch } = payload;
            // Fetched before a rewind: the records come again from where it went back to.
            if (stopRequested || batch.messages.length === 0 || payload.isStale()) return;
            // A failed fetch is still in the pipeline: kafkajs fetches again (from the rewound offsets) after a pause.
            if (broken !== undefined) throw broken;
            const accepted = new Promise<void>((resolve, reject) => {
              let settled = false;
              const part: Part = {
                ...toPart(batch),
                accept: () => {
                  waiting.delete(part);
                  settled = true;
                  resolve();
                },
                reject: (error) => {
                  waiting.delete(part);
                  // After the hand-over the failure reaches kafkajs through the next eachBatch call.
                  if (!settled) reject(error instanceof Error ? error : new Error(String(error)));
                  settled = true;
                },
              };
              waiting.add(part);
              pending.push(part);
            });
            scheduleFlush();
            // Keep the membership alive while the pipeline is full (a rebalance notice is acted on by kafkajs
            // after this call returns), but not forever: a hung handler must lose its partitions.
            const keepAliveUntil = Date.now() + settings.consumer.maxPollIntervalMs;
            const beat = setInterval(() => {
              if (Date.now() < keepAliveUntil) payload.heartbeat().catch(() => undefined);
            }, settings.consumer.heartbeatIntervalMs);
            try {
              await accepted;
              await room();
            } finally {
              clearInterval(beat);
            }
            // Leaving the group: the next owner (or this member, once it joins again) starts from the commit.
            if (expelled) return;
            payload.resolveOffset(batch.lastOffset());
          },
        };
        await consumer.run(runConfig);
        watchdog = setInterval(checkProgress, Math.min(1000, settings.consumer.heartbeatIntervalMs));
        watchdog.unref();
      } catch (error) {
        throw new TriplineError('KAFKA_UNAVAILABLE', `could not start the Kafka consumer (group ${settings.groupId}): ${messageOf(error)}`, { cause: error });
      }
    },

    stop() {
      stopping ??= (async () => {
        stopRequested = true;
        clearInterval(watchdog);
        wakeRoomWaiters();
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
        await deadLetterProducer.producer.disconnect().catch(() => undefined);
      })();
      return stopping;
    },

    assignedPartitions: () => [...assigned],
    stats: () => stats,
  };
}
