/**
 * Distributed mode: a processor does not see task tokens being issued (the API does), so it reads the credentials
 * of the tasks it scores from the store's credentials table — once a task's first events are scored, and once more
 * when the task ends if none were found then (its token may have been stored after its first spans were scored).
 * Credentials found are handed to `registerTask`, which alerts on what the task's spans claimed against them
 * (`identity.credential_mismatch`) and holds its later spans to them, as in embedded mode.
 *
 * The lookup runs after the batch is scored and before its offsets are committed: scoring and kills never wait
 * for it, and a store that does not answer costs the comparison (logged), never the batch.
 */
import type { EventBatch } from '../bus/bus.ts';
import { messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { Store } from '../store/store.ts';
import type { Processor } from './processor.ts';
import { taskKey } from './task-table.ts';

/** Tasks whose lookups are remembered; the oldest are forgotten past it (a forgotten task is looked up again). */
export const MAX_CREDENTIAL_LOOKUPS = 100_000;

/** A task's lookups so far: found, or how many found nothing. */
type Lookup = 'found' | 1 | 2;

export function bindingStoredCredentials(
  handle: (batch: EventBatch) => Promise<void>,
  processor: Pick<Processor, 'registerTask' | 'taskSnapshot'>,
  store: Pick<Store, 'taskCredentials'>,
  logger: Logger,
  memory = MAX_CREDENTIAL_LOOKUPS,
): (batch: EventBatch) => Promise<void> {
  const lookups = new Map<string, Lookup>();
  const remember = (key: string, lookup: Lookup): void => {
    lookups.delete(key);
    lookups.set(key, lookup);
    for (const oldest of lookups.keys()) {
      if (lookups.size <= memory) break;
      lookups.delete(oldest);
    }
  };

  /** The batch's tasks to look up now, by tenant. */
  function wanted(batch: EventBatch): Map<string, Set<string>> {
    const byTenant = new Map<string, Set<string>>();
    const consider = (tenant: string, taskId: string, ending: boolean): void => {
      const done = lookups.get(taskKey(tenant, taskId));
      if (done === 'found' || done === 2 || (done === 1 && !ending)) return;
      if (processor.taskSnapshot(tenant, taskId) === undefined) return;
      const ids = byTenant.get(tenant) ?? new Set<string>();
      ids.add(taskId);
      byTenant.set(tenant, ids);
    };
    for (const event of batch.events) consider(event.tenant, event.taskId, false);
    for (const boundary of batch.boundaries) consider(boundary.tenant, boundary.taskId, boundary.ends);
    return byTenant;
  }

  async function bind(tenant: string, taskIds: ReadonlySet<string>): Promise<void> {
    const credentials = await store.taskCredentials(tenant, [...taskIds]);
    const found = new Set<string>();
    for (const credential of credentials) {
      found.add(credential.taskId);
      remember(taskKey(tenant, credential.taskId), 'found');
      // Only a task this processor still holds (checked in the same turn as the call: registerTask would
      // otherwise begin holding a task whose partition moved away).
      if (processor.taskSnapshot(tenant, credential.taskId) === undefined) continue;
      await processor.registerTask({
        tenant,
        taskId: credential.taskId,
        taskType: credential.taskType,
        agentId: credential.agentId,
        startMs: credential.issuedMs,
      });
    }
    for (const taskId of taskIds) {
      if (found.has(taskId)) continue;
      const key = taskKey(tenant, taskId);
      remember(key, lookups.get(key) === undefined ? 1 : 2);
    }
  }

  return async (batch) => {
    await handle(batch);
    for (const [tenant, taskIds] of wanted(batch)) {
      try {
        await bind(tenant, taskIds);
      } catch (error) {
        logger.warn(
          { err: messageOf(error), tenant, tasks: taskIds.size },
          'reading task credentials failed; these tasks are compared with their credentials when next seen',
        );
      }
    }
  };
}
