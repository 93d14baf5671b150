/**
 * Task trees in the processor (the rules: services/core/task-tree.ts). Every revocation this process applies —
 * its own, a person's through it, or another process's carried over Kafka — is watched:
 *
 * - a kill revokes the killed task's descendants, level by level down the declared links (at most
 *   MAX_TREE_DEPTH levels and MAX_TREE_REVOCATIONS tasks): the ones this processor holds (their state marked
 *   revoked here) and the ones only the store knows. Each through the kill switch, so their credentials, leases
 *   and guards go as for any kill. Ids are fixed by the descendant and the ancestor's kill: in the distributed
 *   mode every processor makes the same revocations (applied and stored once per id);
 * - a child's own kill raises its parent's score and alerts on it, where the parent is held (in the distributed
 *   mode, by the processor that holds it; each applies every revocation);
 * - a task whose first spans arrive after its parent's kill is revoked as it appears (`revokeUnderRevokedParent`),
 *   unless a person restored it.
 *
 * A restore revokes and restores nothing else: a restored parent's children stay revoked.
 */
import type { Revocation } from '../../schemas/events.ts';
import { thresholdsFor } from '../core/detect/index.ts';
import {
  MAX_TREE_DEPTH,
  MAX_TREE_REVOCATIONS,
  cascades,
  childRevokedAlert,
  childRevokedVerdict,
  raisesParent,
  treeRevocation,
} from '../core/task-tree.ts';
import { messageOf } from '../shared/errors.ts';
import type { TaskRecord } from '../store/store.ts';
import { emptyOutput } from './batch-output.ts';
import type { BatchOutput } from './batch-output.ts';
import type { BatchScheduler } from './batch-scheduler.ts';
import type { ProcessorParts } from './processor-parts.ts';
import { markRevoked, noteLearningEffect, taskKey } from './task-table.ts';
import type { LiveTask } from './task-table.ts';

/** Kills remembered per processor, so a child that appears after its parent's kill is revoked with it. */
const REMEMBERED_KILLS = 10_000;

/** The kills in force this process applied, by task (restores take them out). Bounded, oldest forgotten. */
export class KillMemory {
  readonly #kills = new Map<string, Revocation>();

  observe(revocation: Revocation): void {
    const key = taskKey(revocation.tenant, revocation.taskId);
    this.#kills.delete(key);
    if (revocation.action !== 'revoke') return;
    this.#kills.set(key, revocation);
    if (this.#kills.size > REMEMBERED_KILLS) {
      const oldest = this.#kills.keys().next().value;
      if (oldest !== undefined) this.#kills.delete(oldest);
    }
  }

  killOf(tenant: string, taskId: string): Revocation | undefined {
    return this.#kills.get(taskKey(tenant, taskId));
  }
}

/** Watches the kill switch for kills to cascade and children's kills to raise their parents. Returns the unsubscribe. */
export function watchTaskTrees(parts: ProcessorParts, scheduler: BatchScheduler): () => void {
  return parts.killSwitch.subscribe((message) => {
    if (message.type !== 'revocation') return;
    const { revocation } = message;
    parts.kills.observe(revocation);
    const raise = raisesParent(revocation);
    const cascade = cascades(revocation);
    if (!raise && !cascade) return;
    scheduler
      .serialize(async () => {
        const output = emptyOutput();
        if (raise) raiseParent(parts, revocation, output);
        if (cascade) await revokeDescendants(parts, revocation, output);
        if (output.revocations.length > 0 || output.tasks.size > 0 || output.alerts.length > 0)
          await scheduler.persist(output);
      })
      .catch((error: unknown) =>
        parts.logger.error({ err: messageOf(error), taskId: revocation.taskId }, 'task tree step failed'),
      );
  });
}

/** Revoked children remembered per parent: beyond it a child's kill no longer raises its parent (raised enough). */
export const MAX_REVOKED_CHILDREN = 1000;

/** A child's own kill: its parent (when held here and not revoked) alerts, its score raised below the revoke level. */
export function raiseParent(
  parts: ProcessorParts,
  child: Revocation & { parentTaskId: string },
  output: BatchOutput,
): void {
  const parent = parts.resolver.held(child.tenant, child.parentTaskId);
  if (parent === undefined || parent.status === 'revoked' || parent.revokedChildren.has(child.taskId)) return;
  if (parent.revokedChildren.size >= MAX_REVOKED_CHILDREN) return;
  parent.revokedChildren.add(child.taskId);
  const verdict = childRevokedVerdict(
    parent.peak,
    child,
    parent.revokedChildren.size,
    thresholdsFor(parent.state.taskType, parts.detector),
  );
  if (parent.peak === undefined || verdict.score >= parent.peak.score) parent.peak = verdict;
  noteLearningEffect(parent, 'excluded');
  const alert = childRevokedAlert(parent.state, child, verdict);
  output.alerts.push(alert);
  parts.killSwitch.alert(alert);
  output.tasks.set(taskKey(parent.state.tenant, parent.state.taskId), parent);
}

/**
 * Revokes the descendants of the task `ancestor` killed, breadth first: the tasks held here and the ones in the
 * store that declared a task of the level above as their parent. Tasks already revoked are passed through (their
 * own descendants may still run).
 */
export async function revokeDescendants(
  parts: ProcessorParts,
  ancestor: Revocation,
  output: BatchOutput,
): Promise<void> {
  const { tenant } = ancestor;
  const root = parts.resolver.held(tenant, ancestor.taskId);
  // A task declared by name (its key being its trace id) may be named by its children either way.
  let level = [ancestor.taskId, ...(root === undefined ? [] : [root.state.taskId, root.name])].filter(
    (id) => id !== '',
  );
  const visited = new Set(level);
  let revoked = 0;
  for (let depth = 1; depth <= MAX_TREE_DEPTH && level.length > 0; depth += 1) {
    const children = await childrenOf(parts, tenant, level);
    const next: string[] = [];
    for (const child of children) {
      const id = child.held?.state.taskId ?? child.record?.taskId ?? '';
      if (id === '' || visited.has(id)) continue;
      visited.add(id);
      next.push(id);
      if (child.held?.name !== undefined && child.held.name !== '') next.push(child.held.name);
      if (revoked >= MAX_TREE_REVOCATIONS) {
        parts.logger.warn(
          { taskId: ancestor.taskId, limit: MAX_TREE_REVOCATIONS },
          'a killed task has more descendants than one kill revokes; the rest are left to a person',
        );
        return;
      }
      if (revokeDescendant(parts, child, ancestor, output)) revoked += 1;
    }
    level = next;
  }
  if (level.length > 0)
    parts.logger.warn(
      { taskId: ancestor.taskId, depth: MAX_TREE_DEPTH },
      'a killed task has descendants deeper than one kill reaches; they are left to a person',
    );
}

interface Child {
  held?: LiveTask;
  record?: TaskRecord;
}

/** The children of the tasks in `parents`: held ones first, then the stored ones not held here. */
async function childrenOf(parts: ProcessorParts, tenant: string, parents: readonly string[]): Promise<Child[]> {
  const wanted = new Set(parents);
  const out: Child[] = [];
  for (const task of parts.tasks.held())
    if (task.state.tenant === tenant && task.parentId !== '' && wanted.has(task.parentId)) out.push({ held: task });
  let stored: TaskRecord[] = [];
  try {
    stored = await parts.store.childTasks(tenant, parents, MAX_TREE_REVOCATIONS + 1);
  } catch (error) {
    // The held descendants are revoked all the same; the lookup's failure is logged for a person to follow up.
    parts.logger.error({ err: messageOf(error), parents }, 'looking up child tasks in the store failed');
  }
  for (const record of stored) if (!parts.tasks.has(taskKey(record.tenant, record.taskId))) out.push({ record });
  return out;
}

/** One descendant's revocation (applied now, stored with the output); false when it was revoked already. */
function revokeDescendant(parts: ProcessorParts, child: Child, ancestor: Revocation, output: BatchOutput): boolean {
  const { held, record } = child;
  if (held !== undefined) {
    if (held.status === 'revoked') return false;
    markRevoked(held);
    const revocation = treeRevocation(held.state, ancestor, held.peak?.score ?? 0, parts.now(), held.scope);
    parts.killSwitch.apply(revocation);
    output.revocations.push(revocation);
    output.tasks.set(taskKey(held.state.tenant, held.state.taskId), held);
    return true;
  }
  if (record === undefined || record.status === 'revoked') return false;
  // Not held here: the revocation row is what the store's status follows (and the holder, if any, applies it).
  const revocation = treeRevocation(record, ancestor, record.score, parts.now());
  parts.killSwitch.apply(revocation);
  output.revocations.push(revocation);
  return true;
}

/**
 * A task whose parent is revoked (its kill known here) is revoked as its events arrive, unless a person restored
 * it: a sub-agent started, or first heard of, after its orchestrator's kill.
 */
export function revokeUnderRevokedParent(parts: ProcessorParts, task: LiveTask, output: BatchOutput): void {
  if (task.parentId === '' || task.status !== 'active' || task.restored) return;
  const { tenant } = task.state;
  const parent = parts.resolver.held(tenant, task.parentId);
  const kill = parts.kills.killOf(tenant, parent?.state.taskId ?? task.parentId);
  if (kill === undefined || (parent !== undefined && parent.status !== 'revoked')) return;
  markRevoked(task);
  const revocation = treeRevocation(task.state, kill, task.peak?.score ?? 0, parts.now(), task.scope);
  parts.killSwitch.apply(revocation);
  output.revocations.push(revocation);
  output.tasks.set(taskKey(tenant, task.state.taskId), task);
}
