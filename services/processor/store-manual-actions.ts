import type { Revocation } from '../../schemas/events.ts';
import { manualRevocation } from '../core/decide.ts';
import { noteScope } from '../core/escalation-policy.ts';
import type { EscalationScope } from '../core/escalation-policy.ts';
import type { KillSwitch } from '../killswitch/kill-switch.ts';
import { TriplineError } from '../shared/errors.ts';
import type { Store, TaskRecord } from '../store/store.ts';
import type { ManualAction } from './processor.ts';

/** A person's kill and restore, as the API calls them in either mode (the embedded processor implements it too). */
export interface ManualActions {
  revoke(action: ManualAction): Promise<Revocation>;
  restore(action: ManualAction): Promise<Revocation>;
}

/** Who a task is by its credentials (a task token issued for it), for a task that has sent no event yet. */
export type CredentialedTaskLookup = (
  tenant: string,
  taskId: string,
) => Promise<{ taskType: string; agentId: string; issuedMs: number } | undefined>;

/**
 * Manual kill and restore from the API process: the task's current state is read from the store (the
 * processors keep it there), the revocation is applied to the local kill switch, published on the revocations
 * topic (the owning processor and every other process apply it from there) and stored. A task that holds a token
 * but has sent no event yet (no stored record) is killed as its credentials name it (`credentialed`), as in the
 * embedded mode (docs/kill-switch.md).
 */
export function storeManualActions(
  store: Store,
  killSwitch: KillSwitch,
  published: { flush(): Promise<void> },
  now: () => number = Date.now,
  credentialed?: CredentialedTaskLookup,
): ManualActions {
  let chain: Promise<unknown> = Promise.resolve();
  const serialize = <T>(work: () => Promise<T>): Promise<T> => {
    const result = chain.then(work);
    chain = result.catch(() => undefined);
    return result;
  };

  /** The record of a task known only by its credentials: active, no events yet, started when its token was issued. */
  async function credentialedRecord(tenant: string, taskId: string): Promise<TaskRecord | null> {
    const known = await credentialed?.(tenant, taskId);
    if (known === undefined) return null;
    return {
      tenant,
      taskId,
      name: '',
      taskType: known.taskType,
      agentId: known.agentId,
      status: 'active',
      score: 0,
      decision: 'allow',
      regime: 'rules',
      reasons: [],
      counts: { tool_call: 0, data_access: 0, privilege_change: 0 },
      startedMs: known.issuedMs,
      lastEventMs: known.issuedMs,
      endedMs: null,
      version: 0,
    };
  }

  async function act(action: ManualAction, kind: Revocation['action']): Promise<Revocation> {
    const record =
      (await store.getTask(action.tenant, action.taskId)) ??
      (kind === 'revoke' ? await credentialedRecord(action.tenant, action.taskId) : null);
    if (record === null) throw new TriplineError('NOT_FOUND', `no task ${action.taskId}`);
    if (kind === 'revoke' && record.status === 'revoked')
      throw new TriplineError('CONFLICT', `task ${action.taskId} is already revoked`);
    if (kind === 'restore' && record.status !== 'revoked')
      throw new TriplineError('CONFLICT', `task ${action.taskId} is not revoked (status ${record.status})`);
    const timeMs = now();
    // The end user / conversation the task's spans named: a person's kills escalate at the narrowest scope too.
    const scope: EscalationScope = {};
    if (kind === 'revoke')
      for (const { event } of await store.eventsForTask(record.tenant, record.taskId))
        noteScope(scope, event.attributes);
    const revocation = manualRevocation(record, kind, action.actor, action.reason, record.score, timeMs, scope);
    // The processor holding the parent raises it; the processors cascade the kill to the descendants (task-tree.ts).
    if (kind === 'revoke' && record.parentTaskId !== undefined) revocation.parentTaskId = record.parentTaskId;
    killSwitch.apply(revocation);
    await published.flush();
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
