/**
 * When the processor's work runs and its results are written. Work that touches task state (batches, sweeps,
 * manual actions) runs one step at a time; a step's results are written while the next steps are scored, up to a
 * bound on unwritten events. A batch with tasks whose stored history is being looked up is scored in two steps,
 * so a kill among its other events waits for no lookup. Scoring in order, a lookup holds the batch's other tasks
 * and the next batches too, unless its task is backdated (task-history.ts, BACKDATE_BOUND_MS): then it waits alone.
 */
import type { AgentEvent, ModelUsage, TaskBoundary } from '../../schemas/events.ts';
import type { EventBatch } from '../bus/bus.ts';
import { messageOf } from '../shared/errors.ts';
import type { BatchOutput } from './batch-output.ts';
import { resultsOf } from './batch-output.ts';
import { scoreItems } from './batch-scoring.ts';
import type { ProcessorParts } from './processor-parts.ts';
import type { ResultWriter } from './result-writer.ts';
import { applyHistory, fetchHistory, unknownTasks } from './task-history.ts';
import { taskKey } from './task-table.ts';

/** Most unwritten events before scoring waits for the writes (when `persistAhead` is lower). */
const SCORE_AHEAD_EVENTS = 50_000;

export interface SchedulerOptions {
  /** See ProcessorOptions.persistAhead. */
  persistAhead: number;
  /** See ProcessorOptions.scoreInOrder. */
  scoreInOrder: boolean;
}

export class BatchScheduler {
  readonly #parts: ProcessorParts;
  readonly #writer: ResultWriter;
  readonly #persistAhead: number;
  readonly #scoreAhead: number;
  readonly #scoreInOrder: boolean;
  #chain: Promise<unknown> = Promise.resolve();
  #ownershipSinceMs: number;
  /**
   * Tasks whose stored history is being looked up, each with the step that scores their events once it is in.
   * Their events (in this batch and in later ones, until that step ran) wait for it; every other event — a kill
   * among them — and the next batches do not.
   */
  readonly #awaitingHistory = new Map<string, Promise<void>>();
  /** The tasks of #awaitingHistory looked up as backdated: scoring in order, nothing else waits for them. */
  readonly #awaitingAlone = new Set<string>();

  constructor(parts: ProcessorParts, writer: ResultWriter, options: SchedulerOptions, ownershipSinceMs: number) {
    this.#parts = parts;
    this.#writer = writer;
    this.#persistAhead = options.persistAhead;
    this.#scoreAhead = Math.max(options.persistAhead, SCORE_AHEAD_EVENTS);
    this.#scoreInOrder = options.scoreInOrder;
    this.#ownershipSinceMs = ownershipSinceMs;
  }

  /** Run work one at a time: batches, sweeps and manual actions all touch task state. */
  serialize<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#chain.then(work);
    this.#chain = result.catch(() => undefined);
    return result;
  }

  /** Snapshots the output's task records and dirty baselines now, and queues its write. Resolves when durable. */
  persist(output: BatchOutput): Promise<void> {
    return this.#writer.write(resultsOf(output, this.#parts.tasks, this.#parts.book, this.#parts.now));
  }

  /** Tasks seen from now on may have begun elsewhere (see Processor.ownershipChanged). */
  ownershipChanged(): void {
    this.#ownershipSinceMs = this.#parts.now();
  }

  /** The history lookups under way for these tasks. */
  lookupsOf(tasks: readonly { tenant: string; taskId: string }[]): Promise<void>[] {
    return tasks
      .map(({ tenant, taskId }) => this.#awaitingHistory.get(taskKey(tenant, taskId)))
      .filter((lookup) => lookup !== undefined);
  }

  /** Lookups that hold the other tasks' events when scoring in order (all but the backdated ones). */
  #orderedLookups(): Promise<void>[] {
    return [...this.#awaitingHistory].filter(([key]) => !this.#awaitingAlone.has(key)).map(([, lookup]) => lookup);
  }

  /** Resolves once every lookup and every step queued so far is done (not their writes). */
  async settle(): Promise<void> {
    await Promise.all([...this.#awaitingHistory.values()]);
    await this.#chain;
  }

  /** Scores a batch and writes its results (see Processor.handle). */
  handle(batch: EventBatch): Promise<void> {
    const { durable, scored } = this.#scoreBatch(batch);
    if (this.#persistAhead === 0) return durable;
    return scored.then(() => {
      if (this.#writer.unwrittenEvents() <= this.#persistAhead) {
        durable.catch((error: unknown) =>
          this.#parts.logger.error(
            { err: messageOf(error), events: batch.events.length },
            'results of a batch were not written',
          ),
        );
        return undefined;
      }
      return durable;
    });
  }

  /**
   * Scores a batch in two steps: at once, the events of the tasks this processor knows (or knows to be new);
   * once their history is in, the events of the tasks it had to look up (and of tasks still waiting for an
   * earlier lookup). `scored` resolves when the first step is done, `durable` when both steps' results are.
   */
  #scoreBatch(batch: EventBatch): { scored: Promise<void>; durable: Promise<void> } {
    const names = this.#parts.resolver.resolve(batch);
    // Looked up at once, beside the work in progress; retried like writes (a store outage delays these tasks'
    // events rather than failing the batch).
    const { unknown, backdated } = unknownTasks(this.#parts, batch, this.#ownershipSinceMs, (key) =>
      this.#awaitingHistory.has(key),
    );
    const history =
      unknown.size === 0
        ? undefined
        : this.#writer.retrying(
            'task history',
            unknown.size,
            () => fetchHistory(this.#parts.store, unknown),
            'reading task history failed; retrying',
          );
    history?.catch(() => undefined);
    const { deferred, earlier, ordered } = this.#deferral(batch, unknown, backdated);
    const isDeferred = (item: { tenant: string; taskId: string }): boolean =>
      deferred.has(taskKey(item.tenant, item.taskId));

    const first = this.serialize(() =>
      this.#scoreStep(
        batch.events.filter((event) => !isDeferred(event)),
        batch.boundaries.filter((boundary) => !isDeferred(boundary)),
        names,
        (batch.usages ?? []).filter((usage) => !isDeferred(usage)),
      ),
    );
    if (deferred.size === 0)
      return { scored: first.then(() => undefined), durable: first.then(async ({ durable }) => durable) };

    // Later batches' events of these tasks wait for this step, which waits for the earlier ones.
    const second = (async () => {
      await Promise.all([history, ...earlier]);
      const records = (await history) ?? [];
      return this.serialize(async () => {
        await applyHistory(this.#parts, records);
        return this.#scoreStep(
          batch.events.filter(isDeferred),
          batch.boundaries.filter(isDeferred),
          names,
          (batch.usages ?? []).filter(isDeferred),
        );
      });
    })();
    const settled = second.then(
      () => undefined,
      () => undefined,
    );
    for (const key of deferred) {
      this.#awaitingHistory.set(key, settled);
      if (ordered) this.#awaitingAlone.delete(key);
      else this.#awaitingAlone.add(key);
    }
    void settled.then(() => {
      for (const key of deferred)
        if (this.#awaitingHistory.get(key) === settled) {
          this.#awaitingHistory.delete(key);
          this.#awaitingAlone.delete(key);
        }
    });
    const durable = Promise.all([first, second]).then(async ([a, b]) => {
      await Promise.all([a.durable, b.durable]);
    });
    durable.catch(() => undefined);
    // In order, the batch counts as scored only once its waiting tasks are (so the bus hands over no more meanwhile).
    const scored = ordered ? Promise.all([first, second]).then(() => undefined) : first.then(() => undefined);
    return { scored, durable };
  }

  /**
   * The batch's tasks whose events wait for a history lookup (this batch's, or an earlier one still under way;
   * scoring in order, all of them while any lookup of a task that is not backdated is), the earlier steps they wait
   * for, and whether the batch waits in order (the whole batch, and the next ones, held behind its lookups).
   */
  #deferral(
    batch: EventBatch,
    unknown: ReadonlyMap<string, ReadonlySet<string>>,
    backdated: ReadonlySet<string>,
  ): { deferred: Set<string>; earlier: Set<Promise<void>>; ordered: boolean } {
    const deferred = new Set<string>();
    const earlier = new Set<Promise<void>>();
    // Lookups (this batch's, or earlier ones its tasks wait for) that hold the other tasks when scoring in order.
    let holding = false;
    for (const [tenant, ids] of unknown)
      for (const taskId of ids) {
        const key = taskKey(tenant, taskId);
        deferred.add(key);
        if (!backdated.has(key)) holding = true;
      }
    const items = [...batch.events, ...batch.boundaries, ...(batch.usages ?? [])];
    for (const item of items) {
      const key = taskKey(item.tenant, item.taskId);
      const waiting = this.#awaitingHistory.get(key);
      if (waiting === undefined) continue;
      deferred.add(key);
      earlier.add(waiting);
      if (!this.#awaitingAlone.has(key)) holding = true;
    }
    const orderedLookups = this.#scoreInOrder ? this.#orderedLookups() : [];
    const ordered = this.#scoreInOrder && (holding || orderedLookups.length > 0);
    if (ordered) {
      for (const item of items) deferred.add(taskKey(item.tenant, item.taskId));
      for (const waiting of orderedLookups) earlier.add(waiting);
    }
    return { deferred, earlier, ordered };
  }

  /**
   * Scores events and task ends (serialized work) and queues their results' write. Resolves once scored; the
   * write is wrapped, since a promise returned as is would make the serialized work wait for it.
   */
  async #scoreStep(
    events: readonly AgentEvent[],
    boundaries: readonly TaskBoundary[],
    names: ReadonlyMap<string, string>,
    usages: readonly ModelUsage[] = [],
  ): Promise<{ durable: Promise<void> }> {
    const output = scoreItems(this.#parts, events, boundaries, names, usages);
    const durable = this.persist(output);
    durable.catch(() => undefined);
    // The next batch is scored while this one is written, unless too much is unwritten already (memory).
    if (this.#writer.unwrittenEvents() > this.#scoreAhead) await durable;
    return { durable };
  }
}
