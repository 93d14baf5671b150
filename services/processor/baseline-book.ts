/**
 * The baselines a processor scores against, per tenant: one per task type, one per agent within a type,
 * and a fleet-wide one (over every type) that serves as the prior while a type warms up.
 * Learning marks entries dirty; `takeDirty()` hands them to the store with the next batch.
 */
import { FLEET_TASK_TYPE, emptyBaseline, learn, parseBaseline, serializeBaseline } from '../core/detect/index.ts';
import type { Baseline, BaselineLookup, TaskSummary } from '../core/detect/index.ts';
import type { BaselineRecord } from '../store/store.ts';

export { FLEET_TASK_TYPE } from '../core/detect/index.ts';

/** Task types with a baseline per tenant (each also has one per agent): a new type beyond it is not learned. */
export const MAX_TASK_TYPES_PER_TENANT = 1000;
/**
 * Agent baselines (one per task type and agent) per tenant: a new one beyond it is not made, the task teaching its
 * type's and the fleet's only. With the type cap, a tenant holds at most 1,000 + 5,000 + 1 baselines (each at most
 * MAX_BASELINE_KEYS keys per collection).
 */
export const MAX_AGENT_BASELINES_PER_TENANT = 5000;

/** Why a baseline was not made (counted in `refused`). */
export type BaselineRefusal = 'task_types_full' | 'agent_baselines_full';

export class BaselineBook {
  private readonly entries = new Map<
    string,
    { tenant: string; taskType: string; agentId: string; baseline: Baseline }
  >();
  private readonly dirty = new Set<string>();
  /** Baselines per tenant (types) and per tenant and type (agents), to hold each under its cap. */
  private readonly counts = new Map<string, number>();
  /** New baselines not made because a cap was reached, by reason (see MAX_TASK_TYPES_PER_TENANT). */
  readonly refused: Record<BaselineRefusal, number> = { task_types_full: 0, agent_baselines_full: 0 };
  /** Per task type, the completed tasks that alerted during its warm-up, waiting (see `holdWarmupTask`). */
  private readonly held = new Map<string, { agentId: string; summary: TaskSummary }[]>();

  static fromRecords(
    records: readonly BaselineRecord[],
    onBadRecord: (record: BaselineRecord, error: unknown) => void,
  ): BaselineBook {
    const book = new BaselineBook();
    for (const record of records) {
      try {
        const baseline = parseBaseline(record.model);
        if (!book.admits(record.tenant, record.taskType, record.agentId)) continue;
        book.entries.set(entryKey(record.tenant, record.taskType, record.agentId), {
          tenant: record.tenant,
          taskType: record.taskType,
          agentId: record.agentId,
          baseline,
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

  /**
   * Learn one completed benign task into its type's, its agent's and the fleet's baselines. A type or an agent
   * beyond its cap (MAX_TASK_TYPES_PER_TENANT, MAX_AGENT_BASELINES_PER_TENANT) gets no baseline of its own: the
   * refusal is counted in `refused`, and the others still learn.
   */
  learnTask(tenant: string, taskType: string, agentId: string, summary: TaskSummary): void {
    if (this.learnInto(tenant, taskType, '', summary)) this.learnInto(tenant, taskType, agentId, summary);
    this.learnInto(tenant, FLEET_TASK_TYPE, '', summary);
  }

  /**
   * Whether a baseline may be held under this key: one held already, or a new one within the caps (counted
   * here when admitted; a refusal is counted in `refused`).
   */
  private admits(tenant: string, taskType: string, agentId: string): boolean {
    if (this.entries.has(entryKey(tenant, taskType, agentId))) return true;
    if (taskType === FLEET_TASK_TYPE && agentId === '') return true;
    const group = agentId === '' ? `${tenant}\u0000types` : `${tenant}\u0000agents`;
    const held = this.counts.get(group) ?? 0;
    const cap = agentId === '' ? MAX_TASK_TYPES_PER_TENANT : MAX_AGENT_BASELINES_PER_TENANT;
    if (held >= cap) {
      this.refused[agentId === '' ? 'task_types_full' : 'agent_baselines_full']++;
      return false;
    }
    this.counts.set(group, held + 1);
    return true;
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

  /** Returns false when a cap refused a new baseline. */
  private learnInto(tenant: string, taskType: string, agentId: string, summary: TaskSummary): boolean {
    const key = entryKey(tenant, taskType, agentId);
    if (!this.admits(tenant, taskType, agentId)) return false;
    const entry = this.entries.get(key) ?? { tenant, taskType, agentId, baseline: emptyBaseline(taskType, agentId) };
    entry.baseline = learn(entry.baseline, summary);
    this.entries.set(key, entry);
    this.dirty.add(key);
    return true;
  }
}

function entryKey(tenant: string, taskType: string, agentId: string): string {
  return `${tenant}\u0000${taskType}\u0000${agentId}`;
}
