/**
 * The built-in console (services/api/console.ts) in a real browser: Debian's Chromium driven by playwright-core
 * (never a downloaded browser), against a real pipeline run (startEmbedded, simulated OpenTelemetry SDK agents of
 * three task types warming up the detector, two rogue tasks the detector revokes).
 *
 * - the page loads and shows the revocations the pipeline produced, the tasks with their scores and reasons,
 *   and the activity sparklines;
 * - a restore and a kill done through the page (button, reason, name) are recorded: GET /v1/revocations shows
 *   them with the actor and reason entered, exactly as an API client's would be.
 *
 * Needs `apt-get install -y chromium` (/usr/bin/chromium); the test fails, never skips, without it.
 * `UPDATE_CONSOLE_SCREENSHOT=1` also writes the screenshot to docs/console.png (the README shows it).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFleet } from '../../collectors/simulator/fleet.ts';
import { generateScenario } from '../../collectors/simulator/scenarios.ts';
import type { TaskPlan } from '../../collectors/simulator/scenarios.ts';
import { loadConfig } from '../../services/app/config.ts';
import { startEmbedded } from '../../services/app/embedded.ts';
import type { RunningTripline } from '../../services/app/embedded.ts';
import { createLogger } from '../../services/shared/logger.ts';
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
const SCREENSHOT = fileURLToPath(new URL('../../docs/console.png', import.meta.url));

const TYPES = ['summarize_ticket', 'triage_alert', 'generate_report'];
const WARMUP = 6;

interface RevocationView {
  id: string;
  taskId: string;
  action: string;
  source: string;
  actor: string;
  reason: string;
}

async function getBody(url: string): Promise<unknown> {
  const response = await fetch(url, { headers: adminHeaders });
  return response.json();
}

function attack(seed: number, taskType: string, agentId: string): TaskPlan {
  const plan = generateScenario({
    seed,
    benignPerType: 0,
    attacksPerPattern: 1,
    agentsPerType: 1,
    taskTypes: [taskType],
    patterns: ['exfiltration_burst'],
  }).tasks[0];
  if (plan === undefined) throw new Error('the scenario produced no attack');
  return { ...plan, agentId };
}

describe('the console in Chromium, over a real pipeline run', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-console-'));
  const profileDir = mkdtempSync(join(tmpdir(), 'tripline-chromium-'));
  let running: RunningTripline;
  let consoleUrl = '';
  let operatorToken = '';
  let viewerToken = '';
  let context: BrowserContext;
  let page: Page;
  const rogue = attack(43, 'summarize_ticket', 'rogue-agent-1');
  const rogue2 = attack(44, 'triage_alert', 'rogue-agent-2');
  let benign: TaskPlan[] = [];
  /** Script errors, failed requests and CSP violations the page ran into. */
  const problems: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`The console test needs Debian's Chromium at ${CHROMIUM}: apt-get install -y chromium`);
    const config = loadConfig({
      TRIPLINE_DATA_DIR: dataDir,
      TRIPLINE_OTLP_HOST: '127.0.0.1',
      TRIPLINE_OTLP_PORT: '0',
      TRIPLINE_API_HOST: '127.0.0.1',
      TRIPLINE_API_PORT: '0',
      TRIPLINE_WARMUP_TASKS: String(WARMUP),
      ...TEST_AUTH_ENV,
    });
    running = await startEmbedded(config, createLogger('warn'));
    consoleUrl = running.apiUrl;
    operatorToken = (
      await running.auth.control.createToken({
        tenant: 'default',
        role: 'operator',
        name: 'ops console',
        createdBy: 'test',
      })
    ).token;
    viewerToken = (
      await running.auth.control.createToken({
        tenant: 'default',
        role: 'viewer',
        name: 'wall screen',
        createdBy: 'test',
      })
    ).token;

    // The last type of a scenario starts late (a new type ramping up): listed last so the three warm up.
    const warmup = generateScenario({
      seed: 41,
      benignPerType: WARMUP + 2,
      attacksPerPattern: 0,
      agentsPerType: 2,
      taskTypes: [...TYPES, 'customer_refund'],
    }).tasks;
    await runFleet({ endpoint: running.otlpUrl, plans: warmup, token: TEST_AGENT_TOKEN });
    await waitFor(
      'the task types to warm up',
      async () => {
        const body = (await getBody(`${running.apiUrl}/v1/baselines`)) as {
          items: { taskType: string; tasks: number }[];
        };
        return TYPES.every((type) => (body.items.find((item) => item.taskType === type)?.tasks ?? 0) >= WARMUP);
      },
      60_000,
    );
    benign = generateScenario({
      seed: 42,
      benignPerType: 1,
      attacksPerPattern: 0,
      agentsPerType: 2,
      taskTypes: TYPES,
    }).tasks;
    await runFleet({ endpoint: running.otlpUrl, plans: [...benign, rogue, rogue2], token: TEST_AGENT_TOKEN });
    for (const plan of [rogue, rogue2]) {
      await waitFor(
        `${plan.taskId} to be revoked`,
        async () =>
          ((await getBody(`${running.apiUrl}/v1/tasks/${plan.taskId}`)) as { status?: string }).status === 'revoked',
      );
    }
    await waitFor('the benign tasks to complete', async () => {
      for (const plan of benign) {
        if (
          ((await getBody(`${running.apiUrl}/v1/tasks/${plan.taskId}`)) as { status?: string }).status !== 'completed'
        )
          return false;
      }
      return true;
    });

    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1440, height: 1000 },
      deviceScaleFactor: 1,
      timezoneId: 'UTC',
      locale: 'en-US',
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
  }, 240_000);

  afterAll(async () => {
    await context.close();
    await running.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(profileDir, { recursive: true, force: true });
  });

  it('asks for a token, refuses a wrong one and signs in with a good one', async () => {
    const response = await page.goto(consoleUrl);
    expect(response?.status()).toBe(200);
    expect(await page.title()).toBe('Tripline console');
    await page.locator('#login-dialog').waitFor({ state: 'visible' });
    await page.locator('#login-token').fill('tl_not-a-token-of-this-tripline-0000000000');
    await page.locator('#login-submit').click();
    await page.locator('#login-error').waitFor({ state: 'visible' });
    expect(await page.locator('#login-error').textContent()).toContain('valid API token');
    await page.locator('#login-token').fill(operatorToken);
    await page.locator('#login-submit').click();
    await page.locator('#login-dialog').waitFor({ state: 'hidden' });
    expect(await page.locator('#whoami').textContent()).toBe('tenant default \u00b7 ops console (operator)');
    // The 401 of the wrong token is the only failed request so far.
    expect(problems.filter((problem) => !problem.includes('401'))).toEqual([]);
    problems.length = 0;
  });

  it('shows the revocations the pipeline produced, with scores, reasons and activity', async () => {
    for (const plan of [rogue, rogue2]) {
      const item = page.locator(
        `#revocations li[data-task-id="${plan.taskId}"][data-action="revoke"][data-source="detector"]`,
      );
      await item.waitFor({ timeout: 15_000 });
      expect(await item.textContent()).toContain('revoked');
      expect(await item.textContent()).toContain(plan.agentId);
      const row = page.locator(`#tasks tr[data-task-id="${plan.taskId}"]`);
      expect(await row.getAttribute('data-status')).toBe('revoked');
      expect(Number(await row.locator('.score b').textContent())).toBeGreaterThanOrEqual(80);
      expect((await row.locator('td.why').textContent())?.trim()).not.toBe('');
      await page.locator(`#alerts li[data-task-id="${plan.taskId}"]`).first().waitFor();
    }
    await page.locator('#live.ok').waitFor();
    expect(await page.locator('#stat-revoked').textContent()).toBe('2');
    // One sparkline per kind, drawn from the events this run stored.
    expect(await page.locator('#activity .spark-row[data-kind]').count()).toBe(3);
    expect(await page.locator('#activity .spark-row[data-kind="tool_call"] svg path').count()).toBe(2);
    expect(Number((await page.locator('#stat-events').textContent())?.replace(/,/g, ''))).toBeGreaterThan(0);
    expect(problems).toEqual([]);
  });

  it('records a restore done through the page, with the reason and name entered', async () => {
    await page.locator(`#tasks button[data-action="restore"][data-task-id="${rogue.taskId}"]`).click();
    const dialog = page.locator('#action-dialog');
    await dialog.waitFor({ state: 'visible' });
    expect(await page.locator('#dialog-title').textContent()).toBe(`Restore ${rogue.taskId}`);
    await page.locator('#dialog-reason').fill('Reviewed with the data owner: the export was approved.');
    await page.locator('#dialog-actor').fill('Alice Martin');
    await page.locator('#dialog-confirm').click();
    await dialog.waitFor({ state: 'hidden' });
    await page.locator(`#revocations li[data-task-id="${rogue.taskId}"][data-action="restore"]`).waitFor();
    expect(await page.locator('#toast').textContent()).toContain(`Restored ${rogue.taskId}`);

    const body = (await getBody(`${running.apiUrl}/v1/revocations?task_id=${rogue.taskId}`)) as {
      items: RevocationView[];
    };
    const restore = body.items.find((item) => item.action === 'restore');
    // The name typed in, and the token it came through (the name alone could be anyone's).
    expect(restore).toMatchObject({
      taskId: rogue.taskId,
      action: 'restore',
      source: 'manual',
      actor: 'Alice Martin (via ops console)',
      reason: 'Reviewed with the data owner: the export was approved.',
    });
    const task = (await getBody(`${running.apiUrl}/v1/tasks/${rogue.taskId}`)) as { status: string };
    expect(task.status).not.toBe('revoked');
    await page.locator(`#tasks tr[data-task-id="${rogue.taskId}"] button[data-action="revoke"]`).waitFor();
  });

  it('records a kill done through the page', async () => {
    const target = benign[0];
    if (target === undefined) throw new Error('no benign task');
    await page.locator(`#tasks button[data-action="revoke"][data-task-id="${target.taskId}"]`).click();
    await page.locator('#action-dialog').waitFor({ state: 'visible' });
    expect(await page.locator('#dialog-title').textContent()).toBe(`Kill ${target.taskId}`);
    // The name is remembered from the last action.
    expect(await page.locator('#dialog-actor').inputValue()).toBe('Alice Martin');
    await page
      .locator('#dialog-reason')
      .fill('Agent asked for credentials outside its task; stopping it while we look.');
    await page.locator('#dialog-confirm').click();
    await page
      .locator(`#revocations li[data-task-id="${target.taskId}"][data-action="revoke"][data-source="manual"]`)
      .waitFor();
    await page.locator(`#tasks tr[data-task-id="${target.taskId}"][data-status="revoked"]`).waitFor();

    const body = (await getBody(`${running.apiUrl}/v1/revocations?task_id=${target.taskId}`)) as {
      items: RevocationView[];
    };
    expect(body.items).toHaveLength(1);
    expect(body.items[0]).toMatchObject({
      action: 'revoke',
      source: 'manual',
      actor: 'Alice Martin (via ops console)',
    });
  });

  it('says what is wrong when an action is refused, and leaves the dialog open', async () => {
    // A stale Restore button (the task was restored meanwhile) is a conflict: the API's message shows in the
    // dialog. The button goes in the table head, which the one-second refresh does not redraw.
    // (Browser-side code as a string: the test's TypeScript has no DOM types.)
    await page.evaluate(`(() => {
      const button = document.createElement('button');
      button.id = 'stale-restore';
      button.textContent = 'stale';
      button.setAttribute('data-action', 'restore');
      button.setAttribute('data-task-id', ${JSON.stringify(rogue.taskId)});
      document.querySelector('#tasks thead th:last-child').appendChild(button);
    })()`);
    await page.locator('#stale-restore').click();
    await page.locator('#dialog-reason').fill('clicked twice');
    await page.locator('#dialog-confirm').click();
    const error = page.locator('#dialog-error');
    await error.waitFor({ state: 'visible' });
    expect(await error.textContent()).toContain('is not revoked');
    await page.locator('#dialog-cancel').click();
    await page.locator('#action-dialog').waitFor({ state: 'hidden' });
    await page.evaluate(`document.getElementById('stale-restore').remove()`);
  });

  it('lets a viewer token watch but not kill', async () => {
    const viewer = await context.newPage();
    try {
      await viewer.goto(consoleUrl);
      await viewer.locator('#login-token').fill(viewerToken);
      await viewer.locator('#login-submit').click();
      await viewer.locator('#login-dialog').waitFor({ state: 'hidden' });
      const target = benign[1];
      if (target === undefined) throw new Error('no second benign task');
      await viewer.locator(`#tasks button[data-action="revoke"][data-task-id="${target.taskId}"]`).click();
      await viewer.locator('#dialog-reason').fill('trying');
      await viewer.locator('#dialog-actor').fill('Eve');
      await viewer.locator('#dialog-confirm').click();
      const error = viewer.locator('#dialog-error');
      await error.waitFor({ state: 'visible' });
      expect(await error.textContent()).toContain('a viewer token may not');
      const task = (await getBody(`${running.apiUrl}/v1/tasks/${target.taskId}`)) as { status: string };
      expect(task.status).toBe('completed');
    } finally {
      await viewer.close();
    }
  });

  it('takes the screenshot the README shows', async () => {
    await page.reload();
    await page.locator('#live.ok').waitFor();
    await page.locator('#tasks tbody tr[data-task-id]').first().waitFor();
    const path = process.env.UPDATE_CONSOLE_SCREENSHOT === '1' ? SCREENSHOT : join(dataDir, 'console.png');
    mkdirSync(join(path, '..'), { recursive: true });
    const image = await page.screenshot({ path, fullPage: false });
    expect(image.length).toBeGreaterThan(10_000);
    // The refused restore above logged its 409 in the browser console; nothing else went wrong.
    expect(problems.filter((problem) => !problem.includes('409') && !problem.includes('403'))).toEqual([]);
  });
});
