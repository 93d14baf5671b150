/**
 * docker-compose.yml's Tripline services, run the way the file runs them, without Docker (no engine or registry
 * image is reachable on our machines): for each Tripline service (built from this repository) its exact compose
 * `command` and `environment` (as `docker-compose config` resolves them) plus the image's `ENV` (Dockerfile), as
 * a native process in the repository (the image's WORKDIR holds it). Kafka too runs as the file configures it
 * (test/helpers/compose-kafka.ts: the `kafka` service's environment as the apache/kafka image turns it into
 * server.properties, its mounted JAAS file, on Kafka's own jars): SASL/SCRAM-SHA-256 for clients, ACLs enforced,
 * healthy by its compose health check; then the file's `kafka-users` job (its script, Kafka's own ConfigCommand)
 * makes the users. Only addresses are mapped: the hostname `kafka` and `clickhouse` (the ClickHouse stand-in of
 * the drills, test/drills/clickhouse-server.ts) become 127.0.0.1, each listening port a free port; the `/data`
 * volume becomes a temporary directory.
 *
 * Services start as `depends_on` says, side by side once what they wait for passed its compose health check (run
 * as the file writes it, the port mapped, within the file's own `start_period` + `retries` × `interval`) or, a
 * one-shot job (the `kafka-acls` job making the roles' ACLs), finished successfully. Then an agent on the real
 * OpenTelemetry SDK sends a task through that topology, gateway → Kafka → processors → ClickHouse, whose unapproved
 * privilege elevation revokes it: the API, a process of its own, reports the task revoked and lists it.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { context, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { startClickHouseServer } from '../drills/processes.ts';
import type { ClickHouseServer } from '../drills/processes.ts';
import {
  COMPOSE_ADMIN_TOKEN as ADMIN_TOKEN,
  COMPOSE_AGENT_TOKEN as AGENT_TOKEN,
  COMPOSE_SECRETS,
} from '../helpers/compose-env.ts';
import { mountsOf, startComposeKafka } from '../helpers/compose-kafka.ts';
import type { ComposeKafka } from '../helpers/compose-kafka.ts';
import { freePort } from '../helpers/tripline-process.ts';
import { waitFor } from '../helpers/wait.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');

/** Ports the services listen on, by variable. */
const PORT_VARIABLES = ['TRIPLINE_OTLP_PORT', 'TRIPLINE_API_PORT', 'TRIPLINE_HEALTH_PORT'];
const HOST_VARIABLES = ['TRIPLINE_OTLP_HOST', 'TRIPLINE_API_HOST', 'TRIPLINE_HEALTH_HOST'];

interface Healthcheck {
  test: string[] | string;
  interval?: string;
  timeout?: string;
  retries?: number;
  start_period?: string;
}

interface Service {
  image?: string;
  restart?: string;
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: Healthcheck;
}

interface Running {
  name: string;
  child: ChildProcess;
  output(): string;
  /** Container port → host port. */
  ports: Map<number, number>;
  env: Record<string, string>;
}

function resolvedCompose(): Record<string, Service> {
  const result = spawnSync('docker-compose', ['-f', COMPOSE_FILE, 'config'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...COMPOSE_SECRETS },
    timeout: 60_000,
  });
  if (result.error !== undefined)
    throw new Error(
      `docker-compose could not run (install it with \`apt-get install -y docker-compose\`): ${result.error.message}`,
    );
  expect(result.status, `docker-compose config:\n${result.stderr}`).toBe(0);
  return (parseYaml(result.stdout) as { services: Record<string, Service> }).services;
}

/** The image's `ENV` lines (Dockerfile), as a container of the image has them. */
function imageEnv(): Record<string, string> {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const env: Record<string, string> = {};
  for (const line of dockerfile.split('\n').filter((text) => text.startsWith('ENV '))) {
    for (const pair of line.slice(4).trim().split(/\s+/)) {
      const [name, value] = pair.split('=');
      if (name !== undefined && value !== undefined) env[name] = value;
    }
  }
  return env;
}

function seconds(duration: string | undefined, fallback: number): number {
  const match = /^(\d+)(ms|s|m)$/.exec(duration ?? '');
  if (match === null) return fallback;
  const value = Number(match[1]);
  return match[2] === 'ms' ? value / 1000 : match[2] === 'm' ? value * 60 : value;
}

/**
 * Runs a service's health check as compose does: the CMD / CMD-SHELL test, every `interval` after
 * `start_period`, healthy at the first success, unhealthy after `retries` failures. Container ports in the
 * command are the service's mapped ports; `node` is this Node.js (the image's).
 */
async function becomesHealthy(
  service: Running,
  healthcheck: Healthcheck,
  paths: ReadonlyMap<string, string> = new Map(),
): Promise<{ attempts: number }> {
  const test = Array.isArray(healthcheck.test) ? healthcheck.test : ['CMD-SHELL', healthcheck.test];
  const mapPorts = (text: string): string =>
    [...paths]
      .reduce((mapped, [from, to]) => mapped.replaceAll(from, to), text)
      .replace(/(127\.0\.0\.1|localhost):(\d+)/g, (whole, host: string, port: string) => {
        const mapped = service.ports.get(Number(port));
        return mapped === undefined ? whole : `${host}:${mapped}`;
      });
  const [kind, ...argv] = test.map(mapPorts);
  const command =
    kind === 'CMD-SHELL'
      ? { file: '/bin/sh', args: ['-c', argv.join(' ')] }
      : { file: argv[0] === 'node' ? process.execPath : (argv[0] ?? ''), args: argv.slice(1) };
  const intervalMs = seconds(healthcheck.interval, 30) * 1000;
  const retries = healthcheck.retries ?? 3;
  const startPeriodMs = seconds(healthcheck.start_period, 0) * 1000;
  const started = Date.now();
  let failures = 0;
  let attempts = 0;
  for (;;) {
    if (service.child.exitCode !== null)
      throw new Error(`${service.name} exited (${service.child.exitCode}):\n${service.output().slice(-4000)}`);
    attempts += 1;
    const result = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
      execFile(
        command.file,
        command.args,
        { cwd: ROOT, env: service.env, timeout: seconds(healthcheck.timeout, 30) * 1000 },
        (error, _stdout, stderr) =>
          resolve({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stderr }),
      );
    });
    if (result.status === 0) return { attempts };
    const last = `exit ${String(result.status)} ${result.stderr}`;
    if (Date.now() - started > startPeriodMs) failures += 1;
    if (failures >= retries)
      throw new Error(
        `${service.name} is unhealthy: its health check failed ${failures} times (${last})\n${service.output().slice(-4000)}`,
      );
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * The `kafka-users` job (deploy/kafka/kafka-users.sh, mounted into the apache/kafka image) run natively: its
 * entrypoint and environment from the file, the image's tools from `binDir`, the broker's own listener mapped.
 */
async function runKafkaUsersJob(
  service: Service & { entrypoint?: string[]; volumes?: (string | { source: string; target: string })[] },
  binDir: string,
  internal: string,
): Promise<void> {
  const mounts = mountsOf(service);
  const [shell, ...args] = (service.entrypoint ?? []).map((arg) => mounts.get(arg) ?? arg);
  expect(shell, 'kafka-users runs a shell script').toBe('/bin/bash');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    KAFKA_BIN: binDir,
    KAFKA_INTERNAL_BOOTSTRAP: internal,
  };
  for (const [key, value] of Object.entries(service.environment ?? {})) env[key] = value === null ? '' : String(value);
  const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
    execFile('/bin/bash', args, { cwd: ROOT, env, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({
        code: error === null ? 0 : typeof error.code === 'number' ? error.code : null,
        output: stdout + stderr,
      }),
    );
  });
  expect(result.code, `kafka-users finished successfully:\n${result.output}`).toBe(0);
}

describe('docker-compose.yml: the Tripline services, started as compose starts them, become healthy and revoke a rogue task', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-compose-'));
  let clickhouse: ClickHouseServer | undefined;
  let broker: ComposeKafka | undefined;
  let services: Record<string, Service>;
  const running = new Map<string, Running>();
  const health = new Map<string, number>();
  const completed = new Set<string>();

  beforeAll(async () => {
    services = resolvedCompose();
    const store = await startClickHouseServer(join(dataDir, 'clickhouse'));
    clickhouse = store;
    // The compose Kafka (the file's broker configuration on Kafka's jars), healthy by its compose health check,
    // then the kafka-users job.
    const kafka = await startComposeKafka(services.kafka ?? {}, join(dataDir, 'kafka'));
    broker = kafka;
    const kafkaService: Running = {
      name: 'kafka',
      child: kafka.process,
      output: () => kafka.output(),
      ports: kafka.ports,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' },
    };
    await becomesHealthy(
      kafkaService,
      services.kafka?.healthcheck ?? { test: [] },
      new Map([['/opt/kafka/bin', kafka.binDir]]),
    );
    await runKafkaUsersJob(services['kafka-users'] ?? {}, kafka.binDir, `localhost:${String(kafka.ports.get(9094))}`);
    completed.add('kafka-users');
    const image = imageEnv();
    const tripline = Object.keys(services).filter((name) => services[name]?.image?.startsWith('tripline:') === true);
    const addresses: Record<string, string> = {
      'kafka:9092': kafka.brokers,
      'http://clickhouse:8123': store.url,
    };
    const bringUp = async (name: string): Promise<void> => {
      const service = services[name] ?? {};
      // Every dependency that is a Tripline service passed its health check (or, a one-shot job, finished
      // successfully) before this one starts.
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {}))
        if (tripline.includes(dependency))
          expect(
            condition === 'service_healthy' ? health.has(dependency) : completed.has(dependency),
            `${name} waits for ${dependency} (${condition})`,
          ).toBe(true);
      const ports = new Map<number, number>();
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/tmp',
        ...Object.fromEntries(
          Object.entries(image).map(([key, value]) => [key, value === '/data' ? join(dataDir, name) : value]),
        ),
      };
      for (const [key, raw] of Object.entries(service.environment ?? {})) {
        const value = raw === null ? '' : String(raw);
        env[key] = addresses[value] ?? value;
      }
      for (const variable of PORT_VARIABLES) {
        const port = env[variable];
        if (port === undefined) continue;
        const mapped = await freePort();
        ports.set(Number(port), mapped);
        env[variable] = String(mapped);
      }
      for (const variable of HOST_VARIABLES) if (env[variable] !== undefined) env[variable] = '127.0.0.1';
      const command = typeof service.command === 'string' ? service.command.split(/\s+/) : (service.command ?? []);
      expect(command[0], `${name} runs node`).toBe('node');
      const child = spawn(process.execPath, command.slice(1), { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      const append = (chunk: Buffer): void => {
        output = (output + chunk.toString('utf8')).slice(-1_000_000);
      };
      child.stdout.on('data', append);
      child.stderr.on('data', append);
      const service_: Running = { name, child, output: () => output, ports, env };
      running.set(name, service_);
      process.once('exit', () => child.kill('SIGKILL'));
      if (service.restart === 'no') {
        // A one-shot job: it must finish, successfully.
        const code = await new Promise<number | null>((resolve) => {
          if (child.exitCode !== null) resolve(child.exitCode);
          else child.once('exit', (exitCode) => resolve(exitCode));
        });
        expect(code, `${name} finished successfully:\n${output.slice(-4000)}`).toBe(0);
        completed.add(name);
        return;
      }
      const healthcheck = service.healthcheck;
      expect(healthcheck, `${name} has a health check`).toBeDefined();
      const { attempts } = await becomesHealthy(service_, healthcheck ?? { test: [] });
      health.set(name, attempts);
    };
    // As compose does: each service starts once what it depends on is healthy (or finished), services whose
    // dependencies are met start side by side.
    const up = new Map<string, Promise<void>>();
    const started = (name: string): Promise<void> => {
      let promise = up.get(name);
      if (promise === undefined) {
        const dependencies = Object.keys(services[name]?.depends_on ?? {}).filter((other) => tripline.includes(other));
        promise = Promise.all(dependencies.map(started)).then(() => bringUp(name));
        up.set(name, promise);
      }
      return promise;
    };
    await Promise.all(tripline.map(started));
  }, 400_000);

  afterAll(async () => {
    await Promise.all(
      [...running.values()].map(
        (service) =>
          new Promise<void>((resolve) => {
            if (service.child.exitCode !== null) return resolve();
            service.child.once('exit', () => resolve());
            service.child.kill('SIGTERM');
          }),
      ),
    );
    await clickhouse?.stop();
    await broker?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it('starts every Tripline service with its compose command and environment, and each passes its compose health check', () => {
    expect([...completed]).toEqual(['kafka-users', 'kafka-acls']);
    expect([...health.keys()].sort()).toEqual(['api', 'gateway', 'processor-1', 'processor-2']);
  });

  it('carries a span from an agent on the OpenTelemetry SDK to a revocation: gateway → Kafka → processor → ClickHouse → API', async () => {
    const gateway = running.get('gateway');
    const api = running.get('api');
    const otlpPort = gateway?.ports.get(4318);
    const apiPort = api?.ports.get(8080);
    expect(otlpPort).toBeDefined();
    expect(apiPort).toBeDefined();
    const taskId = `compose-rogue-${Date.now().toString(36)}`;
    const agentId = 'compose-agent';

    const exporter = new OTLPTraceExporter({
      url: `http://127.0.0.1:${String(otlpPort)}/v1/traces`,
      headers: { authorization: `Bearer ${AGENT_TOKEN}` },
    });
    const spans = new BatchSpanProcessor({ exporter, scheduledDelayMillis: 100 });
    const sdk = new NodeSDK({
      resource: resourceFromAttributes({ 'service.name': agentId }),
      spanProcessors: [spans],
      instrumentations: [],
    });
    sdk.start();
    try {
      const tracer = trace.getTracer(agentId);
      const common = { 'tripline.task.id': taskId, 'tripline.task.type': 'compose_task', 'gen_ai.agent.id': agentId };
      const root = tracer.startSpan('task compose_task', {
        root: true,
        attributes: { ...common, 'tripline.task.root': true },
      });
      const parent = trace.setSpan(context.active(), root);
      tracer
        .startSpan(
          'get_ticket',
          { attributes: { ...common, 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'get_ticket' } },
          parent,
        )
        .end();
      // An unapproved change into an admin scope: a hard rule that revokes the task at once.
      tracer
        .startSpan(
          'privilege elevate',
          {
            attributes: {
              ...common,
              'tripline.privilege.action': 'elevate',
              'tripline.privilege.scopes_before': ['tickets:read'],
              'tripline.privilege.scopes_after': ['tickets:read', 'admin'],
              'tripline.privilege.approved': false,
            },
          },
          parent,
        )
        .end();
      root.end();
      await spans.forceFlush();
    } finally {
      await sdk.shutdown();
    }

    const apiUrl = `http://127.0.0.1:${String(apiPort)}`;
    const get = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
      const response = await fetch(`${apiUrl}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const task = await waitFor(
      `the API to report task ${taskId} revoked`,
      async () => {
        const answer = await get(`/v1/tasks/${taskId}`);
        return answer.status === 200 && answer.body.status === 'revoked' ? answer.body : undefined;
      },
      90_000,
      250,
    );
    expect(task.agentId).toBe(agentId);
    const revocations = await get(`/v1/revocations?task_id=${taskId}`);
    expect(revocations.status).toBe(200);
    const items = (revocations.body.items as { taskId: string; action: string }[]).filter(
      (item) => item.taskId === taskId,
    );
    expect(items.map((item) => item.action)).toEqual(['revoke']);
  }, 120_000);
});
