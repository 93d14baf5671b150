/**
 * Starts Tripline the way a user does (`node services/app/main.ts`, i.e. `npm start`) as a child process on
 * free ports, and stops it with SIGTERM. The stop is bounded: Tripline bounds its own shutdown
 * (TRIPLINE_SHUTDOWN_GRACE_MS, 30 s by default: past it, it logs the steps still under way and exits 1); a child not
 * gone `STOP_WAIT_MS` after the signal is killed (SIGKILL). Either way stop() fails with the tail of the child's
 * output, so a shutdown hang fails the test that stops it instead of holding its hook until the runner's timeout.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.ts';

const MAIN = fileURLToPath(new URL('../../services/app/main.ts', import.meta.url));
/** How long stop() waits for the child after SIGTERM before it kills it: past Tripline's own 30 s grace. */
const STOP_WAIT_MS = 60_000;
/** How much of the child's output a failed stop shows. */
const OUTPUT_TAIL_CHARS = 8000;

/** Thrown by stop() when the child did not stop by itself (see the module comment). */
export class TriplineStopError extends Error {}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

export interface TriplineProcess {
  apiUrl: string;
  otlpUrl: string;
  child: ChildProcess;
  output(): string;
  /** SIGTERM, then the exit code; rejects (TriplineStopError) when the shutdown hung. */
  stop(): Promise<number | null>;
}

export async function startTriplineProcess(env: Record<string, string>): Promise<TriplineProcess> {
  const otlpPort = await freePort();
  const apiPort = await freePort();
  // The embedded mode unless the caller asks otherwise: a KAFKA_BROKERS in the test runner's environment
  // must not switch these tests to the distributed mode.
  const { KAFKA_BROKERS: _brokers, TRIPLINE_ROLES: _roles, ...inherited } = process.env;
  const child = spawn(process.execPath, [MAIN], {
    env: {
      ...inherited,
      TRIPLINE_OTLP_HOST: '127.0.0.1',
      TRIPLINE_API_HOST: '127.0.0.1',
      TRIPLINE_OTLP_PORT: String(otlpPort),
      TRIPLINE_API_PORT: String(apiPort),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  try {
    await waitFor(
      'Tripline to start',
      async () => {
        if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${output}`);
        const response = await fetch(`${apiUrl}/readyz`);
        return response.ok;
      },
      60_000,
      200,
    );
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    apiUrl,
    otlpUrl: `http://127.0.0.1:${otlpPort}`,
    child,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const waited = await Promise.race([
        exited.then((code) => ({ code })),
        new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), STOP_WAIT_MS))),
      ]);
      clearTimeout(timer);
      const tail = (): string => output.slice(-OUTPUT_TAIL_CHARS);
      if (waited === 'timeout') {
        child.kill('SIGKILL');
        await exited;
        throw new TriplineStopError(
          `Tripline did not exit within ${STOP_WAIT_MS} ms of SIGTERM and was killed; its output ends:\n${tail()}`,
        );
      }
      if (waited.code !== 0 && output.includes('SHUTDOWN_TIMEOUT'))
        throw new TriplineStopError(
          `Tripline's shutdown outlasted its grace (exit code ${String(waited.code)}); its output ends:\n${tail()}`,
        );
      return waited.code;
    },
  };
}
