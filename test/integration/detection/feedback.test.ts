/**
 * Operator feedback over the real ClickHouse engine and a real processor: an alert marked as a false positive
 * (POST /v1/alerts/:id/false-positive) makes the task's behaviour normal for its type — learned into the
 * type's, the agent's and the fleet's baselines, saved, visible in GET /v1/baselines/:taskType — and the
 * same behaviour no longer alerts. Marking twice learns once.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateScenario } from '../../../collectors/simulator/scenarios.ts';
import type { TaskPlan } from '../../../collectors/simulator/scenarios.ts';
import { FLEET_TASK_TYPE, parseBaseline } from '../../../services/core/detect/index.ts';
import { planEvents } from '../../../services/evaluation/plan-events.ts';
import type { LabelledTask } from '../../../services/evaluation/plan-events.ts';
import { TENANT, json, runTask, startHarness, tasksOf, tempDir } from './fixtures.ts';
import type { Harness } from './fixtures.ts';

const START = Date.UTC(2026, 2, 1);
const WARMUP = 8;

/** A benign summarize_ticket task that also translates the ticket: a tool the type has never used. */
function translating(taskId: string, startMs: number, seed: number, tool = 'translate_text'): LabelledTask {
  const plan = generateScenario({
    seed,
    benignPerType: 1,
    attacksPerPattern: 0,
    agentsPerType: 1,
    taskTypes: ['summarize_ticket'],
  }).tasks[0] as TaskPlan;
  plan.taskId = taskId;
  plan.events.splice(2, 0, { kind: 'tool_call', tool, sideEffect: 'read', gapMs: 700, durationMs: 300 });
  const [task] = planEvents([plan], { tenant: TENANT, startMs });
  if (task === undefined) throw new Error('no task');
  return task;
}

describe('false-positive feedback', () => {
  const dataDir = tempDir('tripline-feedback-');
  let h: Harness;
  let alertId: string;

  beforeAll(async () => {
    // Revoke at 90 so the unseen (read-only) tool alerts rather than revokes.
    h = await startHarness(dataDir, `feedback_${String(process.pid)}`, { warmupTasks: WARMUP, revokeThreshold: 90 });
    for (const task of tasksOf({
      seed: 3,
      taskTypes: ['summarize_ticket'],
      benignPerType: WARMUP + 4,
      agentsPerType: 1,
      startMs: START,
    }))
      await runTask(h.processor, task);
  });

  afterAll(async () => {
    await h.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('the unusual but benign task alerts and is not learned', async () => {
    const before = h.processor.baselines().get(TENANT, 'summarize_ticket')?.tasks ?? 0;
    expect(before).toBe(WARMUP + 4);
    await runTask(h.processor, translating('translate-1', START + 3_600_000, 101));
    const alerts = await h.store.listAlerts({ tenant: TENANT, taskId: 'translate-1', limit: 10 });
    expect(alerts.items.map((alert) => alert.decision)).toEqual(['alert']);
    expect(alerts.items[0]?.reasons.join(' ')).toMatch(/translate_text/);
    alertId = alerts.items[0]?.id ?? '';
    expect(h.processor.baselines().get(TENANT, 'summarize_ticket')?.tasks).toBe(before);
  });

  it('marking the alert a false positive learns the task into the type, agent and fleet baselines and saves them', async () => {
    const book = h.processor.baselines();
    const agentId = (await h.store.getTask(TENANT, 'translate-1'))?.agentId ?? '';
    const counts = [
      book.get(TENANT, 'summarize_ticket'),
      book.get(TENANT, 'summarize_ticket', agentId),
      book.get(TENANT, FLEET_TASK_TYPE),
    ].map((b) => b?.tasks ?? 0);

    const { status, body } = await json(h.app, 'POST', `/v1/alerts/${alertId}/false-positive`, {
      reason: 'translation is part of the job now',
      actor: 'alice',
    });
    expect(status).toBe(201);
    expect(body).toMatchObject({
      created: true,
      feedback: {
        taskId: 'translate-1',
        taskType: 'summarize_ticket',
        alertId,
        actor: 'alice (via configured admin)',
        reason: 'translation is part of the job now',
        kind: 'false_positive',
      },
      baseline: { taskType: 'summarize_ticket', tasks: (counts[0] ?? 0) + 1, falsePositivesLearned: 1 },
    });
    expect(
      [
        book.get(TENANT, 'summarize_ticket'),
        book.get(TENANT, 'summarize_ticket', agentId),
        book.get(TENANT, FLEET_TASK_TYPE),
      ].map((b) => b?.tasks ?? 0),
    ).toEqual(counts.map((n) => n + 1));
    expect(book.get(TENANT, 'summarize_ticket')?.tools.translate_text?.tasks).toBe(1);

    // Saved: the stored baselines carry the learned task and the count of false positives.
    const stored = (await h.store.loadBaselines(TENANT)).filter(
      (record) => record.taskType === 'summarize_ticket' || record.taskType === FLEET_TASK_TYPE,
    );
    const typeModel = stored.find((record) => record.taskType === 'summarize_ticket' && record.agentId === '');
    expect(typeModel === undefined ? undefined : parseBaseline(typeModel.model).falsePositivesLearned).toBe(1);
    expect(stored.find((record) => record.agentId === agentId)?.tasks).toBe((counts[1] ?? 0) + 1);
    expect(stored.find((record) => record.taskType === FLEET_TASK_TYPE)?.tasks).toBe((counts[2] ?? 0) + 1);
  });

  it('shows the feedback in the baseline', async () => {
    const { status, body } = await json(h.app, 'GET', '/v1/baselines/summarize_ticket');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      taskType: 'summarize_ticket',
      regime: 'type_baseline',
      warmupTasks: WARMUP,
      falsePositivesLearned: 1,
    });
    const normal = body.normal as { falsePositivesLearned: number; tools: { tool: string; tasks: number }[] };
    expect(normal.falsePositivesLearned).toBe(1);
    expect(normal.tools.find((tool) => tool.tool === 'translate_text')?.tasks).toBe(1);
    expect((body.agents as unknown[]).length).toBeGreaterThan(0);
  });

  it('marks a task once however often its alert is marked', async () => {
    const before = h.processor.baselines().get(TENANT, 'summarize_ticket')?.tasks;
    const again = await json(h.app, 'POST', `/v1/alerts/${alertId}/false-positive`, { reason: 'again', actor: 'bob' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ created: false, feedback: { actor: 'alice (via configured admin)' } });
    expect(h.processor.baselines().get(TENANT, 'summarize_ticket')?.tasks).toBe(before);
    expect(await h.queries.listFeedback(TENANT)).toHaveLength(1);
  });

  it('the same behaviour no longer alerts', async () => {
    await runTask(h.processor, translating('translate-2', START + 7_200_000, 202));
    const task = await h.store.getTask(TENANT, 'translate-2');
    expect(task).toMatchObject({ status: 'completed', decision: 'allow' });
    expect((await h.store.listAlerts({ tenant: TENANT, taskId: 'translate-2', limit: 10 })).items).toEqual([]);
  });

  it('answers 404 for an unknown alert, 409 while the task runs, 400 without a reason', async () => {
    expect((await json(h.app, 'POST', '/v1/alerts/no-such-alert/false-positive', { reason: 'x' })).status).toBe(404);
    const running = translating('translate-running', START + 9_000_000, 303, 'detect_language');
    await runTask(h.processor, running, { end: false });
    const alert = (await h.store.listAlerts({ tenant: TENANT, taskId: 'translate-running', limit: 10 })).items[0];
    if (alert === undefined) throw new Error('the running task did not alert');
    const conflict = await json(h.app, 'POST', `/v1/alerts/${alert.id}/false-positive`, { reason: 'fine' });
    expect(conflict.status).toBe(409);
    expect(conflict.body).toMatchObject({ error: { code: 'CONFLICT' } });
    expect((await json(h.app, 'POST', `/v1/alerts/${alert.id}/false-positive`, {})).status).toBe(400);
    expect((await json(h.app, 'GET', '/v1/baselines/no_such_type')).status).toBe(404);
  });
});
