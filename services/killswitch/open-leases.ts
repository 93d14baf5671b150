/**
 * The open leases (active or revoke_failed) this process holds in memory, per task: the ones a kill must end
 * and the sweep expires or retries.
 */
import type { LeaseRecord } from './ks-store.ts';

const taskKey = (tenant: string, taskId: string): string => `${tenant}\u0000${taskId}`;

export class OpenLeases {
  readonly #byTask = new Map<string, Map<string, LeaseRecord>>();

  hold(lease: LeaseRecord): void {
    const key = taskKey(lease.tenant, lease.taskId);
    const leases = this.#byTask.get(key) ?? new Map<string, LeaseRecord>();
    leases.set(lease.id, lease);
    this.#byTask.set(key, leases);
  }

  drop(lease: LeaseRecord): void {
    const key = taskKey(lease.tenant, lease.taskId);
    const leases = this.#byTask.get(key);
    leases?.delete(lease.id);
    if (leases?.size === 0) this.#byTask.delete(key);
  }

  get(tenant: string, taskId: string, leaseId: string): LeaseRecord | undefined {
    return this.#byTask.get(taskKey(tenant, taskId))?.get(leaseId);
  }

  ofTask(tenant: string, taskId: string): LeaseRecord[] {
    return [...(this.#byTask.get(taskKey(tenant, taskId))?.values() ?? [])];
  }

  /** Every open lease (a snapshot: ending one while iterating is safe). */
  all(): LeaseRecord[] {
    return [...this.#byTask.values()].flatMap((leases) => [...leases.values()]);
  }
}
