/**
 * Fuzzing the JSON API (services/api/app.ts) built with `buildApiApp` over a real store (the ClickHouse
 * engine in process) and a real processor, run mode `api`: random methods, paths (real task ids, random and
 * badly percent-encoded ones, long ones), query strings (the filters with valid, out-of-range and garbage
 * values, cursors that decode to anything, repeated and unknown keys), bodies (valid actions with any reason,
 * wrong types, invalid JSON, prototype-pollution keys, lone surrogates, bodies over the limit, wrong content
 * types) and headers. Bad input never gets a 5xx and always gets the API's JSON error body
 * `{ error: { code, message } }`; no request hangs; memory stays bounded.
 *
 * Each property gets its own database and processor, so that a failure in one (a wedged writer) does not
 * make the others fail.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import type { Alert } from '../../schemas/events.ts';
import { DEFAULT_TENANT, buildApiApp } from '../../services/api/app.ts';
import { DEFAULT_DETECTOR_CONFIG } from '../../services/core/detect/index.ts';
import { createLocalKillSwitch } from '../../services/killswitch/kill-switch.ts';
import { createProcessor } from '../../services/processor/processor.ts';
import type { Processor } from '../../services/processor/processor.ts';
import { createLogger } from '../../services/shared/logger.ts';
import { openClickHouseStore } from '../../services/store/clickhouse/store.ts';
import type { Store } from '../../services/store/store.ts';
import { benignTask, rng } from '../unit/detect/fixtures.ts';
import {
  apiCase,
  chars,
  fuzzAsync,
  reportMemory,
  runsFor,
  settledHeapMb,
  summarize,
  timeoutFor,
} from './arbitraries.ts';
import type { ApiCase } from './arbitraries.ts';
import { adminHeaders, testAccess } from '../helpers/auth.ts';

const mode = 'api';
const dataDir = mkdtempSync(join(tmpdir(), 'fuzz-api-'));
const logger = createLogger('silent');

/** Task ids seeded into every database: plain, odd characters, unicode, the longest the router takes. */
const TASK_IDS = [
  'task-1',
  'task-2',
  'task-3',
  'task with spaces',
  'task/with/slashes',
  'tâche-ü-💥',
  'a'.repeat(100),
  'q?x=1&y#z',
  '%41',
  '..',
];

interface Api {
  app: FastifyInstance;
  store: Store;
  processor: Processor;
}

const opened: Api[] = [];
let databases = 0;

async function freshApi(): Promise<Api> {
  databases += 1;
  const store = await openClickHouseStore({ dataDir, database: `api_fuzz_${process.pid}_${databases}`, logger });
  await store.migrate();
  const processor = await createProcessor({
    store,
    killSwitch: createLocalKillSwitch(),
    logger,
    taskIdleTimeoutMs: 600_000,
    detector: DEFAULT_DETECTOR_CONFIG,
  });
  const r = rng(7);
  const start = Date.now() - 3_600_000;
  for (const [i, taskId] of TASK_IDS.entries()) {
    const task = benignTask('summarize_ticket', taskId, r, { start: start + i * 60_000 });
    await processor.handle({
      events: task.events.map((event) => ({ ...event, tenant: DEFAULT_TENANT })),
      boundaries: [],
    });
  }
  await processor.revoke({ tenant: DEFAULT_TENANT, taskId: 'task-2', actor: 'fuzz', reason: 'seed' });
  await processor.revoke({ tenant: DEFAULT_TENANT, taskId: 'task-3', actor: 'fuzz', reason: 'seed' });
  await processor.restore({ tenant: DEFAULT_TENANT, taskId: 'task-3', actor: 'fuzz', reason: 'seed' });
  const alerts: Alert[] = Array.from({ length: 60 }, (_, i) => ({
    id: `alert-${i}`,
    tenant: DEFAULT_TENANT,
    taskId: TASK_IDS[i % TASK_IDS.length] ?? 'task-1',
    taskType: 'summarize_ticket',
    agentId: `agent-${i % 3}`,
    eventId: `event-${i}`,
    timeMs: start + i * 1000,
    score: 50 + (i % 50),
    decision: i % 2 === 0 ? 'alert' : 'revoke',
    regime: 'rules',
    reasons: ['seeded'],
    shadow: false,
  }));
  await store.insertAlerts(alerts);
  const app = buildApiApp({
    access: (await testAccess()).api,
    store,
    commands: processor,
    logger,
    detectorStatus: () => Promise.resolve({ regime: 'rules', baselineTasks: 0, warmupTasks: 20 }),
    baselines: () => Promise.resolve([]),
    ready: () => Promise.resolve({ ready: true, checks: { store: 'ok' } }),
  });
  await app.ready();
  const api = { app, store, processor };
  opened.push(api);
  return api;
}

afterAll(async () => {
  for (const { app, processor, store } of opened) {
    await app.close();
    await Promise.race([
      processor.stop().then(() => store.close()),
      new Promise((resolve) => setTimeout(resolve, 10_000).unref()),
    ]);
  }
  rmSync(dataDir, { recursive: true, force: true });
}, 120_000);

/** The API's error body. */
function isErrorBody(body: unknown): body is { error: { code: string; message: string } } {
  if (typeof body !== 'object' || body === null) return false;
  const error = (body as { error?: unknown }).error;
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { code?: unknown }).code === 'string' &&
    (error as { code: string }).code !== '' &&
    typeof (error as { message?: unknown }).message === 'string'
  );
}

/** An error body with a code: the API's own shape, or Fastify's (`{ statusCode, code, error, message }`). */
function hasErrorCode(body: unknown): boolean {
  return (
    isErrorBody(body) ||
    (typeof body === 'object' && body !== null && typeof (body as { code?: unknown }).code === 'string')
  );
}

/** Requests Fastify answers before any route (bad percent-encoding, long path parameters). */
const frameworkErrors: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('%ZZ', '%', '%0', '%c3%28', 'a%', '%%').map((p) => `/v1/tasks/${p}`),
  fc.integer({ min: 101, max: 256 }).map((n) => `/v1/tasks/${'t'.repeat(n)}`),
  fc.integer({ min: 101, max: 256 }).map((n) => `/v1/tasks/${'t'.repeat(n)}/revoke`),
);

async function send(app: FastifyInstance, c: ApiCase): Promise<void> {
  const response = await app.inject({
    method: c.method,
    url: c.url,
    headers: { ...adminHeaders, ...c.headers },
    ...(c.payload === undefined ? {} : { payload: c.payload }),
  });
  const what = `${c.method} ${c.url.length > 200 ? `${c.url.slice(0, 200)}…` : c.url} ${JSON.stringify(c.headers)} body ${summarize(c.payload)}`;
  if (response.statusCode >= 500) throw new Error(`${what}: ${response.statusCode} ${response.body.slice(0, 400)}`);
  if (c.method === 'HEAD') return;
  let body: unknown;
  try {
    body = JSON.parse(response.body);
  } catch {
    throw new Error(`${what}: ${response.statusCode} with a body that is not JSON: ${response.body.slice(0, 200)}`);
  }
  if (response.statusCode >= 400) {
    if (!hasErrorCode(body))
      throw new Error(`${what}: ${response.statusCode} without an error code: ${response.body.slice(0, 300)}`);
    return;
  }
  const path = c.url.split('?')[0] ?? '';
  if (response.statusCode === 200 && (path === '/v1/alerts' || path === '/v1/revocations')) {
    const page = body as { items?: unknown; nextCursor?: unknown };
    if (!Array.isArray(page.items) || !(page.nextCursor === null || typeof page.nextCursor === 'string'))
      throw new Error(`${what}: a page without items/nextCursor: ${response.body.slice(0, 200)}`);
  }
}

describe('fuzz: the JSON API', () => {
  it(
    'answers every request without a 5xx, with a JSON error body holding a code on 4xx, and without hanging',
    async () => {
      const { app } = await freshApi();
      const heapBefore = settledHeapMb();
      await fuzzAsync(mode, 'random requests', apiCase(TASK_IDS), (c) => send(app, c), {
        runs: runsFor(0.89),
        caseBudgetMs: 5000,
      });
      const { heapGrowthMb } = reportMemory(mode, heapBefore);
      expect(heapGrowthMb).toBeLessThan(64);
    },
    timeoutFor(runsFor(0.89), 20),
  );

  it(
    "answers the errors Fastify raises before routing with the API's error body { error: { code, message } }",
    async () => {
      const { app } = await freshApi();
      await fuzzAsync(
        mode,
        'framework errors in the API shape',
        fc.tuple(frameworkErrors, fc.constantFrom('GET' as const, 'POST' as const)),
        async ([url, method]) => {
          const response = await app.inject({
            method,
            url,
            headers: adminHeaders,
            ...(method === 'POST'
              ? { headers: { 'content-type': 'application/json', ...adminHeaders }, payload: '{"reason":"x"}' }
              : {}),
          });
          const body: unknown = JSON.parse(response.body);
          if (!isErrorBody(body))
            throw new Error(`${method} ${url.slice(0, 60)}: ${response.statusCode} ${response.body.slice(0, 200)}`);
        },
        { runs: runsFor(0.01), caseBudgetMs: 5000 },
      );
    },
    timeoutFor(runsFor(0.01), 20),
  );

  it(
    'routes every task id the schema accepts (1 to 256 characters) to the handler: 200 or 404',
    async () => {
      const { app } = await freshApi();
      await fuzzAsync(
        mode,
        'task ids of every accepted length',
        fc
          .tuple(
            fc.oneof(fc.integer({ min: 1, max: 256 }), fc.constantFrom(1, 100, 101, 255, 256)),
            fc.string({
              unit: fc.constantFrom(...chars('abcdefghijklmnopqrstuvwxyz0123456789-_.')),
              minLength: 256,
              maxLength: 256,
            }),
          )
          .map(([length, text]) => text.slice(0, length))
          // `.` and `..` are dot segments: no client sends them in a path, and Tripline never stores such an id.
          .filter((taskId) => taskId !== '.' && taskId !== '..'),
        async (taskId) => {
          const response = await app.inject({
            method: 'GET',
            url: `/v1/tasks/${encodeURIComponent(taskId)}`,
            headers: adminHeaders,
          });
          if (response.statusCode !== 200 && response.statusCode !== 404)
            throw new Error(
              `a ${taskId.length}-character task id: ${response.statusCode} ${response.body.slice(0, 200)}`,
            );
        },
        { runs: runsFor(0.04), caseBudgetMs: 5000 },
      );
    },
    timeoutFor(runsFor(0.04), 20),
  );

  it(
    'answers list filters with 200 or 400 (never a retryable 5xx) for any since, limit and cursor',
    async () => {
      const { app } = await freshApi();
      const since = fc.oneof(
        fc.bigInt({ min: 0n, max: 10n ** 22n }).map(String),
        fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        fc.constantFrom('8640000000000000', '7258118400000', '253402300799999', '99999999999999999999'),
      );
      const filter = fc.tuple(
        fc.constantFrom('/v1/alerts', '/v1/revocations'),
        since,
        fc.integer({ min: 1, max: 1000 }),
      );
      await fuzzAsync(
        mode,
        'list filters',
        filter,
        async ([path, value, limit]) => {
          const response = await app.inject({
            method: 'GET',
            url: `${path}?since=${encodeURIComponent(value)}&limit=${limit}`,
            headers: adminHeaders,
          });
          if (response.statusCode !== 200 && response.statusCode !== 400)
            throw new Error(`${path}?since=${value}: ${response.statusCode} ${response.body.slice(0, 300)}`);
        },
        { runs: runsFor(0.03), caseBudgetMs: 5000 },
      );
    },
    timeoutFor(runsFor(0.03), 20),
  );

  it(
    'revokes and restores with any reason and actor the schema accepts, without hanging',
    async () => {
      const { app } = await freshApi();
      const text = fc.oneof(
        { arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 64 }), weight: 8 },
        { arbitrary: fc.constantFrom('\ud800', 'stop \udfff now', 'a\ud83d', '\u0000', 'x'.repeat(2000)), weight: 2 },
      );
      let n = 0;
      await fuzzAsync(
        mode,
        'revoke and restore',
        fc.tuple(text, fc.option(text)),
        async ([reason, actor]) => {
          n += 1;
          const taskId = TASK_IDS[n % 2 === 0 ? 0 : 4] ?? 'task-1';
          const payload = JSON.stringify({ reason, ...(actor === null ? {} : { actor: actor.slice(0, 256) }) });
          for (const action of ['revoke', 'restore']) {
            const response = await app.inject({
              method: 'POST',
              url: `/v1/tasks/${encodeURIComponent(taskId)}/${action}`,
              headers: { 'content-type': 'application/json', ...adminHeaders },
              payload,
            });
            if (response.statusCode !== 201 && response.statusCode !== 409)
              throw new Error(
                `${action} with reason ${JSON.stringify(reason)}: ${response.statusCode} ${response.body.slice(0, 200)}`,
              );
          }
        },
        { runs: runsFor(0.03), caseBudgetMs: 10_000, shrink: false },
      );
    },
    timeoutFor(runsFor(0.03), 200),
  );
});
