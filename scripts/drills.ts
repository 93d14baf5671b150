/**
 * The fault drills with their figures: runs test/drills with vitest, one file at a time, with the overload
 * drill at full length (a minute), then prints the table of drills in markdown.
 *
 *   node scripts/drills.ts [--overload-seconds <n>] [--results <file>]
 *
 * Each drill appends its figures to a results file (DRILL_RESULTS_FILE; a fresh one under the OS temporary
 * directory unless --results names one); the table is made from it, also when a drill failed (the exit code is
 * vitest's). Needs what the test suite needs: a Kafka broker (KAFKA_BROKERS, or Java 17+ and Maven for the
 * broker the vitest global setup starts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { DrillFigures } from '../test/drills/helpers.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const VITEST = join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');

const { values } = parseArgs({
  options: {
    'overload-seconds': { type: 'string', default: '60' },
    results: { type: 'string' },
  },
});
const overloadSeconds = values['overload-seconds'];
if (!/^\d+$/.test(overloadSeconds) || Number(overloadSeconds) < 1) {
  process.stderr.write(
    `drills: --overload-seconds must be a whole number of seconds (got ${JSON.stringify(overloadSeconds)})\n`,
  );
  process.exit(2);
}
const resultsFile = values.results ?? join(mkdtempSync(join(tmpdir(), 'tripline-drills-')), 'results.jsonl');

const run = spawnSync(process.execPath, [VITEST, 'run', 'test/drills', '--no-file-parallelism'], {
  cwd: ROOT,
  stdio: 'inherit',
  env: { ...process.env, DRILL_RESULTS_FILE: resultsFile, DRILL_OVERLOAD_SECONDS: overloadSeconds },
});

const figures: DrillFigures[] = existsSync(resultsFile)
  ? readFileSync(resultsFile, 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as DrillFigures)
  : [];

const count = (n: number): string => n.toLocaleString('en-US');
const cells = (row: string[]): string => `| ${row.join(' | ')} |`;
console.log(
  `\nFault drills (${new Date().toISOString().slice(0, 10)}, ${figures.length} drills, results in ${resultsFile}):\n`,
);
console.log(cells(['drill', 'sent', 'stored', 'duplicates', 'revocations', 'time to recover', 'what happened']));
console.log(cells(['---', '---:', '---:', '---:', '---:', '---:', '---']));
for (const drill of figures) {
  console.log(
    cells([
      drill.drill,
      count(drill.sent),
      count(drill.stored),
      count(drill.duplicates),
      drill.revocations === null
        ? '—'
        : `${count(drill.revocations)} (${count(drill.rogueTasks)} rogue ${drill.rogueTasks === 1 ? 'task' : 'tasks'})`,
      drill.recoverMs === null ? '—' : `${(drill.recoverMs / 1000).toFixed(1)} s`,
      drill.details.replaceAll('|', '\\|'),
    ]),
  );
}
process.exit(run.status ?? 1);
