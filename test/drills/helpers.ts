/**
 * What every fault drill shares: the credentials and the only functions that speak HTTP to Tripline (so that
 * ingest and API authentication is added in one place), agents that export OTLP and keep a ledger of what was
 * acknowledged, the audit of what ClickHouse holds, and the drill's figures (printed and appended to a results
 * file that `node scripts/drills.ts` turns into a table).
 *
 * The rules every drill checks after recovery:
 *   - stored == sent: the distinct event ids in ClickHouse are exactly the ids of the spans the agents sent and
 *     got a 2xx for (agents retry refusals and network errors until acknowledged, as OTLP clients do);
 *   - no duplicates: `count()` equals `uniqExact(id)` reading the events table the way Tripline reads it (FINAL);
 *   - a rogue task, when the drill has one, is revoked exactly once;
 * and it measures (never asserts) the time to recover.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import type { ClickHouseClient } from '@clickhouse/client';
import { context, trace } from '@opentelemetry/api';
import type { Tracer } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import type { ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { createChdbConnection } from 'chdb/connection';
import { expect } from 'vitest';
import { encodeTraceRequest } from '../../services/otlp/codec.ts';
import type { OtlpKeyValue, OtlpSpan, OtlpTraceRequest } from '../../schemas/otlp.ts';
import { loadKafkaSettings } from '../../services/bus/kafka/config.ts';
import type { KafkaSettings } from '../../services/bus/kafka/config.ts';
import { loadConfig } from '../../services/app/config.ts';
import type { TriplineConfig } from '../../services/app/config.ts';
import { createLogger } from '../../services/shared/logger.ts';
import type { Logger } from '../../services/shared/logger.ts';
import { waitFor } from '../helpers/wait.ts';

// ------------------------------------------------------------------------------------------------------------
// Credentials. Ingest and the API will require bearer tokens; until then the headers are ignored.

export const DRILL_AGENT_TOKEN = 'drill-agent-token-0123456789abcdef';
export const DRILL_ADMIN_TOKEN = 'drill-admin-token-0123456789abcdef';

/** The environment that gives a Tripline process (or `loadConfig`) the drill's tokens. */
export function authEnv(): Record<string, string> {
  return { TRIPLINE_AGENT_TOKEN: DRILL_AGENT_TOKEN, TRIPLINE_ADMIN_TOKEN: DRILL_ADMIN_TOKEN };
}

// ------------------------------------------------------------------------------------------------------------
// HTTP: every request a drill makes to Tripline goes through these two functions.

export interface ExportAnswer {
  status: number;
  retryAfter: string | null;
}

/** POST /v1/traces (OTLP protobuf) as an agent. Throws on a network error (connection refused or reset). */
export async function postTraces(otlpUrl: string, body: Uint8Array): Promise<ExportAnswer> {
  const response = await fetch(`${otlpUrl}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${DRILL_AGENT_TOKEN}` },
    body,
    signal: AbortSignal.timeout(60_000),
  });
  await response.arrayBuffer();
  return { status: response.status, retryAfter: response.headers.get('retry-after') };
}

/** A request to the HTTP API as an administrator. */
export function api(apiUrl: string, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${DRILL_ADMIN_TOKEN}`);
  if (init.body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
  return fetch(`${apiUrl}${path}`, { ...init, headers, signal: init.signal ?? AbortSignal.timeout(30_000) });
}

// ------------------------------------------------------------------------------------------------------------
// What agents send: one OTLP request per task, its spans' event ids known in advance.

export const DRILL_TASK_TYPE = 'drill_task';

export interface TaskExport {
  taskId: string;
  /** Event ids (trace id + span id) of the spans Tripline stores. */
  ids: string[];
  body: Uint8Array;
}

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const text = (key: string, value: string): OtlpKeyValue => ({ key, value: { stringValue: value } });
const list = (key: string, values: string[]): OtlpKeyValue => ({
  key,
  value: { arrayValue: { values: values.map((value) => ({ stringValue: value })) } },
});

/** Attributes of the i-th benign event: a tool call, a read, or a routine privilege change, in turn. */
function benignAttributes(i: number): OtlpKeyValue[] {
  if (i % 3 === 0)
    return [
      text('gen_ai.operation.name', 'execute_tool'),
      text('gen_ai.tool.name', `lookup_${i % 4}`),
      text('tripline.tool.side_effect', 'read'),
    ];
  if (i % 3 === 1)
    return [
      text('db.system.name', 'postgresql'),
      text('db.namespace', 'helpdesk'),
      text('db.collection.name', 'tickets'),
      { key: 'db.response.returned_rows', value: { intValue: 3 } },
    ];
  return [
    text('tripline.privilege.action', 'token_issue'),
    list('tripline.privilege.scopes_before', ['tickets:read']),
    list('tripline.privilege.scopes_after', ['tickets:read']),
  ];
}

/** An unapproved change into an admin scope: a hard rule that revokes the task at once. */
const ROGUE_ATTRIBUTES: OtlpKeyValue[] = [
  text('tripline.privilege.action', 'elevate'),
  list('tripline.privilege.scopes_before', ['tickets:read']),
  list('tripline.privilege.scopes_after', ['tickets:read', 'admin']),
  { key: 'tripline.privilege.approved', value: { boolValue: false } },
];

/**
 * One task's spans as one OTLP request: `events` benign events, then the rogue one when asked, and the task span
 * that ends the task (unless `end` is false: more of the task follows in another request).
 */
export function taskExport(options: {
  taskId: string;
  agentId: string;
  events: number;
  rogue?: boolean;
  end?: boolean;
  traceId?: string;
}): TaskExport {
  const traceId = options.traceId ?? hex(16);
  const rootId = hex(8);
  const start = BigInt(Date.now()) * 1_000_000n;
  const spans: OtlpSpan[] = [];
  const count = options.events + (options.rogue === true ? 1 : 0);
  for (let i = 0; i < count; i += 1) {
    const rogue = options.rogue === true && i === count - 1;
    const begins = start + BigInt(i + 1) * 1_000_000n;
    spans.push({
      traceId,
      spanId: hex(8),
      parentSpanId: rootId,
      name: rogue ? 'privilege elevate' : `event ${i}`,
      kind: 1,
      startTimeUnixNano: begins.toString(),
      endTimeUnixNano: (begins + 500_000n).toString(),
      attributes: rogue ? ROGUE_ATTRIBUTES : benignAttributes(i),
      events: [],
      links: [],
      status: { code: 1 },
    });
  }
  const ids = spans.map((span) => span.traceId + span.spanId);
  if (options.end !== false) {
    const ends = start + BigInt(count + 1) * 1_000_000n;
    spans.push({
      traceId,
      spanId: rootId,
      parentSpanId: '',
      name: `task ${DRILL_TASK_TYPE}`,
      kind: 1,
      startTimeUnixNano: start.toString(),
      endTimeUnixNano: ends.toString(),
      attributes: [{ key: 'tripline.task.root', value: { boolValue: true } }],
      events: [],
      links: [],
      status: { code: 1 },
    });
  }
  const request: OtlpTraceRequest = {
    resourceSpans: [
      {
        resource: {
          attributes: [
            text('service.name', options.agentId),
            text('gen_ai.agent.id', options.agentId),
            text('tripline.task.id', options.taskId),
            text('tripline.task.type', DRILL_TASK_TYPE),
          ],
        },
        scopeSpans: [{ scope: { name: 'tripline-drill', version: '1', attributes: [] }, spans }],
      },
    ],
  };
  return { taskId: options.taskId, ids, body: encodeTraceRequest(request) };
}

// ------------------------------------------------------------------------------------------------------------
// Agents: export, retry what is refused (honouring Retry-After) or lost, and record what was acknowledged.

export class Ledger {
  /** Event ids acknowledged with a 2xx. */
  readonly acked = new Set<string>();
  /** The task of each acknowledged event id (to say which task lost events, should one). */
  readonly taskOf = new Map<string, string>();
  /** Export attempts answered with each status (2xx included). */
  readonly answers = new Map<number, number>();
  /** 429/503 answers without a Retry-After header (the contract says there is always one). */
  refusedWithoutRetryAfter = 0;
  networkErrors = 0;
  /** When each acknowledged export was acknowledged (epoch ms). */
  readonly ackTimes: number[] = [];

  count(status: number): number {
    return this.answers.get(status) ?? 0;
  }

  /** Refusals (429 and 503 answers). */
  refusals(): number {
    return this.count(429) + this.count(503);
  }

  firstAckAfter(timeMs: number): number | undefined {
    return this.ackTimes.find((at) => at >= timeMs);
  }
}

/** An answer OTLP clients do not retry (400, 401, 413, …): the drill itself is wrong. */
export class ExportRejected extends Error {
  constructor(taskId: string, status: number) {
    super(`task ${taskId} was answered ${status}, which an OTLP client does not retry`);
    this.name = 'ExportRejected';
  }
}

export interface ExportOptions {
  /** Longest wait between attempts (a longer Retry-After is shortened to this). @default 2000 */
  maxWaitMs?: number;
  /** Give up (throw) after this long. @default 180000 */
  deadlineMs?: number;
}

/** Sends one task's spans until a 2xx; `target()` is asked for the URL at every attempt. */
export async function exportUntilAcknowledged(
  target: () => string,
  task: TaskExport,
  ledger: Ledger,
  options: ExportOptions = {},
): Promise<void> {
  const maxWaitMs = options.maxWaitMs ?? 2000;
  const deadline = Date.now() + (options.deadlineMs ?? 180_000);
  for (let attempt = 1; ; attempt += 1) {
    let waitMs = Math.min(maxWaitMs, 100 * 2 ** Math.min(attempt, 5));
    try {
      const answer = await postTraces(target(), task.body);
      ledger.answers.set(answer.status, ledger.count(answer.status) + 1);
      if (answer.status >= 200 && answer.status < 300) {
        for (const id of task.ids) {
          ledger.acked.add(id);
          ledger.taskOf.set(id, task.taskId);
        }
        ledger.ackTimes.push(Date.now());
        return;
      }
      if (![429, 502, 503, 504].includes(answer.status)) throw new ExportRejected(task.taskId, answer.status);
      if (answer.retryAfter === null)
        ledger.refusedWithoutRetryAfter += answer.status === 429 || answer.status === 503 ? 1 : 0;
      else waitMs = Math.min(maxWaitMs, Number(answer.retryAfter) * 1000);
    } catch (error) {
      if (error instanceof ExportRejected) throw error;
      ledger.networkErrors += 1;
    }
    if (Date.now() + waitMs > deadline) throw new Error(`task ${task.taskId} was not acknowledged within the deadline`);
    await sleep(waitMs);
  }
}

export interface Agents {
  ledger: Ledger;
  /** Tasks exported so far (acknowledged or still being retried). */
  tasks(): number;
  /** Sends one task now (e.g. the rogue one) beside the agents' own; resolves once acknowledged. */
  send(task: TaskExport): Promise<void>;
  /** Stops starting tasks and waits until every task started is acknowledged. */
  stop(): Promise<void>;
}

/**
 * `count` agents, each exporting one task after the other (`eventsPerTask` events each, `pauseMs` apart) to
 * `target()` until stopped. Task ids are `<prefix>-<agent>-<n>`.
 */
export function startAgents(options: {
  target: () => string;
  count: number;
  eventsPerTask: number;
  pauseMs: number;
  prefix: string;
  ledger?: Ledger;
  exportOptions?: ExportOptions;
}): Agents {
  const ledger = options.ledger ?? new Ledger();
  let stopping = false;
  let started = 0;
  const extra: Promise<void>[] = [];
  const loops = Array.from({ length: options.count }, async (_, agent) => {
    for (let n = 0; !stopping; n += 1) {
      started += 1;
      const task = taskExport({
        taskId: `${options.prefix}-${agent}-${n}`,
        agentId: `${options.prefix}-agent-${agent}`,
        events: options.eventsPerTask,
      });
      await exportUntilAcknowledged(options.target, task, ledger, options.exportOptions);
      if (options.pauseMs > 0) await sleep(options.pauseMs);
    }
  });
  const all = Promise.all(loops);
  all.catch(() => undefined);
  return {
    ledger,
    tasks: () => started + extra.length,
    send(task) {
      const sent = exportUntilAcknowledged(options.target, task, ledger, options.exportOptions);
      extra.push(sent);
      return sent;
    },
    async stop() {
      stopping = true;
      await all;
      await Promise.all(extra);
    },
  };
}

// ------------------------------------------------------------------------------------------------------------
// An agent on the real OpenTelemetry SDK (NodeSDK, BatchSpanProcessor, OTLP/HTTP protobuf exporter), whose
// exporter reports which spans the gateway acknowledged.

export interface SdkAgent {
  tracer: Tracer;
  /** Ids of the event spans (not task spans) the exporter got a success for. */
  ledger: Ledger;
  /** One task: a task span with `events` child spans (tool call, read, privilege change in turn). */
  runTask(taskId: string, events: number): void;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** Records the spans of successful exports (the SDK retries 429/503 itself, within its timeouts). */
class AcknowledgingExporter implements SpanExporter {
  readonly #inner: SpanExporter;
  readonly #ledger: Ledger;

  constructor(inner: SpanExporter, ledger: Ledger) {
    this.#inner = inner;
    this.#ledger = ledger;
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.#inner.export(spans, (result) => {
      if (result.code === ExportResultCode.SUCCESS) {
        for (const span of spans) {
          if (span.attributes['tripline.task.root'] === true) continue;
          const id = span.spanContext().traceId + span.spanContext().spanId;
          this.#ledger.acked.add(id);
          this.#ledger.taskOf.set(id, `${String(span.attributes['tripline.task.id'])} (${span.name})`);
        }
        this.#ledger.ackTimes.push(Date.now());
      }
      resultCallback(result);
    });
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve();
  }
}

/** Starts the SDK (process-global, one at a time) exporting to `otlpUrl`; its timeouts are `timeoutMs`. */
export function startSdkAgent(otlpUrl: string, agentId: string, timeoutMs: number): SdkAgent {
  const ledger = new Ledger();
  const exporter = new OTLPTraceExporter({
    url: `${otlpUrl}/v1/traces`,
    headers: { authorization: `Bearer ${DRILL_AGENT_TOKEN}` },
    timeoutMillis: timeoutMs,
  });
  const spans = new BatchSpanProcessor({
    exporter: new AcknowledgingExporter(exporter, ledger),
    scheduledDelayMillis: 100,
    exportTimeoutMillis: timeoutMs,
    maxQueueSize: 8192,
  });
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({ 'service.name': agentId }),
    spanProcessors: [spans],
    instrumentations: [],
  });
  sdk.start();
  const tracer = trace.getTracer(agentId);
  return {
    tracer,
    ledger,
    runTask(taskId, events) {
      const common = { 'tripline.task.id': taskId, 'tripline.task.type': DRILL_TASK_TYPE, 'gen_ai.agent.id': agentId };
      const root = tracer.startSpan(`task ${DRILL_TASK_TYPE}`, {
        root: true,
        attributes: { ...common, 'tripline.task.root': true },
      });
      const parent = trace.setSpan(context.active(), root);
      for (let i = 0; i < events; i += 1) {
        const attributes =
          i % 3 === 0
            ? { ...common, 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'get_ticket' }
            : i % 3 === 1
              ? {
                  ...common,
                  'db.system.name': 'postgresql',
                  'db.namespace': 'helpdesk',
                  'db.collection.name': 'tickets',
                  'db.response.returned_rows': 3,
                }
              : {
                  ...common,
                  'tripline.privilege.action': 'token_issue',
                  'tripline.privilege.scopes_after': ['tickets:read'],
                };
        tracer.startSpan(`event ${i}`, { attributes }, parent).end();
      }
      root.end();
    },
    forceFlush: () => spans.forceFlush(),
    shutdown: () => sdk.shutdown(),
  };
}

// ------------------------------------------------------------------------------------------------------------
// The audit: what ClickHouse holds, read the way Tripline reads it.

/** A SQL client on the drill's ClickHouse: a server URL, or a second connection to this process's engine. */
export function openAuditClient(target: { url: string } | { dataDir: string }): ClickHouseClient {
  // Quiet: the drills query while the server is away, and retry.
  const common = {
    clickhouse_settings: { output_format_json_quote_64bit_integers: 0 as const },
    log: { level: ClickHouseLogLevel.OFF },
  };
  if ('url' in target) return createClient({ url: target.url, username: 'drill-audit', ...common });
  const connection = createChdbConnection({ path: target.dataDir }) as unknown as NonNullable<
    NonNullable<Parameters<typeof createClient>[0]>['connection']
  >;
  return createClient({ connection, ...common });
}

async function select<T>(client: ClickHouseClient, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const result = await client.query({ query, format: 'JSONEachRow', query_params: params });
  return result.json<T>();
}

export interface EventAudit {
  /** Distinct event ids stored. */
  stored: number;
  /** Rows read with FINAL minus distinct ids: must be 0. */
  duplicates: number;
  /** Physical rows (before FINAL collapses replayed copies). */
  physicalRows: number;
  /** Acknowledged ids not stored, and stored ids never acknowledged (first few). */
  missing: string[];
  unexpected: string[];
}

/** Limits an audit to the tasks whose id starts with `prefix` (one phase of a drill), or to every task. */
function taskFilter(prefix: string | undefined): { where: string; params: Record<string, unknown> } {
  return prefix === undefined
    ? { where: '', params: {} }
    : { where: 'WHERE startsWith(task_id, {prefix:String})', params: { prefix } };
}

export async function auditEvents(
  client: ClickHouseClient,
  database: string,
  acked: ReadonlySet<string>,
  prefix?: string,
): Promise<EventAudit> {
  const { where, params } = taskFilter(prefix);
  const [counts] = await select<{ rows: number; ids: number; physical: number }>(
    client,
    `SELECT (SELECT count() FROM ${database}.events FINAL ${where}) AS rows, (SELECT uniqExact(id) FROM ${database}.events FINAL ${where}) AS ids, (SELECT count() FROM ${database}.events ${where}) AS physical`,
    params,
  );
  const ids = await storedIds(client, database, prefix);
  const missing = [...acked].filter((id) => !ids.has(id));
  const unexpected = [...ids].filter((id) => !acked.has(id));
  return {
    stored: counts?.ids ?? 0,
    duplicates: (counts?.rows ?? 0) - (counts?.ids ?? 0),
    physicalRows: counts?.physical ?? 0,
    missing: missing.slice(0, 10),
    unexpected: unexpected.slice(0, 10),
  };
}

/** Distinct events stored so far (cheap; polled while waiting for recovery). */
export async function storedEvents(client: ClickHouseClient, database: string, prefix?: string): Promise<number> {
  const { where, params } = taskFilter(prefix);
  const [row] = await select<{ ids: number }>(
    client,
    `SELECT uniqExact(id) AS ids FROM ${database}.events FINAL ${where}`,
    params,
  );
  return row?.ids ?? 0;
}

/** The tenant a task's events were stored under (it comes from the agent's credentials). */
export async function tenantOf(client: ClickHouseClient, database: string, taskId: string): Promise<string> {
  const [row] = await select<{ tenant: string }>(
    client,
    `SELECT any(tenant) AS tenant FROM ${database}.events WHERE task_id = {taskId:String}`,
    { taskId },
  );
  return row?.tenant ?? '';
}

/** Revocations (action revoke) per task, as stored. */
export async function revocationsByTask(client: ClickHouseClient, database: string): Promise<Map<string, number>> {
  const rows = await select<{ task_id: string; revocations: number }>(
    client,
    `SELECT task_id, count() AS revocations FROM ${database}.revocations FINAL WHERE action = 'revoke' GROUP BY task_id`,
  );
  return new Map(rows.map((row) => [row.task_id, row.revocations]));
}

async function storedIds(client: ClickHouseClient, database: string, prefix?: string): Promise<Set<string>> {
  const { where, params } = taskFilter(prefix);
  return new Set(
    (await select<{ id: string }>(client, `SELECT id FROM ${database}.events FINAL ${where}`, params)).map(
      (row) => row.id,
    ),
  );
}

/**
 * Waits until every event of `ids` (e.g. a snapshot of the ledger) is stored; returns when that was first seen
 * (epoch ms). Polls the store, so the time is accurate to the poll interval (200 ms).
 */
export async function waitUntilStored(
  client: ClickHouseClient,
  database: string,
  ids: ReadonlySet<string>,
  options: { prefix?: string; timeoutMs?: number; taskOf?: ReadonlyMap<string, string> } = {},
): Promise<number> {
  let last = 0;
  await waitFor(
    'the acknowledged events in ClickHouse',
    async () => {
      last = await storedEvents(client, database, options.prefix);
      if (last < ids.size) return false;
      const stored = await storedIds(client, database, options.prefix);
      return [...ids].every((id) => stored.has(id));
    },
    options.timeoutMs ?? 180_000,
    200,
  ).catch(async (error: unknown) => {
    const stored = await storedIds(client, database, options.prefix).catch(() => new Set<string>());
    const missing = [...ids]
      .filter((id) => !stored.has(id))
      .slice(0, 5)
      .map((id) => `${id} of ${options.taskOf?.get(id) ?? '?'}`);
    throw new Error(
      `${error instanceof Error ? error.message : String(error)} (stored ${last}, expected ${ids.size}; missing e.g. ${missing.join(', ')})`,
    );
  });
  return Date.now();
}

// ------------------------------------------------------------------------------------------------------------
// Figures.

export interface DrillFigures {
  drill: string;
  sent: number;
  stored: number;
  duplicates: number;
  /** Revocations of the rogue task(s) as stored; null when the drill has none. */
  revocations: number | null;
  /** Rogue tasks in the drill (revocations must equal this). */
  rogueTasks: number;
  recoverMs: number | null;
  details: string;
}

/** The results file: DRILL_RESULTS_FILE, else `<tmp>/tripline-drills/results.jsonl`. */
export function resultsFile(): string {
  return process.env.DRILL_RESULTS_FILE ?? join(tmpdir(), 'tripline-drills', 'results.jsonl');
}

/** Prints the drill's figures and appends them to the results file. */
export function recordDrill(figures: DrillFigures): void {
  const file = resultsFile();
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${JSON.stringify({ ...figures, atMs: Date.now() })}\n`);
  console.log(
    `[drill] ${figures.drill}: sent ${figures.sent}, stored ${figures.stored}, duplicates ${figures.duplicates}, revocations ${figures.revocations ?? '-'}, time to recover ${figures.recoverMs === null ? '-' : `${figures.recoverMs} ms`}; ${figures.details}`,
  );
}

/**
 * The end of every drill: audits the store, records the figures, then asserts what must hold after recovery
 * (stored == sent with the very same ids, no duplicates, each rogue task revoked exactly once and no other task
 * revoked).
 */
export async function concludeDrill(options: {
  drill: string;
  client: ClickHouseClient;
  database: string;
  ledger: Ledger;
  /** Task-id prefix of this drill's (or phase's) tasks; rogue tasks must share it. */
  prefix?: string;
  rogueTaskIds?: readonly string[];
  recoverMs: number | null;
  details: string;
}): Promise<EventAudit> {
  const audit = await auditEvents(options.client, options.database, options.ledger.acked, options.prefix);
  const rogues = options.rogueTaskIds ?? [];
  const revoked = await revocationsByTask(options.client, options.database);
  const inScope = [...revoked].filter(([taskId]) => options.prefix === undefined || taskId.startsWith(options.prefix));
  const rogueRevocations = rogues.reduce((sum, taskId) => sum + (revoked.get(taskId) ?? 0), 0);
  recordDrill({
    drill: options.drill,
    sent: options.ledger.acked.size,
    stored: audit.stored,
    duplicates: audit.duplicates,
    revocations: rogues.length === 0 ? null : rogueRevocations,
    rogueTasks: rogues.length,
    recoverMs: options.recoverMs,
    details: options.details,
  });
  expect(audit.missing, 'acknowledged events missing from ClickHouse').toEqual([]);
  expect(audit.unexpected, 'stored events no agent had acknowledged').toEqual([]);
  expect(audit.stored).toBe(options.ledger.acked.size);
  expect(audit.duplicates).toBe(0);
  for (const taskId of rogues) expect(revoked.get(taskId), `revocations of rogue task ${taskId}`).toBe(1);
  expect(
    inScope.filter(([taskId]) => !rogues.includes(taskId)),
    'benign tasks revoked',
  ).toEqual([]);
  return audit;
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

// ------------------------------------------------------------------------------------------------------------
// A notifier destination: records what it receives; answers 200, or hangs (holds every request open) while told.

export interface ReceivedNotification {
  idempotencyKey: string;
  atMs: number;
  /** Answered 200 (not held, and not cut off). */
  answered: boolean;
}

export interface Receiver {
  url: string;
  requests: ReceivedNotification[];
  /** Hang from now on: hold every request open, answer none. */
  hang(): void;
  /** Answer again: 200 to every request from now on (held ones are answered too, if their client still waits). */
  recover(): void;
  /** Distinct idempotency keys answered 200. */
  delivered(): Set<string>;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const requests: ReceivedNotification[] = [];
  const held: (() => void)[] = [];
  let hanging = false;
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      const key = request.headers['idempotency-key'];
      const entry: ReceivedNotification = {
        idempotencyKey: typeof key === 'string' ? key : '',
        atMs: Date.now(),
        answered: false,
      };
      requests.push(entry);
      const answer = (): void => {
        if (response.destroyed) return;
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end('{"ok":true}', () => (entry.answered = true));
      };
      if (hanging) held.push(answer);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the receiver has no port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    hang() {
      hanging = true;
    },
    recover() {
      hanging = false;
      for (const answer of held.splice(0)) answer();
    },
    delivered: () => new Set(requests.filter((entry) => entry.answered).map((entry) => entry.idempotencyKey)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ------------------------------------------------------------------------------------------------------------
// Configuration of drill processes.

export function drillRunId(): string {
  return randomBytes(4).toString('hex');
}

/**
 * The environment of a distributed-mode Tripline for one drill: topics and consumer group of its own (so
 * drills never see each other's records), fast failure detection, the drill's tokens, free ports.
 */
export function drillEnv(options: {
  brokers: string[];
  run: string;
  dataDir: string;
  database: string;
  partitions?: number;
  extra?: Record<string, string>;
}): Record<string, string> {
  const prefix = `drill-${options.run}`;
  return {
    ...authEnv(),
    KAFKA_BROKERS: options.brokers.join(','),
    KAFKA_CLIENT_ID: prefix,
    KAFKA_GROUP_ID: `${prefix}-processors`,
    KAFKA_PARTITIONS: String(options.partitions ?? 4),
    TRIPLINE_TOPIC_TOOL_CALLS: `${prefix}.tool_calls`,
    TRIPLINE_TOPIC_DATA_ACCESS: `${prefix}.data_access`,
    TRIPLINE_TOPIC_PRIVILEGE_CHANGES: `${prefix}.privilege_changes`,
    TRIPLINE_TOPIC_ALERTS: `${prefix}.alerts`,
    TRIPLINE_TOPIC_REVOCATIONS: `${prefix}.revocations`,
    TRIPLINE_TOPIC_DEAD_LETTER: `${prefix}.dead_letter`,
    TRIPLINE_KAFKA_SESSION_TIMEOUT_MS: '6000',
    TRIPLINE_KAFKA_HEARTBEAT_INTERVAL_MS: '500',
    TRIPLINE_KAFKA_REBALANCE_TIMEOUT_MS: '15000',
    TRIPLINE_DATA_DIR: options.dataDir,
    CLICKHOUSE_DATABASE: options.database,
    TRIPLINE_OTLP_HOST: '127.0.0.1',
    TRIPLINE_OTLP_PORT: '0',
    TRIPLINE_API_HOST: '127.0.0.1',
    TRIPLINE_API_PORT: '0',
    LOG_LEVEL: drillLogLevel(),
    ...options.extra,
  };
}

export function drillConfig(env: Record<string, string>): {
  config: Readonly<TriplineConfig>;
  kafka: Readonly<KafkaSettings>;
} {
  const config = loadConfig(env);
  return { config, kafka: loadKafkaSettings(config.kafka, env) };
}

/** Silent unless TEST_LOG_LEVEL says otherwise: the faults make the services log errors by design. */
export function drillLogLevel(): 'silent' | 'error' | 'warn' | 'info' | 'debug' {
  const level = process.env.TEST_LOG_LEVEL;
  return level === 'error' || level === 'warn' || level === 'info' || level === 'debug' ? level : 'silent';
}

export function drillLogger(): Logger {
  return createLogger(drillLogLevel(), 'tripline-drill');
}
