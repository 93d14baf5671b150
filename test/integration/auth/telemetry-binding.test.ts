/**
 * Telemetry bound to credentials (issue 14), through a running embedded Tripline: a credentialed task whose spans
 * name another task type or agent than its task token alerts (`identity.credential_mismatch`) and keeps the token's
 * agent; a credentialed task that asks a check or a lease without having sent telemetry alerts
 * (`identity.no_telemetry`), one that sent telemetry does not. The grace period is 0 here, so the first check or
 * lease of a silent task is the one noticed.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OtlpKeyValue, OtlpTraceRequest } from '../../../schemas/otlp.ts';
import { encodeTraceRequest } from '../../../services/otlp/codec.ts';
import { TEST_AGENT_TOKEN, adminHeaders } from '../../helpers/auth.ts';
import { waitFor } from '../../helpers/wait.ts';
import { getJson, postJson, startTripline } from '../killswitch/helpers.ts';
import type { TestTripline } from '../killswitch/helpers.ts';

let tripline: TestTripline;

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const str = (key: string, value: string): OtlpKeyValue => ({ key, value: { stringValue: value } });

/** One ordinary tool call of a task, its span claiming the task's id, a type and an agent. */
function toolCall(taskId: string, taskType: string, agentId: string): OtlpTraceRequest {
  const start = BigInt(Date.now()) * 1_000_000n;
  return {
    resourceSpans: [
      {
        resource: { attributes: [str('service.name', 'helpdesk')] },
        scopeSpans: [
          {
            spans: [
              {
                traceId: hex(16),
                spanId: hex(8),
                parentSpanId: hex(8),
                name: 'execute_tool get_ticket',
                kind: 1,
                startTimeUnixNano: start.toString(),
                endTimeUnixNano: (start + 1_000_000n).toString(),
                attributes: [
                  str('gen_ai.operation.name', 'execute_tool'),
                  str('gen_ai.tool.name', 'get_ticket'),
                  str('tripline.tool.side_effect', 'read'),
                  str('gen_ai.agent.id', agentId),
                  str('tripline.task.id', taskId),
                  str('tripline.task.type', taskType),
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

async function send(request: OtlpTraceRequest): Promise<void> {
  const response = await fetch(`${tripline.otlp}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${TEST_AGENT_TOKEN}` },
    body: encodeTraceRequest(request),
  });
  await response.arrayBuffer();
  expect(response.status).toBe(200);
}

async function start(agentId: string, taskId: string): Promise<string> {
  const { status, body } = await postJson(`${tripline.api}/v1/tasks`, {
    agentId,
    taskType: 'summarize_ticket',
    taskId,
    tools: ['get_ticket'],
  });
  expect(status, JSON.stringify(body)).toBe(201);
  return body.token as string;
}

async function identityReasons(taskId: string): Promise<string[]> {
  const { body } = await getJson(`${tripline.api}/v1/alerts?task_id=${taskId}&limit=100`);
  return (body.items as { reasons: string[] }[])
    .flatMap((alert) => alert.reasons)
    .filter((reason) => reason.startsWith('identity.'));
}

beforeAll(async () => {
  tripline = await startTripline({ TRIPLINE_SILENT_TASK_GRACE_MS: '0' });
  const secret = await fetch(`${tripline.api}/v1/secrets/helpdesk-api-token`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', ...adminHeaders },
    body: JSON.stringify({ value: 'hd_1' }),
  });
  expect(secret.status).toBeLessThan(300);
});

afterAll(async () => {
  await tripline.stop();
});

describe('telemetry bound to credentials', () => {
  it('alerts when a credentialed task’s spans name another task type or agent, and keeps the token’s agent', async () => {
    await start('agent-m', 'typed-task');
    await send(toolCall('typed-task', 'customer_refund', 'agent-other'));
    const reasons = await waitFor('the credential mismatch alerts', async () => {
      const found = await identityReasons('typed-task');
      return found.length >= 2 ? found : undefined;
    });
    expect(reasons.sort()).toEqual([
      'identity.credential_mismatch: its spans claim agent "agent-other"; its task token was issued to "agent-m"',
      'identity.credential_mismatch: its spans claim task type "customer_refund"; its task token was issued for "summarize_ticket"',
    ]);
    const task = await waitFor('the task’s record', async () => {
      const { status, body } = await getJson(`${tripline.api}/v1/tasks/typed-task`);
      return status === 200 && (body.counts as { tool_call: number }).tool_call > 0 ? body : undefined;
    });
    expect(task).toMatchObject({ agentId: 'agent-m', taskType: 'summarize_ticket' });
  });

  it('notices a credentialed task that checks or leases without telemetry, not one that sent it', async () => {
    const loudToken = await start('agent-q', 'loud-task');
    const quietToken = await start('agent-q', 'quiet-task');
    const leaseToken = await start('agent-q', 'quiet-lease-task');
    await send(toolCall('loud-task', 'summarize_ticket', 'agent-q'));
    await waitFor('the loud task’s telemetry to be scored', async () => {
      const { status, body } = await getJson(`${tripline.api}/v1/tasks/loud-task`);
      return status === 200 && (body.counts as { tool_call: number }).tool_call > 0;
    });

    for (const token of [loudToken, quietToken]) {
      const check = await postJson(`${tripline.api}/v1/check`, { token, tool: 'get_ticket' });
      expect(check.status).toBe(200);
    }
    const lease = await postJson(
      `${tripline.api}/v1/leases`,
      { secret: 'helpdesk-api-token' },
      { authorization: `Bearer ${leaseToken}` },
    );
    expect(lease.status, JSON.stringify(lease.body)).toBe(201);

    const quiet = await waitFor('the silent task’s alert', async () => {
      const found = await identityReasons('quiet-task');
      return found.length > 0 ? found : undefined;
    });
    expect(quiet).toHaveLength(1);
    expect(quiet[0]).toMatch(
      /^identity\.no_telemetry: task quiet-task asked for a check \d+ s after it got credentials/,
    );
    const leased = await waitFor('the silent lease’s alert', async () => {
      const found = await identityReasons('quiet-lease-task');
      return found.length > 0 ? found : undefined;
    });
    expect(leased[0]).toMatch(/^identity\.no_telemetry: task quiet-lease-task asked for a lease/);
    // Both checks were answered (and any alert raised) before the silent task's alert was read back.
    expect(await identityReasons('loud-task')).toEqual([]);
  });
});
