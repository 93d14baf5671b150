/**
 * Side by side with the REAL OpenTelemetry Collector (issue 7, claim 1): the upstream collector, built from
 * collectors/otelcol/builder.yaml by collectors/otelcol/build.sh and run with collectors/otelcol/config.yaml,
 * feeds Tripline's processors with no Tripline gateway in between.
 *
 *   real `@opentelemetry/sdk-node` agents (one process each, OTLP/HTTP protobuf)
 *     → otelcol (otlp receiver → memory_limiter → batch → routing connector, span context → kafka exporter, otlp_proto)
 *     → the three span topics on the real broker
 *     → two Tripline processors in one consumer group → ClickHouse (in-process engine) → the API
 *
 * Besides the simulator's agents (Tripline's agent helpers: OTel GenAI `execute_tool`, database spans,
 * `tripline.privilege.*`), one agent emits spans the way third-party instrumentations do, with no Tripline
 * attribute but the task id: OTel GenAI `execute_tool`, MCP `tools/call`, OpenInference `TOOL`, OpenLLMetry
 * `tool`, a plain OTel database span, and an LLM `chat` span that is none of the three kinds.
 *
 * When the collector binary is missing the test FAILS, naming collectors/otelcol/build.sh (CI builds it first).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFleet } from '../../../collectors/simulator/fleet.ts';
import { generateScenario } from '../../../collectors/simulator/scenarios.ts';
import type { TaskPlan } from '../../../collectors/simulator/scenarios.ts';
import { decodeTraceRequest } from '../../../services/otlp/codec.ts';
import { classifyRequest } from '../../../services/core/classify.ts';
import { startApiService, startProcessorService } from '../../../services/app/distributed.ts';
import type { RunningApiService, RunningProcessorService } from '../../../services/app/distributed.ts';
import { openClickHouseStore } from '../../../services/store/clickhouse/store.ts';
import type { Store } from '../../../services/store/store.ts';
import { kafkaBrokers } from '../../helpers/kafka-broker.ts';
import { otelcolBinary, otelcolCollectorEnv, startOtelcol } from '../../helpers/otelcol.ts';
import type { RunningOtelcol } from '../../helpers/otelcol.ts';
import { freePort } from '../../helpers/tripline-process.ts';
import { adminHeaders } from '../../helpers/auth.ts';
import { waitFor } from '../../helpers/wait.ts';
import { distributedConfig, freshKafkaSettings, plainKafka, readTopic, testLogger } from './fixtures.ts';

const TYPES = ['summarize_ticket', 'triage_alert'];
const WARMUP = 3;
const REPO = fileURLToPath(new URL('../../../', import.meta.url));

// ---------------------------------------------------------------------------------------------------------
// The third-party-shaped agent: a real NodeSDK in its own process, spans made with the plain OTel API.

interface ShapeSpan {
  shape: 'genai' | 'mcp' | 'openinference' | 'openllmetry' | 'db' | 'llm_chat';
  name: string;
  kind: number;
  attributes: Record<string, string | number | boolean>;
  /** What Tripline must make of it. */
  expect: { kind: 'tool_call' | 'data_access'; name: string } | null;
}

function shapeSpans(task: number): ShapeSpan[] {
  const callId = `call_${String(task)}_1`;
  return [
    {
      shape: 'genai',
      name: 'execute_tool web_search',
      kind: 0,
      attributes: {
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': 'web_search',
        'gen_ai.tool.call.id': callId,
        'gen_ai.tool.type': 'function',
      },
      expect: { kind: 'tool_call', name: 'web_search' },
    },
    {
      shape: 'mcp',
      name: 'tools/call read_file',
      kind: 2,
      attributes: {
        'mcp.method.name': 'tools/call',
        'gen_ai.tool.name': 'read_file',
        'mcp.session.id': `session-${String(task)}`,
        'jsonrpc.request.id': '7',
        'network.transport': 'pipe',
      },
      expect: { kind: 'tool_call', name: 'read_file' },
    },
    {
      shape: 'openinference',
      name: 'lookup_weather',
      kind: 0,
      attributes: {
        'openinference.span.kind': 'TOOL',
        'tool.name': 'lookup_weather',
        'input.value': '{"city":"Lisbon"}',
        'output.value': '{"temp_c":21}',
      },
      expect: { kind: 'tool_call', name: 'lookup_weather' },
    },
    {
      shape: 'openllmetry',
      name: 'calculator.tool',
      kind: 0,
      attributes: {
        'traceloop.span.kind': 'tool',
        'traceloop.entity.name': 'calculator',
        'traceloop.workflow.name': 'research',
        'traceloop.entity.input': '{"expr":"6*7"}',
      },
      expect: { kind: 'tool_call', name: 'calculator' },
    },
    {
      shape: 'db',
      name: 'SELECT app.documents',
      kind: 2,
      attributes: {
        'db.system.name': 'postgresql',
        'db.namespace': 'app',
        'db.collection.name': 'documents',
        'db.operation.name': 'SELECT',
        'db.response.returned_rows': 3,
        'server.address': 'db.internal',
      },
      expect: { kind: 'data_access', name: 'app.documents' },
    },
    {
      shape: 'llm_chat',
      name: 'chat gpt-4o',
      kind: 2,
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.request.model': 'gpt-4o',
        'gen_ai.usage.input_tokens': 812,
        'gen_ai.usage.output_tokens': 96,
      },
      expect: null,
    },
  ];
}

interface ShapeTask {
  taskId: string;
  taskType: string;
  spans: ShapeSpan[];
}

/** Runs in a child process (plain JavaScript, resolved from the repository root). */
const SHAPES_AGENT = `
import { SpanStatusCode, context, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';
const job = JSON.parse(process.env.SHAPES_JOB);
const exporter = new OTLPTraceExporter({ url: job.endpoint + '/v1/traces' });
const processor = new BatchSpanProcessor({ exporter, scheduledDelayMillis: 100 });
const sdk = new NodeSDK({
  resource: resourceFromAttributes({ 'service.name': 'research-assistant', 'gen_ai.agent.id': job.agentId, 'gen_ai.agent.name': 'Research assistant' }),
  spanProcessors: [processor],
  instrumentations: [],
});
sdk.start();
const tracer = trace.getTracer('third-party-instrumentations', '1.0.0');
for (const task of job.tasks) {
  const ids = { 'tripline.task.id': task.taskId, 'tripline.task.type': task.taskType };
  const root = tracer.startSpan('invoke_agent research', { root: true, attributes: { ...ids, 'tripline.task.root': true, 'gen_ai.operation.name': 'invoke_agent' } });
  const parent = trace.setSpan(context.active(), root);
  for (const spec of task.spans) {
    const span = tracer.startSpan(spec.name, { kind: spec.kind, attributes: { ...spec.attributes, ...ids } }, parent);
    span.setStatus({ code: SpanStatusCode.OK });
    span.end();
  }
  root.setStatus({ code: SpanStatusCode.OK });
  root.end();
}
await processor.forceFlush();
await sdk.shutdown();
`;

function runShapesAgent(endpoint: string, agentId: string, tasks: ShapeTask[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', SHAPES_AGENT], {
      cwd: REPO,
      env: { ...process.env, SHAPES_JOB: JSON.stringify({ endpoint, agentId, tasks }) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-4000)));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`the shapes agent exited with ${String(code)}: ${stderr}`)),
    );
  });
}

// ---------------------------------------------------------------------------------------------------------

const eventsOf = (plans: readonly TaskPlan[]): number =>
  plans.reduce((sum, plan) => sum + plan.events.length + plan.afterEnd.length, 0);

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { headers: adminHeaders });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('agents → the real OpenTelemetry Collector → Kafka → Tripline processors (no Tripline gateway)', () => {
  const brokers = kafkaBrokers();
  const settings = freshKafkaSettings(brokers, { partitions: 6 });
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-otelcol-compat-'));
  const config = distributedConfig(brokers, dataDir, {
    CLICKHOUSE_DATABASE: 'otelcol_compat',
    TRIPLINE_WARMUP_TASKS: String(WARMUP),
    TRIPLINE_TASK_IDLE_TIMEOUT_MS: '600000',
  });
  const logger = testLogger();
  let store: Store | undefined;
  let p1: RunningProcessorService | undefined;
  let p2: RunningProcessorService | undefined;
  let api: RunningApiService | undefined;
  let collector: RunningOtelcol | undefined;

  const warmup = generateScenario({
    seed: 71,
    benignPerType: WARMUP * 3,
    attacksPerPattern: 0,
    agentsPerType: 2,
    taskTypes: TYPES,
  }).tasks;
  const stream = generateScenario({
    seed: 72,
    benignPerType: 3,
    attacksPerPattern: 0,
    agentsPerType: 2,
    taskTypes: TYPES,
  }).tasks;
  const rogue = generateScenario({
    seed: 73,
    benignPerType: 0,
    attacksPerPattern: 1,
    agentsPerType: 1,
    taskTypes: [TYPES[0] ?? ''],
    patterns: ['privilege_escalation'],
  }).tasks[0] as TaskPlan;
  rogue.agentId = 'rogue-agent-9';
  const shapes: ShapeTask[] = Array.from({ length: 4 }, (_, i) => ({
    taskId: `shapes-task-${String(i)}`,
    taskType: 'research_assistant',
    spans: shapeSpans(i),
  }));
  const plans = [...warmup, ...stream, rogue];
  const shapeEvents = shapes.reduce((sum, task) => sum + task.spans.filter((span) => span.expect !== null).length, 0);
  const expectedEvents = eventsOf(plans) + shapeEvents;

  /** Set when the collector binary is missing: every test then FAILS with it (a failing beforeAll would mark them skipped). */
  let missing: Error | undefined;
  const requireCollector = (): void => {
    if (missing !== undefined) throw missing;
  };

  beforeAll(async () => {
    let binary: string;
    try {
      binary = otelcolBinary();
    } catch (error) {
      missing = error instanceof Error ? error : new Error(String(error));
      return;
    }
    store = await openClickHouseStore({ dataDir, database: config.store.database });
    await store.migrate();
    // The processors create the topics (same partition count for the three span topics).
    p1 = await startProcessorService(config, { kafka: settings, store, logger });
    p2 = await startProcessorService(config, { kafka: settings, store, logger });
    api = await startApiService(config, { kafka: settings, store, logger });
    const port = await freePort();
    const grpcPort = await freePort();
    collector = await startOtelcol({
      binary,
      otlpHttpPort: port,
      env: otelcolCollectorEnv({
        brokers,
        topics: settings.topics,
        otlpHttpEndpoint: `127.0.0.1:${String(port)}`,
        otlpGrpcEndpoint: `127.0.0.1:${String(grpcPort)}`,
      }),
    });
    const [first, second] = [p1, p2];
    await waitFor(
      'both processors to share the partitions',
      () => first.source.assignedPartitions().length === 3 && second.source.assignedPartitions().length === 3,
      30_000,
    );

    await runFleet({ endpoint: collector.otlpUrl, plans: warmup });
    const opened = store;
    await waitFor(
      'the warm-up tasks to complete',
      async () => {
        const tasks = await opened.getTasks(
          'default',
          warmup.map((plan) => plan.taskId),
        );
        return tasks.length === warmup.length && tasks.every((task) => task.status !== 'active');
      },
      90_000,
    );

    await Promise.all([
      runFleet({ endpoint: collector.otlpUrl, plans: [...stream.slice(0, 2), rogue, ...stream.slice(2)] }),
      runShapesAgent(collector.otlpUrl, 'research-agent-1', shapes),
    ]);
  }, 300_000);

  afterAll(async () => {
    const code = await collector?.stop();
    if (code !== 0 && collector !== undefined)
      console.error(`otelcol exited with ${String(code)}; its log:\n${collector.log().slice(-8000)}`);
    await Promise.allSettled([p1?.stop(), p2?.stop()]);
    await api?.stop();
    await store?.close();
    rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it('has the upstream collector binary (built by collectors/otelcol/build.sh)', () => {
    requireCollector();
    expect(collector?.pid).toBeGreaterThan(0);
  });

  it('the collector routed each kind to its own topic (otlp_proto records Tripline decodes)', async () => {
    requireCollector();
    // The collector answers the agents before Kafka has the spans (batch processor); once the processors
    // stored them all, every record is on the topics.
    const opened = store as Store;
    await waitFor(
      `all ${String(expectedEvents)} events through Kafka`,
      async () => (await opened.counts()).events >= expectedEvents,
      90_000,
    );
    const admin = plainKafka(brokers).admin();
    await admin.connect();
    const records: Record<string, number> = {};
    try {
      for (const topic of [settings.topics.tool_call, settings.topics.data_access, settings.topics.privilege_change]) {
        records[topic] = (await admin.fetchTopicOffsets(topic)).reduce(
          (sum, partition) => sum + Number(partition.high),
          0,
        );
      }
    } finally {
      await admin.disconnect();
    }
    const kinds = { tool_call: 0, data_access: 0, privilege_change: 0, boundaries: 0, declarations: 0, dropped: 0 };
    for (const [topic, count] of Object.entries(records)) {
      expect(count, `records on ${topic}`).toBeGreaterThan(0);
      for (const message of await readTopic(brokers, topic, count)) {
        expect(message.value).not.toBeNull();
        const batch = classifyRequest(decodeTraceRequest(message.value ?? Buffer.alloc(0), 'protobuf'), 'default');
        for (const event of batch.events) {
          expect(settings.topics[event.kind], `${event.kind} span ${event.name} on ${topic}`).toBe(topic);
          kinds[event.kind] += 1;
        }
        // Task boundaries go to the tool_calls topic (routing table entry 5): each trace's root, and spans that
        // declare a task on their own attributes; spans of none of the three kinds are dropped by the collector (no
        // default pipeline), as Tripline's gateway drops them.
        if (batch.boundaries.length > 0) expect(topic).toBe(settings.topics.tool_call);
        kinds.boundaries += batch.boundaries.filter((boundary) => boundary.ends).length;
        kinds.declarations += batch.boundaries.filter((boundary) => !boundary.ends).length;
        kinds.dropped += batch.dropped;
      }
    }
    const sentByKind = { tool_call: 0, data_access: 0, privilege_change: 0 };
    for (const plan of plans) for (const event of [...plan.events, ...plan.afterEnd]) sentByKind[event.kind] += 1;
    for (const task of shapes)
      for (const span of task.spans) if (span.expect !== null) sentByKind[span.expect.kind] += 1;
    // No span lost or duplicated between the agents and Kafka.
    expect({
      tool_call: kinds.tool_call,
      data_access: kinds.data_access,
      privilege_change: kinds.privilege_change,
    }).toEqual(sentByKind);
    // One root per task; the collector cannot leave out repeated declarations as the gateway does (per request).
    expect(kinds.boundaries).toBe(plans.length + shapes.length);
    expect(kinds.dropped).toBe(0);
  });

  it('stores every span of the three kinds exactly once', async () => {
    requireCollector();
    const opened = store as Store;
    await waitFor(
      `all ${String(expectedEvents)} events in ClickHouse`,
      async () => (await opened.counts()).events >= expectedEvents,
      90_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await opened.counts()).events).toBe(expectedEvents);
    for (const plan of plans) {
      const stored = await opened.eventsForTask('default', plan.taskId);
      expect(stored.length, `events of ${plan.taskId}`).toBe(plan.events.length + plan.afterEnd.length);
      expect(new Set(stored.map((entry) => entry.event.id)).size).toBe(stored.length);
    }
  });

  it('takes the OTel GenAI, MCP, OpenInference and OpenLLMetry shapes in unchanged', async () => {
    requireCollector();
    const opened = store as Store;
    for (const task of shapes) {
      const stored = await waitFor(
        `events of ${task.taskId}`,
        async () => {
          const events = await opened.eventsForTask('default', task.taskId);
          return events.length >= 5 ? events : undefined;
        },
        60_000,
      );
      const seen = stored.map(({ event }) => ({
        kind: event.kind,
        name: event.kind === 'tool_call' ? event.tool?.name : event.data?.resource,
        agentId: event.agentId,
        taskType: event.taskType,
      }));
      const wanted = task.spans.flatMap((span) =>
        span.expect === null ? [] : [{ ...span.expect, agentId: 'research-agent-1', taskType: 'research_assistant' }],
      );
      const order = (a: { kind: string; name?: string }, b: { kind: string; name?: string }): number =>
        `${a.kind}${a.name ?? ''}`.localeCompare(`${b.kind}${b.name ?? ''}`);
      expect(seen.sort(order)).toEqual(wanted.sort(order));
    }
    const tasks = await waitFor(
      'the shapes tasks to complete',
      async () => {
        const found = await opened.getTasks(
          'default',
          shapes.map((task) => task.taskId),
        );
        return found.length === shapes.length && found.every((task) => task.status !== 'active') ? found : undefined;
      },
      60_000,
    );
    for (const task of tasks) expect(task.status, task.taskId).toBe('completed');
  });

  it('revokes the rogue task exactly once and leaves the benign ones alone', async () => {
    requireCollector();
    const apiUrl = (api as RunningApiService).apiUrl;
    const task = await waitFor(
      'the API to show the rogue task revoked',
      async () => {
        const { status, body } = await getJson(`${apiUrl}/v1/tasks/${rogue.taskId}`);
        return status === 200 && body.status === 'revoked' ? body : undefined;
      },
      60_000,
    );
    expect(task.agentId).toBe('rogue-agent-9');
    const { body } = await getJson(`${apiUrl}/v1/revocations?limit=1000`);
    const items = body.items as { taskId: string; action: string; source: string }[];
    expect(items.map((item) => item.taskId)).toEqual([rogue.taskId]);
    expect(items[0]).toMatchObject({ action: 'revoke', source: 'detector' });
    for (const plan of stream) {
      const found = await waitFor(
        `benign task ${plan.taskId} to complete`,
        async () => {
          const { status, body: taskBody } = await getJson(`${apiUrl}/v1/tasks/${plan.taskId}`);
          return status === 200 && taskBody.status !== 'active' ? taskBody : undefined;
        },
        60_000,
      );
      expect(found.status, `${plan.taskType} ${plan.taskId}: ${JSON.stringify(found.reasons)}`).toBe('completed');
    }
  });
});
