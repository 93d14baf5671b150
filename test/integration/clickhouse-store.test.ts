/**
 * The ClickHouse store against the in-process engine (chdb) in a fresh temporary directory, and against a
 * ClickHouse server as well when CLICKHOUSE_URL is set (CLICKHOUSE_USER / CLICKHOUSE_PASSWORD optional): the
 * same tests, each in a fresh database. chdb binds one data directory per process, so this file keeps one
 * directory and gives every test its own database in it.
 */
// Not UTC on purpose: times must round-trip whatever the process time zone is. Set before the engine starts
// (it starts at the first open, not at import).
process.env.TZ = 'Pacific/Chatham';

import { createClient } from '@clickhouse/client';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

import type { Alert, Revocation } from '../../schemas/events.ts';
import { isTriplineError } from '../../services/shared/errors.ts';
import type { ErrorCode } from '../../services/shared/errors.ts';
import { openClickHouseStore } from '../../services/store/clickhouse/store.ts';
import type { StoreLogger } from '../../services/store/clickhouse/store.ts';
import type { BaselineRecord, ScoredEvent, Store, TaskRecord } from '../../services/store/store.ts';

const DATA_DIR = mkdtempSync(join(tmpdir(), 'tripline-store-test-'));
const SERVER_URL = process.env.CLICKHOUSE_URL;
const SERVER_USER = process.env.CLICKHOUSE_USER;
const SERVER_PASSWORD = process.env.CLICKHOUSE_PASSWORD;
const STORE_MODULE = new URL('../../services/store/clickhouse/store.ts', import.meta.url).href;

interface Target {
  name: 'chdb' | 'server';
  url?: string;
}
const TARGETS: Target[] = [
  { name: 'chdb' },
  ...(SERVER_URL === undefined || SERVER_URL === '' ? [] : [{ name: 'server' as const, url: SERVER_URL }]),
];

const serverDatabases: string[] = [];
let databaseCount = 0;

function freshDatabase(): string {
  databaseCount += 1;
  return `tripline_test_${process.pid}_${databaseCount}_${randomBytes(3).toString('hex')}`;
}

interface LogLine {
  level: 'info' | 'warn';
  obj: object;
  msg: string | undefined;
}

function recordingLogger(): { lines: LogLine[]; logger: StoreLogger } {
  const lines: LogLine[] = [];
  return {
    lines,
    logger: {
      info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
      warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    },
  };
}

async function open(target: Target, database: string, logger?: StoreLogger): Promise<Store> {
  if (target.url !== undefined && !serverDatabases.includes(database)) serverDatabases.push(database);
  return openClickHouseStore({
    dataDir: DATA_DIR,
    database,
    ...(target.url === undefined ? {} : { url: target.url, username: SERVER_USER, password: SERVER_PASSWORD }),
    ...(logger === undefined ? {} : { logger }),
  });
}

/** Opens a store over a fresh database, migrates it, runs `work`, and closes it whatever happens. */
async function withStore(target: Target, work: (store: Store) => Promise<void>): Promise<void> {
  const store = await open(target, freshDatabase());
  try {
    await store.migrate();
    await work(store);
  } finally {
    await store.close();
  }
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<Error> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isTriplineError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
  return error as Error;
}

afterAll(async () => {
  if (SERVER_URL !== undefined && SERVER_URL !== '' && serverDatabases.length > 0) {
    const client = createClient({ url: SERVER_URL, username: SERVER_USER, password: SERVER_PASSWORD });
    for (const database of serverDatabases) await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await client.close();
  }
  rmSync(DATA_DIR, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------------
// Fixtures. Times are recent (the events table drops rows older than its 90-day TTL on insert) and carry
// microseconds; each is built as an integer of microseconds / 1000, the way the store reads them back.

const BASE_US = (Math.floor(Date.now() / 1000) - 3600) * 1_000_000 + 123_456;
const at = (offsetUs: number): number => (BASE_US + offsetUs) / 1000;
/** The version of a task snapshot taken after the fixtures' revocations (versions are microsecond times). */
const SNAPSHOT_AFTER_REVOCATIONS = BASE_US + 60_000_000;

const ODD = `quote ' double " backslash \\ newline \n tab \t unicode ü 日本 🚀 {x:String}`;

function event(
  id: string,
  overrides: Partial<ScoredEvent['event']> = {},
  verdict: Partial<ScoredEvent['verdict']> = {},
): ScoredEvent {
  return {
    event: {
      id,
      tenant: 'acme',
      kind: 'tool_call',
      taskId: 'task-1',
      taskType: 'support',
      agentId: 'agent-1',
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: `b7ad6b71${id.padStart(8, '0').slice(-8)}`,
      parentSpanId: '',
      name: `span ${id}`,
      startMs: at(0),
      endMs: at(1500),
      error: false,
      attributes: {},
      ...overrides,
    },
    verdict: { score: 0, decision: 'allow', regime: 'rules', contributions: [], shadow: false, ...verdict },
  };
}

/** One event with every optional field set, and tricky values in them. */
function fullEvent(id: string): ScoredEvent {
  return event(
    id,
    {
      kind: 'data_access',
      parentSpanId: '00f067aa0ba902b7',
      name: ODD,
      startMs: at(10),
      endMs: at(2_000_010),
      error: true,
      errorType: 'TimeoutError',
      tool: {
        name: 'sql.query',
        type: 'function',
        sideEffect: 'read',
        target: 'db.internal:5432',
        callId: 'call_42',
        counterparties: [
          { kind: 'email', key: '0123456789abcdef' },
          { kind: 'account', key: 'fedcba9876543210' },
        ],
        resultCounterparties: [{ kind: 'url_host', key: '00112233445566ff' }],
        resultRecorded: true,
        amount: 1234.5,
        argumentKeys: ['amount', 'to', ODD],
      },
      data: {
        resource: 'crm.customers',
        system: 'postgresql',
        operation: 'SELECT',
        rows: 12_345,
        bytes: 9_007_199_254_740_991,
        classification: 'confidential',
        host: 'db.internal',
      },
      privilege: {
        action: 'grant',
        scopesBefore: ['read:crm'],
        scopesAfter: ['read:crm', 'write:crm', ODD],
        resource: 'crm',
        grantedBy: 'admin@acme',
        approved: false,
      },
      attributes: {
        'db.system.name': 'postgresql',
        'db.response.returned_rows': 12345,
        'tripline.task.root': false,
        ratio: 0.1 + 0.2,
        odd: ODD,
      },
    },
    {
      score: 73.28571428571429,
      decision: 'revoke',
      regime: 'agent_baseline',
      contributions: [
        { feature: 'data.rows_per_task', score: 91.5, reason: 'Read 12345 rows, 40x the baseline' },
        { feature: 'tool.unseen', score: 1e-7, reason: ODD },
      ],
      hardRule: 'restricted-data-exfiltration',
      shadow: true,
    },
  );
}

function privilegeEvent(id: string): ScoredEvent {
  return event(id, {
    kind: 'privilege_change',
    startMs: at(20),
    endMs: at(20),
    privilege: { action: 'escalate', scopesBefore: [], scopesAfter: [] },
  });
}

function alert(id: string, timeOffsetUs: number, overrides: Partial<Alert> = {}): Alert {
  return {
    id,
    tenant: 'acme',
    taskId: 'task-1',
    taskType: 'support',
    agentId: 'agent-1',
    eventId: `event-${id}`,
    timeMs: at(timeOffsetUs),
    score: 66.66666666666667,
    decision: 'alert',
    regime: 'type_baseline',
    reasons: ['Unusual tool', ODD],
    shadow: false,
    ...overrides,
  };
}

function revocation(id: string, timeOffsetUs: number, overrides: Partial<Revocation> = {}): Revocation {
  return {
    id,
    tenant: 'acme',
    taskId: 'task-1',
    taskType: 'support',
    agentId: 'agent-1',
    action: 'revoke',
    source: 'detector',
    actor: 'tripline-detector',
    reason: 'Score 95 over the revoke threshold',
    reasons: ['a', 'b'],
    score: 95.5,
    eventId: `event-${id}`,
    timeMs: at(timeOffsetUs),
    ...overrides,
  };
}

function task(taskId: string, version: number, overrides: Partial<TaskRecord> = {}): TaskRecord {
  return {
    tenant: 'acme',
    taskId,
    name: '',
    taskType: 'support',
    agentId: 'agent-1',
    status: 'active',
    score: 12.345678901234567,
    decision: 'allow',
    regime: 'rules',
    reasons: [],
    counts: { tool_call: 3, data_access: 2, privilege_change: 0 },
    startedMs: at(0),
    lastEventMs: at(5_000_001),
    endedMs: null,
    version,
    ...overrides,
  };
}

function baseline(
  taskType: string,
  agentId: string,
  updatedOffsetUs: number,
  overrides: Partial<BaselineRecord> = {},
): BaselineRecord {
  return {
    tenant: 'acme',
    taskType,
    agentId,
    tasks: 120,
    model: JSON.stringify({ features: { 'data.rows_per_task': { mean: 40.5, sd: 3.25 } }, note: ODD }),
    updatedMs: at(updatedOffsetUs),
    ...overrides,
  };
}

/** Newest first, ties by id descending: the order listAlerts and listRevocations promise. */
function newestFirst<T extends { timeMs: number; id: string }>(rows: readonly T[]): T[] {
  return [...rows].sort((a, b) => b.timeMs - a.timeMs || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

async function allPages<T>(list: (cursor?: string) => Promise<{ items: T[]; nextCursor?: string }>): Promise<T[][]> {
  const pages: T[][] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await list(cursor);
    pages.push(page.items);
    if (page.nextCursor === undefined) return pages;
    cursor = page.nextCursor;
  }
}

// ---------------------------------------------------------------------------------------------------------------

describe.each(TARGETS)('ClickHouse store on $name', (target) => {
  it('migrates idempotently and keeps data across a close and reopen (a restart)', async () => {
    const database = freshDatabase();
    const first = recordingLogger();
    const store = await open(target, database, first.logger);
    await store.migrate();
    await store.migrate();
    await Promise.all([store.migrate(), store.migrate()]);
    const applied = first.lines.filter((line) => line.msg === 'applied migration');
    expect(applied.map((line) => (line.obj as { migration: string }).migration)).toEqual([
      '000_schema_migrations.sql',
      '001_events.sql',
      '002_alerts.sql',
      '003_revocations.sql',
      '004_tasks.sql',
      '005_baselines.sql',
      '006_credentials.sql',
      '007_verifications.sql',
      '008_leases.sql',
      '009_feedback.sql',
      '010_access.sql',
      '011_task_names.sql',
      '012_revocation_escalation.sql',
      '013_event_tool_facts.sql',
      '014_task_parent.sql',
      '015_audit_failed_auth_ttl.sql',
      '016_model_usage.sql',
      '017_approvals.sql',
      '019_token_agents.sql',
      '020_baseline_books.sql',
    ]);
    await store.insertEvents([fullEvent('e1')]);
    await store.insertAlerts([alert('a1', 0)]);
    await store.insertRevocations([revocation('r1', 0)]);
    await store.upsertTasks([task('task-1', SNAPSHOT_AFTER_REVOCATIONS)]);
    await store.saveBaselines([baseline('support', '', 0)]);
    await store.close();

    const second = recordingLogger();
    const reopened = await open(target, database, second.logger);
    try {
      await reopened.migrate();
      expect(second.lines.filter((line) => line.msg === 'applied migration')).toEqual([]);
      expect(await reopened.counts()).toEqual({ events: 1, alerts: 1, revocations: 1, tasks: 1, baselines: 1 });
      expect(await reopened.eventsForTask('acme', 'task-1')).toStrictEqual([fullEvent('e1')]);
      expect(await reopened.getTask('acme', 'task-1')).toStrictEqual(task('task-1', SNAPSHOT_AFTER_REVOCATIONS));
    } finally {
      await reopened.close();
    }
  });

  it('reads back every record type exactly', async () => {
    await withStore(target, async (store) => {
      const events = [event('e0'), fullEvent('e1'), privilegeEvent('e2')];
      const alerts = [
        alert('a1', 1),
        alert('a2', 2, { decision: 'revoke', regime: 'rules', reasons: [], shadow: true, score: 0 }),
      ];
      const revocations = [
        revocation('r1', 1, { escalation: { counts: true, basis: 'hard_rule', endUser: 'u-1', conversation: ODD } }),
        revocation('r2', 2, {
          action: 'restore',
          source: 'manual',
          actor: 'ops@acme',
          reason: ODD,
          reasons: [],
          eventId: '',
          score: 0,
        }),
      ];
      const tasks = [
        task('task-1', 7),
        task('task-2', 1, {
          status: 'revoked',
          decision: 'revoke',
          regime: 'agent_baseline',
          reasons: ['x', ODD],
          counts: { tool_call: 0, data_access: 4_294_967_296, privilege_change: 1 },
          endedMs: at(9_000_000),
        }),
      ];
      const baselines = [baseline('support', '', 1), baseline('support', 'agent-1', 2, { tasks: 0, model: '{}' })];
      await store.insertEvents(events);
      await store.insertAlerts(alerts);
      await store.insertRevocations(revocations);
      await store.upsertTasks(tasks);
      await store.saveBaselines(baselines);

      expect(await store.eventsForTask('acme', 'task-1')).toStrictEqual(events);
      expect((await store.listAlerts({ limit: 10 })).items).toStrictEqual(newestFirst(alerts));
      expect((await store.listRevocations({ limit: 10 })).items).toStrictEqual(newestFirst(revocations));
      expect(await store.getTask('acme', 'task-1')).toStrictEqual(tasks[0]);
      expect(await store.getTask('acme', 'task-2')).toStrictEqual(tasks[1]);
      expect(await store.loadBaselines()).toStrictEqual(baselines);
      expect(await store.counts()).toEqual({ events: 3, alerts: 2, revocations: 2, tasks: 2, baselines: 2 });
    });
  });

  it("reads a task's status from the revocations log where the log is newer than the task's snapshot", async () => {
    await withStore(target, async (store) => {
      // Snapshots taken before the revocations and restores below (their process died before the next snapshot),
      // except task-4's, taken after its revocation.
      await store.upsertTasks([
        task('task-1', BASE_US),
        task('task-2', BASE_US, { status: 'revoked' }),
        task('task-3', BASE_US, { status: 'revoked', endedMs: at(9_000_000) }),
        task('task-4', SNAPSHOT_AFTER_REVOCATIONS),
      ]);
      const restore = { action: 'restore', source: 'manual', actor: 'ops@acme' } as const;
      await store.insertRevocations([
        revocation('k1', 1000),
        revocation('k2', 1000, { taskId: 'task-2' }),
        revocation('k3', 2000, { taskId: 'task-2', ...restore }),
        revocation('k4', 1000, { taskId: 'task-3' }),
        revocation('k5', 2000, { taskId: 'task-3', ...restore }),
        revocation('k6', 1000, { taskId: 'task-4' }),
      ]);
      expect((await store.getTask('acme', 'task-1'))?.status).toBe('revoked');
      expect((await store.getTask('acme', 'task-3'))?.status).toBe('completed');
      const statuses = (await store.getTasks('acme', ['task-1', 'task-2', 'task-3', 'task-4'])).map((record) => [
        record.taskId,
        record.status,
      ]);
      expect(statuses.sort()).toEqual([
        ['task-1', 'revoked'],
        ['task-2', 'active'],
        ['task-3', 'completed'],
        ['task-4', 'active'],
      ]);
      expect((await store.listActiveTasks()).map((record) => record.taskId)).toEqual(['task-2', 'task-4']);
      expect(await store.getTask('acme', 'task-4')).toStrictEqual(task('task-4', SNAPSHOT_AFTER_REVOCATIONS));
    });
  });

  it('reads replayed rows once everywhere, counts included', async () => {
    await withStore(target, async (store) => {
      const events = [event('e0'), fullEvent('e1'), privilegeEvent('e2')];
      const alerts = [alert('a1', 1), alert('a2', 2)];
      const revocations = [revocation('r1', 1)];
      const tasks = [task('task-1', SNAPSHOT_AFTER_REVOCATIONS), task('task-2', 1)];
      const baselines = [baseline('support', '', 1)];
      for (let replay = 0; replay < 2; replay += 1) {
        await store.insertEvents(events);
        await store.insertAlerts(alerts);
        await store.insertRevocations(revocations);
        await store.upsertTasks(tasks);
        await store.saveBaselines(baselines);
      }
      // Duplicates inside one batch, too.
      await store.insertEvents([event('e3'), event('e3')]);
      await store.insertAlerts([alert('a3', 3), alert('a3', 3)]);

      expect(await store.counts()).toEqual({ events: 4, alerts: 3, revocations: 1, tasks: 2, baselines: 1 });
      expect(await store.eventsForTask('acme', 'task-1')).toStrictEqual([
        event('e0'),
        event('e3'),
        fullEvent('e1'),
        privilegeEvent('e2'),
      ]);
      expect((await store.listAlerts({ limit: 1000 })).items).toStrictEqual(newestFirst([...alerts, alert('a3', 3)]));
      expect((await store.listRevocations({ limit: 1000 })).items).toStrictEqual(revocations);
      expect(await store.listActiveTasks()).toStrictEqual(tasks);
      expect(await store.loadBaselines()).toStrictEqual(baselines);

      // A replay that scored differently: still one row, the later write.
      await store.insertEvents([event('e0', {}, { score: 50, decision: 'alert' })]);
      const again = await store.eventsForTask('acme', 'task-1');
      expect(again).toHaveLength(4);
      expect(again.find((row) => row.event.id === 'e0')?.verdict).toStrictEqual(
        event('e0', {}, { score: 50, decision: 'alert' }).verdict,
      );
    });
  });

  it('pages alerts and revocations newest first with a cursor that concurrent inserts do not disturb', async () => {
    await withStore(target, async (store) => {
      // 25 alerts; a1..a5 share one time so the id breaks the tie.
      const alerts = Array.from({ length: 25 }, (_, i) =>
        alert(`a${String(i).padStart(2, '0')}`, i < 5 ? 0 : i * 1000 + 1),
      );
      await store.insertAlerts(alerts.slice(0, 12));
      await store.insertAlerts(alerts.slice(12));
      const expected = newestFirst(alerts);

      const first = await store.listAlerts({ limit: 10 });
      expect(first.items).toStrictEqual(expected.slice(0, 10));
      expect(first.nextCursor).toBeTypeOf('string');
      // Newer alerts arrive (and a replay of one already seen) between page requests.
      await store.insertAlerts([alert('z1', 10_000_000), alert('z2', 10_000_001), alerts[3] as Alert]);
      const second = await store.listAlerts({ limit: 10, cursor: first.nextCursor });
      expect(second.items).toStrictEqual(expected.slice(10, 20));
      const third = await store.listAlerts({ limit: 10, cursor: second.nextCursor });
      expect(third.items).toStrictEqual(expected.slice(20));
      expect(third.nextCursor).toBeUndefined();

      // An exact multiple of the page size ends without an empty page.
      const pages = await allPages((cursor) => store.listAlerts({ limit: 9, cursor }));
      expect(pages.map((page) => page.length)).toEqual([9, 9, 9]);
      expect(pages.flat()).toStrictEqual(newestFirst([...alerts, alert('z1', 10_000_000), alert('z2', 10_000_001)]));

      const revocations = Array.from({ length: 7 }, (_, i) => revocation(`r${String(i)}`, (i % 3) * 1000));
      await store.insertRevocations(revocations);
      const revocationPages = await allPages((cursor) => store.listRevocations({ limit: 3, cursor }));
      expect(revocationPages.map((page) => page.length)).toEqual([3, 3, 1]);
      expect(revocationPages.flat()).toStrictEqual(newestFirst(revocations));

      await expectCode(store.listAlerts({ limit: 10, cursor: 'not-a-cursor' }), 'VALIDATION_FAILED');
      await expectCode(store.listAlerts({ limit: 0 }), 'VALIDATION_FAILED');
      await expectCode(store.listAlerts({ limit: 1001 }), 'VALIDATION_FAILED');
      await expectCode(store.listRevocations({ limit: 2.5 }), 'VALIDATION_FAILED');
      expect((await store.listAlerts({ limit: 1000 })).items).toHaveLength(27);
    });
  });

  it('filters lists by tenant, task, agent and time', async () => {
    await withStore(target, async (store) => {
      const alerts = [
        alert('a1', 1000),
        alert('a2', 2000, { tenant: 'globex' }),
        alert('a3', 3000, { taskId: 'task-2' }),
        alert('a4', 4000, { agentId: 'agent-2' }),
        alert('a5', 5000, { tenant: 'globex', taskId: 'task-2', agentId: 'agent-2' }),
      ];
      await store.insertAlerts(alerts);
      const ids = async (filter: Parameters<Store['listAlerts']>[0]): Promise<string[]> =>
        (await store.listAlerts(filter)).items.map((a) => a.id);
      expect(await ids({ limit: 10, tenant: 'acme' })).toEqual(['a4', 'a3', 'a1']);
      expect(await ids({ limit: 10, tenant: 'globex' })).toEqual(['a5', 'a2']);
      expect(await ids({ limit: 10, taskId: 'task-2' })).toEqual(['a5', 'a3']);
      expect(await ids({ limit: 10, agentId: 'agent-2' })).toEqual(['a5', 'a4']);
      expect(await ids({ limit: 10, tenant: 'acme', agentId: 'agent-2' })).toEqual(['a4']);
      // sinceMs is inclusive, to the microsecond.
      expect(await ids({ limit: 10, sinceMs: at(3000) })).toEqual(['a5', 'a4', 'a3']);
      expect(await ids({ limit: 10, sinceMs: at(3001) })).toEqual(['a5', 'a4']);
      expect(await ids({ limit: 10, tenant: ODD })).toEqual([]);
      const page = await store.listAlerts({ limit: 1, tenant: 'acme', sinceMs: at(1000) });
      expect(page.items.map((a) => a.id)).toEqual(['a4']);
      expect(
        (await store.listAlerts({ limit: 5, tenant: 'acme', sinceMs: at(1000), cursor: page.nextCursor })).items.map(
          (a) => a.id,
        ),
      ).toEqual(['a3', 'a1']);

      await store.insertRevocations([
        revocation('r1', 1000),
        revocation('r2', 2000, { tenant: 'globex', agentId: 'agent-2' }),
      ]);
      expect((await store.listRevocations({ limit: 10, agentId: 'agent-2' })).items.map((r) => r.id)).toEqual(['r2']);
      expect(
        (await store.listRevocations({ limit: 10, tenant: 'acme', taskId: 'task-1' })).items.map((r) => r.id),
      ).toEqual(['r1']);
    });
  });

  it('returns the highest task version, and lists the tasks whose newest version is active', async () => {
    await withStore(target, async (store) => {
      // Versions arrive out of order, in separate inserts (separate parts, not merged).
      await store.upsertTasks([task('task-1', 3, { score: 30, lastEventMs: at(3) })]);
      await store.upsertTasks([task('task-1', 1, { score: 10 })]);
      await store.upsertTasks([task('task-1', 2, { score: 20 })]);
      await store.upsertTasks([task('task-2', 1, { startedMs: at(1) })]);
      await store.upsertTasks([task('task-2', 2, { startedMs: at(1), status: 'completed', endedMs: at(50) })]);
      await store.upsertTasks([
        task('task-3', 5, { status: 'revoked', endedMs: at(60) }),
        task('task-3', 4, { startedMs: at(2) }),
      ]);
      await store.upsertTasks([task('task-4', 1, { tenant: 'globex', startedMs: at(4) })]);
      await store.upsertTasks([task('task-5', 1, { startedMs: at(5) })]);

      expect(await store.getTask('acme', 'task-1')).toStrictEqual(task('task-1', 3, { score: 30, lastEventMs: at(3) }));
      expect(await store.getTask('acme', 'task-2')).toStrictEqual(
        task('task-2', 2, { startedMs: at(1), status: 'completed', endedMs: at(50) }),
      );
      expect(await store.getTask('acme', 'nope')).toBeNull();
      expect(await store.getTask('globex', 'task-1')).toBeNull();
      // A task keyed by its trace id that declared its id later is found by that name too (its own tenant only).
      const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
      await store.upsertTasks([
        task(trace, 1, { startedMs: at(6) }),
        task(trace, 2, { startedMs: at(6), name: 'refund-42' }),
      ]);
      expect(await store.getTask('acme', 'refund-42')).toStrictEqual(
        task(trace, 2, { startedMs: at(6), name: 'refund-42' }),
      );
      expect(await store.getTask('globex', 'refund-42')).toBeNull();

      const active = await store.listActiveTasks();
      expect(active.map((t) => `${t.tenant}/${t.taskId}@${String(t.version)}`)).toEqual([
        'acme/task-1@3',
        'acme/task-5@1',
        `acme/${trace}@2`,
        'globex/task-4@1',
      ]);
      expect((await store.listActiveTasks('globex')).map((t) => t.taskId)).toEqual(['task-4']);
      expect(await store.listActiveTasks(ODD)).toEqual([]);
      expect((await store.counts()).tasks).toBe(6);
    });
  });

  it('returns a task events in time order, and only that task', async () => {
    await withStore(target, async (store) => {
      const times = [5, 1, 4, 2, 3];
      const mine = times.map((t) => event(`e${String(t)}`, { startMs: at(t * 1000), endMs: at(t * 1000 + 10) }));
      await store.insertEvents(mine.slice(0, 2));
      await store.insertEvents(mine.slice(2));
      // Same start: end time then id decide.
      await store.insertEvents([
        event('tie-b', { startMs: at(3000), endMs: at(3005) }),
        event('tie-a', { startMs: at(3000), endMs: at(3005) }),
      ]);
      await store.insertEvents([
        event('other-task', { taskId: 'task-2' }),
        event('other-tenant', { tenant: 'globex' }),
      ]);
      const ids = (await store.eventsForTask('acme', 'task-1')).map((row) => row.event.id);
      expect(ids).toEqual(['e1', 'e2', 'tie-a', 'tie-b', 'e3', 'e4', 'e5']);
      expect((await store.eventsForTask('globex', 'task-1')).map((row) => row.event.id)).toEqual(['other-tenant']);
      expect(await store.eventsForTask('acme', 'nope')).toEqual([]);
    });
  });

  it('stores strings holding lone surrogates (U+FFFD in their place in text columns), and the rest of the batch', async () => {
    await withStore(target, async (store) => {
      const lone = `half \ud83d of a pair, and \udc00 alone`;
      const mended = 'half \ufffd of a pair, and \ufffd alone';
      await store.insertEvents([
        event('lone-1', {
          name: lone,
          attributes: { [lone]: lone },
          privilege: { action: 'grant', scopesBefore: [lone], scopesAfter: [] },
        }),
        event('plain-1'),
      ]);
      const stored = await store.eventsForTask('acme', 'task-1');
      const row = stored.find((item) => item.event.id === 'lone-1');
      expect(stored.map((item) => item.event.id).sort()).toEqual(['lone-1', 'plain-1']);
      expect(row?.event.name).toBe(mended);
      // Attributes are stored as JSON text, whose escapes carry a lone surrogate intact.
      expect(row?.event.attributes).toEqual({ [lone]: lone });
      expect(row?.event.privilege?.scopesBefore).toEqual([mended]);
    });
  });

  it('leaves out rows that cannot be stored, keeps the rest of the batch, and says so', async () => {
    const { lines, logger } = recordingLogger();
    const store = await open(target, freshDatabase(), logger);
    try {
      await store.migrate();
      await store.insertEvents([
        event('good-1'),
        event('nan-score', {}, { score: Number.NaN }),
        event('inf-start', { startMs: Number.POSITIVE_INFINITY }),
        event('bad-kind', { kind: 'teleport' as never }),
        event('nan-attribute', { attributes: { x: Number.NaN } }),
        event('fraction-rows', { data: { resource: 'x', rows: 1.5 } }),
        event('good-2', { startMs: at(1) }),
      ]);
      await store.insertAlerts([alert('a-bad', 0, { decision: 'maybe' as never }), alert('a-good', 0)]);
      await store.upsertTasks([task('t-bad', -1), task('t-good', 1)]);
      await store.insertRevocations([revocation('', 0)]);
      await store.saveBaselines([baseline('support', '', 0, { tasks: Number.NaN })]);

      expect((await store.eventsForTask('acme', 'task-1')).map((row) => row.event.id)).toEqual(['good-1', 'good-2']);
      expect(await store.counts()).toEqual({ events: 2, alerts: 1, revocations: 0, tasks: 1, baselines: 0 });
      const warnings = lines.filter((line) => line.level === 'warn');
      expect(warnings.map((line) => (line.obj as { table: string; rejected: number }).rejected)).toEqual([
        5, 1, 1, 1, 1,
      ]);
      const eventWarning = warnings[0]?.obj as { examples: { id: string; problem: string }[] };
      expect(eventWarning.examples.map((example) => example.id)).toEqual([
        'nan-score',
        'inf-start',
        'bad-kind',
        'nan-attribute',
        'fraction-rows',
      ]);
      expect(eventWarning.examples[0]?.problem).toMatch(/verdict\.score must be a finite number/);
    } finally {
      await store.close();
    }
  });

  it('closes idempotently and refuses work after close', async () => {
    const store = await open(target, freshDatabase());
    await store.migrate();
    const pending = store.insertAlerts([alert('a1', 0)]);
    await Promise.all([store.close(), store.close()]);
    await pending; // close() drained it
    await store.close();
    await expectCode(store.counts(), 'SHUTTING_DOWN');
    await expectCode(store.insertAlerts([alert('a2', 0)]), 'SHUTTING_DOWN');
  });
});

describe('ClickHouse store on chdb: one owner per data directory', () => {
  it('refuses a second process with STORE_LOCKED', async () => {
    const store = await open({ name: 'chdb' }, freshDatabase());
    try {
      const script = `
        import { openClickHouseStore } from ${JSON.stringify(STORE_MODULE)};
        try {
          const store = await openClickHouseStore({ dataDir: ${JSON.stringify(DATA_DIR)}, database: 'other' });
          await store.close();
          console.log(JSON.stringify({ opened: true }));
        } catch (error) {
          console.log(JSON.stringify({ code: error.code, retriable: error.retriable, message: error.message }));
        }`;
      const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
        timeout: 120_000,
      });
      // The engine itself prints its reason ("Cannot lock file ...") to the output too: take our JSON line.
      const line = stdout.split('\n').find((text) => text.startsWith('{')) ?? '{}';
      const result = JSON.parse(line) as { code?: string; retriable?: boolean; message?: string };
      expect(result.code).toBe('STORE_LOCKED');
      expect(result.retriable).toBe(false);
      expect(result.message).toMatch(
        new RegExp(
          `is in use by another Tripline process \\(pid ${String(process.pid)}\\); stop it or set TRIPLINE_DATA_DIR to another directory$`,
        ),
      );
      expect(result.message).toContain(DATA_DIR);
    } finally {
      await store.close();
    }
  });

  it('refuses the same directory and database twice in this process, and shares the engine between databases', async () => {
    const database = freshDatabase();
    const store = await open({ name: 'chdb' }, database);
    try {
      await store.migrate();
      const error = await expectCode(open({ name: 'chdb' }, database), 'STORE_LOCKED');
      expect(error.message).toContain('already open in this process');

      const neighbour = await open({ name: 'chdb' }, freshDatabase());
      try {
        await neighbour.migrate();
        await neighbour.insertAlerts([alert('n1', 0)]);
        await store.insertAlerts([alert('s1', 0), alert('s2', 0)]);
        expect((await neighbour.counts()).alerts).toBe(1);
        expect((await store.counts()).alerts).toBe(2);
      } finally {
        await neighbour.close();
      }
      expect((await store.counts()).alerts).toBe(2); // closing one connection leaves the engine to the other
    } finally {
      await store.close();
    }
    // Closed: the same database opens again.
    const again = await open({ name: 'chdb' }, database);
    expect((await again.counts()).alerts).toBe(2);
    await again.close();
  });

  it('refuses another data directory while this process has one open', async () => {
    const store = await open({ name: 'chdb' }, freshDatabase());
    const otherDir = mkdtempSync(join(tmpdir(), 'tripline-store-other-'));
    try {
      const error = await expectCode(openClickHouseStore({ dataDir: otherDir, database: 'tripline' }), 'STORE_LOCKED');
      expect(error.message).toContain('one data directory per process');
      await store.migrate(); // the open store is unharmed
      expect((await store.counts()).events).toBe(0);
    } finally {
      await store.close();
      rmSync(otherDir, { recursive: true, force: true });
    }
  });
});

describe('ClickHouse store options and server errors', () => {
  it('answers STORE_UNAVAILABLE, retriable, with the cause, when the server cannot be reached', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer();
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => {
          resolve(typeof address === 'object' && address !== null ? address.port : 1);
        });
      });
    });
    const error = await expectCode(
      openClickHouseStore({
        url: `http://127.0.0.1:${String(port)}`,
        dataDir: '',
        database: 'tripline',
        requestTimeoutMs: 5000,
      }),
      'STORE_UNAVAILABLE',
    );
    expect((error as Error & { retriable: boolean }).retriable).toBe(true);
    expect(error.cause).toBeInstanceOf(Error);
    expect(error.message).toContain(`127.0.0.1:${String(port)}`);
  });

  it('rejects bad options with CONFIG_INVALID naming the key', async () => {
    expect(
      (await expectCode(openClickHouseStore({ dataDir: DATA_DIR, database: 'drop table; --' }), 'CONFIG_INVALID'))
        .message,
    ).toMatch(/^database/);
    expect(
      (await expectCode(openClickHouseStore({ url: 'ftp://x', dataDir: '', database: 'tripline' }), 'CONFIG_INVALID'))
        .message,
    ).toMatch(/^url/);
    expect(
      (await expectCode(openClickHouseStore({ url: 'not a url', dataDir: '', database: 'tripline' }), 'CONFIG_INVALID'))
        .message,
    ).toMatch(/^url/);
    expect(
      (
        await expectCode(
          openClickHouseStore({ url: 'http://127.0.0.1:1', dataDir: '', database: 'tripline', requestTimeoutMs: 0 }),
          'CONFIG_INVALID',
        )
      ).message,
    ).toMatch(/^requestTimeoutMs/);
  });
});
