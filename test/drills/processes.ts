/**
 * Child processes of the drills: Tripline's services started the way an operator starts them
 * (`node services/app/gateway-main.ts`, `processor-main.ts`, `main.ts`) and the drills' ClickHouse server
 * (test/drills/clickhouse-server.ts), each of which a drill may kill (SIGKILL), stop (SIGTERM) and start again.
 * A child still running when the test process exits is killed with it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/tripline-process.ts';
import { waitFor } from '../helpers/wait.ts';

const SCRIPTS = {
  gateway: fileURLToPath(new URL('../../services/app/gateway-main.ts', import.meta.url)),
  processor: fileURLToPath(new URL('../../services/app/processor-main.ts', import.meta.url)),
  all: fileURLToPath(new URL('../../services/app/main.ts', import.meta.url)),
  clickhouse: fileURLToPath(new URL('./clickhouse-server.ts', import.meta.url)),
} as const;

const OUTPUT_LIMIT = 2 * 1024 * 1024;

export interface Child {
  pid: number;
  /** What the process wrote (the last 2 MiB). */
  output(): string;
  running(): boolean;
  /** Sends the signal and resolves with the exit code once the process is gone (null when killed). */
  signal(name: 'SIGKILL' | 'SIGTERM'): Promise<number | null>;
  /** Resident memory now (bytes), from /proc; undefined once gone. */
  rssBytes(): number | undefined;
}

function startChild(script: string, args: string[], env: Record<string, string>): Child {
  const child: ChildProcess = spawn(process.execPath, [script, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const append = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
    if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT / 2);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      exitCode = code;
      resolve(code);
    }),
  );
  const reap = (): void => {
    if (exitCode === undefined) child.kill('SIGKILL');
  };
  process.once('exit', reap);
  void exited.then(() => process.removeListener('exit', reap));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${script}`);
  return {
    pid,
    output: () => output,
    running: () => exitCode === undefined,
    async signal(name) {
      if (exitCode === undefined) child.kill(name);
      return exited;
    },
    rssBytes() {
      try {
        const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
        return kb === undefined ? undefined : Number(kb) * 1024;
      } catch {
        return undefined;
      }
    },
  };
}

async function ready(
  child: Child,
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  await waitFor(
    what,
    async () => {
      if (!child.running()) throw new Error(`${what}: the process exited:\n${child.output().slice(-4000)}`);
      return check();
    },
    timeoutMs,
    100,
  ).catch(async (error: unknown) => {
    await child.signal('SIGKILL');
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}; its output ended with:\n${child.output().slice(-2000)}`,
    );
  });
}

// ------------------------------------------------------------------------------------------------------------

export type ServiceRole = 'gateway' | 'processor' | 'all';

export interface ServiceProcess extends Child {
  role: ServiceRole;
  /** The OTLP receiver (gateway and all) and the API (all), as configured by the caller's ports. */
  otlpUrl: string | undefined;
  apiUrl: string | undefined;
}

/**
 * Starts a Tripline service and waits until it says it is running. The caller passes the whole environment
 * (see drillEnv); give fixed ports (TRIPLINE_OTLP_PORT, TRIPLINE_API_PORT) to reach it, and LOG_LEVEL info or
 * lower is set here so that the start line can be seen.
 */
export async function startService(
  role: ServiceRole,
  env: Record<string, string>,
  timeoutMs = 90_000,
): Promise<ServiceProcess> {
  const { KAFKA_BROKERS: _ignored, ...inherited } = process.env;
  const child = startChild(SCRIPTS[role], [], { ...stringEnv(inherited), ...env, LOG_LEVEL: 'info' });
  await ready(child, `the ${role} service to start`, () => /is running/.test(child.output()), timeoutMs);
  const otlpPort = env.TRIPLINE_OTLP_PORT;
  const apiPort = env.TRIPLINE_API_PORT;
  return {
    ...child,
    role,
    otlpUrl: role !== 'processor' && otlpPort !== undefined ? `http://127.0.0.1:${otlpPort}` : undefined,
    apiUrl: role === 'all' && apiPort !== undefined ? `http://127.0.0.1:${apiPort}` : undefined,
  };
}

function stringEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined) out[key] = value;
  return out;
}

export { freePort };

// ------------------------------------------------------------------------------------------------------------

export interface ClickHouseServer {
  url: string;
  process(): Child;
  /** SIGKILL: the server goes away at once, mid-request. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data. */
  restart(): Promise<void>;
  /** The next insert into `table` by `user` (CLICKHOUSE_USER) whose rows contain `contains` waits until `release()`. */
  hold(user: string, table: string, contains?: string): Promise<void>;
  /** Inserts waiting. */
  held(): Promise<number>;
  release(): Promise<void>;
  stop(): Promise<void>;
}

export async function startClickHouseServer(dataDir: string): Promise<ClickHouseServer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let child: Child;
  const launch = async (): Promise<void> => {
    child = startChild(SCRIPTS.clickhouse, [dataDir, String(port)], {});
    await ready(child, 'the drill ClickHouse server to listen', () => child.output().includes('listening'), 60_000);
  };
  await launch();
  const control = async (path: string, method = 'POST'): Promise<{ held: number }> => {
    const response = await fetch(`${url}${path}`, { method });
    return (await response.json()) as { held: number };
  };
  return {
    url,
    process: () => child,
    async kill() {
      await child.signal('SIGKILL');
    },
    restart: launch,
    async hold(user, table, contains = '') {
      await control(`/drill/hold?${new URLSearchParams({ user, table, contains }).toString()}`);
    },
    held: async () => (await control('/drill/held', 'GET')).held,
    async release() {
      await control('/drill/release');
    },
    async stop() {
      await child.signal('SIGTERM');
    },
  };
}
