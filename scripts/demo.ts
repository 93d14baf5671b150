/**
 * `npm run demo`: a simulated fleet of agents (SYNTHETIC workloads), each a real `@opentelemetry/sdk-node`
 * process exporting OTLP/HTTP to Tripline, does normal work of several task types; then one agent goes rogue.
 * The demo prints the alert and the revocation with their reasons as they happen.
 *
 * It talks to a running Tripline (`npm start`) at TRIPLINE_API_URL / TRIPLINE_OTLP_URL (defaults
 * http://localhost:8080 and http://localhost:4318). If none answers, it starts one in this process on a
 * fresh temporary data directory.
 *
 * Against a running Tripline it needs its tokens: TRIPLINE_AGENT_TOKEN (the agents') and TRIPLINE_API_TOKEN (a
 * viewer token or stronger, to read alerts and revocations). Tripline prints both at its first start.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runFleet } from '../collectors/simulator/fleet.ts';
import { generateScenario } from '../collectors/simulator/scenarios.ts';
import type { TaskPlan } from '../collectors/simulator/scenarios.ts';
import { loadConfig } from '../services/app/config.ts';
import { startEmbedded } from '../services/app/embedded.ts';
import type { RunningTripline } from '../services/app/embedded.ts';
import { createLogger } from '../services/shared/logger.ts';

const TYPES = ['summarize_ticket', 'triage_alert', 'generate_report', 'customer_refund'];
const seed = Number(process.env.DEMO_SEED ?? Date.now() % 100_000);

interface Listed {
  id: string;
  taskId: string;
  agentId: string;
  taskType: string;
  score: number;
  decision?: string;
  action?: string;
  reasons: string[];
}

/** The agents' token and the token the demo reads the API with. */
const tokens = { agent: '', reader: '' };
const readHeaders = (): Record<string, string> => ({ authorization: `Bearer ${tokens.reader}` });

async function reachable(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
}

async function connect(): Promise<{ apiUrl: string; otlpUrl: string; embedded?: RunningTripline; warmup: number }> {
  const apiUrl = process.env.TRIPLINE_API_URL ?? 'http://localhost:8080';
  const otlpUrl = process.env.TRIPLINE_OTLP_URL ?? 'http://localhost:4318';
  if (await reachable(apiUrl)) {
    const agent = process.env.TRIPLINE_AGENT_TOKEN;
    const reader = process.env.TRIPLINE_API_TOKEN ?? process.env.TRIPLINE_ADMIN_TOKEN;
    if (agent === undefined || reader === undefined) {
      throw new Error(
        `A Tripline answers at ${apiUrl}: set TRIPLINE_AGENT_TOKEN and TRIPLINE_API_TOKEN to the agent and admin tokens it printed at its first start (or stop it, and the demo starts its own)`,
      );
    }
    tokens.agent = agent;
    tokens.reader = reader;
    console.log(`Using the Tripline running at ${apiUrl} (OTLP ${otlpUrl}).`);
    return { apiUrl, otlpUrl, warmup: 20 };
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-demo-'));
  const config = loadConfig({
    ...process.env,
    TRIPLINE_DATA_DIR: dataDir,
    TRIPLINE_OTLP_PORT: '0',
    TRIPLINE_API_PORT: '0',
    TRIPLINE_OTLP_HOST: '127.0.0.1',
    TRIPLINE_API_HOST: '127.0.0.1',
  });
  console.log(`No Tripline answers at ${apiUrl}; starting one in this process (data in ${dataDir}).`);
  const embedded = await startEmbedded(config, createLogger('warn'));
  tokens.agent = (
    await embedded.auth.control.createToken({
      tenant: 'default',
      role: 'agent',
      name: 'demo agents',
      createdBy: 'demo',
    })
  ).token;
  tokens.reader = (
    await embedded.auth.control.createToken({ tenant: 'default', role: 'viewer', name: 'demo', createdBy: 'demo' })
  ).token;
  return { apiUrl: embedded.apiUrl, otlpUrl: embedded.otlpUrl, embedded, warmup: config.detector.warmupTasks };
}

async function list(apiUrl: string, what: 'alerts' | 'revocations'): Promise<Listed[]> {
  const response = await fetch(`${apiUrl}/v1/${what}?limit=1000`, { headers: readHeaders() });
  return ((await response.json()) as { items: Listed[] }).items;
}

function progressBar(done: number, total: number): string {
  const width = 30;
  const filled = Math.round((done / Math.max(total, 1)) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
}

/** Prints new alerts and revocations as they appear, until stopped. */
function watch(apiUrl: string, agents: ReadonlySet<string>): { stop(): Promise<void> } {
  const seen = new Set<string>();
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        for (const what of ['alerts', 'revocations'] as const) {
          for (const item of (await list(apiUrl, what)).reverse()) {
            if (seen.has(item.id) || !agents.has(item.agentId)) continue;
            seen.add(item.id);
            const head = what === 'alerts' ? `ALERT (${item.decision ?? ''})` : `REVOKED (${item.action ?? ''})`;
            process.stdout.write(
              `\n  ${head} task ${item.taskId} of ${item.agentId} [${item.taskType}] score ${item.score.toFixed(0)}\n`,
            );
            for (const reason of item.reasons.slice(0, 4)) process.stdout.write(`      - ${reason}\n`);
            if (item.reasons.length > 4) process.stdout.write(`      (+${item.reasons.length - 4} more reasons)\n`);
          }
        }
      } catch {
        // the API may be busy; try again
      }
      await sleep(250);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}

async function runPhase(title: string, otlpUrl: string, apiUrl: string, plans: TaskPlan[]): Promise<number> {
  console.log(`\n${title}`);
  let done = 0;
  let refused = 0;
  let shown = -1;
  const interactive = process.stdout.isTTY;
  const show = (): void => {
    // On a terminal the bar redraws in place; in a log, a line every 10%.
    const tenth = Math.floor((done * 10) / Math.max(plans.length, 1));
    if (interactive) process.stdout.write(`\r  ${progressBar(done, plans.length)}`);
    else if (tenth !== shown) process.stdout.write(`  ${progressBar(done, plans.length)}\n`);
    shown = tenth;
  };
  show();
  await runFleet({
    endpoint: otlpUrl,
    apiUrl,
    token: tokens.agent,
    plans,
    onTask: (progress) => {
      done += 1;
      if (progress.error !== undefined) {
        refused += 1;
        process.stdout.write(`\n  agent ${progress.agentId}: task ${progress.taskId} stopped: ${progress.error}\n`);
      }
      show();
    },
  });
  if (interactive) process.stdout.write('\n');
  return refused;
}

async function main(): Promise<void> {
  console.log('Tripline demo: SYNTHETIC agents doing normal work, then one goes rogue.');
  const { apiUrl, otlpUrl, embedded, warmup } = await connect();
  const normal = generateScenario({
    seed,
    benignPerType: warmup + 4,
    attacksPerPattern: 0,
    agentsPerType: 2,
    taskTypes: [...TYPES, 'code_review'],
  }).tasks;
  const more = generateScenario({
    seed: seed + 1,
    benignPerType: 2,
    attacksPerPattern: 0,
    agentsPerType: 2,
    taskTypes: TYPES,
  }).tasks;
  const attack = generateScenario({
    seed: seed + 2,
    benignPerType: 0,
    attacksPerPattern: 1,
    agentsPerType: 1,
    taskTypes: ['summarize_ticket'],
    patterns: ['exfiltration_burst'],
  }).tasks[0];
  if (attack === undefined) throw new Error('the scenario produced no attack');
  const rogue: TaskPlan = { ...attack, agentId: 'summarize-ticket-agent-rogue' };
  const agents = new Set([...normal, ...more, rogue].map((plan) => plan.agentId));
  const watcher = watch(apiUrl, agents);

  try {
    await runPhase(
      `Phase 1: ${agents.size - 1} agents do ${normal.length} normal tasks of ${TYPES.length + 1} types; Tripline learns what is normal (${warmup} tasks per type).`,
      otlpUrl,
      apiUrl,
      normal,
    );
    await waitForBaselines(apiUrl, TYPES, warmup);
    await runPhase(
      `Phase 2: normal work goes on, and agent ${rogue.agentId} reads customer data in bulk and sends it out.`,
      otlpUrl,
      apiUrl,
      [...more, rogue],
    );
    const verdict = await waitForRevocation(apiUrl, rogue.taskId);
    await sleep(500);
    await watcher.stop();

    const revocations = await list(apiUrl, 'revocations');
    const benignRevoked = revocations.filter(
      (item) => agents.has(item.agentId) && item.agentId !== rogue.agentId && item.action === 'revoke',
    );
    console.log('\nResult');
    console.log(`  rogue task ${rogue.taskId}: ${verdict}`);
    console.log(`  benign agents: ${agents.size - 1}, benign tasks revoked: ${benignRevoked.length}`);
    console.log(`  look closer: curl -H "authorization: Bearer $TOKEN" ${apiUrl}/v1/tasks/${rogue.taskId}`);
    if (verdict !== 'revoked' || benignRevoked.length > 0) process.exitCode = 1;
  } finally {
    await watcher.stop();
    await embedded?.stop();
  }
}

async function waitForBaselines(apiUrl: string, types: readonly string[], warmup: number): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const response = await fetch(`${apiUrl}/v1/baselines`, { headers: readHeaders() });
    const { items } = (await response.json()) as { items: { taskType: string; tasks: number }[] };
    if (types.every((type) => (items.find((item) => item.taskType === type)?.tasks ?? 0) >= warmup)) return;
    await sleep(250);
  }
  throw new Error('the baselines did not warm up; is the pipeline running?');
}

async function waitForRevocation(apiUrl: string, taskId: string): Promise<string> {
  for (let attempt = 0; attempt < 120; attempt += 1) {
    const response = await fetch(`${apiUrl}/v1/tasks/${encodeURIComponent(taskId)}`, { headers: readHeaders() });
    if (response.ok) {
      const task = (await response.json()) as { status: string };
      if (task.status === 'revoked') return 'revoked';
    }
    await sleep(250);
  }
  return 'NOT revoked';
}

await main();
