/**
 * Kill latency: from the offending span leaving the agent to
 *   (a) the revocation stored (its ClickHouse insert acknowledged),
 *   (b) introspection answering inactive for the task's token (POST /oauth2/introspect, polled every 2 ms),
 *   (c) the agent helper refusing the task's next tool call with TaskRevokedError: the moment its guard holds the
 *       revocation (pushed over server-sent events), after which the next call is refused — each kill checks that
 *       it is,
 * p50 / p95 / p99 / max over many kills.
 *
 * Run:
 *   node test/bench/kill-latency.bench.ts                  embedded mode (in-process bus, chdb), 250 kills
 *   node test/bench/kill-latency.bench.ts --kafka          through Kafka (starts test/kafka/broker.sh, or KAFKA_BROKERS)
 *   KILLS=500 BACKGROUND_EPS=200 node test/bench/kill-latency.bench.ts
 *   TRIPLINE_KAFKA_LINGER_MS=5 … --kafka   TRIPLINE_KAFKA_* variables reach the bench's gateway and processor
 *   BENCH_DEBUG=1 …   per kill, when the span reached the gateway (and Kafka), the processor, the decision, the
 *                     revocation insert and (through Kafka) the API side; at the end, the time of each step
 * (Node 24: `npm exec -- node …`, or node_modules/.bin first on PATH.)
 *
 * The agent is a separate process (the agent helpers on @opentelemetry/sdk-node, OTLP/HTTP, the guard on
 * server-sent events, a task token per task); "leaving the agent" is the moment its span exporter is handed the
 * offending span (the batch processor's delay is 0 ms). Each kill is one task: a benign tool call, then an
 * unapproved administrative privilege change (a hard rule: revoked on the first event), then tool calls until one
 * is refused. BACKGROUND_EPS adds a second agent process with benign traffic. Escalation is off (every kill is
 * the same agent). Times are wall-clock (performance.timeOrigin + performance.now()) on one machine.
 *
 * Embedded: Tripline runs in this process. Kafka: gateway + processor (distributed.ts, their kill switch bridged
 * to Kafka) and, separately bridged with its own consumer group, the kill switch's runtime and API that the agent
 * talks to — so (b) and (c) only happen once the revocation went processor → tripline.revocations → API.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const decided = new Map<string, number>();
const received: number[] = [];
/** Through Kafka: when the gateway answered an export (Kafka acknowledged its records). */
const acked: number[] = [];
const handled = new Map<string, number>();
/** When the insert of a task's revocation was called. */
const insertCalled = new Map<string, number>();
/** Through Kafka: when the API side's kill switch applied the revocation. */
const applied = new Map<string, number>();
const clock = (): number => performance.timeOrigin + performance.now();

interface KillSample {
  taskId: string;
  /** The offending span handed to the exporter. */
  t0: number;
  /** Introspection first answered inactive. */
  tb: number;
  /** The guard refused a tool call. */
  tc: number;
}

type ToAgent = { type: 'run'; kills: number } | { type: 'stop' };
type FromAgent =
  { type: 'ready' } | { type: 'kill'; sample: KillSample } | { type: 'done' } | { type: 'error'; message: string };

// ---------------------------------------------------------------------------------------------------------------
// The agent process.

async function agentMain(role: 'killer' | 'background', otlp: string, api: string): Promise<void> {
  const { startTelemetry, TaskRevokedError } = await import('../../kits/typescript/src/index.ts');
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
  const send = (message: FromAgent): void => void process.send?.(message);
  const { TEST_AGENT_TOKEN, agentHeaders } = await import('../helpers/auth.ts');
  const inner = new OTLPTraceExporter({ url: `${otlp}/v1/traces`, headers: agentHeaders });
  let offending: { taskId: string; resolve: (t: number) => void } | undefined;
  const exporter: typeof inner = Object.assign(Object.create(inner) as typeof inner, {
    export(spans: Parameters<typeof inner.export>[0], done: Parameters<typeof inner.export>[1]) {
      if (offending !== undefined) {
        const target = offending;
        if (
          spans.some(
            (span) => span.name === 'privilege elevate' && span.attributes['tripline.task.id'] === target.taskId,
          )
        ) {
          target.resolve(clock());
          offending = undefined;
        }
      }
      inner.export(spans, done);
    },
  });
  const agentId = role === 'killer' ? 'bench-refund-agent' : 'bench-background-agent';
  const armed = new Map<string, (t: number) => void>();
  const telemetry = startTelemetry({
    endpoint: otlp,
    apiUrl: api,
    token: TEST_AGENT_TOKEN,
    agentId,
    exporter,
    exportDelayMs: 0,
    credentials: role === 'killer',
    guard: role === 'killer' ? { onRevocation: (notice) => armed.get(notice.taskId)?.(clock()) } : false,
  });

  if (role === 'background') {
    const eps = Number(process.env.BACKGROUND_EPS ?? '0');
    let stop = false;
    process.on('message', (message: ToAgent) => {
      if (message.type === 'stop') stop = true;
    });
    send({ type: 'ready' });
    while (!stop) {
      await telemetry.task('summarize_ticket', async (task) => {
        for (let i = 0; i < 10 && !stop; i += 1) {
          await task.toolCall('get_ticket', { sideEffect: 'read' }, () => undefined);
          await sleep(1000 / Math.max(1, eps));
        }
      });
    }
    await telemetry.shutdown();
    send({ type: 'done' });
    return;
  }

  const introspectUntilInactive = async (token: string, signal: AbortSignal): Promise<number> => {
    for (;;) {
      const response = await fetch(`${api}/oauth2/introspect`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...agentHeaders },
        body: `token=${token}`,
        signal,
      });
      const answer = (await response.json()) as { active: boolean };
      if (!answer.active) return clock();
      await sleep(2);
    }
  };

  process.on('message', (message: ToAgent) => {
    if (message.type !== 'run') return;
    void (async () => {
      for (let i = 0; i < message.kills; i += 1) {
        let sample: KillSample | undefined;
        await telemetry
          .task(
            'customer_refund',
            async (task) => {
              const { taskId } = task;
              const token = task.token ?? '';
              await task.toolCall('get_order', { sideEffect: 'read' }, () => undefined);
              const left = new Promise<number>((resolve) => (offending = { taskId, resolve }));
              const guarded = new Promise<number>((resolve) => armed.set(taskId, resolve));
              const abort = new AbortController();
              const inactive = introspectUntilInactive(token, abort.signal);
              await task.privilegeChange(
                {
                  action: 'elevate',
                  scopesBefore: ['payments:read'],
                  scopesAfter: ['payments:read', 'admin'],
                  approved: false,
                },
                () => undefined,
              );
              const tc = await guarded;
              armed.delete(taskId);
              // The next tool call must be refused.
              const refused = await task
                .toolCall('get_order', { sideEffect: 'read' }, () => undefined)
                .then(
                  () => false,
                  (error: unknown) => error instanceof TaskRevokedError,
                );
              if (!refused) throw new Error(`task ${taskId}: the tool call after the revocation was not refused`);
              const [t0, tb] = await Promise.all([left, inactive]);
              abort.abort();
              sample = { taskId, t0, tb, tc };
              throw new TaskRevokedError({
                taskId,
                revocationId: '',
                reason: 'bench',
                operation: 'bench',
                revokedAtMs: tc,
              });
            },
            { tools: ['get_order'], scopes: ['payments:read'] },
          )
          .catch((error: unknown) => {
            if (!(error instanceof TaskRevokedError))
              send({ type: 'error', message: error instanceof Error ? error.message : String(error) });
          });
        if (sample !== undefined) send({ type: 'kill', sample });
        await sleep(20);
      }
      await telemetry.shutdown();
      send({ type: 'done' });
    })();
  });
  send({ type: 'ready' });
}

// ---------------------------------------------------------------------------------------------------------------
// The bench.

interface Target {
  otlp: string;
  api: string;
  /** Resolves when the revocation of the task is stored. */
  stored(taskId: string): Promise<number>;
  stop(): Promise<void>;
}

function hookStore(store: {
  insertRevocations(rows: readonly { taskId: string }[]): Promise<void>;
}): (taskId: string) => Promise<number> {
  const times = new Map<string, number>();
  const waiters = new Map<string, (t: number) => void>();
  const original = store.insertRevocations.bind(store);
  store.insertRevocations = async (rows) => {
    const called = clock();
    for (const row of rows) insertCalled.set(row.taskId, called);
    await original(rows);
    const at = clock();
    for (const row of rows) {
      times.set(row.taskId, at);
      waiters.get(row.taskId)?.(at);
    }
  };
  return (taskId) => {
    const known = times.get(taskId);
    if (known !== undefined) return Promise.resolve(known);
    return new Promise((resolve) => waiters.set(taskId, resolve));
  };
}

const BASE_ENV = {
  TRIPLINE_API_HOST: '127.0.0.1',
  TRIPLINE_OTLP_HOST: '127.0.0.1',
  TRIPLINE_API_PORT: '0',
  TRIPLINE_OTLP_PORT: '0',
  LOG_LEVEL: 'warn',
  TRIPLINE_ADMIN_TOKEN: 'test-admin-token-0123456789abcdef',
  TRIPLINE_AGENT_TOKEN: 'test-agent-token-0123456789abcdef',
  TRIPLINE_ESCALATION_REVOCATIONS: '0',
  TRIPLINE_VERIFY_WINDOW_MS: '2000',
};

async function embeddedTarget(dataDir: string): Promise<Target> {
  const { loadConfig } = await import('../../services/app/config.ts');
  const { startEmbedded } = await import('../../services/app/embedded.ts');
  const { createLogger } = await import('../../services/shared/logger.ts');
  const config = loadConfig({ ...BASE_ENV, TRIPLINE_DATA_DIR: dataDir });
  const running = await startEmbedded(config, createLogger(config.logLevel));
  // The embedded processor writes revocations over the kill switch's own ClickHouse connection.
  const stored = hookStore(running.enforcement.store);
  if (process.env.BENCH_DEBUG === '1') {
    running.killSwitch.subscribe((m) => {
      if (m.type === 'revocation') decided.set(m.revocation.taskId, clock());
    });
    const handle = running.processor.handle.bind(running.processor);
    running.processor.handle = (batch) => {
      for (const e of batch.events) if (e.kind === 'privilege_change') handled.set(e.taskId, clock());
      return handle(batch);
    };
    const ingest = running.gateway.ingest.bind(running.gateway);
    running.gateway.ingest = (request, context) => {
      const r = ingest(request, context);
      received.push(clock());
      return r;
    };
  }
  return { otlp: running.otlpUrl, api: running.apiUrl, stored, stop: () => running.stop() };
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = 40_000 + Math.floor(Math.random() * 20_000);
    if ((await portFree(port)) && (await portFree(port + 1))) return port;
  }
  throw new Error('no two consecutive free ports for the bench broker');
}

async function brokers(): Promise<{ list: string[]; stop: () => Promise<void> }> {
  const configured = process.env.KAFKA_BROKERS?.trim();
  if (configured !== undefined && configured !== '')
    return { list: configured.split(','), stop: () => Promise.resolve() };
  const script = fileURLToPath(new URL('../kafka/broker.sh', import.meta.url));
  // A broker of the bench's own, on two free ports (broker, controller), with its own state.
  const port = await freePortPair();
  const env = {
    ...process.env,
    KAFKA_PORT: String(port),
    TRIPLINE_KAFKA_STATE: join(tmpdir(), `tripline-kafka-bench-${port}`),
  };
  const run = (command: string): Promise<string> =>
    new Promise((resolve, reject) =>
      execFile('bash', [script, command], { env, timeout: 180_000 }, (error, stdout, stderr) =>
        error === null ? resolve(stdout) : reject(new Error(`broker.sh ${command}: ${stderr}`)),
      ),
    );
  const out = await run('start');
  const found = /^KAFKA_BROKERS=(\S+)$/m.exec(out)?.[1];
  if (found === undefined) throw new Error(`broker.sh start printed no KAFKA_BROKERS: ${out}`);
  return {
    list: found.split(','),
    async stop() {
      await run('stop');
      rmSync(env.TRIPLINE_KAFKA_STATE, { recursive: true, force: true });
    },
  };
}

async function kafkaTarget(dataDir: string): Promise<Target> {
  const broker = await brokers();
  const { loadConfig } = await import('../../services/app/config.ts');
  const { createLogger } = await import('../../services/shared/logger.ts');
  const { openClickHouseStore } = await import('../../services/store/clickhouse/store.ts');
  const { startDistributed } = await import('../../services/app/distributed.ts');
  const { storeManualActions } = await import('../../services/processor/store-manual-actions.ts');
  const { createKafka, ensureTopics } = await import('../../services/bus/kafka/client.ts');
  const { loadKafkaSettings } = await import('../../services/bus/kafka/config.ts');
  const { bridgeKillSwitchToKafka } = await import('../../services/bus/kafka/kill-switch.ts');
  const { createLocalKillSwitch } = await import('../../services/killswitch/kill-switch.ts');
  const { startKillSwitchRuntime } = await import('../../services/app/killswitch.ts');
  const { buildApiApp } = await import('../../services/api/app.ts');
  const suffix = `${process.pid}-${Date.now()}`;
  const env = {
    ...BASE_ENV,
    // Kafka knobs of the bench's own environment (e.g. TRIPLINE_KAFKA_LINGER_MS) apply to its services.
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith('TRIPLINE_KAFKA_'))),
    TRIPLINE_DATA_DIR: dataDir,
    KAFKA_BROKERS: broker.list.join(','),
    KAFKA_GROUP_ID: `bench-processor-${suffix}`,
    ...Object.fromEntries(
      ['TOOL_CALLS', 'DATA_ACCESS', 'PRIVILEGE_CHANGES', 'ALERTS', 'REVOCATIONS', 'DEAD_LETTER'].map((name) => [
        `TRIPLINE_TOPIC_${name}`,
        `bench-${suffix}.${name.toLowerCase()}`,
      ]),
    ),
  };
  const config = loadConfig(env);
  const logger = createLogger(config.logLevel);
  const settings = loadKafkaSettings(config.kafka, env);
  const store = await openClickHouseStore({ dataDir, database: config.store.database, logger });
  await store.migrate();
  const stored = hookStore(store);
  const pipeline = await startDistributed(config, ['gateway', 'processor'], { logger, kafka: settings, store, env });

  // The API side: its own kill switch, bridged to Kafka with its own consumer group.
  await ensureTopics(createKafka(settings, logger, { role: 'bench-admin' }), settings, logger);
  const killSwitch = createLocalKillSwitch();
  const bridge = bridgeKillSwitchToKafka({
    kafka: createKafka(settings, logger, { role: 'bench-api' }),
    killSwitch,
    topics: settings.topics,
    logger,
    groupIdPrefix: `bench-api-${suffix}`,
  });
  const runtime = await startKillSwitchRuntime({
    config: config.killSwitch,
    storage: { url: undefined, username: 'default', password: '', dataDir, database: config.store.database },
    killSwitch,
    insertAlerts: (alerts) => store.insertAlerts(alerts),
    async taskState(tenant, taskId) {
      const record = await store.getTask(tenant, taskId);
      return record === null
        ? undefined
        : { status: record.status, score: record.score, taskType: record.taskType, agentId: record.agentId };
    },
    logger,
  });
  await bridge.start();
  const { testAccess } = await import('../helpers/auth.ts');
  const app = buildApiApp({
    access: (await testAccess()).api,
    store,
    commands: storeManualActions(store, killSwitch, bridge),
    logger,
    detectorStatus: () =>
      Promise.resolve({ regime: 'rules', baselineTasks: 0, warmupTasks: config.detector.warmupTasks }),
    baselines: () => Promise.resolve([]),
    ready: () => Promise.resolve({ ready: true, checks: {} }),
    killSwitch: runtime,
  });
  const api = await app.listen({ host: '127.0.0.1', port: 0 });
  const gateway = pipeline.gateway;
  if (gateway === undefined) throw new Error('no gateway');
  if (process.env.BENCH_DEBUG === '1' && pipeline.processor !== undefined) {
    const ingestProtobuf = gateway.gateway.ingestProtobuf?.bind(gateway.gateway);
    if (ingestProtobuf !== undefined) {
      gateway.gateway.ingestProtobuf = async (body, context) => {
        received.push(clock());
        const result = await ingestProtobuf(body, context);
        acked.push(clock());
        return result;
      };
    }
    const processor = pipeline.processor.processor;
    const handle = processor.handle.bind(processor);
    processor.handle = (batch) => {
      for (const e of batch.events) if (e.kind === 'privilege_change') handled.set(e.taskId, clock());
      return handle(batch);
    };
    pipeline.processor.killSwitch.subscribe((m) => {
      if (m.type === 'revocation') decided.set(m.revocation.taskId, clock());
    });
    killSwitch.subscribe((m) => {
      if (m.type === 'revocation') applied.set(m.revocation.taskId, clock());
    });
  }
  return {
    otlp: gateway.otlpUrl,
    api,
    stored,
    async stop() {
      await app.close();
      await runtime.stop();
      await bridge.stop();
      await pipeline.stop();
      await store.close();
      await broker.stop();
    },
  };
}

/** Kills at the start that are not counted. */
const WARMUP_KILLS = Number(process.env.WARMUP_KILLS ?? '10');

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

function describeSeries(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const f = (v: number): string => v.toFixed(1).padStart(7);
  return `p50 ${f(percentile(sorted, 50))}  p95 ${f(percentile(sorted, 95))}  p99 ${f(percentile(sorted, 99))}  max ${f(sorted[sorted.length - 1] ?? Number.NaN)}  ms`;
}

/** BENCH_DEBUG: when each step of a kill happened, ms after the offending span left the agent. */
interface Stages {
  /** The gateway got the export holding it (the first export after t0). */
  received: number;
  /** Through Kafka: the gateway answered it (Kafka acknowledged its records). */
  acked?: number;
  /** The processor was handed the batch holding it. */
  handled: number;
  /** The processor's kill switch applied the revocation. */
  decided: number;
  /** Through Kafka: the API side's kill switch applied it (from the revocations topic). */
  applied?: number;
  /** The revocation's insert was called, and acknowledged. */
  insert: number;
  stored: number;
  /** The agent's guard held it. */
  guard: number;
}

function stagesOf(sample: KillSample, storedAt: number): Stages {
  const since = (t: number | undefined): number => (t ?? Number.NaN) - sample.t0;
  const rx = received.find((t) => t >= sample.t0);
  const stages: Stages = {
    received: since(rx),
    handled: since(handled.get(sample.taskId)),
    decided: since(decided.get(sample.taskId)),
    insert: since(insertCalled.get(sample.taskId)),
    stored: since(storedAt),
    guard: since(sample.tc),
  };
  if (acked.length > 0) stages.acked = since(acked.find((t) => rx !== undefined && t >= rx));
  if (applied.size > 0) stages.applied = since(applied.get(sample.taskId));
  return stages;
}

/** Where the time of the kills went, step by step. */
function printBreakdown(all: readonly Stages[]): void {
  const steps: [string, (s: Stages) => number | undefined][] = [
    ['span left the agent → gateway received it', (s) => s.received],
    ['gateway received → Kafka acknowledged', (s) => (s.acked === undefined ? undefined : s.acked - s.received)],
    [
      `${all[0]?.acked === undefined ? 'gateway received' : 'Kafka acknowledged'} → processor handed it`,
      (s) => s.handled - (s.acked ?? s.received),
    ],
    ['processor handed it → kill decided', (s) => s.decided - s.handled],
    [
      'kill decided → API side applied it (Kafka)',
      (s) => (s.applied === undefined ? undefined : s.applied - s.decided),
    ],
    ['kill decided → guard held it', (s) => s.guard - s.decided],
    ['kill decided → revocation insert called', (s) => s.insert - s.decided],
    ['revocation insert called → stored', (s) => s.stored - s.insert],
  ];
  console.log('stage breakdown (BENCH_DEBUG):');
  for (const [name, of] of steps) {
    const values = all.map(of).filter((v): v is number => v !== undefined && Number.isFinite(v));
    if (values.length > 0) console.log(`  ${name.padEnd(48)} ${describeSeries(values)}`);
  }
}

function startAgent(
  role: 'killer' | 'background',
  target: Target,
): {
  child: ChildProcess;
  ready: Promise<void>;
  done: Promise<void>;
  onKill(listener: (sample: KillSample) => void): void;
} {
  const child = spawn(process.execPath, [SELF, '--agent', role, target.otlp, target.api], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: process.env,
  });
  const listeners: ((sample: KillSample) => void)[] = [];
  let ready: () => void = () => undefined;
  let done: () => void = () => undefined;
  const readyPromise = new Promise<void>((resolve) => (ready = resolve));
  const donePromise = new Promise<void>((resolve) => {
    done = resolve;
    child.once('exit', () => resolve());
  });
  child.on('message', (message: FromAgent) => {
    if (message.type === 'ready') ready();
    else if (message.type === 'done') done();
    else if (message.type === 'kill') for (const listener of listeners) listener(message.sample);
    else console.error(`agent error: ${message.message}`);
  });
  return { child, ready: readyPromise, done: donePromise, onKill: (listener) => listeners.push(listener) };
}

async function bench(): Promise<void> {
  const kafka = process.argv.includes('--kafka');
  const kills = Number(process.env.KILLS ?? '250');
  const backgroundEps = Number(process.env.BACKGROUND_EPS ?? '0');
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-kill-bench-'));
  console.log(
    `kill latency, ${kafka ? 'through Kafka' : 'embedded'}: ${kills} kills (after ${WARMUP_KILLS} not counted)${backgroundEps > 0 ? `, background ${backgroundEps} events/s` : ''}; load average ${loadavg()
      .map((v) => v.toFixed(1))
      .join(' ')} on ${availableParallelism()} CPUs`,
  );
  const target = kafka ? await kafkaTarget(dataDir) : await embeddedTarget(dataDir);
  try {
    const background = backgroundEps > 0 ? startAgent('background', target) : undefined;
    await background?.ready;
    const killer = startAgent('killer', target);
    await killer.ready;
    const samples: { a: number; b: number; c: number }[] = [];
    const breakdowns: Stages[] = [];
    const pending: Promise<void>[] = [];
    let seen = 0;
    killer.onKill((sample) => {
      seen += 1;
      // The first kills warm up connections, JIT and (through Kafka) consumer-group assignment: not counted.
      if (seen <= WARMUP_KILLS) return;
      pending.push(
        target.stored(sample.taskId).then((ta) => {
          samples.push({ a: ta - sample.t0, b: sample.tb - sample.t0, c: sample.tc - sample.t0 });
          if (process.env.BENCH_DEBUG === '1') {
            const stages = stagesOf(sample, ta);
            breakdowns.push(stages);
            const line = Object.entries(stages).map(([name, ms]: [string, number]) => `${name} ${ms.toFixed(0)}`);
            console.log(`  ${line.join(' ')}`);
          }
          if (samples.length % 50 === 0) console.log(`  ${samples.length} kills`);
        }),
      );
    });
    const started = Date.now();
    killer.child.send({ type: 'run', kills: kills + WARMUP_KILLS } satisfies ToAgent);
    await killer.done;
    await Promise.all(pending);
    background?.child.send({ type: 'stop' } satisfies ToAgent);
    await background?.done;
    console.log(`${samples.length} kills in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    console.log(`(a) revocation stored       ${describeSeries(samples.map((s) => s.a))}`);
    console.log(`(b) introspection inactive  ${describeSeries(samples.map((s) => s.b))}`);
    console.log(`(c) next tool call refused  ${describeSeries(samples.map((s) => s.c))}`);
    if (breakdowns.length > 0) printBreakdown(breakdowns);
    console.log(
      `load average at the end ${loadavg()
        .map((v) => v.toFixed(1))
        .join(' ')}`,
    );
  } finally {
    await target.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--agent') {
  const [, , , role, otlp, api] = process.argv;
  await agentMain(role === 'background' ? 'background' : 'killer', otlp ?? '', api ?? '');
} else {
  await bench();
  process.exit(0);
}
