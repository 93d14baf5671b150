/**
 * A scenario generator for SYNTHETIC agent workloads: labelled task plans for several task types with
 * realistic variance (including busy-but-normal tasks far above the median and a task type that appears
 * late), and attack patterns that unfold over a sequence of individually harmless calls.
 * Pure and seeded: the same seed gives the same plans. Used by the demo, the end-to-end tests, the
 * detector evaluation and the benchmarks. None of this data comes from real agents.
 */
import type { EventKind } from '../../schemas/conventions.ts';
import { ALL_ATTACK_PATTERNS, attackEvents, isInjectionPattern, isLoopPattern } from './attacks.ts';
import type { AttackPattern, ClassicPattern, LoopPattern } from './attacks.ts';
import { INJECTION_TASK_TYPES } from './injection.ts';
import { injectionTasks, mergeStreams } from './injection-scenario.ts';
import { benignModelCalls, data, heavy, int, pick, priv, rng, runawayModelCalls, tool } from './planned-events.ts';
import type { PlannedEvent, PlannedModelCall, Rand } from './planned-events.ts';

export {
  ALL_ATTACK_PATTERNS,
  ATTACK_PATTERNS,
  INJECTION_PATTERNS,
  LOOP_PATTERNS,
  QUIET_INJECTION,
  isInjectionPattern,
  isLoopPattern,
} from './attacks.ts';
export type { AttackPattern, ClassicPattern, InjectionPattern, LoopPattern } from './attacks.ts';
export { INJECTION_TASK_TYPES } from './injection.ts';
export { rng } from './planned-events.ts';
export type {
  PlannedDataAccess,
  PlannedEvent,
  PlannedModelCall,
  PlannedPrivilegeChange,
  PlannedToolCall,
} from './planned-events.ts';

export type TaskLabel = 'benign' | AttackPattern;

export interface TaskPlan {
  taskId: string;
  taskType: string;
  agentId: string;
  label: TaskLabel;
  events: PlannedEvent[];
  /** Index in `events` of the first malicious event (attacks only). */
  attackStartIndex?: number;
  /** Events sent with the task id after the task span ended (credentials used after the task ended). */
  afterEnd: PlannedEvent[];
  /** The task's model calls (GenAI `chat` spans), each after one of its events; absent: none. */
  modelCalls?: PlannedModelCall[];
}

export interface ScenarioOptions {
  seed: number;
  /** Benign tasks per task type. */
  benignPerType: number;
  /** Attack tasks per pattern. */
  attacksPerPattern: number;
  /** Agents per task type. */
  agentsPerType: number;
  /** Task types to use (default: all). */
  taskTypes?: readonly string[];
  patterns?: readonly AttackPattern[];
}

export interface TaskTypeModel {
  name: string;
  /** Builds the benign event sequence; `busy` asks for a long-but-normal task. */
  build(r: Rand, busy: boolean): PlannedEvent[];
}

export const TASK_TYPES: readonly TaskTypeModel[] = [
  {
    name: 'summarize_ticket',
    build(r, busy) {
      const events = [
        tool(r, 'search_tickets'),
        data(r, {
          namespace: 'helpdesk',
          collection: 'tickets',
          rows: int(r, 1, 6),
          bytes: int(r, 2_000, 20_000),
          classification: 'internal',
        }),
      ];
      const lookups = busy ? int(r, 4, 8) : int(r, 1, 2);
      for (let i = 0; i < lookups; i += 1) {
        events.push(
          tool(r, 'get_ticket'),
          data(r, {
            namespace: 'helpdesk',
            collection: 'tickets',
            rows: int(r, 1, 3),
            bytes: int(r, 1_000, 12_000),
            classification: 'internal',
          }),
        );
        if (r() < 0.3)
          events.push(
            data(r, {
              namespace: 'crm',
              collection: 'customers',
              rows: 1,
              bytes: int(r, 300, 900),
              classification: 'confidential',
            }),
          );
      }
      events.push(tool(r, 'summarize_text'), tool(r, 'post_comment', 'write', { target: 'helpdesk.internal' }));
      return events;
    },
  },
  {
    name: 'triage_alert',
    build(r, busy) {
      const events = [tool(r, 'get_alert')];
      const queries = busy ? int(r, 5, 10) : int(r, 1, 4);
      for (let i = 0; i < queries; i += 1) {
        events.push(
          tool(r, 'query_logs'),
          data(r, {
            system: 'clickhouse',
            namespace: 'siem',
            collection: 'logs',
            rows: heavy(r, 400, 1.2),
            bytes: heavy(r, 120_000, 1.2),
            classification: 'internal',
          }),
        );
        if (r() < 0.5) events.push(tool(r, 'lookup_ip', 'read', { target: 'threatintel.internal' }));
      }
      if (r() < 0.4) events.push(tool(r, 'create_incident', 'write', { target: 'pagerduty.internal' }));
      return events;
    },
  },
  {
    name: 'generate_report',
    build(r, busy) {
      const events: PlannedEvent[] = [];
      const queries = busy ? int(r, 4, 7) : int(r, 1, 3);
      for (let i = 0; i < queries; i += 1) {
        events.push(
          tool(r, 'run_query'),
          data(r, {
            system: 'clickhouse',
            namespace: 'warehouse',
            collection: pick(r, ['sales', 'orders_daily', 'inventory']),
            rows: heavy(r, 3_000, 1.0),
            bytes: heavy(r, 400_000, 1.0),
            classification: 'internal',
          }),
        );
      }
      if (r() < 0.3)
        events.push(
          priv(r, {
            action: 'token_issue',
            scopesBefore: ['reports:read'],
            scopesAfter: ['reports:read', 'reports:write'],
            resource: 'reports-bucket',
            approved: true,
          }),
        );
      events.push(tool(r, 'render_chart'), tool(r, 'write_file', 'write', { target: 'reports-bucket' }));
      return events;
    },
  },
  {
    name: 'code_review',
    build(r, busy) {
      const events = [tool(r, 'git_clone', 'read', { target: 'git.internal' })];
      if (r() < 0.5)
        events.push(
          priv(r, {
            action: 'assume_role',
            scopesBefore: ['repo:read'],
            scopesAfter: ['repo:read', 'ci:run'],
            resource: 'ci-runner',
            approved: true,
          }),
        );
      const files = busy ? int(r, 15, 30) : int(r, 3, 10);
      for (let i = 0; i < files; i += 1) {
        events.push(
          data(r, {
            system: undefined,
            file: `/repo/src/module_${int(r, 1, 40)}.ts`,
            operation: 'read',
            bytes: heavy(r, 6_000, 0.8),
            classification: 'internal',
          }),
        );
      }
      events.push(
        tool(r, 'run_tests', 'write', { target: 'ci.internal', error: r() < 0.1 }),
        tool(r, 'post_review', 'write', { target: 'git.internal' }),
      );
      return events;
    },
  },
  {
    name: 'customer_refund',
    build(r, busy) {
      const events = [
        tool(r, 'get_order'),
        data(r, {
          namespace: 'billing',
          collection: 'orders',
          rows: int(r, 1, 3),
          bytes: int(r, 500, 3_000),
          classification: 'confidential',
        }),
      ];
      events.push(
        data(r, {
          namespace: 'crm',
          collection: 'customers',
          rows: 1,
          bytes: int(r, 300, 900),
          classification: 'confidential',
        }),
      );
      events.push(tool(r, 'check_policy'));
      if (busy)
        for (let i = 0; i < int(r, 2, 4); i += 1)
          events.push(
            tool(r, 'get_order'),
            data(r, {
              namespace: 'billing',
              collection: 'orders',
              rows: int(r, 1, 3),
              bytes: int(r, 500, 3_000),
              classification: 'confidential',
            }),
          );
      events.push(
        priv(r, {
          action: 'elevate',
          scopesBefore: ['payments:read'],
          scopesAfter: ['payments:read', 'payments:refund'],
          resource: 'payments',
          approved: true,
        }),
      );
      events.push(
        tool(r, 'issue_refund', 'write', { target: 'payments.internal' }),
        tool(r, 'send_email', 'write', { target: 'smtp.internal' }),
      );
      return events;
    },
  },
  {
    // A new type that appears late in the mix: the detector must not revoke it while it warms up.
    name: 'onboarding_assistant',
    build(r, busy) {
      const events = [
        tool(r, 'get_employee'),
        data(r, {
          namespace: 'hr',
          collection: 'new_hires',
          rows: 1,
          bytes: int(r, 400, 1_200),
          classification: 'confidential',
        }),
      ];
      const steps = busy ? int(r, 4, 6) : int(r, 1, 3);
      for (let i = 0; i < steps; i += 1)
        events.push(
          tool(r, pick(r, ['create_account', 'assign_laptop', 'send_welcome_email']), 'write', {
            target: 'it.internal',
          }),
        );
      events.push(
        priv(r, {
          action: 'grant',
          scopesBefore: [],
          scopesAfter: ['wiki:read', 'chat:write'],
          resource: 'new-hire-account',
          approved: true,
        }),
      );
      return events;
    },
  },
];

export interface Scenario {
  /** Benign warm-up tasks first (per type, interleaved), then the evaluation mix. */
  tasks: TaskPlan[];
}

/**
 * Builds a labelled workload. Task types of the original mix (`TASK_TYPES`): the first `benignPerType` tasks of each
 * type are benign; attacks are spread through the second half of the timeline, each on a task type chosen
 * round-robin, by an agent of that type; the last task type of the list (in the order given) starts only halfway
 * through (a new type ramping up). Injection task types (`INJECTION_TASK_TYPES`, only when named in `taskTypes`) are
 * their own stream (injection-scenario.ts), from a PRNG of their own, merged in proportionally: the original mix's
 * tasks stay exactly what they were for the same seed. A pattern whose task type is not in the mix makes no task.
 */
export function generateScenario(options: ScenarioOptions): Scenario {
  const known = [...TASK_TYPES.map((type) => type.name), ...INJECTION_TASK_TYPES.map((type) => type.name)];
  for (const name of options.taskTypes ?? [])
    if (!known.includes(name)) throw new Error(`unknown task type ${name}; known: ${known.join(', ')}`);
  const types =
    options.taskTypes === undefined
      ? [...TASK_TYPES]
      : options.taskTypes.flatMap((name) => TASK_TYPES.filter((candidate) => candidate.name === name));
  const injectionTypes = (options.taskTypes ?? []).flatMap((name) =>
    INJECTION_TASK_TYPES.filter((candidate) => candidate.name === name),
  );
  const patterns = options.patterns ?? ALL_ATTACK_PATTERNS;
  const classic = patterns.filter(
    (pattern): pattern is ClassicPattern => !isInjectionPattern(pattern) && !isLoopPattern(pattern),
  );
  const loops = patterns.filter(isLoopPattern);
  const injected = patterns.filter(isInjectionPattern);
  const tasks = mergeStreams(
    classicTasks(options, types, types.length > 0 ? classic : []),
    loopTasks(options, types, loops),
  );
  return { tasks: mergeStreams(tasks, injectionTasks(options, injectionTypes, injected)) };
}

/**
 * The loop attacks (attacks.ts `LOOP_PATTERNS`), from a PRNG of their own: each on a task type of the original mix
 * chosen round-robin, after a benign prefix of that type, by one of its agents; merged into the mix proportionally.
 */
function loopTasks(
  options: ScenarioOptions,
  types: readonly TaskTypeModel[],
  patterns: readonly LoopPattern[],
): TaskPlan[] {
  if (types.length === 0 || patterns.length === 0) return [];
  const r = rng(options.seed * 7919 + 17);
  const tasks: TaskPlan[] = [];
  for (let i = 0; i < options.attacksPerPattern; i += 1) {
    patterns.forEach((pattern, index) => {
      const type = types[(i * patterns.length + index) % types.length] as TaskTypeModel;
      const prefix = type.build(r, false).slice(0, int(r, 1, 3));
      const attack = attackEvents(r, pattern);
      tasks.push({
        taskId: `task-${options.seed}-loop-${String(tasks.length + 1).padStart(6, '0')}`,
        taskType: type.name,
        agentId: `${type.name.replace(/_/g, '-')}-agent-${int(r, 1, options.agentsPerType)}`,
        label: pattern,
        events: [...prefix, ...attack.events],
        attackStartIndex: prefix.length,
        afterEnd: attack.afterEnd,
      });
    });
  }
  return tasks;
}

function classicTasks(
  options: ScenarioOptions,
  types: readonly TaskTypeModel[],
  patterns: readonly ClassicPattern[],
): TaskPlan[] {
  const r = rng(options.seed);
  let counter = 0;
  const taskId = (): string => {
    counter += 1;
    return `task-${options.seed}-${String(counter).padStart(6, '0')}`;
  };
  const agentOf = (type: string): string => `${type.replace(/_/g, '-')}-agent-${int(r, 1, options.agentsPerType)}`;

  const benign: TaskPlan[] = [];
  for (let round = 0; round < options.benignPerType; round += 1) {
    types.forEach((type, index) => {
      const lateType = index === types.length - 1 && types.length > 1;
      if (lateType && round < options.benignPerType / 2) return;
      const busy = r() < 0.08;
      const events = type.build(r, busy);
      benign.push({
        taskId: taskId(),
        taskType: type.name,
        agentId: agentOf(type.name),
        label: 'benign',
        events,
        afterEnd: [],
        // From a PRNG of their own (seeded by the task's number): the events stay what they were for the seed.
        modelCalls: benignModelCalls(options.seed * 1_000_003 + counter, events.length),
      });
    });
  }

  const attacks: TaskPlan[] = [];
  const attackTypes = types.filter((_, index) => index < types.length - 1 || types.length === 1);
  for (let i = 0; i < options.attacksPerPattern; i += 1) {
    patterns.forEach((pattern, index) => {
      const type = attackTypes[(i * patterns.length + index) % attackTypes.length] as TaskTypeModel;
      const prefix = type.build(r, false).slice(0, int(r, 1, 3));
      const attack = attackEvents(r, pattern);
      const id = taskId();
      const modelCalls = benignModelCalls(options.seed * 1_000_003 + counter, prefix.length);
      // A runaway model loop starts after the prefix's last event: that event is where the attack begins.
      if (pattern === 'runaway_spend') modelCalls.push(...runawayModelCalls(r, prefix.length - 1));
      attacks.push({
        taskId: id,
        taskType: type.name,
        agentId: agentOf(type.name),
        label: pattern,
        events: [...prefix, ...attack.events],
        ...(attack.events.length > 0 ? { attackStartIndex: prefix.length } : {}),
        ...(pattern === 'runaway_spend' ? { attackStartIndex: prefix.length - 1 } : {}),
        afterEnd: attack.afterEnd,
        modelCalls,
      });
    });
  }

  // Attacks are spread evenly through the second half so every type has warmed up before most of them.
  const tasks = [...benign];
  const half = Math.floor(tasks.length / 2);
  attacks.forEach((attack, index) => {
    const position = half + Math.floor(((index + 1) * (tasks.length - half)) / (attacks.length + 1)) + index;
    tasks.splice(Math.min(position, tasks.length), 0, attack);
  });
  return tasks;
}

export function eventKinds(plan: TaskPlan): Record<EventKind, number> {
  const counts: Record<EventKind, number> = { tool_call: 0, data_access: 0, privilege_change: 0 };
  for (const event of [...plan.events, ...plan.afterEnd]) counts[event.kind] += 1;
  return counts;
}
