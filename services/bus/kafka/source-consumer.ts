/**
 * The source's consumer in the processor group (see source.ts): starting it, taking each fetched batch from
 * kafkajs into the fetch pipeline (holding kafkajs back while the pipeline is full), the watchdog that leaves the
 * group when a fetch hangs and joins again once it is done, and stopping with the batch in hand drained.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Consumer, ConsumerRunConfig, EachBatchPayload } from 'kafkajs';
import { TriplineError, messageOf } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { EventBatch } from '../bus.ts';
import { coPartitionAssigner } from './assigner.ts';
import { spanTopics } from './config.ts';
import { DeadLetterProducer } from './dead-letter-producer.ts';
import { FetchBackPressure } from './fetch-backpressure.ts';
import type { SourceFlags } from './fetch-backpressure.ts';
import { FetchPipeline } from './fetch-pipeline.ts';
import { PartitionOwnership } from './partition-ownership.ts';
import type { KafkaSourceOptions, KafkaSourceStats } from './source.ts';
import { decodeFetchedBatch } from './span-record-decoding.ts';

export class SpanSourceConsumer {
  readonly stats: KafkaSourceStats = {
    records: 0,
    deadLetters: 0,
    skippedReplays: 0,
    batches: 0,
    events: 0,
    boundaries: 0,
    commits: 0,
    failedCommits: 0,
  };
  readonly ownership: PartitionOwnership;
  private readonly options: KafkaSourceOptions;
  private readonly settings: KafkaSourceOptions['settings'];
  private readonly logger: Logger;
  private readonly topics: string[];
  private readonly consumer: Consumer;
  private readonly deadLetters: DeadLetterProducer;
  private readonly flags: SourceFlags = { stopRequested: false, expelled: false };
  private readonly backPressure: FetchBackPressure;
  private readonly pipeline: FetchPipeline;
  private runConfig: ConsumerRunConfig | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private leaving: Promise<void> = Promise.resolve();
  private started = false;
  private stopping: Promise<void> | undefined;

  constructor(options: KafkaSourceOptions) {
    const { kafka, settings, logger } = options;
    this.options = options;
    this.settings = settings;
    this.logger = logger;
    this.topics = spanTopics(settings.topics);
    this.consumer = kafka.consumer({
      groupId: settings.groupId,
      partitionAssigners: [coPartitionAssigner],
      sessionTimeout: settings.consumer.sessionTimeoutMs,
      heartbeatInterval: settings.consumer.heartbeatIntervalMs,
      rebalanceTimeout: settings.consumer.rebalanceTimeoutMs,
      maxBytes: settings.consumer.maxBytes,
      maxWaitTimeInMs: 500,
      allowAutoTopicCreation: false,
    });
    this.deadLetters = new DeadLetterProducer(kafka, settings.topics.deadLetter);
    this.ownership = new PartitionOwnership(options);
    this.backPressure = new FetchBackPressure(options.maxUncommittedFetches, this.flags);
    this.pipeline = new FetchPipeline({
      consumer: this.consumer,
      logger,
      stats: this.stats,
      flags: this.flags,
      backPressure: this.backPressure,
      deadLetters: this.deadLetters,
      ownership: this.ownership,
      source: options,
      rejoin: () => {
        this.rejoin();
      },
    });
    this.listen();
  }

  private listen(): void {
    const { consumer, logger } = this;
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      const numbers = new Set<number>();
      for (const list of Object.values(event.payload.memberAssignment)) for (const n of list) numbers.add(n);
      this.ownership.reassign(numbers, { memberId: event.payload.memberId, leader: event.payload.isLeader });
    });
    consumer.on(consumer.events.CRASH, (event) => {
      const fields = { err: messageOf(event.payload.error), restart: event.payload.restart };
      if (event.payload.restart) logger.warn(fields, 'the Kafka consumer lost the cluster; restarting it');
      else logger.error(fields, 'the Kafka consumer crashed and will not restart');
    });
  }

  async start(batchHandler: (batch: EventBatch) => Promise<void>): Promise<void> {
    if (this.started) throw new Error('the Kafka source is already started');
    this.started = true;
    this.pipeline.handler = batchHandler;
    const { consumer, settings, topics } = this;
    try {
      await this.deadLetters.connect();
      await consumer.connect();
      await consumer.subscribe({ topics, fromBeginning: this.options.fromBeginning ?? true });
      this.runConfig = {
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: Math.max(1, Math.min(256, topics.length * settings.partitions)),
        eachBatch: (payload) => this.eachBatch(payload),
      };
      await consumer.run(this.runConfig);
      this.watchdog = setInterval(
        () => {
          this.checkProgress();
        },
        Math.min(1000, settings.consumer.heartbeatIntervalMs),
      );
      this.watchdog.unref();
    } catch (error) {
      throw new TriplineError(
        'KAFKA_UNAVAILABLE',
        `could not start the Kafka consumer (group ${settings.groupId}): ${messageOf(error)}`,
        { cause: error },
      );
    }
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const { pipeline, settings } = this;
    // Fetched before a rewind: the records come again from where it went back to.
    if (this.flags.stopRequested || batch.messages.length === 0 || payload.isStale()) return;
    // A failed fetch is still in the pipeline: kafkajs fetches again (from the rewound offsets) after a pause.
    if (pipeline.broken !== undefined) throw pipeline.broken;
    const accepted = pipeline.add(() =>
      decodeFetchedBatch(batch, {
        handledUpTo: pipeline.handledUpTo(batch.topic, batch.partition),
        deadLetterTopic: settings.topics.deadLetter,
        stats: this.stats,
        logger: this.logger,
        classify: this.options.classify,
      }),
    );
    // Keep the membership alive while the pipeline is full (a rebalance notice is acted on by kafkajs
    // after this call returns), but not forever: a hung handler must lose its partitions.
    const keepAliveUntil = Date.now() + settings.consumer.maxPollIntervalMs;
    const beat = setInterval(() => {
      if (Date.now() < keepAliveUntil) payload.heartbeat().catch(() => undefined);
    }, settings.consumer.heartbeatIntervalMs);
    try {
      await accepted;
      await this.backPressure.room();
    } finally {
      clearInterval(beat);
    }
    // Leaving the group: the next owner (or this member, once it joins again) starts from the commit.
    if (this.flags.expelled) return;
    payload.resolveOffset(batch.lastOffset());
  }

  /**
   * Hang detection (Java's max.poll.interval). Fetches are handed over without waiting for their results, so
   * kafkajs goes on fetching and heartbeating even when the handler hangs: when the oldest fetch on its way has
   * not been written for `maxPollIntervalMs`, the member leaves the group, and its partitions go to a member
   * that works (which replays their uncommitted records). It joins again once that fetch is done.
   */
  private checkProgress(): void {
    const { flags, logger } = this;
    const oldest = this.backPressure.oldestHandedOverAt();
    if (flags.expelled || flags.stopRequested || this.runConfig === undefined || oldest === undefined) return;
    if (Date.now() - oldest <= this.settings.consumer.maxPollIntervalMs) return;
    flags.expelled = true;
    this.backPressure.wake();
    logger.warn(
      { waitedMs: Date.now() - oldest },
      'a fetch has not been written within max.poll.interval: leaving the group so that another processor takes its partitions',
    );
    this.leaving = this.consumer
      .stop()
      .then(() => this.ownership.reassign(new Set(), { reason: 'max.poll.interval' }))
      .catch((error: unknown) => logger.warn({ err: messageOf(error) }, 'leaving the group failed'));
  }

  private rejoin(): void {
    const config = this.runConfig;
    if (config === undefined) return;
    this.flags.expelled = false;
    this.joinAgain(config).catch((error: unknown) =>
      this.logger.error({ err: messageOf(error) }, 'joining the processor group again failed'),
    );
  }

  private async joinAgain(config: ConsumerRunConfig): Promise<void> {
    await this.leaving;
    if (this.flags.stopRequested) return;
    this.logger.info('the fetches in hand are done: joining the processor group again');
    await this.consumer.run(config);
  }

  stop(): Promise<void> {
    this.stopping ??= this.drainAndLeave();
    return this.stopping;
  }

  private async drainAndLeave(): Promise<void> {
    const { consumer, logger, pipeline } = this;
    this.flags.stopRequested = true;
    clearInterval(this.watchdog);
    this.backPressure.wake();
    if (this.started) {
      try {
        consumer.pause(this.topics.map((topic) => ({ topic })));
      } catch {
        // not running yet
      }
      // The batch in hand finishes and commits before the member leaves the group.
      let timer: NodeJS.Timeout | undefined;
      const drained = (async () => {
        await pipeline.inFlight.catch(() => undefined);
        await nextTurn();
        await pipeline.inFlight.catch(() => undefined);
        return true;
      })();
      const timeout = new Promise<boolean>(
        (resolve) => (timer = setTimeout(() => resolve(false), this.options.drainTimeoutMs ?? 30_000)),
      );
      if (!(await Promise.race([drained, timeout]))) {
        logger.warn('stopping with a batch in hand: it stays uncommitted and is replayed by the next owner');
        // Release kafkajs' workers (they wait for eachBatch) so the consumer can leave the group.
        const stopping = new TriplineError('SHUTTING_DOWN', 'the Kafka source is stopping');
        for (const part of [...pipeline.waiting]) part.reject(stopping);
      }
      clearTimeout(timer);
    }
    await consumer
      .disconnect()
      .catch((error: unknown) => logger.warn({ err: messageOf(error) }, 'disconnecting the Kafka consumer failed'));
    await this.deadLetters.disconnect().catch(() => undefined);
  }
}
