/**
 * Writes the dashboards (dashboards/src/dashboards.ts) to dashboards/json/, where Grafana's file provisioning
 * (dashboards/provisioning/dashboards/tripline.yaml) loads them.
 *
 *   node dashboards/src/generate.ts           write the files
 *   node dashboards/src/generate.ts --check   exit 1 when a file differs from the source (CI)
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DASHBOARDS } from './dashboards.ts';

export const JSON_DIR = fileURLToPath(new URL('../json/', import.meta.url));

/** File name → the exact text the generator writes. */
export function renderDashboards(): Map<string, string> {
  const files = new Map<string, string>();
  for (const spec of DASHBOARDS) {
    if (files.has(spec.file)) throw new Error(`two dashboards write ${spec.file}`);
    files.set(spec.file, `${JSON.stringify(spec.json, null, 2)}\n`);
  }
  return files;
}

/** Files that differ from the generator's output, are missing, or are in the folder but not generated. */
export function driftedFiles(dir: string = JSON_DIR): string[] {
  const expected = renderDashboards();
  const drifted: string[] = [];
  for (const [file, text] of expected) {
    let actual: string | undefined;
    try {
      actual = readFileSync(join(dir, file), 'utf8');
    } catch {
      actual = undefined;
    }
    if (actual !== text) drifted.push(file);
  }
  for (const file of readdirSync(dir)) {
    if (file.endsWith('.json') && !expected.has(file)) drifted.push(file);
  }
  return drifted.sort();
}

function main(argv: readonly string[]): number {
  if (argv.includes('--check')) {
    const drifted = driftedFiles();
    if (drifted.length > 0) {
      process.stderr.write(
        `dashboards/json is out of date (${drifted.join(', ')}): run node dashboards/src/generate.ts\n`,
      );
      return 1;
    }
    process.stdout.write('dashboards/json matches dashboards/src\n');
    return 0;
  }
  for (const [file, text] of renderDashboards()) writeFileSync(join(JSON_DIR, file), text);
  process.stdout.write(`wrote ${[...renderDashboards().keys()].map((file) => `dashboards/json/${file}`).join(', ')}\n`);
  return 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = main(process.argv.slice(2));
}
