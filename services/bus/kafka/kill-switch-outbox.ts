/**
 * The kill switch bridge's outbox (see kill-switch.ts): alerts and revocations on their way to their topics, in
 * the order they were emitted, sent by an idempotent producer with retries until Kafka acknowledges them, and
 * bounded while Kafka is down. `flush()` resolves once everything enqueued before it is acknowledged.
 */
import { CompressionTypes, Partitioners } from 'kafkajs';
import type { Kafka, Message, Producer } from 'kafkajs';
import type { Alert, Revocation } from '../../../schemas/events.ts';
import { TriplineError, messageOf } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { TENANT_HEADER } from './span-record-encoding.ts';

interface Outgoing {
  topic: string;
  message: Message;
}

interface FlushWaiter {
  upTo: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

function recordOf(document: Alert | Revocation): Message {
  return {
    key: document.taskId,
    value: JSON.stringify(document),
    headers: { 'content-type': 'application/json', [TENANT_HEADER]: document.tenant },
  };
}

export class KillSwitchOutbox {
  /** The producer is connected: messages may go. */
  connected = false;
  /** The bridge stopped: after a few failed attempts, publishing gives up. */
  stopped = false;
  private readonly kafka: Kafka;
  private readonly logger: Logger;
  private readonly maxQueued: number;
  private producer: Producer;
  private readonly queue: Outgoing[] = [];
  private sending: Promise<void> | undefined;
  private flushWaiters: FlushWaiter[] = [];
  /** Messages enqueued so far / acknowledged so far (counters, so flush() waits only for what came before it). */
  private enqueued = 0;
  private acknowledged = 0;

  constructor(kafka: Kafka, logger: Logger, maxQueued: number) {
    this.kafka = kafka;
    this.logger = logger;
    this.maxQueued = maxQueued;
    this.producer = this.newProducer();
  }

  private newProducer(): Producer {
    return this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      // Idempotence needs unlimited retries (kafkajs warns otherwise); short backoffs.
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 2000 },
    });
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  /** The producer is connected: publish what is queued. */
  open(): void {
    this.connected = true;
    this.pump();
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }

  /** Messages not acknowledged yet. */
  size(): number {
    return this.queue.length;
  }

  enqueue(topic: string, document: Alert | Revocation): void {
    this.queue.push({ topic, message: recordOf(document) });
    this.enqueued += 1;
    if (this.queue.length > this.maxQueued) {
      this.queue.shift();
      this.acknowledged += 1;
      this.logger.error({ topic }, 'dropping an unpublished kill-switch message: Kafka has been unavailable too long');
    }
    this.pump();
  }

  flush(): Promise<void> {
    if (this.acknowledged >= this.enqueued) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.flushWaiters.push({ upTo: this.enqueued, resolve, reject });
      this.pump();
    });
  }

  /**
   * After a failed produce request kafkajs rolls the idempotence sequences back, also for partitions the broker
   * had written, and the broker then acknowledges the next batch there as a duplicate without writing it (see
   * replaceProducer in produce-sender.ts): a revocation would be lost. Nothing more goes out on that producer.
   */
  private async replaceProducer(): Promise<void> {
    const failed = this.producer;
    this.producer = this.newProducer();
    failed.disconnect().catch(() => undefined);
    try {
      await this.producer.connect();
    } catch (error) {
      this.logger.warn(
        { err: messageOf(error) },
        'connecting a new Kafka producer for alerts/revocations failed; retrying',
      );
    }
  }

  private settleWaiters(): void {
    const still: FlushWaiter[] = [];
    for (const waiter of this.flushWaiters) {
      if (this.acknowledged >= waiter.upTo) waiter.resolve();
      else still.push(waiter);
    }
    this.flushWaiters = still;
  }

  private pump(): void {
    if (!this.connected || this.sending !== undefined || this.queue.length === 0) return;
    this.sending = this.publishQueued().finally(() => {
      this.sending = undefined;
      if (this.queue.length > 0 && this.connected && !this.stopped) this.pump();
    });
  }

  private async publishQueued(): Promise<void> {
    // A kill emits its alert and then its revocation in one synchronous pass: wait for the pass to end so
    // both go in one produce request (otherwise the revocation waits for the alert's acknowledgement).
    await Promise.resolve();
    let failures = 0;
    while (this.queue.length > 0 && this.connected) {
      const batch = this.queue.slice(0, 500);
      const byTopic = new Map<string, Message[]>();
      for (const item of batch) {
        const list = byTopic.get(item.topic) ?? [];
        list.push(item.message);
        byTopic.set(item.topic, list);
      }
      try {
        await this.producer.sendBatch({
          topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
          acks: -1,
          compression: CompressionTypes.None,
        });
        this.queue.splice(0, batch.length);
        this.acknowledged += batch.length;
        failures = 0;
        this.settleWaiters();
      } catch (error) {
        failures += 1;
        const delay = Math.min(5000, 100 * 2 ** Math.min(failures, 10));
        this.logger.error(
          { err: messageOf(error), messages: batch.length, retryInMs: delay },
          'publishing alerts/revocations to Kafka failed; retrying',
        );
        if (this.stopped && failures >= 3) {
          const failure = new TriplineError(
            'KAFKA_UNAVAILABLE',
            `could not publish alerts/revocations: ${messageOf(error)}`,
            { cause: error },
          );
          for (const waiter of this.flushWaiters.splice(0)) waiter.reject(failure);
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
        await this.replaceProducer();
      }
    }
  }
}
