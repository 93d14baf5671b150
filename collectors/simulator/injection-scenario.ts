/**
 * The injection stream of a SYNTHETIC workload (./injection.ts), and how it joins the original mix.
 *
 * The issue that asked for it measures injections "after N benign warm-up tasks per type", so the stream follows
 * that protocol: `benignPerType` benign rounds (one task per injection type each), then `attacksPerPattern`
 * evaluation rounds, each with one more benign task per type and one attack per pattern, in a seeded order. Its own
 * PRNG (derived from the seed) and task ids (`task-<seed>-i…`) keep the original mix's tasks unchanged.
 */
import { QUIET_INJECTION } from './attacks.ts';
import type { InjectionPattern } from './attacks.ts';
import type { InjectionTypeModel } from './injection.ts';
import { int, rng } from './planned-events.ts';
import type { Rand } from './planned-events.ts';
import type { ScenarioOptions, TaskPlan } from './scenarios.ts';

/** Share of benign injection tasks that are busy (several rounds of work), as in the original mix. */
const BUSY_SHARE = 0.08;
const STREAM_SALT = 0x5bd1e995;

function shuffle<T>(r: Rand, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i -= 1) {
    const j = int(r, 0, i);
    const tmp = items[i] as T;
    items[i] = items[j] as T;
    items[j] = tmp;
  }
  return items;
}

export function injectionTasks(
  options: ScenarioOptions,
  types: readonly InjectionTypeModel[],
  patterns: readonly InjectionPattern[],
): TaskPlan[] {
  if (types.length === 0) return [];
  const r = rng((options.seed ^ STREAM_SALT) >>> 0);
  let counter = 0;
  const taskId = (): string => {
    counter += 1;
    return `task-${options.seed}-i${String(counter).padStart(6, '0')}`;
  };
  const agentOf = (type: string): string => `${type.replace(/_/g, '-')}-agent-${int(r, 1, options.agentsPerType)}`;
  const benign = (type: InjectionTypeModel): TaskPlan => ({
    taskId: taskId(),
    taskType: type.name,
    agentId: agentOf(type.name),
    label: 'benign',
    events: type.build(r, r() < BUSY_SHARE),
    afterEnd: [],
  });
  const tasks: TaskPlan[] = [];
  for (let round = 0; round < options.benignPerType; round += 1) for (const type of types) tasks.push(benign(type));
  const attacked = patterns.flatMap((pattern) => types.filter((type) => type.pattern === pattern));
  const quiet = patterns.includes(QUIET_INJECTION);
  const attack = (type: InjectionTypeModel, label: InjectionPattern): TaskPlan => {
    const planned = type.attack(r, label === QUIET_INJECTION);
    return {
      taskId: taskId(),
      taskType: type.name,
      agentId: agentOf(type.name),
      label,
      events: planned.events,
      attackStartIndex: planned.attackStartIndex,
      afterEnd: [],
    };
  };
  for (let round = 0; round < options.attacksPerPattern; round += 1) {
    const mix = types.map(benign);
    for (const type of attacked) mix.push(attack(type, type.pattern));
    if (quiet) mix.push(attack(types[round % types.length] as InjectionTypeModel, QUIET_INJECTION));
    tasks.push(...shuffle(r, mix));
  }
  return tasks;
}

/**
 * Both streams in one timeline, each in its own order: task i of a stream of n sits at (i + 1) / (n + 1) of the
 * timeline (the original mix first on a tie).
 */
export function mergeStreams(first: readonly TaskPlan[], second: readonly TaskPlan[]): TaskPlan[] {
  if (second.length === 0) return [...first];
  if (first.length === 0) return [...second];
  const out: TaskPlan[] = [];
  let i = 0;
  let j = 0;
  while (i < first.length || j < second.length) {
    const a = (i + 1) / (first.length + 1);
    const b = (j + 1) / (second.length + 1);
    if (j >= second.length || (i < first.length && a <= b)) out.push(first[i++] as TaskPlan);
    else out.push(second[j++] as TaskPlan);
  }
  return out;
}
