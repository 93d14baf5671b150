/**
 * Python test agents: each framework's agents run in a virtual environment made from PyPI by
 * `test/agents/python/venv.sh` (cached in ~/.cache/tripline/venvs, keyed by the requirements' content). The
 * first run of a framework installs it (a minute or two); without Python 3.10+ or PyPI the test fails with the
 * script's message, it never skips.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const AGENTS = fileURLToPath(new URL('../agents/python/', import.meta.url));

/** The python of the framework's venv, made when missing. */
export async function pythonFor(framework: string): Promise<string> {
  try {
    const { stdout } = await run('bash', [`${AGENTS}venv.sh`, framework], {
      maxBuffer: 16 * 1024 * 1024,
      timeout: 15 * 60_000,
    });
    return stdout.trim().split('\n').at(-1) ?? '';
  } catch (error) {
    const failure = error as { stderr?: string; message: string };
    throw new Error(
      `could not prepare the Python environment for ${framework}: ${failure.stderr?.trim() || failure.message}`,
      { cause: error },
    );
  }
}

export interface PythonRun {
  stdout: string;
  stderr: string;
}

/** Runs `test/agents/python/<framework>/<script>` with the framework's python; rejects with its stderr. */
export async function runPythonAgent(
  framework: string,
  script: string,
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 180_000,
): Promise<PythonRun> {
  const python = await pythonFor(framework);
  try {
    const { stdout, stderr } = await run(python, [`${AGENTS}${framework}/${script}`, ...args], {
      env: { ...process.env, PYTHONUNBUFFERED: '1', ...env },
      maxBuffer: 64 * 1024 * 1024,
      timeout: timeoutMs,
    });
    return { stdout, stderr };
  } catch (error) {
    const failure = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${framework}/${script} failed: ${failure.message}\n${failure.stderr ?? ''}`, { cause: error });
  }
}
