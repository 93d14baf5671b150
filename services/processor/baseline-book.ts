/**
 * The baselines a processor scores against, per tenant: one per task type, one per agent within a type,
 * and a fleet-wide one (over every type) that serves as the prior while a type warms up.
 * Learning marks entries dirty; `takeDirty()` hands them to the store with the next batch.
 */
import { FLEET_TASK_TYPE, emptyBaseline, learn, parseBaseline, serializeBaseline } from '../core/detect/index.ts';
import type { Baseline, BaselineLookup, TaskSummary } from '../core/detect/index.ts';
import type { BaselineRecord } from '../store/store.ts';

export { FLEET_TASK_TYPE } from '../core/detect/index.ts';

export class BaselineBook {
  private readonly entries = new Map<
    string,
    { tenant: string; taskType: string; agentId: string; baseline: Baseline }
  >();
  private readonly dirty = new Set<string>();
  /** Per task type, the completed tasks that alerted during its warm-up, waiting (see `holdWarmupTask`). */
  private readonly held = new Map<string, { agentId: string; summary: TaskSummary }[]>();

  static fromRecords(
    records: readonly BaselineRecord[],
    onBadRecord: (record: BaselineRecord, error: unknown) => void,
  ): BaselineBook {
    const book = new BaselineBook();
    for (const record of records) {
      try {
        book.entries.set(entryKey(record.tenant, record.taskType, record.agentId), {
          tenant: record.tenant,
          taskType: record.taskType,
          agentId: record.agentId,
          baseline: parseBaseline(record.model),
        });
      } catch (error) {
        onBadRecord(record, error);
      }
    }
    return book;
  }

  lookup(tenant: string, taskType: string, agentId: string): BaselineLookup {
    const lookup: BaselineLookup = {};
    const type = this.entries.get(entryKey(tenant, taskType, ''))?.baseline;
    const agent = this.entries.get(entryKey(tenant, taskType, agentId))?.baseline;
    const fleet = this.entries.get(entryKey(tenant, FLEET_TASK_TYPE, ''))?.baseline;
    if (type !== undefined) lookup.type = type;
    if (agent !== undefined) lookup.agent = agent;
    if (fleet !== undefined) lookup.fleet = fleet;
    return lookup;
  }

  get(tenant: string, taskType: string, agentId = ''): Baseline | undefined {
    return this.entries.get(entryKey(tenant, taskType, agentId))?.baseline;
  }

  /** All baselines of a tenant (or every tenant), for the API. */
  list(tenant?: string): { tenant: string; taskType: string; agentId: string; baseline: Baseline }[] {
    return [...this.entries.values()].filter((entry) => tenant === undefined || entry.tenant === tenant);
  }

  /** Learn one completed benign task into its type's, its agent's and the fleet's baselines. */
  learnTask(tenant: string, taskType: string, agentId: string, summary: TaskSummary): void {
    this.learnInto(tenant, taskType, '', summary);
    this.learnInto(tenant, taskType, agentId, summary);
    this.learnInto(tenant, FLEET_TASK_TYPE, '', summary);
  }

  /**
   * A completed task of a warming-up type that alerted (no hard rule, nothing revoked). Held tasks are learned
   * together once they are at least half of the type's warm-up and, with the tasks it learned, enough to end it:
   * then alerting is what the type's ordinary work does. Until then they teach nothing, so a few attacks among a
   * type's normal first tasks never become its normal. At most `warmupTasks` are held per type (the oldest go);
   * they live in memory only, so a restart forgets them (the type then needs that many again).
   * Returns how many tasks were learned now.
   */
  holdWarmupTask(tenant: string, taskType: string, agentId: string, summary: TaskSummary, warmupTasks: number): number {
    const key = entryKey(tenant, taskType, '');
    const held = this.held.get(key) ?? [];
    held.push({ agentId, summary });
    if (held.length > warmupTasks) held.shift();
    this.held.set(key, held);
    const learned = this.entries.get(key)?.baseline.tasks ?? 0;
    if (learned >= warmupTasks || held.length < learned || held.length + learned < warmupTasks) return 0;
    this.held.delete(key);
    for (const task of held) this.learnTask(tenant, taskType, task.agentId, task.summary);
    return held.length;
  }

  takeDirty(nowMs: number): BaselineRecord[] {
    const records: BaselineRecord[] = [];
    for (const key of this.dirty) {
      const entry = this.entries.get(key);
      if (entry === undefined) continue;
      records.push({
        tenant: entry.tenant,
        taskType: entry.taskType,
        agentId: entry.agentId,
        tasks: entry.baseline.tasks,
        model: serializeBaseline(entry.baseline),
        updatedMs: nowMs,
      });
    }
    this.dirty.clear();
    return records;
  }

  private learnInto(tenant: string, taskType: string, agentId: string, summary: TaskSummary): void {
    const key = entryKey(tenant, taskType, agentId);
    const entry = this.entries.get(key) ?? { tenant, taskType, agentId, baseline: emptyBaseline(taskType, agentId) };
    entry.baseline = learn(entry.baseline, summary);
    this.entries.set(key, entry);
    this.dirty.add(key);
  }
}

function entryKey(tenant: string, taskType: string, agentId: string): string {
  return `${tenant}\u0000${taskType}\u0000${agentId}`;
}
