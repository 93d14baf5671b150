/**
 * The kill switch across processes. `bridgeKillSwitchToKafka` connects a process's local kill switch to Kafka:
 *
 * - every alert and revocation the local kill switch emits is published as JSON (schemas/alert.schema.json,
 *   schemas/revocation.schema.json) to the alerts / revocations topic, keyed by task id, so enforcement points
 *   elsewhere can subscribe; `flush()` resolves once everything emitted so far is acknowledged (the processor
 *   service awaits it before committing a batch's offsets, so a crash republishes rather than loses);
 * - with `subscribe`, revocations and restores published by other processes (a person's kill in the API process,
 *   the detector's kill in a processor) are applied to the local kill switch, so every process answers
 *   `isRevoked` alike, and handed to `onRemoteRevocation`.
 *
 * Ids are deterministic, so the same revocation seen twice (a replay, or this process's own publication coming
 * back) is applied and published once: the bridge remembers recent ids.
 */
import { randomUUID } from 'node:crypto';
import { CompressionTypes, Partitioners } from 'kafkajs';
import type { Consumer, Kafka, Message, Producer } from 'kafkajs';
import { REVOCATION_ACTIONS } from '../../../schemas/events.ts';
import type { Alert, Revocation } from '../../../schemas/events.ts';
import type { KillSwitch, KillSwitchMessage } from '../../killswitch/kill-switch.ts';
import { TriplineError, messageOf } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { KafkaTopics } from './config.ts';
import { TENANT_HEADER } from './publisher.ts';

export interface KillSwitchBridgeOptions {
  kafka: Kafka;
  killSwitch: KillSwitch;
  topics: Pick<KafkaTopics, 'alerts' | 'revocations'>;
  logger: Logger;
  /** Apply revocations published by other processes. @default true */
  subscribe?: boolean;
  /** Prefix of this process's own consumer group (each process reads every revocation). @default 'tripline-killswitch' */
  groupIdPrefix?: string;
  /** Called for each revocation or restore that came from another process (after the local kill switch applied it). */
  onRemoteRevocation?: (revocation: Revocation) => void;
  /** Most unpublished messages kept while Kafka is down; older ones are dropped with an error log. @default 10000 */
  maxQueued?: number;
}

export interface KillSwitchBridge {
  start(): Promise<void>;
  /** Resolves when every alert and revocation emitted so far has been acknowledged by Kafka. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

/** Checks the shape of a revocation document read from Kafka (per schemas/revocation.schema.json). */
export function isRevocation(value: unknown): value is Revocation {
  if (value === null || typeof value !== 'object') return false;
  const r = value as Record<string, unknown>;
  const strings = ['id', 'tenant', 'taskId', 'taskType', 'agentId', 'actor', 'reason', 'eventId'];
  return (
    strings.every((key) => typeof r[key] === 'string') &&
    r.id !== '' &&
    r.taskId !== '' &&
    (REVOCATION_ACTIONS as readonly unknown[]).includes(r.action) &&
    (r.source === 'detector' || r.source === 'manual') &&
    Array.isArray(r.reasons) &&
    r.reasons.every((reason) => typeof reason === 'string') &&
    typeof r.score === 'number' &&
    typeof r.timeMs === 'number'
  );
}

function recordOf(document: Alert | Revocation): Message {
  return {
    key: document.taskId,
    value: JSON.stringify(document),
    headers: { 'content-type': 'application/json', [TENANT_HEADER]: document.tenant },
  };
}

export function bridgeKillSwitchToKafka(options: KillSwitchBridgeOptions): KillSwitchBridge {
  const { kafka, killSwitch, topics, logger } = options;
  const maxQueued = options.maxQueued ?? 10_000;
  const newProducer = (): Producer =>
    kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      // Idempotence needs unlimited retries (kafkajs warns otherwise); short backoffs.
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 2000 },
    });
  let producer = newProducer();

  /**
   * After a failed produce request kafkajs rolls the idempotence sequences back, also for partitions the broker
   * had written, and the broker then acknowledges the next batch there as a duplicate without writing it (see
   * replaceProducer in kafka-publisher.ts): a revocation would be lost. Nothing more goes out on that producer.
   */
  async function replaceProducer(): Promise<void> {
    const failed = producer;
    producer = newProducer();
    failed.disconnect().catch(() => undefined);
    try {
      await producer.connect();
    } catch (error) {
      logger.warn({ err: messageOf(error) }, 'connecting a new Kafka producer for alerts/revocations failed; retrying');
    }
  }
  let consumer: Consumer | undefined;
  const queue: { topic: string; message: Message }[] = [];
  /** Revocation ids applied or published here, most recent last. */
  const seen = new Set<string>();
  let sending: Promise<void> | undefined;
  let connected = false;
  let stopped = false;
  let unsubscribe: (() => void) | undefined;
  let flushWaiters: { upTo: number; resolve: () => void; reject: (error: unknown) => void }[] = [];
  /** Messages enqueued so far / acknowledged so far (counters, so flush() waits only for what came before it). */
  let enqueued = 0;
  let acknowledged = 0;

  function remember(id: string): boolean {
    if (seen.has(id)) return false;
    seen.add(id);
    if (seen.size > 100_000) {
      const oldest = seen.values().next().value;
      if (oldest !== undefined) seen.delete(oldest);
    }
    return true;
  }

  function enqueue(topic: string, document: Alert | Revocation): void {
    queue.push({ topic, message: recordOf(document) });
    enqueued += 1;
    if (queue.length > maxQueued) {
      queue.shift();
      acknowledged += 1;
      logger.error({ topic }, 'dropping an unpublished kill-switch message: Kafka has been unavailable too long');
    }
    pump();
  }

  function listener(message: KillSwitchMessage): void {
    if (stopped) return;
    if (message.type === 'alert') {
      enqueue(topics.alerts, message.alert);
      return;
    }
    // A revocation that came from Kafka (or was published already) is not published again.
    if (!remember(message.revocation.id)) return;
    enqueue(topics.revocations, message.revocation);
  }

  const isConnected = (): boolean => connected;

  function settleWaiters(): void {
    const still: typeof flushWaiters = [];
    for (const waiter of flushWaiters) {
      if (acknowledged >= waiter.upTo) waiter.resolve();
      else still.push(waiter);
    }
    flushWaiters = still;
  }

  function pump(): void {
    if (!connected || sending !== undefined || queue.length === 0) return;
    sending = (async () => {
      // A kill emits its alert and then its revocation in one synchronous pass: wait for the pass to end so
      // both go in one produce request (otherwise the revocation waits for the alert's acknowledgement).
      await Promise.resolve();
      let failures = 0;
      while (queue.length > 0 && isConnected()) {
        const batch = queue.slice(0, 500);
        const byTopic = new Map<string, Message[]>();
        for (const item of batch) {
          const list = byTopic.get(item.topic) ?? [];
          list.push(item.message);
          byTopic.set(item.topic, list);
        }
        try {
          await producer.sendBatch({ topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })), acks: -1, compression: CompressionTypes.None });
          queue.splice(0, batch.length);
          acknowledged += batch.length;
          failures = 0;
          settleWaiters();
        } catch (error) {
          failures += 1;
          const delay = Math.min(5000, 100 * 2 ** Math.min(failures, 10));
          logger.error({ err: messageOf(error), messages: batch.length, retryInMs: delay }, 'publishing alerts/revocations to Kafka failed; retrying');
          if (stopped && failures >= 3) {
            const failure = new TriplineError('KAFKA_UNAVAILABLE', `could not publish alerts/revocations: ${messageOf(error)}`, { cause: error });
            for (const waiter of flushWaiters.splice(0)) waiter.reject(failure);
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, delay));
          await replaceProducer();
        }
      }
    })().finally(() => {
      sending = undefined;
      if (queue.length > 0 && connected && !stopped) pump();
    });
  }

  async function onRevocationRecord(value: Buffer | null): Promise<void> {
    if (value === null) return;
    let document: unknown;
    try {
      document = JSON.parse(value.toString('utf8'));
    } catch {
      logger.warn('ignoring a revocation record that is not JSON');
      return;
    }
    if (!isRevocation(document)) {
      logger.warn('ignoring a revocation record that does not match schemas/revocation.schema.json');
      return;
    }
    if (!remember(document.id)) return;
    logger.info({ taskId: document.taskId, action: document.action, source: document.source, id: document.id }, 'applying a revocation from another process');
    killSwitch.apply(document);
    try {
      options.onRemoteRevocation?.(document);
    } catch (error) {
      logger.error({ err: messageOf(error) }, 'applying a remote revocation failed');
    }
    await Promise.resolve();
  }

  return {
    async start() {
      unsubscribe = killSwitch.subscribe(listener);
      try {
        await producer.connect();
        connected = true;
        pump();
        if (options.subscribe ?? true) {
          const groupId = `${options.groupIdPrefix ?? 'tripline-killswitch'}-${randomUUID()}`;
          consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 500, allowAutoTopicCreation: false, sessionTimeout: 10_000, heartbeatInterval: 1000 });
          await consumer.connect();
          await consumer.subscribe({ topics: [topics.revocations], fromBeginning: false });
          await consumer.run({ autoCommit: false, eachMessage: ({ message }) => onRevocationRecord(message.value) });
        }
      } catch (error) {
        throw new TriplineError('KAFKA_UNAVAILABLE', `could not connect the kill switch to Kafka: ${messageOf(error)}`, { cause: error });
      }
    },

    flush() {
      if (acknowledged >= enqueued) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        flushWaiters.push({ upTo: enqueued, resolve, reject });
        pump();
      });
    },

    async stop() {
      if (stopped) return;
      unsubscribe?.();
      // Publish what is queued before leaving (bounded by the retry cut-off once stopped).
      if (queue.length > 0) await Promise.race([this.flush().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 10_000))]);
      stopped = true;
      connected = false;
      await consumer?.disconnect().catch(() => undefined);
      await producer.disconnect().catch(() => undefined);
    },
  };
}
