/**
 * The learner of record in the distributed mode (run by the API role unless TRIPLINE_LEARNER_INTERVAL_MS=0):
 * every TRIPLINE_BASELINE_POLL_MS it rebuilds and publishes when a false-positive mark was added to the store
 * (any API process may have written it), and every TRIPLINE_LEARNER_INTERVAL_MS regardless; a mark made in this
 * process publishes at once. A book is published only when it differs from the newest (services/learner/publish.ts).
 */
import { hostname } from 'node:os';
import { createBookPublisher } from '../learner/publish.ts';
import type { PublishOutcome } from '../learner/publish.ts';
import type { PublishedBaselines } from '../processor/published-baselines.ts';
import { messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { BaselineBooks } from '../store/clickhouse/baseline-books.ts';
import type { DetectionQueries } from '../store/clickhouse/detection-queries.ts';
import type { BaselineRecord } from '../store/store.ts';
import type { TriplineConfig } from './config.ts';

export interface RunningLearner {
  /** Rebuild and publish now (when changed); resolves once this process's API has the book in force. */
  rebuildNow(): Promise<PublishOutcome>;
  /** A mark was made here: rebuild at once, in the background. */
  nudge(): void;
  stop(): Promise<void>;
}

export interface LearnerDeps {
  config: Readonly<TriplineConfig>;
  logger: Logger;
  queries: DetectionQueries;
  books: BaselineBooks;
  saveBaselines: (records: readonly BaselineRecord[]) => Promise<void>;
  /** The API's follower of the books: refreshed after each publication. */
  published: PublishedBaselines;
  now?: () => number;
}

export function startLearner(deps: LearnerDeps): Promise<RunningLearner> {
  const { config, logger } = deps;
  const now = deps.now ?? Date.now;
  const publisher = createBookPublisher({
    queries: deps.queries,
    books: deps.books,
    saveBaselines: deps.saveBaselines,
    warmupTasks: config.detector.warmupTasks,
    learner: `${hostname()}:${String(process.pid)}`,
    now,
  });
  let lastFullMs = 0;
  let stopped = false;

  async function settle(outcome: PublishOutcome | undefined): Promise<PublishOutcome | undefined> {
    if (outcome === undefined) return undefined;
    if (outcome.published)
      logger.info(
        { version: outcome.version, tasks: outcome.tasks, feedback: outcome.feedback },
        'published a baseline book',
      );
    await deps.published.refresh();
    return outcome;
  }

  async function rebuildNow(): Promise<PublishOutcome> {
    lastFullMs = now();
    const outcome = await publisher.rebuild();
    await settle(outcome);
    return outcome;
  }

  async function tick(): Promise<void> {
    if (now() - lastFullMs >= config.learner.intervalMs) await rebuildNow();
    else await settle(await publisher.rebuildOnFeedback());
  }

  const failed = (error: unknown): void => {
    logger.error({ err: messageOf(error) }, 'rebuilding the baselines failed');
  };
  let ticking: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    // One tick at a time: a slow rebuild delays the next check instead of piling them up.
    ticking = ticking.then(() => (stopped ? undefined : tick().catch(failed)));
  }, config.learner.pollMs);
  timer.unref();
  ticking = tick().catch(failed);

  return Promise.resolve({
    rebuildNow,
    nudge() {
      rebuildNow().catch(failed);
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await ticking;
    },
  });
}
