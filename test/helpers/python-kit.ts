/**
 * The Python agent kit (`kits/python`) installed the way a user installs it: its wheel built from the source tree
 * (`pip wheel kits/python --no-deps`) and installed with pip into a virtual environment that holds the frameworks of
 * the kit's end-to-end tests (`kits/python/tests/requirements-e2e.txt`).
 *
 * The venv is cached outside the repository (`~/.cache/tripline/venvs/kit-<key>`, key = the requirements' content
 * and the Python version, as test/agents/python/venv.sh does). Its first creation installs the requirements, then
 * the wheel with its declared dependencies; later runs build the wheel again and reinstall it
 * (`--force-reinstall --no-deps`) when it changed. Test files in several workers share the venv under a lock.
 * Without Python 3.10+ or PyPI the caller fails with pip's message; nothing is skipped.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const KIT_DIR = fileURLToPath(new URL('../../kits/python/', import.meta.url));
/** The kit's test agents and servers (`kits/python/tests/e2e/`). */
export const KIT_E2E_DIR = join(KIT_DIR, 'tests', 'e2e');
const REQUIREMENTS = join(KIT_DIR, 'tests', 'requirements-e2e.txt');
/** Written in the venv once the requirements are installed, and with the installed wheel's hash. */
const COMPLETE = '.complete';
const INSTALLED_WHEEL = '.tripline-wheel';
const LOCK_STALE_MS = 20 * 60_000;

async function sh(command: string, args: readonly string[], timeoutMs: number): Promise<string> {
  try {
    const { stdout } = await run(command, args, { maxBuffer: 32 * 1024 * 1024, timeout: timeoutMs });
    return stdout;
  } catch (error) {
    const failure = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${failure.stderr?.trim() || failure.message}`, {
      cause: error,
    });
  }
}

async function basePython(): Promise<{ python: string; version: string }> {
  const python = process.env.TRIPLINE_PYTHON ?? 'python3';
  let version: string;
  try {
    version = (await sh(python, ['-c', 'import sys; print(sys.version)'], 30_000)).trim();
  } catch (error) {
    throw new Error(
      `${python} not found; install Python 3.10+ (Debian: apt-get install python3 python3-venv) or set TRIPLINE_PYTHON`,
      { cause: error },
    );
  }
  const [major, minor] = version.split(' ')[0]?.split('.').map(Number) ?? [];
  if (major === undefined || minor === undefined || major < 3 || (major === 3 && minor < 10))
    throw new Error(`${python} is ${version}; the kit needs Python 3.10 or newer`);
  return { python, version };
}

/** A lock directory (mkdir is atomic) around the venv's creation and the wheel's install. */
async function withLock<T>(path: string, work: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_STALE_MS;
  for (;;) {
    try {
      mkdirSync(path);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // A lock older than any install left behind by a killed run.
      const held = statSync(path, { throwIfNoEntry: false });
      if (held !== undefined && Date.now() - held.mtimeMs > LOCK_STALE_MS) {
        rmSync(path, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for the lock ${path}`, { cause: error });
      await sleep(500);
    }
  }
  try {
    return await work();
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
}

async function buildWheel(python: string): Promise<string> {
  const out = mkdtempSync(join(tmpdir(), 'tripline-kit-wheel-'));
  // The build backend (hatchling) is in the venv (requirements-e2e.txt): no download per build.
  await sh(
    python,
    [
      '-m',
      'pip',
      'wheel',
      KIT_DIR,
      '--no-deps',
      '--no-build-isolation',
      '--disable-pip-version-check',
      '-q',
      '-w',
      out,
    ],
    5 * 60_000,
  );
  const wheel = readdirSync(out).find((name) => name.startsWith('tripline-') && name.endsWith('.whl'));
  if (wheel === undefined) throw new Error(`pip wheel ${KIT_DIR} made no tripline wheel in ${out}`);
  return join(out, wheel);
}

async function prepare(): Promise<string> {
  const { python, version } = await basePython();
  const requirements = readFileSync(REQUIREMENTS, 'utf8');
  const key = createHash('sha256').update(requirements).update(`${version}\n`).digest('hex').slice(0, 16);
  const cache = process.env.TRIPLINE_VENV_CACHE ?? join(homedir(), '.cache', 'tripline', 'venvs');
  mkdirSync(cache, { recursive: true });
  const venv = join(cache, `kit-${key}`);
  const venvPython = join(venv, 'bin', 'python');
  const pip = (args: readonly string[], timeoutMs = 15 * 60_000): Promise<string> =>
    sh(venvPython, ['-m', 'pip', '--disable-pip-version-check', '-q', ...args], timeoutMs);
  return withLock(`${venv}.lock`, async () => {
    let fresh = false;
    if (!existsSync(venvPython) || !existsSync(join(venv, COMPLETE))) {
      rmSync(venv, { recursive: true, force: true });
      await sh(python, ['-m', 'venv', venv], 120_000);
      await pip(['install', '--upgrade', 'pip']);
      await pip(['install', '-r', REQUIREMENTS]);
      writeFileSync(join(venv, COMPLETE), '');
      fresh = true;
    }
    const wheel = await buildWheel(venvPython);
    try {
      const hash = createHash('sha256').update(readFileSync(wheel)).digest('hex');
      const installed = existsSync(join(venv, INSTALLED_WHEEL))
        ? readFileSync(join(venv, INSTALLED_WHEEL), 'utf8')
        : '';
      if (fresh || installed === '') {
        // The first install pulls the kit's declared dependencies, as a user's `pip install tripline` does.
        await pip(['install', wheel]);
      } else if (installed !== hash) {
        await pip(['install', '--force-reinstall', '--no-deps', wheel]);
      }
      writeFileSync(join(venv, INSTALLED_WHEEL), hash);
    } finally {
      rmSync(join(wheel, '..'), { recursive: true, force: true });
    }
    return venvPython;
  });
}

let prepared: Promise<string> | undefined;

/** The python of the kit's venv, with the wheel of the current source installed (made once per process). */
export function kitPython(): Promise<string> {
  prepared ??= prepare().catch((error: unknown) => {
    prepared = undefined;
    throw new Error(
      `could not prepare the Python kit's environment: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  });
  return prepared;
}

export interface KitRun {
  stdout: string;
  stderr: string;
}

function scriptPath(script: string): string {
  return script.startsWith('/') ? script : join(KIT_E2E_DIR, script);
}

/**
 * Runs a Python script with the kit's python (a name is taken from `kits/python/tests/e2e/`); rejects with its
 * stderr when it exits non-zero.
 */
export async function runKitScript(
  script: string,
  args: readonly string[],
  env: Record<string, string> = {},
  timeoutMs = 180_000,
): Promise<KitRun> {
  const python = await kitPython();
  try {
    const { stdout, stderr } = await run(python, [scriptPath(script), ...args], {
      env: { ...process.env, PYTHONUNBUFFERED: '1', ...env },
      maxBuffer: 64 * 1024 * 1024,
      timeout: timeoutMs,
    });
    return { stdout, stderr };
  } catch (error) {
    const failure = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${script} failed: ${failure.message}\n${failure.stderr ?? ''}`, { cause: error });
  }
}

/** Runs the kit's python with `args` (e.g. `-m unittest ...`) in the kit's folder; rejects with its stderr. */
export async function runKitModule(args: readonly string[], timeoutMs = 180_000): Promise<KitRun> {
  const python = await kitPython();
  try {
    const { stdout, stderr } = await run(python, args, {
      cwd: KIT_DIR,
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
      maxBuffer: 64 * 1024 * 1024,
      timeout: timeoutMs,
    });
    return { stdout, stderr };
  } catch (error) {
    const failure = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`python ${args.join(' ')} failed: ${failure.message}\n${failure.stderr ?? ''}`, { cause: error });
  }
}

/** Starts a Python script with the kit's python, stdio piped (for agents the test talks to while they run). */
export async function spawnKitScript(
  script: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<ChildProcess> {
  const python = await kitPython();
  return spawn(python, [scriptPath(script), ...args], {
    env: { ...process.env, PYTHONUNBUFFERED: '1', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}
