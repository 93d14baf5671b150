/**
 * Fuzzing the OTLP/HTTP edge (services/api/otlp-receiver.ts), run mode `http`:
 *
 * - through a real Fastify instance with `app.inject()` (the receiver in front of the real gateway and
 *   classifier): every generated request (valid and broken bodies in both formats, matching and mismatched
 *   content types, gzip, corrupt gzip, gzip bombs, bodies at and over the limit, unsupported encodings) gets
 *   exactly the status the contract table in services/api/otlp-receiver.ts names (200/400/413/415), in the request's format,
 *   with a decodable body; never a 500, a hang or a crash;
 * - at the default 16 MiB limit, the heap a single request takes while it is handled stays bounded;
 * - through a real listening socket on the whole embedded pipeline (`startEmbedded`: receiver, gateway,
 *   in-process bus, processor, ClickHouse engine), FUZZ_SOCKET_RUNS requests, some of them broken at the HTTP
 *   level (lying Content-Length, aborted bodies, chunked bodies over the limit, garbage request lines);
 *   afterwards the server still answers, the pipeline drains and the process stops cleanly.
 *
 * The expected status of a body is computed from the specification of the edge (content type, encoding,
 * size, gunzip with the limit) and from `decodeTraceRequest`, which otlp-decoder.fuzz.test.ts fuzzes alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { createGateway } from '../../services/gateway/gateway.ts';
import { countSpans, decodeTraceRequest, encodeTraceRequest, otlpSchema } from '../../services/otlp/codec.ts';
import { registerOtlpReceiver } from '../../services/api/otlp-receiver.ts';
import type { OtlpFormat, OtlpTraceRequest } from '../../schemas/otlp.ts';
import { loadConfig } from '../../services/app/config.ts';
import { startEmbedded } from '../../services/app/embedded.ts';
import type { RunningTripline } from '../../services/app/embedded.ts';
import { createHttpServer } from '../../services/api/http.ts';
import { createLogger } from '../../services/shared/logger.ts';
import {
  FUZZ_SOCKET_RUNS,
  agentRequest,
  emptySpansProtobuf,
  fuzzAsync,
  lenField,
  nonZeroId,
  otlpHttpCase,
  reportMemory,
  runsFor,
  settledHeapMb,
  stringField,
  summarize,
  timeoutFor,
  toOtlpJson,
  validProtobuf,
} from './arbitraries.ts';
import type { OtlpHttpCase } from './arbitraries.ts';
import { agentHeaders, loopbackTestEnv } from '../helpers/auth.ts';

const mode = 'http';
const MAX_BODY_BYTES = 64 * 1024;
const StatusType = otlpSchema.lookupType('google.rpc.Status');
const ResponseType = otlpSchema.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
const logger = createLogger('silent');

// ------------------------------------------------------------------------------------------------------------
// The contract, written from the specification of the edge

const OTLP_MEDIA_TYPES: Readonly<Record<string, OtlpFormat>> = {
  'application/x-protobuf': 'protobuf',
  'application/protobuf': 'protobuf',
  'application/json': 'json',
};

function formatOf(contentType: string | undefined): OtlpFormat | undefined {
  if (contentType === undefined) return undefined;
  const mediaType = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  return Object.hasOwn(OTLP_MEDIA_TYPES, mediaType) ? OTLP_MEDIA_TYPES[mediaType] : undefined;
}

/** 'gzip', 'identity' or 'unsupported'. */
function encodingOf(contentEncoding: string | undefined): 'gzip' | 'identity' | 'unsupported' {
  if (contentEncoding === undefined) return 'identity';
  const codings = contentEncoding
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0) return 'identity';
  if (codings.length === 1 && (codings[0] === 'gzip' || codings[0] === 'x-gzip')) return 'gzip';
  return 'unsupported';
}

interface Expected {
  status: 200 | 400 | 413 | 415;
  format: OtlpFormat | undefined;
  decoded?: OtlpTraceRequest;
}

function expectedOf(c: OtlpHttpCase, maxBodyBytes: number): Expected {
  const format = formatOf(c.contentType);
  const encoding = encodingOf(c.contentEncoding);
  if (encoding === 'unsupported') return { status: 415, format };
  if (format === undefined) return { status: 415, format };
  if (c.body.length > maxBodyBytes) return { status: 413, format };
  let body = c.body;
  if (encoding === 'gzip' && body.length > 0) {
    try {
      body = gunzipSync(body, { maxOutputLength: maxBodyBytes });
    } catch (error) {
      return { status: (error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE' ? 413 : 400, format };
    }
  }
  try {
    return { status: 200, format, decoded: decodeTraceRequest(body, format) };
  } catch {
    return { status: 400, format };
  }
}

/** Checks a response against the contract: status, content type, a body that decodes in that format. */
function checkResponse(
  c: OtlpHttpCase,
  expected: Expected,
  status: number,
  headers: IncomingHttpHeaders | Record<string, unknown>,
  body: Buffer,
): void {
  const where = `${c.what} (content-type ${JSON.stringify(c.contentType)}, content-encoding ${JSON.stringify(c.contentEncoding)}, ${c.body.length} bytes)`;
  if (status >= 500) throw new Error(`${where}: answered ${status}: ${body.toString('utf8').slice(0, 300)}`);
  if (status !== expected.status)
    throw new Error(`${where}: expected ${expected.status}, got ${status}: ${summarize(body)}`);
  const raw = headers['content-type'];
  const contentType = typeof raw === 'string' ? raw : Array.isArray(raw) ? raw.join(',') : '';
  const answerFormat: OtlpFormat = expected.format ?? 'json';
  if (formatOf(contentType) !== answerFormat)
    throw new Error(`${where}: answered with content type ${contentType}, not ${answerFormat}`);
  if (status === 200) {
    const decoded =
      answerFormat === 'json'
        ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>)
        : ResponseType.toObject(ResponseType.decode(body));
    if (decoded.partialSuccess !== undefined)
      throw new Error(`${where}: unexpected partial success ${JSON.stringify(decoded)}`);
    return;
  }
  const rpc =
    answerFormat === 'json'
      ? (JSON.parse(body.toString('utf8')) as { code?: unknown; message?: unknown })
      : (StatusType.toObject(StatusType.decode(body)) as { code?: unknown; message?: unknown });
  if (rpc.code !== 3 || typeof rpc.message !== 'string' || rpc.message === '')
    throw new Error(`${where}: error body is not google.rpc.Status{code 3, message}: ${summarize(body)}`);
}

// ------------------------------------------------------------------------------------------------------------
// In-process: app.inject()

interface InjectApp {
  app: FastifyInstance;
  /** Spans the gateway counted, and spans in the requests it was handed. */
  stats: () => { spans: number; handed: number };
  /** Heap in use when the handler was last called (the decoded request alive). */
  heapAtHandler: { mb: number };
}

function buildInjectApp(maxBodyBytes: number): InjectApp {
  const app = createHttpServer(logger);
  const heapAtHandler = { mb: 0 };
  const gateway = createGateway({
    publish: () => {
      // The classified batch is alive here (the bus would now hold it).
      heapAtHandler.mb = Math.max(heapAtHandler.mb, process.memoryUsage().heapUsed / 1e6);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  });
  let handed = 0;
  registerOtlpReceiver(app, {
    maxBodyBytes,
    handler: async (request, context) => {
      heapAtHandler.mb = Math.max(heapAtHandler.mb, process.memoryUsage().heapUsed / 1e6);
      handed += countSpans(request);
      return gateway.ingest(request, context);
    },
  });
  return { app, stats: () => ({ spans: gateway.stats().spans, handed }), heapAtHandler };
}

describe('fuzz: OTLP/HTTP edge through app.inject()', () => {
  let target: InjectApp;
  let heapBefore = 0;

  beforeAll(async () => {
    target = buildInjectApp(MAX_BODY_BYTES);
    await target.app.ready();
    heapBefore = settledHeapMb();
  });
  afterAll(async () => {
    await target.app.close();
  });

  it(
    'answers every request with the status, format and body the contract names',
    async () => {
      await fuzzAsync(
        mode,
        'inject',
        otlpHttpCase(MAX_BODY_BYTES),
        async (c) => {
          const expected = expectedOf(c, MAX_BODY_BYTES);
          const headers: Record<string, string> = {};
          if (c.contentType !== undefined) headers['content-type'] = c.contentType;
          if (c.contentEncoding !== undefined) headers['content-encoding'] = c.contentEncoding;
          const before = target.stats();
          const response = await target.app.inject({ method: 'POST', url: '/v1/traces', headers, payload: c.body });
          checkResponse(c, expected, response.statusCode, response.headers, response.rawPayload);
          const after = target.stats();
          const spans = expected.decoded === undefined ? 0 : countSpans(expected.decoded);
          if (after.handed - before.handed !== spans || after.spans - before.spans !== spans) {
            throw new Error(
              `${c.what}: ${spans} spans sent, handler got ${after.handed - before.handed}, gateway counted ${after.spans - before.spans}`,
            );
          }
        },
        { runs: runsFor(0.99), caseBudgetMs: 5000 },
      );
      const { heapGrowthMb } = reportMemory(mode, heapBefore);
      expect(heapGrowthMb).toBeLessThan(64);
    },
    timeoutFor(runsFor(0.99), 10),
  );

  it(
    'keeps the requests it cannot decode out of the handler, and the ones it can intact',
    async () => {
      await fuzzAsync(
        mode,
        'inject round trip',
        fc.tuple(validProtobuf(), fc.boolean(), fc.boolean()),
        async ([{ request, bytes }, json, gzip]) => {
          const body = json ? toOtlpJson(request) : bytes;
          const response = await target.app.inject({
            method: 'POST',
            url: '/v1/traces',
            headers: {
              'content-type': json ? 'application/json' : 'application/x-protobuf',
              ...(gzip ? { 'content-encoding': 'gzip' } : {}),
            },
            payload: gzip ? gzipSync(body) : body,
          });
          if (body.length > MAX_BODY_BYTES) expect(response.statusCode).toBe(413);
          else expect(response.statusCode).toBe(200);
        },
        { runs: runsFor(0.01), caseBudgetMs: 5000 },
      );
    },
    timeoutFor(runsFor(0.01), 10),
  );
});

// ------------------------------------------------------------------------------------------------------------
// Memory at the default limit

/**
 * The most objects per byte a body can make the edge build: 2-byte spans and `{}` spans at the default 16 MiB
 * limit; and, in 512 KiB, 2-byte spans under a resource that makes each of them an event carrying 64 kept
 * attributes (a bigger one would take the test process's whole heap).
 */
const DEFAULT_MAX_BODY_BYTES = loadConfig({}).otlp.maxBodyBytes;
const SMALL_LIMIT = 512 * 1024;

function eventfulTinySpans(size: number): Buffer {
  const attributes = [
    lenField(1, Buffer.concat([stringField(1, 'tripline.event.kind'), lenField(2, stringField(1, 'tool_call'))])),
  ];
  for (let i = 0; i < 63; i += 1)
    attributes.push(lenField(1, Buffer.concat([stringField(1, `k${i}`), lenField(2, stringField(1, 'v'))])));
  const resource = lenField(1, Buffer.concat(attributes));
  const spans = Math.floor((size - resource.length - 16) / 2);
  const scope = Buffer.alloc(spans * 2);
  for (let i = 0; i < spans; i += 1) scope[2 * i] = 0x12;
  return lenField(1, Buffer.concat([resource, lenField(2, scope)]));
}

const amplifying: fc.Arbitrary<{ body: Buffer; format: OtlpFormat; what: string; limit: number }> = fc
  .constantFrom(
    {
      format: 'protobuf' as const,
      limit: DEFAULT_MAX_BODY_BYTES,
      what: 'empty spans (2 bytes each)',
      make: () => emptySpansProtobuf(Math.floor((DEFAULT_MAX_BODY_BYTES - 16) / 2)),
    },
    {
      format: 'json' as const,
      limit: DEFAULT_MAX_BODY_BYTES,
      what: 'empty JSON spans ({} each)',
      make: () =>
        Buffer.from(
          `{"resourceSpans":[{"scopeSpans":[{"spans":[${'{},'.repeat(Math.floor((DEFAULT_MAX_BODY_BYTES - 64) / 3))}{}]}]}]}`,
        ),
    },
    {
      format: 'protobuf' as const,
      limit: SMALL_LIMIT,
      what: '2-byte spans that each become an event with 64 resource attributes',
      make: () => eventfulTinySpans(SMALL_LIMIT),
    },
  )
  .map(({ format, what, make, limit }) => ({ format, what, limit, body: make() }));

describe('fuzz: OTLP/HTTP edge memory at the body limit', () => {
  it('holds the heap one request takes (decoded and classified) to 32 bytes per byte of body', async () => {
    const targets = new Map<number, InjectApp>();
    for (const limit of [DEFAULT_MAX_BODY_BYTES, SMALL_LIMIT]) {
      const target = buildInjectApp(limit);
      await target.app.ready();
      targets.set(limit, target);
    }
    try {
      await fuzzAsync(
        mode,
        'amplification at the body limit',
        amplifying,
        async ({ body, format, what, limit }) => {
          const target = targets.get(limit);
          if (target === undefined) throw new Error(`no app for ${limit}`);
          // 32 bytes of heap per body byte: 512 MiB for a 16 MiB request, so that a few concurrent requests
          // stay well inside V8's default heap limit (~4 GB here) instead of crashing the process.
          const boundMb = (32 * limit) / 1e6;
          const baseline = settledHeapMb();
          target.heapAtHandler.mb = 0;
          const response = await target.app.inject({
            method: 'POST',
            url: '/v1/traces',
            headers: { 'content-type': format === 'json' ? 'application/json' : 'application/x-protobuf' },
            payload: body,
          });
          const grewMb = target.heapAtHandler.mb - baseline;
          console.log(
            `fuzz ${mode}: ${what}, ${(body.length / 1e6).toFixed(2)} MB body: status ${response.statusCode}, heap +${grewMb.toFixed(0)} MB while handled`,
          );
          expect(response.statusCode).toBeLessThan(500);
          if (grewMb > boundMb)
            throw new Error(
              `${what}: a ${(body.length / 1e6).toFixed(2)} MB request took ${grewMb.toFixed(0)} MB of heap (bound ${boundMb.toFixed(0)} MB)`,
            );
        },
        { runs: Math.min(6, Math.max(3, runsFor(0.001))), caseBudgetMs: 60_000, shrink: false },
      );
    } finally {
      for (const target of targets.values()) await target.app.close();
    }
  }, 600_000);
});

// ------------------------------------------------------------------------------------------------------------
// A real socket on the embedded pipeline

interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function post(url: string, headers: Record<string, string>, body: Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      `${url}/v1/traces`,
      { method: 'POST', headers: { ...agentHeaders, ...headers, 'content-length': String(body.length) } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }),
        );
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

/** Sends raw bytes and returns the status line's code (0 when the server closed without answering). */
function rawExchange(url: string, bytes: Buffer, { abortAfterWrite = false, waitMs = 2000 } = {}): Promise<number> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    let received = '';
    const done = (status: number): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(status);
    };
    const timer = setTimeout(() => done(0), waitMs);
    socket.on('connect', () => {
      socket.write(bytes, () => {
        if (abortAfterWrite) done(0);
        else socket.end();
      });
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(received);
      if (match !== null) done(Number(match[1]));
    });
    socket.on('error', () => done(0));
    socket.on('close', () => done(0));
  });
}

/** HTTP-level abuse: the answers a server may give are 400, 408, 413, 431 or closing the connection. */
function httpAbuse(url: string): fc.Arbitrary<{ what: string; run: () => Promise<number> }> {
  const host = new URL(url).host;
  // With the agent token, so that the body-level limits are what answers.
  const head = ([first, ...rest]: string[]): string =>
    `${[first, `Authorization: ${agentHeaders.authorization}`, ...rest].join('\r\n')}\r\n\r\n`;
  return fc.oneof(
    fc.tuple(validProtobuf(), fc.integer({ min: 1, max: 1000 })).map(([{ bytes }, extra]) => ({
      what: `Content-Length ${extra} bytes longer than the body, then half-close`,
      run: () =>
        rawExchange(
          url,
          Buffer.concat([
            Buffer.from(
              head([
                'POST /v1/traces HTTP/1.1',
                `Host: ${host}`,
                'Content-Type: application/x-protobuf',
                `Content-Length: ${bytes.length + extra}`,
              ]),
            ),
            bytes,
          ]),
        ),
    })),
    fc.tuple(validProtobuf(), fc.nat()).map(([{ bytes }, cut]) => ({
      what: 'a body cut off by closing the connection',
      run: () =>
        rawExchange(
          url,
          Buffer.concat([
            Buffer.from(
              head([
                'POST /v1/traces HTTP/1.1',
                `Host: ${host}`,
                'Content-Type: application/x-protobuf',
                `Content-Length: ${bytes.length + 10}`,
              ]),
            ),
            bytes.subarray(0, bytes.length === 0 ? 0 : cut % bytes.length),
          ]),
          { abortAfterWrite: true },
        ),
    })),
    fc.integer({ min: 1, max: 4 }).map((chunks) => ({
      what: `a chunked body of ${chunks} × 32 KiB (over the limit)`,
      run: () => {
        const chunk = Buffer.alloc(32 * 1024, 0x0a);
        const parts = [
          Buffer.from(
            head([
              'POST /v1/traces HTTP/1.1',
              `Host: ${host}`,
              'Content-Type: application/x-protobuf',
              'Transfer-Encoding: chunked',
            ]),
          ),
        ];
        for (let i = 0; i < chunks + 1; i += 1)
          parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n'));
        parts.push(Buffer.from('0\r\n\r\n'));
        return rawExchange(url, Buffer.concat(parts));
      },
    })),
    fc
      .constantFrom(
        'GARBAGE\r\n\r\n',
        'POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
        'POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
        'POST /v1/traces HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nzz\r\n',
        'POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nnot-hex\r\n',
        `POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
        'POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}',
        'POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\n\x1f\x8b\x08\x00',
        'POST /v1/traces?x=%ZZ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n',
        'POST http://evil.example/v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n',
      )
      .map((text) => ({
        what: `raw: ${JSON.stringify(text.slice(0, 80))}`,
        run: () => rawExchange(url, Buffer.from(text, 'latin1')),
      })),
  );
}

/** 401: the raw requests carry no token. */
const SOCKET_ANSWERS = new Set([0, 200, 400, 401, 404, 408, 413, 415, 431]);

/**
 * A request the pipeline turns into events and tasks, whose task id and span names hold a lone surrogate once
 * decoded from JSON (`"\ud800"` is valid JSON; JSON.stringify writes it so), with times the store accepts.
 */
const loneSurrogateRequest: fc.Arbitrary<Buffer> = fc
  .tuple(
    fc.constantFrom('\ud800', '\udfff', 'a\ud83d'),
    fc.constantFrom('taskId', 'name', 'attribute'),
    fc.array(fc.tuple(nonZeroId(16), nonZeroId(8)), { minLength: 1, maxLength: 3 }),
  )
  .map(([lone, where, ids]) => {
    const nowNs = `${Date.now()}000000`;
    const request: OtlpTraceRequest = {
      resourceSpans: [
        {
          resource: {
            attributes: [
              {
                key: 'tripline.task.id',
                value: { stringValue: where === 'taskId' ? `fuzz-lone-${lone}` : 'fuzz-lone' },
              },
              { key: 'tripline.event.kind', value: { stringValue: 'tool_call' } },
            ],
          },
          scopeSpans: [
            {
              spans: ids.map(([traceId, spanId]) => ({
                traceId,
                spanId,
                parentSpanId: spanId,
                name: where === 'name' ? `execute_tool ${lone}` : 'execute_tool x',
                kind: 1,
                startTimeUnixNano: nowNs,
                endTimeUnixNano: nowNs,
                attributes: where === 'attribute' ? [{ key: 'gen_ai.tool.name', value: { stringValue: lone } }] : [],
                events: [],
                links: [],
              })),
            },
          ],
        },
      ],
    };
    return toOtlpJson(request);
  });

describe('fuzz: OTLP/HTTP edge through a real socket on the embedded pipeline', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'fuzz-http-'));
  const BUS_CAPACITY = 100;
  let running: RunningTripline;

  beforeAll(async () => {
    const config = loadConfig({
      ...loopbackTestEnv(dataDir),
      TRIPLINE_OTLP_MAX_BODY_BYTES: String(MAX_BODY_BYTES),
      TRIPLINE_BUS_CAPACITY: String(BUS_CAPACITY),
      LOG_LEVEL: 'silent',
      // The fuzzer sends far more than a tenant's default rate: the limit is tested elsewhere.
      TRIPLINE_TENANT_SPANS_PER_SECOND: '10000000',
    });
    running = await startEmbedded(config, logger);
  });

  afterAll(async () => {
    // stop() is idempotent; the last test checks that it finishes in time.
    await Promise.race([running.stop(), new Promise((resolve) => setTimeout(resolve, 15_000).unref())]);
    rmSync(dataDir, { recursive: true, force: true });
  }, 30_000);

  it(
    `answers ${FUZZ_SOCKET_RUNS} requests over HTTP as the contract says, and keeps serving`,
    async () => {
      const heapBefore = settledHeapMb();
      const url = running.otlpUrl;
      const kind = fc.oneof(
        { arbitrary: otlpHttpCase(MAX_BODY_BYTES).map((c) => ({ type: 'case' as const, c })), weight: 10 },
        {
          arbitrary: fc
            .tuple(agentRequest(), fc.boolean())
            .map(([request, json]) => ({ type: 'agent' as const, request, json })),
          weight: 6,
        },
        { arbitrary: httpAbuse(url).map((abuse) => ({ type: 'abuse' as const, abuse })), weight: 3 },
      );
      await fuzzAsync(
        mode,
        'socket',
        kind,
        async (input) => {
          if (input.type === 'abuse') {
            const status = await input.abuse.run();
            if (!SOCKET_ANSWERS.has(status)) throw new Error(`${input.abuse.what}: answered ${status}`);
            return;
          }
          const c: OtlpHttpCase =
            input.type === 'case'
              ? input.c
              : {
                  contentType: input.json ? 'application/json' : 'application/x-protobuf',
                  contentEncoding: undefined,
                  body: input.json ? toOtlpJson(input.request) : Buffer.from(encodeTraceRequest(input.request)),
                  what: 'spans the pipeline turns into events',
                };
          const headers: Record<string, string> = {};
          if (c.contentType !== undefined) headers['content-type'] = c.contentType;
          if (c.contentEncoding !== undefined) headers['content-encoding'] = c.contentEncoding;
          const response = await post(url, headers, c.body);
          if (response.status === 429) {
            // The bus is full for now: wait for it to drain and take the answer as retryable, as clients do.
            await running.bus.drained();
            return;
          }
          checkResponse(c, expectedOf(c, MAX_BODY_BYTES), response.status, response.headers, response.body);
        },
        { runs: FUZZ_SOCKET_RUNS, caseBudgetMs: 10_000 },
      );
      // Still serving, and everything accepted was scored and stored.
      const { bytes } = fc.sample(validProtobuf(), { numRuns: 1, seed: 1 })[0] ?? { bytes: Buffer.alloc(0) };
      expect((await post(url, { 'content-type': 'application/x-protobuf' }, bytes)).status).toBe(200);
      const drained = await Promise.race([
        running.bus.drained().then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 30_000).unref()),
      ]);
      expect(drained, `${running.bus.depth()} accepted events still queued 30 s after the run`).toBe(true);
      const { heapGrowthMb } = reportMemory(`${mode}-socket`, heapBefore);
      expect(heapGrowthMb).toBeLessThan(128);
    },
    timeoutFor(FUZZ_SOCKET_RUNS, 200),
  );

  it('keeps storing after any accepted request: a normal span sent after spans with lone surrogates is stored within 30 s', async () => {
    const url = running.otlpUrl;
    let canaries = 0;
    await fuzzAsync(
      mode,
      'socket: pipeline keeps storing',
      loneSurrogateRequest,
      async (body) => {
        const response = await post(url, { 'content-type': 'application/json' }, body);
        if (response.status !== 200 && response.status !== 400) throw new Error(`answered ${response.status}`);
        // A canary: one ordinary tool call. Writes are queued in order, so it is stored only if the
        // request before it did not wedge the writer.
        canaries += 1;
        const before = (await running.store.counts()).events;
        const id = canaries.toString(16).padStart(16, '0');
        const nowNs = `${Date.now()}000000`;
        const canary = encodeTraceRequest({
          resourceSpans: [
            {
              resource: { attributes: [{ key: 'tripline.task.id', value: { stringValue: `canary-${canaries}` } }] },
              scopeSpans: [
                {
                  spans: [
                    {
                      traceId: `${id}${id}`,
                      spanId: id,
                      parentSpanId: id,
                      name: 'execute_tool canary',
                      kind: 1,
                      startTimeUnixNano: nowNs,
                      endTimeUnixNano: nowNs,
                      attributes: [{ key: 'gen_ai.operation.name', value: { stringValue: 'execute_tool' } }],
                      events: [],
                      links: [],
                    },
                  ],
                },
              ],
            },
          ],
        });
        expect((await post(url, { 'content-type': 'application/x-protobuf' }, Buffer.from(canary))).status).toBe(200);
        const deadline = Date.now() + 30_000;
        while ((await running.store.counts()).events <= before) {
          if (Date.now() > deadline)
            throw new Error(
              `a normal span sent after ${summarize(body)} was not stored within 30 s: the processor keeps retrying a write the store refuses, and every write after it waits`,
            );
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      },
      { runs: Math.max(2, Math.min(10, runsFor(0.001))), caseBudgetMs: 40_000, shrink: false },
    );
  }, 600_000);

  it(`gives a final answer, not 429 forever, to a request with more events than the bus holds (${BUS_CAPACITY})`, async () => {
    const url = running.otlpUrl;
    await fuzzAsync(
      mode,
      'socket: oversized batch',
      fc.integer({ min: BUS_CAPACITY + 1, max: BUS_CAPACITY * 3 }),
      async (spans) => {
        const body = Buffer.from(
          encodeTraceRequest({
            resourceSpans: [
              {
                resource: { attributes: [{ key: 'tripline.event.kind', value: { stringValue: 'tool_call' } }] },
                scopeSpans: [
                  {
                    spans: Array.from({ length: spans }, (_, i) => ({
                      traceId: 'ab'.repeat(16),
                      spanId: (i + 1).toString(16).padStart(16, '0'),
                      parentSpanId: '01'.repeat(8),
                      name: 'execute_tool t',
                      kind: 1,
                      startTimeUnixNano: '1700000000000000000',
                      endTimeUnixNano: '1700000000100000000',
                      attributes: [],
                      events: [],
                      links: [],
                    })),
                  },
                ],
              },
            ],
          }),
        );
        await running.bus.drained();
        const response = await post(url, { 'content-type': 'application/x-protobuf' }, body);
        if (response.status === 429)
          throw new Error(`${spans} events on an idle pipeline: 429 (retry), which no retry can ever turn into 200`);
        expect([200, 413]).toContain(response.status);
      },
      { runs: Math.min(10, runsFor(0.001)), caseBudgetMs: 30_000, shrink: false },
    );
  }, 300_000);

  it('stops cleanly within 15 s after the fuzz run', async () => {
    const stopped = await Promise.race([
      running.stop().then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 15_000).unref()),
    ]);
    expect(
      stopped,
      'startEmbedded().stop() did not finish: a batch the store refuses keeps the processor retrying',
    ).toBe(true);
  }, 30_000);
});
