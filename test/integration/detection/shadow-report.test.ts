/**
 * The shadow-mode report over the real ClickHouse engine and a real processor: one task type in shadow mode,
 * another live; the same attack on both; GET /v1/shadow-report says what shadow mode would have done, by type.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shadowReport } from '../../../services/detection/shadow-report.ts';
import { rebuildBaselines } from '../../../services/learner/rebuild.ts';
import type { ShadowTypeReport } from '../../../services/detection/shadow-report.ts';
import type { LabelledTask } from '../../../services/evaluation/plan-events.ts';
import { TENANT, json, runTask, startHarness, tasksOf, tempDir } from './fixtures.ts';
import type { Harness } from './fixtures.ts';

const START = Date.UTC(2026, 3, 1);
const WARMUP = 8;

describe('shadow report', () => {
  const dataDir = tempDir('tripline-shadow-');
  let h: Harness;
  let tasks: LabelledTask[];
  let end = START;

  beforeAll(async () => {
    h = await startHarness(
      dataDir,
      `shadow_${String(process.pid)}`,
      { warmupTasks: WARMUP, perTaskType: { triage_alert: { shadow: true } } },
      () => end + 60_000,
    );
    // Three types (the last starts late); one exfiltration on summarize_ticket (live), one on triage_alert (shadow).
    tasks = tasksOf({
      seed: 5,
      taskTypes: ['summarize_ticket', 'triage_alert', 'generate_report'],
      benignPerType: 14,
      attacksPerPattern: 2,
      patterns: ['exfiltration_burst'],
      startMs: START,
    });
    for (const task of tasks) {
      await runTask(h.processor, task);
      end = Math.max(end, task.boundary.endMs);
    }
  });

  afterAll(async () => {
    await h.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const attackOn = (taskType: string): LabelledTask => {
    const task = tasks.find((t) => t.label === 'exfiltration_burst' && t.taskType === taskType);
    if (task === undefined) throw new Error(`no attack on ${taskType}`);
    return task;
  };

  it('the live type revokes; the shadow type records the decision and does not act', async () => {
    expect(await h.store.getTask(TENANT, attackOn('summarize_ticket').taskId)).toMatchObject({
      status: 'revoked',
      decision: 'revoke',
    });
    expect(await h.store.getTask(TENANT, attackOn('triage_alert').taskId)).toMatchObject({
      status: 'completed',
      decision: 'revoke',
    });
    expect(
      (await h.store.listRevocations({ tenant: TENANT, taskId: attackOn('triage_alert').taskId, limit: 10 })).items,
    ).toEqual([]);
  });

  it('reports what shadow mode would have done, by task type', async () => {
    const { status, body } = await json(
      h.app,
      'GET',
      `/v1/shadow-report?from=${String(START)}&to=${new Date(end + 1).toISOString()}`,
    );
    expect(status).toBe(200);
    const byType = new Map((body.byTaskType as ShadowTypeReport[]).map((r) => [r.taskType, r]));
    const triage = byType.get('triage_alert');
    expect(triage).toMatchObject({
      wouldRevoke: 1,
      wouldAlert: 0,
      revoked: 0,
      tasks: tasks.filter((t) => t.taskType === 'triage_alert').length,
    });
    expect(triage?.examples[0]).toMatchObject({ taskId: attackOn('triage_alert').taskId, decision: 'revoke' });
    expect(triage?.examples[0]?.reasons.join(' ')).toMatch(/crm\.customers/);
    expect(byType.get('summarize_ticket')).toMatchObject({ wouldRevoke: 0, revoked: 1, examples: [] });
    expect(byType.get('generate_report')).toMatchObject({ wouldRevoke: 0, wouldAlert: 0, revoked: 0, alerted: 0 });
    expect(body.totals).toMatchObject({ tasks: tasks.length, wouldRevoke: 1, revoked: 1 });
    // By default the report covers the last 24 hours before now.
    expect((await json(h.app, 'GET', '/v1/shadow-report')).body.totals).toEqual(body.totals);
  });

  it('shadow mode learns the task it would have revoked (as the processor does); the learner can keep it out', async () => {
    const online = h.processor.baselines().get(TENANT, 'triage_alert')?.tasks ?? 0;
    expect((await rebuildBaselines(h.queries)).book.get(TENANT, 'triage_alert')?.tasks).toBe(online);
    expect(
      (await rebuildBaselines(h.queries, { shadowAlertsBlock: true })).book.get(TENANT, 'triage_alert')?.tasks,
    ).toBe(online - 1);
  });

  it('filters by task type and time range', async () => {
    const only = await json(
      h.app,
      'GET',
      `/v1/shadow-report?from=${String(START)}&to=${String(end + 1)}&task_type=triage_alert`,
    );
    expect((only.body.byTaskType as ShadowTypeReport[]).map((r) => r.taskType)).toEqual(['triage_alert']);
    const before = await shadowReport(h.queries, { tenant: TENANT, fromMs: START - 86_400_000, toMs: START - 1 });
    expect(before.totals).toEqual({ tasks: 0, wouldRevoke: 0, wouldAlert: 0, revoked: 0, alerted: 0 });
    expect(before.byTaskType).toEqual([]);
  });

  it('needs an API token', async () => {
    expect((await h.app.inject({ method: 'GET', url: '/v1/shadow-report' })).statusCode).toBe(401);
    expect((await h.app.inject({ method: 'GET', url: '/v1/baselines/summarize_ticket' })).statusCode).toBe(401);
  });

  it('rejects bad times', async () => {
    expect((await json(h.app, 'GET', '/v1/shadow-report?from=yesterday')).status).toBe(400);
    expect((await json(h.app, 'GET', `/v1/shadow-report?from=${String(START + 10)}&to=${String(START)}`)).status).toBe(
      400,
    );
  });
});
