/**
 * OTLP protobuf payload files for the gateway-vs-collector benchmark: `ExportTraceServiceRequest` bodies of
 * 100 agent spans each, serialized by the OpenTelemetry JS SDK's own OTLP serializer (what
 * `@opentelemetry/exporter-trace-otlp-proto` sends). Generated at bench time into a temp directory (never
 * committed): deterministic for a seed, fresh trace/span/task/call ids in every request.
 *
 * Every span is one of Tripline's three kinds, in the shapes real instrumentations emit, so that Tripline's
 * gateway and the collector's routing connector forward the same spans (the zero-loss check counts them on
 * the topics):
 *   tool calls      OTel GenAI `execute_tool`, MCP `tools/call`, OpenInference `TOOL`, OpenLLMetry `tool`
 *   data access     OTel database spans (`db.system.name` …), HTTP fetches of data (`url.full` + Tripline's data attributes)
 *   privilege       Tripline's `tripline.privilege.*`
 * with the usual SDK resource, 8-16 attributes per span, events on some, errors on a few.
 *
 *   node test/bench/payloads/generate.ts <dir> [requests=64] [spansPerRequest=100]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Context } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';

export const SPAN_SHAPES = [
  'genai_tool',
  'mcp_tool',
  'openinference_tool',
  'openllmetry_tool',
  'db',
  'http_data',
  'privilege',
] as const;
export type SpanShape = (typeof SPAN_SHAPES)[number];

/** The kind Tripline (and the collector config's routing table) gives each shape. */
export const KIND_OF_SHAPE: Readonly<Record<SpanShape, 'tool_call' | 'data_access' | 'privilege_change'>> = {
  genai_tool: 'tool_call',
  mcp_tool: 'tool_call',
  openinference_tool: 'tool_call',
  openllmetry_tool: 'tool_call',
  db: 'data_access',
  http_data: 'data_access',
  privilege: 'privilege_change',
};

export interface PayloadSet {
  dir: string;
  files: string[];
  /** Spans in each file (same order as files). */
  spans: number[];
  /** Spans of each kind over all files. */
  byKind: Record<'tool_call' | 'data_access' | 'privilege_change', number>;
  /** Mean body size in bytes. */
  meanBytes: number;
  /**
   * Per file, where each span's 16-byte trace id starts in the body, where each task id's 8-character suffix
   * (TASK_SUFFIX) starts, and where each span's start and end time (fixed64 nanoseconds) lie, with the earliest
   * of them: a load generator that writes a counter into the ids and moves the times to the moment of sending
   * (`--fresh-ids`) sends new events of new tasks, happening now, with every request — not the same 64 requests
   * again, with their tasks revoked and their times backdated.
   */
  traceIdOffsets: number[][];
  taskSuffixOffsets: number[][];
  timeOffsets: number[][];
  firstTimeNs: string[];
}

/** The task ids' last 8 characters, for a load generator to overwrite. */
export const TASK_SUFFIX = '00000000';

/** Every place `needle` occurs in `haystack`. */
function offsetsOf(haystack: Buffer, needle: Buffer, into: Set<number>, skip = 0): void {
  for (let at = haystack.indexOf(needle); at >= 0; at = haystack.indexOf(needle, at + 1)) into.add(at + skip);
}

function nanos(time: readonly [number, number]): bigint {
  return BigInt(time[0]) * 1_000_000_000n + BigInt(time[1]);
}

/** Where the ids and times of `spans` lie in their serialized body (see PayloadSet). */
function placesIn(
  body: Uint8Array,
  spans: readonly ReadableSpan[],
): {
  traceIds: number[];
  taskSuffixes: number[];
  times: number[];
  firstTimeNs: bigint;
} {
  const buffer = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const traceIds = new Set<number>();
  const taskSuffixes = new Set<number>();
  const times = new Set<number>();
  let firstTimeNs: bigint | undefined;
  const fixed64 = (tag: number, value: bigint): Buffer => {
    const field = Buffer.alloc(9);
    field[0] = tag;
    field.writeBigUInt64LE(value, 1);
    return field;
  };
  for (const span of spans) {
    // Span.trace_id (field 1, length-delimited, 16 bytes); start/end_time_unix_nano (fields 7 and 8, fixed64).
    offsetsOf(
      buffer,
      Buffer.concat([Buffer.from([0x0a, 0x10]), Buffer.from(span.spanContext().traceId, 'hex')]),
      traceIds,
      2,
    );
    const start = nanos(span.startTime);
    const end = nanos(span.endTime);
    offsetsOf(buffer, fixed64(0x39, start), times, 1);
    offsetsOf(buffer, fixed64(0x41, end), times, 1);
    if (firstTimeNs === undefined || start < firstTimeNs) firstTimeNs = start;
    const taskId = span.attributes['tripline.task.id'];
    if (typeof taskId === 'string')
      offsetsOf(buffer, Buffer.from(taskId), taskSuffixes, taskId.length - TASK_SUFFIX.length);
  }
  const sorted = (set: Set<number>): number[] => [...set].sort((a, b) => a - b);
  return {
    traceIds: sorted(traceIds),
    taskSuffixes: sorted(taskSuffixes),
    times: sorted(times),
    firstTimeNs: firstTimeNs ?? 0n,
  };
}

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TOOLS = [
  'search_tickets',
  'get_customer',
  'send_email',
  'create_refund',
  'lookup_order',
  'summarize_thread',
  'fetch_invoice',
];
const TABLES = ['customers', 'orders', 'tickets', 'invoices', 'refunds'];
const TASK_TYPES = ['summarize_ticket', 'triage_alert', 'customer_refund', 'generate_report'];

/** Shape of span `i` of a request: mostly tool calls and data access, some privilege changes. */
function shapeOf(i: number, random: () => number): SpanShape {
  const r = random();
  if (r < 0.14) return 'genai_tool';
  if (r < 0.24) return 'mcp_tool';
  if (r < 0.34) return 'openinference_tool';
  if (r < 0.44) return 'openllmetry_tool';
  if (r < 0.78) return 'db';
  if (r < 0.9) return 'http_data';
  return i % 2 === 0 ? 'privilege' : 'db';
}

async function requestSpans(
  request: number,
  count: number,
  seed: number,
): Promise<{ spans: ReadableSpan[]; shapes: SpanShape[] }> {
  const random = prng(seed * 1_000_003 + request);
  const agent = `agent-${String(request % 16).padStart(4, '0')}`;
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({
      'service.name': 'support-agent',
      'service.version': '2.14.0',
      'service.instance.id': `6f1c2a7e-93b1-4d0e-a3c5-${String(request).padStart(12, '0')}`,
      'deployment.environment.name': 'production',
      'telemetry.sdk.name': 'opentelemetry',
      'telemetry.sdk.language': 'nodejs',
      'telemetry.sdk.version': '3.1.0',
      'host.name': 'agent-worker-7d9f8c6b5-x2k4q',
      'process.pid': 48_213,
      'process.runtime.name': 'nodejs',
      'process.runtime.version': '24.11.0',
      'gen_ai.agent.id': agent,
      'gen_ai.agent.name': 'Support triage agent',
    }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('@tripline/agent-instrumentation', '0.3.1');
  const shapes: SpanShape[] = [];
  // A request holds the spans of a few tasks (an agent's batch processor exports several tasks at once).
  const tasksInRequest = 4;
  const base = 1_764_000_000_000 + request * 60_000;
  // One trace per task: the task's spans are children of its (not exported) task span, as an agent's are.
  const taskContexts: Context[] = [];
  for (let task = 0; task < tasksInRequest; task++) {
    taskContexts.push(
      trace.setSpan(ROOT_CONTEXT, tracer.startSpan(`task ${String(task)}`, { root: true, startTime: base })),
    );
  }
  for (let i = 0; i < count; i++) {
    const task = Math.floor((i * tasksInRequest) / count);
    // The suffix is a placeholder a load generator may overwrite (see traceIdOffsets): same length, new task.
    const taskId = `task-${String(seed)}-${String(request)}-${String(task)}-${TASK_SUFFIX}`;
    const taskType = TASK_TYPES[(request + task) % TASK_TYPES.length] ?? 'summarize_ticket';
    const shape = shapeOf(i, random);
    shapes.push(shape);
    const tool = TOOLS[Math.floor(random() * TOOLS.length)] ?? 'search_tickets';
    const table = TABLES[Math.floor(random() * TABLES.length)] ?? 'customers';
    const start = base + i * 40;
    const common = {
      'tripline.task.id': taskId,
      'tripline.task.type': taskType,
      'gen_ai.agent.id': agent,
      'enduser.id': `user-${String(Math.floor(random() * 5000))}`,
    };
    const callId = `call_${Math.floor(random() * 2 ** 48)
      .toString(16)
      .padStart(12, '0')}`;
    let name: string;
    let kind: SpanKind = SpanKind.INTERNAL;
    let attributes: Record<string, string | number | boolean | string[]>;
    switch (shape) {
      case 'genai_tool':
        name = `execute_tool ${tool}`;
        attributes = {
          'gen_ai.operation.name': 'execute_tool',
          'gen_ai.tool.name': tool,
          'gen_ai.tool.call.id': callId,
          'gen_ai.tool.type': 'function',
          'gen_ai.tool.description': `Runs ${tool} against the helpdesk`,
          'tripline.tool.side_effect': tool.startsWith('create') || tool.startsWith('send') ? 'write' : 'read',
          'tripline.tool.target': 'zendesk',
        };
        break;
      case 'mcp_tool':
        name = `tools/call ${tool}`;
        kind = SpanKind.CLIENT;
        attributes = {
          'mcp.method.name': 'tools/call',
          'gen_ai.tool.name': tool,
          'mcp.session.id': `sess-${String(request)}-${String(task)}`,
          'mcp.protocol.version': '2025-06-18',
          'jsonrpc.request.id': String(i),
          'network.transport': 'pipe',
        };
        break;
      case 'openinference_tool':
        name = tool;
        attributes = {
          'openinference.span.kind': 'TOOL',
          'tool.name': tool,
          'tool.description': `Looks up ${table}`,
          'tool.parameters': `{"type":"object","properties":{"id":{"type":"string"}}}`,
          'input.value': `{"id":"${callId}","limit":20}`,
          'input.mime_type': 'application/json',
          'output.value': `{"status":"ok","items":${String(Math.floor(random() * 30))}}`,
        };
        break;
      case 'openllmetry_tool':
        name = `${tool}.tool`;
        attributes = {
          'traceloop.span.kind': 'tool',
          'traceloop.entity.name': tool,
          'traceloop.entity.path': `support_workflow.${tool}`,
          'traceloop.workflow.name': 'support_workflow',
          'traceloop.entity.input': `{"args":["${callId}"],"kwargs":{}}`,
          'traceloop.entity.output': '{"ok":true}',
        };
        break;
      case 'db': {
        kind = SpanKind.CLIENT;
        const operation = random() < 0.85 ? 'SELECT' : 'UPDATE';
        name = `${operation} crm.${table}`;
        attributes = {
          'db.system.name': 'postgresql',
          'db.namespace': 'crm',
          'db.collection.name': table,
          'db.operation.name': operation,
          'db.query.summary': `${operation} ${table}`,
          'db.query.text': `${operation === 'SELECT' ? 'SELECT id, name, email FROM' : 'UPDATE'} ${table} WHERE id = $1`,
          'db.response.returned_rows': 1 + Math.floor(random() * 40),
          'server.address': 'crm-db.internal',
          'server.port': 5432,
          'tripline.data.classification': 'confidential',
        };
        break;
      }
      case 'http_data':
        kind = SpanKind.CLIENT;
        name = 'GET';
        attributes = {
          'http.request.method': 'GET',
          'url.full': `https://kb.example.com/articles/${String(Math.floor(random() * 10_000))}`,
          'server.address': 'kb.example.com',
          'http.response.status_code': 200,
          'tripline.data.bytes': 2048 + Math.floor(random() * 30_000),
          'tripline.data.classification': 'internal',
          'tripline.data.resource': 'kb.example.com/articles',
          'tripline.event.kind': 'data_access',
        };
        break;
      case 'privilege':
        name = 'privilege token_issue';
        attributes = {
          'tripline.privilege.action': 'token_issue',
          'tripline.privilege.scopes_before': ['tickets:read'],
          'tripline.privilege.scopes_after': ['tickets:read', 'refunds:create'],
          'tripline.privilege.resource': 'payments-api',
          'tripline.privilege.granted_by': 'policy-engine',
          'tripline.privilege.approved': true,
        };
        break;
    }
    const span = tracer.startSpan(
      name,
      { kind, startTime: start, attributes: { ...common, ...attributes } },
      taskContexts[task],
    );
    if (shape === 'genai_tool' || shape === 'openinference_tool') {
      span.addEvent(
        'gen_ai.tool.message',
        { 'gen_ai.event.content': `{"query":"refund status ${String(request)}-${String(i)}","limit":20}` },
        start + 2,
      );
    }
    if (random() < 0.03) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream timeout after 30000 ms' });
      span.setAttribute('error.type', 'timeout');
    } else {
      span.setStatus({ code: SpanStatusCode.OK });
    }
    span.end(start + 5 + Math.floor(random() * 30));
  }
  await provider.forceFlush();
  const spans = exporter.getFinishedSpans();
  await provider.shutdown();
  return { spans, shapes };
}

/** Writes `requests` payload files of `spansPerRequest` spans into `dir`. */
export async function generatePayloads(
  dir: string,
  options: { requests?: number; spansPerRequest?: number; seed?: number } = {},
): Promise<PayloadSet> {
  const requests = options.requests ?? 64;
  const perRequest = options.spansPerRequest ?? 100;
  const seed = options.seed ?? 1;
  mkdirSync(dir, { recursive: true });
  const set: PayloadSet = {
    dir,
    files: [],
    spans: [],
    byKind: { tool_call: 0, data_access: 0, privilege_change: 0 },
    meanBytes: 0,
    traceIdOffsets: [],
    taskSuffixOffsets: [],
    timeOffsets: [],
    firstTimeNs: [],
  };
  let bytes = 0;
  for (let r = 0; r < requests; r++) {
    const { spans, shapes } = await requestSpans(r, perRequest, seed);
    const body = ProtobufTraceSerializer.serializeRequest(spans);
    if (body === undefined) throw new Error('the OTel serializer produced no body');
    const file = join(dir, `traces-${String(r).padStart(4, '0')}.pb`);
    writeFileSync(file, body);
    set.files.push(file);
    set.spans.push(spans.length);
    const places = placesIn(body, spans);
    set.traceIdOffsets.push(places.traceIds);
    set.taskSuffixOffsets.push(places.taskSuffixes);
    set.timeOffsets.push(places.times);
    set.firstTimeNs.push(String(places.firstTimeNs));
    for (const shape of shapes) set.byKind[KIND_OF_SHAPE[shape]] += 1;
    bytes += body.byteLength;
  }
  set.meanBytes = bytes / requests;
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(set, null, 2));
  return set;
}

if (import.meta.main) {
  const [dir, requests, spans] = process.argv.slice(2);
  if (dir === undefined) {
    console.error('usage: node test/bench/payloads/generate.ts <dir> [requests=64] [spansPerRequest=100]');
    process.exit(2);
  }
  const set = await generatePayloads(dir, { requests: Number(requests ?? 64), spansPerRequest: Number(spans ?? 100) });
  console.log(
    `${String(set.files.length)} files, ${String(set.spans.reduce((a, b) => a + b, 0))} spans, mean ${String(Math.round(set.meanBytes))} bytes → ${dir}`,
  );
}
