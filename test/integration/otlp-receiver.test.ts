import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { OTLPTraceExporter as OTLPProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as OTLPJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import { encodeTraceRequest, otlpSchema } from '../../services/otlp/codec.ts';
import { registerOtlpReceiver } from '../../services/api/otlp-receiver.ts';
import type { OtlpHandlerContext, OtlpHandlerResult } from '../../services/api/otlp-receiver.ts';
import type { OtlpKeyValue, OtlpSpan, OtlpTraceRequest } from '../../schemas/otlp.ts';
import { TriplineError } from '../../services/shared/errors.ts';
import { waitFor } from '../helpers/wait.ts';

const MAX_BODY_BYTES = 1024 * 1024;
/** The exporter's `CompressionAlgorithm.GZIP` (its enum lives in a nested copy of otlp-exporter-base). */
type ProtoExporterConfig = NonNullable<ConstructorParameters<typeof OTLPProtoTraceExporter>[0]>;
const GZIP = 'gzip' as unknown as NonNullable<ProtoExporterConfig['compression']>;
const StatusType = otlpSchema.lookupType('google.rpc.Status');
const ResponseType = otlpSchema.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');

type Behaviour = (request: OtlpTraceRequest) => OtlpHandlerResult;

/** An app with the receiver, a handler that records what it gets and behaves as told, and a captured log. */
interface TestApp {
  app: FastifyInstance;
  calls: { request: OtlpTraceRequest; context: OtlpHandlerContext }[];
  /** Applied to the next calls, one per call; when empty the handler accepts everything. */
  behaviours: Behaviour[];
  logs: { level: number; msg: string; err?: { message: string } }[];
  /** Content-Type and Content-Encoding of every request to /v1/traces. */
  headers: { contentType?: string; contentEncoding?: string }[];
}

function buildApp(): TestApp {
  const logs: TestApp['logs'] = [];
  const app = Fastify({
    logger: {
      level: 'warn',
      stream: {
        write: (line: string): void => {
          logs.push(JSON.parse(line) as TestApp['logs'][number]);
        },
      },
    },
  });
  const test: TestApp = { app, calls: [], behaviours: [], logs, headers: [] };
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.url === '/v1/traces') {
      test.headers.push({
        contentType: request.headers['content-type'],
        contentEncoding: request.headers['content-encoding'],
      });
    }
    done();
  });
  registerOtlpReceiver(app, {
    maxBodyBytes: MAX_BODY_BYTES,
    authenticate: (authorization) => Promise.resolve(authorization === 'Bearer acme-token' ? 'acme' : 'default'),
    handler: (request, context) => {
      test.calls.push({ request, context });
      const behaviour = test.behaviours.shift();
      try {
        return Promise.resolve(behaviour === undefined ? { rejectedSpans: 0 } : behaviour(request));
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
    },
  });
  // Another route of the same app: its JSON parsing and error handling must be untouched.
  app.post('/echo', (request) => Promise.resolve({ echoed: request.body }));
  return test;
}

const SPAN: OtlpSpan = {
  traceId: '5b8efff798038103d269b633813fc60c',
  spanId: 'eee19b7ec3c1b174',
  parentSpanId: '',
  name: 'execute_tool search_tickets',
  kind: 1,
  startTimeUnixNano: '1700000000000000000',
  endTimeUnixNano: '1700000000250000000',
  attributes: [
    { key: 'tripline.task.id', value: { stringValue: 'task-000042' } },
    { key: 'gen_ai.tool.name', value: { stringValue: 'search_tickets' } },
    { key: 'gen_ai.usage.input_tokens', value: { intValue: 1834 } },
  ],
  events: [],
  links: [],
};
const REQUEST: OtlpTraceRequest = {
  resourceSpans: [
    {
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'support-agent' } }] },
      scopeSpans: [
        {
          scope: { name: 'agent', attributes: [] },
          spans: [SPAN, { ...SPAN, spanId: 'eee19b7ec3c1b175', parentSpanId: 'eee19b7ec3c1b174' }],
        },
      ],
    },
  ],
};
const PROTOBUF_BODY = Buffer.from(encodeTraceRequest(REQUEST));
const JSON_BODY = JSON.stringify({
  resourceSpans: [
    {
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'support-agent' } }] },
      scopeSpans: [
        {
          scope: { name: 'agent' },
          spans: [
            {
              traceId: SPAN.traceId,
              spanId: SPAN.spanId,
              name: SPAN.name,
              kind: 1,
              startTimeUnixNano: SPAN.startTimeUnixNano,
              endTimeUnixNano: SPAN.endTimeUnixNano,
              attributes: [
                { key: 'tripline.task.id', value: { stringValue: 'task-000042' } },
                { key: 'gen_ai.tool.name', value: { stringValue: 'search_tickets' } },
                { key: 'gen_ai.usage.input_tokens', value: { intValue: '1834' } },
              ],
            },
            {
              trace_id: SPAN.traceId,
              span_id: 'eee19b7ec3c1b175',
              parent_span_id: 'eee19b7ec3c1b174',
              name: SPAN.name,
              kind: 1,
              start_time_unix_nano: SPAN.startTimeUnixNano,
              end_time_unix_nano: SPAN.endTimeUnixNano,
              attributes: [
                { key: 'tripline.task.id', value: { string_value: 'task-000042' } },
                { key: 'gen_ai.tool.name', value: { string_value: 'search_tickets' } },
                { key: 'gen_ai.usage.input_tokens', value: { int_value: 1834 } },
              ],
            },
          ],
        },
      ],
    },
  ],
});

function post(
  app: FastifyInstance,
  body: Buffer | string,
  headers: Record<string, string>,
): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/v1/traces', payload: body, headers });
}

function rpcStatusOf(response: LightMyRequestResponse): { code: number; message: string } {
  const contentType = String(response.headers['content-type']);
  if (contentType.startsWith('application/json')) return response.json<{ code: number; message: string }>();
  return StatusType.toObject(StatusType.decode(response.rawPayload)) as { code: number; message: string };
}

describe('OTLP receiver (app.inject)', () => {
  const t = buildApp();
  beforeAll(async () => {
    await t.app.ready();
  });
  afterAll(async () => {
    await t.app.close();
  });

  it('accepts protobuf and answers an empty protobuf ExportTraceServiceResponse', async () => {
    const before = t.calls.length;
    const response = await post(t.app, PROTOBUF_BODY, { 'content-type': 'application/x-protobuf' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('application/x-protobuf');
    expect(response.rawPayload).toHaveLength(0);
    expect(t.calls.slice(before)).toStrictEqual([
      { request: REQUEST, context: { tenant: 'default', format: 'protobuf', agents: [] } },
    ]);
  });

  it('accepts OTLP/JSON (camelCase and snake_case) and answers {}', async () => {
    const before = t.calls.length;
    const response = await post(t.app, JSON_BODY, {
      'content-type': 'application/json; charset=utf-8',
      authorization: 'Bearer acme-token',
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('application/json');
    expect(response.body).toBe('{}');
    expect(t.calls.slice(before)).toStrictEqual([
      { request: REQUEST, context: { tenant: 'acme', format: 'json', agents: [] } },
    ]);
  });

  it('accepts application/protobuf and answers in the same media type', async () => {
    const response = await post(t.app, PROTOBUF_BODY, { 'content-type': 'Application/Protobuf' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('application/protobuf');
  });

  it('accepts gzip (and identity) content encodings', async () => {
    const before = t.calls.length;
    const gzipped = await post(t.app, gzipSync(PROTOBUF_BODY), {
      'content-type': 'application/x-protobuf',
      'content-encoding': 'gzip',
    });
    expect(gzipped.statusCode).toBe(200);
    const gzippedJson = await post(t.app, gzipSync(JSON_BODY), {
      'content-type': 'application/json',
      'content-encoding': 'GZIP',
    });
    expect(gzippedJson.statusCode).toBe(200);
    const identity = await post(t.app, PROTOBUF_BODY, {
      'content-type': 'application/x-protobuf',
      'content-encoding': 'identity',
    });
    expect(identity.statusCode).toBe(200);
    expect(t.calls.slice(before).map((call) => call.request)).toStrictEqual([REQUEST, REQUEST, REQUEST]);
  });

  it('answers an empty request or one without spans with 200 and does not call the handler', async () => {
    const before = t.calls.length;
    const emptyProtobuf = await post(t.app, Buffer.alloc(0), { 'content-type': 'application/x-protobuf' });
    expect(emptyProtobuf.statusCode).toBe(200);
    expect(emptyProtobuf.rawPayload).toHaveLength(0);
    const emptyJson = await post(t.app, '{}', { 'content-type': 'application/json' });
    expect([emptyJson.statusCode, emptyJson.body]).toStrictEqual([200, '{}']);
    const noSpans = encodeTraceRequest({
      resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans: [] }] }],
    });
    const noSpansResponse = await post(t.app, Buffer.from(noSpans), { 'content-type': 'application/x-protobuf' });
    expect(noSpansResponse.statusCode).toBe(200);
    const emptyGzip = await post(t.app, Buffer.alloc(0), {
      'content-type': 'application/x-protobuf',
      'content-encoding': 'gzip',
    });
    expect(emptyGzip.statusCode).toBe(200);
    expect(t.calls.length).toBe(before);
  });

  it('answers 415 with a JSON google.rpc.Status for other content types, or none', async () => {
    const cases: Record<string, string>[] = [
      { 'content-type': 'text/plain' },
      { 'content-type': 'application/xml' },
      { 'content-type': 'nonsense' },
      {},
    ];
    for (const headers of cases) {
      const response = await post(t.app, 'hello', headers);
      expect(response.statusCode).toBe(415);
      expect(response.headers['content-type']).toBe('application/json');
      expect(response.json()).toMatchObject({ code: 3, message: expect.stringMatching(/content type/) as unknown });
    }
    const emptyWithoutType = await t.app.inject({ method: 'POST', url: '/v1/traces' });
    expect(emptyWithoutType.statusCode).toBe(415);
  });

  it('answers 415 for content encodings other than gzip and identity', async () => {
    const response = await post(t.app, PROTOBUF_BODY, {
      'content-type': 'application/x-protobuf',
      'content-encoding': 'br',
    });
    expect(response.statusCode).toBe(415);
    expect(rpcStatusOf(response)).toStrictEqual({
      code: 3,
      message: 'unsupported content encoding "br"; send gzip or identity',
    });
  });

  it('answers 400 with a google.rpc.Status in the request format for a body that cannot be decoded', async () => {
    const protobuf = await post(t.app, Buffer.from('definitely not protobuf, but text'), {
      'content-type': 'application/x-protobuf',
    });
    expect(protobuf.statusCode).toBe(400);
    expect(protobuf.headers['content-type']).toBe('application/x-protobuf');
    expect(rpcStatusOf(protobuf)).toMatchObject({
      code: 3,
      message: expect.stringMatching(/^invalid OTLP\/protobuf trace request/) as unknown,
    });

    const json = await post(t.app, '{"resourceSpans": "nope"}', { 'content-type': 'application/json' });
    expect(json.statusCode).toBe(400);
    expect(json.headers['content-type']).toBe('application/json');
    expect(json.json()).toStrictEqual({
      code: 3,
      message: 'invalid OTLP/JSON trace request at resourceSpans: expected an array, got the string "nope"',
    });

    const truncated = await post(t.app, PROTOBUF_BODY.subarray(0, PROTOBUF_BODY.length - 3), {
      'content-type': 'application/x-protobuf',
    });
    expect(truncated.statusCode).toBe(400);
    expect(rpcStatusOf(truncated).message).toMatch(/truncated input/);

    const notJson = await post(t.app, '{', { 'content-type': 'application/json' });
    expect(notJson.statusCode).toBe(400);
  });

  it('answers 400 for a corrupt gzip body', async () => {
    const gz = gzipSync(PROTOBUF_BODY);
    gz[gz.length - 6] = (gz[gz.length - 6] ?? 0) ^ 0xff; // breaks the CRC
    const corrupt = await post(t.app, gz, { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' });
    expect(corrupt.statusCode).toBe(400);
    expect(rpcStatusOf(corrupt).message).toMatch(/gzip body could not be decompressed/);
    const notGzip = await post(t.app, PROTOBUF_BODY, {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    expect(notGzip.statusCode).toBe(400);
    expect(notGzip.json()).toMatchObject({ code: 3 });
  });

  it('answers 413 for a body over the limit as sent', async () => {
    const response = await post(t.app, Buffer.alloc(MAX_BODY_BYTES + 1), { 'content-type': 'application/x-protobuf' });
    expect(response.statusCode).toBe(413);
    expect(rpcStatusOf(response)).toMatchObject({ code: 3 });
    const json = await post(t.app, Buffer.alloc(MAX_BODY_BYTES + 1, 0x20), { 'content-type': 'application/json' });
    expect(json.statusCode).toBe(413);
    expect(json.json()).toMatchObject({ code: 3, message: expect.stringMatching(/larger than the limit/) as unknown });
  });

  it('answers 413 for a gzip bomb, stopping decompression at the limit', async () => {
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024), { level: 9 }); // 50 MB of zeros in ~50 KB
    expect(bomb.length).toBeLessThan(MAX_BODY_BYTES);
    const response = await post(t.app, bomb, { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' });
    expect(response.statusCode).toBe(413);
    expect(rpcStatusOf(response)).toStrictEqual({
      code: 3,
      message: `the request is larger than ${String(MAX_BODY_BYTES)} bytes after decompression`,
    });

    // 20 gzip members of 50 MB each: 1 GB if inflated. Stopping at the limit takes milliseconds and ~1 MB.
    const gigabyte = Buffer.concat(Array.from({ length: 20 }, () => bomb));
    const arrayBuffersBefore = process.memoryUsage().arrayBuffers;
    const big = await post(t.app, gigabyte, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(big.statusCode).toBe(413);
    expect(process.memoryUsage().arrayBuffers - arrayBuffersBefore).toBeLessThan(200 * 1024 * 1024);
  });

  it('answers 200 with partialSuccess when the handler rejects spans', async () => {
    t.behaviours.push(() => ({ rejectedSpans: 1, errorMessage: '1 span had no tripline.task.id' }));
    const protobuf = await post(t.app, PROTOBUF_BODY, { 'content-type': 'application/x-protobuf' });
    expect(protobuf.statusCode).toBe(200);
    expect(ResponseType.toObject(ResponseType.decode(protobuf.rawPayload), { longs: Number })).toStrictEqual({
      partialSuccess: { rejectedSpans: 1, errorMessage: '1 span had no tripline.task.id' },
    });
    t.behaviours.push(() => ({ rejectedSpans: 2 }));
    const json = await post(t.app, JSON_BODY, { 'content-type': 'application/json' });
    expect(json.statusCode).toBe(200);
    expect(json.json()).toStrictEqual({ partialSuccess: { rejectedSpans: '2' } });
  });

  it('answers 429 with Retry-After when the pipeline is busy', async () => {
    t.behaviours.push(() => {
      throw new TriplineError('PIPELINE_BUSY', 'the pipeline is full', { details: { retryAfterSeconds: 7 } });
    });
    const response = await post(t.app, PROTOBUF_BODY, { 'content-type': 'application/x-protobuf' });
    expect(response.statusCode).toBe(429);
    expect(response.headers['retry-after']).toBe('7');
    expect(rpcStatusOf(response)).toStrictEqual({ code: 8, message: 'the pipeline is full' });

    t.behaviours.push(() => {
      throw new TriplineError('PIPELINE_BUSY', 'the pipeline is full');
    });
    const json = await post(t.app, JSON_BODY, { 'content-type': 'application/json' });
    expect(json.statusCode).toBe(429);
    expect(json.headers['retry-after']).toBe('1');
    expect(json.json()).toStrictEqual({ code: 8, message: 'the pipeline is full' });
  });

  it('answers 503 with Retry-After when the pipeline is unavailable or shutting down', async () => {
    t.behaviours.push(() => {
      throw new TriplineError('PIPELINE_UNAVAILABLE', 'Kafka is not accepting events', {
        details: { retryAfterSeconds: 2.5 },
      });
    });
    const unavailable = await post(t.app, PROTOBUF_BODY, { 'content-type': 'application/x-protobuf' });
    expect(unavailable.statusCode).toBe(503);
    expect(unavailable.headers['retry-after']).toBe('3');
    expect(rpcStatusOf(unavailable)).toStrictEqual({ code: 14, message: 'Kafka is not accepting events' });

    t.behaviours.push(() => {
      throw new TriplineError('SHUTTING_DOWN', 'the gateway is stopping');
    });
    const stopping = await post(t.app, JSON_BODY, { 'content-type': 'application/json' });
    expect(stopping.statusCode).toBe(503);
    expect(stopping.headers['retry-after']).toBe('1');
    expect(stopping.json()).toStrictEqual({ code: 14, message: 'the gateway is stopping' });
  });

  it('answers 503 (never 500) with Retry-After for an unexpected handler error, and logs it', async () => {
    t.behaviours.push(() => {
      throw new Error('kaboom: the handler has a bug');
    });
    const response = await post(t.app, PROTOBUF_BODY, { 'content-type': 'application/x-protobuf' });
    expect(response.statusCode).toBe(503);
    expect(response.headers['retry-after']).toBe('1');
    expect(rpcStatusOf(response)).toStrictEqual({
      code: 14,
      message: 'the trace pipeline failed unexpectedly; retry later',
    });
    expect(t.logs.some((line) => line.level >= 50 && line.err?.message === 'kaboom: the handler has a bug')).toBe(true);
  });

  it('still answers a good request after all of that, and leaves other routes alone', async () => {
    const response = await post(t.app, PROTOBUF_BODY, { 'content-type': 'application/x-protobuf' });
    expect(response.statusCode).toBe(200);
    expect(t.calls.at(-1)?.request).toStrictEqual(REQUEST);
    const echo = await t.app.inject({ method: 'POST', url: '/echo', payload: { hello: 'world' } });
    expect(echo.json()).toStrictEqual({ echoed: { hello: 'world' } });
    const badJson = await t.app.inject({
      method: 'POST',
      url: '/echo',
      payload: '{',
      headers: { 'content-type': 'application/json' },
    });
    expect(badJson.statusCode).toBe(400); // Fastify's own answer, not the receiver's
  });

  it('refuses a bad maxBodyBytes when registering', () => {
    const app = Fastify();
    for (const maxBodyBytes of [0, -1, 1.5, Number.NaN]) {
      expect(() => {
        registerOtlpReceiver(app, { maxBodyBytes, handler: () => Promise.resolve({ rejectedSpans: 0 }) });
      }).toThrow(/maxBodyBytes must be a positive integer/);
    }
  });
});

// ------------------------------------------------------------------------------------------------------------

function attributeOf(span: OtlpSpan | undefined, key: string): OtlpKeyValue['value'] {
  return span?.attributes.find((attribute) => attribute.key === key)?.value;
}

describe('OTLP receiver (listening server, real OpenTelemetry exporters)', () => {
  const t = buildApp();
  let url = '';
  beforeAll(async () => {
    const address = await t.app.listen({ host: '127.0.0.1', port: 0 });
    url = `${address}/v1/traces`;
  });
  afterAll(async () => {
    await t.app.close();
  });

  async function exportSpans(exporter: SpanExporter, batch: boolean, marker: string): Promise<void> {
    const provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': `exporter-test-${marker}`, 'gen_ai.agent.id': 'agent-9' }),
      spanProcessors: [
        batch ? new BatchSpanProcessor({ exporter, scheduledDelayMillis: 50 }) : new SimpleSpanProcessor({ exporter }),
      ],
    });
    const tracer = provider.getTracer('receiver-test', '1.0.0');
    for (let i = 0; i < 3; i++) {
      const span = tracer.startSpan(`execute_tool ${marker}`, {
        kind: SpanKind.CLIENT,
        attributes: {
          'tripline.task.id': `task-${marker}`,
          'gen_ai.tool.name': 'refund',
          'gen_ai.usage.input_tokens': 100 + i,
          'tripline.data.bytes': 2 ** 40,
          'tripline.privilege.scopes_after': ['refunds:create', 'tickets:write'],
          'tripline.privilege.approved': false,
          ratio: 0.5,
        },
      });
      span.setStatus({ code: SpanStatusCode.ERROR, message: `failure ${String(i)}` });
      span.end();
    }
    await provider.forceFlush();
    await provider.shutdown();
  }

  function spansWithMarker(marker: string): {
    spans: OtlpSpan[];
    contexts: OtlpHandlerContext[];
    requests: OtlpTraceRequest[];
  } {
    const matching = t.calls.filter((call) =>
      call.request.resourceSpans.some((rs) =>
        rs.resource?.attributes.some((a) => a.value?.stringValue === `exporter-test-${marker}`),
      ),
    );
    return {
      spans: matching.flatMap((call) =>
        call.request.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)),
      ),
      contexts: matching.map((call) => call.context),
      requests: matching.map((call) => call.request),
    };
  }

  function expectDelivered(marker: string, format: 'protobuf' | 'json'): void {
    const { spans, contexts, requests } = spansWithMarker(marker);
    expect(spans).toHaveLength(3);
    expect(contexts.every((context) => context.format === format && context.tenant === 'default')).toBe(true);
    const first = spans[0];
    expect(first?.name).toBe(`execute_tool ${marker}`);
    expect(first?.kind).toBe(3);
    expect(first?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(first?.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(first?.status).toStrictEqual({ code: 2, message: expect.stringMatching(/^failure \d$/) as unknown });
    expect(attributeOf(first, 'tripline.task.id')).toStrictEqual({ stringValue: `task-${marker}` });
    expect(attributeOf(first, 'gen_ai.tool.name')).toStrictEqual({ stringValue: 'refund' });
    expect(attributeOf(first, 'tripline.data.bytes')).toStrictEqual({ intValue: 2 ** 40 });
    expect(attributeOf(first, 'tripline.privilege.approved')).toStrictEqual({ boolValue: false });
    expect(attributeOf(first, 'ratio')).toStrictEqual({ doubleValue: 0.5 });
    expect(attributeOf(first, 'tripline.privilege.scopes_after')).toStrictEqual({
      arrayValue: { values: [{ stringValue: 'refunds:create' }, { stringValue: 'tickets:write' }] },
    });
    expect(spans.map((span) => attributeOf(span, 'gen_ai.usage.input_tokens'))).toEqual(
      expect.arrayContaining([{ intValue: 100 }, { intValue: 101 }, { intValue: 102 }]),
    );
    expect(requests[0]?.resourceSpans[0]?.scopeSpans[0]?.scope).toMatchObject({
      name: 'receiver-test',
      version: '1.0.0',
    });
    expect(BigInt(first?.endTimeUnixNano ?? '0')).toBeGreaterThanOrEqual(BigInt(first?.startTimeUnixNano ?? '1'));
  }

  it('receives spans from OTLPTraceExporter (protobuf, gzip, BatchSpanProcessor) with their attributes', async () => {
    const exporter = new OTLPProtoTraceExporter({ url, compression: GZIP, timeoutMillis: 5000 });
    await exportSpans(exporter, true, 'proto-gzip');
    await waitFor('the protobuf spans', () => spansWithMarker('proto-gzip').spans.length === 3, 10_000);
    expectDelivered('proto-gzip', 'protobuf');
    expect(t.headers.at(-1)).toStrictEqual({ contentType: 'application/x-protobuf', contentEncoding: 'gzip' });
  });

  it('receives spans from OTLPTraceExporter (OTLP/JSON, SimpleSpanProcessor) with their attributes', async () => {
    const exporter = new OTLPJsonTraceExporter({ url, timeoutMillis: 5000 });
    await exportSpans(exporter, false, 'json');
    await waitFor('the JSON spans', () => spansWithMarker('json').spans.length === 3, 10_000);
    expectDelivered('json', 'json');
    expect(t.headers.at(-1)).toStrictEqual({ contentType: 'application/json', contentEncoding: undefined });
  });

  it('makes the exporter retry after 429 and 503 (Retry-After) and delivers the spans once accepted', async () => {
    t.behaviours.push(
      () => {
        throw new TriplineError('PIPELINE_BUSY', 'the pipeline is full', { details: { retryAfterSeconds: 1 } });
      },
      () => {
        throw new TriplineError('PIPELINE_UNAVAILABLE', 'Kafka is not accepting events', {
          details: { retryAfterSeconds: 1 },
        });
      },
    );
    const exporter = new OTLPProtoTraceExporter({ url, timeoutMillis: 15_000 });
    const started = Date.now();
    await exportSpans(exporter, true, 'retried');
    await waitFor('the retried spans', () => spansWithMarker('retried').requests.length === 3, 15_000);
    // Rejected twice, accepted the third time: three calls carried the same spans, one of them accepted.
    expect(t.behaviours).toHaveLength(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500); // the exporter waited for Retry-After
    const { requests } = spansWithMarker('retried');
    expect(requests[2]).toStrictEqual(requests[0]);
  }, 30_000);

  it('still accepts a good request from a plain HTTP client afterwards', async () => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf' },
      body: PROTOBUF_BODY,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/x-protobuf');
    expect((await response.arrayBuffer()).byteLength).toBe(0);
    const tooBig = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.alloc(MAX_BODY_BYTES + 1, 0x20),
    });
    expect(tooBig.status).toBe(413);
    expect(await tooBig.json()).toMatchObject({ code: 3 });
  });
});
