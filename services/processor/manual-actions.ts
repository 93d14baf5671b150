/**
 * Kills and restores decided by a person (through this processor) or in another process (applied here): the
 * task's status changes, so this processor's next write of the task does not undo it.
 */
import type { Revocation } from '../../schemas/events.ts';
import { manualRevocation } from '../core/decide.ts';
import { TriplineError } from '../shared/errors.ts';
import { emptyOutput } from './batch-output.ts';
import type { BatchOutput } from './batch-output.ts';
import { applyEscalations } from './processor-parts.ts';
import type { ProcessorParts } from './processor-parts.ts';
import { rebuildTask } from './task-history.ts';
import { markRestored, markRevoked, taskKey } from './task-table.ts';
import type { LiveTask } from './task-table.ts';

export interface ManualAction {
  tenant: string;
  taskId: string;
  actor: string;
  reason: string;
}

/**
 * A person's kill or restore (run as serialized work): applied to the kill switch now; returns the revocation and
 * the output to write. Throws NOT_FOUND for a task neither held nor stored, CONFLICT for a kill of a revoked task
 * or a restore of one that is not.
 */
export async function manualAction(
  parts: ProcessorParts,
  action: ManualAction,
  kind: Revocation['action'],
): Promise<{ revocation: Revocation; output: BatchOutput }> {
  const task = await findTask(parts, action);
  const key = taskKey(task.state.tenant, task.state.taskId);
  if (kind === 'revoke' && task.status === 'revoked')
    throw new TriplineError('CONFLICT', `task ${action.taskId} is already revoked`);
  if (kind === 'restore' && task.status !== 'revoked')
    throw new TriplineError('CONFLICT', `task ${action.taskId} is not revoked (status ${task.status})`);
  const peakScore = task.peak?.score ?? 0;
  const revocation = manualRevocation(
    task.state,
    kind,
    action.actor,
    action.reason,
    peakScore,
    parts.now(),
    task.scope,
  );
  if (kind === 'revoke' && task.parentId !== '') revocation.parentTaskId = task.parentId;
  if (kind === 'revoke') markRevoked(task);
  else markRestored(task);
  parts.killSwitch.apply(revocation);
  const output = emptyOutput();
  output.revocations.push(revocation);
  output.tasks.set(key, task);
  applyEscalations(parts, output);
  return { revocation, output };
}

/** The task held for the action's id or name, else the one the store knows (rebuilt into memory). */
async function findTask(parts: ProcessorParts, action: ManualAction): Promise<LiveTask> {
  let task = parts.resolver.held(action.tenant, action.taskId);
  if (task === undefined) {
    const record = await parts.store.getTask(action.tenant, action.taskId);
    if (record === null) throw new TriplineError('NOT_FOUND', `no task ${action.taskId}`);
    task = parts.resolver.held(record.tenant, record.taskId);
    if (task === undefined) {
      await rebuildTask(parts, record);
      task = parts.resolver.held(record.tenant, record.taskId);
    }
  }
  if (task === undefined) throw new TriplineError('NOT_FOUND', `no task ${action.taskId}`);
  return task;
}

/**
 * A revocation or restore decided in another process: the task's new status as output to write, or undefined
 * when this processor does not hold the task or its status is that already. Writes no revocation.
 */
export function applyRemoteRevocation(parts: ProcessorParts, revocation: Revocation): BatchOutput | undefined {
  const key = taskKey(revocation.tenant, revocation.taskId);
  const task = parts.tasks.get(key);
  if (task === undefined) return undefined;
  if (revocation.action === 'revoke') {
    if (task.status === 'revoked') return undefined;
    markRevoked(task);
  } else {
    if (task.status !== 'revoked') return undefined;
    markRestored(task);
  }
  const output = emptyOutput();
  output.tasks.set(key, task);
  return output;
}
