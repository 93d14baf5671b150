/**
 * The console's task timeline page (services/api/console/timeline-page.ts) in a real browser: Debian's Chromium
 * driven by playwright-core, against Tripline started as `npm start` does, after the detector killed a task of a
 * real OpenTelemetry SDK agent (the TypeScript agent helpers) that held a task token and a lease.
 *
 * - a viewer signs in on the console, follows the killed task's "timeline" link from the revocations feed;
 * - the page shows the story in order (events, alert, revocation, token dead, lease revoked, verification), with
 *   the summary tiles, under the console's strict CSP with no script error;
 * - the "Download JSON lines" button saves exactly the API's export;
 * - the screenshot docs/timeline.md shows: written to docs/images/timeline.png with UPDATE_TIMELINE_SCREENSHOT=1.
 *
 * Needs `apt-get install -y chromium` (/usr/bin/chromium); the test fails, never skips, without it.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskRevokedError, startTelemetry } from '../../kits/typescript/src/index.ts';
import type { Telemetry } from '../../kits/typescript/src/index.ts';
import { startTriplineProcess } from '../helpers/tripline-process.ts';
import type { TriplineProcess } from '../helpers/tripline-process.ts';
import { waitFor } from '../helpers/wait.ts';
import { TEST_AGENT_TOKEN, TEST_AUTH_ENV, adminHeaders } from '../helpers/auth.ts';

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
const SCREENSHOT = fileURLToPath(new URL('../../docs/images/timeline.png', import.meta.url));
const TASK_ID = 'refund-7f3a';

describe('the task timeline page in Chromium', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-timeline-'));
  const profileDir = mkdtempSync(join(tmpdir(), 'tripline-chromium-'));
  let tripline: TriplineProcess;
  let telemetry: Telemetry;
  let viewerToken = '';
  let context: BrowserContext;
  let page: Page;
  /** Script errors, failed requests and CSP violations the page ran into. */
  const problems: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`The timeline test needs Debian's Chromium at ${CHROMIUM}: apt-get install -y chromium`);
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
      body: JSON.stringify({ value: 'pk_live_browser' }),
    });
    expect(put.status).toBe(200);
    const created = await fetch(`${tripline.apiUrl}/v1/admin/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...adminHeaders },
      body: JSON.stringify({ role: 'viewer', name: 'incident review' }),
    });
    viewerToken = ((await created.json()) as { token: string }).token;

    // A refund agent that leases the payments key, reads orders, then grants itself admin without approval.
    telemetry = startTelemetry({
      endpoint: tripline.otlpUrl,
      apiUrl: tripline.apiUrl,
      token: TEST_AGENT_TOKEN,
      agentId: 'refund-agent-7',
      credentials: true,
      guard: true,
      exportDelayMs: 20,
    });
    const refused = await telemetry
      .task(
        'customer_refund',
        async (task) => {
          await task.lease('payments-api-key');
          await task.toolCall('get_order', { sideEffect: 'read' }, () => undefined);
          await task.dataAccess(
            { system: 'postgresql', namespace: 'billing', collection: 'orders', operation: 'SELECT', rows: 1 },
            () => undefined,
          );
          await task.toolCall('check_policy', { sideEffect: 'read' }, () => undefined);
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
            await task.toolCall('issue_refund', { sideEffect: 'write' }, () => undefined);
            await sleep(5);
          }
        },
        {
          taskId: TASK_ID,
          tools: ['get_order', 'check_policy', 'issue_refund'],
          resources: ['billing.orders'],
          scopes: ['payments:refund'],
        },
      )
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(TaskRevokedError);
    await waitFor(
      'the kill to be verified',
      async () => {
        const response = await fetch(`${tripline.apiUrl}/v1/tasks/${TASK_ID}/timeline?limit=1000`, {
          headers: adminHeaders,
        });
        const body = (await response.json()) as { items: { kind: string; detail: { outcome?: string } }[] };
        return body.items.some((item) => item.kind === 'verification' && item.detail.outcome === 'verified');
      },
      30_000,
      200,
    );

    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1440, height: 1200 },
      deviceScaleFactor: 1,
      timezoneId: 'UTC',
      locale: 'en-US',
      acceptDownloads: true,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
  }, 240_000);

  /** One attribute of every entry on the page, in page order. */
  async function attributes(name: string): Promise<string[]> {
    const values: string[] = [];
    for (const item of await page.locator('#timeline li.entry').all())
      values.push((await item.getAttribute(name)) ?? '');
    return values;
  }

  afterAll(async () => {
    await context.close();
    await telemetry.shutdown();
    await tripline.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(profileDir, { recursive: true, force: true });
  });

  it('is linked from the console: a viewer follows the killed task to its timeline', async () => {
    expect((await page.goto(tripline.apiUrl))?.status()).toBe(200);
    await page.locator('#login-token').fill(viewerToken);
    await page.locator('#login-submit').click();
    await page.locator('#login-dialog').waitFor({ state: 'hidden' });
    const link = page.locator(`#revocations li[data-task-id="${TASK_ID}"][data-action="revoke"] a.timeline-link`);
    await link.click();
    await page.waitForURL(`**/console/timeline?task=${TASK_ID}`);
    await page.locator('body[data-loaded="true"]').waitFor();
    expect(await page.locator('#task-title').textContent()).toBe(`Task ${TASK_ID}`);
  });

  it('tells the story in order: what the agent did, what Tripline decided, when the credentials died, what verification found', async () => {
    const kinds = await attributes('data-kind');
    const steps = [
      kinds.indexOf('credential_issued'),
      kinds.indexOf('lease_issued'),
      kinds.indexOf('privilege_change'),
      kinds.indexOf('alert'),
      kinds.indexOf('revocation'),
      kinds.indexOf('credential_revoked'),
      kinds.indexOf('lease_ended'),
      kinds.indexOf('verification'),
    ];
    expect(steps.every((at) => at >= 0)).toBe(true);
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    const times = (await attributes('data-time-ms')).map(Number);
    expect(times).toEqual([...times].sort((a, b) => a - b));

    const revocation = page.locator('#timeline li.entry[data-kind="revocation"] .summary');
    expect(await revocation.textContent()).toMatch(/^Task revoked by the detector \(score \d+\)/);
    const tiles = await page.locator('#story .stat .value').allTextContents();
    expect(tiles[1]).toMatch(/^revoked at \d\d:\d\d:\d\d\.\d{3}$/);
    expect(tiles[3]).toBe('verified');

    // "What Tripline decided" hides the routine allowed events and keeps every decision.
    const all = await page.locator('#timeline li.entry').count();
    await page.locator('#filter').selectOption('decisive');
    const decisive = await page.locator('#timeline li.entry').count();
    expect(decisive).toBeLessThan(all);
    expect(await page.locator('#timeline li.entry[data-kind="revocation"]').count()).toBe(1);
    await page.locator('#filter').selectOption('all');
  });

  it('downloads exactly the API’s JSON-lines export', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#download').click()]);
    expect(download.suggestedFilename()).toBe(`timeline-${TASK_ID}.jsonl`);
    const saved = readFileSync(await download.path(), 'utf8');
    const api = await fetch(`${tripline.apiUrl}/v1/tasks/${TASK_ID}/timeline?format=jsonl`, { headers: adminHeaders });
    expect(saved).toBe(await api.text());
    expect(saved.trim().split('\n').length).toBe(await page.locator('#timeline li.entry').count());
  });

  it('takes the screenshot docs/timeline.md shows', async () => {
    const path = process.env.UPDATE_TIMELINE_SCREENSHOT === '1' ? SCREENSHOT : join(dataDir, 'timeline.png');
    mkdirSync(join(path, '..'), { recursive: true });
    // What a person reads after the kill: the decisions, without the routine allowed events.
    await page.locator('#filter').selectOption('decisive');
    const image = await page.screenshot({ path, fullPage: true });
    expect(image.length).toBeGreaterThan(10_000);
    expect(problems).toEqual([]);
  });
});
