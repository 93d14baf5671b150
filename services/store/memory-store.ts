/**
 * The Store port in memory: the same contract as the ClickHouse store (writes idempotent by id, the newest task
 * version wins and a newer revocation decides a task's status, events in time order, alerts and revocations
 * newest first with cursors), for tests of the processor that need no ClickHouse and for tools that want a
 * throwaway store. Nothing is kept across a restart; nothing is bounded (it is not for production).
 */
import type { Alert, Revocation, TaskStatus } from '../../schemas/events.ts';
import { TriplineError } from '../shared/errors.ts';
import type {
  BaselineRecord,
  ListFilter,
  ModelUsageRow,
  Page,
  ScoredEvent,
  SpendRow,
  Store,
  TaskCredential,
  TaskRecord,
} from './store.ts';

const MAX_PAGE = 1000;

const key = (tenant: string, id: string): string => `${tenant}\u0000${id}`;

export interface MemoryStore extends Store {
  /** Every stored event, in insertion order (for tests). */
  allEvents(): ScoredEvent[];
  /** Records a task token's credentials, as the kill switch's store does when it issues one (for tests). */
  addCredentials(rows: readonly TaskCredential[]): void;
}

/** The stored rows, each keyed by tenant and id. */
interface MemoryTables {
  events: Map<string, ScoredEvent>;
  alerts: Map<string, Alert>;
  revocations: Map<string, Revocation>;
  tasks: Map<string, TaskRecord>;
  baselines: Map<string, BaselineRecord>;
  usages: Map<string, ModelUsageRow>;
  /** A task's first credentials. */
  credentials: Map<string, TaskCredential>;
}

/** Throws once the store is closed. */
type OpenCheck = () => void;

type TaskAndEventMethods = Pick<
  Store,
  | 'insertEvents'
  | 'upsertTasks'
  | 'getTask'
  | 'getTasks'
  | 'childTasks'
  | 'listActiveTasks'
  | 'eventsForTask'
  | 'eventsForTasks'
>;

type AlertRevocationBaselineMethods = Pick<
  Store,
  'insertAlerts' | 'insertRevocations' | 'saveBaselines' | 'listAlerts' | 'listRevocations' | 'loadBaselines'
>;

export function createMemoryStore(): MemoryStore {
  const tables: MemoryTables = {
    events: new Map(),
    alerts: new Map(),
    revocations: new Map(),
    tasks: new Map(),
    baselines: new Map(),
    usages: new Map(),
    credentials: new Map(),
  };
  let closed = false;

  function open(): void {
    if (closed) throw new TriplineError('SHUTTING_DOWN', 'the store is closed');
  }

  return {
    migrate: () => Promise.resolve(),
    addCredentials(rows) {
      for (const row of rows) {
        const first = tables.credentials.get(key(row.tenant, row.taskId));
        if (first === undefined || row.issuedMs < first.issuedMs)
          tables.credentials.set(key(row.tenant, row.taskId), { ...row });
      }
    },
    taskCredentials(tenant, taskIds) {
      open();
      return Promise.resolve(
        taskIds.flatMap((taskId) => {
          const row = tables.credentials.get(key(tenant, taskId));
          return row === undefined ? [] : [{ ...row }];
        }),
      );
    },
    ...taskAndEventMethods(tables, open),
    ...alertRevocationBaselineMethods(tables, open),
    insertModelUsage(rows) {
      open();
      for (const row of rows) tables.usages.set(key(row.usage.tenant, row.usage.id), structuredClone(row));
      return Promise.resolve();
    },
    spend(query) {
      open();
      return Promise.resolve(spendOf([...tables.usages.values()], query));
    },
    modelCallsForTask(tenant, taskId, limit) {
      open();
      const rows = [...tables.usages.values()]
        .filter((row) => row.usage.tenant === tenant && row.usage.taskId === taskId)
        .sort((a, b) => a.usage.endMs - b.usage.endMs || a.usage.id.localeCompare(b.usage.id));
      return Promise.resolve(structuredClone(rows.slice(0, limit)));
    },
    counts() {
      open();
      return Promise.resolve({
        events: tables.events.size,
        alerts: tables.alerts.size,
        revocations: tables.revocations.size,
        tasks: tables.tasks.size,
        baselines: tables.baselines.size,
      });
    },
    ping() {
      open();
      return Promise.resolve();
    },
    close() {
      closed = true;
      return Promise.resolve();
    },
    allEvents: () => [...tables.events.values()],
  };
}

/** Tasks (the newest version wins, the status reconciled with the revocations log) and their events. */
function taskAndEventMethods(tables: MemoryTables, open: OpenCheck): TaskAndEventMethods {
  const { events, tasks, revocations } = tables;
  const withRevocations = (record: TaskRecord): TaskRecord => reconciled(record, revocations);
  return {
    insertEvents(rows) {
      open();
      for (const row of rows) events.set(key(row.event.tenant, row.event.id), structuredClone(row));
      return Promise.resolve();
    },
    upsertTasks(rows) {
      open();
      for (const row of rows) {
        const current = tasks.get(key(row.tenant, row.taskId));
        if (current === undefined || row.version >= current.version)
          tasks.set(key(row.tenant, row.taskId), structuredClone(row));
      }
      return Promise.resolve();
    },
    getTask(tenant, taskId) {
      open();
      const record =
        tasks.get(key(tenant, taskId)) ??
        [...tasks.values()]
          .filter((task) => task.tenant === tenant && task.name === taskId)
          .sort((a, b) => b.version - a.version)[0];
      return Promise.resolve(record === undefined ? null : withRevocations(record));
    },
    getTasks(tenant, taskIds) {
      open();
      return Promise.resolve(
        taskIds
          .map((taskId) => tasks.get(key(tenant, taskId)))
          .filter((record) => record !== undefined)
          .map(withRevocations),
      );
    },
    childTasks(tenant, parentTaskIds, limit) {
      open();
      const parents = new Set(parentTaskIds);
      return Promise.resolve(
        [...tasks.values()]
          .filter((record) => record.tenant === tenant && parents.has(record.parentTaskId ?? ''))
          .sort((a, b) => a.startedMs - b.startedMs || (a.taskId < b.taskId ? -1 : 1))
          .slice(0, limit)
          .map(withRevocations),
      );
    },
    listActiveTasks(tenant) {
      open();
      return Promise.resolve(
        [...tasks.values()]
          .filter((record) => tenant === undefined || record.tenant === tenant)
          .map(withRevocations)
          .filter((record) => record.status === 'active')
          .sort((a, b) =>
            a.tenant < b.tenant
              ? -1
              : a.tenant > b.tenant
                ? 1
                : a.startedMs - b.startedMs || (a.taskId < b.taskId ? -1 : 1),
          ),
      );
    },
    eventsForTask(tenant, taskId, limit) {
      open();
      return Promise.resolve(
        [...events.values()]
          .filter(({ event }) => event.tenant === tenant && event.taskId === taskId)
          .sort(byTime)
          .slice(0, limit)
          .map((row) => structuredClone(row)),
      );
    },
    eventsForTasks(tenant, taskIds) {
      open();
      const wanted = new Set(taskIds);
      const out = new Map<string, ScoredEvent[]>();
      for (const row of [...events.values()].sort(byTime)) {
        if (row.event.tenant !== tenant || !wanted.has(row.event.taskId)) continue;
        const list = out.get(row.event.taskId) ?? [];
        list.push(structuredClone(row));
        out.set(row.event.taskId, list);
      }
      return Promise.resolve(out);
    },
  };
}

/** Alerts and revocations (newest first, with cursors) and baselines (the newest update wins). */
function alertRevocationBaselineMethods(tables: MemoryTables, open: OpenCheck): AlertRevocationBaselineMethods {
  const { alerts, revocations, baselines } = tables;
  return {
    insertAlerts(rows) {
      open();
      for (const row of rows) alerts.set(key(row.tenant, row.id), { ...row });
      return Promise.resolve();
    },
    insertRevocations(rows) {
      open();
      for (const row of rows) revocations.set(key(row.tenant, row.id), { ...row });
      return Promise.resolve();
    },
    saveBaselines(rows) {
      open();
      for (const row of rows) {
        const id = `${row.tenant}\u0000${row.taskType}\u0000${row.agentId}`;
        const current = baselines.get(id);
        if (current === undefined || row.updatedMs >= current.updatedMs) baselines.set(id, { ...row });
      }
      return Promise.resolve();
    },
    listAlerts(filter) {
      open();
      return Promise.resolve(page(alerts.values(), filter));
    },
    listRevocations(filter) {
      open();
      return Promise.resolve(page(revocations.values(), filter));
    },
    loadBaselines(tenant) {
      open();
      return Promise.resolve(
        [...baselines.values()]
          .filter((record) => tenant === undefined || record.tenant === tenant)
          .map((record) => ({ ...record })),
      );
    },
  };
}

/** A task's status as the revocations log says, when the log is newer than its snapshot (as the ClickHouse store). */
function reconciled(record: TaskRecord, revocations: ReadonlyMap<string, Revocation>): TaskRecord {
  let last: Revocation | undefined;
  for (const revocation of revocations.values()) {
    if (revocation.tenant !== record.tenant || revocation.taskId !== record.taskId) continue;
    if (last === undefined || revocation.timeMs > last.timeMs) last = revocation;
  }
  if (last === undefined || Math.round(last.timeMs * 1000) <= record.version) return { ...record };
  let status: TaskStatus = record.status;
  if (last.action === 'revoke') status = 'revoked';
  else if (record.status === 'revoked') status = record.endedMs === null ? 'active' : 'completed';
  return { ...record, status };
}

function byTime(a: ScoredEvent, b: ScoredEvent): number {
  return (
    a.event.startMs - b.event.startMs ||
    a.event.endMs - b.event.endMs ||
    (a.event.id < b.event.id ? -1 : a.event.id > b.event.id ? 1 : 0)
  );
}

/** One page of alerts or revocations matching the filter, newest first, after the filter's cursor. */
function page<T extends { tenant: string; taskId: string; agentId: string; id: string; timeMs: number }>(
  rows: Iterable<T>,
  filter: ListFilter,
): Page<T> {
  if (!Number.isInteger(filter.limit) || filter.limit < 1 || filter.limit > MAX_PAGE) {
    throw new TriplineError(
      'VALIDATION_FAILED',
      `limit must be an integer from 1 to ${MAX_PAGE} (got ${String(filter.limit)})`,
      {
        details: { key: 'limit' },
      },
    );
  }
  const after = filter.cursor === undefined ? undefined : decodeCursor(filter.cursor);
  const matching = [...rows]
    .filter(
      (row) =>
        (filter.tenant === undefined || row.tenant === filter.tenant) &&
        (filter.taskId === undefined || row.taskId === filter.taskId) &&
        (filter.agentId === undefined || row.agentId === filter.agentId) &&
        (filter.sinceMs === undefined || row.timeMs >= filter.sinceMs) &&
        (after === undefined || row.timeMs < after.timeMs || (row.timeMs === after.timeMs && row.id < after.id)),
    )
    .sort((a, b) => b.timeMs - a.timeMs || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const items = matching.slice(0, filter.limit);
  const last = items.at(-1);
  return matching.length > filter.limit && last !== undefined
    ? { items, nextCursor: encodeCursor(last.timeMs, last.id) }
    : { items };
}

function encodeCursor(timeMs: number, id: string): string {
  return Buffer.from(JSON.stringify([timeMs, id]), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): { timeMs: number; id: string } {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && typeof parsed[0] === 'number' && typeof parsed[1] === 'string')
      return { timeMs: parsed[0], id: parsed[1] };
  } catch {
    // falls through to the error below
  }
  throw new TriplineError('VALIDATION_FAILED', 'cursor is not a nextCursor returned by a previous page', {
    details: { key: 'cursor' },
  });
}

/** Spend grouped as the ClickHouse store groups it (services/store/clickhouse/spend-queries.ts). */
function spendOf(rows: readonly ModelUsageRow[], query: Parameters<Store['spend']>[0]): SpendRow[] {
  const groups = new Map<string, SpendRow>();
  for (const { usage, costUsd, priced } of rows) {
    if (usage.tenant !== query.tenant || usage.endMs < query.fromMs || usage.endMs >= query.toMs) continue;
    if (query.taskId !== undefined && usage.taskId !== query.taskId) continue;
    const groupKey = query.by === 'task' ? usage.taskId : query.by === 'agent' ? usage.agentId : usage.taskType;
    const row = groups.get(groupKey) ?? {
      key: groupKey,
      costUsd: 0,
      inputTokens: 0,
      outputTokens: 0,
      calls: 0,
      unpriced: 0,
      models: [],
    };
    row.costUsd += costUsd;
    row.inputTokens += usage.inputTokens;
    row.outputTokens += usage.outputTokens;
    row.calls += 1;
    if (!priced) row.unpriced += 1;
    if (!row.models.includes(usage.model) && row.models.length < 8) row.models.push(usage.model);
    groups.set(groupKey, row);
  }
  return [...groups.values()]
    .map((row) => ({ ...row, models: row.models.sort() }))
    .sort((a, b) => b.costUsd - a.costUsd || a.key.localeCompare(b.key))
    .slice(0, query.limit);
}
