/**
 * Shared set-up for the detection integration tests: a real ClickHouse engine (chdb) store, a real processor
 * (createProcessor), the API app with the detection routes registered on it, and SYNTHETIC tasks from the
 * scenario generator turned into events (services/evaluation/plan-events.ts).
 */
import { adminHeaders, testAccess } from '../../helpers/auth.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { generateScenario } from '../../../collectors/simulator/scenarios.ts';
import type { AttackPattern } from '../../../collectors/simulator/scenarios.ts';
import { DEFAULT_TENANT, buildApiApp } from '../../../services/api/app.ts';
import { detectionRoutes } from '../../../services/api/detection-routes.ts';
import { DEFAULT_DETECTOR_CONFIG, describeBaseline } from '../../../services/core/detect/index.ts';
import type { DetectorConfig } from '../../../services/core/detect/index.ts';
import { createFeedback } from '../../../services/detection/feedback.ts';
import type { Feedback } from '../../../services/detection/feedback.ts';
import { planEvents } from '../../../services/evaluation/plan-events.ts';
import type { LabelledTask } from '../../../services/evaluation/plan-events.ts';
import { createLocalKillSwitch } from '../../../services/killswitch/kill-switch.ts';
import { createProcessor } from '../../../services/processor/processor.ts';
import type { Processor } from '../../../services/processor/processor.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import { openClickHouseStore } from '../../../services/store/clickhouse/store.ts';
import { createDetectionQueries, openDetectionClient } from '../../../services/store/clickhouse/detection-queries.ts';
import type { DetectionQueries } from '../../../services/store/clickhouse/detection-queries.ts';
import type { Store } from '../../../services/store/store.ts';
import type { ClickHouseClient } from '@clickhouse/client';

export const TENANT = DEFAULT_TENANT;
export const logger = createLogger('silent');

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface Harness {
  dataDir: string;
  database: string;
  store: Store;
  client: ClickHouseClient;
  queries: DetectionQueries;
  processor: Processor;
  feedback: Feedback;
  app: FastifyInstance;
  detector: DetectorConfig;
  close(): Promise<void>;
}

export async function startHarness(
  dataDir: string,
  database: string,
  detector: Partial<DetectorConfig> = {},
  now?: () => number,
): Promise<Harness> {
  const config: DetectorConfig = { ...DEFAULT_DETECTOR_CONFIG, ...detector };
  const store = await openClickHouseStore({ dataDir, database, logger });
  await store.migrate();
  const client = openDetectionClient({ dataDir });
  const queries = createDetectionQueries(client, database);
  const processor = await createProcessor({
    store,
    killSwitch: createLocalKillSwitch(),
    detector: config,
    logger,
    taskIdleTimeoutMs: 600_000,
  });
  const feedback = createFeedback({ store, queries, baselines: () => processor.baselines() });
  const book = processor.baselines();
  const access = await testAccess();
  const app = buildApiApp({
    access: access.api,
    store,
    commands: processor,
    logger,
    detectorStatus: (tenant, taskType) =>
      Promise.resolve({
        regime: (book.get(tenant, taskType)?.tasks ?? 0) >= config.warmupTasks ? 'type_baseline' : 'rules',
        baselineTasks: book.get(tenant, taskType)?.tasks ?? 0,
        warmupTasks: config.warmupTasks,
      }),
    baselines: (tenant) =>
      Promise.resolve(
        book.list(tenant).map((entry) => ({
          taskType: entry.taskType,
          tasks: entry.baseline.tasks,
          regime: 'rules' as const,
          normal: describeBaseline(entry.baseline),
        })),
      ),
    ready: () => Promise.resolve({ ready: true, checks: {} }),
  });
  await app.register(detectionRoutes, {
    feedback,
    queries,
    baselines: () => processor.baselines(),
    warmupTasks: config.warmupTasks,
    agentWarmupTasks: config.agentWarmupTasks,
    ...(now === undefined ? {} : { now }),
  });
  await app.ready();
  let closing: Promise<void> | undefined;
  return {
    dataDir,
    database,
    store,
    client,
    queries,
    processor,
    feedback,
    app,
    detector: config,
    close() {
      closing ??= (async () => {
        await app.close();
        await processor.stop();
        await client.close();
        await store.close();
      })();
      return closing;
    },
  };
}

/** Tasks from the scenario generator as events, starting at `startMs` (one clock per agent). */
export function tasksOf(options: {
  seed: number;
  taskTypes: string[];
  benignPerType: number;
  attacksPerPattern?: number;
  patterns?: AttackPattern[];
  agentsPerType?: number;
  startMs: number;
}): LabelledTask[] {
  const plans = generateScenario({
    seed: options.seed,
    benignPerType: options.benignPerType,
    attacksPerPattern: options.attacksPerPattern ?? 0,
    agentsPerType: options.agentsPerType ?? 2,
    taskTypes: options.taskTypes,
    ...(options.patterns === undefined ? {} : { patterns: options.patterns }),
  }).tasks;
  return planEvents(plans, { tenant: TENANT, startMs: options.startMs });
}

/** Run a task through the processor as the pipeline would: its events and its end, then events after the end. */
export async function runTask(
  processor: Processor,
  task: LabelledTask,
  options: { end?: boolean } = {},
): Promise<void> {
  await processor.handle({ events: task.events, boundaries: options.end === false ? [] : [task.boundary] });
  if (task.afterEnd.length > 0) await processor.handle({ events: task.afterEnd, boundaries: [] });
}

export function renameTask(task: LabelledTask, taskId: string): LabelledTask {
  const rename = <T extends { taskId: string; id?: string }>(item: T): T => ({
    ...item,
    taskId,
    ...(item.id === undefined ? {} : { id: `${item.id}-${taskId}` }),
  });
  return {
    ...task,
    taskId,
    events: task.events.map(rename),
    afterEnd: task.afterEnd.map(rename),
    boundary: { ...task.boundary, taskId },
  };
}

export async function json(
  app: FastifyInstance,
  method: 'GET' | 'POST',
  url: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await app.inject({
    method,
    url,
    headers: adminHeaders,
    ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
  });
  return { status: response.statusCode, body: response.json<Record<string, unknown>>() };
}
