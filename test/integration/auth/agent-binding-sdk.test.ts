/**
 * A bound agent token against an agent instrumented with the OpenTelemetry SDK (test/agents/typescript/
 * forging-agent.ts) that claims a victim's agent id on every span of three tasks, each raising itself to an
 * unapproved admin scope: the tasks count as the token's agent, each alerts `identity.agent_refused`, the sender is
 * escalated and the victim's running task keeps its token (issue 14).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders } from '../../helpers/auth.ts';
import { waitFor } from '../../helpers/wait.ts';
import { getJson, introspect, postJson, startTripline } from '../killswitch/helpers.ts';
import type { TestTripline } from '../killswitch/helpers.ts';

const run = promisify(execFile);
const AGENT = fileURLToPath(new URL('../../agents/typescript/forging-agent.ts', import.meta.url));
const FORGED = ['sdk-forged-1', 'sdk-forged-2', 'sdk-forged-3'];

let tripline: TestTripline;

async function agentToken(name: string, agents: string[]): Promise<string> {
  const { status, body } = await postJson(
    `${tripline.api}/v1/admin/tokens`,
    { role: 'agent', name, agents },
    adminHeaders,
  );
  expect(status, JSON.stringify(body)).toBe(201);
  return body.token as string;
}

beforeAll(async () => {
  tripline = await startTripline({
    TRIPLINE_ESCALATION_REVOCATIONS: '3',
    TRIPLINE_ESCALATION_WINDOW_MS: '60000',
    TRIPLINE_ESCALATION_BLOCK_MS: '60000',
  });
});

afterAll(async () => {
  await tripline.stop();
});

describe('an OpenTelemetry SDK agent claiming another agent’s id', () => {
  it('is scored, alerted on and escalated as its token’s agent; the victim keeps working', async () => {
    const victimToken = await agentToken('sdk victim', ['sdk-victim']);
    const forgerToken = await agentToken('sdk forger', ['sdk-forger']);
    const victim = await postJson(
      `${tripline.api}/v1/tasks`,
      { agentId: 'sdk-victim', taskType: 'customer_refund', taskId: 'sdk-victim-task', tools: ['get_order'] },
      { authorization: `Bearer ${victimToken}` },
    );
    expect(victim.status).toBe(201);

    await run(process.execPath, [
      AGENT,
      '--endpoint',
      tripline.otlp,
      '--token',
      forgerToken,
      '--claim',
      'sdk-victim',
      '--tasks',
      FORGED.join(','),
    ]);

    const alerts = await waitFor('an identity alert on each forged task', async () => {
      const { body } = await getJson(`${tripline.api}/v1/alerts?agent_id=sdk-forger&limit=100`);
      const found = (body.items as { taskId: string; reasons: string[] }[]).filter((alert) =>
        alert.reasons.some((reason) => reason.startsWith('identity.agent_refused: a span claimed agent "sdk-victim"')),
      );
      return found.length === FORGED.length ? found : undefined;
    });
    expect(alerts.map((alert) => alert.taskId).sort()).toEqual(FORGED);
    const escalated = await waitFor('the forger to be escalated', async () => {
      const { body } = await getJson(`${tripline.api}/v1/revocations?agent_id=sdk-forger&limit=100`);
      return (body.items as { actor: string }[]).length >= FORGED.length ? body.items : undefined;
    });
    expect(escalated).toHaveLength(FORGED.length);
    const refused = await postJson(
      `${tripline.api}/v1/tasks`,
      { agentId: 'sdk-forger', taskType: 'customer_refund', tools: ['get_order'] },
      { authorization: `Bearer ${forgerToken}` },
    );
    expect(refused.status).toBe(403);
    expect((await introspect(tripline.api, victim.body.token as string)).active).toBe(true);
    expect((await getJson(`${tripline.api}/v1/revocations?agent_id=sdk-victim`)).body.items).toEqual([]);
  });
});
