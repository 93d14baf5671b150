/**
 * The audit trail's writer: rows are queued and written in the background (every second, or at once past
 * 100 rows), so an audited request never waits for ClickHouse. A failed write is retried with the next
 * flush; the queue is bounded, and what it had to drop is counted and logged, never silently lost.
 */
import { messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { AccessStore, AuditRecord } from './access-store.ts';

const FLUSH_EVERY_MS = 1000;
const FLUSH_AT_ROWS = 100;
const MAX_QUEUED_ROWS = 50_000;

export interface AuditTrail {
  record(entry: AuditRecord): void;
  /** Writes what is queued (tests, shutdown). */
  flush(): Promise<void>;
  /** Rows dropped because the queue was full (ClickHouse down for long). */
  dropped(): number;
  stop(): Promise<void>;
}

export function createAuditTrail(store: Pick<AccessStore, 'insertAudit'>, logger: Logger): AuditTrail {
  let queue: AuditRecord[] = [];
  let droppedRows = 0;
  let writing: Promise<void> | undefined;

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
  const timer = setInterval(() => void flush(), FLUSH_EVERY_MS);
  timer.unref();

  return {
    record(entry) {
      if (queue.length >= MAX_QUEUED_ROWS) {
        droppedRows += 1;
        if (droppedRows === 1 || droppedRows % 1000 === 0)
          logger.error({ dropped: droppedRows }, 'the audit queue is full; audit rows are being dropped');
        return;
      }
      queue.push(entry);
      if (queue.length >= FLUSH_AT_ROWS) void flush();
    },
    async flush() {
      await writing;
      await flush();
    },
    dropped: () => droppedRows,
    async stop() {
      clearInterval(timer);
      await writing;
      await flush();
    },
  };
}
