/**
 * Approval points end to end, the way a user runs them: Tripline started as `npm start` does (a child process,
 * the shipped policies, among them `approval.large-refunds`: a refund above 500 needs a person), an agent
 * instrumented with the TypeScript kit (real `@opentelemetry/sdk-node`, OTLP/HTTP, a task token from POST
 * /v1/tasks), an operator with an operator token of their own, and a Slack receiver.
 *
 * - the agent asks for a refund above its limit: /v1/check answers `pending`, the kit waits; Slack gets a link to
 *   the approval in the console; an agent token trying to approve gets 403 and a task token 401; the operator
 *   approves and the same call proceeds (it runs once, its span reaches Tripline);
 * - the same call again needs a new approval (an approval lets its call through once), and so does a changed
 *   argument; a refund under the limit needs none;
 * - a denial ends the wait with ApprovalDeniedError naming the approver, and the same call stays denied;
 * - an approval nobody decides expires (TRIPLINE_APPROVAL_TTL_SECONDS) and ends the wait with ApprovalExpiredError;
 *   the caller's own bound ends it with ApprovalTimeoutError; `onPending: 'fail'` with ApprovalPendingError;
 * - another task's token cannot read the approval; every step is in the audit trail with its actor;
 * - the Python kit (the `tripline` wheel, kits/python/tests/e2e/approval_agent.py, real OpenTelemetry SDK) waits,
 *   proceeds once approved, asks again for the same call, and ends its wait on a denial and on its own bound.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApprovalDeniedError,
  ApprovalExpiredError,
  ApprovalPendingError,
  ApprovalTimeoutError,
  CallDeniedError,
  startTelemetry,
} from '../../kits/typescript/src/index.ts';
import type { TaskHandle, Telemetry } from '../../kits/typescript/src/index.ts';
import { TEST_AGENT_TOKEN, TEST_AUTH_ENV, adminHeaders, agentHeaders } from '../helpers/auth.ts';
import { startTriplineProcess } from '../helpers/tripline-process.ts';
import type { TriplineProcess } from '../helpers/tripline-process.ts';
import { waitFor } from '../helpers/wait.ts';
import { startReceiver } from '../integration/killswitch/helpers.ts';
import { spawnKitScript } from '../helpers/python-kit.ts';
import type { Receiver } from '../integration/killswitch/helpers.ts';

const APPROVAL_TTL_SECONDS = 12;
const AGENT_ID = 'refund-agent-approvals';
const TASK_REQUEST = {
  tools: ['get_order', 'issue_refund'],
  resources: ['billing.orders', 'payments'],
  scopes: ['orders:read', 'payments:refund'],
};

interface Approval {
  approvalId: string;
  status: string;
  taskId: string;
  tool: string;
  arguments: Record<string, unknown>;
  decidedBy: string | null;
  decisionReason: string | null;
  url: string;
}

describe('approval points, end to end', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-approvals-'));
  let tripline: TriplineProcess;
  let slack: Receiver;
  let telemetry: Telemetry;
  let operatorHeaders: { authorization: string };

  async function api(
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${tripline.apiUrl}${path}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  }

  /** The task's pending approval, once the agent's check asked for it. */
  async function pendingOf(taskId: string, exclude: string[] = []): Promise<Approval> {
    return waitFor(`a pending approval of ${taskId}`, async () => {
      const { body } = await api(
        'GET',
        `/v1/approvals?status=pending&task_id=${encodeURIComponent(taskId)}`,
        operatorHeaders,
      );
      return (body.items as Approval[]).find((item) => !exclude.includes(item.approvalId));
    });
  }

  /** Runs `work` inside one task of the refund agent, with its task token. */
  function inTask<T>(taskId: string, work: (task: TaskHandle) => Promise<T>): Promise<T> {
    return telemetry.task('customer_refund', work, { taskId, ...TASK_REQUEST });
  }

  function refund(task: TaskHandle, args: Record<string, unknown>, ran: string[], check: object = {}): Promise<string> {
    return task.toolCall(
      'issue_refund',
      {
        sideEffect: 'write',
        check: { resource: 'payments', arguments: args, pollIntervalMs: 50, timeoutMs: 60_000, ...check },
      },
      () => {
        ran.push(JSON.stringify(args));
        return `refunded ${String(args.amount)}`;
      },
    );
  }

  beforeAll(async () => {
    slack = await startReceiver(() => ({ status: 200, body: 'ok' }));
    tripline = await startTriplineProcess({
      ...TEST_AUTH_ENV,
      TRIPLINE_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      TRIPLINE_APPROVAL_TTL_SECONDS: String(APPROVAL_TTL_SECONDS),
      TRIPLINE_PUBLIC_URL: 'https://tripline.example.com',
      TRIPLINE_NOTIFIERS: JSON.stringify([{ type: 'slack', url: slack.url, kinds: ['approval_requested'] }]),
    });
    const created = await api('POST', '/v1/admin/tokens', adminHeaders, { role: 'operator', name: 'alice' });
    expect(created.status).toBe(201);
    operatorHeaders = { authorization: `Bearer ${String(created.body.token)}` };
    telemetry = startTelemetry({
      endpoint: tripline.otlpUrl,
      apiUrl: tripline.apiUrl,
      token: TEST_AGENT_TOKEN,
      agentId: AGENT_ID,
      credentials: true,
      exportDelayMs: 20,
    });
  }, 120_000);

  afterAll(async () => {
    await telemetry.shutdown();
    await tripline.stop();
    await slack.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('waits for a person: only an operator can approve, and the same call then proceeds once', async () => {
    const ran: string[] = [];
    const taskId = 'approvals-e2e-approve';
    const outcome = inTask(taskId, async (task) => {
      const first = await refund(task, { order: 'o-1', amount: 900 }, ran);
      // The approval was used: the same call asks again (fail fast), and so does a changed argument.
      const again = await refund(task, { order: 'o-1', amount: 900 }, ran, { onPending: 'fail' }).catch(
        (error: unknown) => error,
      );
      const changed = await refund(task, { order: 'o-1', amount: 950 }, ran, { onPending: 'fail' }).catch(
        (error: unknown) => error,
      );
      const small = await refund(task, { order: 'o-2', amount: 120 }, ran);
      return { first, again, changed, small, token: task.token ?? '' };
    });

    const approval = await pendingOf(taskId);
    expect(approval).toMatchObject({ tool: 'issue_refund', arguments: { order: 'o-1', amount: 900 } });
    expect(approval.url).toBe(`https://tripline.example.com/#approval=${approval.approvalId}`);
    expect(ran).toEqual([]); // nothing ran while it waits

    // Slack: an approval request with the link to the console page.
    const [message] = await slack.received(1);
    expect(message?.body).toContain(`https://tripline.example.com/#approval=${approval.approvalId}|approve or deny`);
    expect(message?.body).toContain('issue_refund');

    // The agent cannot approve its own request: its agent token is refused (403), a task token is no API token (401).
    const byAgent = await api('POST', `/v1/approvals/${approval.approvalId}/approve`, agentHeaders, {});
    expect(byAgent.status).toBe(403);
    expect(byAgent.body.error).toMatchObject({ code: 'FORBIDDEN' });
    const credentials = await api('GET', `/v1/tasks/${taskId}/credentials`, adminHeaders);
    expect((credentials.body.items as unknown[]).length).toBe(1);
    const viewer = await api('POST', '/v1/admin/tokens', adminHeaders, { role: 'viewer', name: 'vic' });
    const byViewer = await api(
      'POST',
      `/v1/approvals/${approval.approvalId}/approve`,
      { authorization: `Bearer ${String(viewer.body.token)}` },
      {},
    );
    expect(byViewer.status).toBe(403);
    expect((await api('GET', `/v1/approvals/${approval.approvalId}`, adminHeaders)).body.status).toBe('pending');

    const approved = await api('POST', `/v1/approvals/${approval.approvalId}/approve`, operatorHeaders, {
      reason: 'order checked',
    });
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ status: 'approved', decidedBy: 'alice', decisionReason: 'order checked' });
    const twice = await api('POST', `/v1/approvals/${approval.approvalId}/deny`, operatorHeaders, {});
    expect(twice.status).toBe(409);

    const result = await outcome;
    expect(result.first).toBe('refunded 900');
    expect(result.small).toBe('refunded 120');
    expect(ran).toEqual([JSON.stringify({ order: 'o-1', amount: 900 }), JSON.stringify({ order: 'o-2', amount: 120 })]);
    expect(result.again).toBeInstanceOf(ApprovalPendingError);
    expect(result.changed).toBeInstanceOf(ApprovalPendingError);
    const again = result.again as ApprovalPendingError;
    const changed = result.changed as ApprovalPendingError;
    expect(new Set([approval.approvalId, again.approvalId, changed.approvalId]).size).toBe(3);
    expect(changed.url).toBe(`https://tripline.example.com/#approval=${changed.approvalId}`);

    expect((await api('GET', `/v1/approvals/${approval.approvalId}`, adminHeaders)).body).toMatchObject({
      status: 'used',
      decidedBy: 'alice',
    });
    // The agent polls its own approval with its task token; another task's token finds nothing.
    const own = await api('GET', `/v1/approvals/${approval.approvalId}/status`, {
      authorization: `Bearer ${result.token}`,
    });
    expect(own.body).toMatchObject({ status: 'used', decidedBy: 'alice' });
    const other = await inTask('approvals-e2e-other', async (task) =>
      api('GET', `/v1/approvals/${approval.approvalId}/status`, { authorization: `Bearer ${task.token ?? ''}` }),
    );
    expect(other.status).toBe(404);
    const withTaskToken = await api('POST', `/v1/approvals/${again.approvalId}/approve`, {
      authorization: `Bearer ${result.token}`,
    });
    expect(withTaskToken.status).toBe(401);

    // The approved call's span reached Tripline.
    await telemetry.forceFlush();
    await waitFor('the approved refund on the task', async () => {
      const { body } = await api('GET', `/v1/tasks/${taskId}`, adminHeaders);
      const counts = body.counts as { tool_call?: number } | undefined;
      return (counts?.tool_call ?? 0) >= 2;
    });

    // The decisions: pending, then allow with the approval.
    const decisions = await api('GET', `/v1/decisions?task_id=${taskId}`, adminHeaders);
    const kinds = (decisions.body.items as { decision: string; context: { approval_id?: string } }[])
      .filter((item) => item.context.approval_id === approval.approvalId)
      .map((item) => item.decision)
      .sort();
    expect(kinds).toEqual(['allow', 'pending']);

    // The task's timeline holds the approval's steps in order, between the check that asked and the call it let by.
    const timeline = await api('GET', `/v1/tasks/${taskId}/timeline?limit=1000`, adminHeaders);
    const steps = (timeline.body.items as { kind: string; detail: { approvalId?: string; step?: string } }[])
      .filter((item) => item.kind === 'approval' && item.detail.approvalId === approval.approvalId)
      .map((item) => item.detail.step);
    expect(steps).toEqual(['requested', 'approved', 'used']);
  });

  it('a denial ends the wait with the approver and reason, and the same call stays denied', async () => {
    const ran: string[] = [];
    const taskId = 'approvals-e2e-deny';
    const outcome = inTask(taskId, async (task) => {
      const first = await refund(task, { order: 'o-9', amount: 2000 }, ran).catch((error: unknown) => error);
      const again = await refund(task, { order: 'o-9', amount: 2000 }, ran).catch((error: unknown) => error);
      return { first, again };
    });
    const approval = await pendingOf(taskId);
    const denied = await api('POST', `/v1/approvals/${approval.approvalId}/deny`, operatorHeaders, {
      reason: 'not eligible',
    });
    expect(denied.body).toMatchObject({ status: 'denied', decidedBy: 'alice' });
    const { first, again } = await outcome;
    expect(first).toBeInstanceOf(ApprovalDeniedError);
    expect(first).toMatchObject({
      code: 'APPROVAL_DENIED',
      approvalId: approval.approvalId,
      decidedBy: 'alice',
      reason: 'not eligible',
    });
    expect(again).toBeInstanceOf(CallDeniedError);
    expect((again as CallDeniedError).reasons.join(' ')).toContain(
      `alice denied this call (approval ${approval.approvalId}`,
    );
    expect(ran).toEqual([]);
  });

  it('an undecided approval expires and ends the wait; the caller can bound the wait itself', async () => {
    const ran: string[] = [];
    const taskId = 'approvals-e2e-expire';
    const { expired, timedOut } = await inTask(taskId, async (task) => {
      const timedOut = await refund(task, { order: 'o-5', amount: 4000 }, ran, { timeoutMs: 300 }).catch(
        (error: unknown) => error,
      );
      const expired = await refund(task, { order: 'o-7', amount: 3000 }, ran).catch((error: unknown) => error);
      return { expired, timedOut };
    });
    expect(timedOut).toBeInstanceOf(ApprovalTimeoutError);
    expect(timedOut).toMatchObject({ code: 'APPROVAL_TIMEOUT', tool: 'issue_refund' });
    expect(expired).toBeInstanceOf(ApprovalExpiredError);
    const expiredId = (expired as ApprovalExpiredError).approvalId;
    expect((await api('GET', `/v1/approvals/${expiredId}`, adminHeaders)).body.status).toBe('expired');
    // Too late to approve.
    expect((await api('POST', `/v1/approvals/${expiredId}/approve`, operatorHeaders, {})).status).toBe(409);
    expect(ran).toEqual([]);

    // Every step is in the audit trail, with its actor.
    const rows = await waitFor('the approval steps in the audit trail', async () => {
      const { body } = await api('GET', '/v1/audit?limit=1000', adminHeaders);
      const items = body.items as { route: string; actor: string; status: number; target: unknown }[];
      const routes = new Set(items.map((item) => item.route));
      return ['approval requested', 'approval used'].every((route) => routes.has(route)) &&
        items.some((item) => item.route === 'approval expired' && JSON.stringify(item.target).includes(expiredId)) &&
        items.some((item) => item.route === '/v1/approvals/:approvalId/deny' && item.status === 200)
        ? items
        : undefined;
    });
    const of = (route: string) => rows.filter((row) => row.route === route);
    expect(of('approval requested').every((row) => row.actor === AGENT_ID)).toBe(true);
    expect(
      of('approval expired').some((row) => JSON.stringify(row.target).includes(expiredId) && row.actor === 'tripline'),
    ).toBe(true);
    expect(of('/v1/approvals/:approvalId/approve').some((row) => row.actor === 'alice' && row.status === 200)).toBe(
      true,
    );
    expect(of('/v1/approvals/:approvalId/approve').some((row) => row.status === 403)).toBe(true);
  });

  it('the Python kit waits for the approval, proceeds once, and ends its wait on a denial or its own bound', async () => {
    const taskId = 'approvals-e2e-python';
    const agent: ChildProcess = await spawnKitScript('approval_agent.py', [
      '--endpoint',
      tripline.otlpUrl,
      '--api',
      tripline.apiUrl,
      '--token',
      TEST_AGENT_TOKEN,
      '--task-id',
      taskId,
    ]);
    let stderr = '';
    agent.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => agent.once('exit', resolve));
    if (agent.stdout === null) throw new Error('the Python agent has no stdout');
    const lines = createInterface({ input: agent.stdout })[Symbol.asyncIterator]();
    const next = async (): Promise<Record<string, unknown>> => {
      const line = await lines.next();
      if (line.done === true) throw new Error(`the Python agent ended: ${stderr}`);
      return JSON.parse(line.value) as Record<string, unknown>;
    };
    const send = (refund: Record<string, unknown>): void => {
      agent.stdin?.write(`${JSON.stringify(refund)}\n`);
    };
    try {
      expect(await next()).toEqual({ started: taskId });

      send({ order: 'p-1', amount: 800 });
      const approval = await pendingOf(taskId);
      expect(approval.arguments).toEqual({ order: 'p-1', amount: 800 });
      expect((await api('POST', `/v1/approvals/${approval.approvalId}/approve`, agentHeaders, {})).status).toBe(403);
      await api('POST', `/v1/approvals/${approval.approvalId}/approve`, operatorHeaders, { reason: 'ok' });
      expect(await next()).toEqual({ ran: true, approval_id: approval.approvalId, order: 'p-1', amount: 800 });

      send({ order: 'p-1', amount: 800, on_pending: 'fail' });
      const again = await next();
      expect(again).toMatchObject({ ran: false, error: 'ApprovalPendingError', code: 'APPROVAL_PENDING' });
      expect(again.approval_id).not.toBe(approval.approvalId);

      send({ order: 'p-2', amount: 1500 });
      const second = await pendingOf(taskId, [approval.approvalId, String(again.approval_id)]);
      await api('POST', `/v1/approvals/${second.approvalId}/deny`, operatorHeaders, { reason: 'duplicate order' });
      expect(await next()).toEqual({
        ran: false,
        error: 'ApprovalDeniedError',
        code: 'APPROVAL_DENIED',
        order: 'p-2',
        amount: 1500,
        approval_id: second.approvalId,
        decided_by: 'alice',
        reason: 'duplicate order',
      });

      send({ order: 'p-3', amount: 1600, timeout_s: 0.3 });
      expect(await next()).toMatchObject({ ran: false, error: 'ApprovalTimeoutError', code: 'APPROVAL_TIMEOUT' });
      agent.stdin?.end();
      expect(await exited).toBe(0);
    } finally {
      agent.kill();
    }
  }, 120_000);
});
