/**
 * Tripline's configuration: read from the environment once at start-up, validated, frozen.
 * Every variable, its default and its range is listed in the README ("Configuration"); a test checks that
 * the two agree.
 */
import type { SpendSettings } from '../core/spend/index.ts';
import { readSpendConfig } from './spend-config.ts';
import type { TlsFiles } from './tls.ts';
import { join, resolve } from 'node:path';
import { parseNotifierConfigs } from '../killswitch/notifiers/config.ts';
import { DEFAULT_POLICY_DIR } from '../killswitch/settings.ts';
import { MIN_TOKEN_LENGTH, isAcceptableToken } from '../auth/api-tokens.ts';
import type { KillSwitchConfig } from '../killswitch/settings.ts';
import type { DetectorConfig } from '../core/detect/index.ts';
import { DEFAULT_COUNTERPARTY_KEY } from '../core/counterparties.ts';
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
} from '../shared/env.ts';
import { LOG_LEVELS } from '../shared/logger.ts';
import type { LoopPolicy } from '../core/loop-policy.ts';
import { readLoopPolicy } from './loop-limits.ts';
import { readMcpGatewayConfig } from '../mcp-gateway/config.ts';
import type { McpGatewayConfig } from '../mcp-gateway/config.ts';
import type { LogLevel } from '../shared/logger.ts';

export type { LogLevel };

export interface TaskTypeOverride {
  alertThreshold?: number;
  revokeThreshold?: number;
  shadow?: boolean;
}

export interface TriplineConfig {
  logLevel: LogLevel;
  /** How long a signalled shutdown may take before the process logs what is pending and exits 1. */
  shutdownGraceMs: number;
  otlp: { host: string; port: number; maxBodyBytes: number; maxInFlightBytes: number };
  api: { host: string; port: number };
  /** The health endpoint of roles without an HTTP server (processors); `port` undefined = none. */
  health: { host: string; port: number | undefined };
  /** TLS on the API, OTLP and MCP gateway servers (services/app/tls.ts); undefined = plain HTTP. */
  tls: TlsFiles | undefined;
  store: { dataDir: string; url: string | undefined; username: string; password: string; database: string };
  /** Set → distributed mode over this Kafka cluster; unset → the in-process bus. */
  kafka: {
    brokers: string[] | undefined;
    clientId: string;
    partitions: number;
    groupId: string;
    /** SASL authentication of every Kafka client of this process; undefined = none. */
    sasl?: KafkaSasl | undefined;
    /** TLS to the brokers. @default false */
    ssl?: boolean;
  };
  /** `tenantCapacity`: one tenant's share of the bus (services/bus/in-process-bus.ts). */
  bus: { capacity: number; tenantCapacity: number };
  processor: { batchSize: number; flushIntervalMs: number; writeLingerMs: number; taskIdleTimeoutMs: number };
  /**
   * Distributed mode: the learner of record (in the API role) and the published baseline book (docs/detection.md,
   * "One learner of record"). `intervalMs` 0: this API process does not learn (another one does).
   */
  learner: { intervalMs: number; pollMs: number };
  detector: {
    warmupTasks: number;
    agentWarmupTasks: number;
    alertThreshold: number;
    revokeThreshold: number;
    shadow: boolean;
    perTaskType: Record<string, TaskTypeOverride>;
  };
  /** Credentials, policy, leases, verification, notifiers (services/killswitch). */
  killSwitch: KillSwitchConfig;
  /** API and ingest tokens, per-tenant ingest limits (services/auth). */
  auth: AuthConfig;
  /** How spans are classified (services/core/classify.ts): the gateway's and the processors' alike. */
  classify: ClassifyConfig;
  /** Model-call prices and spend budgets (services/app/spend-config.ts, docs/budgets.md). */
  spend: SpendSettings;
  /** The MCP gateway (services/mcp-gateway/config.ts); off unless TRIPLINE_MCP_SERVERS names a server. */
  mcpGateway: McpGatewayConfig;
  /** Loop and rate limits with their action ladders (TRIPLINE_LIMITS_FILE; services/core/loops.ts, docs/loops.md). */
  loops: LoopPolicy;
}

export const KAFKA_SASL_MECHANISMS = ['none', 'plain', 'scram-sha-256', 'scram-sha-512'] as const;

/** A Kafka client's SASL credentials (one principal per role: the broker's ACLs say what each may do). */
export interface KafkaSasl {
  mechanism: Exclude<(typeof KAFKA_SASL_MECHANISMS)[number], 'none'>;
  username: string;
  password: string;
}

export interface ClassifyConfig {
  /** The secret of the counterparties' keyed hashes (services/core/counterparties.ts). */
  counterpartyKey: string;
  /** Keep tool calls' arguments and results in stored events (else a `[not stored: N chars]` marker). */
  storeToolContent: boolean;
}

/** Shortest TRIPLINE_COUNTERPARTY_KEY accepted. */
export const MIN_COUNTERPARTY_KEY_LENGTH = 16;

export interface AuthConfig {
  /** Registered (hashed) at start as the `default` tenant's superuser admin token. */
  adminToken: string | undefined;
  /** Registered (hashed) at start as an agent (ingest) token of the `default` tenant. */
  agentToken: string | undefined;
  refreshMs: number;
  tenantSpansPerSecond: number;
  tenantBurstSpans: number;
  /** Decoded OTLP body bytes per second and tenant (TRIPLINE_TENANT_BYTES_PER_SECOND, 32 MiB). */
  tenantBytesPerSecond: number;
  /** TRIPLINE_TENANT_BURST_BYTES, twice the rate. */
  tenantBurstBytes: number;
}

/** Every variable the config reads, with its default, for the README and `--help`. */
export const CONFIG_VARIABLES = [
  ['LOG_LEVEL', 'info', 'fatal, error, warn, info, debug, trace or silent'],
  [
    'TRIPLINE_SHUTDOWN_GRACE_MS',
    '30000',
    'how long stopping (SIGINT/SIGTERM) may take; past it (or at a second signal) the steps still under way are logged and the process exits with code 1 (1,000 to 600,000)',
  ],
  ['TRIPLINE_OTLP_HOST', '0.0.0.0', 'address the OTLP/HTTP receiver binds'],
  ['TRIPLINE_OTLP_PORT', '4318', 'OTLP/HTTP port (0 picks a free port)'],
  ['TRIPLINE_OTLP_MAX_BODY_BYTES', '16777216', 'largest OTLP request after decompression (1 KiB to 256 MiB)'],
  [
    'TRIPLINE_OTLP_MAX_IN_FLIGHT_BYTES',
    '268435456',
    'OTLP request bytes held at once; past it new requests get 429 with Retry-After before their body is read (1 MiB to 16 GiB)',
  ],
  ['TRIPLINE_API_HOST', '0.0.0.0', 'address the HTTP API binds'],
  ['TRIPLINE_API_PORT', '8080', 'HTTP API port (0 picks a free port)'],
  [
    'TRIPLINE_HEALTH_PORT',
    '(unset)',
    "port of a processor's health endpoint (GET /healthz: 200 while it runs); unset = none",
  ],
  ['TRIPLINE_HEALTH_HOST', '127.0.0.1', "address a processor's health endpoint binds"],
  [
    'TRIPLINE_TLS_CERT_FILE',
    '(unset)',
    'PEM certificate (chain, leaf first) the API, OTLP and MCP gateway servers present: set with TRIPLINE_TLS_KEY_FILE, they speak HTTPS; unset = plain HTTP (terminate TLS in front)',
  ],
  ['TRIPLINE_TLS_KEY_FILE', '(unset)', "the certificate's unencrypted PEM private key"],
  ['TRIPLINE_DATA_DIR', './data', 'embedded ClickHouse data directory (used when CLICKHOUSE_URL is unset)'],
  ['CLICKHOUSE_URL', '(unset)', 'ClickHouse server URL; unset = the in-process engine in TRIPLINE_DATA_DIR'],
  ['CLICKHOUSE_USER', 'default', 'ClickHouse server user'],
  ['CLICKHOUSE_PASSWORD', '(empty)', 'ClickHouse server password'],
  ['CLICKHOUSE_DATABASE', 'tripline', 'database for Tripline tables'],
  ['KAFKA_BROKERS', '(unset)', 'comma-separated brokers; set = distributed mode over Kafka'],
  ['KAFKA_CLIENT_ID', 'tripline', 'Kafka client id'],
  ['KAFKA_PARTITIONS', '6', 'partitions for topics Tripline creates (1 to 1024)'],
  ['KAFKA_GROUP_ID', 'tripline-processor', 'consumer group of the processors'],
  [
    'KAFKA_SASL_MECHANISM',
    'none',
    "SASL authentication to Kafka: none, plain, scram-sha-256 or scram-sha-512 (give each role its own user: the broker's ACLs decide what it may write)",
  ],
  ['KAFKA_SASL_USERNAME', '(unset)', 'Kafka SASL user (required with a mechanism)'],
  ['KAFKA_SASL_PASSWORD', '(unset)', 'Kafka SASL password (required with a mechanism)'],
  ['KAFKA_SSL', 'false', 'TLS to the Kafka brokers (with SASL: SASL_SSL; plain SASL should always use it)'],
  ['TRIPLINE_BUS_CAPACITY', '100000', 'events the in-process bus holds before ingest answers 429 (100 to 10,000,000)'],
  [
    'TRIPLINE_BUS_TENANT_CAPACITY',
    '(half of TRIPLINE_BUS_CAPACITY)',
    "events one tenant holds in the in-process bus before its ingest answers 429 while other tenants' is accepted (1 to TRIPLINE_BUS_CAPACITY)",
  ],
  ['TRIPLINE_BATCH_SIZE', '2000', 'events the processor scores and writes per batch (1 to 100,000)'],
  ['TRIPLINE_FLUSH_INTERVAL_MS', '5', 'longest wait before a partial batch is processed (0 to 10,000)'],
  [
    'TRIPLINE_STORE_WRITE_LINGER_MS',
    '1000',
    "longest a processor's store write waits for more results to join it (up to 10,000 events); kills are never held back (0 to 5,000; 0 = write at once)",
  ],
  ['TRIPLINE_TASK_IDLE_TIMEOUT_MS', '600000', 'a task with no event for this long is completed (1,000 to 86,400,000)'],
  [
    'TRIPLINE_LEARNER_INTERVAL_MS',
    '60000',
    'distributed mode: how often the API role rebuilds the baselines from the store and publishes a new book when it changed (0 = this process does not learn; 1,000 to 86,400,000)',
  ],
  [
    'TRIPLINE_BASELINE_POLL_MS',
    '2000',
    'distributed mode: how often processors and the API look for a newer baseline book, and the learner for new false-positive marks (100 to 60,000)',
  ],
  [
    'TRIPLINE_WARMUP_TASKS',
    '20',
    'completed benign tasks a task type needs before its baseline is used (1 to 100,000)',
  ],
  ['TRIPLINE_AGENT_WARMUP_TASKS', '30', 'completed benign tasks one agent needs for its own baseline within a type'],
  [
    'TRIPLINE_LIMITS_FILE',
    '(the shipped policies/limits.json)',
    'loop and rate-limit policy (JSON, docs/loops.md): limits and the alert / refuse / revoke ladder per task type; `off` counts nothing',
  ],
  ['TRIPLINE_ALERT_THRESHOLD', '50', 'score (0 to 100) at or above which an alert is raised'],
  ['TRIPLINE_REVOKE_THRESHOLD', '80', 'score (0 to 100) at or above which the task is revoked'],
  ['TRIPLINE_SHADOW', 'false', 'shadow mode for every task type: record "would have revoked", revoke nothing'],
  ['TRIPLINE_TASK_TYPE_OVERRIDES', '{}', 'JSON: per task type {"alertThreshold":n,"revokeThreshold":n,"shadow":bool}'],
  [
    'TRIPLINE_PUBLIC_URL',
    'http://localhost:8080',
    'the API as agents and people reach it: links in notifications, default token issuer',
  ],
  [
    'TRIPLINE_POLICY_DIR',
    '(the shipped policies/)',
    'directory of Cedar policies (*.cedar, optional schema.cedarschema and entities.json); default deny',
  ],
  ['TRIPLINE_TOKEN_ISSUER', '(TRIPLINE_PUBLIC_URL)', '`iss` of task tokens'],
  ['TRIPLINE_TOKEN_AUDIENCE', 'tripline', '`aud` of task tokens'],
  ['TRIPLINE_TOKEN_TTL_SECONDS', '900', 'task token lifetime in seconds (30 to 86,400)'],
  [
    'TRIPLINE_SIGNING_KEY',
    '(unset)',
    'Ed25519 private key (JWK JSON or PKCS#8 PEM) that signs task tokens; unset = generated once into TRIPLINE_KEYS_DIR (set it in distributed mode so every API instance signs alike)',
  ],
  [
    'TRIPLINE_SECRETS_KEY',
    '(unset)',
    'AES-256-GCM key of the built-in secret store, base64 of 32 bytes; unset = generated once into TRIPLINE_KEYS_DIR',
  ],
  [
    'TRIPLINE_KEYS_DIR',
    '(TRIPLINE_DATA_DIR/keys)',
    'where generated keys are kept (mode 0600); back it up with the data',
  ],
  [
    'TRIPLINE_LEASE_TTL_SECONDS',
    '900',
    'longest secret lease in seconds (30 to 86,400); a lease never outlives its token',
  ],
  [
    'TRIPLINE_APPROVAL_TTL_SECONDS',
    '900',
    'how long an approval point stays valid after it is asked for (1 to 86,400 seconds): a pending one not decided, or an approved one not used, by then expires (docs/approvals.md)',
  ],
  [
    'TRIPLINE_SECRET_WEBHOOK_URL',
    '(unset)',
    'external vault for secret leases (signed POSTs to lease and revoke); unset = built-in store only',
  ],
  [
    'TRIPLINE_SECRET_WEBHOOK_SECRET',
    '(unset)',
    'HMAC-SHA256 key signing requests to TRIPLINE_SECRET_WEBHOOK_URL (required with it)',
  ],
  [
    'TRIPLINE_SECRET_WEBHOOK_NAMES',
    '*',
    'comma-separated secret names the vault serves (a trailing * matches any suffix)',
  ],
  [
    'TRIPLINE_VERIFY_WINDOW_MS',
    '5000',
    'after a revocation, how long the verifier watches for the agent acting before it records `verified` (100 to 600,000)',
  ],
  [
    'TRIPLINE_VERIFY_CLOCK_SKEW_MS',
    '250',
    'events starting this soon after a revocation are not held against the agent (0 to 60,000)',
  ],
  ['TRIPLINE_VERIFY_REQUIRE_ACK', 'false', 'a kill is verified only if the agent helper acknowledged it'],
  [
    'TRIPLINE_ESCALATION_REVOCATIONS',
    '3',
    'confident revocations (a person, a hard rule, a score 15 over the revoke threshold) of one agent within the window that escalate: its tasks in the narrowest scope they share (end user, conversation, else the agent) revoked, no new ones there (0 = never)',
  ],
  ['TRIPLINE_ESCALATION_WINDOW_MS', '600000', 'the escalation window (1,000 to 86,400,000)'],
  ['TRIPLINE_ESCALATION_BLOCK_MS', '900000', 'how long an escalated agent may not start tasks (1,000 to 604,800,000)'],
  [
    'TRIPLINE_NOTIFIERS',
    '[]',
    'JSON array of notifier destinations (webhook, slack, alertmanager, pagerduty) with routing by severity, kind and task type; see docs/kill-switch.md',
  ],
  [
    'TRIPLINE_ADMIN_TOKEN',
    '(unset)',
    'an admin token (24+ characters) registered at start, stored hashed; unset = one is generated at first start and printed once',
  ],
  [
    'TRIPLINE_AGENT_TOKEN',
    '(unset)',
    'an agent token (OTLP ingest, task starts) registered at start for the tenant `default`; unset = one is generated at first start and printed once',
  ],
  [
    'TRIPLINE_AUTH_REFRESH_MS',
    '5000',
    'how often tokens are re-read from ClickHouse, so tokens made or revoked by another process apply (500 to 300,000)',
  ],
  [
    'TRIPLINE_TENANT_SPANS_PER_SECOND',
    '20000',
    'ingest rate limit per tenant and process, in spans per second (1 to 10,000,000); over it: 429 with Retry-After',
  ],
  [
    'TRIPLINE_TENANT_BURST_SPANS',
    '(2 × the rate)',
    'spans a tenant may send at once above its rate (1 to 100,000,000)',
  ],
  [
    'TRIPLINE_TENANT_BYTES_PER_SECOND',
    '33554432',
    'ingest rate limit per tenant and process, in decoded OTLP body bytes per second (1 KiB to 10 GiB); over it: 429 with Retry-After',
  ],
  [
    'TRIPLINE_TENANT_BURST_BYTES',
    '(2 × the rate)',
    'bytes a tenant may send at once above its byte rate (1 KiB to 20 GiB)',
  ],
  ['TRIPLINE_STREAM_HEARTBEAT_MS', '15000', 'keep-alive comment interval on GET /v1/stream (1,000 to 300,000)'],
  [
    'TRIPLINE_STREAM_MAX_CLIENTS',
    '1000',
    'open GET /v1/stream connections per API process, all tenants together (1 to 1,000,000); beyond: 503 with Retry-After',
  ],
  [
    'TRIPLINE_STREAM_MAX_CLIENTS_PER_TENANT',
    '100',
    'open GET /v1/stream connections per tenant and API process (1 to 1,000,000); beyond: 429 with Retry-After',
  ],
  [
    'TRIPLINE_SILENT_TASK_GRACE_MS',
    '30000',
    'a task that checks or leases this long after it got its token, with no telemetry under its task id, alerts `identity.no_telemetry` (0 to 3,600,000)',
  ],
  [
    'TRIPLINE_COUNTERPARTY_KEY',
    '(built in, public)',
    'secret (16+ characters) of the keyed hashes that stand for the counterparties of tool calls (mail addresses, accounts, hosts, handles, phones); the built-in default is public, so set your own, the same in every gateway and processor; changing it makes every counterparty look new',
  ],
  [
    'TRIPLINE_STORE_TOOL_CONTENT',
    'false',
    "keep tool calls' arguments and results (cut at 512 characters) in stored events; false = each is stored as `[not stored: N chars]`",
  ],
  [
    'TRIPLINE_MODEL_PRICES',
    '(unset)',
    'JSON file of model prices (USD per million tokens in and out) over the shipped policies/model-prices.json (docs/budgets.md)',
  ],
  [
    'TRIPLINE_BUDGETS',
    '(policies/budgets.json)',
    'JSON file of spend budgets per task, agent, task type or tenant (docs/budgets.md)',
  ],
] as const;

/** The detector's settings as the core takes them: a mutable copy of the frozen configuration. */
export function detectorConfigOf(config: Readonly<TriplineConfig>): DetectorConfig {
  return { ...config.detector, perTaskType: { ...config.detector.perTaskType } };
}

export function loadConfig(env: Env = process.env): Readonly<TriplineConfig> {
  const alertThreshold = readNumber(env, 'TRIPLINE_ALERT_THRESHOLD', 50, { min: 0, max: 100 });
  const revokeThreshold = readNumber(env, 'TRIPLINE_REVOKE_THRESHOLD', 80, { min: 0, max: 100 });
  if (revokeThreshold < alertThreshold) {
    throw invalid(
      'TRIPLINE_REVOKE_THRESHOLD',
      String(revokeThreshold),
      `a number from TRIPLINE_ALERT_THRESHOLD (${alertThreshold}) to 100`,
    );
  }
  const brokers = readOptionalString(env, 'KAFKA_BROKERS');
  const dataDir = resolve(readString(env, 'TRIPLINE_DATA_DIR', './data'));
  return deepFreeze<TriplineConfig>({
    logLevel: readEnum(env, 'LOG_LEVEL', 'info', LOG_LEVELS),
    shutdownGraceMs: readInt(env, 'TRIPLINE_SHUTDOWN_GRACE_MS', 30_000, { min: 1000, max: 600_000 }),
    otlp: {
      host: readString(env, 'TRIPLINE_OTLP_HOST', '0.0.0.0'),
      port: readInt(env, 'TRIPLINE_OTLP_PORT', 4318, { min: 0, max: 65535 }),
      maxBodyBytes: readInt(env, 'TRIPLINE_OTLP_MAX_BODY_BYTES', 16 * 1024 * 1024, {
        min: 1024,
        max: 256 * 1024 * 1024,
      }),
      maxInFlightBytes: readInt(env, 'TRIPLINE_OTLP_MAX_IN_FLIGHT_BYTES', 256 * 1024 * 1024, {
        min: 1024 * 1024,
        max: 16 * 1024 * 1024 * 1024,
      }),
    },
    api: {
      host: readString(env, 'TRIPLINE_API_HOST', '0.0.0.0'),
      port: readInt(env, 'TRIPLINE_API_PORT', 8080, { min: 0, max: 65535 }),
    },
    health: {
      host: readString(env, 'TRIPLINE_HEALTH_HOST', '127.0.0.1'),
      port:
        readOptionalString(env, 'TRIPLINE_HEALTH_PORT') === undefined
          ? undefined
          : readInt(env, 'TRIPLINE_HEALTH_PORT', 0, { min: 0, max: 65535 }),
    },
    tls: readTlsFiles(env),
    store: {
      dataDir,
      url: readUrl(env, 'CLICKHOUSE_URL'),
      username: readString(env, 'CLICKHOUSE_USER', 'default'),
      password: env.CLICKHOUSE_PASSWORD ?? '',
      database: readPattern(
        env,
        'CLICKHOUSE_DATABASE',
        'tripline',
        /^[A-Za-z_][A-Za-z0-9_]*$/,
        'a ClickHouse identifier (letters, digits, _)',
      ),
    },
    kafka: {
      brokers: brokers === undefined ? undefined : readList(env, 'KAFKA_BROKERS', []),
      clientId: readString(env, 'KAFKA_CLIENT_ID', 'tripline'),
      partitions: readInt(env, 'KAFKA_PARTITIONS', 6, { min: 1, max: 1024 }),
      groupId: readString(env, 'KAFKA_GROUP_ID', 'tripline-processor'),
      sasl: readKafkaSasl(env),
      ssl: readBool(env, 'KAFKA_SSL', false),
    },
    bus: readBus(env),
    processor: {
      batchSize: readInt(env, 'TRIPLINE_BATCH_SIZE', 2000, { min: 1, max: 100_000 }),
      flushIntervalMs: readInt(env, 'TRIPLINE_FLUSH_INTERVAL_MS', 5, { min: 0, max: 10_000 }),
      writeLingerMs: readInt(env, 'TRIPLINE_STORE_WRITE_LINGER_MS', 1000, { min: 0, max: 5000 }),
      taskIdleTimeoutMs: readInt(env, 'TRIPLINE_TASK_IDLE_TIMEOUT_MS', 600_000, { min: 1000, max: 86_400_000 }),
    },
    learner: {
      intervalMs: readLearnerInterval(env),
      pollMs: readInt(env, 'TRIPLINE_BASELINE_POLL_MS', 2000, { min: 100, max: 60_000 }),
    },
    detector: {
      warmupTasks: readInt(env, 'TRIPLINE_WARMUP_TASKS', 20, { min: 1, max: 100_000 }),
      agentWarmupTasks: readInt(env, 'TRIPLINE_AGENT_WARMUP_TASKS', 30, { min: 1, max: 100_000 }),
      alertThreshold,
      revokeThreshold,
      shadow: readBool(env, 'TRIPLINE_SHADOW', false),
      perTaskType: readJson(
        env,
        'TRIPLINE_TASK_TYPE_OVERRIDES',
        {},
        isOverrides,
        'a JSON object {"<task type>": {"alertThreshold": 0-100, "revokeThreshold": 0-100, "shadow": true|false}}',
      ),
    },
    killSwitch: readKillSwitchConfig(env, dataDir),
    auth: readAuthConfig(env),
    classify: readClassifyConfig(env),
    spend: readSpendConfig(env),
    mcpGateway: readMcpGatewayConfig(env),
    loops: readLoopPolicy(env),
  });
}

/** The in-process bus: its capacity and one tenant's share of it (half by default). */
function readBus(env: Env): TriplineConfig['bus'] {
  const capacity = readInt(env, 'TRIPLINE_BUS_CAPACITY', 100_000, { min: 100, max: 10_000_000 });
  const tenantCapacity = readInt(env, 'TRIPLINE_BUS_TENANT_CAPACITY', Math.floor(capacity / 2), {
    min: 1,
    max: capacity,
  });
  return { capacity, tenantCapacity };
}

function readTlsFiles(env: Env): TlsFiles | undefined {
  const certFile = readOptionalString(env, 'TRIPLINE_TLS_CERT_FILE');
  const keyFile = readOptionalString(env, 'TRIPLINE_TLS_KEY_FILE');
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined)
    throw invalid('TRIPLINE_TLS_CERT_FILE', '', 'a certificate file (TRIPLINE_TLS_KEY_FILE is set)');
  if (keyFile === undefined) throw invalid('TRIPLINE_TLS_KEY_FILE', '', 'a key file (TRIPLINE_TLS_CERT_FILE is set)');
  return { certFile: resolve(certFile), keyFile: resolve(keyFile) };
}

function readLearnerInterval(env: Env): number {
  if (env.TRIPLINE_LEARNER_INTERVAL_MS?.trim() === '0') return 0;
  return readInt(env, 'TRIPLINE_LEARNER_INTERVAL_MS', 60_000, { min: 1000, max: 86_400_000 });
}

function readKafkaSasl(env: Env): KafkaSasl | undefined {
  const mechanism = readEnum(env, 'KAFKA_SASL_MECHANISM', 'none', KAFKA_SASL_MECHANISMS);
  if (mechanism === 'none') return undefined;
  const username = readOptionalString(env, 'KAFKA_SASL_USERNAME');
  if (username === undefined) throw invalid('KAFKA_SASL_USERNAME', '', `a user (KAFKA_SASL_MECHANISM=${mechanism})`);
  const password = readOptionalString(env, 'KAFKA_SASL_PASSWORD');
  // The value is a secret: name the problem, not the value.
  if (password === undefined)
    throw invalid(
      'KAFKA_SASL_PASSWORD',
      '(not shown: it is a secret)',
      `a password (KAFKA_SASL_MECHANISM=${mechanism})`,
    );
  return { mechanism, username, password };
}

function readClassifyConfig(env: Env): ClassifyConfig {
  const key = readOptionalString(env, 'TRIPLINE_COUNTERPARTY_KEY');
  // The value is a secret: name the problem, not the value.
  if (key !== undefined && key.length < MIN_COUNTERPARTY_KEY_LENGTH)
    throw invalid(
      'TRIPLINE_COUNTERPARTY_KEY',
      '(not shown: it is a secret)',
      `at least ${String(MIN_COUNTERPARTY_KEY_LENGTH)} characters`,
    );
  return {
    counterpartyKey: key ?? DEFAULT_COUNTERPARTY_KEY,
    storeToolContent: readBool(env, 'TRIPLINE_STORE_TOOL_CONTENT', false),
  };
}

function readAuthConfig(env: Env): AuthConfig {
  const readToken = (name: string): string | undefined => {
    const token = readOptionalString(env, name);
    // The value is a secret: name the problem, not the value.
    if (token !== undefined && !isAcceptableToken(token))
      throw invalid(
        name,
        '(not shown: it is a secret)',
        `at least ${String(MIN_TOKEN_LENGTH)} characters of letters, digits and -._~+/=`,
      );
    return token;
  };
  const adminToken = readToken('TRIPLINE_ADMIN_TOKEN');
  const agentToken = readToken('TRIPLINE_AGENT_TOKEN');
  if (adminToken !== undefined && adminToken === agentToken)
    throw invalid('TRIPLINE_AGENT_TOKEN', '(not shown: it is a secret)', 'a token other than TRIPLINE_ADMIN_TOKEN');
  const tenantSpansPerSecond = readInt(env, 'TRIPLINE_TENANT_SPANS_PER_SECOND', 20_000, { min: 1, max: 10_000_000 });
  const tenantBytesPerSecond = readInt(env, 'TRIPLINE_TENANT_BYTES_PER_SECOND', 32 * 1024 * 1024, {
    min: 1024,
    max: 10 * 1024 * 1024 * 1024,
  });
  return {
    adminToken,
    agentToken,
    refreshMs: readInt(env, 'TRIPLINE_AUTH_REFRESH_MS', 5000, { min: 500, max: 300_000 }),
    tenantSpansPerSecond,
    tenantBurstSpans: readInt(env, 'TRIPLINE_TENANT_BURST_SPANS', Math.min(100_000_000, tenantSpansPerSecond * 2), {
      min: 1,
      max: 100_000_000,
    }),
    tenantBytesPerSecond,
    tenantBurstBytes: readInt(env, 'TRIPLINE_TENANT_BURST_BYTES', tenantBytesPerSecond * 2, {
      min: 1024,
      max: 20 * 1024 * 1024 * 1024,
    }),
  };
}

function readKillSwitchConfig(env: Env, dataDir: string): KillSwitchConfig {
  const publicUrl = (readUrl(env, 'TRIPLINE_PUBLIC_URL') ?? 'http://localhost:8080').replace(/\/$/, '');
  const webhookUrl = readUrl(env, 'TRIPLINE_SECRET_WEBHOOK_URL');
  const webhookSecret = readOptionalString(env, 'TRIPLINE_SECRET_WEBHOOK_SECRET');
  if (webhookUrl !== undefined && webhookSecret === undefined) {
    throw invalid(
      'TRIPLINE_SECRET_WEBHOOK_SECRET',
      '',
      'the HMAC key for requests to TRIPLINE_SECRET_WEBHOOK_URL (required when that is set)',
    );
  }
  const policyDir = readOptionalString(env, 'TRIPLINE_POLICY_DIR');
  const keysDir = readOptionalString(env, 'TRIPLINE_KEYS_DIR');
  const notifiersText = readOptionalString(env, 'TRIPLINE_NOTIFIERS');
  let notifiers: KillSwitchConfig['notifiers'] = [];
  if (notifiersText !== undefined) {
    try {
      notifiers = parseNotifierConfigs(JSON.parse(notifiersText));
    } catch (error) {
      // The value holds secrets (webhook keys, routing keys): name the problem, not the value.
      throw invalid(
        'TRIPLINE_NOTIFIERS',
        '(not shown: it may hold secrets)',
        `a JSON array of notifiers (${error instanceof Error ? error.message : String(error)}); see docs/kill-switch.md`,
      );
    }
  }
  return {
    policyDir: policyDir === undefined ? DEFAULT_POLICY_DIR : resolve(policyDir),
    publicUrl,
    tokenIssuer: readString(env, 'TRIPLINE_TOKEN_ISSUER', publicUrl),
    tokenAudience: readString(env, 'TRIPLINE_TOKEN_AUDIENCE', 'tripline'),
    tokenTtlSeconds: readInt(env, 'TRIPLINE_TOKEN_TTL_SECONDS', 900, { min: 30, max: 86_400 }),
    signingKey: readOptionalString(env, 'TRIPLINE_SIGNING_KEY'),
    secretsKey: readOptionalString(env, 'TRIPLINE_SECRETS_KEY'),
    keysDir: keysDir === undefined ? join(dataDir, 'keys') : resolve(keysDir),
    leaseTtlSeconds: readInt(env, 'TRIPLINE_LEASE_TTL_SECONDS', 900, { min: 30, max: 86_400 }),
    approvalTtlSeconds: readInt(env, 'TRIPLINE_APPROVAL_TTL_SECONDS', 900, { min: 1, max: 86_400 }),
    secretWebhook:
      webhookUrl === undefined || webhookSecret === undefined
        ? undefined
        : { url: webhookUrl, secret: webhookSecret, names: readList(env, 'TRIPLINE_SECRET_WEBHOOK_NAMES', ['*']) },
    verifyWindowMs: readInt(env, 'TRIPLINE_VERIFY_WINDOW_MS', 5000, { min: 100, max: 600_000 }),
    verifyClockSkewMs: readInt(env, 'TRIPLINE_VERIFY_CLOCK_SKEW_MS', 250, { min: 0, max: 60_000 }),
    verifyRequireAck: readBool(env, 'TRIPLINE_VERIFY_REQUIRE_ACK', false),
    escalation: {
      revocations: readInt(env, 'TRIPLINE_ESCALATION_REVOCATIONS', 3, { min: 0, max: 1000 }),
      windowMs: readInt(env, 'TRIPLINE_ESCALATION_WINDOW_MS', 600_000, { min: 1000, max: 86_400_000 }),
      blockMs: readInt(env, 'TRIPLINE_ESCALATION_BLOCK_MS', 900_000, { min: 1000, max: 604_800_000 }),
    },
    notifiers,
    streamHeartbeatMs: readInt(env, 'TRIPLINE_STREAM_HEARTBEAT_MS', 15_000, { min: 1000, max: 300_000 }),
    streamMaxClients: readInt(env, 'TRIPLINE_STREAM_MAX_CLIENTS', 1000, { min: 1, max: 1_000_000 }),
    streamMaxClientsPerTenant: readInt(env, 'TRIPLINE_STREAM_MAX_CLIENTS_PER_TENANT', 100, { min: 1, max: 1_000_000 }),
    silentTaskGraceMs: readInt(env, 'TRIPLINE_SILENT_TASK_GRACE_MS', 30_000, { min: 0, max: 3_600_000 }),
  };
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
