/**
 * `node scripts/evaluate.ts [--seed N] [--benign-per-type N] [--attacks-per-pattern N] [--through-pipeline]`
 *
 * Evaluates Tripline's detector on a labelled SYNTHETIC workload from the scenario generator and compares it
 * with a rules-only detector and a global z-score detector on the same events. Prints markdown tables (recall,
 * precision, F1, benign tasks alerted and revoked, detection delay, per attack pattern and overall) and whether
 * issue 4's requirements hold; exits 1 when one does not.
 *
 * Default: the events replayed through the pure detector core as the processor runs it (seconds). With
 * --through-pipeline: real agent processes (OTel SDK) → OTLP → embedded Tripline → ClickHouse (minutes).
 *
 * Other options: --agents-per-type N, --warmup N (tasks before a type's baseline is used), --agent-warmup N,
 * --task-types a,b,c, --patterns p,q, --time-scale X (replay: real time per planned time, default 1; the
 * pipeline's agents run at 0.01), --log-level L (the embedded Tripline's log, to stdout; default
 * silent: the simulated agents do not stop when revoked, so the kill switch logs every unverified kill),
 * --json FILE (write the full result), --quiet.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  DEFAULT_EVALUATION,
  KNOWN_PATTERNS,
  KNOWN_TASK_TYPES,
  runEvaluation,
} from '../services/evaluation/evaluate.ts';
import type { EvaluationOptions } from '../services/evaluation/evaluate.ts';
import { toMarkdown } from '../services/evaluation/report.ts';
import type { AttackPattern } from '../collectors/simulator/scenarios.ts';
import { LOG_LEVELS } from '../services/shared/logger.ts';
import { readSpendConfig } from '../services/app/spend-config.ts';
import type { LogLevel } from '../services/app/config.ts';

function usage(message: string): never {
  process.stderr.write(
    `evaluate: ${message}\nusage: node scripts/evaluate.ts [--seed N] [--benign-per-type N] [--attacks-per-pattern N] [--agents-per-type N] [--warmup N] [--agent-warmup N] [--task-types a,b] [--patterns p,q] [--time-scale X] [--through-pipeline] [--log-level L] [--json FILE] [--quiet]\n`,
  );
  process.exit(2);
}

function int(name: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) usage(`--${name} must be an integer >= ${min} (got ${JSON.stringify(value)})`);
  return n;
}

function list(name: string, value: string | undefined, known: readonly string[]): string[] | undefined {
  if (value === undefined) return undefined;
  const items = value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
  const unknown = items.filter((item) => !known.includes(item));
  if (items.length === 0 || unknown.length > 0)
    usage(`--${name}: unknown ${unknown.join(', ') || '(empty)'}; known: ${known.join(', ')}`);
  return items;
}

function scale(value: string | undefined): number {
  if (value === undefined) return DEFAULT_EVALUATION.timeScale;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 1000)
    usage(`--time-scale must be a number above 0 (got ${JSON.stringify(value)})`);
  return n;
}

function logLevel(value: string | undefined): LogLevel {
  if (value === undefined) return 'silent';
  if (!(LOG_LEVELS as readonly string[]).includes(value)) usage(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  return value as LogLevel;
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      seed: { type: 'string' },
      'benign-per-type': { type: 'string' },
      'attacks-per-pattern': { type: 'string' },
      'agents-per-type': { type: 'string' },
      warmup: { type: 'string' },
      'agent-warmup': { type: 'string' },
      'task-types': { type: 'string' },
      patterns: { type: 'string' },
      'time-scale': { type: 'string' },
      'log-level': { type: 'string' },
      'through-pipeline': { type: 'boolean', default: false },
      json: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  }).values;
} catch (error) {
  usage(error instanceof Error ? error.message : String(error));
}
if (parsed.help) {
  process.stdout.write(
    'usage: node scripts/evaluate.ts [--seed N] [--benign-per-type N] [--attacks-per-pattern N] [--through-pipeline] (see the header of scripts/evaluate.ts)\n',
  );
  process.exit(0);
}

const taskTypes = list('task-types', parsed['task-types'], KNOWN_TASK_TYPES);
const patterns = list('patterns', parsed.patterns, KNOWN_PATTERNS) as AttackPattern[] | undefined;
const options: EvaluationOptions = {
  ...DEFAULT_EVALUATION,
  seed: int('seed', parsed.seed, DEFAULT_EVALUATION.seed, 0),
  benignPerType: int('benign-per-type', parsed['benign-per-type'], DEFAULT_EVALUATION.benignPerType, 1),
  attacksPerPattern: int('attacks-per-pattern', parsed['attacks-per-pattern'], DEFAULT_EVALUATION.attacksPerPattern, 0),
  agentsPerType: int('agents-per-type', parsed['agents-per-type'], DEFAULT_EVALUATION.agentsPerType, 1),
  warmupTasks: int('warmup', parsed.warmup, DEFAULT_EVALUATION.warmupTasks, 1),
  agentWarmupTasks: int('agent-warmup', parsed['agent-warmup'], DEFAULT_EVALUATION.agentWarmupTasks, 1),
  timeScale: scale(parsed['time-scale']),
  throughPipeline: parsed['through-pipeline'],
  logLevel: logLevel(parsed['log-level']),
  ...(taskTypes === undefined ? {} : { taskTypes }),
  ...(patterns === undefined ? {} : { patterns }),
  ...(parsed.quiet ? {} : { onProgress: (message: string) => process.stderr.write(`evaluate: ${message}\n`) }),
  // The shipped price table and budgets (or TRIPLINE_MODEL_PRICES / TRIPLINE_BUDGETS), as `npm start` reads them.
  spend: readSpendConfig(process.env),
};

const result = await runEvaluation(options);
console.log(toMarkdown(result));
if (!parsed.quiet) process.stderr.write(`evaluate: done in ${(result.elapsedMs / 1000).toFixed(1)} s\n`);
if (parsed.json !== undefined) {
  const { detectors, ...rest } = result;
  writeFileSync(
    parsed.json,
    JSON.stringify({ ...rest, detectors: detectors.map(({ outcomes: _outcomes, ...detector }) => detector) }, null, 2),
  );
}
process.exitCode = result.requirements.every((requirement) => requirement.ok) ? 0 : 1;
