/**
 * The dedicated fuzz run (`node scripts/fuzz.ts`, `npm run fuzz`): the property-based fuzz tests in test/fuzz
 * with FUZZ_RUNS generated inputs per run mode (100 000 by default) and FUZZ_SOCKET_RUNS requests through a
 * real socket (1 000 by default). Prints, per mode, the inputs run, the time, inputs per second, the slowest
 * input, the heap growth and peak RSS, and every failure with the seed and path that replay it; exits non-zero
 * on any failure or when a mode ran fewer inputs than asked.
 *
 *   node scripts/fuzz.ts                       # 100 000 per mode
 *   node scripts/fuzz.ts --runs 5000           # a quicker pass
 *   node scripts/fuzz.ts --runs 100000 decoder # only files matching "decoder"
 *
 * A failure prints `FUZZ_SEED=… FUZZ_PATH=…`; run `FUZZ_SEED=… FUZZ_PATH=… npx vitest run test/fuzz -t '<property>'`
 * to replay exactly that input (FUZZ_RUNS does not matter when replaying).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FuzzRecord } from '../test/fuzz/arbitraries.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

/** The run modes the issue counts (at least FUZZ_RUNS inputs each), and the others that also run. */
const COUNTED_MODES = ['decoder-protobuf', 'decoder-json', 'http', 'api'];

function parseArgs(argv: string[]): { runs: number; socketRuns: number; filters: string[] } {
  let runs = Number(process.env.FUZZ_RUNS ?? 100_000);
  let socketRuns = Number(process.env.FUZZ_SOCKET_RUNS ?? 1000);
  const filters: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    if (arg === '--runs') runs = Number(argv[++i]);
    else if (arg === '--socket-runs') socketRuns = Number(argv[++i]);
    else if (arg === '--help' || arg === '-h') {
      console.log('usage: node scripts/fuzz.ts [--runs N] [--socket-runs N] [test file filter...]');
      process.exit(0);
    } else filters.push(arg);
  }
  for (const [name, value] of [
    ['--runs', runs],
    ['--socket-runs', socketRuns],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1) {
      console.error(`${name} must be a positive integer`);
      process.exit(2);
    }
  }
  return { runs, socketRuns, filters };
}

function runVitest(env: NodeJS.ProcessEnv, filters: string[]): Promise<number> {
  const vitest = join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');
  const files =
    filters.length === 0 ? ['test/fuzz'] : filters.map((f) => (f.startsWith('test/') ? f : `test/fuzz/${f}`));
  return new Promise((resolveExit) => {
    const child = spawn(process.execPath, [vitest, 'run', ...files], { cwd: ROOT, env, stdio: 'inherit' });
    child.on('exit', (code, signal) => resolveExit(code ?? (signal === null ? 1 : 128)));
  });
}

function readRecords(dir: string): FuzzRecord[] {
  const records: FuzzRecord[] = [];
  for (const file of readdirSync(dir)) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      if (line.trim() !== '') records.push(JSON.parse(line) as FuzzRecord);
    }
  }
  return records;
}

const pad = (text: string, width: number): string => text.padEnd(width);
const lpad = (text: string, width: number): string => text.padStart(width);

async function main(): Promise<void> {
  const { runs, socketRuns, filters } = parseArgs(process.argv.slice(2));
  // Not under a tripline-* name: other test runs clean those up from the temporary directory.
  const reportDir = mkdtempSync(join(tmpdir(), 'fuzz-report-'));
  console.log(`fuzz: FUZZ_RUNS=${runs} per mode, FUZZ_SOCKET_RUNS=${socketRuns}; reports in ${reportDir}`);
  const started = Date.now();
  const exitCode = await runVitest(
    { ...process.env, FUZZ_RUNS: String(runs), FUZZ_SOCKET_RUNS: String(socketRuns), FUZZ_REPORT_DIR: reportDir },
    filters,
  );
  const wallSeconds = (Date.now() - started) / 1000;
  const records = readRecords(reportDir);
  rmSync(reportDir, { recursive: true, force: true });

  const properties = records.filter((r) => r.heapGrowthMb === undefined);
  const memory = records.filter((r) => r.heapGrowthMb !== undefined);
  const modes = [...new Set(properties.map((r) => r.mode))].sort((a, b) => {
    const ia = COUNTED_MODES.indexOf(a);
    const ib = COUNTED_MODES.indexOf(b);
    return (ia === -1 ? 99 : ia) - (ib === -1 ? 99 : ib) || a.localeCompare(b);
  });

  console.log('\nfuzz summary');
  console.log(
    `${pad('mode', 18)}${lpad('inputs', 10)}${lpad('seconds', 10)}${lpad('inputs/s', 10)}${lpad('slowest ms', 12)}${lpad('heap +MB', 10)}${lpad('peak RSS MB', 13)}  failures`,
  );
  let problems = 0;
  for (const mode of modes) {
    const own = properties.filter((r) => r.mode === mode);
    const inputs = own.reduce((sum, r) => sum + r.runs, 0);
    const seconds = own.reduce((sum, r) => sum + r.ms, 0) / 1000;
    const slowest = Math.max(...own.map((r) => r.maxCaseMs));
    const mem = memory.filter((r) => r.mode === mode || r.mode.startsWith(`${mode}-`));
    const heap = mem.length === 0 ? '' : Math.max(...mem.map((r) => r.heapGrowthMb ?? 0)).toFixed(1);
    const rss = mem.length === 0 ? '' : String(Math.max(...mem.map((r) => r.peakRssMb ?? 0)));
    const failed = own.filter((r) => r.failed).length;
    console.log(
      `${pad(mode, 18)}${lpad(String(inputs), 10)}${lpad(seconds.toFixed(1), 10)}${lpad(String(seconds > 0 ? Math.round(inputs / seconds) : inputs), 10)}${lpad(slowest.toFixed(1), 12)}${lpad(heap, 10)}${lpad(rss, 13)}  ${failed}`,
    );
    if (COUNTED_MODES.includes(mode) && inputs < runs) {
      console.log(`  ${mode}: ran ${inputs} inputs, fewer than the ${runs} asked (a failure stops its property early)`);
      problems += 1;
    }
  }
  const missing = filters.length === 0 ? COUNTED_MODES.filter((mode) => !modes.includes(mode)) : [];
  for (const mode of missing) {
    console.log(`  ${mode}: no report (did its test file run?)`);
    problems += 1;
  }

  const failures = properties.filter((r) => r.failed);
  if (failures.length > 0) {
    console.log('\nfailures');
    for (const failure of failures) {
      console.log(
        `- ${failure.mode} / ${failure.property}: seed ${failure.seed}${failure.path === undefined ? '' : `, path ${failure.path}`}`,
      );
      console.log(
        `  replay: FUZZ_SEED=${failure.seed}${failure.path === undefined ? '' : ` FUZZ_PATH=${failure.path}`} npx vitest run test/fuzz -t ${JSON.stringify(failure.property)}`,
      );
      for (const line of (failure.message ?? '').split('\n').slice(1, 3)) console.log(`  ${line.slice(0, 400)}`);
    }
  }
  const peak = Math.max(0, ...memory.map((r) => r.peakRssMb ?? 0));
  const total = properties.reduce((sum, r) => sum + r.runs, 0);
  console.log(
    `\n${total} inputs in ${wallSeconds.toFixed(0)} s wall time; peak RSS of a test process ${peak} MB; vitest exit code ${exitCode}`,
  );
  if (exitCode !== 0 || failures.length > 0 || problems > 0) process.exit(1);
}

await main();
