/**
 * Published baseline books over the real ClickHouse engine (the distributed mode's learner of record, without
 * Kafka): the learner rebuilds from the store what a processor learned online and publishes it as a version; an
 * unchanged store publishes nothing; a false-positive mark publishes a new version; a processor that does not
 * learn online swaps the published book in and scores against it, and never saves a baseline of its own.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeBaseline } from '../../../services/core/detect/index.ts';
import { DEFAULT_DETECTOR_CONFIG } from '../../../services/core/detect/index.ts';
import { createFeedback } from '../../../services/detection/feedback.ts';
import { createLocalKillSwitch } from '../../../services/killswitch/kill-switch.ts';
import { createBookPublisher } from '../../../services/learner/publish.ts';
import type { BookPublisher } from '../../../services/learner/publish.ts';
import type { BaselineBook } from '../../../services/processor/baseline-book.ts';
import { createProcessor } from '../../../services/processor/processor.ts';
import type { Processor } from '../../../services/processor/processor.ts';
import { publishedBaselines } from '../../../services/processor/published-baselines.ts';
import type { PublishedBaselines } from '../../../services/processor/published-baselines.ts';
import { KEPT_BOOK_VERSIONS, createBaselineBooks } from '../../../services/store/clickhouse/baseline-books.ts';
import type { BaselineBooks } from '../../../services/store/clickhouse/baseline-books.ts';
import { TENANT, logger, runTask, startHarness, tasksOf, tempDir } from './fixtures.ts';
import type { Harness } from './fixtures.ts';

const START = Date.UTC(2026, 5, 1);
const WARMUP = 5;
const TYPE = 'summarize_ticket';

function described(book: BaselineBook): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const entry of book.list())
    out[`${entry.tenant}/${entry.taskType}/${entry.agentId}`] = describeBaseline(entry.baseline);
  return out;
}

describe('published baseline books', () => {
  const dataDir = tempDir('tripline-books-');
  let h: Harness;
  let books: BaselineBooks;
  let publisher: BookPublisher;
  let follower: PublishedBaselines;
  let follower2: Processor;
  let first = 0;

  beforeAll(async () => {
    h = await startHarness(dataDir, `books_${String(process.pid)}`, { warmupTasks: WARMUP });
    for (const task of tasksOf({ seed: 5, taskTypes: [TYPE], benignPerType: WARMUP + 3, startMs: START }))
      await runTask(h.processor, task);
    // The planned events are months old: the idle sweep completes every task.
    await h.processor.sweep();
    books = createBaselineBooks(h.client, h.database);
    publisher = createBookPublisher({ queries: h.queries, books, warmupTasks: WARMUP, learner: 'test' });
    follower = publishedBaselines(books, logger);
  });

  afterAll(async () => {
    await follower2.stop();
    await h.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('publishes what the processor learned online, as a version', async () => {
    expect(await books.latestVersion()).toBe(0);
    const outcome = await publisher.rebuild();
    expect(outcome.published).toBe(true);
    expect(outcome.tasks).toBeGreaterThanOrEqual(WARMUP);
    first = outcome.version;
    expect(await books.latestVersion()).toBe(first);
    expect(await follower.refresh()).toBe(first);
    expect(described(follower.current().book)).toEqual(described(h.processor.baselines()));
  });

  it('publishes nothing when the store taught nothing new', async () => {
    const again = await publisher.rebuild();
    expect(again).toMatchObject({ published: false, version: first });
    expect(await publisher.rebuildOnFeedback()).toBeUndefined();
    expect(await books.latestVersion()).toBe(first);
  });

  it('a processor that does not learn online scores against the published book and saves no baseline', async () => {
    const savedBefore = (await h.store.loadBaselines(TENANT)).map((record) => record.updatedMs);
    follower2 = await createProcessor({
      store: h.store,
      killSwitch: createLocalKillSwitch(),
      detector: { ...DEFAULT_DETECTOR_CONFIG, warmupTasks: WARMUP },
      logger,
      taskIdleTimeoutMs: 600_000,
      learnOnline: false,
      baselines: follower.current(),
    });
    expect(follower2.baselineVersion()).toBe(first);
    const tasks = tasksOf({ seed: 6, taskTypes: [TYPE], benignPerType: 2, startMs: START + 3_600_000 });
    for (const task of tasks) await runTask(follower2, task);
    await follower2.sweep();
    expect(follower2.baselines().get(TENANT, TYPE)?.tasks).toBe(follower.current().book.get(TENANT, TYPE)?.tasks);
    expect((await h.store.loadBaselines(TENANT)).map((record) => record.updatedMs)).toEqual(savedBefore);
    // The learner learns them from the store, and the processor swaps the new version in.
    const next = await publisher.rebuild();
    expect(next.published).toBe(true);
    expect(next.version).toBeGreaterThan(first);
    follower.onChange((book, version) => follower2.useBaselines(book, version));
    expect(await follower.refresh()).toBe(next.version);
    expect(follower2.baselineVersion()).toBe(next.version);
    expect(follower2.baselines().get(TENANT, TYPE)?.tasks).toBe(
      (h.processor.baselines().get(TENANT, TYPE)?.tasks ?? 0) + 2,
    );
  });

  it('a false-positive mark written by the API (learned by the learner) publishes a new version', async () => {
    const rogue = tasksOf({
      seed: 7,
      taskTypes: [TYPE],
      benignPerType: 0,
      attacksPerPattern: 1,
      patterns: ['unseen_tool'],
      agentsPerType: 1,
      startMs: START + 7_200_000,
    })[0];
    if (rogue === undefined) throw new Error('no task');
    await runTask(follower2, rogue);
    await follower2.sweep();
    const alerts = await h.store.listAlerts({ tenant: TENANT, taskId: rogue.taskId, limit: 10 });
    const alert = alerts.items[0];
    expect(alert).toBeDefined();
    let nudged = 0;
    const feedback = createFeedback({
      store: h.store,
      queries: h.queries,
      baselines: () => follower.current().book,
      learnedByLearner: true,
      onMarked: () => (nudged += 1),
    });
    const before = follower.current();
    const result = await feedback.markFalsePositive({
      tenant: TENANT,
      alertId: alert?.id ?? '',
      actor: 'alice',
      reason: 'expected',
    });
    expect(result.created).toBe(true);
    expect(nudged).toBe(1);
    // The book in force is never edited in place.
    expect(follower.current()).toBe(before);
    expect(before.book.get(TENANT, TYPE)?.falsePositivesLearned).toBe(0);
    const outcome = await publisher.rebuildOnFeedback();
    expect(outcome?.published).toBe(true);
    expect(await follower.refresh()).toBe(outcome?.version);
    expect(follower2.baselineVersion()).toBe(outcome?.version);
    expect(follower2.baselines().get(TENANT, TYPE)?.falsePositivesLearned).toBe(1);
  });
});

describe('published baseline books are pruned', () => {
  const dataDir = tempDir('tripline-books-prune-');
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness(dataDir, `books_prune_${String(process.pid)}`, { warmupTasks: WARMUP });
  });

  afterAll(async () => {
    await h.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(`keeps the newest ${String(KEPT_BOOK_VERSIONS)} versions, and the newest loads`, async () => {
    const books = createBaselineBooks(h.client, h.database);
    const versions = Array.from({ length: KEPT_BOOK_VERSIONS + 5 }, (_, i) => START + i * 60_000);
    for (const version of versions)
      await books.publish({ version, builtMs: version, learner: 'test', tasks: 0, feedback: 0, records: [] });
    const rows = await h.client.query({
      query: `SELECT version FROM ${h.database}.baseline_books FINAL ORDER BY version`,
      format: 'JSONEachRow',
    });
    const stored = (await rows.json<{ version: number }>()).map((row) => row.version);
    expect(stored).toEqual(versions.slice(-KEPT_BOOK_VERSIONS));
    expect(await books.latestVersion()).toBe(versions.at(-1));
    expect((await books.load())?.version).toBe(versions.at(-1));
    expect(await books.load(versions[0])).toBeNull();
  });
});
