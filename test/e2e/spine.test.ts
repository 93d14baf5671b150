/**
 * The spine end to end, the way a user runs it: `npm start` (as a child process) on the embedded defaults,
 * real `@opentelemetry/sdk-node` agents (one process each) exporting OTLP/HTTP, the detector warming up on
 * benign tasks, then a rogue task revoked with its reasons; the rows in ClickHouse; a restart keeps them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFleet } from '../../collectors/simulator/fleet.ts';
import { generateScenario } from '../../collectors/simulator/scenarios.ts';
import type { TaskPlan } from '../../collectors/simulator/scenarios.ts';
import { openClickHouseStore } from '../../services/store/clickhouse/store.ts';
import { startTriplineProcess } from '../helpers/tripline-process.ts';
import type { TriplineProcess } from '../helpers/tripline-process.ts';
import { waitFor } from '../helpers/wait.ts';

const TYPES = ['summarize_ticket', 'triage_alert', 'generate_report'];
const WARMUP = 8;

// The tokens Tripline prints at first start, as a new user copies them from the terminal.
const tokens = { admin: '', agent: '' };

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { headers: { authorization: `Bearer ${tokens.admin}` } });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('the spine: agent span → detection → revocation, embedded', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-'));
  const env = {
    TRIPLINE_DATA_DIR: dataDir,
    TRIPLINE_WARMUP_TASKS: String(WARMUP),
    LOG_LEVEL: 'info',
    TRIPLINE_TASK_IDLE_TIMEOUT_MS: '600000',
  };
  let tripline: TriplineProcess;
  // The last type of a scenario starts late (a new type ramping up); list it last so it still warms up.
  const warmup = generateScenario({
    seed: 11,
    benignPerType: WARMUP + 2,
    attacksPerPattern: 0,
    agentsPerType: 2,
    taskTypes: [...TYPES, 'customer_refund'],
  }).tasks;
  const mixed = generateScenario({
    seed: 12,
    benignPerType: 2,
    attacksPerPattern: 0,
    agentsPerType: 2,
    taskTypes: TYPES,
  }).tasks;
  const rogue = generateScenario({
    seed: 13,
    benignPerType: 0,
    attacksPerPattern: 1,
    agentsPerType: 1,
    taskTypes: ['summarize_ticket'],
    patterns: ['exfiltration_burst'],
  }).tasks[0] as TaskPlan;
  rogue.agentId = 'rogue-agent-1';
  const benign = [...warmup, ...mixed];
  const eventsSent = [...benign, rogue].reduce((sum, plan) => sum + plan.events.length, 0);

  beforeAll(async () => {
    tripline = await startTriplineProcess(env);
    tokens.admin = /admin \(API, all of it\)\s+(tl_\S+)/.exec(tripline.output())?.[1] ?? '';
    tokens.agent = /agent \(OTLP ingest\)\s+(tl_\S+)/.exec(tripline.output())?.[1] ?? '';
    await runFleet({ endpoint: tripline.otlpUrl, plans: warmup, token: tokens.agent });
    await waitFor('the warm-up tasks to complete', async () => {
      const { body } = await getJson(`${tripline.apiUrl}/v1/baselines`);
      const items = body.items as { taskType: string; tasks: number }[];
      return TYPES.every((type) => (items.find((item) => item.taskType === type)?.tasks ?? 0) >= WARMUP);
    });
    await runFleet({ endpoint: tripline.otlpUrl, plans: [...mixed, rogue], token: tokens.agent });
  }, 240_000);

  afterAll(async () => {
    await tripline.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('shows its first tokens once at first start and never writes them to the log', () => {
    expect(tokens.admin).toMatch(/^tl_[\w-]{43}$/);
    expect(tokens.agent).toMatch(/^tl_[\w-]{43}$/);
    const logLines = tripline
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'));
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.filter((line) => line.includes(tokens.admin) || line.includes(tokens.agent))).toEqual([]);
  });

  it('revokes the rogue task and says why', async () => {
    const task = await waitFor('the rogue task to be revoked', async () => {
      const { status, body } = await getJson(`${tripline.apiUrl}/v1/tasks/${rogue.taskId}`);
      return status === 200 && body.status === 'revoked' ? body : undefined;
    });
    expect(task.regime).toBe('type_baseline');
    expect(task.score).toBeGreaterThanOrEqual(80);
    expect((task.reasons as string[]).join(' ')).toMatch(/crm\.customers/);
    expect(task.detector).toMatchObject({ regime: 'type_baseline', warmupTasks: WARMUP });

    const { body } = await getJson(`${tripline.apiUrl}/v1/revocations?task_id=${rogue.taskId}`);
    const items = body.items as Record<string, unknown>[];
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({
      taskId: rogue.taskId,
      agentId: 'rogue-agent-1',
      action: 'revoke',
      source: 'detector',
    });
    expect((items[0]?.reasons as string[]).length).toBeGreaterThan(0);

    const alerts = await getJson(`${tripline.apiUrl}/v1/alerts?task_id=${rogue.taskId}`);
    expect((alerts.body.items as unknown[]).length).toBeGreaterThan(0);
  });

  it('leaves every benign task alone', async () => {
    for (const plan of mixed) {
      const task = await waitFor(`benign task ${plan.taskId} to complete`, async () => {
        const { status, body } = await getJson(`${tripline.apiUrl}/v1/tasks/${plan.taskId}`);
        return status === 200 && body.status !== 'active' ? body : undefined;
      });
      expect(task.status, `${plan.taskType} ${plan.taskId}: ${JSON.stringify(task.reasons)}`).toBe('completed');
    }
    const { body } = await getJson(`${tripline.apiUrl}/v1/revocations?limit=1000`);
    expect((body.items as { taskId: string }[]).map((item) => item.taskId)).toEqual([rogue.taskId]);
  });

  it('keeps the rows in ClickHouse across a restart', async () => {
    await tripline.stop();
    const store = await openClickHouseStore({ dataDir, database: 'tripline' });
    try {
      const counts = await store.counts();
      expect(counts.events).toBe(eventsSent);
      expect(counts.revocations).toBe(1);
      expect(counts.tasks).toBe(benign.length + 1);
    } finally {
      await store.close();
    }
    tripline = await startTriplineProcess(env);
    expect(tripline.output()).not.toContain('made its first tokens');
    const { body } = await getJson(`${tripline.apiUrl}/v1/tasks/${rogue.taskId}`);
    expect(body.status).toBe('revoked');
    const revocations = await getJson(`${tripline.apiUrl}/v1/revocations?task_id=${rogue.taskId}`);
    expect(revocations.body.items as unknown[]).toHaveLength(1);
  });
});
