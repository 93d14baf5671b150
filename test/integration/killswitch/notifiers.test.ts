/**
 * Notifiers against local HTTP receivers (node:http on 127.0.0.1): the generic webhook (HMAC-SHA256 signature,
 * retries with backoff, one idempotency key across retries), Slack incoming webhooks, Alertmanager API v2,
 * PagerDuty Events v2; routing by severity, kind and task type; and isolation — a receiver that hangs delays
 * neither the caller nor the other destinations.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Revocation } from '../../../schemas/events.ts';
import { verifySignature } from '../../../services/killswitch/http-client.ts';
import { parseNotifierConfigs } from '../../../services/killswitch/notifiers/config.ts';
import { createDispatcher } from '../../../services/killswitch/notifiers/dispatcher.ts';
import { fromAlert, fromRevocation } from '../../../services/killswitch/notifiers/notification.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import { startReceiver } from './helpers.ts';
import type { Receiver } from './helpers.ts';

const logger = createLogger('silent');
const BASE = 'http://tripline.test';
const receivers: Receiver[] = [];
const dispatchers: { stop(options?: { drainMs?: number }): Promise<void> }[] = [];

afterEach(async () => {
  await Promise.all(dispatchers.splice(0).map((dispatcher) => dispatcher.stop({ drainMs: 0 })));
  await Promise.all(receivers.splice(0).map((receiver) => receiver.close()));
});

async function receiver(...args: Parameters<typeof startReceiver>): Promise<Receiver> {
  const started = await startReceiver(...args);
  receivers.push(started);
  return started;
}

function dispatcher(configs: unknown[]): ReturnType<typeof createDispatcher> {
  const created = createDispatcher(parseNotifierConfigs(configs), logger);
  dispatchers.push(created);
  return created;
}

const revocation: Revocation = {
  id: 'rev-1',
  tenant: 'default',
  taskId: 'task-1',
  taskType: 'customer_refund',
  agentId: 'refund-agent-1',
  action: 'revoke',
  source: 'detector',
  actor: 'tripline',
  reason: 'score reached the revoke threshold',
  reasons: [
    'gained administrative scope admin (elevate, not approved), which type customer_refund never hold (hard rule privilege_admin_unseen)',
  ],
  score: 100,
  eventId: 'ev-1',
  timeMs: Date.parse('2026-01-02T03:04:05.000Z'),
};

describe('generic webhook', () => {
  it('signs the body with HMAC-SHA256 and sends the notification id as the idempotency key', async () => {
    const hook = await receiver();
    const notifications = dispatcher([
      { type: 'webhook', url: `${hook.url}/hook`, secret: 'whsec-test', minSeverity: 'info' },
    ]);
    notifications.notify(fromRevocation(revocation, BASE));
    const [request] = await hook.received(1);
    expect(request?.url).toBe('/hook');
    expect(request?.headers['content-type']).toBe('application/json');
    expect(request?.headers['idempotency-key']).toMatch(/^[0-9a-f]{32}$/);
    expect(request?.headers['x-tripline-event']).toBe('revocation');
    const signature = request?.headers['x-tripline-signature'];
    expect(typeof signature).toBe('string');
    expect(verifySignature('whsec-test', signature as string, request?.body ?? '')).toBe(true);
    expect(verifySignature('another-key', signature as string, request?.body ?? '')).toBe(false);
    expect(verifySignature('whsec-test', signature as string, `${request?.body ?? ''} `)).toBe(false);
    expect(request?.json).toMatchObject({
      kind: 'revocation',
      severity: 'critical',
      taskId: 'task-1',
      agentId: 'refund-agent-1',
      taskType: 'customer_refund',
      data: { revocation: { id: 'rev-1' } },
    });
  });

  it('retries 5xx and network failures with backoff, keeping one idempotency key, and gives up on 4xx', async () => {
    const flaky = await receiver((_request, index) =>
      index < 2 ? { status: 503, headers: { 'retry-after': '0' } } : { status: 200 },
    );
    const rejecting = await receiver(() => ({ status: 400, body: { error: 'bad' } }));
    const notifications = dispatcher([
      {
        type: 'webhook',
        name: 'flaky',
        url: flaky.url,
        secret: 's',
        initialBackoffMs: 50,
        maxBackoffMs: 200,
        maxAttempts: 5,
      },
      { type: 'webhook', name: 'rejecting', url: rejecting.url, secret: 's', initialBackoffMs: 50, maxAttempts: 5 },
    ]);
    notifications.notify(fromRevocation(revocation, BASE));
    const requests = await flaky.received(3);
    await notifications.idle();
    const keys = new Set(requests.map((request) => request.headers['idempotency-key']));
    expect(keys.size).toBe(1);
    // Backoff: the retries are spaced, not immediate.
    expect((requests[1]?.atMs ?? 0) - (requests[0]?.atMs ?? 0)).toBeGreaterThanOrEqual(35);
    expect(rejecting.requests).toHaveLength(1);
    const deliveries = notifications.recent();
    expect(deliveries.find((d) => d.destination === 'flaky')).toMatchObject({ ok: true, attempts: 3 });
    expect(deliveries.find((d) => d.destination === 'rejecting')).toMatchObject({
      ok: false,
      attempts: 1,
      status: 400,
    });
  });

  it('delivers one notification id once per destination', async () => {
    const hook = await receiver();
    const notifications = dispatcher([{ type: 'webhook', url: hook.url, secret: 's' }]);
    const notification = fromRevocation(revocation, BASE);
    notifications.notify(notification);
    notifications.notify(notification);
    await notifications.idle();
    expect(hook.requests).toHaveLength(1);
  });
});

describe('Slack, Alertmanager and PagerDuty formats', () => {
  it('posts a Slack incoming-webhook message', async () => {
    const slack = await receiver(() => ({ status: 200, body: 'ok' }));
    const notifications = dispatcher([{ type: 'slack', url: `${slack.url}/services/T000/B000/XXX` }]);
    notifications.notify(fromRevocation(revocation, BASE));
    const [request] = await slack.received(1);
    expect(request?.url).toBe('/services/T000/B000/XXX');
    const message = request?.json as { text: string; blocks: { type: string }[] };
    expect(message.text).toContain('revoked task task-1');
    expect(message.blocks.map((block) => block.type)).toEqual(['header', 'section', 'section', 'context']);
    expect(JSON.stringify(message.blocks)).toContain('privilege_admin_unseen');
  });

  it('posts Alertmanager v2 alerts, and resolves them on restore', async () => {
    const alertmanager = await receiver();
    const notifications = dispatcher([{ type: 'alertmanager', url: alertmanager.url, minSeverity: 'info' }]);
    notifications.notify(fromRevocation(revocation, BASE));
    notifications.notify(
      fromRevocation(
        {
          ...revocation,
          id: 'rev-2',
          action: 'restore',
          source: 'manual',
          actor: 'alice',
          reason: 'false positive',
          timeMs: revocation.timeMs + 60_000,
        },
        BASE,
      ),
    );
    const [fired, resolved] = await alertmanager.received(2);
    expect(fired?.url).toBe('/api/v2/alerts');
    const [alert] = fired?.json as Record<string, unknown>[];
    expect(alert).toMatchObject({
      labels: {
        alertname: 'TriplineTaskRevoked',
        severity: 'critical',
        task_id: 'task-1',
        task_type: 'customer_refund',
        agent_id: 'refund-agent-1',
        source: 'tripline',
      },
      startsAt: '2026-01-02T03:04:05.000Z',
      generatorURL: `${BASE}/v1/revocations/rev-1`,
    });
    expect(alert?.endsAt).toBeUndefined();
    const [resolution] = resolved?.json as Record<string, unknown>[];
    expect(resolution?.labels).toEqual(alert?.labels);
    expect(typeof resolution?.endsAt).toBe('string');
  });

  it('posts PagerDuty Events v2 trigger and resolve with one dedup key', async () => {
    const pagerduty = await receiver(() => ({ status: 202, body: { status: 'success', dedup_key: 'x' } }));
    const notifications = dispatcher([
      { type: 'pagerduty', url: `${pagerduty.url}/v2/enqueue`, routingKey: 'R0UT1NGKEY', minSeverity: 'info' },
    ]);
    notifications.notify(fromRevocation(revocation, BASE));
    notifications.notify(
      fromRevocation(
        { ...revocation, id: 'rev-2', action: 'restore', source: 'manual', actor: 'alice', reason: 'false positive' },
        BASE,
      ),
    );
    const [trigger, resolve] = await pagerduty.received(2);
    expect(trigger?.url).toBe('/v2/enqueue');
    expect(trigger?.json).toMatchObject({
      routing_key: 'R0UT1NGKEY',
      event_action: 'trigger',
      payload: {
        severity: 'critical',
        source: 'tripline',
        component: 'customer_refund',
        group: 'refund-agent-1',
        class: 'revocation',
      },
    });
    expect((trigger?.json as { payload: { summary: string } }).payload.summary).toContain('task-1');
    expect(resolve?.json).toMatchObject({
      routing_key: 'R0UT1NGKEY',
      event_action: 'resolve',
      dedup_key: (trigger?.json as { dedup_key: string }).dedup_key,
    });
  });
});

describe('routing and isolation', () => {
  it('routes by kind, severity and task type', async () => {
    const critical = await receiver();
    const refunds = await receiver();
    const everything = await receiver();
    const notifications = dispatcher([
      {
        type: 'webhook',
        name: 'critical-revocations',
        url: critical.url,
        secret: 's',
        minSeverity: 'critical',
        kinds: ['revocation'],
      },
      {
        type: 'webhook',
        name: 'refund-team',
        url: refunds.url,
        secret: 's',
        minSeverity: 'warning',
        taskTypes: ['customer_refund'],
      },
      { type: 'webhook', name: 'everything', url: everything.url, secret: 's', minSeverity: 'info' },
    ]);
    const warningAlert = fromAlert(
      {
        id: 'a-1',
        tenant: 'default',
        taskId: 'task-9',
        taskType: 'triage_alert',
        agentId: 'x',
        eventId: 'e',
        timeMs: Date.now(),
        score: 60,
        decision: 'alert',
        regime: 'rules',
        reasons: ['odd'],
        shadow: false,
      },
      BASE,
    );
    expect(notifications.notify(warningAlert)).toEqual(['everything']);
    expect(notifications.notify(fromRevocation(revocation, BASE))).toEqual([
      'critical-revocations',
      'refund-team',
      'everything',
    ]);
    const shadow = fromAlert(
      {
        id: 'a-2',
        tenant: 'default',
        taskId: 'task-1',
        taskType: 'customer_refund',
        agentId: 'x',
        eventId: 'e',
        timeMs: Date.now(),
        score: 95,
        decision: 'revoke',
        regime: 'rules',
        reasons: ['odd'],
        shadow: true,
      },
      BASE,
    );
    expect(shadow.severity).toBe('info');
    expect(notifications.notify(shadow)).toEqual(['everything']);
    await notifications.idle();
    expect(critical.requests).toHaveLength(1);
    expect(refunds.requests).toHaveLength(1);
    expect(everything.requests).toHaveLength(3);
  });

  it('a hanging destination delays neither the caller nor the other destinations', async () => {
    const hanging = await receiver(() => 'hang');
    const slack = await receiver();
    const webhook = await receiver();
    const notifications = dispatcher([
      { type: 'webhook', name: 'hanging', url: hanging.url, secret: 's', timeoutMs: 30_000, maxAttempts: 1 },
      { type: 'slack', name: 'slack', url: slack.url },
      { type: 'webhook', name: 'webhook', url: webhook.url, secret: 's' },
    ]);
    const delivered: Record<string, number> = {};
    notifications.onDelivery((record) => (delivered[record.destination] = record.totalMs));
    for (let i = 0; i < 5; i += 1) {
      const queued = notifications.notify(fromRevocation({ ...revocation, id: `rev-hang-${i}` }, BASE));
      // notify() only enqueues: it returns synchronously (no promise to wait on), whatever the destinations do.
      expect(queued).not.toBeInstanceOf(Promise);
      expect(queued).toEqual(['hanging', 'slack', 'webhook']);
    }
    await slack.received(5);
    await webhook.received(5);
    await hanging.received(4);
    // The others were delivered while the hanging one still holds its requests open.
    expect(delivered.hanging).toBeUndefined();
    expect(delivered.slack).toBeDefined();
    expect(delivered.webhook).toBeDefined();
  });

  it("one tenant's flood drops its own oldest notifications, never another tenant's", async () => {
    // The first request hangs until its timeout, so the destination's queue fills behind it.
    const hook = await receiver((_request, index) => (index === 0 ? 'hang' : { status: 200 }));
    const configs = parseNotifierConfigs([{ type: 'webhook', url: hook.url, secret: 's', maxQueued: 10 }]);
    expect(configs[0]?.maxQueuedPerTenant).toBe(10);
    const small = createDispatcher(
      parseNotifierConfigs([
        { type: 'webhook', name: 'ops', url: hook.url, secret: 's', timeoutMs: 100, maxAttempts: 1, concurrency: 1 },
      ]).map((config) => ({ ...config, maxQueued: 10, maxQueuedPerTenant: 6 })),
      logger,
    );
    dispatchers.push(small);
    const of = (tenant: string, id: string) => fromRevocation({ ...revocation, tenant, id }, BASE);
    small.notify(of('quiet', 'quiet-0'));
    await hook.received(1);
    for (let i = 1; i <= 3; i += 1) small.notify(of('quiet', `quiet-${i}`));
    for (let i = 0; i < 50; i += 1) small.notify(of('noisy', `noisy-${i}`));
    await small.idle();
    const delivered = hook.requests
      .slice(1)
      .map((request) => (request.json as { data: { revocation: Revocation } }).data.revocation.id);
    const noisy = delivered.filter((id) => id.startsWith('noisy-'));
    // Every notification of the quiet tenant is delivered; the noisy one keeps its newest, within its share.
    expect(delivered.filter((id) => id.startsWith('quiet-'))).toEqual(['quiet-1', 'quiet-2', 'quiet-3']);
    expect(noisy).toEqual(Array.from({ length: 6 }, (_, i) => `noisy-${44 + i}`));
    expect(small.dropped()).toEqual([{ destination: 'ops', tenant: 'noisy', count: 44 }]);
  });

  it('the whole queue full: the tenant holding the most drops its oldest', async () => {
    const hook = await receiver((_request, index) => (index === 0 ? 'hang' : { status: 200 }));
    const small = createDispatcher(
      parseNotifierConfigs([
        { type: 'webhook', name: 'ops', url: hook.url, secret: 's', timeoutMs: 100, maxAttempts: 1, concurrency: 1 },
      ]).map((config) => ({ ...config, maxQueued: 8 })),
      logger,
    );
    dispatchers.push(small);
    const of = (tenant: string, id: string) => fromRevocation({ ...revocation, tenant, id }, BASE);
    small.notify(of('a', 'a-0'));
    await hook.received(1);
    small.notify(of('b', 'b-1'));
    small.notify(of('c', 'c-1'));
    for (let i = 1; i <= 20; i += 1) small.notify(of('a', `a-${i}`));
    small.notify(of('b', 'b-2'));
    await small.idle();
    const delivered = hook.requests
      .slice(1)
      .map((request) => (request.json as { data: { revocation: Revocation } }).data.revocation.id);
    expect(delivered.filter((id) => !id.startsWith('a-'))).toEqual(['b-1', 'c-1', 'b-2']);
    expect(small.dropped()).toEqual([{ destination: 'ops', tenant: 'a', count: 15 }]);
  });

  it('rejects a bad notifier configuration with a message that names the key', () => {
    expect(() => parseNotifierConfigs([{ type: 'webhook', url: 'http://x' }])).toThrow(/entry 0\.secret is required/);
    expect(() => parseNotifierConfigs([{ type: 'pagerduty' }])).toThrow(/routingKey is required/);
    expect(() => parseNotifierConfigs([{ type: 'email', url: 'http://x' }])).toThrow(/entry 0\.type must be one of/);
    expect(() => parseNotifierConfigs([{ type: 'slack', url: 'http://x', minSeverity: 'loud' }])).toThrow(
      /minSeverity/,
    );
    expect(parseNotifierConfigs([{ type: 'pagerduty', routingKey: 'k' }])[0]?.url).toBe(
      'https://events.pagerduty.com/v2/enqueue',
    );
  });
});
