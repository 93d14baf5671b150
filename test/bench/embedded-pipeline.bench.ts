/**
 * The embedded pipeline end to end (`npm start`'s composition: OTLP/HTTP receiver → classify → in-process bus →
 * processor → ClickHouse engine, in this process) under an open-loop load of real OTLP protobuf requests (100 SDK
 * spans each, test/bench/payloads/generate.ts) from the load generator in a child process:
 *
 *   node test/bench/embedded-pipeline.bench.ts                       # offered 5k, 10k, 15k, 20k, 30k, 50k spans/s
 *   BENCH_RATES=10000,20000 BENCH_SECONDS=20 node test/bench/embedded-pipeline.bench.ts
 *
 * Per offered rate: the spans accepted and refused with 429 (the bus full: the pipeline behind), the time the
 * pipeline then needs to drain what it accepted (every accepted span scored and stored), and this process's CPU
 * per 10k spans (the engine's threads included). "Held" is the highest rate of which at least 95% was accepted
 * (the answers kept pace with the load generator's schedule), none answered 429, and all stored within 2 s of
 * the load's end (the store write linger is 1 s). The tenant ingest limits are raised (they are a policy, not a capacity);
 * the bus keeps its defaults. Each rate runs on a fresh data directory.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { loadConfig } from '../../services/app/config.ts';
import { startEmbedded } from '../../services/app/embedded.ts';
import { createLogger } from '../../services/shared/logger.ts';
import { TEST_AGENT_TOKEN, loopbackTestEnv } from '../helpers/auth.ts';
import type { LoadResult } from './load-generator.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LOAD_GENERATOR = fileURLToPath(new URL('./load-generator.ts', import.meta.url));
const GENERATE = fileURLToPath(new URL('./payloads/generate.ts', import.meta.url));
const RATES = (process.env.BENCH_RATES ?? '5000,10000,15000,20000,30000,50000')
  .split(',')
  .map(Number)
  .filter((rate) => rate > 0);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
/** Seconds after the load within which everything accepted must be stored: the store write linger (1 s) and 1 s. */
const DRAIN_ALLOWANCE_S = 2;

function fmt(value: number, digits = 0): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function run(args: string[]): Promise<string> {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${args[0] ?? ''} exited with ${String(code)}: ${err}`));
    });
  });
}

interface RateResult {
  offered: number;
  load: LoadResult;
  refused: number;
  drainSeconds: number;
  cpuPer10k: number;
  stored: number;
}

async function measure(rate: number, payloadDir: string): Promise<RateResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-embedded-bench-'));
  const config = loadConfig({
    ...loopbackTestEnv(dataDir),
    TRIPLINE_TENANT_SPANS_PER_SECOND: '10000000',
    TRIPLINE_TENANT_BYTES_PER_SECOND: String(10 * 1024 ** 3),
    LOG_LEVEL: 'error',
  });
  const running = await startEmbedded(config, createLogger('error'));
  try {
    await running.store.counts(); // the engine loaded before the clock starts
    const cpu = process.cpuUsage();
    const load = JSON.parse(
      (
        await run([
          LOAD_GENERATOR,
          '--url',
          running.otlpUrl,
          '--dir',
          payloadDir,
          '--seconds',
          String(SECONDS),
          '--rate',
          String(rate),
          '--token',
          TEST_AGENT_TOKEN,
          '--fresh-ids',
          '1',
        ])
      )
        .trim()
        .split('\n')
        .pop() ?? '{}',
    ) as LoadResult;
    // Drained: every accepted span (each is one of the three kinds) scored and stored, or two minutes passed.
    const drainStarted = performance.now();
    let stored = 0;
    while (performance.now() - drainStarted < 120_000) {
      if (running.bus.depth() === 0) {
        stored = (await running.store.counts()).events;
        if (stored >= load.spansOk) break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const drainSeconds = (performance.now() - drainStarted) / 1000;
    const used = process.cpuUsage(cpu);
    return {
      offered: rate,
      load,
      refused: load.statuses['429'] ?? 0,
      drainSeconds,
      cpuPer10k: ((used.user + used.system) / 1e6 / Math.max(1, load.spansOk)) * 10_000,
      stored,
    };
  } finally {
    await running.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const payloadDir = mkdtempSync(join(tmpdir(), 'tripline-embedded-payloads-'));
try {
  await run([GENERATE, payloadDir, '64', '100']);
  console.log(
    `embedded pipeline, ${String(SECONDS)} s per offered rate, 100 spans per request, load average ${
      (await import('node:os')).loadavg()[0]?.toFixed(1) ?? '?'
    }`,
  );
  console.log('offered spans/s | accepted spans/s | 429 answers | drain after the load | CPU-s per 10k spans | stored');
  let held = 0;
  for (const rate of RATES) {
    const result = await measure(rate, payloadDir);
    const accepted = result.load.spansOk / result.load.seconds;
    console.log(
      `${fmt(rate)} | ${fmt(accepted)} | ${fmt(result.refused)} | ${result.drainSeconds.toFixed(1)} s | ${result.cpuPer10k.toFixed(3)} | ${fmt(result.stored)}`,
    );
    const keptUp = accepted >= 0.95 * rate && result.refused === 0 && result.load.errors === 0;
    if (keptUp && result.drainSeconds <= DRAIN_ALLOWANCE_S) held = Math.max(held, rate);
  }
  console.log(
    `held (no 429, ≥ 95% of the offered rate accepted, drained within ${String(DRAIN_ALLOWANCE_S)} s): ${fmt(held)} spans/s`,
  );
} finally {
  rmSync(payloadDir, { recursive: true, force: true });
}
