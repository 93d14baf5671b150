/**
 * The learner of record (distributed mode): rebuilds every baseline from the store (every partition's tasks,
 * whichever processor scored them) and publishes the book as a new version when it changed. Processors poll the
 * newest version and swap it in whole (services/processor/published-baselines.ts), so every processor scores a
 * task type against the same book. A new false-positive mark in the store makes the next check publish at once.
 *
 * Deterministic: the book is a function of the stored tasks, learned in the order they ended, so two learners
 * running at once publish the same content (under two versions); processors take the newest.
 */
import { createHash } from 'node:crypto';
import type { BaselineBooks, PublishedBook } from '../store/clickhouse/baseline-books.ts';
import type { DetectionQueries } from '../store/clickhouse/detection-queries.ts';
import type { BaselineRecord } from '../store/store.ts';
import { baselineRecords, rebuildBaselines } from './rebuild.ts';

export interface BookPublisherDeps {
  queries: DetectionQueries;
  books: BaselineBooks;
  /** Also written to the `baselines` table (dashboards, the embedded learner's readers). */
  saveBaselines?: (records: readonly BaselineRecord[]) => Promise<void>;
  warmupTasks: number;
  shadowAlertsBlock?: boolean;
  /** Names this process in the published row. */
  learner: string;
  now?: () => number;
}

export interface PublishOutcome {
  /** The version in force after this run. */
  version: number;
  /** A new version was written (the rebuilt book differed from the newest one). */
  published: boolean;
  tasks: number;
  feedback: number;
}

export interface BookPublisher {
  /** Rebuild now and publish when the book changed. One run at a time; calls during a run share the next one. */
  rebuild(): Promise<PublishOutcome>;
  /** Rebuild when feedback grew since the last run (or nothing was ever built). */
  rebuildOnFeedback(): Promise<PublishOutcome | undefined>;
}

export function createBookPublisher(deps: BookPublisherDeps): BookPublisher {
  const now = deps.now ?? Date.now;
  let last: { version: number; digest: string; feedback: number } | undefined;
  let running: Promise<PublishOutcome> | undefined;
  let queued: Promise<PublishOutcome> | undefined;

  async function latest(): Promise<{ version: number; digest: string; feedback: number }> {
    if (last !== undefined) return last;
    const stored = await deps.books.load();
    return stored === null
      ? { version: 0, digest: '', feedback: -1 }
      : { version: stored.version, digest: digestOf(stored.records), feedback: stored.feedback };
  }

  async function once(): Promise<PublishOutcome> {
    const before = await latest();
    // Feedback counted before the rebuild: a mark written during it is seen again by the next check.
    const feedback = await deps.books.feedbackCount();
    const builtMs = now();
    const result = await rebuildBaselines(deps.queries, {
      warmupTasks: deps.warmupTasks,
      shadowAlertsBlock: deps.shadowAlertsBlock ?? false,
    });
    const records = baselineRecords(result.book, builtMs);
    const digest = digestOf(records);
    if (digest === before.digest) {
      last = { ...before, feedback };
      return { version: before.version, published: false, tasks: result.tasks, feedback };
    }
    const version = Math.max(builtMs, before.version + 1);
    const book: PublishedBook = { version, builtMs, learner: deps.learner, tasks: result.tasks, feedback, records };
    if (deps.saveBaselines !== undefined && records.length > 0) await deps.saveBaselines(records);
    await deps.books.publish(book);
    last = { version, digest, feedback };
    return { version, published: true, tasks: result.tasks, feedback };
  }

  function rebuild(): Promise<PublishOutcome> {
    if (running === undefined) {
      running = once().finally(() => (running = undefined));
      return running;
    }
    queued ??= running
      .catch(() => undefined)
      .then(() => {
        queued = undefined;
        return rebuild();
      });
    return queued;
  }

  return {
    rebuild,
    async rebuildOnFeedback() {
      const before = await latest();
      const feedback = await deps.books.feedbackCount();
      if (before.version !== 0 && feedback === before.feedback) return undefined;
      return rebuild();
    },
  };
}

/** What the book says, without when it was written. */
function digestOf(records: readonly BaselineRecord[]): string {
  const hash = createHash('sha256');
  const sorted = [...records].sort((a, b) =>
    `${a.tenant}\u0000${a.taskType}\u0000${a.agentId}`.localeCompare(
      `${b.tenant}\u0000${b.taskType}\u0000${b.agentId}`,
    ),
  );
  for (const record of sorted)
    hash.update(`${record.tenant}\u0000${record.taskType}\u0000${record.agentId}\u0000${record.model}\n`);
  return hash.digest('hex');
}
