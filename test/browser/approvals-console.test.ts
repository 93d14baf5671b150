/**
 * The console's approvals (services/api/console, docs/approvals.md) in a real browser: Debian's Chromium driven by
 * playwright-core, against an embedded Tripline with the shipped policies. A task of type customer_refund asks
 * (POST /v1/check, with its task token) to refund 900, above the 500 that `approval.large-refunds` allows without a
 * person: the answer is `pending`. Opened from the notification's link (`/#approval=<id>`), the console shows the
 * approval with its call and arguments; an operator approves it through the page (button, reason, name), and the
 * same call is then allowed; another is denied through the page and stays denied. A viewer sees no way around it.
 *
 * Needs `apt-get install -y chromium` (/usr/bin/chromium); the test fails, never skips, without it.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../services/app/config.ts';
import { startEmbedded } from '../../services/app/embedded.ts';
import type { RunningTripline } from '../../services/app/embedded.ts';
import { createLogger } from '../../services/shared/logger.ts';
import { TEST_AUTH_ENV, adminHeaders, agentHeaders } from '../helpers/auth.ts';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

interface CheckAnswer {
  allowed: boolean;
  decision: string;
  approvalId?: string;
  approval?: { url: string };
  reasons: string[];
}

describe('approvals in the console, in Chromium', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-approvals-console-'));
  const profileDir = mkdtempSync(join(tmpdir(), 'tripline-chromium-'));
  let running: RunningTripline;
  let operatorToken = '';
  let viewerToken = '';
  let taskToken = '';
  let context: BrowserContext;
  let page: Page;
  const problems: string[] = [];

  async function post(path: string, headers: Record<string, string>, body: unknown): Promise<unknown> {
    const response = await fetch(`${running.apiUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    return response.json();
  }

  function check(amount: number): Promise<CheckAnswer> {
    return post('/v1/check', agentHeaders, {
      token: taskToken,
      tool: 'issue_refund',
      resource: 'payments',
      sideEffect: 'write',
      arguments: { order: 'o-42', amount },
    }) as Promise<CheckAnswer>;
  }

  async function getApproval(id: string): Promise<Record<string, unknown>> {
    const response = await fetch(`${running.apiUrl}/v1/approvals/${id}`, { headers: adminHeaders });
    return (await response.json()) as Record<string, unknown>;
  }

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`The console test needs Debian's Chromium at ${CHROMIUM}: apt-get install -y chromium`);
    running = await startEmbedded(
      loadConfig({
        TRIPLINE_DATA_DIR: dataDir,
        TRIPLINE_OTLP_HOST: '127.0.0.1',
        TRIPLINE_OTLP_PORT: '0',
        TRIPLINE_API_HOST: '127.0.0.1',
        TRIPLINE_API_PORT: '0',
        ...TEST_AUTH_ENV,
      }),
      createLogger('warn'),
    );
    const token = (role: 'operator' | 'viewer', name: string) =>
      running.auth.control.createToken({ tenant: 'default', role, name, createdBy: 'test' });
    operatorToken = (await token('operator', 'ops console')).token;
    viewerToken = (await token('viewer', 'wall screen')).token;
    const started = (await post('/v1/tasks', agentHeaders, {
      agentId: 'refund-agent-console',
      taskType: 'customer_refund',
      taskId: 'refund-console-1',
      tools: ['get_order', 'issue_refund'],
      resources: ['payments'],
      scopes: ['payments:refund'],
    })) as { token: string };
    taskToken = started.token;

    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1440, height: 1000 },
      timezoneId: 'UTC',
      locale: 'en-US',
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
  }, 180_000);

  afterAll(async () => {
    await context.close();
    await running.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(profileDir, { recursive: true, force: true });
  });

  async function signIn(target: Page, token: string, url: string): Promise<void> {
    await target.goto(url);
    await target.locator('#login-dialog').waitFor({ state: 'visible' });
    await target.locator('#login-token').fill(token);
    await target.locator('#login-submit').click();
    await target.locator('#login-dialog').waitFor({ state: 'hidden' });
  }

  it('approves a pending call through the page; the same call is then allowed once', async () => {
    const pending = await check(900);
    expect(pending).toMatchObject({ allowed: false, decision: 'pending' });
    const id = pending.approvalId ?? '';
    const link = new URL(pending.approval?.url ?? '');
    expect(link.hash).toBe(`#approval=${id}`);

    // Opened from the notification's link: the approval is marked.
    await signIn(page, operatorToken, `${running.apiUrl}/${link.hash}`);
    const item = page.locator(`#approvals li[data-approval-id="${id}"][data-status="pending"]`);
    await item.waitFor();
    expect(await item.getAttribute('class')).toContain('focused');
    const text = (await item.textContent()) ?? '';
    expect(text).toContain('issue_refund on payments');
    expect(text).toContain('"amount":900');
    expect(text).toContain('refund-agent-console');

    await item.locator('button[data-approval-action="approve"]').click();
    await page.locator('#action-dialog').waitFor({ state: 'visible' });
    expect(await page.locator('#dialog-title').textContent()).toBe(
      'Approve issue_refund {"amount":900,"order":"o-42"}',
    );
    await page.locator('#dialog-reason').fill('Customer called; the order was damaged.');
    await page.locator('#dialog-actor').fill('Alice Martin');
    await page.locator('#dialog-confirm').click();
    await page.locator('#action-dialog').waitFor({ state: 'hidden' });
    await page.locator(`#approvals li[data-approval-id="${id}"][data-status="approved"]`).waitFor();
    expect(await page.locator('#toast').textContent()).toContain('Approved issue_refund');

    expect(await getApproval(id)).toMatchObject({
      status: 'approved',
      decidedBy: 'Alice Martin (via ops console)',
      decisionReason: 'Customer called; the order was damaged.',
    });
    const allowed = await check(900);
    expect(allowed).toMatchObject({ allowed: true, decision: 'allow', approvalId: id });
    await page.locator(`#approvals li[data-approval-id="${id}"][data-status="used"]`).waitFor();
    // Used once: the same call asks again.
    expect(await check(900)).toMatchObject({ decision: 'pending' });
  });

  it('denies through the page, and the call stays denied', async () => {
    const pending = await check(2500);
    const id = pending.approvalId ?? '';
    const item = page.locator(`#approvals li[data-approval-id="${id}"][data-status="pending"]`);
    await item.waitFor();
    await item.locator('button[data-approval-action="deny"]').click();
    await page.locator('#action-dialog').waitFor({ state: 'visible' });
    // The name is remembered from the last action.
    expect(await page.locator('#dialog-actor').inputValue()).toBe('Alice Martin');
    await page.locator('#dialog-reason').fill('Above the goodwill budget.');
    await page.locator('#dialog-confirm').click();
    await page.locator(`#approvals li[data-approval-id="${id}"][data-status="denied"]`).waitFor();
    const denied = await check(2500);
    expect(denied).toMatchObject({ allowed: false, decision: 'deny' });
    expect(denied.reasons.join(' ')).toContain('Alice Martin (via ops console) denied this call');
    expect(problems).toEqual([]);
  });

  it('lets a viewer see approvals but not approve', async () => {
    const pending = await check(3100);
    const id = pending.approvalId ?? '';
    const viewer = await context.newPage();
    try {
      await signIn(viewer, viewerToken, running.apiUrl);
      const item = viewer.locator(`#approvals li[data-approval-id="${id}"][data-status="pending"]`);
      await item.waitFor();
      await item.locator('button[data-approval-action="approve"]').click();
      await viewer.locator('#dialog-reason').fill('trying');
      await viewer.locator('#dialog-actor').fill('Eve');
      await viewer.locator('#dialog-confirm').click();
      const error = viewer.locator('#dialog-error');
      await error.waitFor({ state: 'visible' });
      expect(await error.textContent()).toContain('a viewer token may not');
      expect((await getApproval(id)).status).toBe('pending');
    } finally {
      await viewer.close();
    }
  });
});
