/**
 * A killed task's timeline end to end: Tripline started as `npm start` does (a child process on the embedded
 * defaults: ClickHouse in process, the shipped policies), an agent instrumented with the TypeScript agent helpers
 * (real `@opentelemetry/sdk-node`, OTLP/HTTP, a task token from POST /v1/tasks, a lease on a secret, the guard on
 * server-sent events) that the detector revokes.
 *
 * - GET /v1/tasks/:id/timeline shows every step in order: the task token and the lease issued, the agent's
 *   events, the alert, the revocation, the token dead and the lease revoked, the helper's acknowledgement, the
 *   verification;
 * - the request-time checks (`POST /v1/check`) before and after the kill are on it, allowed then denied;
 * - read page by page (cursor) it holds exactly the entries of the JSON-lines export;
 * - the helper's acknowledgement is there twice: as the kill's delivery and as its audit row;
 * - a person's restore afterwards appears with its audit row; agent and task tokens may not read it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskRevokedError, startTelemetry } from '../../kits/typescript/src/index.ts';
import type { Telemetry } from '../../kits/typescript/src/index.ts';
import { startTriplineProcess } from '../helpers/tripline-process.ts';
import type { TriplineProcess } from '../helpers/tripline-process.ts';
import { waitFor } from '../helpers/wait.ts';
import { TEST_AGENT_TOKEN, TEST_AUTH_ENV, adminHeaders, agentHeaders } from '../helpers/auth.ts';

interface Entry {
  timeMs: number;
  kind: string;
  source: string;
  id: string;
  summary: string;
  detail: Record<string, unknown>;
}

interface TimelineBody {
  taskId: string;
  task: { status: string } | null;
  items: Entry[];
  nextCursor: string | null;
  truncated: boolean;
}

const TASK_ID = 'e2e-timeline-rogue';

describe('a killed task’s timeline, end to end', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-timeline-'));
  let tripline: TriplineProcess;
  let telemetry: Telemetry;
  let revocationId = '';
  let taskToken = '';
  let leaseId = '';

  async function timelinePage(cursor: string | null, limit: number): Promise<TimelineBody> {
    const query = `limit=${limit}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
    const response = await fetch(`${tripline.apiUrl}/v1/tasks/${TASK_ID}/timeline?${query}`, { headers: adminHeaders });
    expect(response.status).toBe(200);
    return (await response.json()) as TimelineBody;
  }

  async function wholeTimeline(limit: number): Promise<Entry[]> {
    const entries: Entry[] = [];
    let cursor: string | null = null;
    do {
      const page = await timelinePage(cursor, limit);
      expect(page.truncated).toBe(false);
      entries.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor !== null);
    return entries;
  }

  /** The request-time check an enforcement point makes before the agent's refund (POST /v1/check). */
  async function check(token: string): Promise<Record<string, unknown>> {
    const response = await fetch(`${tripline.apiUrl}/v1/check`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...agentHeaders },
      body: JSON.stringify({ token, taskId: TASK_ID, tool: 'issue_refund', sideEffect: 'write' }),
    });
    return (await response.json()) as Record<string, unknown>;
  }

  beforeAll(async () => {
    tripline = await startTriplineProcess({
      ...TEST_AUTH_ENV,
      TRIPLINE_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      TRIPLINE_VERIFY_WINDOW_MS: '1500',
      TRIPLINE_VERIFY_CLOCK_SKEW_MS: '50',
    });
    const put = await fetch(`${tripline.apiUrl}/v1/secrets/payments-api-key`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...adminHeaders },
      body: JSON.stringify({ value: 'pk_live_e2e' }),
    });
    expect(put.status).toBe(200);
    telemetry = startTelemetry({
      endpoint: tripline.otlpUrl,
      apiUrl: tripline.apiUrl,
      token: TEST_AGENT_TOKEN,
      agentId: 'refund-agent-7',
      credentials: true,
      guard: true,
      exportDelayMs: 20,
    });
  }, 120_000);

  afterAll(async () => {
    await telemetry.shutdown();
    await tripline.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('the detector kills a task that holds a token and a lease', async () => {
    const refused = await telemetry
      .task(
        'customer_refund',
        async (task) => {
          taskToken = task.token ?? '';
          leaseId = (await task.lease('payments-api-key')).leaseId;
          await task.toolCall('get_order', { sideEffect: 'read' }, () => undefined);
          expect(await check(taskToken)).toMatchObject({ allowed: true });
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
        { taskId: TASK_ID, tools: ['get_order', 'issue_refund'], scopes: ['payments:refund'] },
      )
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(TaskRevokedError);
    revocationId = (refused as TaskRevokedError).revocationId;
    // An enforcement point asks again with the dead token: denied, and recorded.
    expect(await check(taskToken)).toMatchObject({ allowed: false });
    expect(taskToken).not.toBe('');
    expect(leaseId).not.toBe('');
  });

  it('shows every step in order, and the JSON-lines export holds the same entries', async () => {
    // The verification is the last step: it is decided after the verification window.
    await waitFor(
      'the timeline to hold the verification',
      async () => {
        const entries = await wholeTimeline(1000);
        return entries.some((e) => e.kind === 'verification' && e.detail.outcome === 'verified') &&
          entries.some((e) => e.kind === 'policy_decision' && e.detail.decision === 'deny') &&
          entries.some((e) => e.kind === 'audit' && e.detail.route === '/v1/revocations/:revocationId/ack')
          ? entries
          : undefined;
      },
      30_000,
      200,
    );
    const entries = await wholeTimeline(25);
    const times = entries.map((e) => e.timeMs);
    expect(times).toEqual([...times].sort((a, b) => a - b));

    const index = (what: string, match: (e: Entry) => boolean): number => {
      const at = entries.findIndex(match);
      expect(at, `${what} is on the timeline`).toBeGreaterThanOrEqual(0);
      return at;
    };
    const steps = [
      index('the task token issued', (e) => e.kind === 'credential_issued'),
      index('the agent’s first event', (e) => ['tool_call', 'data_access', 'privilege_change'].includes(e.kind)),
      index('the unapproved privilege change', (e) => e.kind === 'privilege_change'),
      index('the alert', (e) => e.kind === 'alert'),
      index('the revocation', (e) => e.kind === 'revocation' && e.detail.revocationId === revocationId),
      index('the task token dead', (e) => e.kind === 'credential_revoked'),
      index('the lease revoked', (e) => e.kind === 'lease_ended' && e.detail.leaseId === leaseId),
      index('the verification', (e) => e.kind === 'verification'),
    ];
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    expect(new Set(steps).size).toBe(steps.length);
    const ack = index('the helper’s acknowledgement', (e) => e.kind === 'acknowledged');
    expect(ack).toBeGreaterThan(steps[4] ?? Infinity);
    const leaseIssued = index('the lease issued', (e) => e.kind === 'lease_issued' && e.detail.leaseId === leaseId);
    expect(leaseIssued).toBeLessThan(steps[3] ?? -1);
    index('the policy allowing the task', (e) => e.kind === 'policy_decision' && e.detail.action === 'start_task');
    const isCheck = (e: Entry, decision: string): boolean =>
      e.kind === 'policy_decision' && e.detail.action === 'call_tool' && e.detail.decision === decision;
    expect(index('the check allowed before the kill', (e) => isCheck(e, 'allow'))).toBeLessThan(steps[3] ?? -1);
    expect(index('the check denied after the kill', (e) => isCheck(e, 'deny'))).toBeGreaterThan(steps[4] ?? Infinity);

    // The helper's acknowledgement is also in the audit trail, with the token that sent it.
    const ackAudit = index('the acknowledgement’s audit row', (e) => e.kind === 'audit');
    expect(entries[ackAudit]?.detail).toMatchObject({ route: '/v1/revocations/:revocationId/ack', role: 'agent' });
    expect(ackAudit).toBeGreaterThan(steps[4] ?? Infinity);
    const byStep = (at: number | undefined): Entry => entries[at ?? -1] as Entry;
    expect(byStep(steps[4]).summary).toMatch(/^Task revoked by the detector \(score \d+\)/);
    expect(byStep(steps[6]).summary).toContain('revoked at Tripline only');
    expect(byStep(steps[7]).detail).toMatchObject({ outcome: 'verified', failures: [] });

    const exported = await fetch(`${tripline.apiUrl}/v1/tasks/${TASK_ID}/timeline?format=jsonl`, {
      headers: adminHeaders,
    });
    expect(exported.headers.get('content-disposition')).toBe(`attachment; filename="timeline-${TASK_ID}.jsonl"`);
    const lines = (await exported.text())
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Entry);
    expect(lines).toEqual(entries);
  });

  it('adds a person’s restore with its audit row; agent and task tokens may not read it', async () => {
    const restore = await fetch(`${tripline.apiUrl}/v1/tasks/${TASK_ID}/restore`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...adminHeaders },
      body: JSON.stringify({ reason: 'checked with the customer', actor: 'dana' }),
    });
    expect(restore.status).toBe(201);
    const entries = await waitFor('the restore and its audit row', async () => {
      const all = await wholeTimeline(1000);
      return all.some((e) => e.kind === 'audit' && e.detail.route === '/v1/tasks/:taskId/restore') &&
        all.some((e) => e.kind === 'restore')
        ? all
        : undefined;
    });
    const restored = entries.find((e) => e.kind === 'restore');
    expect(restored?.summary).toContain('"checked with the customer"');
    const audit = entries.find((e) => e.kind === 'audit' && e.detail.route === '/v1/tasks/:taskId/restore');
    expect(audit?.detail).toMatchObject({ route: '/v1/tasks/:taskId/restore', reason: 'checked with the customer' });

    const asAgent = await fetch(`${tripline.apiUrl}/v1/tasks/${TASK_ID}/timeline`, { headers: agentHeaders });
    expect(asAgent.status).toBe(403);
    const asTask = await fetch(`${tripline.apiUrl}/v1/tasks/${TASK_ID}/timeline`, {
      headers: { authorization: `Bearer ${taskToken}` },
    });
    expect(asTask.status).toBe(401);
  });
});
