/**
 * Agent tokens bound to the agent ids they may speak for (issue 14, "agent identity is self-asserted"), through a
 * running embedded Tripline: a bound token cannot start a task for another agent, and spans it sends under a
 * victim's agent id count as its own agent's — three unapproved admin scopes escalate the sender, never the victim,
 * and each such task alerts with the typed reason `identity.agent_refused`.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OtlpKeyValue, OtlpTraceRequest } from '../../../schemas/otlp.ts';
import { encodeTraceRequest } from '../../../services/otlp/codec.ts';
import { adminHeaders } from '../../helpers/auth.ts';
import { waitFor } from '../../helpers/wait.ts';
import { getJson, introspect, postJson, startTripline } from '../killswitch/helpers.ts';
import type { TestTripline } from '../killswitch/helpers.ts';

let tripline: TestTripline;
let victimToken = '';
let attackerToken = '';

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const str = (key: string, value: string): OtlpKeyValue => ({ key, value: { stringValue: value } });

async function agentToken(name: string, agents?: string[]): Promise<string> {
  const { status, body } = await postJson(
    `${tripline.api}/v1/admin/tokens`,
    { role: 'agent', name, ...(agents === undefined ? {} : { agents }) },
    adminHeaders,
  );
  expect(status, JSON.stringify(body)).toBe(201);
  return body.token as string;
}

/** One span of a task raising its agent to an unapproved admin scope (a hard rule), claiming `agentId`. */
function offence(taskId: string, agentId: string): OtlpTraceRequest {
  const start = BigInt(Date.now()) * 1_000_000n;
  return {
    resourceSpans: [
      {
        resource: { attributes: [str('service.name', 'some-service')] },
        scopeSpans: [
          {
            spans: [
              {
                traceId: hex(16),
                spanId: hex(8),
                parentSpanId: hex(8),
                name: 'privilege elevate',
                kind: 1,
                startTimeUnixNano: start.toString(),
                endTimeUnixNano: (start + 1_000_000n).toString(),
                attributes: [
                  str('gen_ai.agent.id', agentId),
                  str('tripline.task.id', taskId),
                  str('tripline.task.type', 'customer_refund'),
                  str('tripline.privilege.action', 'elevate'),
                  str('tripline.privilege.scopes_before', 'payments:read'),
                  str('tripline.privilege.scopes_after', 'payments:read admin'),
                  { key: 'tripline.privilege.approved', value: { boolValue: false } },
                ],
                events: [],
                links: [],
                status: { code: 1 },
              },
            ],
          },
        ],
      },
    ],
  };
}

async function send(token: string, request: OtlpTraceRequest): Promise<number> {
  const response = await fetch(`${tripline.otlp}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${token}` },
    body: encodeTraceRequest(request),
  });
  await response.arrayBuffer();
  return response.status;
}

beforeAll(async () => {
  tripline = await startTripline({
    TRIPLINE_ESCALATION_REVOCATIONS: '3',
    TRIPLINE_ESCALATION_WINDOW_MS: '60000',
    TRIPLINE_ESCALATION_BLOCK_MS: '60000',
  });
  victimToken = await agentToken('victim bot', ['victim']);
  attackerToken = await agentToken('attacker bot', ['attacker']);
});

afterAll(async () => {
  await tripline.stop();
});

describe('agent tokens bound to agent ids', () => {
  it('stores the binding, shows it, and refuses it on a token that is not an agent’s', async () => {
    const list = await getJson(`${tripline.api}/v1/admin/tokens`);
    const names = (list.body.items as { name: string; agents: string[] }[]).map(({ name, agents }) => ({
      name,
      agents,
    }));
    expect(names).toEqual(
      expect.arrayContaining([
        { name: 'victim bot', agents: ['victim'] },
        { name: 'attacker bot', agents: ['attacker'] },
        { name: 'configured agent', agents: [] },
      ]),
    );
    const viewer = await postJson(
      `${tripline.api}/v1/admin/tokens`,
      { role: 'viewer', name: 'bound viewer', agents: ['x'] },
      adminHeaders,
    );
    expect(viewer.status).toBe(400);
    const whoami = await getJson(`${tripline.api}/v1/whoami`, { authorization: `Bearer ${attackerToken}` });
    expect(whoami.body).toMatchObject({ role: 'agent', agents: ['attacker'] });
  });

  it('starts tasks only for the agents a token is bound to (prefix patterns included)', async () => {
    const start = (token: string, agentId: string, taskId: string) =>
      postJson(
        `${tripline.api}/v1/tasks`,
        { agentId, taskType: 'summarize_ticket', taskId, tools: ['get_ticket'] },
        { authorization: `Bearer ${token}` },
      );
    const stolen = await start(attackerToken, 'victim', 'stolen-start');
    expect(stolen.status, JSON.stringify(stolen.body)).toBe(403);
    expect(stolen.body).toMatchObject({ error: { code: 'FORBIDDEN' } });
    expect((await start(attackerToken, 'attacker', 'own-start')).status).toBe(201);
    const fleet = await agentToken('fleet a', ['fleet-a/*']);
    expect((await start(fleet, 'fleet-a/worker-7', 'fleet-start')).status).toBe(201);
    expect((await start(fleet, 'fleet-b/worker-7', 'fleet-other')).status).toBe(403);
  });

  it('counts spans claiming another agent as the token’s own: the victim is not escalated, the sender is', async () => {
    const victim = await postJson(
      `${tripline.api}/v1/tasks`,
      { agentId: 'victim', taskType: 'customer_refund', taskId: 'victim-task', tools: ['get_order'] },
      { authorization: `Bearer ${victimToken}` },
    );
    expect(victim.status).toBe(201);
    const victimTaskToken = victim.body.token as string;

    for (const taskId of ['forged-1', 'forged-2', 'forged-3'])
      expect(await send(attackerToken, offence(taskId, 'victim'))).toBe(200);

    // Three hard-rule kills of one agent escalate it: the agent the token speaks for, not the one the spans named.
    const escalated = await waitFor('the sender’s own task to be revoked by escalation', async () => {
      const { body } = await getJson(`${tripline.api}/v1/revocations?task_id=own-start`);
      const items = body.items as { actor: string; agentId: string }[];
      return items.find((item) => item.actor === 'tripline/escalation');
    });
    expect(escalated.agentId).toBe('attacker');
    for (const taskId of ['forged-1', 'forged-2', 'forged-3']) {
      const task = await getJson(`${tripline.api}/v1/tasks/${taskId}`);
      expect(task.body).toMatchObject({ agentId: 'attacker', status: 'revoked' });
    }
    expect((await introspect(tripline.api, victimTaskToken)).active).toBe(true);
    const victimRevocations = await getJson(`${tripline.api}/v1/revocations?agent_id=victim`);
    expect(victimRevocations.body.items).toEqual([]);

    const alerts = await waitFor('the identity alerts', async () => {
      const { body } = await getJson(`${tripline.api}/v1/alerts?agent_id=attacker&limit=100`);
      const found = (body.items as { taskId: string; reasons: string[] }[]).filter((alert) =>
        alert.reasons.some((reason) => reason.startsWith('identity.agent_refused: ')),
      );
      return found.length === 3 ? found : undefined;
    });
    expect(alerts.map((alert) => alert.taskId).sort()).toEqual(['forged-1', 'forged-2', 'forged-3']);
    expect(alerts[0]?.reasons.find((reason) => reason.startsWith('identity.'))).toContain('"victim"');
  });
});
