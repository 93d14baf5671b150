/**
 * The audit trail's writer: rows are queued and written in the background (every second, or at once past
 * 100 rows), so an audited request never waits for ClickHouse. A failed write is retried with the next
 * flush; the queue is bounded, and what it had to drop is counted and logged, never silently lost.
 *
 * Rows of requests without a valid token (empty token id; anyone can send them) are capped at
 * UNAUTHENTICATED_ROWS_PER_MINUTE: past it, a minute's further attempts become one summary row with their count
 * when the minute is over. The table keeps them 7 days (schemas/clickhouse/015_audit_failed_auth_ttl.sql).
 */
import { messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { AccessStore, AuditRecord } from './access-store.ts';

const FLUSH_EVERY_MS = 1000;
const FLUSH_AT_ROWS = 100;
const MAX_QUEUED_ROWS = 50_000;
export const UNAUTHENTICATED_ROWS_PER_MINUTE = 60;
const MINUTE_MS = 60_000;

export interface AuditTrail {
  record(entry: AuditRecord): void;
  /** Writes what is queued (tests, shutdown). */
  flush(): Promise<void>;
  /** Rows dropped because the queue was full (ClickHouse down for long). */
  dropped(): number;
  stop(): Promise<void>;
}

/** The row that stands for `count` attempts without a valid token not recorded one by one in a minute. */
function unrecordedSummary(windowStartMs: number, count: number, timeMs: number): AuditRecord {
  return {
    timeMs,
    tenant: '',
    actor: '',
    tokenId: '',
    role: '',
    method: '*',
    route: '*',
    target: '{}',
    reason: `${count} more requests without a valid token in the minute from ${new Date(windowStartMs).toISOString()}, not recorded one by one`,
    status: 401,
    requestId: '',
  };
}

export function createAuditTrail(
  store: Pick<AccessStore, 'insertAudit'>,
  logger: Logger,
  clock: () => number = Date.now,
): AuditTrail {
  let queue: AuditRecord[] = [];
  let droppedRows = 0;
  let writing: Promise<void> | undefined;
  let windowStartMs = Number.NEGATIVE_INFINITY;
  let windowRows = 0;
  let windowUnrecorded = 0;

  const write = async (): Promise<void> => {
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      try {
        await store.insertAudit(batch);
      } catch (error) {
        queue = batch.concat(queue).slice(0, MAX_QUEUED_ROWS);
        logger.error({ err: messageOf(error), queued: queue.length }, 'writing the audit trail failed; it is retried');
        return;
      }
    }
  };
  const flush = (): Promise<void> => {
    writing ??= write().finally(() => {
      writing = undefined;
    });
    return writing;
  };
  const enqueue = (entry: AuditRecord): void => {
    if (queue.length >= MAX_QUEUED_ROWS) {
      droppedRows += 1;
      if (droppedRows === 1 || droppedRows % 1000 === 0)
        logger.error({ dropped: droppedRows }, 'the audit queue is full; audit rows are being dropped');
      return;
    }
    queue.push(entry);
    if (queue.length >= FLUSH_AT_ROWS) void flush();
  };
  /** Ends the current minute of unauthenticated attempts (when it is over, or on stop): its summary row, if any. */
  const closeWindow = (force: boolean): void => {
    const now = clock();
    if (!force && now - windowStartMs < MINUTE_MS) return;
    if (windowUnrecorded > 0) {
      enqueue(unrecordedSummary(windowStartMs, windowUnrecorded, Math.min(now, windowStartMs + MINUTE_MS)));
    }
    windowStartMs = now;
    windowRows = 0;
    windowUnrecorded = 0;
  };
  const timer = setInterval(() => {
    if (windowUnrecorded > 0) closeWindow(false);
    void flush();
  }, FLUSH_EVERY_MS);
  timer.unref();

  return {
    record(entry) {
      if (entry.tokenId === '') {
        closeWindow(false);
        if (windowRows >= UNAUTHENTICATED_ROWS_PER_MINUTE) {
          windowUnrecorded += 1;
          return;
        }
        windowRows += 1;
      }
      enqueue(entry);
    },
    async flush() {
      closeWindow(false);
      await writing;
      await flush();
    },
    dropped: () => droppedRows,
    async stop() {
      clearInterval(timer);
      closeWindow(true);
      await writing;
      await flush();
    },
  };
}
