/**
 * A real Kafka broker for tests, through test/kafka/broker.sh (Apache Kafka in KRaft mode from Maven Central
 * jars; needs Java 17+ and Maven, see test/kafka/README.md).
 *
 * - `startBroker()` starts (or reuses) a broker and tells whether this call started it; the error names what to
 *   install, or KAFKA_BROKERS to set, when the machine cannot run one.
 * - `kafkaBrokers()` is what a test file calls: the cluster of the vitest globalSetup (test/helpers/global-setup.ts,
 *   via `inject`), or KAFKA_BROKERS; it fails with a clear message when there is none (never skips).
 * - `startOwnBroker()` runs a separate broker on free ports with its own state, which a test may stop and start
 *   again with its data kept (`stop()` / `restart()`), to test ingest while Kafka is down.
 */
import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Comma-separated bootstrap brokers of the test cluster (set by test/helpers/global-setup.ts). */
    kafkaBrokers: string;
  }
}

export const BROKER_SCRIPT = fileURLToPath(new URL('../kafka/broker.sh', import.meta.url));

export interface BrokerEnv {
  KAFKA_PORT?: string;
  TRIPLINE_KAFKA_STATE?: string;
  /** SASL/SCRAM users and enforced ACLs (test/kafka/broker.sh): `admin=<password>,<user>=<password>,...`. */
  KAFKA_SASL_USERS?: string;
}

function runScript(
  command: 'start' | 'stop' | 'status',
  env: BrokerEnv = {},
  timeoutMs = 180_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      [BROKER_SCRIPT, command],
      { env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function brokersFrom(stdout: string): string | undefined {
  return /^KAFKA_BROKERS=(\S+)$/m.exec(stdout)?.[1];
}

/**
 * Starts the test broker (or reuses the one broker.sh already runs for the same state directory).
 * @throws Error saying what to install (Java 17+, Maven) or to set KAFKA_BROKERS, with broker.sh's own output.
 */
export async function startBroker(env: BrokerEnv = {}): Promise<{ brokers: string; startedHere: boolean }> {
  const status = await runScript('status', env);
  const running = status.code === 0 ? brokersFrom(status.stdout) : undefined;
  const started = await runScript('start', env);
  const brokers = brokersFrom(started.stdout);
  if (started.code !== 0 || brokers === undefined) {
    throw new Error(
      `The Kafka integration tests need a real broker and could not start one with test/kafka/broker.sh.\n` +
        `Install Java 17+ and Maven (apt-get install -y openjdk-17-jre-headless maven), or point the tests at a cluster with KAFKA_BROKERS=host:port.\n` +
        `broker.sh said:\n${started.stderr.trim()}`,
    );
  }
  return { brokers, startedHere: running === undefined };
}

export async function stopBroker(env: BrokerEnv = {}): Promise<void> {
  const result = await runScript('stop', env, 60_000);
  if (result.code !== 0) throw new Error(`broker.sh stop failed: ${result.stderr.trim()}`);
}

/** The test cluster: from the globalSetup, or KAFKA_BROKERS. */
export function kafkaBrokers(): string[] {
  let provided: string | undefined;
  try {
    provided = inject('kafkaBrokers');
  } catch {
    provided = undefined;
  }
  const value = provided ?? process.env.KAFKA_BROKERS;
  if (value === undefined || value.trim() === '') {
    throw new Error(
      'No Kafka broker for the Kafka integration tests: run vitest with --globalSetup test/helpers/global-setup.ts ' +
        '(it starts test/kafka/broker.sh; needs Java 17+ and Maven) or set KAFKA_BROKERS=host:port.',
    );
  }
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/** Waits until a broker answers metadata requests (a real request, never a fixed sleep). */
export async function waitForBroker(brokers: string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const admin = new Kafka({
      clientId: 'tripline-test-ready',
      brokers,
      logLevel: logLevel.NOTHING,
      connectionTimeout: 1000,
      requestTimeout: 3000,
      retry: { retries: 0 },
    }).admin();
    try {
      await admin.connect();
      await admin.listTopics();
      const { brokers: live } = await admin.describeCluster();
      if (live.length > 0) return;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`broker ${brokers.join(',')} did not answer within ${timeoutMs} ms: ${last}`);
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * Where test brokers listen: below the kernel's ephemeral range, so that no outgoing connection of another test
 * takes the port between the check and the broker's bind (a JVM start takes seconds).
 */
function brokerPortRange(): { from: number; to: number } {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 12_000) return { from: low - 11_000, to: low - 1_000 };
  } catch {
    // not Linux: fall through
  }
  return { from: 20_000, to: 30_000 };
}

/** Two consecutive free ports (broker, controller). */
export async function freePortPair(): Promise<number> {
  const { from, to } = brokerPortRange();
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = from + Math.floor(Math.random() * (to - from - 1));
    if ((await portFree(port)) && (await portFree(port + 1))) return port;
  }
  throw new Error('no two consecutive free ports for a test broker');
}

export interface OwnBroker {
  brokers: string[];
  /** Stops the broker (SIGTERM, its data kept). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same data, and waits until it answers. */
  restart(): Promise<void>;
  /** Stops it for good and removes its state directory. */
  destroy(): Promise<void>;
}

/**
 * A broker of this test's own (free port, own state directory), started by broker.sh. `restart()` relaunches
 * the very command line broker.sh used (read from /proc), without formatting, so topics, records and
 * committed offsets survive.
 */
/** Starts a broker on a free port pair with its own state directory; another pair when a port was taken meanwhile. */
async function launchOnFreePorts(extra: BrokerEnv = {}): Promise<{ state: string; env: BrokerEnv; brokers: string }> {
  for (let attempt = 1; ; attempt += 1) {
    const port = await freePortPair();
    const state = join(tmpdir(), `tripline-kafka-test-${port}`);
    const env: BrokerEnv = { ...extra, KAFKA_PORT: String(port), TRIPLINE_KAFKA_STATE: state };
    try {
      return { state, env, brokers: (await startBroker(env)).brokers };
    } catch (error) {
      rmSync(state, { recursive: true, force: true });
      if (attempt >= 3) throw error;
    }
  }
}

/**
 * `saslUsers` (name → password, the first one the super user): the broker authenticates clients with
 * SASL/SCRAM-SHA-256 and enforces ACLs, nothing allowed without one (`restart()` is then not supported: its
 * readiness probe has no credentials).
 */
export async function startOwnBroker(options: { saslUsers?: Record<string, string> } = {}): Promise<OwnBroker> {
  const users = Object.entries(options.saslUsers ?? {});
  const { state, env, brokers } = await launchOnFreePorts(
    users.length === 0 ? {} : { KAFKA_SASL_USERS: users.map(([name, password]) => `${name}=${password}`).join(',') },
  );
  const pidFile = join(state, 'kafka.pid');
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    .split('\u0000')
    .filter((arg) => arg !== '');
  const cwd = readlinkSync(`/proc/${pid}/cwd`);
  const [command, ...args] = argv;
  if (command === undefined) throw new Error(`cannot read the broker's command line (pid ${pid})`);
  const list = brokers.split(',');
  return {
    brokers: list,
    stop: () => stopBroker(env),
    async restart() {
      const log = openSync(join(state, 'logs', 'restart.log'), 'a');
      const child = spawn(command, args, { cwd, detached: true, stdio: ['ignore', log, log] });
      closeSync(log);
      child.unref();
      if (child.pid === undefined) throw new Error('could not relaunch the broker');
      writeFileSync(pidFile, `${child.pid}\n`);
      await waitForBroker(list, 90_000);
    },
    async destroy() {
      if (existsSync(pidFile)) await stopBroker(env);
      rmSync(state, { recursive: true, force: true });
    },
  };
}
