/**
 * Starts Tripline the way a user does (`node services/app/main.ts`, i.e. `npm start`) as a child process on
 * free ports, and stops it with SIGTERM.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.ts';

const MAIN = fileURLToPath(new URL('../../services/app/main.ts', import.meta.url));

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
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
