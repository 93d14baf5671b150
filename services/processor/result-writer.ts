/**
 * Writing the processor's results. Outputs queue up in the order their batches were scored and are written by one
 * writer: whatever is waiting when it starts is written together (one insert per table), so ClickHouse's per-insert
 * cost is paid once per round, not once per batch. Revocations do not queue: they are written the moment they are
 * decided (the audit trail of a kill waits for nothing; the rows are idempotent by id), and the writer lets the
 * revocations in flight finish before it starts its next round, so a kill's insert does not share the CPU with the
 * bulk writes of the same moment. A batch is durable when both are.
 *
 * A round waits up to `lingerMs` for `minEvents` events to queue before it starts: the engine's cost per insert
 * (a part per table per insert, and the merges of small parts later) is a large share of its cost per event at a
 * few thousand rows. A kill does not wait for it (revocations are written at once, and a round holding them
 * starts at once), nor does a task's first record, nor a drain.
 *
 * Failed writes are retried with backoff while the error is retriable (a store outage), a few times only once
 * stopping; an error that says it is not retriable (`TriplineError.retriable`) fails the write at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Alert, Revocation } from '../../schemas/events.ts';
import { isTriplineError, messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { BaselineRecord, ModelUsageRow, ScoredEvent, Store, TaskRecord } from '../store/store.ts';

/** One batch's results, its task records and baselines already snapshotted. */
export interface Results {
  events: ScoredEvent[];
  alerts: Alert[];
  revocations: Revocation[];
  tasks: TaskRecord[];
  baselines: BaselineRecord[];
  /** Model calls and their cost (absent: none). */
  usages?: ModelUsageRow[];
  /**
   * It holds the first record of a task: written without lingering, because a process that knows tasks only from
   * the store (the distributed API's `/v1/check`) answers "not known" until the record is there.
   */
  firstRecords?: boolean;
}

export interface ResultWriter {
  /** Queues the results; resolves when all of them are durable. */
  write(results: Results): Promise<void>;
  /** Runs `work`, retrying it with backoff as writes are retried (the processor's store reads use it too). */
  retrying: <T>(what: string, rows: number, work: () => Promise<T>, failure?: string) => Promise<T>;
  /** Events written for but not yet durable (the processor scores ahead of the writes up to a limit). */
  unwrittenEvents(): number;
  /** Resolves when every queued write is done (or failed for good). */
  drain(): Promise<void>;
  /** From now on a failing write is tried a few times only. */
  stopping(): void;
}

interface PendingWrite {
  queuedAtMs: number;
  /** It carries revocations (a kill's task records) or a task's first record: not held back. */
  urgent: boolean;
  events: ScoredEvent[];
  alerts: Alert[];
  tasks: TaskRecord[];
  baselines: BaselineRecord[];
  usages: ModelUsageRow[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Events a write round waits for (up to the linger) before it starts. */
export const WRITE_ROUND_MIN_EVENTS = 10_000;

export function createResultWriter(options: {
  store: Store;
  logger: Logger;
  writeRevocations?: (rows: readonly Revocation[]) => Promise<void>;
  /** Longest wait for a round to fill up (0: a round starts as soon as anything is queued). @default 0 */
  lingerMs?: number;
  /** @default WRITE_ROUND_MIN_EVENTS */
  minEvents?: number;
}): ResultWriter {
  const { store, logger } = options;
  const lingerMs = options.lingerMs ?? 0;
  const minEvents = options.minEvents ?? WRITE_ROUND_MIN_EVENTS;
  let lingering: NodeJS.Timeout | undefined;
  let draining = false;
  const writeRevocations = options.writeRevocations ?? ((rows: readonly Revocation[]) => store.insertRevocations(rows));
  const queued: PendingWrite[] = [];
  let writing: Promise<void> | undefined;
  /** Revocation writes not finished yet (the writer lets them go first). */
  const revocationWrites = new Set<Promise<void>>();
  /** Outputs not yet durable, and the events in them. */
  let unwritten = 0;
  let unwrittenEvents = 0;
  let stopped = false;

  async function retrying<T>(
    what: string,
    rows: number,
    work: () => Promise<T>,
    failure = 'writing results failed; retrying',
  ): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await work();
      } catch (error) {
        if ((stopped && attempt >= 3) || (isTriplineError(error) && !error.retriable)) throw error;
        const delay = Math.min(5000, 50 * 2 ** Math.min(attempt, 10));
        logger.error({ err: messageOf(error), attempt, retryInMs: delay, what, rows }, failure);
        await sleep(delay);
      }
    }
  }

  /** Whether the round should wait for more results; if so, a timer pumps once the oldest has waited enough. */
  function shouldLinger(): boolean {
    const oldest = queued[0];
    if (lingerMs === 0 || stopped || draining || oldest === undefined) return false;
    if (queued.some((item) => item.urgent)) return false;
    if (queued.reduce((sum, item) => sum + item.events.length, 0) >= minEvents) return false;
    const waited = Date.now() - oldest.queuedAtMs;
    if (waited >= lingerMs) return false;
    lingering ??= setTimeout(() => {
      lingering = undefined;
      pump();
    }, lingerMs - waited);
    return true;
  }

  function pump(afterRevocations = false): void {
    if (writing !== undefined || queued.length === 0) return;
    if (shouldLinger()) return;
    if (lingering !== undefined) {
      clearTimeout(lingering);
      lingering = undefined;
    }
    if (!afterRevocations && revocationWrites.size > 0) {
      // Once per round, so a stream of kills cannot hold the other results back.
      writing = Promise.allSettled([...revocationWrites]).then(() => undefined);
      void writing.finally(() => {
        writing = undefined;
        pump(true);
      });
      return;
    }
    const group = queued.splice(0);
    writing = writeGroup(group)
      .then(
        () => group.forEach((item) => item.resolve()),
        (error: unknown) => group.forEach((item) => item.reject(error)),
      )
      .finally(() => {
        writing = undefined;
        pump();
      });
  }

  async function writeGroup(group: PendingWrite[]): Promise<void> {
    const events = group.flatMap((item) => item.events);
    const alerts = group.flatMap((item) => item.alerts);
    const usages = group.flatMap((item) => item.usages);
    // A task written by several batches of the group: its newest record is enough (the highest version wins anyway).
    const tasks = new Map<string, TaskRecord>();
    for (const record of group.flatMap((item) => item.tasks)) {
      const key = `${record.tenant}\u0000${record.taskId}`;
      const current = tasks.get(key);
      if (current === undefined || record.version > current.version) tasks.set(key, record);
    }
    const baselines = new Map<string, BaselineRecord>();
    for (const record of group.flatMap((item) => item.baselines))
      baselines.set(`${record.tenant}\u0000${record.taskType}\u0000${record.agentId}`, record);
    await retrying('results', events.length, async () => {
      if (alerts.length > 0) await store.insertAlerts(alerts);
      if (events.length > 0) await store.insertEvents(events);
      if (usages.length > 0) await store.insertModelUsage(usages);
      if (tasks.size > 0) await store.upsertTasks([...tasks.values()]);
      if (baselines.size > 0) await store.saveBaselines([...baselines.values()]);
    });
  }

  return {
    write(results) {
      const size = results.events.length;
      unwritten += 1;
      unwrittenEvents += size;
      const revocations =
        results.revocations.length === 0
          ? Promise.resolve()
          : retrying('revocations', results.revocations.length, () => writeRevocations(results.revocations));
      if (results.revocations.length > 0) {
        revocationWrites.add(revocations);
        const done = (): void => {
          revocationWrites.delete(revocations);
        };
        revocations.then(done, done);
      }
      const rest = new Promise<void>((resolve, reject) => {
        queued.push({
          queuedAtMs: Date.now(),
          urgent: results.revocations.length > 0 || results.firstRecords === true,
          events: results.events,
          alerts: results.alerts,
          tasks: results.tasks,
          baselines: results.baselines,
          usages: results.usages ?? [],
          resolve,
          reject,
        });
        pump();
      });
      const settle = (): void => {
        unwritten -= 1;
        unwrittenEvents -= size;
      };
      return Promise.all([revocations, rest]).then(settle, (error: unknown) => {
        settle();
        throw error;
      });
    },
    retrying,
    unwrittenEvents: () => unwrittenEvents,
    async drain() {
      draining = true;
      try {
        pump();
        while (writing !== undefined || queued.length > 0 || unwritten > 0) {
          await (writing ?? sleep(5)).catch(() => undefined);
          pump();
        }
      } finally {
        draining = false;
      }
    },
    stopping() {
      stopped = true;
      pump();
    },
  };
}
