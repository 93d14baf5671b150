/**
 * A task's place in its tree for `GET /v1/tasks/{id}`: the parent it declared (`tripline.task.parent_id`) and its
 * children, at most MAX_LISTED_CHILDREN (services/core/task-tree.ts), oldest first. One level each way: walk the
 * tree by asking for the parent or a child in turn.
 */
import { MAX_LISTED_CHILDREN } from '../core/task-tree.ts';
import type { Store, TaskRecord } from '../store/store.ts';

function linkView(task: TaskRecord): Record<string, unknown> {
  return {
    taskId: task.taskId,
    ...(task.name === '' ? {} : { name: task.name }),
    taskType: task.taskType,
    agentId: task.agentId,
    status: task.status,
    score: task.score,
    startedAt: new Date(task.startedMs).toISOString(),
  };
}

/**
 * `parent`: null when the task declared none; `{ taskId, found: false }` when it declared one Tripline has no
 * record of (not seen yet, or another tenant's: a claim never reaches across tenants). `children`, and
 * `childrenTruncated` when there are more than listed.
 */
export async function taskTreeView(store: Store, task: TaskRecord): Promise<Record<string, unknown>> {
  const parentId = task.parentTaskId;
  const [parent, children] = await Promise.all([
    parentId === undefined ? Promise.resolve(null) : store.getTask(task.tenant, parentId),
    store.childTasks(task.tenant, task.name === '' ? [task.taskId] : [task.taskId, task.name], MAX_LISTED_CHILDREN + 1),
  ]);
  return {
    parent: parentId === undefined ? null : parent === null ? { taskId: parentId, found: false } : linkView(parent),
    children: children.slice(0, MAX_LISTED_CHILDREN).map(linkView),
    childrenTruncated: children.length > MAX_LISTED_CHILDREN,
  };
}
