/**
 * The evaluation through the real pipeline: Tripline embedded (`startEmbedded`: OTLP receiver → classifier →
 * in-process bus → processor → ClickHouse store → API) and the scenario's tasks run by real agent processes
 * (`runFleet`, each agent its own `@opentelemetry/sdk-node` exporting OTLP/HTTP). The verdicts are read back
 * from ClickHouse.
 *
 * Order: the processor learns a task when it completes, so what a task is scored against depends on which tasks
 * completed before it. Tasks run in waves in the scenario's order, and a wave ends (its agents exit and the bus
 * drains) before the next starts. A wave holds at most one task per task type, so tasks in one wave cannot
 * teach each other's baselines; a task whose type may still be warming up (scored in the rules regime, which
 * also reads the fleet-wide baseline every type teaches) runs alone. So the pipeline sees the same sequence of
 * baselines as the replay, which runs the tasks one by one.
 *
 * The agents run the plans in real time scaled by `FLEET_TIME_SCALE` (run-plan.ts), so the pipeline's events
 * are compressed in time; the replay it is compared with uses the same scale. Escalation to the agent (a kill
 * switch policy, not a detector decision) is turned off: it would revoke an agent's benign tasks after its
 * attacks were revoked, and this run measures the detector.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runFleet } from '../../collectors/simulator/fleet.ts';
import type { TaskPlan } from '../../collectors/simulator/scenarios.ts';
import type { AgentEvent, TaskBoundary } from '../../schemas/events.ts';
import { loadConfig } from '../app/config.ts';
import type { TriplineConfig } from '../app/config.ts';
import { startEmbedded } from '../app/embedded.ts';
import { createLogger } from '../shared/logger.ts';
import type { LogLevel } from '../app/config.ts';
import type { ScoredEvent, Store, TaskRecord } from '../store/store.ts';
import type { LabelledTask } from './plan-events.ts';
import type { EventDecision, TaskOutcome } from './replay.ts';

export const PIPELINE_TENANT = 'default';
/** The simulated agents' real time per planned time (the default of `runPlans` in collectors/simulator/run-plan.ts). */
export const FLEET_TIME_SCALE = 0.01;
/** How long to wait for the processor's writes to reach the store after the last wave. */
const DURABLE_TIMEOUT_MS = 120_000;

export interface PipelineOptions {
  plans: readonly TaskPlan[];
  /** `learnedBefore[i]`: tasks of plan i's type learned before it, per the replay; decides which tasks run alone. */
  learnedBefore: readonly number[];
  warmupTasks: number;
  agentWarmupTasks: number;
  /** Extra environment for Tripline's config (thresholds…). */
  env?: Record<string, string>;
  logLevel?: LogLevel;
  /** Most agent processes at once. @default 6 */
  concurrency?: number;
  onWave?: (done: number, total: number, tasks: number) => void;
}

export interface PipelineRun {
  /** The tasks as the pipeline stored them (events as classified, boundaries from the task records). */
  tasks: LabelledTask[];
  /** The stored verdicts per task. */
  outcomes: TaskOutcome[];
  /** The order the tasks ran in: waves of plan indexes. */
  waves: number[][];
  config: Readonly<TriplineConfig>;
  wallMs: number;
}

/**
 * Waves in plan order: a new wave starts when the next task's type is already in the current one, and a task
 * whose type has fewer than `warmupTasks + 2` learned tasks runs alone.
 */
export function planWaves(
  plans: readonly TaskPlan[],
  learnedBefore: readonly number[],
  warmupTasks: number,
): number[][] {
  const waves: number[][] = [];
  let current: number[] = [];
  const types = new Set<string>();
  const flush = (): void => {
    if (current.length > 0) waves.push(current);
    current = [];
    types.clear();
  };
  plans.forEach((plan, index) => {
    const solo = (learnedBefore[index] ?? 0) < warmupTasks + 2;
    if (solo || types.has(plan.taskType)) flush();
    current.push(index);
    types.add(plan.taskType);
    if (solo) flush();
  });
  flush();
  return waves;
}

export async function runThroughPipeline(options: PipelineOptions): Promise<PipelineRun> {
  const started = Date.now();
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-evaluation-'));
  const config = loadConfig({
    ...process.env,
    ...options.env,
    TRIPLINE_DATA_DIR: dataDir,
    TRIPLINE_OTLP_HOST: '127.0.0.1',
    TRIPLINE_OTLP_PORT: '0',
    TRIPLINE_API_HOST: '127.0.0.1',
    TRIPLINE_API_PORT: '0',
    TRIPLINE_WARMUP_TASKS: String(options.warmupTasks),
    TRIPLINE_AGENT_WARMUP_TASKS: String(options.agentWarmupTasks),
    TRIPLINE_TASK_IDLE_TIMEOUT_MS: '86400000',
    TRIPLINE_ESCALATION_REVOCATIONS: '0',
    // Replays are bursty by design; the tenant's ingest limit is not what is evaluated.
    TRIPLINE_TENANT_SPANS_PER_SECOND: '10000000',
  });
  const running = await startEmbedded(config, createLogger(options.logLevel ?? 'warn'));
  try {
    const { token } = await running.auth.control.createToken({
      tenant: PIPELINE_TENANT,
      role: 'agent',
      name: 'evaluation agents',
      createdBy: 'evaluation',
    });
    const waves = planWaves(options.plans, options.learnedBefore, options.warmupTasks);
    for (const [index, wave] of waves.entries()) {
      const plans = wave.map((i) => options.plans[i]).filter((plan): plan is TaskPlan => plan !== undefined);
      await runFleet({ endpoint: running.otlpUrl, plans, token, concurrency: options.concurrency ?? 6 });
      // Every agent of the wave has exited after its exporter was answered, i.e. after the bus took its spans.
      await running.bus.drained();
      options.onWave?.(index + 1, waves.length, plans.length);
    }
    // The processor may answer the bus before its writes are durable: wait until the store holds every task's end
    // and every event sent.
    await waitForStore(running.store, options.plans);
    const tasks: LabelledTask[] = [];
    const outcomes: TaskOutcome[] = [];
    for (const plan of options.plans) {
      const record = await running.store.getTask(PIPELINE_TENANT, plan.taskId);
      const stored = await running.store.eventsForTask(PIPELINE_TENANT, plan.taskId);
      const { task, outcome } = storedTask(plan, record, stored);
      tasks.push(task);
      outcomes.push(outcome);
    }
    return { tasks, outcomes, waves, config, wallMs: Date.now() - started };
  } finally {
    await running.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function waitForStore(store: Store, plans: readonly TaskPlan[]): Promise<void> {
  const deadline = Date.now() + DURABLE_TIMEOUT_MS;
  const expected = new Map(plans.map((plan) => [plan.taskId, plan.events.length + plan.afterEnd.length]));
  const events = [...expected.values()].reduce((sum, n) => sum + n, 0);
  for (;;) {
    const records: TaskRecord[] = [];
    const ids = [...expected.keys()];
    for (let i = 0; i < ids.length; i += 500)
      records.push(...(await store.getTasks(PIPELINE_TENANT, ids.slice(i, i + 500))));
    const done = records.filter(
      (r) =>
        r.endedMs !== null &&
        r.counts.tool_call + r.counts.data_access + r.counts.privilege_change === expected.get(r.taskId),
    ).length;
    const stored = (await store.counts()).events;
    if (done === expected.size && stored >= events) return;
    if (Date.now() > deadline)
      throw new Error(
        `the store holds ${String(done)} of ${String(expected.size)} tasks complete and ${String(stored)} of ${String(events)} events after ${String(DURABLE_TIMEOUT_MS)} ms`,
      );
    await sleep(100);
  }
}

/** A plan's task as stored: its events split at the planned count (the rest came after the end). */
function storedTask(
  plan: TaskPlan,
  record: TaskRecord | null,
  stored: readonly ScoredEvent[],
): { task: LabelledTask; outcome: TaskOutcome } {
  if (record === null) throw new Error(`task ${plan.taskId} (${plan.label}) never reached the store`);
  const expected = plan.events.length + plan.afterEnd.length;
  if (stored.length !== expected)
    throw new Error(`task ${plan.taskId} (${plan.label}): ${stored.length} events stored, ${expected} sent`);
  if (record.endedMs === null) throw new Error(`task ${plan.taskId} (${plan.label}) has no end in the store`);
  const events: AgentEvent[] = stored.map((row) => row.event);
  const first = events[0];
  const boundary: TaskBoundary = {
    tenant: record.tenant,
    taskId: record.taskId,
    taskType: record.taskType,
    agentId: record.agentId,
    traceId: first?.traceId ?? '',
    spanId: '',
    startMs: record.startedMs,
    endMs: record.endedMs,
    error: false,
    ends: true,
  };
  const attackStart =
    plan.label === 'benign'
      ? undefined
      : (plan.attackStartIndex ?? (plan.afterEnd.length > 0 ? plan.events.length : undefined));
  const task: LabelledTask = {
    taskId: plan.taskId,
    taskType: plan.taskType,
    agentId: plan.agentId,
    label: plan.label,
    events: events.slice(0, plan.events.length),
    boundary,
    afterEnd: events.slice(plan.events.length),
    attackStart,
  };
  const decisions: EventDecision[] = stored.map(({ verdict }) => ({
    score: verdict.score,
    decision: verdict.decision,
    regime: verdict.regime,
    reasons: verdict.contributions.slice(0, 3).map((c) => c.reason),
  }));
  return {
    task,
    outcome: {
      taskId: plan.taskId,
      taskType: plan.taskType,
      agentId: plan.agentId,
      label: plan.label,
      attackStart,
      decisions,
      times: events.map((event) => ({ startMs: event.startMs, endMs: event.endMs })),
    },
  };
}
