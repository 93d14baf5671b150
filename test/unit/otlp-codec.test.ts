import { gzipSync } from 'node:zlib';
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import {
  MAX_ANY_VALUE_DEPTH,
  countSpans,
  decodeTraceRequest,
  encodeRpcStatus,
  encodeTraceRequest,
  encodeTraceResponse,
  otlpSchema,
  uint64ToDecimal,
} from '../../services/otlp/codec.ts';
import type { OtlpAnyValue, OtlpFormat, OtlpKeyValue, OtlpSpan, OtlpTraceRequest } from '../../schemas/otlp.ts';
import { TriplineError } from '../../services/shared/errors.ts';

const RequestType = otlpSchema.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const ResponseType = otlpSchema.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
const StatusType = otlpSchema.lookupType('google.rpc.Status');

// ----------------------------------------------------------------------------------------------------------
// Helpers

/** Re-encodes bytes with protobufjs's reflection codec for the same .proto files (the reference). */
function protobufjsReencode(bytes: Uint8Array): Uint8Array {
  return RequestType.encode(RequestType.decode(bytes)).finish();
}

/** The error thrown by `fn`, which must be a TriplineError. */
function triplineErrorOf(fn: () => unknown): TriplineError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TriplineError);
    return error as TriplineError;
  }
  throw new Error('expected a TriplineError, but nothing was thrown');
}

function expectBadRequest(body: Uint8Array | string, format: OtlpFormat, message?: RegExp): TriplineError {
  const error = triplineErrorOf(() => decodeTraceRequest(typeof body === 'string' ? Buffer.from(body) : body, format));
  expect(error.code).toBe('OTLP_BAD_REQUEST');
  expect(error.status).toBe(400);
  if (message !== undefined) expect(error.message).toMatch(message);
  return error;
}

/** Minimal protobuf writing for hand-made (and broken) inputs. */
function varint(value: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}
const key = (field: number, wire: number): number[] => varint((field << 3) | wire);
const len = (field: number, content: number[]): number[] => [...key(field, 2), ...varint(content.length), ...content];
const str = (field: number, text: string): number[] => len(field, [...Buffer.from(text)]);
const bytesOf = (...parts: number[][]): Uint8Array => Uint8Array.from(parts.flat());
/** A request holding one span whose encoded body is `span`. */
const requestWithSpan = (span: number[]): number[] => len(1, len(2, len(2, span)));
const ID16 = [...Buffer.from('0123456789abcdef0123456789abcdef', 'hex')];
const ID8 = [...Buffer.from('0123456789abcdef', 'hex')];

/** OTLP/JSON text for a decoded request, in one of the spellings the specification and the mapping allow. */
interface JsonStyle {
  snakeCase: boolean;
  int64AsNumber: boolean;
  enumNames: boolean;
  upperCaseIds: boolean;
}
const CAMEL: JsonStyle = { snakeCase: false, int64AsNumber: false, enumNames: false, upperCaseIds: false };

function toOtlpJson(request: OtlpTraceRequest, style: JsonStyle = CAMEL): string {
  const k = (camel: string): string =>
    style.snakeCase ? camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : camel;
  const id = (value: string): string => (style.upperCaseIds ? value.toUpperCase() : value);
  const u64 = (value: string): string | number =>
    style.int64AsNumber && Number.isSafeInteger(Number(value)) ? Number(value) : value;
  const dbl = (value: number): number | string =>
    Number.isNaN(value)
      ? 'NaN'
      : value === Infinity
        ? 'Infinity'
        : value === -Infinity
          ? '-Infinity'
          : Object.is(value, -0)
            ? '-0'
            : value;
  const kinds = [
    'SPAN_KIND_UNSPECIFIED',
    'SPAN_KIND_INTERNAL',
    'SPAN_KIND_SERVER',
    'SPAN_KIND_CLIENT',
    'SPAN_KIND_PRODUCER',
    'SPAN_KIND_CONSUMER',
  ];
  const codes = ['STATUS_CODE_UNSET', 'STATUS_CODE_OK', 'STATUS_CODE_ERROR'];
  const enumValue = (value: number, names: string[]): number | string =>
    style.enumNames ? (names[value] ?? value) : value;
  const anyValue = (v: OtlpAnyValue): unknown => {
    if (v.stringValue !== undefined) return { [k('stringValue')]: v.stringValue };
    if (v.boolValue !== undefined) return { [k('boolValue')]: v.boolValue };
    if (v.intValue !== undefined)
      return {
        [k('intValue')]: typeof v.intValue === 'number' && style.int64AsNumber ? v.intValue : String(v.intValue),
      };
    if (v.doubleValue !== undefined) return { [k('doubleValue')]: dbl(v.doubleValue) };
    if (v.arrayValue !== undefined) return { [k('arrayValue')]: { values: v.arrayValue.values.map(anyValue) } };
    if (v.kvlistValue !== undefined) return { [k('kvlistValue')]: { values: v.kvlistValue.values.map(keyValue) } };
    if (v.bytesValue !== undefined) return { [k('bytesValue')]: Buffer.from(v.bytesValue).toString('base64') };
    return {};
  };
  const keyValue = (kv: OtlpKeyValue): unknown =>
    kv.value === undefined ? { key: kv.key } : { key: kv.key, value: anyValue(kv.value) };
  const span = (s: OtlpSpan): unknown => ({
    [k('traceId')]: id(s.traceId),
    [k('spanId')]: id(s.spanId),
    [k('traceState')]: s.traceState,
    [k('parentSpanId')]: id(s.parentSpanId),
    flags: s.flags,
    name: s.name,
    kind: enumValue(s.kind, kinds),
    [k('startTimeUnixNano')]: u64(s.startTimeUnixNano),
    [k('endTimeUnixNano')]: u64(s.endTimeUnixNano),
    attributes: s.attributes.map(keyValue),
    [k('droppedAttributesCount')]: s.droppedAttributesCount,
    events: s.events.map((e) => ({
      [k('timeUnixNano')]: u64(e.timeUnixNano),
      name: e.name,
      attributes: e.attributes.map(keyValue),
      [k('droppedAttributesCount')]: e.droppedAttributesCount,
    })),
    [k('droppedEventsCount')]: s.droppedEventsCount,
    links: s.links.map((l) => ({
      [k('traceId')]: id(l.traceId),
      [k('spanId')]: id(l.spanId),
      [k('traceState')]: l.traceState,
      attributes: l.attributes.map(keyValue),
      [k('droppedAttributesCount')]: l.droppedAttributesCount,
      flags: l.flags,
    })),
    [k('droppedLinksCount')]: s.droppedLinksCount,
    status: s.status === undefined ? undefined : { code: enumValue(s.status.code, codes), message: s.status.message },
  });
  return JSON.stringify({
    [k('resourceSpans')]: request.resourceSpans.map((rs) => ({
      resource:
        rs.resource === undefined
          ? undefined
          : {
              attributes: rs.resource.attributes.map(keyValue),
              [k('droppedAttributesCount')]: rs.resource.droppedAttributesCount,
            },
      [k('scopeSpans')]: rs.scopeSpans.map((ss) => ({
        scope:
          ss.scope === undefined
            ? undefined
            : {
                name: ss.scope.name,
                version: ss.scope.version,
                attributes: ss.scope.attributes.map(keyValue),
                [k('droppedAttributesCount')]: ss.scope.droppedAttributesCount,
              },
        spans: ss.spans.map(span),
        [k('schemaUrl')]: ss.schemaUrl,
      })),
      [k('schemaUrl')]: rs.schemaUrl,
    })),
  });
}

// ----------------------------------------------------------------------------------------------------------
// A request that uses every field

const richRequest: OtlpTraceRequest = {
  resourceSpans: [
    {
      resource: {
        attributes: [
          { key: 'service.name', value: { stringValue: 'support-agent' } },
          { key: 'process.pid', value: { intValue: 4242 } },
        ],
        droppedAttributesCount: 3,
      },
      schemaUrl: 'https://opentelemetry.io/schemas/1.30.0',
      scopeSpans: [
        {
          scope: {
            name: '@tripline/agent',
            version: '0.3.1',
            attributes: [{ key: 'scope.attr', value: { boolValue: false } }],
            droppedAttributesCount: 1,
          },
          schemaUrl: 'https://opentelemetry.io/schemas/1.29.0',
          spans: [
            {
              traceId: '5b8efff798038103d269b633813fc60c',
              spanId: 'eee19b7ec3c1b174',
              parentSpanId: 'eee19b7ec3c1b173',
              traceState: 'vendor=a,other=b',
              flags: 0x301,
              name: 'execute_tool search_tickets',
              kind: 3,
              startTimeUnixNano: '1544712660000000000',
              endTimeUnixNano: '18446744073709551615',
              attributes: [
                { key: 'gen_ai.tool.name', value: { stringValue: 'search_tickets' } },
                { key: 'unicode', value: { stringValue: 'héllo wörld — 日本語 🚀' } },
                { key: 'empty.string', value: { stringValue: '' } },
                { key: 'flag', value: { boolValue: true } },
                { key: 'zero', value: { intValue: 0 } },
                { key: 'negative', value: { intValue: -42 } },
                { key: 'max.safe', value: { intValue: Number.MAX_SAFE_INTEGER } },
                { key: 'min.safe', value: { intValue: Number.MIN_SAFE_INTEGER } },
                { key: 'beyond.safe', value: { intValue: '9007199254740992' } },
                { key: 'int64.max', value: { intValue: '9223372036854775807' } },
                { key: 'int64.min', value: { intValue: '-9223372036854775808' } },
                { key: 'pi', value: { doubleValue: 3.141592653589793 } },
                { key: 'double.zero', value: { doubleValue: 0 } },
                { key: 'bytes', value: { bytesValue: Uint8Array.from([0, 1, 2, 254, 255]) } },
                {
                  key: 'nested',
                  value: {
                    kvlistValue: {
                      values: [
                        {
                          key: 'list',
                          value: {
                            arrayValue: {
                              values: [{ stringValue: 'a' }, { intValue: 1 }, {}, { arrayValue: { values: [] } }],
                            },
                          },
                        },
                        { key: 'no.value' },
                        { key: 'empty.list', value: { kvlistValue: { values: [] } } },
                      ],
                    },
                  },
                },
                { key: 'empty.any', value: {} },
                { key: '', value: { stringValue: 'empty key' } },
              ],
              droppedAttributesCount: 2,
              events: [
                {
                  timeUnixNano: '1544712660300000000',
                  name: 'exception',
                  attributes: [{ key: 'exception.type', value: { stringValue: 'Error' } }],
                  droppedAttributesCount: 4,
                },
                { timeUnixNano: '0', name: '', attributes: [] },
              ],
              droppedEventsCount: 5,
              links: [
                {
                  traceId: '00000000000000000000000000000001',
                  spanId: '0000000000000002',
                  traceState: 'k=v',
                  attributes: [{ key: 'link.kind', value: { stringValue: 'follows' } }],
                  droppedAttributesCount: 6,
                  flags: 0x101,
                },
                { traceId: 'ffffffffffffffffffffffffffffffff', spanId: 'ffffffffffffffff', attributes: [] },
              ],
              droppedLinksCount: 7,
              status: { code: 2, message: 'tool failed' },
            },
            {
              traceId: '5b8efff798038103d269b633813fc60c',
              spanId: 'eee19b7ec3c1b173',
              parentSpanId: '',
              name: 'invoke_agent',
              kind: 0,
              startTimeUnixNano: '0',
              endTimeUnixNano: '1',
              attributes: [],
              events: [],
              links: [],
              status: { code: 0 },
            },
          ],
        },
        { spans: [] },
      ],
    },
    { scopeSpans: [] },
  ],
};

// ----------------------------------------------------------------------------------------------------------
// Arbitrary requests, in the canonical shape decoding produces (defaults left out)

const hexOf = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const nonZeroId = (size: number): fc.Arbitrary<string> =>
  fc
    .uint8Array({ minLength: size, maxLength: size })
    .filter((b) => b.some((x) => x !== 0))
    .map(hexOf);
const optionalId = (size: number): fc.Arbitrary<string> => fc.oneof(fc.constant(''), nonZeroId(size));
const text = fc.string({ unit: 'binary', maxLength: 12 });
const nonEmptyText = fc.string({ unit: 'binary', minLength: 1, maxLength: 12 });
const uint32NonZero = fc.integer({ min: 1, max: 0xffffffff });
const nanos = fc.oneof(
  fc.constant('0'),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String),
  fc.bigInt({ min: 1_600_000_000_000_000_000n, max: 1_900_000_000_000_000_000n }).map(String),
);
const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((big) => {
  const n = Number(big);
  return Number.isSafeInteger(n) ? n : big.toString();
});
const { keyValue } = fc.letrec<{ anyValue: OtlpAnyValue; keyValue: OtlpKeyValue }>((tie) => ({
  anyValue: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    fc.constant({}),
    text.map((stringValue) => ({ stringValue })),
    fc.boolean().map((boolValue) => ({ boolValue })),
    fc.oneof(int64, fc.integer()).map((intValue) => ({ intValue })),
    fc.double().map((doubleValue) => ({ doubleValue })),
    fc.uint8Array({ maxLength: 6 }).map((bytesValue) => ({ bytesValue })),
    fc.array(tie('anyValue'), { maxLength: 3 }).map((values) => ({ arrayValue: { values } })),
    fc.array(tie('keyValue'), { maxLength: 3 }).map((values) => ({ kvlistValue: { values } })),
  ),
  keyValue: fc.record({ key: text, value: tie('anyValue') }, { noNullPrototype: true, requiredKeys: ['key'] }),
}));
const attributes = fc.array(keyValue, { maxLength: 4 });
const span: fc.Arbitrary<OtlpSpan> = fc.record(
  {
    traceId: optionalId(16),
    spanId: optionalId(8),
    parentSpanId: optionalId(8),
    traceState: nonEmptyText,
    flags: uint32NonZero,
    name: text,
    kind: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.integer({ min: -0x80000000, max: 0x7fffffff })),
    startTimeUnixNano: nanos,
    endTimeUnixNano: nanos,
    attributes,
    droppedAttributesCount: uint32NonZero,
    events: fc.array(
      fc.record(
        { timeUnixNano: nanos, name: text, attributes, droppedAttributesCount: uint32NonZero },
        { noNullPrototype: true, requiredKeys: ['timeUnixNano', 'name', 'attributes'] },
      ),
      { maxLength: 2 },
    ),
    droppedEventsCount: uint32NonZero,
    links: fc.array(
      fc.record(
        {
          traceId: optionalId(16),
          spanId: optionalId(8),
          traceState: nonEmptyText,
          attributes,
          droppedAttributesCount: uint32NonZero,
          flags: uint32NonZero,
        },
        { noNullPrototype: true, requiredKeys: ['traceId', 'spanId', 'attributes'] },
      ),
      { maxLength: 2 },
    ),
    droppedLinksCount: uint32NonZero,
    status: fc.record(
      { code: fc.integer({ min: 0, max: 2 }), message: nonEmptyText },
      { noNullPrototype: true, requiredKeys: ['code'] },
    ),
  },
  {
    noNullPrototype: true,
    requiredKeys: [
      'traceId',
      'spanId',
      'parentSpanId',
      'name',
      'kind',
      'startTimeUnixNano',
      'endTimeUnixNano',
      'attributes',
      'events',
      'links',
    ],
  },
);
const traceRequest: fc.Arbitrary<OtlpTraceRequest> = fc.record(
  {
    resourceSpans: fc.array(
      fc.record(
        {
          resource: fc.record(
            { attributes, droppedAttributesCount: uint32NonZero },
            { noNullPrototype: true, requiredKeys: ['attributes'] },
          ),
          scopeSpans: fc.array(
            fc.record(
              {
                scope: fc.record(
                  { name: text, version: nonEmptyText, attributes, droppedAttributesCount: uint32NonZero },
                  { noNullPrototype: true, requiredKeys: ['name', 'attributes'] },
                ),
                spans: fc.array(span, { maxLength: 3 }),
                schemaUrl: nonEmptyText,
              },
              { noNullPrototype: true, requiredKeys: ['spans'] },
            ),
            { maxLength: 2 },
          ),
          schemaUrl: nonEmptyText,
        },
        { noNullPrototype: true, requiredKeys: ['scopeSpans'] },
      ),
      { maxLength: 2 },
    ),
  },
  { noNullPrototype: true },
);

// ----------------------------------------------------------------------------------------------------------
// Spans from the OpenTelemetry JS SDK

async function sdkSpans(): Promise<ReadableSpan[]> {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({
      'service.name': 'codec-test-agent',
      'gen_ai.agent.id': 'agent-7',
      'process.pid': 1234,
    }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('codec-test-scope', '9.8.7');
  const parent = tracer.startSpan('invoke_agent', {
    kind: SpanKind.SERVER,
    attributes: { 'tripline.task.id': 'task-1' },
  });
  const child = tracer.startSpan(
    'execute_tool search',
    {
      kind: SpanKind.CLIENT,
      attributes: {
        'gen_ai.tool.name': 'search',
        'gen_ai.usage.input_tokens': 1834,
        'tripline.data.bytes': 2 ** 40,
        ratio: 0.25,
        approved: true,
        scopes: ['read', 'write'],
        counts: [1, 2, 3],
      },
      links: [{ context: parent.spanContext(), attributes: { 'link.reason': 'retry' } }],
    },
    trace.setSpan(ROOT_CONTEXT, parent),
  );
  child.addEvent('gen_ai.tool.message', { content: 'hello' });
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
  child.end();
  parent.end();
  await provider.forceFlush();
  const spans = exporter.getFinishedSpans();
  await provider.shutdown();
  return spans;
}

// ----------------------------------------------------------------------------------------------------------

describe('OTLP codec: protobuf', () => {
  it('round-trips a request that uses every field', () => {
    const bytes = encodeTraceRequest(richRequest);
    expect(decodeTraceRequest(bytes, 'protobuf')).toStrictEqual(richRequest);
  });

  it('encodes exactly what protobufjs (reflection, same .proto files) encodes for the same message', () => {
    const bytes = encodeTraceRequest(richRequest);
    expect(Buffer.from(protobufjsReencode(bytes)).equals(Buffer.from(bytes))).toBe(true);
    const viaReflection = RequestType.toObject(RequestType.decode(bytes), {
      longs: String,
      enums: Number,
      bytes: String,
    });
    const firstSpan = (viaReflection as { resourceSpans: { scopeSpans: { spans: Record<string, unknown>[] }[] }[] })
      .resourceSpans[0]?.scopeSpans[0]?.spans[0];
    expect(firstSpan).toMatchObject({
      traceId: Buffer.from('5b8efff798038103d269b633813fc60c', 'hex').toString('base64'),
      flags: 0x301,
      kind: 3,
      startTimeUnixNano: '1544712660000000000',
      endTimeUnixNano: '18446744073709551615',
      droppedLinksCount: 7,
      status: { code: 2, message: 'tool failed' },
    });
  });

  it('round-trips arbitrary requests, and protobufjs agrees byte for byte', () => {
    fc.assert(
      fc.property(traceRequest, (request) => {
        const bytes = encodeTraceRequest(request);
        expect(decodeTraceRequest(bytes, 'protobuf')).toStrictEqual(request);
        expect(Buffer.from(protobufjsReencode(bytes)).equals(Buffer.from(bytes))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('decodes an empty body as a request without spans', () => {
    expect(decodeTraceRequest(new Uint8Array(0), 'protobuf')).toStrictEqual({ resourceSpans: [] });
    expect(encodeTraceRequest({ resourceSpans: [] })).toHaveLength(0);
  });

  it('accepts a plain Uint8Array as well as a Buffer, and a view into a larger buffer', () => {
    const bytes = encodeTraceRequest(richRequest);
    const padded = new Uint8Array(bytes.length + 10);
    padded.set(bytes, 5);
    expect(decodeTraceRequest(padded.subarray(5, 5 + bytes.length), 'protobuf')).toStrictEqual(richRequest);
    expect(decodeTraceRequest(Uint8Array.from(bytes), 'protobuf')).toStrictEqual(richRequest);
  });

  it('skips unknown fields of every wire type (including groups) and the reserved/profiling-only fields', () => {
    const unknown = [
      ...key(99, 0),
      ...varint(123456789012n),
      ...key(98, 1),
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8,
      ...len(97, [1, 2, 3]),
      ...key(96, 5),
      1,
      2,
      3,
      4,
      ...key(95, 3),
      ...key(1, 0),
      1,
      ...key(2, 3),
      ...key(2, 4),
      ...key(95, 4),
    ];
    const spanBody = [
      ...len(1, ID16),
      ...len(2, ID8),
      ...str(5, 'op'),
      ...unknown,
      ...len(15, [...key(1, 0), 2, ...str(2, 'm')]), // Status field 1 is reserved (old deprecated_code)
      ...len(9, [...str(1, 'k'), ...key(3, 0), 7, ...len(2, [...key(8, 0), 5])]), // key_strindex, string_value_strindex
    ];
    const request = decodeTraceRequest(bytesOf(requestWithSpan(spanBody), unknown), 'protobuf');
    expect(request.resourceSpans[0]?.scopeSpans[0]?.spans[0]).toStrictEqual({
      traceId: '0123456789abcdef0123456789abcdef',
      spanId: '0123456789abcdef',
      parentSpanId: '',
      name: 'op',
      kind: 0,
      startTimeUnixNano: '0',
      endTimeUnixNano: '0',
      attributes: [{ key: 'k', value: {} }],
      events: [],
      links: [],
      status: { code: 0, message: 'm' },
    });
  });

  it('merges repeated singular message fields and lets the last oneof member win, as protobuf requires', () => {
    const spanBody = [
      ...len(15, [...key(3, 0), 2]),
      ...len(15, [...str(2, 'late message')]),
      ...len(9, [...str(1, 'k'), ...len(2, [...str(1, 'first')]), ...len(2, [...key(3, 0), ...varint(5)])]),
      ...len(9, [
        ...str(1, 'list'),
        ...len(2, [...len(5, len(1, str(1, 'a')))]),
        ...len(2, [...len(5, len(1, str(1, 'b')))]),
      ]),
    ];
    const decoded = decodeTraceRequest(bytesOf(requestWithSpan(spanBody)), 'protobuf').resourceSpans[0]?.scopeSpans[0]
      ?.spans[0];
    expect(decoded?.status).toStrictEqual({ code: 2, message: 'late message' });
    expect(decoded?.attributes).toStrictEqual([
      { key: 'k', value: { intValue: 5 } },
      { key: 'list', value: { arrayValue: { values: [{ stringValue: 'a' }, { stringValue: 'b' }] } } },
    ]);
  });

  it('decodes strings exactly as UTF-8 (invalid bytes as U+FFFD), also when they repeat and collide in the string cache', () => {
    const byte = fc.constantFrom(0x61, 0x62, 0x7a, 0x2e, 0x80, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f);
    const names = fc.array(fc.uint8Array({ minLength: 1, maxLength: 70 }), { minLength: 1, maxLength: 8 });
    const shortNames = fc.array(
      fc.array(byte, { minLength: 1, maxLength: 6 }).map((b) => Uint8Array.from(b)),
      { minLength: 1, maxLength: 8 },
    );
    fc.assert(
      fc.property(fc.oneof(names, shortNames), (raw) => {
        const spans = [...raw, ...raw].map((name) => [...len(1, ID16), ...len(2, ID8), ...len(5, [...name])]);
        const body = bytesOf(
          len(
            1,
            len(
              2,
              spans.flatMap((spanBody) => len(2, spanBody)),
            ),
          ),
        );
        const decoded = decodeTraceRequest(body, 'protobuf').resourceSpans[0]?.scopeSpans[0]?.spans.map((s) => s.name);
        expect(decoded).toStrictEqual([...raw, ...raw].map((name) => Buffer.from(name).toString('utf8')));
      }),
      { numRuns: 500 },
    );
  });

  it('reads all-zero ids as absent and writes absent ids as nothing', () => {
    const spanBody = [...len(1, new Array<number>(16).fill(0)), ...len(2, new Array<number>(8).fill(0)), ...len(4, [])];
    const decoded = decodeTraceRequest(bytesOf(requestWithSpan(spanBody)), 'protobuf');
    const s = decoded.resourceSpans[0]?.scopeSpans[0]?.spans[0];
    expect([s?.traceId, s?.spanId, s?.parentSpanId]).toStrictEqual(['', '', '']);
  });

  it('converts 64-bit values exactly', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (value) => {
        expect(uint64ToDecimal(Number(value & 0xffffffffn), Number(value >> 32n))).toBe(value.toString());
      }),
      { numRuns: 2000 },
    );
    for (const value of [
      '1',
      '4294967295',
      '4294967296',
      '9007199254740991',
      '9007199254740992',
      '1000000000000000000',
      '18446744073709551615',
    ]) {
      const request: OtlpTraceRequest = {
        resourceSpans: [
          { scopeSpans: [{ spans: [{ ...spanTemplate, startTimeUnixNano: value, endTimeUnixNano: value }] }] },
        ],
      };
      expect(decodeTraceRequest(encodeTraceRequest(request), 'protobuf')).toStrictEqual(request);
    }
  });

  it('rejects ids of the wrong length', () => {
    expectBadRequest(bytesOf(requestWithSpan(len(1, ID8))), 'protobuf', /Span\.trace_id must be 16 bytes, got 8/);
    expectBadRequest(bytesOf(requestWithSpan(len(2, ID16))), 'protobuf', /Span\.span_id must be 8 bytes, got 16/);
    expectBadRequest(
      bytesOf(requestWithSpan(len(4, [1, 2, 3]))),
      'protobuf',
      /Span\.parent_span_id must be 8 bytes, got 3/,
    );
    expectBadRequest(
      bytesOf(requestWithSpan(len(13, len(1, [1])))),
      'protobuf',
      /Span\.Link\.trace_id must be 16 bytes, got 1/,
    );
  });

  it('rejects a known field with the wrong wire type', () => {
    expectBadRequest(
      bytesOf(requestWithSpan([...key(5, 0), 1])),
      'protobuf',
      /wrong wire type 0 for Span\.name \(field 5\)/,
    );
    expectBadRequest(
      bytesOf(requestWithSpan([...key(7, 0), 1])),
      'protobuf',
      /wrong wire type 0 for Span\.start_time_unix_nano/,
    );
    expectBadRequest(bytesOf(requestWithSpan([...key(16, 0), 1])), 'protobuf', /wrong wire type 0 for Span\.flags/);
    expectBadRequest(
      bytesOf(key(1, 0), [1]),
      'protobuf',
      /wrong wire type 0 for ExportTraceServiceRequest\.resource_spans/,
    );
    expectBadRequest(
      bytesOf(requestWithSpan(len(9, [...key(2, 0), 1]))),
      'protobuf',
      /wrong wire type 0 for KeyValue\.value/,
    );
    expectBadRequest(
      bytesOf(requestWithSpan(len(9, len(2, [...key(3, 2), 0])))),
      'protobuf',
      /wrong wire type 2 for AnyValue\.int_value/,
    );
  });

  it('rejects invalid wire types, field number 0, overlong varints and unbalanced groups', () => {
    expectBadRequest(bytesOf([(7 << 3) | 6]), 'protobuf', /invalid wire type 6/);
    expectBadRequest(bytesOf([(7 << 3) | 7]), 'protobuf', /invalid wire type 7/);
    expectBadRequest(bytesOf([0x02, 0x00]), 'protobuf', /invalid field number 0/);
    expectBadRequest(
      bytesOf(key(9, 0), new Array<number>(11).fill(0xff), [1]),
      'protobuf',
      /varint longer than 10 bytes/,
    );
    expectBadRequest(bytesOf(key(9, 4)), 'protobuf', /unexpected end-group/);
    expectBadRequest(bytesOf(key(9, 3), key(8, 4)), 'protobuf', /end-group tag for field 8 closes group 9/);
    expectBadRequest(bytesOf(key(9, 3)), 'protobuf', /truncated/);
  });

  it('rejects every truncation of a valid request that does not end on a field boundary, and nothing crashes', () => {
    const bytes = encodeTraceRequest(richRequest);
    const accepted: number[] = [];
    for (let cut = 1; cut < bytes.length; cut++) {
      try {
        decodeTraceRequest(bytes.subarray(0, cut), 'protobuf');
        accepted.push(cut);
      } catch (error) {
        expect(error).toBeInstanceOf(TriplineError);
        expect((error as TriplineError).code).toBe('OTLP_BAD_REQUEST');
        expect((error as TriplineError).message).toMatch(/truncated input/);
      }
    }
    // The request's last field is the empty second ResourceSpans (0a 00): cutting it off leaves a valid request.
    expect(accepted).toStrictEqual([bytes.length - 2]);
  });

  it('answers garbage with OTLP_BAD_REQUEST or a (meaningless) request, never another error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (garbage) => {
        try {
          decodeTraceRequest(garbage, 'protobuf');
        } catch (error) {
          expect(error).toBeInstanceOf(TriplineError);
          expect((error as TriplineError).code).toBe('OTLP_BAD_REQUEST');
        }
      }),
      { numRuns: 3000 },
    );
    expectBadRequest(Buffer.from('this is not protobuf at all, it is text'), 'protobuf');
    expectBadRequest(gzipSync(encodeTraceRequest(richRequest)), 'protobuf');
  });

  it('accepts AnyValue nested 32 deep and rejects 33, also when nested 100 000 deep', () => {
    const nested = (depth: number): number[] => {
      // AnyValue at `depth` levels: arrays of arrays around a string.
      let value = str(1, 'leaf');
      for (let d = 1; d < depth; d++) value = len(5, len(1, value));
      return requestWithSpan(len(9, [...str(1, 'deep'), ...len(2, value)]));
    };
    expect(MAX_ANY_VALUE_DEPTH).toBe(32);
    expect(countSpans(decodeTraceRequest(bytesOf(nested(32)), 'protobuf'))).toBe(1);
    expectBadRequest(bytesOf(nested(33)), 'protobuf', /AnyValue nested deeper than 32 levels/);

    // A hostile body: AnyValue arrays nested 100 000 deep (built inside out, without recursion).
    const headers: Buffer[] = [];
    const leaf = Buffer.from(str(1, 'leaf'));
    let size = leaf.length;
    for (let d = 0; d < 100_000; d++) {
      const valuesField = [...key(1, 2), ...varint(size)];
      const header = Buffer.from([...key(5, 2), ...varint(valuesField.length + size), ...valuesField]);
      headers.push(header);
      size += header.length;
    }
    const anyValue = Buffer.concat([...headers.reverse(), leaf]);
    const keyValueBody = Buffer.concat([
      Buffer.from(str(1, 'deep')),
      Buffer.from(key(2, 2)),
      Buffer.from(varint(anyValue.length)),
      anyValue,
    ]);
    const spanBody = Buffer.concat([Buffer.from(key(9, 2)), Buffer.from(varint(keyValueBody.length)), keyValueBody]);
    expectBadRequest(bytesOf(requestWithSpan([...spanBody])), 'protobuf', /AnyValue nested deeper than 32 levels/);
  });
});

const spanTemplate: OtlpSpan = {
  traceId: '5b8efff798038103d269b633813fc60c',
  spanId: 'eee19b7ec3c1b174',
  parentSpanId: '',
  name: 'x',
  kind: 1,
  startTimeUnixNano: '0',
  endTimeUnixNano: '0',
  attributes: [],
  events: [],
  links: [],
};

describe('OTLP codec: OTLP/JSON', () => {
  it('decodes the JSON form of a request to the same value as its protobuf form', () => {
    const json = toOtlpJson(richRequest);
    expect(decodeTraceRequest(Buffer.from(json), 'json')).toStrictEqual(richRequest);
    expect(decodeTraceRequest(Buffer.from(json), 'json')).toStrictEqual(
      decodeTraceRequest(encodeTraceRequest(richRequest), 'protobuf'),
    );
  });

  it('accepts snake_case names, int64 as numbers, enum names and upper-case hex ids', () => {
    const style: JsonStyle = { snakeCase: true, int64AsNumber: true, enumNames: true, upperCaseIds: true };
    expect(decodeTraceRequest(Buffer.from(toOtlpJson(richRequest, style)), 'json')).toStrictEqual(richRequest);
  });

  it('decodes any spelling of arbitrary requests to the value their protobuf form decodes to', () => {
    const style = fc.record({
      snakeCase: fc.boolean(),
      int64AsNumber: fc.boolean(),
      enumNames: fc.boolean(),
      upperCaseIds: fc.boolean(),
    });
    fc.assert(
      fc.property(traceRequest, style, (request, s) => {
        expect(decodeTraceRequest(Buffer.from(toOtlpJson(request, s)), 'json')).toStrictEqual(request);
      }),
      { numRuns: 300 },
    );
  });

  it('treats null as absent, ignores unknown fields, and accepts an empty body', () => {
    expect(decodeTraceRequest(Buffer.from(''), 'json')).toStrictEqual({ resourceSpans: [] });
    expect(decodeTraceRequest(Buffer.from(' \n'), 'json')).toStrictEqual({ resourceSpans: [] });
    expect(decodeTraceRequest(Buffer.from('{}'), 'json')).toStrictEqual({ resourceSpans: [] });
    const body = JSON.stringify({
      resourceSpans: [
        {
          resource: null,
          futureField: { anything: [1, 2] },
          scopeSpans: [
            {
              scope: null,
              spans: [
                { traceId: null, spanId: '', name: null, kind: null, status: null, attributes: null, unknown: 1 },
              ],
            },
          ],
        },
      ],
    });
    expect(decodeTraceRequest(Buffer.from(body), 'json')).toStrictEqual({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                {
                  traceId: '',
                  spanId: '',
                  parentSpanId: '',
                  name: '',
                  kind: 0,
                  startTimeUnixNano: '0',
                  endTimeUnixNano: '0',
                  attributes: [],
                  events: [],
                  links: [],
                },
              ],
            },
          ],
        },
      ],
    });
  });

  it('normalizes numbers: int64 strings to numbers when safe, nanoseconds to canonical decimal strings', () => {
    const body = JSON.stringify({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                {
                  startTimeUnixNano: '000123',
                  endTimeUnixNano: 1_700_000_000_000,
                  attributes: [
                    { key: 'a', value: { intValue: '-0' } },
                    { key: 'b', value: { intValue: '9007199254740993' } },
                    { key: 'c', value: { intValue: 12 } },
                    { key: 'd', value: { doubleValue: 'NaN' } },
                    { key: 'e', value: { doubleValue: '1.5' } },
                    { key: 'f', value: { bytesValue: 'AAEC/w==' } },
                    { key: 'g', value: { bytesValue: 'AAEC_w' } },
                  ],
                  droppedAttributesCount: '3',
                },
              ],
            },
          ],
        },
      ],
    });
    const s = decodeTraceRequest(Buffer.from(body), 'json').resourceSpans[0]?.scopeSpans[0]?.spans[0];
    expect(s?.startTimeUnixNano).toBe('123');
    expect(s?.endTimeUnixNano).toBe('1700000000000');
    expect(s?.droppedAttributesCount).toBe(3);
    expect(s?.attributes.map((a) => a.value)).toStrictEqual([
      { intValue: 0 },
      { intValue: '9007199254740993' },
      { intValue: 12 },
      { doubleValue: Number.NaN },
      { doubleValue: 1.5 },
      { bytesValue: Uint8Array.from([0, 1, 2, 255]) },
      { bytesValue: Uint8Array.from([0, 1, 2, 255]) },
    ]);
  });

  it('rejects invalid JSON and invalid UTF-8', () => {
    expectBadRequest('{"resourceSpans": [', 'json', /not valid JSON/);
    expectBadRequest('garbage', 'json', /not valid JSON/);
    expectBadRequest(Uint8Array.from([0x7b, 0xff, 0x7d]), 'json', /not valid UTF-8/);
    expectBadRequest(encodeTraceRequest(richRequest), 'json');
  });

  it('rejects JSON values of the wrong type, naming where', () => {
    const spanWith = (fields: Record<string, unknown>): string =>
      JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ ...fields }] }] }] });
    expectBadRequest('[]', 'json', /the request must be a JSON object, got an array/);
    expectBadRequest('"x"', 'json', /must be a JSON object/);
    expectBadRequest('{"resourceSpans": "x"}', 'json', /at resourceSpans: expected an array, got the string "x"/);
    expectBadRequest(
      '{"resourceSpans": [1]}',
      'json',
      /at resourceSpans\[0\]: a ResourceSpans must be a JSON object, got number 1/,
    );
    expectBadRequest(
      '{"resourceSpans": [{"resource": []}]}',
      'json',
      /resourceSpans\[0\]\.resource: expected an object, got an array/,
    );
    expectBadRequest(
      spanWith({ name: 5 }),
      'json',
      /resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\]\.name: expected a string, got number 5/,
    );
    expectBadRequest(spanWith({ attributes: {} }), 'json', /spans\[0\]\.attributes: expected an array/);
    expectBadRequest(
      spanWith({ attributes: [{ key: 'k', value: { intValue: 1.5 } }] }),
      'json',
      /attributes\[0\]\.value\.intValue: expected a signed 64-bit integer/,
    );
    expectBadRequest(
      spanWith({ attributes: [{ key: 'k', value: { intValue: '9223372036854775808' } }] }),
      'json',
      /intValue: expected a signed 64-bit integer/,
    );
    expectBadRequest(
      spanWith({ attributes: [{ key: 'k', value: { boolValue: 'true' } }] }),
      'json',
      /boolValue: expected true or false/,
    );
    expectBadRequest(
      spanWith({ attributes: [{ key: 'k', value: { bytesValue: 'not base64!' } }] }),
      'json',
      /bytesValue: expected base64/,
    );
    expectBadRequest(
      spanWith({ attributes: [{ key: 'k', value: { arrayValue: { values: 'x' } } }] }),
      'json',
      /arrayValue\.values: expected an array/,
    );
    expectBadRequest(spanWith({ attributes: [{ key: 7 }] }), 'json', /attributes\[0\]\.key: expected a string/);
    expectBadRequest(
      spanWith({ startTimeUnixNano: '-1' }),
      'json',
      /startTimeUnixNano: expected an unsigned 64-bit integer/,
    );
    expectBadRequest(spanWith({ startTimeUnixNano: '18446744073709551616' }), 'json', /startTimeUnixNano/);
    expectBadRequest(spanWith({ kind: 'SPAN_KIND_NOPE' }), 'json', /kind: expected an enum number/);
    expectBadRequest(spanWith({ kind: 'constructor' }), 'json', /kind: expected an enum number/);
    expectBadRequest(spanWith({ flags: -1 }), 'json', /flags: expected an unsigned 32-bit integer/);
    expectBadRequest(spanWith({ droppedAttributesCount: 2 ** 32 }), 'json', /droppedAttributesCount/);
    expectBadRequest(spanWith({ status: { code: 'x' } }), 'json', /status\.code: expected an enum number/);
    expectBadRequest(spanWith({ events: [{ timeUnixNano: true }] }), 'json', /events\[0\]\.timeUnixNano/);
  });

  it('rejects ids of the wrong length or with invalid hex', () => {
    const spanWith = (fields: Record<string, unknown>): string =>
      JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ ...fields }] }] }] });
    expectBadRequest(
      spanWith({ traceId: '5b8efff798038103d269b633813fc60' }),
      'json',
      /traceId: expected 32 hex characters \(16 bytes\), got 31 characters/,
    );
    expectBadRequest(spanWith({ spanId: 'eee19b7ec3c1b1740' }), 'json', /spanId: expected 16 hex characters/);
    expectBadRequest(spanWith({ spanId: 'eee19b7ec3c1b17g' }), 'json', /spanId: expected hex characters/);
    expectBadRequest(spanWith({ parentSpanId: 12 }), 'json', /parentSpanId: expected a hex string/);
    // base64 ids (the plain protobuf JSON mapping) are not OTLP/JSON
    expectBadRequest(spanWith({ traceId: 'W47/95gDgQPSabYzgT/GDA==' }), 'json', /traceId/);
    expectBadRequest(spanWith({ links: [{ traceId: 'zz' }] }), 'json', /links\[0\]\.traceId/);
  });

  it('accepts AnyValue nested 32 deep and rejects 33, without recursing further', () => {
    const nested = (depth: number): string => {
      let value = '{"stringValue":"leaf"}';
      for (let d = 1; d < depth; d++) value = `{"arrayValue":{"values":[${value}]}}`;
      return `{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"deep","value":${value}}]}]}]}]}`;
    };
    expect(countSpans(decodeTraceRequest(Buffer.from(nested(32)), 'json'))).toBe(1);
    expectBadRequest(nested(33), 'json', /AnyValue nested deeper than 32 levels/);
    const kvNested = `{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"k","value":${'{"kvlistValue":{"values":[{"key":"k","value":'.repeat(100_000)}{}${'}]}}'.repeat(100_000)}}]}]}]}]}`;
    expectBadRequest(kvNested, 'json', /AnyValue nested deeper than 32 levels/);
  });
});

describe('OTLP codec: bytes from the OpenTelemetry JS exporter', () => {
  it('decodes ProtobufTraceSerializer and JsonTraceSerializer output to the spans the SDK recorded', async () => {
    const spans = await sdkSpans();
    const protobufBody = ProtobufTraceSerializer.serializeRequest(spans);
    const jsonBody = JsonTraceSerializer.serializeRequest(spans);
    if (protobufBody === undefined || jsonBody === undefined) throw new Error('the serializer produced nothing');

    const fromProtobuf = decodeTraceRequest(protobufBody, 'protobuf');
    const fromJson = decodeTraceRequest(jsonBody, 'json');
    expect(fromJson).toStrictEqual(fromProtobuf);
    // protobufjs, reading the same .proto files, loses nothing the SDK wrote:
    expect(decodeTraceRequest(protobufjsReencode(protobufBody), 'protobuf')).toStrictEqual(fromProtobuf);

    const resourceSpans = fromProtobuf.resourceSpans[0];
    expect(resourceSpans?.resource?.attributes).toEqual(
      expect.arrayContaining([
        { key: 'service.name', value: { stringValue: 'codec-test-agent' } },
        { key: 'gen_ai.agent.id', value: { stringValue: 'agent-7' } },
        { key: 'process.pid', value: { intValue: 1234 } },
      ]),
    );
    const scopeSpans = resourceSpans?.scopeSpans[0];
    expect(scopeSpans?.scope).toMatchObject({ name: 'codec-test-scope', version: '9.8.7' });
    const decodedSpans = scopeSpans?.spans ?? [];
    expect(decodedSpans).toHaveLength(2);

    const sdkChild = spans.find((s) => s.name === 'execute_tool search');
    const sdkParent = spans.find((s) => s.name === 'invoke_agent');
    const child = decodedSpans.find((s) => s.name === 'execute_tool search');
    const parent = decodedSpans.find((s) => s.name === 'invoke_agent');
    expect(child).toMatchObject({
      traceId: sdkChild?.spanContext().traceId,
      spanId: sdkChild?.spanContext().spanId,
      parentSpanId: sdkParent?.spanContext().spanId,
      kind: 3,
      status: { code: 2, message: 'boom' },
    });
    expect(parent).toMatchObject({ traceId: sdkParent?.spanContext().traceId, parentSpanId: '', kind: 2 });
    expect(child?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(child?.attributes).toStrictEqual([
      { key: 'gen_ai.tool.name', value: { stringValue: 'search' } },
      { key: 'gen_ai.usage.input_tokens', value: { intValue: 1834 } },
      { key: 'tripline.data.bytes', value: { intValue: 2 ** 40 } },
      { key: 'ratio', value: { doubleValue: 0.25 } },
      { key: 'approved', value: { boolValue: true } },
      { key: 'scopes', value: { arrayValue: { values: [{ stringValue: 'read' }, { stringValue: 'write' }] } } },
      { key: 'counts', value: { arrayValue: { values: [{ intValue: 1 }, { intValue: 2 }, { intValue: 3 }] } } },
    ]);
    expect(child?.events).toStrictEqual([
      expect.objectContaining({
        name: 'gen_ai.tool.message',
        attributes: [{ key: 'content', value: { stringValue: 'hello' } }],
      }),
    ]);
    expect(child?.links[0]).toMatchObject({
      traceId: sdkParent?.spanContext().traceId,
      spanId: sdkParent?.spanContext().spanId,
      attributes: [{ key: 'link.reason', value: { stringValue: 'retry' } }],
    });
    const [startSeconds, startNanos] = sdkChild?.startTime ?? [0, 0];
    expect(child?.startTimeUnixNano).toBe((BigInt(startSeconds) * 1_000_000_000n + BigInt(startNanos)).toString());

    // What goes on Kafka decodes to the same request.
    expect(decodeTraceRequest(encodeTraceRequest(fromProtobuf), 'protobuf')).toStrictEqual(fromProtobuf);
  });
});

describe('OTLP codec: responses', () => {
  it('encodes an empty ExportTraceServiceResponse when nothing was rejected', () => {
    expect(encodeTraceResponse(0, undefined, 'protobuf')).toHaveLength(0);
    expect(Buffer.from(encodeTraceResponse(0, undefined, 'json')).toString()).toBe('{}');
    expect(Buffer.from(encodeTraceResponse(0, '', 'json')).toString()).toBe('{}');
  });

  it('encodes partialSuccess with the rejected count and the message', () => {
    const protobufBody = encodeTraceResponse(3, 'three spans lacked a task id', 'protobuf');
    expect(ResponseType.toObject(ResponseType.decode(protobufBody), { longs: Number })).toStrictEqual({
      partialSuccess: { rejectedSpans: 3, errorMessage: 'three spans lacked a task id' },
    });
    expect(
      JSON.parse(Buffer.from(encodeTraceResponse(3, 'three spans lacked a task id', 'json')).toString()),
    ).toStrictEqual({
      partialSuccess: { rejectedSpans: '3', errorMessage: 'three spans lacked a task id' },
    });
    // a warning: nothing rejected but a message
    expect(
      JSON.parse(Buffer.from(encodeTraceResponse(0, 'attribute names are deprecated', 'json')).toString()),
    ).toStrictEqual({
      partialSuccess: { errorMessage: 'attribute names are deprecated' },
    });
  });

  it('encodes google.rpc.Status in both formats', () => {
    const protobufBody = encodeRpcStatus(3, 'bad request', 'protobuf');
    expect(StatusType.toObject(StatusType.decode(protobufBody))).toStrictEqual({ code: 3, message: 'bad request' });
    expect(JSON.parse(Buffer.from(encodeRpcStatus(14, 'busy', 'json')).toString())).toStrictEqual({
      code: 14,
      message: 'busy',
    });
    // the status.proto stand-in for google.protobuf.Any has Any's field numbers
    const anyType = otlpSchema.lookupType('google.rpc.Any');
    expect(anyType.fieldsArray.map((f) => [f.name, f.id])).toStrictEqual([
      ['typeUrl', 1],
      ['value', 2],
    ]);
  });
});

describe('OTLP codec: schema', () => {
  it('matches the field numbers of opentelemetry-proto v1.11.0', () => {
    const fields = (name: string): Record<string, number> =>
      Object.fromEntries(otlpSchema.lookupType(name).fieldsArray.map((f) => [f.name, f.id]));
    expect(fields('opentelemetry.proto.trace.v1.Span')).toStrictEqual({
      traceId: 1,
      spanId: 2,
      traceState: 3,
      parentSpanId: 4,
      flags: 16,
      name: 5,
      kind: 6,
      startTimeUnixNano: 7,
      endTimeUnixNano: 8,
      attributes: 9,
      droppedAttributesCount: 10,
      events: 11,
      droppedEventsCount: 12,
      links: 13,
      droppedLinksCount: 14,
      status: 15,
    });
    expect(fields('opentelemetry.proto.common.v1.AnyValue')).toStrictEqual({
      stringValue: 1,
      boolValue: 2,
      intValue: 3,
      doubleValue: 4,
      arrayValue: 5,
      kvlistValue: 6,
      bytesValue: 7,
      stringValueStrindex: 8,
    });
    expect(fields('opentelemetry.proto.trace.v1.Status')).toStrictEqual({ message: 2, code: 3 });
    expect(fields('opentelemetry.proto.trace.v1.Span.Link')).toStrictEqual({
      traceId: 1,
      spanId: 2,
      traceState: 3,
      attributes: 4,
      droppedAttributesCount: 5,
      flags: 6,
    });
    expect(fields('opentelemetry.proto.trace.v1.Span.Event')).toStrictEqual({
      timeUnixNano: 1,
      name: 2,
      attributes: 3,
      droppedAttributesCount: 4,
    });
    expect(fields('opentelemetry.proto.common.v1.KeyValue')).toStrictEqual({ key: 1, value: 2, keyStrindex: 3 });
    expect(fields('opentelemetry.proto.common.v1.InstrumentationScope')).toStrictEqual({
      name: 1,
      version: 2,
      attributes: 3,
      droppedAttributesCount: 4,
    });
    expect(fields('opentelemetry.proto.resource.v1.Resource')).toStrictEqual({
      attributes: 1,
      droppedAttributesCount: 2,
      entityRefs: 3,
    });
    expect(fields('opentelemetry.proto.trace.v1.ResourceSpans')).toStrictEqual({
      resource: 1,
      scopeSpans: 2,
      schemaUrl: 3,
    });
    expect(fields('opentelemetry.proto.trace.v1.ScopeSpans')).toStrictEqual({ scope: 1, spans: 2, schemaUrl: 3 });
    expect(fields('opentelemetry.proto.collector.trace.v1.ExportTracePartialSuccess')).toStrictEqual({
      rejectedSpans: 1,
      errorMessage: 2,
    });
    const spanFields = otlpSchema.lookupType('opentelemetry.proto.trace.v1.Span').fields;
    expect([spanFields.startTimeUnixNano?.type, spanFields.flags?.type]).toStrictEqual(['fixed64', 'fixed32']);
    // TracesData and ExportTraceServiceRequest share one wire format
    const tracesData = otlpSchema.lookupType('opentelemetry.proto.trace.v1.TracesData');
    const bytes = encodeTraceRequest(richRequest);
    expect(Buffer.from(tracesData.encode(tracesData.decode(bytes)).finish()).equals(Buffer.from(bytes))).toBe(true);
  });

  it('rejects an unknown format with OTLP_UNSUPPORTED_MEDIA_TYPE', () => {
    const error = triplineErrorOf(() => decodeTraceRequest(new Uint8Array(0), 'xml' as OtlpFormat));
    expect(error.code).toBe('OTLP_UNSUPPORTED_MEDIA_TYPE');
  });

  it('refuses to encode ids and numbers that are not valid', () => {
    const withSpan = (s: Partial<OtlpSpan>): OtlpTraceRequest => ({
      resourceSpans: [{ scopeSpans: [{ spans: [{ ...spanTemplate, ...s }] }] }],
    });
    expect(() => encodeTraceRequest(withSpan({ traceId: 'abc' }))).toThrow(TypeError);
    expect(() => encodeTraceRequest(withSpan({ spanId: 'zzzzzzzzzzzzzzzz' }))).toThrow(/must be hex/);
    expect(() => encodeTraceRequest(withSpan({ startTimeUnixNano: '1e9' }))).toThrow(/not an unsigned decimal integer/);
    expect(() => encodeTraceRequest(withSpan({ endTimeUnixNano: '18446744073709551616' }))).toThrow(
      /outside the uint64 range/,
    );
    expect(() => encodeTraceRequest(withSpan({ attributes: [{ key: 'k', value: { intValue: 2 ** 60 } }] }))).toThrow(
      /not a safe integer/,
    );
    expect(() =>
      encodeTraceRequest(withSpan({ attributes: [{ key: 'k', value: { intValue: '9223372036854775808' } }] })),
    ).toThrow(/outside the int64 range/);
  });
});
