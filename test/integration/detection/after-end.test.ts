/**
 * Credentials used after the task ended (a hard rule of the detector) through a real processor and the real
 * ClickHouse engine: revoked when the late events arrive after the task's end; and — a known processor defect —
 * also when the task's end and the late events arrive in one batch (an agent that keeps acting right after its
 * task span ended exports both in one request).
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabelledTask } from '../../../services/evaluation/plan-events.ts';
import { TENANT, runTask, startHarness, tasksOf, tempDir } from './fixtures.ts';
import type { Harness } from './fixtures.ts';

const START = Date.UTC(2026, 5, 1);

describe('credentials used after the task ended', () => {
  const dataDir = tempDir('tripline-after-end-');
  let h: Harness;
  let attacks: LabelledTask[];

  beforeAll(async () => {
    h = await startHarness(dataDir, `after_end_${String(process.pid)}`, { warmupTasks: 6 });
    const tasks = tasksOf({
      seed: 13,
      taskTypes: ['summarize_ticket'],
      benignPerType: 10,
      attacksPerPattern: 2,
      patterns: ['post_task_credentials'],
      startMs: START,
    });
    attacks = tasks.filter((task) => task.label === 'post_task_credentials');
    for (const task of tasks) if (task.label === 'benign') await runTask(h.processor, task);
  });

  afterAll(async () => {
    await h.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('revokes when the late events arrive after the task ended', async () => {
    const [task] = attacks;
    if (task === undefined) throw new Error('no attack');
    await h.processor.handle({ events: task.events, boundaries: [task.boundary] });
    await h.processor.handle({ events: task.afterEnd, boundaries: [] });
    const record = await h.store.getTask(TENANT, task.taskId);
    expect(record).toMatchObject({ status: 'revoked', decision: 'revoke' });
    expect(record?.reasons.join(' ')).toMatch(/after the task ended/);
  });

  // Known defect in services/processor/processor.ts: `handle` scores all of a batch's events before it applies
  // the batch's task ends, so late events that share a batch with their task's end are scored as if the task
  // were still running (and the task is then learned as normal). Fix: end a task before scoring its own events
  // that started after that end (docs/detection.md). When the fix lands this fails: turn `it.fails` into `it`.
  it('revokes when the task end and the late events arrive in one batch', async () => {
    const task = attacks[1];
    if (task === undefined) throw new Error('no attack');
    await h.processor.handle({ events: [...task.events, ...task.afterEnd], boundaries: [task.boundary] });
    expect(await h.store.getTask(TENANT, task.taskId)).toMatchObject({ status: 'revoked', decision: 'revoke' });
  });
});
