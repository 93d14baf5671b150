/**
 * Decode throughput of the OTLP trace codec for realistic requests: 100 agent spans each (GenAI tool calls,
 * database reads, privilege changes, HTTP calls) with 10-16 attributes, some events, a resource with the
 * usual SDK attributes — serialized by the OpenTelemetry JS SDK's own OTLP serializers. The cases cycle
 * through REQUESTS different requests (fresh ids, task ids, call ids, user ids and tool arguments in each),
 * so caches see realistic traffic rather than one request over and over.
 *
 *   node test/bench/otlp-decode.bench.ts            # ~2 s per case
 *   BENCH_SECONDS=5 node test/bench/otlp-decode.bench.ts
 *
 * Prints spans/s (and MB/s of request body) for: protobuf decode, OTLP/JSON decode, protobuf encode, and, as a
 * reference, protobufjs's reflection decoder (`Type.decode` + `toObject`) on the same schema.
 */
import { performance } from 'node:perf_hooks';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { decodeTraceRequest, encodeTraceRequest, otlpSchema } from '../../services/otlp/codec.ts';

const SPANS_PER_REQUEST = 100;
const REQUESTS = 32;
const SECONDS = Number(process.env.BENCH_SECONDS ?? '2');

async function realisticSpans(count: number, request: number): Promise<ReadableSpan[]> {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({
      'service.name': 'support-agent',
      'service.version': '2.14.0',
      'service.instance.id': '6f1c2a7e-93b1-4d0e-a3c5-1f2e3d4c5b6a',
      'deployment.environment.name': 'production',
      'telemetry.sdk.name': 'opentelemetry',
      'telemetry.sdk.language': 'nodejs',
      'telemetry.sdk.version': '3.1.0',
      'host.name': 'agent-worker-7d9f8c6b5-x2k4q',
      'process.pid': 48213,
      'process.runtime.name': 'nodejs',
      'gen_ai.agent.id': 'agent-0042',
      'gen_ai.agent.name': 'Support triage agent',
    }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('@tripline/agent-instrumentation', '0.3.1');
  for (let i = 0; i < count; i++) {
    const taskId = `task-${String(request * 10 + Math.floor(i / 10)).padStart(6, '0')}`;
    const variant = i % 4;
    const span = tracer.startSpan(
      variant === 0
        ? 'execute_tool search_tickets'
        : variant === 1
          ? 'SELECT customers'
          : variant === 2
            ? 'grant scope'
            : 'POST',
      { kind: variant === 3 ? SpanKind.CLIENT : SpanKind.INTERNAL },
    );
    span.setAttributes({
      'tripline.task.id': taskId,
      'tripline.task.type': 'ticket_triage',
      'tripline.event.kind': variant === 0 ? 'tool_call' : variant === 1 ? 'data_access' : 'privilege_change',
      'enduser.id': `user-${String((request * 7 + i) % 101)}`,
    });
    if (variant === 0) {
      span.setAttributes({
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': 'search_tickets',
        'gen_ai.tool.call.id': `call_${(request * count + i).toString(16).padStart(8, '0')}`,
        'gen_ai.tool.type': 'function',
        'tripline.tool.side_effect': 'read',
        'tripline.tool.target': 'zendesk',
        'gen_ai.usage.input_tokens': 1834 + i,
        'gen_ai.usage.output_tokens': 212,
      });
      span.addEvent('gen_ai.tool.message', {
        'gen_ai.event.content': `{"query":"refund status ${String(request)}-${String(i)}","limit":20}`,
      });
    } else if (variant === 1) {
      span.setAttributes({
        'db.system.name': 'postgresql',
        'db.namespace': 'crm',
        'db.collection.name': 'customers',
        'db.operation.name': 'SELECT',
        'db.query.summary': 'SELECT customers',
        'db.response.returned_rows': 25 + (i % 7),
        'server.address': 'crm-db.internal',
        'tripline.data.bytes': 18_432,
        'tripline.data.classification': 'confidential',
      });
    } else if (variant === 2) {
      span.setAttributes({
        'tripline.privilege.action': 'grant',
        'tripline.privilege.scopes_before': ['tickets:read'],
        'tripline.privilege.scopes_after': ['tickets:read', 'tickets:write', 'refunds:create'],
        'tripline.privilege.resource': 'zendesk',
        'tripline.privilege.granted_by': 'policy-engine',
        'tripline.privilege.approved': true,
      });
    } else {
      span.setAttributes({
        'http.request.method': 'POST',
        'url.full': 'https://api.payments.example.com/v2/refunds?idempotency_key=8c1f',
        'server.address': 'api.payments.example.com',
        'server.port': 443,
        'http.response.status_code': 201,
        'network.protocol.version': '1.1',
      });
      if (i % 8 === 3) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream timeout after 30000 ms' });
        span.recordException(new Error('ETIMEDOUT'));
      }
    }
    span.end();
  }
  await provider.forceFlush();
  const spans = exporter.getFinishedSpans();
  await provider.shutdown();
  return spans;
}

function run(label: string, bytesPerOp: number, op: (request: number) => unknown): void {
  // Warm up so that the optimizing compiler has seen the code.
  const warmUntil = performance.now() + 500;
  for (let i = 0; performance.now() < warmUntil; i++) op(i % REQUESTS);
  let ops = 0;
  const start = performance.now();
  const stop = start + SECONDS * 1000;
  let now = start;
  while (now < stop) {
    for (let i = 0; i < REQUESTS; i++) op(i);
    ops += REQUESTS;
    now = performance.now();
  }
  const seconds = (now - start) / 1000;
  const spansPerSecond = (ops * SPANS_PER_REQUEST) / seconds;
  const mbPerSecond = (ops * bytesPerOp) / seconds / 1e6;
  console.log(
    `${label.padEnd(44)} ${Math.round(spansPerSecond).toLocaleString('en-US').padStart(12)} spans/s` +
      `  ${mbPerSecond.toFixed(1).padStart(7)} MB/s  ${((seconds * 1e6) / ops).toFixed(1).padStart(9)} µs/request`,
  );
}

const protobufBodies: Uint8Array[] = [];
const jsonBodies: Uint8Array[] = [];
for (let r = 0; r < REQUESTS; r++) {
  const spans = await realisticSpans(SPANS_PER_REQUEST, r);
  const protobufBody = ProtobufTraceSerializer.serializeRequest(spans);
  const jsonBody = JsonTraceSerializer.serializeRequest(spans);
  if (protobufBody === undefined || jsonBody === undefined) throw new Error('the OTel serializer produced no body');
  protobufBodies.push(Buffer.from(protobufBody)); // as the HTTP receiver hands it over
  jsonBodies.push(Buffer.from(jsonBody));
}
const average = (bodies: Uint8Array[]): number => bodies.reduce((sum, body) => sum + body.length, 0) / bodies.length;
const protobufBytes = average(protobufBodies);
const jsonBytes = average(jsonBodies);
const decoded = protobufBodies.map((body) => decodeTraceRequest(body, 'protobuf'));
const reflection = otlpSchema.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const at = <T>(list: T[], i: number): T => list[i] ?? (list[0] as T);

console.log(
  `OTLP decode benchmark: ${String(REQUESTS)} requests of ${String(SPANS_PER_REQUEST)} spans, protobuf ~${String(Math.round(protobufBytes))} bytes, ` +
    `JSON ~${String(Math.round(jsonBytes))} bytes each; Node ${process.version}; ${String(SECONDS)} s per case`,
);
run('decodeTraceRequest (protobuf)', protobufBytes, (i) => decodeTraceRequest(at(protobufBodies, i), 'protobuf'));
run('decodeTraceRequest (OTLP/JSON)', jsonBytes, (i) => decodeTraceRequest(at(jsonBodies, i), 'json'));
run('encodeTraceRequest (protobuf)', protobufBytes, (i) => encodeTraceRequest(at(decoded, i)));
run('reference: protobufjs Type.decode', protobufBytes, (i) => reflection.decode(at(protobufBodies, i)));
run('reference: protobufjs Type.decode + toObject', protobufBytes, (i) =>
  reflection.toObject(reflection.decode(at(protobufBodies, i)), { longs: String, bytes: String, defaults: false }),
);
