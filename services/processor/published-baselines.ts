/**
 * The baselines a distributed-mode processor (and the API) scores and answers with: the newest book the learner
 * published (services/learner/publish.ts). `refresh()` asks the store for the newest version (one small query) and
 * loads and parses the book only when it is newer than the one in hand; a caller polls it every few seconds.
 * The book in hand is replaced whole, never edited, so every reader sees one version.
 */
import type { BaselineBooks } from '../store/clickhouse/baseline-books.ts';
import { messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { BaselineBook } from './baseline-book.ts';

export interface PublishedBaselines {
  /** The book in force (empty until a version is loaded) and its version (0: none). */
  current(): { book: BaselineBook; version: number };
  /** Load the newest version if it is newer; returns the version in force. */
  refresh(): Promise<number>;
  /** Called with each newer book, in order (the processor swaps it in between two batches). */
  onChange(listener: (book: BaselineBook, version: number) => Promise<void> | void): void;
}

export function publishedBaselines(books: BaselineBooks, logger: Logger): PublishedBaselines {
  let state = { book: new BaselineBook(), version: 0 };
  const listeners: ((book: BaselineBook, version: number) => Promise<void> | void)[] = [];
  let chain: Promise<number> = Promise.resolve(0);

  async function load(): Promise<number> {
    const newest = await books.latestVersion();
    if (newest <= state.version) return state.version;
    const published = await books.load(newest);
    if (published === null) return state.version;
    const book = BaselineBook.fromRecords(published.records, (record, error) =>
      logger.error(
        { tenant: record.tenant, taskType: record.taskType, agentId: record.agentId, err: messageOf(error) },
        'ignoring an unreadable baseline',
      ),
    );
    for (const listener of listeners) await listener(book, published.version);
    state = { book, version: published.version };
    logger.info({ version: published.version, baselines: published.records.length }, 'baseline book in force');
    return state.version;
  }

  return {
    current: () => state,
    refresh() {
      // One load at a time, in order.
      const next = chain.catch(() => 0).then(load);
      chain = next;
      return next;
    },
    onChange(listener) {
      listeners.push(listener);
    },
  };
}
