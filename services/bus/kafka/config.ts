/**
 * Kafka settings of the distributed mode, read from the environment once and validated (the base settings —
 * brokers, client id, partitions, group id — come from `services/app/config.ts`; this module adds topic names and
 * the producer/consumer knobs). Every variable is listed in KAFKA_CONFIG_VARIABLES for the README.
 */
import { DEFAULT_TOPICS } from '../../../schemas/conventions.ts';
import type { EventKind } from '../../../schemas/conventions.ts';
import type { KafkaSasl, TriplineConfig } from '../../app/config.ts';
import { TriplineError } from '../../shared/errors.ts';
import { deepFreeze, readEnum, readInt, readPattern, type Env } from '../../shared/env.ts';

export const KAFKA_COMPRESSIONS = ['gzip', 'zstd', 'none'] as const;
export type KafkaCompression = (typeof KAFKA_COMPRESSIONS)[number];

/** Topic names: the three span topics (one per kind) and the three Tripline writes besides. */
export interface KafkaTopics {
  tool_call: string;
  data_access: string;
  privilege_change: string;
  alerts: string;
  revocations: string;
  deadLetter: string;
}

export interface KafkaSettings {
  /** Bootstrap brokers, `host:port`. */
  brokers: string[];
  clientId: string;
  /** Partitions of the topics Tripline creates; the three span topics must all have the same count. */
  partitions: number;
  /** Replication factor of created topics; -1 = the broker's `default.replication.factor`. */
  replicationFactor: number;
  /** Consumer group of the processors. */
  groupId: string;
  /** SASL credentials of this process's clients (KAFKA_SASL_*); undefined = none. */
  sasl?: KafkaSasl | undefined;
  /** TLS to the brokers (KAFKA_SSL). @default false */
  ssl?: boolean;
  topics: KafkaTopics;
  producer: {
    /**
     * Compression of produced record batches. GZIP is the default: kafkajs computes the record-batch CRC in
     * JavaScript, so sending 10x fewer bytes costs less CPU than compressing them (test/bench/kafka.bench.ts),
     * and every Kafka client reads it. ZSTD (Node's zlib, see codecs.ts) is cheaper still and smaller;
     * its readers need ZSTD support (Java, librdkafka, franz-go and Tripline do; plain kafkajs does not).
     * @default 'gzip'
     */
    compression: KafkaCompression;
    /** Longest wait for Kafka's acknowledgement before the OTLP request is answered 503. @default 5000 */
    publishTimeoutMs: number;
    /**
     * Retry-After (seconds) advertised with 503 while Kafka is unavailable. Short, so that the OTel SDK's few
     * retries (5, within its export timeout, 10 s by default) reach a broker that comes back. @default 2
     */
    retryAfterSeconds: number;
    /** Bytes (encoded records) accepted but not yet acknowledged; past it ingest answers 429/503. @default 64 MiB */
    maxInFlightBytes: number;
    /**
     * Longest a record waits for others to share its produce request; the request goes out sooner once 256 KiB
     * are queued (publisher.ts). Each produce request and each partition batch in it has a fixed cost (kafkajs'
     * encoders, one zstd frame per partition, a socket round trip), so at low load waiting for company is what
     * keeps the CPU per span down (test/bench/gateway-vs-collector.bench.ts: at 2,000 spans/s, 100 ms gives ~3
     * OTLP requests per produce request instead of 1); it also bounds the latency added to each OTLP request
     * (the upstream collector's batch processor waits up to 200 ms in collectors/otelcol/config.yaml). @default 100
     */
    lingerMs: number;
    /**
     * Most bytes (uncompressed) of one partition in one produce request, i.e. the largest record batch; keep it
     * below the broker's `message.max.bytes`. A request holds up to 16 such batches. @default 900000
     */
    maxBatchBytes: number;
    /** Largest single record; a task's spans are split over several records above it. @default 900000 */
    maxRecordBytes: number;
  };
  consumer: {
    /** @default 30000 */
    sessionTimeoutMs: number;
    /** @default 3000 */
    heartbeatIntervalMs: number;
    /** Time a member has to finish its batch and rejoin during a rebalance. @default 60000 */
    rebalanceTimeoutMs: number;
    /**
     * Largest fetch (all partitions, compressed as stored). Records are compressed about 10:1, and a fetch is
     * decoded at once, so this bounds the processor's memory: 4 MiB ≈ 40 MB of spans. @default 4194304
     */
    maxBytes: number;
    /**
     * Longest a batch may be in the handler while the member keeps heartbeating (like Java's
     * `max.poll.interval.ms`); past it heartbeats stop, so a hung processor loses its partitions after the
     * session timeout instead of holding them forever. @default 300000
     */
    maxPollIntervalMs: number;
  };
}

/** Every variable this module reads, with its default, for the README. */
export const KAFKA_CONFIG_VARIABLES = [
  ['TRIPLINE_TOPIC_TOOL_CALLS', DEFAULT_TOPICS.tool_call, 'topic of tool-call spans (and task-boundary spans)'],
  ['TRIPLINE_TOPIC_DATA_ACCESS', DEFAULT_TOPICS.data_access, 'topic of data-access spans'],
  ['TRIPLINE_TOPIC_PRIVILEGE_CHANGES', DEFAULT_TOPICS.privilege_change, 'topic of privilege-change spans'],
  [
    'TRIPLINE_TOPIC_ALERTS',
    DEFAULT_TOPICS.alerts,
    'topic Tripline publishes alerts to (JSON, schemas/alert.schema.json)',
  ],
  [
    'TRIPLINE_TOPIC_REVOCATIONS',
    DEFAULT_TOPICS.revocations,
    'topic of revocations and restores (JSON, schemas/revocation.schema.json)',
  ],
  ['TRIPLINE_TOPIC_DEAD_LETTER', DEFAULT_TOPICS.deadLetter, 'topic undecodable span records are moved to'],
  [
    'TRIPLINE_KAFKA_REPLICATION_FACTOR',
    '-1',
    'replication factor of topics Tripline creates (-1 = broker default, up to 32)',
  ],
  [
    'TRIPLINE_KAFKA_COMPRESSION',
    'gzip',
    'compression of produced span batches: gzip, zstd (cheaper; readers need ZSTD support) or none',
  ],
  [
    'TRIPLINE_KAFKA_PUBLISH_TIMEOUT_MS',
    '5000',
    'longest wait for Kafka to acknowledge spans before ingest answers 503 (100 to 120,000)',
  ],
  ['TRIPLINE_KAFKA_RETRY_AFTER_SECONDS', '2', 'Retry-After advertised with 503 while Kafka is unavailable (1 to 60)'],
  [
    'TRIPLINE_KAFKA_MAX_IN_FLIGHT_BYTES',
    '67108864',
    'span bytes accepted but not yet acknowledged by Kafka before ingest answers 429/503 (1 MiB to 4 GiB)',
  ],
  [
    'TRIPLINE_KAFKA_LINGER_MS',
    '100',
    'longest a record waits for others to share a produce request, which goes out sooner once 256 KiB are queued (0 to 1,000)',
  ],
  [
    'TRIPLINE_KAFKA_MAX_BATCH_BYTES',
    '900000',
    "most bytes of one partition per produce request; keep below the broker's message.max.bytes (16 KiB to 64 MiB)",
  ],
  [
    'TRIPLINE_KAFKA_MAX_RECORD_BYTES',
    '900000',
    'largest record; bigger groups of spans are split (1 KiB to 64 MiB, at most TRIPLINE_KAFKA_MAX_BATCH_BYTES)',
  ],
  [
    'TRIPLINE_KAFKA_SESSION_TIMEOUT_MS',
    '30000',
    'consumer session timeout: a processor silent this long is replaced (6,000 to 300,000)',
  ],
  [
    'TRIPLINE_KAFKA_HEARTBEAT_INTERVAL_MS',
    '3000',
    'consumer heartbeat interval (100 to 60,000, below the session timeout)',
  ],
  [
    'TRIPLINE_KAFKA_REBALANCE_TIMEOUT_MS',
    '60000',
    'time a processor has to finish its batch and rejoin during a rebalance (1,000 to 600,000)',
  ],
  [
    'TRIPLINE_KAFKA_FETCH_MAX_BYTES',
    '4194304',
    'largest fetch of a processor, as stored (compressed); bounds its memory (64 KiB to 256 MiB)',
  ],
  [
    'TRIPLINE_KAFKA_MAX_POLL_INTERVAL_MS',
    '300000',
    'longest a processor may work on one batch and keep its partitions; a hung one is replaced after this plus the session timeout (1,000 to 3,600,000)',
  ],
] as const;

/** Kafka's own rule for topic names. */
const TOPIC_PATTERN = /^[A-Za-z0-9._-]{1,249}$/;
const TOPIC_EXPECTED = 'a Kafka topic name (1 to 249 of letters, digits, ".", "_", "-")';

/** The span topic of each kind. */
export function spanTopicOf(topics: KafkaTopics, kind: EventKind): string {
  return topics[kind];
}

export function spanTopics(topics: KafkaTopics): [string, string, string] {
  return [topics.tool_call, topics.data_access, topics.privilege_change];
}

/** Every topic Tripline uses. */
export function allTopics(topics: KafkaTopics): string[] {
  return [...spanTopics(topics), topics.alerts, topics.revocations, topics.deadLetter];
}

/**
 * Reads the Kafka settings. Throws CONFIG_INVALID when KAFKA_BROKERS is unset (the distributed mode needs it)
 * or a value is out of range.
 */
export function loadKafkaSettings(base: TriplineConfig['kafka'], env: Env = process.env): Readonly<KafkaSettings> {
  if (base.brokers === undefined || base.brokers.length === 0) {
    throw new TriplineError(
      'CONFIG_INVALID',
      'KAFKA_BROKERS is not set: the distributed mode needs a Kafka cluster (e.g. KAFKA_BROKERS=kafka:9092)',
      {
        details: { variable: 'KAFKA_BROKERS' },
      },
    );
  }
  const topic = (name: string, fallback: string): string =>
    readPattern(env, name, fallback, TOPIC_PATTERN, TOPIC_EXPECTED);
  const topics: KafkaTopics = {
    tool_call: topic('TRIPLINE_TOPIC_TOOL_CALLS', DEFAULT_TOPICS.tool_call),
    data_access: topic('TRIPLINE_TOPIC_DATA_ACCESS', DEFAULT_TOPICS.data_access),
    privilege_change: topic('TRIPLINE_TOPIC_PRIVILEGE_CHANGES', DEFAULT_TOPICS.privilege_change),
    alerts: topic('TRIPLINE_TOPIC_ALERTS', DEFAULT_TOPICS.alerts),
    revocations: topic('TRIPLINE_TOPIC_REVOCATIONS', DEFAULT_TOPICS.revocations),
    deadLetter: topic('TRIPLINE_TOPIC_DEAD_LETTER', DEFAULT_TOPICS.deadLetter),
  };
  const names = allTopics(topics);
  if (new Set(names).size !== names.length) {
    throw new TriplineError(
      'CONFIG_INVALID',
      `Kafka topic names must differ from each other (got ${names.join(', ')})`,
      {
        details: { variable: 'TRIPLINE_TOPIC_*' },
      },
    );
  }
  const maxBatchBytes = readInt(env, 'TRIPLINE_KAFKA_MAX_BATCH_BYTES', 900_000, {
    min: 16 * 1024,
    max: 64 * 1024 * 1024,
  });
  const sessionTimeoutMs = readInt(env, 'TRIPLINE_KAFKA_SESSION_TIMEOUT_MS', 30_000, { min: 6000, max: 300_000 });
  return deepFreeze<KafkaSettings>({
    brokers: [...base.brokers],
    clientId: base.clientId,
    partitions: base.partitions,
    replicationFactor: readReplicationFactor(env),
    groupId: base.groupId,
    ...(base.sasl === undefined ? {} : { sasl: { ...base.sasl } }),
    ssl: base.ssl ?? false,
    topics,
    producer: {
      compression: readEnum(env, 'TRIPLINE_KAFKA_COMPRESSION', 'gzip', KAFKA_COMPRESSIONS),
      publishTimeoutMs: readInt(env, 'TRIPLINE_KAFKA_PUBLISH_TIMEOUT_MS', 5000, { min: 100, max: 120_000 }),
      retryAfterSeconds: readInt(env, 'TRIPLINE_KAFKA_RETRY_AFTER_SECONDS', 2, { min: 1, max: 60 }),
      maxInFlightBytes: readInt(env, 'TRIPLINE_KAFKA_MAX_IN_FLIGHT_BYTES', 64 * 1024 * 1024, {
        min: 1024 * 1024,
        max: 4 * 1024 * 1024 * 1024,
      }),
      lingerMs: readInt(env, 'TRIPLINE_KAFKA_LINGER_MS', 100, { min: 0, max: 1000 }),
      maxBatchBytes,
      maxRecordBytes: readInt(env, 'TRIPLINE_KAFKA_MAX_RECORD_BYTES', 900_000, { min: 1024, max: maxBatchBytes }),
    },
    consumer: {
      sessionTimeoutMs,
      heartbeatIntervalMs: readInt(env, 'TRIPLINE_KAFKA_HEARTBEAT_INTERVAL_MS', 3000, {
        min: 100,
        max: Math.min(60_000, sessionTimeoutMs - 1),
      }),
      rebalanceTimeoutMs: readInt(env, 'TRIPLINE_KAFKA_REBALANCE_TIMEOUT_MS', 60_000, { min: 1000, max: 600_000 }),
      maxBytes: readInt(env, 'TRIPLINE_KAFKA_FETCH_MAX_BYTES', 4 * 1024 * 1024, {
        min: 64 * 1024,
        max: 256 * 1024 * 1024,
      }),
      maxPollIntervalMs: readInt(env, 'TRIPLINE_KAFKA_MAX_POLL_INTERVAL_MS', 300_000, { min: 1000, max: 3_600_000 }),
    },
  });
}

function readReplicationFactor(env: Env): number {
  const value = readInt(env, 'TRIPLINE_KAFKA_REPLICATION_FACTOR', -1, { min: -1, max: 32 });
  if (value === 0)
    throw new TriplineError(
      'CONFIG_INVALID',
      'TRIPLINE_KAFKA_REPLICATION_FACTOR="0" is invalid: expected -1 (broker default) or 1 to 32',
      { details: { variable: 'TRIPLINE_KAFKA_REPLICATION_FACTOR' } },
    );
  return value;
}
