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
import type { Consumer, Kafka } from 'kafkajs';
import { DECISIONS, REVOCATION_ACTIONS } from '../../../schemas/events.ts';
import { parseEscalationBasis } from '../../core/escalation-policy.ts';
import type { Alert, Revocation } from '../../../schemas/events.ts';
import type { KillSwitch, KillSwitchMessage } from '../../killswitch/kill-switch.ts';
import { TriplineError, messageOf } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { KafkaTopics } from './config.ts';
import { KillSwitchOutbox } from './kill-switch-outbox.ts';

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
  /**
   * Also read the alerts topic and raise, on the local kill switch, the refusal alerts (a loop or rate limit's
   * refuse step: `refuseUntilMs`, services/core/loops.ts) other processes published: the API process then refuses
   * the task's calls (POST /v1/check) and streams the refusal to the agents' guards. @default false
   */
  applyRemoteRefusals?: boolean;
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

/** A refusal alert read from Kafka (an alert, per schemas/alert.schema.json, with `refuseUntilMs`), or undefined. */
export function refusalAlertOf(document: unknown): Alert | undefined {
  if (document === null || typeof document !== 'object') return undefined;
  const a = document as Record<string, unknown>;
  const strings = ['id', 'tenant', 'taskId', 'taskType', 'agentId', 'eventId', 'regime'];
  if (
    !strings.every((key) => typeof a[key] === 'string') ||
    a.id === '' ||
    a.taskId === '' ||
    !(DECISIONS as readonly unknown[]).includes(a.decision) ||
    !Array.isArray(a.reasons) ||
    !a.reasons.every((reason) => typeof reason === 'string') ||
    typeof a.score !== 'number' ||
    typeof a.timeMs !== 'number' ||
    typeof a.shadow !== 'boolean' ||
    typeof a.refuseUntilMs !== 'number' ||
    !Number.isFinite(a.refuseUntilMs)
  )
    return undefined;
  return document as Alert;
}

/**
 * A revocation document read from Kafka, or undefined when it is not one. A malformed escalation basis loses the
 * basis, never the kill (without one it counts as an older version's: a person's kill counts, a detector's not).
 */
export function revocationOf(document: unknown): Revocation | undefined {
  if (!isRevocation(document)) return undefined;
  const { escalation, ...rest } = document;
  const basis = parseEscalationBasis(escalation);
  return basis === undefined ? rest : { ...rest, escalation: basis };
}

export function bridgeKillSwitchToKafka(options: KillSwitchBridgeOptions): KillSwitchBridge {
  const { kafka, killSwitch, topics, logger } = options;
  const outbox = new KillSwitchOutbox(kafka, logger, options.maxQueued ?? 10_000);
  let consumer: Consumer | undefined;
  /** Revocation ids applied or published here, most recent last. */
  const seen = new Set<string>();
  let unsubscribe: (() => void) | undefined;

  function remember(id: string): boolean {
    if (seen.has(id)) return false;
    seen.add(id);
    if (seen.size > 100_000) {
      const oldest = seen.values().next().value;
      if (oldest !== undefined) seen.delete(oldest);
    }
    return true;
  }

  function listener(message: KillSwitchMessage): void {
    if (outbox.stopped) return;
    if (message.type === 'alert') {
      // A refusal alert that came from Kafka (or was published already) is not published again.
      if (message.alert.refuseUntilMs !== undefined && !remember(`alert:${message.alert.id}`)) return;
      outbox.enqueue(topics.alerts, message.alert);
      return;
    }
    // A revocation that came from Kafka (or was published already) is not published again.
    if (!remember(message.revocation.id)) return;
    outbox.enqueue(topics.revocations, message.revocation);
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
    const revocation = revocationOf(document);
    if (revocation === undefined) {
      logger.warn('ignoring a revocation record that does not match schemas/revocation.schema.json');
      return;
    }
    if (!remember(revocation.id)) return;
    logger.info(
      { taskId: revocation.taskId, action: revocation.action, source: revocation.source, id: revocation.id },
      'applying a revocation from another process',
    );
    killSwitch.apply(revocation);
    try {
      options.onRemoteRevocation?.(revocation);
    } catch (error) {
      logger.error({ err: messageOf(error) }, 'applying a remote revocation failed');
    }
    await Promise.resolve();
  }

  function onAlertRecord(value: Buffer | null): void {
    if (value === null) return;
    let document: unknown;
    try {
      document = JSON.parse(value.toString('utf8'));
    } catch {
      return;
    }
    // Only refusal alerts matter here; any other alert (or a malformed one) is someone else's business.
    const alert = refusalAlertOf(document);
    if (alert === undefined || !remember(`alert:${alert.id}`)) return;
    logger.info(
      { taskId: alert.taskId, id: alert.id, until: new Date(alert.refuseUntilMs ?? 0).toISOString() },
      'applying a refusal from another process',
    );
    killSwitch.alert(alert);
  }

  return {
    async start() {
      unsubscribe = killSwitch.subscribe(listener);
      try {
        await outbox.connect();
        outbox.open();
        if (options.subscribe ?? true) {
          const groupId = `${options.groupIdPrefix ?? 'tripline-killswitch'}-${randomUUID()}`;
          consumer = kafka.consumer({
            groupId,
            maxWaitTimeInMs: 500,
            allowAutoTopicCreation: false,
            sessionTimeout: 10_000,
            heartbeatInterval: 1000,
          });
          await consumer.connect();
          const refusals = options.applyRemoteRefusals === true;
          await consumer.subscribe({
            topics: refusals ? [topics.revocations, topics.alerts] : [topics.revocations],
            fromBeginning: false,
          });
          await consumer.run({
            autoCommit: false,
            eachMessage: async ({ topic, message }) => {
              if (topic === topics.alerts) onAlertRecord(message.value);
              else await onRevocationRecord(message.value);
            },
          });
        }
      } catch (error) {
        throw new TriplineError(
          'KAFKA_UNAVAILABLE',
          `could not connect the kill switch to Kafka: ${messageOf(error)}`,
          { cause: error },
        );
      }
    },

    flush() {
      return outbox.flush();
    },

    async stop() {
      if (outbox.stopped) return;
      unsubscribe?.();
      // Publish what is queued before leaving (bounded by the retry cut-off once stopped).
      if (outbox.size() > 0)
        await Promise.race([
          this.flush().catch(() => undefined),
          new Promise((resolve) => setTimeout(resolve, 10_000)),
        ]);
      outbox.stopped = true;
      outbox.connected = false;
      await consumer?.disconnect().catch(() => undefined);
      await outbox.disconnect().catch(() => undefined);
    },
  };
}
