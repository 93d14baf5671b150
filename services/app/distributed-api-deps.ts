/**
 * The API's dependencies in distributed mode: everything from the store (the processors write it), manual
 * actions written to the store and published on the revocations topic.
 */
import type { Revocation } from '../../schemas/events.ts';
import type { ApiDeps } from '../api/app.ts';
import type { KillSwitchBridge } from '../bus/kafka/kill-switch.ts';
import type { TriplineConfig } from './config.ts';
import { describeBaseline } from '../core/detect/index.ts';
import type { KillSwitch } from '../killswitch/kill-switch.ts';
import { BaselineBook, FLEET_TASK_TYPE } from '../processor/baseline-book.ts';
import type { ManualAction } from '../processor/processor.ts';
import { TriplineError, messageOf } from '../shared/errors.ts';
import { manualRevocation } from '../core/decide.ts';
import type { Logger } from '../shared/logger.ts';
import type { Store } from '../store/store.ts';

export function distributedApiDeps(
  store: Store,
  killSwitch: KillSwitch,
  bridge: KillSwitchBridge,
  config: Readonly<TriplineConfig>,
  logger: Logger,
): Omit<ApiDeps, 'access'> {
  const warmupTasks = config.detector.warmupTasks;
  const regimeOf = (tasks: number): 'rules' | 'type_baseline' => (tasks >= warmupTasks ? 'type_baseline' : 'rules');
  const book = async (tenant: string): Promise<BaselineBook> =>
    BaselineBook.fromRecords(await store.loadBaselines(tenant), (record, error) =>
      logger.warn({ taskType: record.taskType, err: messageOf(error) }, 'ignoring an unreadable baseline'),
    );
  return {
    store,
    commands: manualCommands(store, killSwitch, bridge),
    logger,
    async detectorStatus(tenant, taskType) {
      const tasks = (await book(tenant)).get(tenant, taskType)?.tasks ?? 0;
      return { regime: regimeOf(tasks), baselineTasks: tasks, warmupTasks };
    },
    async baselines(tenant) {
      return (await book(tenant))
        .list(tenant)
        .filter((entry) => entry.agentId === '' && entry.taskType !== FLEET_TASK_TYPE)
        .map((entry) => ({
          taskType: entry.taskType,
          tasks: entry.baseline.tasks,
          regime: regimeOf(entry.baseline.tasks),
          normal: describeBaseline(entry.baseline),
        }));
    },
    async ready() {
      try {
        await store.counts();
        return { ready: true, checks: { store: 'ok', kafka: 'connected' } };
      } catch (error) {
        return { ready: false, checks: { store: messageOf(error), kafka: 'connected' } };
      }
    },
  };
}

/**
 * Manual kill and restore from the API process: the task's current state is read from the store (the
 * processors keep it there), the revocation is applied to the local kill switch, published on the revocations
 * topic (the owning processor and every other process apply it from there) and stored.
 */
export function manualCommands(
  store: Store,
  killSwitch: KillSwitch,
  bridge: Pick<KillSwitchBridge, 'flush'>,
  now: () => number = Date.now,
): ApiDeps['commands'] {
  let chain: Promise<unknown> = Promise.resolve();
  const serialize = <T>(work: () => Promise<T>): Promise<T> => {
    const result = chain.then(work);
    chain = result.catch(() => undefined);
    return result;
  };

  async function act(action: ManualAction, kind: Revocation['action']): Promise<Revocation> {
    const record = await store.getTask(action.tenant, action.taskId);
    if (record === null) throw new TriplineError('NOT_FOUND', `no task ${action.taskId}`);
    if (kind === 'revoke' && record.status === 'revoked')
      throw new TriplineError('CONFLICT', `task ${action.taskId} is already revoked`);
    if (kind === 'restore' && record.status !== 'revoked')
      throw new TriplineError('CONFLICT', `task ${action.taskId} is not revoked (status ${record.status})`);
    const timeMs = now();
    const revocation = manualRevocation(record, kind, action.actor, action.reason, record.score, timeMs);
    killSwitch.apply(revocation);
    await bridge.flush();
    await store.insertRevocations([revocation]);
    const status = kind === 'revoke' ? 'revoked' : record.endedMs === null ? 'active' : 'completed';
    await store.upsertTasks([{ ...record, status, version: Math.max(record.version + 1, timeMs * 1000) }]);
    return revocation;
  }

  return {
    revoke: (action) => serialize(() => act(action, 'revoke')),
    restore: (action) => serialize(() => act(action, 'restore')),
  };
}
