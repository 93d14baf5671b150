/**
 * The kill switch end to end, the way a user runs it: Tripline started as `npm start` does (a child process on
 * the embedded defaults, the shipped policies), agents instrumented with the agent helpers (real
 * `@opentelemetry/sdk-node`, OTLP/HTTP, the guard on server-sent events, task tokens from POST /v1/tasks), and
 * every notifier pointed at a local HTTP receiver — one of which hangs.
 *
 * - a task the policy denies gets no token; an allowed one gets a token that verifies against the JWKS;
 * - the detector revokes the rogue task: introspection inactive, lease revoked, the helper's next tool call
 *   throws TaskRevokedError, the revocation's outcome is `verified`; the notifiers are told, the hanging one
 *   delaying nothing;
 * - an agent that ignores the revocation and keeps calling: outcome `failed`, an alert, a notification;
 * - after a restart the revoked task's token is still inactive and the outcomes are still there.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskDeniedError, TaskRevokedError, startTelemetry } from '../../kits/typescript/src/index.ts';
import type { Telemetry } from '../../kits/typescript/src/index.ts';
import { verifySignature } from '../../services/killswitch/http-client.ts';
import { startTriplineProcess } from '../helpers/tripline-process.ts';
import type { TriplineProcess } from '../helpers/tripline-process.ts';
import { waitFor } from '../helpers/wait.ts';
import { readStreamUntil, startReceiver } from '../integration/killswitch/helpers.ts';
import type { Receiver } from '../integration/killswitch/helpers.ts';
import { TEST_AGENT_TOKEN, TEST_AUTH_ENV, adminHeaders, authFor } from '../helpers/auth.ts';

async function json(url: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, {
    ...init,
    headers: { ...authFor(init.method ?? 'GET', url), ...(init.headers as Record<string, string> | undefined) },
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

async function introspect(api: string, token: string): Promise<Record<string, unknown>> {
  return (
    await json(`${api}/oauth2/introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }),
    })
  ).body;
}

describe('the kill switch, end to end', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-killswitch-'));
  let env: Record<string, string>;
  let tripline: TriplineProcess;
  const receivers: Record<'webhook' | 'slack' | 'alertmanager' | 'pagerduty' | 'hanging', Receiver> = {} as never;
  const telemetries: Telemetry[] = [];
  let rogueRevocationId = '';
  let rogueToken = '';

  function agent(agentId: string, guard = true): Telemetry {
    const telemetry = startTelemetry({
      endpoint: tripline.otlpUrl,
      apiUrl: tripline.apiUrl,
      token: TEST_AGENT_TOKEN,
      agentId,
      credentials: guard,
      guard,
      exportDelayMs: 20,
    });
    telemetries.push(telemetry);
    return telemetry;
  }

  beforeAll(async () => {
    receivers.webhook = await startReceiver();
    receivers.slack = await startReceiver(() => ({ status: 200, body: 'ok' }));
    receivers.alertmanager = await startReceiver();
    receivers.pagerduty = await startReceiver(() => ({ status: 202, body: { status: 'success' } }));
    receivers.hanging = await startReceiver(() => 'hang');
    env = {
      ...TEST_AUTH_ENV,
      TRIPLINE_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      TRIPLINE_VERIFY_WINDOW_MS: '1500',
      TRIPLINE_VERIFY_CLOCK_SKEW_MS: '50',
      TRIPLINE_NOTIFIERS: JSON.stringify([
        {
          type: 'webhook',
          name: 'hanging-first',
          url: receivers.hanging.url,
          secret: 'x',
          timeoutMs: 60_000,
          maxAttempts: 1,
          kinds: ['revocation'],
        },
        { type: 'webhook', name: 'ops', url: receivers.webhook.url, secret: 'whsec-e2e', minSeverity: 'critical' },
        { type: 'slack', url: receivers.slack.url, kinds: ['revocation'] },
        { type: 'alertmanager', url: receivers.alertmanager.url, kinds: ['revocation'] },
        {
          type: 'pagerduty',
          url: receivers.pagerduty.url,
          routingKey: 'e2e-routing-key',
          kinds: ['revocation', 'verification_failed'],
        },
      ]),
    };
    tripline = await startTriplineProcess(env);
    const put = await fetch(`${tripline.apiUrl}/v1/secrets/payments-api-key`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...adminHeaders },
      body: JSON.stringify({ value: 'pk_live_e2e' }),
    });
    expect(put.status).toBe(200);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(telemetries.map((telemetry) => telemetry.shutdown()));
    await tripline.stop();
    await Promise.all(Object.values(receivers).map((receiver) => receiver.close()));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('denies a task the policy does not permit: no token', async () => {
    const telemetry = agent('summarize-ticket-agent-1');
    let ran = false;
    const denied = await telemetry
      .task('summarize_ticket', () => Promise.resolve((ran = true)), {
        taskId: 'e2e-denied',
        tools: ['get_ticket', 'shell_exec'],
      })
      .catch((error: unknown) => error);
    expect(denied).toBeInstanceOf(TaskDeniedError);
    expect((denied as TaskDeniedError).code).toBe('POLICY_DENIED');
    expect(ran).toBe(false);
    const credentials = await json(`${tripline.apiUrl}/v1/tasks/e2e-denied/credentials`);
    expect(credentials.body.items).toEqual([]);
  });

  it('gives an allowed task a token that verifies against the JWKS', async () => {
    const telemetry = agent('report-agent-1');
    await telemetry.task(
      'generate_report',
      async (task) => {
        const jwks = createRemoteJWKSet(new URL(`${tripline.apiUrl}/.well-known/jwks.json`));
        const { payload } = await jwtVerify(task.token ?? '', jwks, { audience: 'tripline', algorithms: ['EdDSA'] });
        expect(payload).toMatchObject({
          task_id: 'e2e-report',
          task_type: 'generate_report',
          agent_id: 'report-agent-1',
          tools: ['run_query'],
        });
        await task.toolCall('run_query', { sideEffect: 'read' }, () => undefined);
      },
      { taskId: 'e2e-report', tools: ['run_query'], scopes: ['warehouse:read'] },
    );
  });

  it('revokes the rogue task: introspection inactive, lease revoked, next tool call refused, outcome verified', async () => {
    const telemetry = agent('refund-agent-1');
    let leaseId = '';
    const refused = await telemetry
      .task(
        'customer_refund',
        async (task) => {
          rogueToken = task.token ?? '';
          leaseId = (await task.lease('payments-api-key')).leaseId;
          await task.toolCall('get_order', { sideEffect: 'read' }, () => undefined);
          await task.privilegeChange(
            {
              action: 'elevate',
              scopesBefore: ['payments:read'],
              scopesAfter: ['payments:read', 'admin'],
              approved: false,
            },
            () => undefined,
          );
          for (let i = 0; i < 2000; i += 1) {
            await task.toolCall('get_order', { sideEffect: 'read' }, () => undefined);
            await sleep(5);
          }
        },
        { taskId: 'e2e-rogue', tools: ['get_order', 'issue_refund'], scopes: ['payments:refund'] },
      )
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(TaskRevokedError);
    rogueRevocationId = (refused as TaskRevokedError).revocationId;
    expect(await introspect(tripline.apiUrl, rogueToken)).toEqual({ active: false });
    const lease = await waitFor('the lease to be revoked', async () => {
      const { body } = await json(`${tripline.apiUrl}/v1/leases/${leaseId}`);
      // A built-in-store secret: revoked at Tripline only (the value handed out still works at its system).
      return body.status === 'revoked_at_tripline_only' ? body : undefined;
    });
    expect(lease.secret).toBe('payments-api-key');
    const revocation = await waitFor(
      'the outcome to be verified',
      async () => {
        const { body } = await json(`${tripline.apiUrl}/v1/revocations/${rogueRevocationId}`);
        return (body.verification as { outcome?: string } | null)?.outcome === 'verified' ? body : undefined;
      },
      20_000,
      100,
    );
    expect(revocation).toMatchObject({
      taskId: 'e2e-rogue',
      source: 'detector',
      verification: { outcome: 'verified', failures: [] },
    });
    expect((revocation.verification as { acknowledgedAt: string | null }).acknowledgedAt).not.toBeNull();

    // Every notifier heard of it; the hanging one holds its request open and delayed nothing.
    const [slack] = await receivers.slack.received(1);
    expect((slack?.json as { text: string }).text).toContain('e2e-rogue');
    const [alertmanager] = await receivers.alertmanager.received(1);
    expect(alertmanager?.url).toBe('/api/v2/alerts');
    const [pagerduty] = await receivers.pagerduty.received(1);
    expect(pagerduty?.json).toMatchObject({ routing_key: 'e2e-routing-key', event_action: 'trigger' });
    const hooks = await waitFor('the ops webhook to get the revocation', () =>
      receivers.webhook.requests.find((request) => (request.json as { kind?: string }).kind === 'revocation'),
    );
    expect(verifySignature('whsec-e2e', hooks.headers['x-tripline-signature'] as string, hooks.body)).toBe(true);
    expect(receivers.hanging.requests.length).toBeGreaterThanOrEqual(1);
  });

  it('an agent that ignores the revocation and keeps calling: outcome failed, an alert, a notification', async () => {
    const telemetry = agent('rogue-agent-2', false);
    await telemetry.task(
      'triage_alert',
      async (task) => {
        await task.toolCall('get_alert', { sideEffect: 'read' }, () => undefined);
        await task.privilegeChange(
          {
            action: 'assume_role',
            scopesBefore: ['alerts:read'],
            scopesAfter: ['alerts:read', 'root'],
            approved: false,
          },
          () => undefined,
        );
        await waitFor(
          'the revocation',
          async () =>
            ((await json(`${tripline.apiUrl}/v1/revocations?task_id=e2e-ignores`)).body.items as unknown[]).length > 0,
          15_000,
          20,
        );
        for (let i = 0; i < 3; i += 1) {
          await sleep(100);
          await task.toolCall('query_logs', { sideEffect: 'read' }, () => undefined);
        }
      },
      { taskId: 'e2e-ignores' },
    );
    await telemetry.forceFlush();
    const items = (await json(`${tripline.apiUrl}/v1/revocations?task_id=e2e-ignores`)).body.items as { id: string }[];
    const id = items[0]?.id ?? '';
    const revocation = await waitFor(
      'the outcome to be failed',
      async () => {
        const { body } = await json(`${tripline.apiUrl}/v1/revocations/${id}`);
        return (body.verification as { outcome?: string } | null)?.outcome === 'failed' ? body : undefined;
      },
      20_000,
      100,
    );
    expect((revocation.verification as { failures: string[] }).failures.join(' ')).toMatch(
      /the agent kept acting: \d+ event\(s\) started after the revocation/,
    );
    const alert = await waitFor('the alert', async () => {
      const alerts = (await json(`${tripline.apiUrl}/v1/alerts?task_id=e2e-ignores`)).body.items as {
        reasons: string[];
      }[];
      return alerts.find((item) => item.reasons.some((reason) => reason.includes('could not be verified')));
    });
    expect(alert.reasons.join(' ')).toMatch(/kept acting/);
    await waitFor(
      'the verification_failed notifications',
      () =>
        receivers.webhook.requests.some(
          (request) =>
            (request.json as { kind?: string; taskId?: string }).kind === 'verification_failed' &&
            (request.json as { taskId?: string }).taskId === 'e2e-ignores',
        ) &&
        receivers.pagerduty.requests.some(
          (request) => (request.json as { payload?: { class?: string } }).payload?.class === 'verification_failed',
        ),
    );
  });

  it('keeps the revoked state and the outcomes across a restart', async () => {
    await tripline.stop();
    tripline = await startTriplineProcess(env);
    expect(await introspect(tripline.apiUrl, rogueToken)).toEqual({ active: false });
    const { body } = await json(`${tripline.apiUrl}/v1/revocations/${rogueRevocationId}`);
    expect(body).toMatchObject({ taskId: 'e2e-rogue', verification: { outcome: 'verified' } });
    const stream = await fetch(`${tripline.apiUrl}/v1/stream?agent_id=refund-agent-1&types=revocation`, {
      headers: adminHeaders,
    });
    const text = await readStreamUntil(stream, 'event: ready');
    expect(text).toContain(`id: ${rogueRevocationId}`);
  });
});
