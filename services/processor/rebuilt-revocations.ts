import type { EventBatch } from '../bus/bus.ts';
import type { KillSwitch } from '../killswitch/kill-switch.ts';
import type { Logger } from '../shared/logger.ts';
import type { Store } from '../store/store.ts';
import type { Processor } from './processor.ts';

/**
 * The processor's batch handler, which also announces kills it learned from the store rather than decided or
 * heard of. A processor that takes over partitions rebuilds their tasks from the store; a task stored as revoked
 * there may have been revoked by a processor that died after storing the revocation and before publishing it
 * (publication happens before the offsets are committed, after the store write). Nobody else would ever publish
 * it, so the processors and API instances would not enforce that kill. Such revocations are applied to this
 * process's kill switch again, which publishes them (same id: consumers that had it ignore it) before the batch's
 * offsets are committed.
 */
export function announcingRebuiltRevocations(
  processor: Pick<Processor, 'handle' | 'taskSnapshot'>,
  store: Pick<Store, 'listRevocations'>,
  killSwitch: KillSwitch,
  logger: Logger,
): (batch: EventBatch) => Promise<void> {
  return async (batch) => {
    await processor.handle(batch);
    const tasks = new Map<string, { tenant: string; taskId: string }>();
    for (const list of [batch.events, batch.boundaries]) {
      // Runs of one task's items (a record's spans) are one entry: its key is made once per run, not per item.
      let last: { tenant: string; taskId: string } | undefined;
      for (const item of list) {
        if (last?.tenant === item.tenant && last.taskId === item.taskId) continue;
        last = item;
        tasks.set(`${item.tenant}\u0000${item.taskId}`, { tenant: item.tenant, taskId: item.taskId });
      }
    }
    for (const { tenant, taskId } of tasks.values()) {
      if (processor.taskSnapshot(tenant, taskId)?.status !== 'revoked' || killSwitch.isRevoked(tenant, taskId))
        continue;
      const [latest] = (await store.listRevocations({ tenant, taskId, limit: 1 })).items;
      if (latest?.action !== 'revoke') continue;
      logger.warn(
        { tenant, taskId, revocation: latest.id },
        'announcing a revocation found in the store (its processor may have died before publishing it)',
      );
      killSwitch.apply(latest);
    }
  };
}
