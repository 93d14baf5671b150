/**
 * Approvals over the in-process ClickHouse engine (schemas/clickhouse/017_approvals.sql): a pending approval survives
 * a restart (the same call asked again finds it, not a new one), is approved and used after it, and the task's steps
 * read back in time order; a repeated write changes nothing.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { openClickHouseApprovalStore } from '../../../services/store/clickhouse/approval-store.ts';
import { adminHeaders, agentHeaders } from '../../helpers/auth.ts';
import { postJson, startTripline } from './helpers.ts';
import type { TestTripline } from './helpers.ts';

let tripline: TestTripline | undefined;

afterAll(async () => {
  await tripline?.stop();
});

async function post(url: string, headers: Record<string, string>, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return (await response.json()) as Record<string, unknown>;
}

describe('approvals in ClickHouse', () => {
  it('keeps a pending approval across a restart, then records its steps in order', async () => {
    let running = await startTripline();
    tripline = running;
    const started = await postJson(`${running.api}/v1/tasks`, {
      agentId: 'refund-agent-store',
      taskType: 'customer_refund',
      taskId: 'approvals-store-1',
      tools: ['issue_refund'],
      scopes: ['payments:refund'],
    });
    expect(started.status).toBe(201);
    const token = String(started.body.token);
    const check = () =>
      post(`${running.api}/v1/check`, agentHeaders, {
        token,
        tool: 'issue_refund',
        resource: 'payments',
        sideEffect: 'write',
        arguments: { amount: 700, order: 'o-7' },
      });
    // Arguments sent only in part can never be approved: the call is denied, not pending.
    const partial = await post(`${running.api}/v1/check`, agentHeaders, {
      token,
      tool: 'issue_refund',
      arguments: { amount: 700 },
      argumentsComplete: false,
    });
    expect(partial).toMatchObject({ decision: 'deny', policies: ['approval.large-refunds'] });
    expect(String(partial.reasons)).toContain('cannot be bound to an approval');
    const first = await check();
    expect(first).toMatchObject({ decision: 'pending' });
    const id = String(first.approvalId);

    await running.stop();
    running = await startTripline({}, {}, { database: running.database, keysDir: running.keysDir });
    tripline = running;
    // The same call after the restart is bound to the same approval.
    expect(await check()).toMatchObject({ decision: 'pending', approvalId: id });
    expect(await post(`${running.api}/v1/approvals/${id}/approve`, adminHeaders, { reason: 'ok' })).toMatchObject({
      status: 'approved',
    });
    expect(await check()).toMatchObject({ decision: 'allow', approvalId: id });

    const store = await openClickHouseApprovalStore({
      dataDir: running.env.TRIPLINE_DATA_DIR ?? '',
      database: running.database,
    });
    try {
      const steps = await store.listTaskApprovalSteps('default', 'approvals-store-1');
      expect(steps.map((step) => [step.step, step.approvalId])).toEqual([
        ['requested', id],
        ['approved', id],
        ['used', id],
      ]);
      expect(steps.map((step) => step.actor)).toEqual(['refund-agent-store', 'configured admin', 'refund-agent-store']);
      const approval = await store.getApproval('default', id);
      expect(approval).toMatchObject({
        status: 'used',
        taskId: 'approvals-store-1',
        arguments: '{"amount":700,"order":"o-7"}',
        policies: ['approval.large-refunds'],
      });
      expect(approval?.bindingHash).toMatch(/^[0-9a-f]{64}$/);
      // An older version written again does not win; the open set no longer holds it.
      if (approval === null) throw new Error('no approval');
      await store.upsertApprovals([{ ...approval, status: 'pending', version: 1 }]);
      expect((await store.getApproval('default', id))?.status).toBe('used');
      expect((await store.listOpenApprovals(Date.now())).map((row) => row.id)).not.toContain(id);
      expect((await store.listApprovals({ tenant: 'other', limit: 10 })).length).toBe(0);
    } finally {
      await store.close();
    }
  });
});
