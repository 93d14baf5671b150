/**
 * Kill latency of the Python kit: from the offending span leaving the agent (handed to its exporter) to the kit's
 * guard refusing the task's next tool call with TaskRevokedError (the moment it holds the revocation, pushed over
 * server-sent events, after which the next call is refused; each kill checks that it is). p50 / p95 / p99 / max.
 *
 * The same interval, measured the same way, as (c) of test/bench/kill-latency.bench.ts (the TypeScript helper), so
 * the two figures stand side by side: an embedded Tripline in this process with the same settings (escalation off,
 * every kill the same agent), an agent in a process of its own (kits/python/tests/e2e/bench_agent.py, the wheel
 * installed by test/helpers/python-kit.ts) with a task token per task, a benign tool call, then an unapproved
 * administrative privilege change (a hard rule: revoked on its first event). Both times are taken in the agent
 * process on its wall clock.
 *
 * Run:
 *   node test/bench/kill-latency-python.bench.ts             250 kills (after 10 not counted)
 *   KILLS=500 WARMUP_KILLS=20 node test/bench/kill-latency-python.bench.ts
 * (Node 24: node_modules/.bin first on PATH.)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { kitPython, KIT_E2E_DIR } from '../helpers/python-kit.ts';

const KILLS = Number(process.env.KILLS ?? '250');
const WARMUP_KILLS = Number(process.env.WARMUP_KILLS ?? '10');
const AGENT_TOKEN = 'test-agent-token-0123456789abcdef';

const BASE_ENV = {
  TRIPLINE_API_HOST: '127.0.0.1',
  TRIPLINE_OTLP_HOST: '127.0.0.1',
  TRIPLINE_API_PORT: '0',
  TRIPLINE_OTLP_PORT: '0',
  LOG_LEVEL: 'warn',
  TRIPLINE_ADMIN_TOKEN: 'test-admin-token-0123456789abcdef',
  TRIPLINE_AGENT_TOKEN: AGENT_TOKEN,
  TRIPLINE_ESCALATION_REVOCATIONS: '0',
  TRIPLINE_VERIFY_WINDOW_MS: '2000',
};

interface Kill {
  taskId: string;
  t0: number;
  tc: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

function describeSeries(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const f = (v: number): string => v.toFixed(1).padStart(7);
  return `p50 ${f(percentile(sorted, 50))}  p95 ${f(percentile(sorted, 95))}  p99 ${f(percentile(sorted, 99))}  max ${f(sorted.at(-1) ?? Number.NaN)}  ms`;
}

async function runAgent(python: string, otlp: string, api: string, kills: number): Promise<Kill[]> {
  const child = spawn(
    python,
    [
      join(KIT_E2E_DIR, 'bench_agent.py'),
      '--endpoint',
      otlp,
      '--api',
      api,
      '--token',
      AGENT_TOKEN,
      '--kills',
      String(kills),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PYTHONUNBUFFERED: '1' } },
  );
  const done: Kill[] = [];
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    if (!line.startsWith('{')) return;
    done.push(JSON.parse(line) as Kill);
    if (done.length > WARMUP_KILLS && (done.length - WARMUP_KILLS) % 50 === 0)
      console.log(`  ${String(done.length - WARMUP_KILLS)} kills`);
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`bench_agent.py exited with ${String(code)} after ${String(done.length)} kills`);
  return done;
}

async function bench(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-kill-bench-python-'));
  console.log(
    `kill latency of the Python kit, embedded: ${String(KILLS)} kills (after ${String(WARMUP_KILLS)} not counted); load average ${loadavg()
      .map((v) => v.toFixed(1))
      .join(' ')} on ${String(availableParallelism())} CPUs`,
  );
  const python = await kitPython();
  const { loadConfig } = await import('../../services/app/config.ts');
  const { startEmbedded } = await import('../../services/app/embedded.ts');
  const { createLogger } = await import('../../services/shared/logger.ts');
  const config = loadConfig({ ...BASE_ENV, TRIPLINE_DATA_DIR: dataDir });
  const running = await startEmbedded(config, createLogger(config.logLevel));
  try {
    const started = Date.now();
    const kills = (await runAgent(python, running.otlpUrl, running.apiUrl, KILLS + WARMUP_KILLS)).slice(WARMUP_KILLS);
    console.log(`${String(kills.length)} kills in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    console.log(`(c) next tool call refused (Python kit)  ${describeSeries(kills.map((kill) => kill.tc - kill.t0))}`);
    console.log(
      `load average at the end ${loadavg()
        .map((v) => v.toFixed(1))
        .join(' ')}`,
    );
  } finally {
    await running.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await bench();
process.exit(0);
