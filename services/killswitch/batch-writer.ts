/**
 * Writes rows to the store in the background, in batches, so a request never waits for ClickHouse: `add()`
 * returns at once; rows are written every `intervalMs` or when `batchSize` are waiting; a failed write is
 * retried with backoff. Bounded: past `maxQueued` the oldest rows are dropped with an error log (the store has
 * been down too long). `flush()` resolves when everything added before it is written; `stop()` flushes (bounded
 * by `stopTimeoutMs`) and stops.
 */
import { messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';

export interface BatchWriterOptions<T> {
  name: string;
  write(rows: T[]): Promise<void>;
  logger: Logger;
  /** @default 50 */
  intervalMs?: number;
  /** @default 500 */
  batchSize?: number;
  /** @default 100000 */
  maxQueued?: number;
  /** @default 10000 */
  stopTimeoutMs?: number;
}

export interface BatchWriter<T> {
  add(row: T): void;
  flush(): Promise<void>;
  stop(): Promise<void>;
}

export function createBatchWriter<T>(options: BatchWriterOptions<T>): BatchWriter<T> {
  const intervalMs = options.intervalMs ?? 50;
  const batchSize = options.batchSize ?? 500;
  const maxQueued = options.maxQueued ?? 100_000;
  const queue: T[] = [];
  let added = 0;
  let done = 0;
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> | undefined;
  let stopped = false;
  let failures = 0;
  let waiters: { upTo: number; resolve: () => void }[] = [];

  function settle(): void {
    const still: typeof waiters = [];
    for (const waiter of waiters) {
      if (done >= waiter.upTo) waiter.resolve();
      else still.push(waiter);
    }
    waiters = still;
  }

  function schedule(delayMs: number): void {
    if (timer !== undefined || writing !== undefined || queue.length === 0) return;
    timer = setTimeout(() => {
      timer = undefined;
      pump();
    }, delayMs);
    timer.unref();
  }

  function pump(): void {
    if (writing !== undefined || queue.length === 0) return;
    const batch = queue.slice(0, batchSize);
    writing = options
      .write(batch)
      .then(
        () => {
          queue.splice(0, batch.length);
          done += batch.length;
          failures = 0;
          settle();
        },
        (error: unknown) => {
          failures += 1;
          options.logger.error(
            { writer: options.name, rows: batch.length, attempt: failures, err: messageOf(error) },
            'background write failed; retrying',
          );
        },
      )
      .finally(() => {
        writing = undefined;
        if (queue.length >= batchSize && failures === 0) pump();
        else schedule(failures === 0 ? intervalMs : Math.min(5000, 100 * 2 ** Math.min(failures, 6)));
      });
  }

  return {
    add(row) {
      if (stopped) {
        options.logger.warn({ writer: options.name }, 'a row arrived after stop; it is not written');
        return;
      }
      queue.push(row);
      added += 1;
      if (queue.length > maxQueued) {
        queue.shift();
        done += 1;
        options.logger.error(
          { writer: options.name },
          'dropping an unwritten row: the store has been unavailable too long',
        );
      }
      if (queue.length >= batchSize) pump();
      else schedule(intervalMs);
    },
    flush() {
      if (done >= added) return Promise.resolve();
      return new Promise<void>((resolve) => {
        waiters.push({ upTo: added, resolve });
        if (timer !== undefined) {
          clearTimeout(timer);
          timer = undefined;
        }
        pump();
      });
    },
    async stop() {
      if (stopped) return;
      const flushed = this.flush();
      stopped = true;
      let deadline: NodeJS.Timeout | undefined;
      await Promise.race([
        flushed,
        new Promise<void>((resolve) => (deadline = setTimeout(resolve, options.stopTimeoutMs ?? 10_000))),
      ]);
      clearTimeout(deadline);
      if (timer !== undefined) clearTimeout(timer);
      if (done < added)
        options.logger.error({ writer: options.name, unwritten: added - done }, 'stopping with rows not written');
      await writing;
    },
  };
}
