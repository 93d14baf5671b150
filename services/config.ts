/**
 * Tripline's configuration: read from the environment once at start-up, validated, frozen.
 * Every variable, its default and its range is listed in the README ("Configuration"); a test checks that
 * the two agree.
 */
import { resolve } from 'node:path';
import {
  deepFreeze,
  invalid,
  readBool,
  readEnum,
  readInt,
  readJson,
  readList,
  readNumber,
  readOptionalString,
  readPattern,
  readString,
  readUrl,
  type Env,
} from './shared/env.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface TaskTypeOverride {
  alertThreshold?: number;
  revokeThreshold?: number;
  shadow?: boolean;
}

export interface TriplineConfig {
  logLevel: LogLevel;
  otlp: { host: string; port: number; maxBodyBytes: number };
  api: { host: string; port: number };
  store: { dataDir: string; url: string | undefined; username: string; password: string; database: string };
  /** Set → distributed mode over this Kafka cluster; unset → the in-process bus. */
  kafka: { brokers: string[] | undefined; clientId: string; partitions: number; groupId: string };
  bus: { capacity: number };
  processor: { batchSize: number; flushIntervalMs: number; taskIdleTimeoutMs: number };
  detector: {
    warmupTasks: number;
    agentWarmupTasks: number;
    alertThreshold: number;
    revokeThreshold: number;
    shadow: boolean;
    perTaskType: Record<string, TaskTypeOverride>;
  };
}

/** Every variable the config reads, with its default, for the README and `--help`. */
export const CONFIG_VARIABLES = [
  ['LOG_LEVEL', 'info', 'fatal, error, warn, info, debug, trace or silent'],
  ['TRIPLINE_OTLP_HOST', '0.0.0.0', 'address the OTLP/HTTP receiver binds'],
  ['TRIPLINE_OTLP_PORT', '4318', 'OTLP/HTTP port (0 picks a free port)'],
  ['TRIPLINE_OTLP_MAX_BODY_BYTES', '16777216', 'largest OTLP request after decompression (1 KiB to 256 MiB)'],
  ['TRIPLINE_API_HOST', '0.0.0.0', 'address the HTTP API binds'],
  ['TRIPLINE_API_PORT', '8080', 'HTTP API port (0 picks a free port)'],
  ['TRIPLINE_DATA_DIR', './data', 'embedded ClickHouse data directory (used when CLICKHOUSE_URL is unset)'],
  ['CLICKHOUSE_URL', '(unset)', 'ClickHouse server URL; unset = the in-process engine in TRIPLINE_DATA_DIR'],
  ['CLICKHOUSE_USER', 'default', 'ClickHouse server user'],
  ['CLICKHOUSE_PASSWORD', '(empty)', 'ClickHouse server password'],
  ['CLICKHOUSE_DATABASE', 'tripline', 'database for Tripline tables'],
  ['KAFKA_BROKERS', '(unset)', 'comma-separated brokers; set = distributed mode over Kafka'],
  ['KAFKA_CLIENT_ID', 'tripline', 'Kafka client id'],
  ['KAFKA_PARTITIONS', '6', 'partitions for topics Tripline creates (1 to 1024)'],
  ['KAFKA_GROUP_ID', 'tripline-processor', 'consumer group of the processors'],
  ['TRIPLINE_BUS_CAPACITY', '100000', 'events the in-process bus holds before ingest answers 429 (100 to 10,000,000)'],
  ['TRIPLINE_BATCH_SIZE', '2000', 'events the processor scores and writes per batch (1 to 100,000)'],
  ['TRIPLINE_FLUSH_INTERVAL_MS', '5', 'longest wait before a partial batch is processed (0 to 10,000)'],
  ['TRIPLINE_TASK_IDLE_TIMEOUT_MS', '600000', 'a task with no event for this long is completed (1,000 to 86,400,000)'],
  ['TRIPLINE_WARMUP_TASKS', '20', 'completed benign tasks a task type needs before its baseline is used (1 to 100,000)'],
  ['TRIPLINE_AGENT_WARMUP_TASKS', '30', 'completed benign tasks one agent needs for its own baseline within a type'],
  ['TRIPLINE_ALERT_THRESHOLD', '50', 'score (0 to 100) at or above which an alert is raised'],
  ['TRIPLINE_REVOKE_THRESHOLD', '80', 'score (0 to 100) at or above which the task is revoked'],
  ['TRIPLINE_SHADOW', 'false', 'shadow mode for every task type: record "would have revoked", revoke nothing'],
  ['TRIPLINE_TASK_TYPE_OVERRIDES', '{}', 'JSON: per task type {"alertThreshold":n,"revokeThreshold":n,"shadow":bool}'],
] as const;

export function loadConfig(env: Env = process.env): Readonly<TriplineConfig> {
  const alertThreshold = readNumber(env, 'TRIPLINE_ALERT_THRESHOLD', 50, { min: 0, max: 100 });
  const revokeThreshold = readNumber(env, 'TRIPLINE_REVOKE_THRESHOLD', 80, { min: 0, max: 100 });
  if (revokeThreshold < alertThreshold) {
    throw invalid('TRIPLINE_REVOKE_THRESHOLD', String(revokeThreshold), `a number from TRIPLINE_ALERT_THRESHOLD (${alertThreshold}) to 100`);
  }
  const brokers = readOptionalString(env, 'KAFKA_BROKERS');
  return deepFreeze<TriplineConfig>({
    logLevel: readEnum(env, 'LOG_LEVEL', 'info', LOG_LEVELS),
    otlp: {
      host: readString(env, 'TRIPLINE_OTLP_HOST', '0.0.0.0'),
      port: readInt(env, 'TRIPLINE_OTLP_PORT', 4318, { min: 0, max: 65535 }),
      maxBodyBytes: readInt(env, 'TRIPLINE_OTLP_MAX_BODY_BYTES', 16 * 1024 * 1024, { min: 1024, max: 256 * 1024 * 1024 }),
    },
    api: {
      host: readString(env, 'TRIPLINE_API_HOST', '0.0.0.0'),
      port: readInt(env, 'TRIPLINE_API_PORT', 8080, { min: 0, max: 65535 }),
    },
    store: {
      dataDir: resolve(readString(env, 'TRIPLINE_DATA_DIR', './data')),
      url: readUrl(env, 'CLICKHOUSE_URL'),
      username: readString(env, 'CLICKHOUSE_USER', 'default'),
      password: env.CLICKHOUSE_PASSWORD ?? '',
      database: readPattern(env, 'CLICKHOUSE_DATABASE', 'tripline', /^[A-Za-z_][A-Za-z0-9_]*$/, 'a ClickHouse identifier (letters, digits, _)'),
    },
    kafka: {
      brokers: brokers === undefined ? undefined : readList(env, 'KAFKA_BROKERS', []),
      clientId: readString(env, 'KAFKA_CLIENT_ID', 'tripline'),
      partitions: readInt(env, 'KAFKA_PARTITIONS', 6, { min: 1, max: 1024 }),
      groupId: readString(env, 'KAFKA_GROUP_ID', 'tripline-processor'),
    },
    bus: { capacity: readInt(env, 'TRIPLINE_BUS_CAPACITY', 100_000, { min: 100, max: 10_000_000 }) },
    processor: {
      batchSize: readInt(env, 'TRIPLINE_BATCH_SIZE', 2000, { min: 1, max: 100_000 }),
      flushIntervalMs: readInt(env, 'TRIPLINE_FLUSH_INTERVAL_MS', 5, { min: 0, max: 10_000 }),
      taskIdleTimeoutMs: readInt(env, 'TRIPLINE_TASK_IDLE_TIMEOUT_MS', 600_000, { min: 1000, max: 86_400_000 }),
    },
    detector: {
      warmupTasks: readInt(env, 'TRIPLINE_WARMUP_TASKS', 20, { min: 1, max: 100_000 }),
      agentWarmupTasks: readInt(env, 'TRIPLINE_AGENT_WARMUP_TASKS', 30, { min: 1, max: 100_000 }),
      alertThreshold,
      revokeThreshold,
      shadow: readBool(env, 'TRIPLINE_SHADOW', false),
      perTaskType: readJson(env, 'TRIPLINE_TASK_TYPE_OVERRIDES', {}, isOverrides, 'a JSON object {"<task type>": {"alertThreshold": 0-100, "revokeThreshold": 0-100, "shadow": true|false}}'),
    },
  });
}

function isOverrides(value: unknown): value is Record<string, TaskTypeOverride> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  return Object.values(value as Record<string, unknown>).every((entry) => {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return false;
    const override = entry as Record<string, unknown>;
    const allowedKeys = ['alertThreshold', 'revokeThreshold', 'shadow'];
    return (
      Object.keys(override).every((key) => allowedKeys.includes(key)) &&
      isThreshold(override.alertThreshold) &&
      isThreshold(override.revokeThreshold) &&
      (override.shadow === undefined || typeof override.shadow === 'boolean')
    );
  });
}

function isThreshold(value: unknown): boolean {
  return value === undefined || (typeof value === 'number' && value >= 0 && value <= 100);
}
