/**
 * The kafkajs client as Tripline uses it: one factory (logs go to Tripline's logger), topic creation at start,
 * and the check that the three span topics are co-partitioned (same partition count), which per-task state
 * on the processors depends on (see assigner.ts).
 */
import { Kafka, logLevel } from 'kafkajs';
import type { Admin, ITopicMetadata, LogEntry, SASLOptions } from 'kafkajs';
import { TriplineError, messageOf } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { registerKafkaCodecs } from './codecs.ts';
import { patchKafkajs } from './kafkajs-patches.ts';
import { allTopics, spanTopics } from './config.ts';
import type { KafkaSettings } from './config.ts';

export interface KafkaClientOptions {
  /** Suffix of the client id, e.g. `gateway`, so broker logs tell the processes apart. */
  role: string;
  /** Connect and request timeouts (ms). @default 3000 / 30000 */
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
}

/** A kafkajs client whose log lines go to `logger` (kafkajs INFO is chatty: it goes to debug). */
export function createKafka(
  settings: Pick<KafkaSettings, 'brokers' | 'clientId' | 'sasl' | 'ssl'>,
  logger: Logger,
  options: KafkaClientOptions,
): Kafka {
  // Every Tripline client can read (and the gateway write) ZSTD batches.
  registerKafkaCodecs();
  // kafkajs' request queue timer, produce encoder and CRC-32C (see kafkajs-patches.ts).
  patchKafkajs();
  const log = logger.child({ component: 'kafkajs', role: options.role });
  return new Kafka({
    clientId: `${settings.clientId}-${options.role}`,
    brokers: settings.brokers,
    // The role's own principal (KAFKA_SASL_*): the broker's ACLs decide which topics it may read and write.
    ...(settings.sasl === undefined ? {} : { sasl: { ...settings.sasl } as SASLOptions }),
    ...(settings.ssl === true ? { ssl: true } : {}),
    connectionTimeout: options.connectionTimeoutMs ?? 3000,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    // Reconnect quickly once a broker is back (kafkajs' default backoff grows to 30 s).
    retry: { initialRetryTime: 100, maxRetryTime: 2000, retries: 10 },
    logLevel: logLevel.INFO,
    logCreator:
      () =>
      ({ level, namespace, log: entry }: LogEntry) => {
        const fields: Record<string, unknown> = { kafkaNamespace: namespace };
        for (const [key, value] of Object.entries(entry))
          if (key !== 'message' && key !== 'timestamp') fields[key] = value as unknown;
        const message = entry.message;
        if (level === logLevel.ERROR || level === logLevel.WARN) log.warn(fields, message);
        else if (level === logLevel.INFO) log.debug(fields, message);
        else log.trace(fields, message);
      },
  });
}

/**
 * Creates the topics that are missing (span topics, alerts, revocations, dead letter) with the configured
 * partition count, then checks that the three span topics have the same partition count.
 *
 * @throws TriplineError KAFKA_UNAVAILABLE when the cluster cannot be reached, CONFIG_INVALID when the span
 *   topics exist with different partition counts.
 */
export async function ensureTopics(kafka: Kafka, settings: KafkaSettings, logger: Logger): Promise<void> {
  const admin = kafka.admin({ retry: { retries: 5 } });
  try {
    await admin.connect();
    const wanted = allTopics(settings.topics);
    // Topics just created (here or by another process starting at the same time) may not be in every
    // broker's metadata yet: retriable errors are retried for a while.
    for (let attempt = 1; ; attempt += 1) {
      try {
        const existing = new Set<string>(await admin.listTopics());
        const missing = wanted.filter((topic) => !existing.has(topic));
        if (missing.length > 0) {
          const created = await admin.createTopics({
            waitForLeaders: true,
            topics: missing.map((topic) => ({
              topic,
              numPartitions: settings.partitions,
              replicationFactor: settings.replicationFactor,
            })),
          });
          if (created) logger.info({ topics: missing, partitions: settings.partitions }, 'created Kafka topics');
        }
        await checkCoPartitioned(admin, settings, logger);
        return;
      } catch (error) {
        if (error instanceof TriplineError || (error as { retriable?: unknown }).retriable !== true || attempt >= 20)
          throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  } catch (error) {
    if (error instanceof TriplineError) throw error;
    throw new TriplineError(
      'KAFKA_UNAVAILABLE',
      `could not prepare the Kafka topics on ${settings.brokers.join(',')}: ${messageOf(error)}`,
      {
        cause: error,
        details: { retryAfterSeconds: 5 },
      },
    );
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function checkCoPartitioned(admin: Admin, settings: KafkaSettings, logger: Logger): Promise<void> {
  const topics = spanTopics(settings.topics);
  const metadata = await admin.fetchTopicMetadata({ topics });
  const counts = new Map(metadata.topics.map((topic: ITopicMetadata) => [topic.name, topic.partitions.length]));
  const distinct = new Set(counts.values());
  if (distinct.size > 1) {
    const listing = topics.map((topic) => `${topic}=${counts.get(topic) ?? '?'}`).join(', ');
    throw new TriplineError(
      'CONFIG_INVALID',
      `the span topics must have the same number of partitions (${listing}): a task's events are kept on one processor by partition number; add partitions to the smaller topics (kafka-topics.sh --alter --partitions N)`,
    );
  }
  const [count] = distinct;
  if (count !== undefined && count !== settings.partitions) {
    logger.info(
      { partitions: count, configured: settings.partitions },
      'span topics already exist with another partition count; using theirs',
    );
  }
}
