/**
 * The publisher's produce requests (see publisher.ts, Delivery): when the next one goes (the linger), sending it
 * with kafkajs' idempotent producer, answering the publications whose records it carried, and replacing the
 * producer after a failed request. Also tells whether Kafka is healthy, for `publish()`'s back-pressure.
 */
import { CompressionTypes } from 'kafkajs';
import type { Kafka, Message, Producer, TopicMessages } from 'kafkajs';
import { TriplineError, messageOf } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { KafkaSettings } from './config.ts';
import { KeyHashPartitioner } from './partitioner.ts';
import { ProduceQueue, settle } from './produce-queue.ts';
import type { Queued } from './produce-queue.ts';

/**
 * Queued bytes worth a produce request without waiting for `lingerMs` (or `maxBatchBytes` when smaller): past
 * ~4 OTLP requests of 100 spans, a bigger produce request saves little CPU per span (kafkajs' encoding: ~850 µs
 * per OTLP request sent alone, ~460 µs in fours, ~350 µs in tens), and clients that wait for their answer before
 * sending again (an OTel exporter has one export in flight) are not held once a few of them are queued.
 */
const ENOUGH_BYTES = 256 * 1024;

export interface ProduceSenderOptions {
  kafka: Kafka;
  settings: KafkaSettings['producer'];
  logger: Logger;
  /** Produce requests in flight at once. */
  maxConcurrentSends: number;
  /** The publisher's counters of produce calls and failed ones. */
  stats: { sends: number; failedSends: number };
}

export class ProduceSender {
  readonly queue: ProduceQueue;
  /** Encoded bytes accepted and not yet acknowledged (queued or in flight). */
  bytesInFlight = 0;
  /** The producer is connected: produce requests may go. */
  connected = false;
  /** The publisher is closing: queued records go out without lingering, and no new producer is connected. */
  closed = false;
  private readonly kafka: Kafka;
  private readonly settings: KafkaSettings['producer'];
  private readonly logger: Logger;
  private readonly maxConcurrentSends: number;
  private readonly stats: { sends: number; failedSends: number };
  private readonly compression: CompressionTypes;
  private readonly enoughBytes: number;
  private producer: Producer;
  private sending = 0;
  /** Start times of the sends in flight, by send number. */
  private readonly sendStarts = new Map<number, number>();
  private lastSendFailed = false;
  private lingerTimer: NodeJS.Timeout | undefined;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(options: ProduceSenderOptions) {
    const { settings } = options;
    this.kafka = options.kafka;
    this.settings = settings;
    this.logger = options.logger;
    this.maxConcurrentSends = options.maxConcurrentSends;
    this.stats = options.stats;
    this.compression =
      settings.compression === 'gzip'
        ? CompressionTypes.GZIP
        : settings.compression === 'zstd'
          ? CompressionTypes.ZSTD
          : CompressionTypes.None;
    this.enoughBytes = Math.min(ENOUGH_BYTES, settings.maxBatchBytes);
    this.queue = new ProduceQueue(settings.maxBatchBytes);
    this.producer = this.newProducer();
  }

  private newProducer(): Producer {
    return this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // kafkajs' DefaultPartitioner (murmur2 of the key), without its per-key Long arithmetic.
      createPartitioner: KeyHashPartitioner,
      // Idempotence needs unlimited retries; short backoffs find a broker that came back within a second or two
      // (the OTel SDK retries only for its export timeout).
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 2000 },
    });
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  /** A send has been running longer than the publish timeout: Kafka is down or too slow. */
  stuck(): boolean {
    const now = Date.now();
    for (const start of this.sendStarts.values()) if (now - start > this.settings.publishTimeoutMs) return true;
    return false;
  }

  /** Kafka is failing: the last send failed, or one is stuck. */
  unhealthy(): boolean {
    return this.lastSendFailed || this.stuck();
  }

  unavailable(message: string, cause?: unknown): TriplineError {
    return new TriplineError('PIPELINE_UNAVAILABLE', message, {
      cause,
      details: { retryAfterSeconds: this.settings.retryAfterSeconds },
    });
  }

  /**
   * Starts the next produce request when one may go: none is in flight (kafkajs sends one at a time per broker
   * for idempotence), and the queue is worth a request — it holds ENOUGH_BYTES, or its oldest record has
   * waited `lingerMs`, or the publisher is closing. Else a timer fires when the oldest record's linger ends.
   * So the window grows when the load is low (records wait up to `lingerMs` for company instead of going out
   * alone: each produce request and each partition batch in it has a fixed cost) and vanishes when it is high
   * (ENOUGH_BYTES arrive at once), while a request in flight still lets the next one fill up.
   */
  schedule(): void {
    if (!this.connected || this.sending >= this.maxConcurrentSends || this.queue.count() === 0) return;
    const wait = this.lingerLeft();
    if (wait <= 0) {
      this.sendNext();
      return;
    }
    if (this.lingerTimer !== undefined) return; // armed for the same oldest record
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = undefined;
      this.schedule();
    }, Math.ceil(wait));
  }

  /** Milliseconds the queued records should still wait for company (0 or less: send now). */
  private lingerLeft(): number {
    if (this.closed || this.settings.lingerMs === 0 || this.queue.bytes() >= this.enoughBytes) return 0;
    const oldest = this.queue.oldest();
    return oldest === undefined ? 0 : oldest.publication.acceptedAt + this.settings.lingerMs - Date.now();
  }

  private sendNext(): void {
    if (this.lingerTimer !== undefined) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = undefined;
    }
    if (this.sending >= this.maxConcurrentSends) return;
    const { taken: batch, withdrawnBytes } = this.queue.takeBatch();
    this.bytesInFlight -= withdrawnBytes;
    if (batch.length === 0) {
      this.notifyIdle();
      return;
    }
    this.sending += 1;
    this.stats.sends += 1;
    const sendNumber = this.stats.sends;
    this.sendStarts.set(sendNumber, Date.now());
    this.producer
      .sendBatch({ topicMessages: topicMessagesOf(batch), acks: -1, compression: this.compression })
      .then(
        () => {
          this.acknowledged(batch);
        },
        (error: unknown) => {
          this.failed(batch, error);
        },
      )
      .finally(() => {
        this.sending -= 1;
        this.sendStarts.delete(sendNumber);
        if (this.queue.count() > 0) this.schedule();
        else this.notifyIdle();
      });
  }

  private acknowledged(batch: readonly Queued[]): void {
    this.lastSendFailed = false;
    for (const item of batch) {
      this.bytesInFlight -= item.bytes;
      item.publication.remaining -= 1;
      if (item.publication.remaining === 0) settle(item.publication);
    }
  }

  private failed(batch: readonly Queued[], error: unknown): void {
    // Idempotent kafkajs retries retriable errors without limit, so this is a lasting failure (e.g. a
    // record over the broker's limit, authorisation): answer the publishers; the agents retry.
    this.lastSendFailed = true;
    this.stats.failedSends += 1;
    const tooLarge = (error as { type?: unknown }).type === 'MESSAGE_TOO_LARGE';
    this.logger.error(
      { err: messageOf(error), records: batch.length },
      tooLarge
        ? "Kafka refused a produce request as too large: set TRIPLINE_KAFKA_MAX_BATCH_BYTES (and _MAX_RECORD_BYTES) below the broker's message.max.bytes"
        : 'Kafka refused a produce request',
    );
    const failure = this.unavailable(`Kafka refused the spans: ${messageOf(error)}`, error);
    for (const item of batch) {
      this.bytesInFlight -= item.bytes;
      settle(item.publication, failure);
    }
    this.replaceProducer();
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
  private replaceProducer(): void {
    const failed = this.producer;
    this.connected = false;
    failed
      .disconnect()
      .catch((error: unknown) =>
        this.logger.debug({ err: messageOf(error) }, 'disconnecting a failed Kafka producer failed'),
      );
    this.producer = this.newProducer();
    const replacement = this.producer;
    this.connectReplacement(replacement, 1);
  }

  private connectReplacement(replacement: Producer, attempt: number): void {
    if (this.closed || this.producer !== replacement) return;
    replacement.connect().then(
      () => {
        if (this.producer !== replacement) return;
        this.connected = true;
        this.logger.info('a new Kafka producer replaced the one whose produce request failed');
        this.schedule();
      },
      (error: unknown) => {
        const delay = Math.min(5000, 100 * 2 ** Math.min(attempt, 6));
        this.logger.warn(
          { err: messageOf(error), retryInMs: delay },
          'connecting a new Kafka producer failed; retrying',
        );
        setTimeout(() => this.connectReplacement(replacement, attempt + 1), delay).unref();
      },
    );
  }

  private notifyIdle(): void {
    if (this.sending > 0 || this.queue.count() > 0) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private idle(): Promise<void> {
    if (this.sending === 0 && this.queue.count() === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Sends what was accepted (without lingering), for at most one publish timeout. */
  async drain(): Promise<void> {
    if (this.lingerTimer !== undefined) clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    this.schedule();
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      this.idle().then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), this.settings.publishTimeoutMs))),
    ]);
    clearTimeout(timer);
    if (!drained) this.logger.warn({ bytes: this.bytesInFlight }, 'stopping with spans Kafka has not acknowledged');
  }

  /** Answers the records still queued with `error` and disconnects the producer. */
  async shutdown(error: TriplineError): Promise<void> {
    if (this.lingerTimer !== undefined) clearTimeout(this.lingerTimer);
    this.queue.clear(error);
    await this.producer
      .disconnect()
      .catch((failure: unknown) =>
        this.logger.warn({ err: messageOf(failure) }, 'disconnecting the Kafka producer failed'),
      );
    this.connected = false;
  }
}

/** A produce request's records grouped by topic, each topic's in queue order. */
function topicMessagesOf(batch: readonly Queued[]): TopicMessages[] {
  const byTopic = new Map<string, Message[]>();
  for (const item of batch) {
    let list = byTopic.get(item.topic);
    if (list === undefined) {
      list = [];
      byTopic.set(item.topic, list);
    }
    list.push(item.message);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}
