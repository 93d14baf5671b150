/**
 * Which partition numbers the source's member owns, and the tasks it has seen on each (see source.ts,
 * Co-partitioning): each (re)assignment is reported to `onAssignment`, the tasks of the numbers it lost to
 * `onTasksReleased`.
 */
import { messageOf } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { KafkaSourceOptions } from './source.ts';
import type { TaskRef } from './span-record-decoding.ts';

export type OwnershipOptions = Pick<
  KafkaSourceOptions,
  'logger' | 'onAssignment' | 'onTasksReleased' | 'tasksPerPartitionMemory'
>;

export class PartitionOwnership {
  private readonly options: OwnershipOptions;
  private readonly logger: Logger;
  private readonly taskMemory: number;
  private assigned: number[] = [];
  /** Per partition number: tasks seen there (most recent last), for onTasksReleased. */
  private readonly tasksByNumber = new Map<number, Map<string, TaskRef>>();

  constructor(options: OwnershipOptions) {
    this.options = options;
    this.logger = options.logger;
    this.taskMemory = options.tasksPerPartitionMemory ?? 50_000;
  }

  /** Partition numbers this member owns now. */
  partitions(): number[] {
    return [...this.assigned];
  }

  /** This member owns the partition numbers `numbers` now (none once it left the group). */
  reassign(numbers: Set<number>, fields: Record<string, unknown>): void {
    const { options, logger } = this;
    const released: TaskRef[] = [];
    for (const n of this.assigned) {
      if (numbers.has(n)) continue;
      const tasks = this.tasksByNumber.get(n);
      if (tasks !== undefined) released.push(...tasks.values());
      this.tasksByNumber.delete(n);
    }
    const gained = [...numbers].filter((n) => !this.assigned.includes(n)).sort((a, b) => a - b);
    this.assigned = [...numbers].sort((a, b) => a - b);
    try {
      options.onAssignment?.({ partitions: [...this.assigned], gained });
    } catch (error) {
      logger.error({ err: messageOf(error) }, 'onAssignment failed');
    }
    logger.info(
      { partitions: this.assigned, ...fields, releasedTasks: released.length },
      numbers.size === 0 ? 'left the processor group' : 'joined the processor group',
    );
    if (released.length > 0) {
      try {
        options.onTasksReleased?.(released);
      } catch (error) {
        logger.error({ err: messageOf(error) }, 'onTasksReleased failed');
      }
    }
  }

  /** The processor holds these tasks from now on: they are released with their partition number. */
  remember(partition: number, tasks: readonly TaskRef[]): void {
    let map = this.tasksByNumber.get(partition);
    if (map === undefined) {
      map = new Map();
      this.tasksByNumber.set(partition, map);
    }
    for (const task of tasks) {
      const key = `${task.tenant}\u0000${task.taskId}`;
      map.delete(key);
      map.set(key, task);
    }
    while (map.size > this.taskMemory) {
      const oldest = map.keys().next().value;
      if (oldest === undefined) break;
      map.delete(oldest);
    }
  }
}
