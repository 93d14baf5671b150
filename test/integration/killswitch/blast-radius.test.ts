/**
 * Blast radius: revoking a task revokes that task's credentials and leases only — not the same agent's other
 * tasks, not other agents'. Repeated revocations of one agent within the window escalate to that agent (all its
 * tasks revoked, no new tokens, an `escalation` event on the stream), never to an unrelated agent; when the
 * revoked tasks all acted for one end user, only that end user's tasks of the agent. Manual kill and restore are
 * audited with actor and reason, and a restore re-issues nothing by itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../../schemas/events.ts';
import { waitFor } from '../../helpers/wait.ts';
import { getJson, introspect, postJson, readStreamUntil, revocationsOf, startTripline } from './helpers.ts';
import type { TestTripline } from './helpers.ts';
import { adminHeaders } from '../../helpers/auth.ts';

let tripline: TestTripline;
let eventCounter = 0;

beforeAll(async () => {
  tripline = await startTripline({
    TRIPLINE_ESCALATION_REVOCATIONS: '2',
    TRIPLINE_ESCALATION_WINDOW_MS: '60000',
    TRIPLINE_ESCALATION_BLOCK_MS: '60000',
  });
  for (const [name, value] of [
    ['payments-api-key', 'pk_1'],
    ['helpdesk-api-token', 'hd_1'],
  ]) {
    await fetch(`${tripline.api}/v1/secrets/${name}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...adminHeaders },
      body: JSON.stringify({ value }),
    });
  }
});

afterAll(async () => {
  await tripline.stop();
});

interface Started {
  taskId: string;
  token: string;
  leaseId: string;
}

async function start(
  agentId: string,
  taskId: string,
  taskType = 'customer_refund',
  claims: { endUser?: string } = {},
): Promise<Started> {
  const tools = taskType === 'customer_refund' ? ['get_order'] : ['get_ticket'];
  const scopes = taskType === 'customer_refund' ? ['payments:refund'] : [];
  const { status, body } = await postJson(`${tripline.api}/v1/tasks`, {
    agentId,
    taskType,
    taskId,
    tools,
    scopes,
    ...claims,
  });
  expect(status, JSON.stringify(body)).toBe(201);
  const token = body.token as string;
  const secret = taskType === 'customer_refund' ? 'payments-api-key' : 'helpdesk-api-token';
  const lease = await postJson(`${tripline.api}/v1/leases`, { secret }, { authorization: `Bearer ${token}` });
  expect(lease.status, JSON.stringify(lease.body)).toBe(201);
  return { taskId, token, leaseId: lease.body.leaseId as string };
}

/** Feeds the processor the offending event (an unapproved admin scope: a hard rule) for the task. */
async function offend(
  agentId: string,
  taskId: string,
  taskType = 'customer_refund',
  attributes: AgentEvent['attributes'] = {},
): Promise<void> {
  eventCounter += 1;
  const now = Date.now();
  const event: AgentEvent = {
    id: `offence-${eventCounter}`,
    tenant: 'default',
    kind: 'privilege_change',
    taskId,
    taskType,
    agentId,
    traceId: `trace-${eventCounter}`,
    spanId: `span-${eventCounter}`,
    parentSpanId: '',
    name: 'privilege elevate',
    startMs: now - 5,
    endMs: now,
    error: false,
    privilege: {
      action: 'elevate',
      scopesBefore: ['payments:read'],
      scopesAfter: ['payments:read', 'admin'],
      approved: false,
    },
    attributes,
  };
  await tripline.running.processor.handle({ events: [event], boundaries: [] });
}

/** Feeds the processor an ordinary read for the task, its spans naming the end user. */
async function touch(agentId: string, taskId: string, endUser: string): Promise<void> {
  eventCounter += 1;
  const now = Date.now();
  const event: AgentEvent = {
    id: `touch-${eventCounter}`,
    tenant: 'default',
    kind: 'tool_call',
    taskId,
    taskType: 'customer_refund',
    agentId,
    traceId: `trace-touch-${taskId}`,
    spanId: `span-${eventCounter}`,
    parentSpanId: '',
    name: 'execute_tool get_order',
    startMs: now - 5,
    endMs: now,
    error: false,
    tool: { name: 'get_order', sideEffect: 'read' },
    attributes: { 'enduser.id': endUser },
  };
  await tripline.running.processor.handle({ events: [event], boundaries: [] });
}

async function active(token: string): Promise<boolean> {
  return (await introspect(tripline.api, token)).active === true;
}

/** The built-in store's leases: revoked at Tripline only (the value handed out still works at its system). */
const REVOKED = 'revoked_at_tripline_only';

async function leaseStatus(leaseId: string): Promise<string> {
  return (await getJson(`${tripline.api}/v1/leases/${leaseId}`)).body.status as string;
}

describe('blast radius', () => {
  it('revoking one task kills that task’s credentials and leases only', async () => {
    const a1 = await start('agent-a', 'a-task-1');
    const a2 = await start('agent-a', 'a-task-2');
    const b1 = await start('agent-b', 'b-task-1');
    await offend('agent-a', 'a-task-1');

    expect(await active(a1.token)).toBe(false);
    await waitFor('a-task-1 lease to be revoked', async () => (await leaseStatus(a1.leaseId)) === REVOKED);
    expect(await active(a2.token)).toBe(true);
    expect(await active(b1.token)).toBe(true);
    expect(await leaseStatus(a2.leaseId)).toBe('active');
    expect(await leaseStatus(b1.leaseId)).toBe('active');
    // The same agent still starts other tasks (one revocation is not an escalation).
    expect(
      (
        await postJson(`${tripline.api}/v1/tasks`, {
          agentId: 'agent-a',
          taskType: 'customer_refund',
          taskId: 'a-task-3',
          tools: ['get_order'],
        })
      ).status,
    ).toBe(201);
  });

  it('escalates to the agent after repeated revocations, never to another agent', async () => {
    const stream = await fetch(`${tripline.api}/v1/stream?agent_id=agent-a&types=escalation`, {
      headers: { accept: 'text/event-stream', ...adminHeaders },
    });
    const escalationEvent = readStreamUntil(stream, 'event: escalation');
    const a3 = (
      await postJson(`${tripline.api}/v1/tasks`, {
        agentId: 'agent-a',
        taskType: 'customer_refund',
        taskId: 'a-task-4',
        tools: ['get_order'],
      })
    ).body.token as string;
    const b2 = await start('agent-b', 'b-task-2');

    // The second revocation of agent-a within the window.
    await offend('agent-a', 'a-task-2');

    const others = await waitFor('agent-a’s other tasks to be revoked by escalation', async () => {
      const items = [
        ...(await revocationsOf(tripline.api, 'a-task-3')),
        ...(await revocationsOf(tripline.api, 'a-task-4')),
      ];
      return items.length === 2 ? items : undefined;
    });
    for (const item of others)
      expect(item).toMatchObject({ action: 'revoke', actor: 'tripline/escalation', agentId: 'agent-a' });
    expect(others[0]?.reason).toMatch(/escalated to agent agent-a: 2 of its tasks were revoked/);
    expect(await active(a3)).toBe(false);

    const refused = await postJson(`${tripline.api}/v1/tasks`, {
      agentId: 'agent-a',
      taskType: 'customer_refund',
      taskId: 'a-task-5',
      tools: ['get_order'],
    });
    expect(refused.status).toBe(403);
    expect((refused.body.error as { code: string }).code).toBe('AGENT_BLOCKED');

    // agent-b is untouched: its tokens and leases live, it starts new tasks.
    expect(await active(b2.token)).toBe(true);
    expect(await leaseStatus(b2.leaseId)).toBe('active');
    expect(
      (
        await postJson(`${tripline.api}/v1/tasks`, {
          agentId: 'agent-b',
          taskType: 'customer_refund',
          taskId: 'b-task-3',
          tools: ['get_order'],
        })
      ).status,
    ).toBe(201);
    expect(
      (await revocationsOf(tripline.api, 'b-task-1')).length + (await revocationsOf(tripline.api, 'b-task-2')).length,
    ).toBe(0);

    const text = await escalationEvent;
    expect(text).toMatch(
      /event: escalation\nid: escalation-agent-a-\d+\ndata: \{"agentId":"agent-a","taskIds":\["a-task-1","a-task-2"\]/,
    );
  });

  it("escalates a shared agent only for the end user its revoked tasks share: other people's work goes on", async () => {
    const stream = await fetch(`${tripline.api}/v1/stream?agent_id=agent-s&types=escalation`, {
      headers: { accept: 'text/event-stream', ...adminHeaders },
    });
    const escalationEvent = readStreamUntil(stream, 'event: escalation');
    await start('agent-s', 's-u1-1', 'customer_refund', { endUser: 'u1' });
    await start('agent-s', 's-u1-2', 'customer_refund', { endUser: 'u1' });
    const u1Other = await start('agent-s', 's-u1-3', 'customer_refund', { endUser: 'u1' });
    const u2 = await start('agent-s', 's-u2-1', 'customer_refund', { endUser: 'u2' });
    const unnamed = await start('agent-s', 's-none-1');
    await touch('agent-s', 's-u1-3', 'u1');
    await touch('agent-s', 's-u2-1', 'u2');

    await offend('agent-s', 's-u1-1', 'customer_refund', { 'enduser.id': 'u1' });
    await offend('agent-s', 's-u1-2', 'customer_refund', { 'enduser.id': 'u1' });

    const [byEscalation] = await waitFor('u1’s other task to be revoked by escalation', async () => {
      const items = await revocationsOf(tripline.api, 's-u1-3');
      return items.length === 1 ? items : undefined;
    });
    expect(byEscalation).toMatchObject({ actor: 'tripline/escalation', agentId: 'agent-s' });
    expect(byEscalation?.reason).toMatch(/escalated to agent agent-s for end user u1: 2 of its tasks were revoked/);
    expect(await active(u1Other.token)).toBe(false);
    expect(await active(u2.token)).toBe(true);
    expect(await active(unnamed.token)).toBe(true);
    expect(await revocationsOf(tripline.api, 's-u2-1')).toHaveLength(0);

    const ask = (taskId: string, claims: Record<string, string>) =>
      postJson(`${tripline.api}/v1/tasks`, {
        agentId: 'agent-s',
        taskType: 'customer_refund',
        taskId,
        tools: ['get_order'],
        ...claims,
      });
    const refused = await ask('s-u1-4', { endUser: 'u1' });
    expect(refused.status).toBe(403);
    expect((refused.body.error as { code: string; message: string }).message).toMatch(/for end user u1/);
    expect((await ask('s-u2-2', { endUser: 'u2' })).status).toBe(201);
    expect((await ask('s-none-2', {})).status).toBe(201);
    // Asking again for a task started for u1, now naming someone else, does not get round the block.
    const again = await ask('s-u1-3', { endUser: 'u2' });
    expect((again.body.error as { code: string }).code).toBe('AGENT_BLOCKED');

    expect(await escalationEvent).toMatch(/"taskIds":\["s-u1-1","s-u1-2"\].*"scope":\{"endUser":"u1"\}/);
  });

  it('audits a manual kill and restore with actor and reason; a restore re-issues nothing', async () => {
    const task = await start('agent-c', 'c-task-1', 'summarize_ticket');
    const kill = await postJson(`${tripline.api}/v1/tasks/c-task-1/revoke`, {
      reason: 'customer complaint #4411',
      actor: 'bob@example.com',
    });
    expect(kill.status).toBe(201);
    expect(kill.body).toMatchObject({
      action: 'revoke',
      source: 'manual',
      actor: 'bob@example.com (via configured admin)',
      reason: 'customer complaint #4411',
    });
    expect(await active(task.token)).toBe(false);
    await waitFor('the lease to be revoked', async () => (await leaseStatus(task.leaseId)) === REVOKED);
    const credentialsBefore = (await getJson(`${tripline.api}/v1/tasks/c-task-1/credentials`)).body.items as unknown[];

    const restore = await postJson(`${tripline.api}/v1/tasks/c-task-1/restore`, {
      reason: 'complaint was about another bot',
      actor: 'carol@example.com',
    });
    expect(restore.status).toBe(201);
    expect(restore.body).toMatchObject({
      action: 'restore',
      source: 'manual',
      actor: 'carol@example.com (via configured admin)',
      reason: 'complaint was about another bot',
    });
    await tripline.running.auth.audit.flush();
    const auditRows = (await getJson(`${tripline.api}/v1/audit?limit=1000`)).body.items as {
      route: string;
      target: { taskId?: string };
      actor: string;
      role: string;
      reason: string;
      status: number;
    }[];
    const trail = auditRows
      .filter((row) => row.target.taskId === 'c-task-1')
      .map(({ route, actor, role, reason, status }) => ({ route, actor, role, reason, status }));
    expect(trail).toEqual([
      {
        route: '/v1/tasks/:taskId/restore',
        actor: 'configured admin',
        role: 'admin',
        reason: 'complaint was about another bot',
        status: 201,
      },
      {
        route: '/v1/tasks/:taskId/revoke',
        actor: 'configured admin',
        role: 'admin',
        reason: 'customer complaint #4411',
        status: 201,
      },
    ]);

    // Nothing comes back by itself: the old token stays dead, the lease stays revoked, no credential was issued.
    expect(await active(task.token)).toBe(false);
    expect(await leaseStatus(task.leaseId)).toBe(REVOKED);
    await tripline.running.enforcement.flush();
    const credentialsAfter = (await getJson(`${tripline.api}/v1/tasks/c-task-1/credentials`)).body;
    expect(credentialsAfter.items).toEqual(credentialsBefore.map((item) => ({ ...(item as object), active: false })));
    expect(credentialsAfter.revoked).toBe(false);
    // The task may ask again, through the policy, and gets a new token.
    const fresh = await postJson(`${tripline.api}/v1/tasks`, {
      agentId: 'agent-c',
      taskType: 'summarize_ticket',
      taskId: 'c-task-1',
      tools: ['get_ticket'],
    });
    expect(fresh.status).toBe(201);
    expect(await active(fresh.body.token as string)).toBe(true);

    const audit = await revocationsOf(tripline.api, 'c-task-1');
    expect(audit.map((item) => [item.action, item.actor, item.reason])).toEqual([
      ['restore', 'carol@example.com (via configured admin)', 'complaint was about another bot'],
      ['revoke', 'bob@example.com (via configured admin)', 'customer complaint #4411'],
    ]);
    const stored = await tripline.running.store.listRevocations({ tenant: 'default', taskId: 'c-task-1', limit: 10 });
    expect(stored.items).toHaveLength(2);
    expect((await getJson(`${tripline.api}/v1/tasks/c-task-1`)).body.status).not.toBe('revoked');
  });
});
