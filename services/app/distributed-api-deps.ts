/**
 * The API's dependencies in distributed mode: everything from the store (the processors write it), manual
 * actions written to the store and published on the revocations topic, and the baselines from the published book.
 */
import type { ApiDeps } from '../api/app.ts';
import type { KillSwitchBridge } from '../bus/kafka/kill-switch.ts';
import { storeManualActions } from '../processor/store-manual-actions.ts';
import type { CredentialedTaskLookup } from '../processor/store-manual-actions.ts';
import type { TriplineConfig } from './config.ts';
import { describeBaseline } from '../core/detect/index.ts';
import type { KillSwitch } from '../killswitch/kill-switch.ts';
import { FLEET_TASK_TYPE } from '../processor/baseline-book.ts';
import type { BaselineBook } from '../processor/baseline-book.ts';
import { messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { Store } from '../store/store.ts';

export function distributedApiDeps(
  store: Store,
  killSwitch: KillSwitch,
  bridge: KillSwitchBridge,
  config: Readonly<TriplineConfig>,
  logger: Logger,
  /** The published baseline book (the one every processor scores against), held in memory. */
  book: (tenant: string) => BaselineBook,
  /** Tasks known by their credentials only (a token, no event yet): a person can kill them too. */
  credentialed?: CredentialedTaskLookup,
): Omit<ApiDeps, 'access'> {
  const warmupTasks = config.detector.warmupTasks;
  const regimeOf = (tasks: number): 'rules' | 'type_baseline' => (tasks >= warmupTasks ? 'type_baseline' : 'rules');
  return {
    store,
    commands: storeManualActions(store, killSwitch, bridge, Date.now, credentialed),
    logger,
    detectorStatus(tenant, taskType) {
      const tasks = book(tenant).get(tenant, taskType)?.tasks ?? 0;
      return Promise.resolve({ regime: regimeOf(tasks), baselineTasks: tasks, warmupTasks });
    },
    baselines(tenant) {
      const items = book(tenant)
        .list(tenant)
        .filter((entry) => entry.agentId === '' && entry.taskType !== FLEET_TASK_TYPE)
        .map((entry) => ({
          taskType: entry.taskType,
          tasks: entry.baseline.tasks,
          regime: regimeOf(entry.baseline.tasks),
          normal: describeBaseline(entry.baseline),
        }));
      return Promise.resolve(items);
    },
    async ready() {
      try {
        await store.ping();
        return { ready: true, checks: { store: 'ok', kafka: 'connected' } };
      } catch (error) {
        return { ready: false, checks: { store: messageOf(error), kafka: 'connected' } };
      }
    },
  };
}
