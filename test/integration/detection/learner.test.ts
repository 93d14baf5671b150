/**
 * The learner over the real ClickHouse engine: it rebuilds from history exactly the baselines a real processor
 * learned online (completed tasks that never alerted and were never revoked), includes tasks an operator marked
 * false positive, and runs as `node services/learner/main.ts` with Tripline's environment.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeBaseline, parseBaseline } from '../../../services/core/detect/index.ts';
import type { LabelledTask } from '../../../services/evaluation/plan-events.ts';
import { rebuildBaselines } from '../../../services/learner/rebuild.ts';
import type { BaselineBook } from '../../../services/processor/baseline-book.ts';
import { openClickHouseStore } from '../../../services/store/clickhouse/store.ts';
import { TENANT, logger, runTask, startHarness, tasksOf, tempDir } from './fixtures.ts';
import type { Harness } from './fixtures.ts';

const START = Date.UTC(2026, 4, 1);
const WARMUP = 8;
const LEARNER = fileURLToPath(new URL('../../../services/learner/main.ts', import.meta.url));

function described(book: BaselineBook): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const entry of book.list())
    out[`${entry.tenant}/${entry.taskType}/${entry.agentId}`] = describeBaseline(entry.baseline);
  return out;
}

function runLearner(
  env: Record<string, string>,
  args: string[] = [],
): Promise<{ code: number | null; lines: Record<string, unknown>[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LEARNER, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('exit', (code) => {
      const lines = out
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      resolve({ code, lines });
    });
  });
}

describe('the learner', () => {
  const dataDir = tempDir('tripline-learner-');
  const database = `learner_${String(process.pid)}`;
  let h: Harness;
  let tasks: LabelledTask[];

  beforeAll(async () => {
    h = await startHarness(dataDir, database, { warmupTasks: WARMUP });
    tasks = tasksOf({
      seed: 9,
      taskTypes: ['summarize_ticket', 'triage_alert', 'customer_refund'],
      benignPerType: 14,
      attacksPerPattern: 1,
      patterns: ['exfiltration_burst', 'unseen_tool', 'lateral_movement'],
      startMs: START,
    });
    for (const task of tasks) await runTask(h.processor, task);
  });

  afterAll(async () => {
    await h.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('rebuilds exactly the baselines the processor learned online', async () => {
    const flagged = (await h.store.listAlerts({ tenant: TENANT, limit: 1000 })).items.map((alert) => alert.taskId);
    expect(new Set(flagged).size).toBeGreaterThanOrEqual(3);
    const rebuilt = await rebuildBaselines(h.queries, { pageSize: 7 });
    expect(rebuilt.tasks).toBe(tasks.length - new Set(flagged).size);
    expect(rebuilt.falsePositives).toBe(0);
    expect(described(rebuilt.book)).toEqual(described(h.processor.baselines()));
  });

  it('includes tasks marked false positive, and shows how many', async () => {
    const alert = (await h.store.listAlerts({ tenant: TENANT, limit: 1000 })).items.find(
      (item) => tasks.find((t) => t.taskId === item.taskId)?.label === 'unseen_tool',
    );
    if (alert === undefined) throw new Error('no alert on the unseen-tool attack');
    const marked = await h.feedback.markFalsePositive({
      tenant: TENANT,
      alertId: alert.id,
      actor: 'carol',
      reason: 'the new tool is approved',
    });
    expect(marked.created).toBe(true);
    const rebuilt = await rebuildBaselines(h.queries, { tenant: TENANT });
    expect(rebuilt.falsePositives).toBe(1);
    expect(rebuilt.book.get(TENANT, alert.taskType)?.falsePositivesLearned).toBe(1);
    expect(described(rebuilt.book)).toEqual(described(h.processor.baselines()));
    expect(await rebuildBaselines(h.queries, { tenant: 'someone-else' })).toMatchObject({ tasks: 0 });
  });

  it('runs as `node services/learner/main.ts` with the same environment and saves the baselines', async () => {
    const expected = described((await rebuildBaselines(h.queries)).book);
    const savedBefore = await h.store.loadBaselines(TENANT);
    await h.close(); // one process holds an embedded data directory at a time
    const env = { TRIPLINE_DATA_DIR: dataDir, CLICKHOUSE_DATABASE: database, LOG_LEVEL: 'info' };

    const dry = await runLearner(env, ['--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.lines.find((line) => typeof line.saved === 'boolean')).toMatchObject({
      msg: 'rebuilt the baselines (dry run: nothing saved)',
      saved: false,
      falsePositives: 1,
    });

    const run = await runLearner(env);
    expect(run.code, JSON.stringify(run.lines)).toBe(0);
    expect(run.lines.find((line) => typeof line.saved === 'boolean')).toMatchObject({
      msg: 'rebuilt and saved the baselines',
      saved: true,
      falsePositives: 1,
    });
    expect(run.lines.filter((line) => line.msg === 'baseline rebuilt').map((line) => line.taskType)).toContain(
      'summarize_ticket',
    );

    const store = await openClickHouseStore({ dataDir, database, logger });
    try {
      const saved = await store.loadBaselines(TENANT);
      expect(saved.length).toBe(savedBefore.length);
      const book: Record<string, unknown> = {};
      for (const record of saved)
        book[`${record.tenant}/${record.taskType}/${record.agentId}`] = describeBaseline(parseBaseline(record.model));
      expect(book).toEqual(expected);
      const before = new Map(savedBefore.map((record) => [`${record.taskType}/${record.agentId}`, record.updatedMs]));
      for (const record of saved)
        expect(record.updatedMs).toBeGreaterThan(before.get(`${record.taskType}/${record.agentId}`) ?? 0);
    } finally {
      await store.close();
    }
  });

  it('rejects unknown arguments with exit code 2', async () => {
    const bad = await runLearner({ TRIPLINE_DATA_DIR: dataDir, CLICKHOUSE_DATABASE: database }, ['--bogus']);
    expect(bad.code).toBe(2);
  });
});
