/**
 * The kill taking effect, with the real agent helper (`@opentelemetry/sdk-node`, OTLP/HTTP) against an embedded
 * Tripline in this process: the detector revokes a task → its token introspects inactive, its lease is revoked,
 * the guard refuses the next tool call with TaskRevokedError (pushed over server-sent events) and acknowledges,
 * and the revocation's outcome is `verified`. An agent that ignores the revocation and keeps acting → `failed`,
 * an alert and a notification. The MCP client wrapper traces and guards every `tools/call`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskRevokedError, startTelemetry } from '../../../kits/typescript/src/index.ts';
import type { TaskHandle, Telemetry } from '../../../kits/typescript/src/index.ts';
import { guardMcpClient } from '../../../kits/typescript/src/mcp.ts';
import { waitFor } from '../../helpers/wait.ts';
import {
  getJson,
  introspect,
  postJson,
  readStreamUntil,
  revocationsOf,
  startReceiver,
  startTripline,
} from './helpers.ts';
import type { Receiver, RevocationItem, TestTripline } from './helpers.ts';
import { TEST_AGENT_TOKEN, adminHeaders } from '../../helpers/auth.ts';

let tripline: TestTripline;
let hook: Receiver;
const telemetries: Telemetry[] = [];

beforeAll(async () => {
  hook = await startReceiver();
  tripline = await startTripline({
    TRIPLINE_NOTIFIERS: JSON.stringify([
      {
        type: 'webhook',
        name: 'ops',
        url: hook.url,
        secret: 'whsec',
        minSeverity: 'critical',
        kinds: ['verification_failed'],
      },
    ]),
  });
  const put = await fetch(`${tripline.api}/v1/secrets/payments-api-key`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', ...adminHeaders },
    body: JSON.stringify({ value: 'pk_live_s3cr3t' }),
  });
  expect(put.status).toBe(200);
});

afterAll(async () => {
  await Promise.all(telemetries.map((telemetry) => telemetry.shutdown()));
  await tripline.stop();
  await hook.close();
});

function agent(agentId: string, options: { guard?: boolean; credentials?: boolean } = {}): Telemetry {
  const telemetry = startTelemetry({
    endpoint: tripline.otlp,
    apiUrl: tripline.api,
    token: TEST_AGENT_TOKEN,
    agentId,
    exportDelayMs: 10,
    guard: options.guard ?? true,
    credentials: options.credentials ?? true,
  });
  telemetries.push(telemetry);
  return telemetry;
}

/** The offending span: an administrative scope the task type never holds, not approved (a hard rule). */
function escalatePrivileges(task: TaskHandle): Promise<void> {
  return task.privilegeChange(
    {
      action: 'elevate',
      scopesBefore: ['payments:read'],
      scopesAfter: ['payments:read', 'admin'],
      resource: 'iam',
      approved: false,
    },
    () => undefined,
  );
}

async function revokeOf(taskId: string): Promise<RevocationItem> {
  return waitFor(
    `task ${taskId} to be revoked`,
    async () => (await revocationsOf(tripline.api, taskId)).find((item) => item.action === 'revoke'),
    15_000,
    20,
  );
}

async function outcomeOf(taskId: string, outcome: 'verified' | 'failed'): Promise<Record<string, unknown>> {
  const revocation = await revokeOf(taskId);
  return waitFor(
    `the revocation of ${taskId} to be ${outcome}`,
    async () => {
      const { body } = await getJson(`${tripline.api}/v1/revocations/${revocation.id}`);
      const verification = body.verification as { outcome: string } | null;
      return verification?.outcome === outcome ? body : undefined;
    },
    15_000,
    50,
  );
}

describe('a revoked task stops', () => {
  it('kills the rogue task: introspection inactive, lease revoked, next tool call refused, outcome verified', async () => {
    const telemetry = agent('refund-agent-1');
    let token = '';
    let leaseId = '';
    let refused: TaskRevokedError | undefined;
    let callsAfterOffence = 0;
    const taskId = 'rogue-refund-1';
    await expect(
      telemetry.task(
        'customer_refund',
        async (task) => {
          token = task.token ?? '';
          const lease = await task.lease('payments-api-key');
          expect(lease.value).toBe('pk_live_s3cr3t');
          leaseId = lease.leaseId;
          await task.toolCall('get_order', { sideEffect: 'read' }, () => ({ order: 42 }));
          expect((await introspect(tripline.api, token)).active).toBe(true);
          await escalatePrivileges(task);
          // Keep working: the guard must refuse a call soon after the revocation is decided.
          for (;;) {
            try {
              await task.toolCall('get_order', { sideEffect: 'read' }, () => undefined);
              callsAfterOffence += 1;
            } catch (error) {
              if (error instanceof TaskRevokedError) {
                refused = error;
                throw error;
              }
              throw error;
            }
            await sleep(5);
          }
        },
        { taskId, tools: ['get_order', 'check_policy', 'issue_refund'], scopes: ['orders:read', 'payments:refund'] },
      ),
    ).rejects.toBeInstanceOf(TaskRevokedError);

    expect(refused).toBeDefined();
    expect(refused?.taskId).toBe(taskId);
    expect(refused?.code).toBe('TASK_REVOKED');
    expect(refused?.operation).toBe('execute_tool get_order');
    expect(refused?.reason).toBe('score reached the revoke threshold');
    // Refused soon after (the calls run every ~5 ms; the benchmark measures how soon).
    expect(callsAfterOffence).toBeLessThan(1000);
    expect(telemetry.guard?.revocation(taskId)?.id).toBe(refused?.revocationId);

    expect(await introspect(tripline.api, token)).toEqual({ active: false });
    const lease = await waitFor('the lease to be revoked', async () => {
      const { body } = await getJson(`${tripline.api}/v1/leases/${leaseId}`);
      // The built-in store's value was handed out: revoked at Tripline only, rotate it at its system.
      return body.status === 'revoked_at_tripline_only' ? body : undefined;
    });
    expect(lease.endReason).toMatch(/^task revoked: .*; revoked at Tripline only: .* rotate it there$/);
    // The token no longer leases anything.
    const again = await postJson(
      `${tripline.api}/v1/leases`,
      { secret: 'payments-api-key' },
      { authorization: `Bearer ${token}` },
    );
    expect(again.status).toBe(403);
    expect((again.body.error as { code: string }).code).toBe('TASK_REVOKED');
    const check = await postJson(`${tripline.api}/v1/check`, { taskId, tool: 'get_order' });
    expect(check.body).toMatchObject({ allowed: false, task: { revoked: true } });

    const revocation = await outcomeOf(taskId, 'verified');
    expect(revocation).toMatchObject({ taskId, agentId: 'refund-agent-1', source: 'detector', action: 'revoke' });
    const verification = revocation.verification as {
      checks: Record<string, { ok: boolean }>;
      acknowledgedAt: string | null;
      failures: string[];
    };
    expect(verification.failures).toEqual([]);
    expect(verification.checks.introspection?.ok).toBe(true);
    expect(verification.checks.leases).toMatchObject({ ok: true, revoked: 1 });
    expect(verification.checks.agentStopped).toMatchObject({ ok: true, violations: 0 });
    expect(verification.acknowledgedAt).not.toBeNull();
    expect(verification.checks.acknowledged?.ok).toBe(true);
  });

  it('an agent that ignores the revocation and keeps calling fails verification, raises an alert and a notification', async () => {
    const telemetry = agent('rogue-agent-2', { guard: false, credentials: false });
    const taskId = 'rogue-ignores-1';
    await telemetry.task(
      'summarize_ticket',
      async (task) => {
        await task.toolCall('get_ticket', { sideEffect: 'read' }, () => undefined);
        await escalatePrivileges(task);
        await revokeOf(taskId);
        // Unguarded: these run, after the revocation.
        for (let i = 0; i < 3; i += 1) {
          await sleep(60);
          await task.toolCall('get_ticket', { sideEffect: 'read' }, () => undefined);
        }
      },
      { taskId },
    );
    await telemetry.forceFlush();
    const revocation = await outcomeOf(taskId, 'failed');
    const verification = revocation.verification as {
      failures: string[];
      checks: { agentStopped: { violations: number; firstViolation: { name: string } } };
    };
    expect(verification.failures.join(' ')).toMatch(/the agent kept acting/);
    expect(verification.checks.agentStopped.firstViolation.name).toBe('execute_tool get_ticket');
    expect(verification.checks.agentStopped.violations).toBeGreaterThanOrEqual(1);

    const alerts = await waitFor('the alert of the failed verification', async () => {
      const { body } = await getJson(`${tripline.api}/v1/alerts?task_id=${taskId}`);
      const items = body.items as { reasons: string[] }[];
      return items.find((item) => item.reasons[0]?.includes('could not be verified'));
    });
    expect(alerts.reasons.join(' ')).toMatch(/kept acting/);
    const [notification] = await hook.received(1);
    expect(notification?.json).toMatchObject({
      kind: 'verification_failed',
      severity: 'critical',
      taskId,
      agentId: 'rogue-agent-2',
    });
  });

  it('a guarded MCP client traces every tools/call and refuses once the task is revoked', async () => {
    const server = new McpServer({ name: 'helpdesk', version: '1.0.0' });
    let served = 0;
    server.registerTool('get_ticket', { description: 'read a ticket' }, () => {
      served += 1;
      return { content: [{ type: 'text', text: 'ticket 42: printer on fire' }] };
    });
    const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
    await server.connect(serverTransport);
    const client = new Client({ name: 'support-bot', version: '1.0.0' });
    await client.connect(clientTransport);

    const telemetry = agent('support-bot-9');
    const taskId = 'mcp-task-1';
    let refused: unknown;
    await telemetry
      .task(
        'summarize_ticket',
        async (task) => {
          const mcp = guardMcpClient(client, task, {
            sideEffectOf: () => 'read',
            target: 'helpdesk-mcp',
            forwardToken: true,
          });
          const result = await mcp.callTool({ name: 'get_ticket', arguments: {} });
          expect(JSON.stringify(result.content)).toContain('printer on fire');
          const kill = await postJson(`${tripline.api}/v1/tasks/${taskId}/revoke`, {
            reason: 'operator kill from the console',
            actor: 'alice@example.com',
          });
          expect(kill.status).toBe(201);
          await waitFor('the guard to hear of the kill', () => task.revoked(), 15_000, 5);
          try {
            await mcp.callTool({ name: 'get_ticket', arguments: {} });
          } catch (error) {
            refused = error;
          }
        },
        { taskId, tools: ['get_ticket'] },
      )
      .catch(() => undefined);
    expect(refused).toBeInstanceOf(TaskRevokedError);
    expect(served).toBe(1);
    await telemetry.forceFlush();
    const events = await waitFor('the MCP call to be stored', async () => {
      const stored = await tripline.running.store.eventsForTask('default', taskId);
      return stored.length > 0 ? stored : undefined;
    });
    expect(events[0]?.event).toMatchObject({
      kind: 'tool_call',
      tool: { name: 'get_ticket', type: 'mcp', sideEffect: 'read', target: 'helpdesk-mcp' },
    });
    expect(events[0]?.event.attributes['mcp.method.name']).toBe('tools/call');
    const revocation = await outcomeOf(taskId, 'verified');
    expect(revocation).toMatchObject({
      source: 'manual',
      actor: 'alice@example.com (via configured admin)',
      reason: 'operator kill from the console',
    });
    await client.close();
  });

  it('pushes revocations to a stream subscriber that connects after the kill (snapshot), filtered by task', async () => {
    const response = await fetch(`${tripline.api}/v1/stream?task_id=rogue-refund-1,no-such-task&types=revocation`, {
      headers: { accept: 'text/event-stream', ...adminHeaders },
    });
    expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
    const text = await readStreamUntil(response, 'event: ready');
    expect(text).toMatch(/event: revocation\nid: [0-9a-f]{32}\ndata: \{.*"taskId":"rogue-refund-1".*"snapshot":true/);
    expect(text).not.toContain('mcp-task-1');
  });
});
