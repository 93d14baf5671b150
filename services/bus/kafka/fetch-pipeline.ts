/**
 * The source's fetches on their way from kafkajs to a commit (see source.ts, Batches, Commits and Pipelining):
 * the parts of one fetch are merged and handed to the handler in fetch order, each fetch's offsets are committed
 * in fetch order once its results are durable, and a failed fetch sends its partitions back to their first
 * uncommitted record.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Consumer, Message } from 'kafkajs';
import { messageOf } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { EventBatch } from '../bus.ts';
import type { DeadLetterProducer } from './dead-letter-producer.ts';
import type { FetchBackPressure, SourceFlags } from './fetch-backpressure.ts';
import type { PartitionOwnership } from './partition-ownership.ts';
import type { KafkaSourceOptions, KafkaSourceStats } from './source.ts';
import type { FetchedPart } from './span-record-decoding.ts';

export interface Part extends FetchedPart {
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

export interface FetchPipelineOptions {
  consumer: Pick<Consumer, 'seek' | 'commitOffsets'>;
  logger: Logger;
  stats: KafkaSourceStats;
  flags: Readonly<SourceFlags>;
  backPressure: FetchBackPressure;
  deadLetters: DeadLetterProducer;
  ownership: PartitionOwnership;
  source: Pick<KafkaSourceOptions, 'beforeCommit' | 'maxEventsPerBatch'>;
  /** The member left the group (see the watchdog) and no fetch is on its way any more: join again. */
  rejoin: () => void;
}

export class FetchPipeline {
  handler: ((batch: EventBatch) => Promise<void>) | undefined;
  /** Set when a fetch's handling failed: nothing handed after it is committed until the pipeline is empty. */
  broken: Error | undefined;
  /** Commits, in fetch order; the tail is what `stop()` drains. */
  inFlight: Promise<void> = Promise.resolve();
  /** Parts whose eachBatch call waits for its records to be handed over. */
  readonly waiting = new Set<Part>();
  private readonly options: FetchPipelineOptions;
  private pending: Part[] = [];
  private flushScheduled = false;
  /** Hand-overs, one fetch at a time in fetch order. */
  private handing: Promise<unknown> = Promise.resolve();
  /** Per `topic|partition`: the highest offset handed to the handler by this process. */
  private readonly handled = new Map<string, bigint>();
  /** Partitions sent back to their first uncommitted record since `broken` was set. */
  private readonly rewound = new Set<string>();

  constructor(options: FetchPipelineOptions) {
    this.options = options;
  }

  /** The highest offset of the partition this process handed to its handler. */
  handledUpTo(topic: string, partition: number): bigint | undefined {
    return this.handled.get(`${topic}|${partition}`);
  }

  /**
   * Adds a part (made by `decode`) to the next hand-over; resolves once its records were handed to the
   * handler, rejects when its fetch failed before that.
   */
  add(decode: () => FetchedPart): Promise<void> {
    const accepted = new Promise<void>((resolve, reject) => {
      let settled = false;
      const part: Part = {
        ...decode(),
        accept: () => {
          this.waiting.delete(part);
          settled = true;
          resolve();
        },
        reject: (error) => {
          this.waiting.delete(part);
          // After the hand-over the failure reaches kafkajs through the next eachBatch call.
          if (!settled) reject(error instanceof Error ? error : new Error(String(error)));
          settled = true;
        },
      };
      this.waiting.add(part);
      this.pending.push(part);
    });
    this.scheduleFlush();
    return accepted;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Let every eachBatch call of the same fetch (they start together) join this flush.
    void nextTurn().then(() => {
      this.flushScheduled = false;
      const parts = this.pending;
      this.pending = [];
      this.options.backPressure.taken();
      const handed = this.handing.then(() => this.handOver(parts));
      this.handing = handed.catch(() => undefined);
      this.inFlight = this.inFlight.then(() => this.complete(parts, handed));
    });
  }

  private freeRoom(): void {
    const { backPressure, flags } = this.options;
    backPressure.freed();
    if (flags.expelled && backPressure.uncommitted() === 0 && !flags.stopRequested) this.options.rejoin();
  }

  /** Hands the fetch's events to the handler without waiting for their results to be durable. */
  private handOver(parts: Part[]): Flush {
    if (this.broken !== undefined) throw this.broken;
    const merged: EventBatch = { events: [], boundaries: [], usages: [] };
    const deadLetterMessages: Message[] = [];
    for (const part of parts) {
      for (const event of part.events.events) merged.events.push(event);
      for (const boundary of part.events.boundaries) merged.boundaries.push(boundary);
      for (const usage of part.events.usages ?? []) merged.usages?.push(usage);
      deadLetterMessages.push(...part.deadLetters.messages);
    }
    const deadLetters = this.sendDeadLetters(deadLetterMessages);
    const durable = Promise.all(this.handle(merged)).then(() => undefined);
    durable.catch(() => undefined);
    for (const part of parts) {
      if (part.handledUpTo !== null) {
        const key = `${part.topic}|${part.partition}`;
        const previous = this.handled.get(key);
        if (previous === undefined || part.handledUpTo > previous) this.handled.set(key, part.handledUpTo);
      }
      // The processor holds these tasks from now on: they are released with their partition.
      if (part.tasks.length > 0) this.options.ownership.remember(part.partition, part.tasks);
      part.accept();
    }
    return { parts, durable, deadLetters };
  }

  private sendDeadLetters(messages: Message[]): Promise<void> {
    const deadLetters =
      messages.length === 0
        ? Promise.resolve()
        : this.retrying('sending dead letters', () => this.options.deadLetters.send(messages)).then(() => {
            this.options.stats.deadLetters += messages.length;
          });
    deadLetters.catch(() => undefined);
    return deadLetters;
  }

  /** Hands the merged events to the handler in calls of at most `maxEventsPerBatch` events; their results. */
  private handle(merged: EventBatch): Promise<void>[] {
    const { handler } = this;
    const { stats } = this.options;
    const results: Promise<void>[] = [];
    if (merged.events.length > 0 || merged.boundaries.length > 0 || (merged.usages?.length ?? 0) > 0) {
      if (handler === undefined) throw new Error('the Kafka source was started without a handler');
      const size = Math.max(1, this.options.source.maxEventsPerBatch ?? 5000);
      for (let start = 0; start < merged.events.length || start === 0; start += size) {
        const last = start + size >= merged.events.length;
        const chunk: EventBatch = {
          events: merged.events.slice(start, start + size),
          boundaries: last ? merged.boundaries : [],
          usages: last ? (merged.usages ?? []) : [],
        };
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
    return results;
  }

  /** Commits the fetch once its results are durable and its dead letters and publications acknowledged. */
  private async complete(parts: Part[], handed: Promise<Flush>): Promise<void> {
    const { logger, source } = this.options;
    try {
      const flush = await handed;
      await flush.deadLetters;
      await flush.durable;
      if (this.broken !== undefined) throw this.broken;
      if (source.beforeCommit !== undefined)
        await this.retrying('publishing alerts and revocations', source.beforeCommit);
      await this.commit(parts);
    } catch (error) {
      if (this.broken === undefined) {
        this.broken = error instanceof Error ? error : new Error(messageOf(error));
        logger.warn(
          { err: messageOf(error) },
          'handling a fetch failed; nothing after it is committed, and its records will be handed again',
        );
      }
      for (const part of parts) {
        this.rewind(part);
        part.reject(error);
      }
    } finally {
      this.freeRoom();
      if (this.options.backPressure.uncommitted() === 0 && this.broken !== undefined) {
        this.broken = undefined;
        this.rewound.clear();
      }
    }
  }

  /** Sends the part's partition back to the part's first record, unless an earlier failed part already did. */
  private rewind(part: Part): void {
    const key = `${part.topic}|${part.partition}`;
    if (this.rewound.has(key)) return;
    this.rewound.add(key);
    this.handled.delete(key);
    try {
      this.options.consumer.seek({ topic: part.topic, partition: part.partition, offset: part.firstOffset });
    } catch (error) {
      // Not running (stopping): the next owner starts from the committed offset anyway.
      this.options.logger.warn(
        { err: messageOf(error), topic: part.topic, partition: part.partition },
        'could not go back to the first uncommitted record',
      );
    }
  }

  /** Retries a post-handler step (the handler's results are durable; it must not run again). */
  private async retrying(what: string, step: () => Promise<unknown>): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await step();
        return;
      } catch (error) {
        if (this.options.flags.stopRequested && attempt >= 3) throw error;
        const delay = Math.min(5000, 100 * 2 ** Math.min(attempt, 10));
        this.options.logger.error({ err: messageOf(error), attempt, retryInMs: delay }, `${what} failed; retrying`);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  private async commit(parts: readonly Part[]): Promise<void> {
    const { consumer, stats, logger } = this.options;
    const offsets = new Map<string, { topic: string; partition: number; offset: string }>();
    for (const part of parts) {
      const next = (BigInt(part.lastOffset) + 1n).toString();
      const key = `${part.topic}|${part.partition}`;
      const previous = offsets.get(key);
      if (previous === undefined || BigInt(next) > BigInt(previous.offset))
        offsets.set(key, { topic: part.topic, partition: part.partition, offset: next });
    }
    if (offsets.size === 0) return;
    try {
      await consumer.commitOffsets([...offsets.values()]);
      stats.commits += 1;
    } catch (error) {
      // The results are durable; whoever owns these partitions next replays the records harmlessly.
      stats.failedCommits += 1;
      logger.warn(
        { err: messageOf(error), partitions: [...offsets.keys()] },
        'committing offsets failed; the records will be replayed',
      );
    }
  }
}
