/**
 * Which task each event and boundary belongs to, and who that task is: its task id from its trace
 * (services/processor/trace-tasks.ts), the task held for an id or a declared name, the new task an event of an
 * unknown task makes, and what a later span says about its task that its first did not.
 */
import type { AgentEvent, ModelUsage, TaskBoundary } from '../../schemas/events.ts';
import { UNKNOWN_TASK_TYPE } from '../core/classify.ts';
import { parentOf } from '../core/task-tree.ts';
import type { EventBatch } from '../bus/bus.ts';
import type { BatchOutput } from './batch-output.ts';
import { newLiveTask, taskKey } from './task-table.ts';
import type { LiveTask, TaskTable } from './task-table.ts';
import { TraceTasks } from './trace-tasks.ts';

export class TaskResolver {
  /** Which task each trace is, declared names, agents' declared types, roots that came first. */
  readonly traces = new TraceTasks<TaskBoundary>();
  readonly #tasks: TaskTable;
  readonly #holds = (tenant: string, taskId: string): boolean => this.#tasks.holds(tenant, taskId);

  constructor(tasks: TaskTable) {
    this.#tasks = tasks;
  }

  /**
   * Resolves each span's task from its trace (services/processor/trace-tasks.ts), in arrival order, and rewrites
   * its task id. Returns the names declared for tasks that began under their trace id.
   */
  resolve(batch: EventBatch): Map<string, string> {
    const names = new Map<string, string>();
    const resolve = (item: AgentEvent | TaskBoundary | ModelUsage): void => {
      // An event made without classification (a test, a replay of stored events) names its task outright.
      const declared = item.claims === undefined ? item.taskId : item.claims.taskId;
      const resolution = this.traces.resolve(item.tenant, item.traceId, declared, this.#holds);
      item.taskId = resolution.taskId;
      if (resolution.named !== undefined) names.set(taskKey(item.tenant, resolution.taskId), resolution.named);
    };
    for (const event of batch.events) resolve(event);
    for (const boundary of batch.boundaries) resolve(boundary);
    for (const usage of batch.usages ?? []) resolve(usage);
    return names;
  }

  /** The task held for an id or a declared name (undefined when this processor holds none). */
  held(tenant: string, taskIdOrName: string): LiveTask | undefined {
    const task = this.#tasks.get(taskKey(tenant, taskIdOrName));
    if (task !== undefined) return task;
    const named = this.traces.taskNamed(tenant, taskIdOrName);
    return named === undefined ? undefined : this.#tasks.get(taskKey(tenant, named));
  }

  /** The event's (or model call's) task, made (live) from it when this processor holds none. */
  taskFor(event: AgentEvent | ModelUsage): LiveTask {
    const key = taskKey(event.tenant, event.taskId);
    const existing = this.#tasks.get(key);
    if (existing !== undefined) return existing;
    const task = newLiveTask(event.tenant, event.taskId, event.taskType, event.agentId, event.startMs);
    task.agentSettled = event.claims?.agentId !== undefined;
    task.parentId = parentOf(event.taskId, event.claims?.parentTaskId) ?? '';
    if (event.claims !== undefined && event.claims.taskType === undefined) this.inferType(task);
    else if (event.claims?.taskType !== undefined)
      this.traces.noteAgentType(event.tenant, event.agentId, event.claims.taskType);
    this.#tasks.setLive(key, task);
    return task;
  }

  /** A task that declared no type yet takes the one its agent's tasks declared (`TraceTasks.usualType`). */
  inferType(task: LiveTask): void {
    if (task.state.taskType !== UNKNOWN_TASK_TYPE) return;
    const usual = this.traces.usualType(task.state.tenant, task.state.agentId);
    if (usual === undefined) return;
    task.state.taskType = usual;
    task.typeInferred = true;
  }

  /**
   * What a later span of the task says about it that its first did not: the name the agent declared, a type where
   * the task had none, the agent where the task had only a stand-in, the parent where it declared none (the first
   * declared parent stays). A type or agent a credential gave is kept.
   */
  adoptClaims(
    task: LiveTask,
    item: AgentEvent | TaskBoundary | ModelUsage,
    names: ReadonlyMap<string, string>,
    output: BatchOutput,
  ): void {
    const key = taskKey(item.tenant, item.taskId);
    const name = names.get(key);
    let changed = false;
    if (name !== undefined && task.name === '') {
      task.name = name;
      changed = true;
    }
    const claims = item.claims;
    const parent = parentOf(task.state.taskId, claims?.parentTaskId);
    if (parent !== undefined && task.parentId === '' && parent !== task.name) {
      task.parentId = parent;
      changed = true;
    }
    if (claims?.agentId !== undefined && !task.agentSettled && !task.learned) {
      if (claims.agentId !== task.state.agentId) task.standInAgentId = task.state.agentId;
      task.state.agentId = claims.agentId;
      task.agentSettled = true;
      changed = true;
      // Its first spans (a database call exported before the tool span around it) did not name the agent.
      if (claims.taskType === undefined) this.inferType(task);
    }
    if (
      claims?.taskType !== undefined &&
      (task.state.taskType === UNKNOWN_TASK_TYPE || task.typeInferred) &&
      !task.learned
    ) {
      changed ||= task.state.taskType !== claims.taskType;
      task.state.taskType = claims.taskType;
      task.typeInferred = false;
      this.traces.noteAgentType(task.state.tenant, task.state.agentId, claims.taskType);
      if (task.standInAgentId !== '')
        this.traces.noteAgentType(task.state.tenant, task.standInAgentId, claims.taskType);
    }
    if (changed) output.tasks.set(key, task);
  }
}
