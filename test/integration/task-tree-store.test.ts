/**
 * Task trees in the ClickHouse store (on the in-process engine): a task's declared parent round-trips
 * (migration 014, `tasks.parent_task_id`), `childTasks` finds the children of several parents, oldest first, within
 * its limit and the tenant, with their status following the revocations log as `getTask`'s does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualRevocation } from '../../services/core/decide.ts';
import { openClickHouseStore } from '../../services/store/clickhouse/store.ts';
import type { Store, TaskRecord } from '../../services/store/store.ts';

const DATA_DIR = mkdtempSync(join(tmpdir(), 'tripline-tree-store-'));
const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);

function task(taskId: string, startOffsetMs: number, overrides: Partial<TaskRecord> = {}): TaskRecord {
  return {
    tenant: 'acme',
    taskId,
    name: '',
    taskType: 'support',
    agentId: 'agent-1',
    status: 'active',
    score: 0,
    decision: 'allow',
    regime: 'rules',
    reasons: [],
    counts: { tool_call: 1, data_access: 0, privilege_change: 0 },
    startedMs: T0 + startOffsetMs,
    lastEventMs: T0 + startOffsetMs + 10,
    endedMs: null,
    version: (T0 + startOffsetMs) * 1000,
    ...overrides,
  };
}

describe('task trees in the ClickHouse store (chdb)', () => {
  let store: Store;

  beforeAll(async () => {
    store = await openClickHouseStore({ dataDir: DATA_DIR, database: 'trees' });
    await store.migrate();
  }, 120_000);

  afterAll(async () => {
    await store.close();
    rmSync(DATA_DIR, { recursive: true, force: true });
  });

  it('keeps the parent a task declared and lists the children of several parents', async () => {
    await store.upsertTasks([
      task('orch', 0),
      task('child-b', 20, { parentTaskId: 'orch' }),
      task('child-a', 10, { parentTaskId: 'orch' }),
      task('grandchild', 30, { parentTaskId: 'child-a' }),
      task('other-tenant-child', 5, { tenant: 'globex', parentTaskId: 'orch' }),
      task('unrelated', 40),
    ]);
    expect((await store.getTask('acme', 'child-a'))?.parentTaskId).toBe('orch');
    expect((await store.getTask('acme', 'orch'))?.parentTaskId).toBeUndefined();
    const children = await store.childTasks('acme', ['orch'], 10);
    expect(children.map((child) => child.taskId)).toEqual(['child-a', 'child-b']);
    expect(children[0]).toMatchObject({ parentTaskId: 'orch', status: 'active', taskType: 'support' });
    expect((await store.childTasks('acme', ['orch', 'child-a'], 10)).map((child) => child.taskId)).toEqual([
      'child-a',
      'child-b',
      'grandchild',
    ]);
    expect((await store.childTasks('acme', ['orch'], 1)).map((child) => child.taskId)).toEqual(['child-a']);
    expect(await store.childTasks('acme', ['nobody'], 10)).toEqual([]);
    expect((await store.childTasks('globex', ['orch'], 10)).map((child) => child.taskId)).toEqual([
      'other-tenant-child',
    ]);
  });

  it("follows the revocations log for a child's status", async () => {
    const record = task('child-c', 50, { parentTaskId: 'orch-2' });
    await store.upsertTasks([record]);
    await store.insertRevocations([
      manualRevocation(record, 'revoke', 'alice', 'its parent went wrong', 0, T0 + 60_000),
    ]);
    expect((await store.childTasks('acme', ['orch-2'], 10))[0]?.status).toBe('revoked');
  });
});
