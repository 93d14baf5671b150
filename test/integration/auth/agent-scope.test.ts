/**
 * What a bound agent token sees and may do about other agents' tasks (issue 14): on `/v1/stream` it hears of its
 * own agents' tasks only (live and in the connect snapshot), without alerts' and revocations' reasons; `/v1/check`
 * denies another agent's task without describing it; and only a token of the agent a revocation is about can
 * acknowledge it. Through a running embedded Tripline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders } from '../../helpers/auth.ts';
import { postJson, readStreamUntil, startTripline } from '../killswitch/helpers.ts';
import type { TestTripline } from '../killswitch/helpers.ts';

let tripline: TestTripline;
const tokens = { a: '', b: '' };
const revocationIds = { a: '', b: '' };

async function agentToken(name: string, agents: string[]): Promise<string> {
  const { status, body } = await postJson(
    `${tripline.api}/v1/admin/tokens`,
    { role: 'agent', name, agents },
    adminHeaders,
  );
  expect(status, JSON.stringify(body)).toBe(201);
  return body.token as string;
}

async function start(token: string, agentId: string, taskId: string): Promise<void> {
  const { status, body } = await postJson(
    `${tripline.api}/v1/tasks`,
    { agentId, taskType: 'summarize_ticket', taskId, tools: ['get_ticket'] },
    { authorization: `Bearer ${token}` },
  );
  expect(status, JSON.stringify(body)).toBe(201);
}

async function kill(taskId: string): Promise<string> {
  const { status, body } = await postJson(
    `${tripline.api}/v1/tasks/${taskId}/revoke`,
    { reason: `evidence about ${taskId}` },
    adminHeaders,
  );
  expect(status, JSON.stringify(body)).toBe(201);
  return body.id as string;
}

function subscribe(token: string, query: string): Promise<Response> {
  return fetch(`${tripline.api}/v1/stream?${query}`, { headers: { authorization: `Bearer ${token}` } });
}

beforeAll(async () => {
  tripline = await startTripline();
  tokens.a = await agentToken('agent a', ['agent-a']);
  tokens.b = await agentToken('agent b', ['agent-b']);
  await start(tokens.a, 'agent-a', 'a-task');
  await start(tokens.b, 'agent-b', 'b-task');
});

afterAll(async () => {
  await tripline.stop();
});

describe('a bound agent token and other agents’ tasks', () => {
  it('hears of its own agents’ tasks only on the stream, without reasons', async () => {
    // Subscribed to everything of the tenant it may see.
    const stream = await subscribe(tokens.b, 'types=revocation,alert');
    expect(stream.status).toBe(200);
    const heard = readStreamUntil(stream, '"taskId":"b-task"');
    revocationIds.a = await kill('a-task');
    revocationIds.b = await kill('b-task');
    const text = await heard;
    expect(text).toContain('event: revocation');
    expect(text).not.toContain('a-task');
    expect(text).not.toContain('"reasons"');
    expect(text).not.toContain('agent-a');
    // Connecting later, naming the other agent and its task: the snapshot holds nothing of them.
    const later = await subscribe(tokens.b, 'types=revocation,escalation&task_id=a-task&agent_id=agent-a');
    const snapshot = await readStreamUntil(later, 'event: ready');
    expect(snapshot).not.toContain('event: revocation');
    expect(snapshot).toContain('"snapshot":0');
    // A person's token still hears of both, with the reasons.
    const person = await subscribe(adminHeaders.authorization.slice('Bearer '.length), 'task_id=a-task');
    const personText = await readStreamUntil(person, 'event: ready');
    expect(personText).toContain('"taskId":"a-task"');
    expect(personText).toContain('"reasons"');
  });

  it('is denied a check of another agent’s task, which is not described to it', async () => {
    const other = await postJson(
      `${tripline.api}/v1/check`,
      { taskId: 'b-task', tool: 'get_ticket' },
      { authorization: `Bearer ${tokens.a}` },
    );
    expect(other.status).toBe(200);
    expect(other.body).toMatchObject({ allowed: false, decision: 'deny' });
    expect(other.body.task).toBeUndefined();
    expect(JSON.stringify(other.body)).not.toContain('agent-b');
    const own = await postJson(
      `${tripline.api}/v1/check`,
      { taskId: 'a-task', tool: 'get_ticket' },
      { authorization: `Bearer ${tokens.a}` },
    );
    expect(own.body).toMatchObject({ allowed: false, task: { taskId: 'a-task', agentId: 'agent-a', revoked: true } });
  });

  it('acknowledges only revocations of its own agents', async () => {
    const ack = (token: string, revocationId: string) =>
      postJson(
        `${tripline.api}/v1/revocations/${revocationId}/ack`,
        { receivedAtMs: Date.now() },
        { authorization: `Bearer ${token}` },
      );
    const foreign = await ack(tokens.b, revocationIds.a);
    expect(foreign.status, JSON.stringify(foreign.body)).toBe(404);
    const own = await ack(tokens.a, revocationIds.a);
    expect(own.status, JSON.stringify(own.body)).toBe(202);
  });
});
