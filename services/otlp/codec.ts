/**
 * OTLP trace codec: `ExportTraceServiceRequest` bytes (protobuf or OTLP/JSON) to and from the decoded shape
 * of `schemas/otlp.ts`, plus the OTLP/HTTP response bodies (`ExportTraceServiceResponse`, `google.rpc.Status`).
 *
 * The schema is `schemas/otlp/**.proto` (opentelemetry-proto v1.11.0), loaded once with protobufjs. Requests
 * are the hot path (every span of every agent), so they are not decoded through protobufjs messages: a
 * single-pass decoder written against that schema reads the wire format straight into the final objects (no
 * intermediate message objects, `Long`s or id buffers; ~2x the throughput of protobufjs's generated
 * `Type.decode` alone, ~4x with the `toObject` conversion it would need, see test/bench/otlp-decode.bench.ts),
 * and it rejects a known field with the wrong wire type, which protobufjs skips as if it were unknown. The
 * encoder writes with protobufjs's `Writer` in field-number order, as protoc-generated encoders do. The unit
 * tests check both against protobufjs's reflection codec for the same `.proto` files (byte for byte) and
 * against bytes produced by the OpenTelemetry JS exporter.
 *
 * Decoding is strict where the upstream collector (pdata) is strict and lenient where it is lenient:
 * truncated input, a known field with the wrong wire type, an id of the wrong length, invalid hex, invalid
 * JSON or a JSON value of the wrong type are rejected; unknown fields are skipped. Every failure is a
 * `TriplineError('OTLP_BAD_REQUEST')` whose message says where the input went wrong.
 */
import { Buffer } from 'node:buffer';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type {
  OtlpAnyValue,
  OtlpFormat,
  OtlpKeyValue,
  OtlpResource,
  OtlpResourceSpans,
  OtlpScope,
  OtlpScopeSpans,
  OtlpSpan,
  OtlpSpanEvent,
  OtlpSpanLink,
  OtlpStatus,
  OtlpTraceRequest,
} from '../../schemas/otlp.ts';
import { TriplineError, messageOf } from '../shared/errors.ts';

/**
 * Deepest nesting of `AnyValue`s accepted: an attribute's value is depth 1, an element of an array (or a
 * value of a key-value list) held in it is depth 2, and so on. Deeper input is rejected with 400 so that
 * hostile input cannot exhaust the stack or the CPU.
 */
export const MAX_ANY_VALUE_DEPTH = 32;

/** Deepest nesting of unknown protobuf groups skipped before the input is rejected. */
const MAX_UNKNOWN_GROUP_DEPTH = 32;

/** `google.rpc.Code` values used in OTLP/HTTP error bodies. */
export const RPC_CODE = {
  OK: 0,
  INVALID_ARGUMENT: 3,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

// ------------------------------------------------------------------------------------------------------------
// Schema (protobufjs): loaded once; used for the response bodies and as the reference codec in tests.

const SCHEMA_DIR = fileURLToPath(new URL('../../schemas/otlp/', import.meta.url));

function loadSchema(): protobuf.Root {
  const root = new protobuf.Root();
  // Imports inside the .proto files are relative to schemas/otlp/ (like `protoc -I schemas/otlp`).
  root.resolvePath = (_origin: string, target: string): string => SCHEMA_DIR + target;
  root.loadSync(['collector/trace/v1/trace_service.proto', 'google/rpc/status.proto'], { keepCase: false });
  root.resolveAll();
  return root;
}

/** The OTLP trace schema (`schemas/otlp/`) as a protobufjs root, with every type resolved. */
export const otlpSchema: protobuf.Root = loadSchema();

const ExportTraceServiceResponse = otlpSchema.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
const RpcStatus = otlpSchema.lookupType('google.rpc.Status');

// ------------------------------------------------------------------------------------------------------------
// Public API

/**
 * Decodes an OTLP/HTTP trace request body (already decompressed).
 *
 * An empty body (or, for JSON, a body of only whitespace) is a valid request with no spans. Ids come out as
 * lowercase hex ('' when absent or all zeroes), timestamps as decimal strings, `intValue` as a number when it
 * is a safe integer and as a decimal string otherwise; fields at their default value are left out.
 *
 * @throws TriplineError `OTLP_BAD_REQUEST` when the body cannot be decoded (never another error type).
 */
export function decodeTraceRequest(body: Uint8Array, format: OtlpFormat): OtlpTraceRequest {
  const name: string = format; // checked at run time too: callers may come from untyped code
  if (name !== 'protobuf' && name !== 'json') {
    throw new TriplineError('OTLP_UNSUPPORTED_MEDIA_TYPE', `unknown OTLP format ${JSON.stringify(name)}; use 'protobuf' or 'json'`);
  }
  try {
    return format === 'protobuf' ? decodeProtobufRequest(body) : decodeJsonRequest(body);
  } catch (error) {
    throw asBadRequest(error, format);
  }
}

/**
 * Encodes a request as protobuf `ExportTraceServiceRequest`, which is byte-for-byte a `TracesData` (the
 * `otlp_proto` encoding of the collector's Kafka exporter). Fields are written in field-number order and
 * left out at their default value; `decodeTraceRequest(encodeTraceRequest(r), 'protobuf')` equals `r` for
 * any `r` that decoding can produce.
 *
 * @throws TypeError when an id is not lowercase/uppercase hex of the right length or a timestamp or integer
 *   is not a valid decimal (a bug in whoever built the request).
 */
export function encodeTraceRequest(request: OtlpTraceRequest): Uint8Array {
  const w = writer;
  w.pos = 0;
  w.states = null;
  for (const resourceSpans of request.resourceSpans) {
    w.uint32(TAG_LEN_1).fork();
    writeResourceSpans(w, resourceSpans);
    w.ldelim();
  }
  const bytes = w.finish(); // a copy: the writer's buffer is reused
  if (w.buf.length > MAX_RETAINED_WRITER_BYTES) writer = protobuf.Writer.create();
  return bytes;
}

/**
 * Body of a successful OTLP/HTTP export: an empty `ExportTraceServiceResponse` (`{}` in JSON) when nothing
 * was rejected and there is no message, else `partialSuccess { rejectedSpans, errorMessage }`. A message with
 * `rejectedSpans` 0 is a warning, as the specification allows.
 */
export function encodeTraceResponse(rejectedSpans: number, errorMessage: string | undefined, format: OtlpFormat): Uint8Array {
  const rejected = Number.isSafeInteger(rejectedSpans) && rejectedSpans > 0 ? rejectedSpans : 0;
  const message = errorMessage ?? '';
  if (rejected === 0 && message === '') {
    return format === 'json' ? Buffer.from('{}') : new Uint8Array(0);
  }
  if (format === 'json') {
    const partialSuccess: { rejectedSpans?: string; errorMessage?: string } = {};
    if (rejected > 0) partialSuccess.rejectedSpans = String(rejected);
    if (message !== '') partialSuccess.errorMessage = message;
    return Buffer.from(JSON.stringify({ partialSuccess }));
  }
  const partialSuccess: { rejectedSpans?: number; errorMessage?: string } = {};
  if (rejected > 0) partialSuccess.rejectedSpans = rejected;
  if (message !== '') partialSuccess.errorMessage = message;
  return ExportTraceServiceResponse.encode(ExportTraceServiceResponse.fromObject({ partialSuccess })).finish();
}

/** Body of an OTLP/HTTP error: `google.rpc.Status { code, message }` (see RPC_CODE), without details. */
export function encodeRpcStatus(code: number, message: string, format: OtlpFormat): Uint8Array {
  if (format === 'json') return Buffer.from(JSON.stringify({ code, message }));
  return RpcStatus.encode(RpcStatus.fromObject({ code, message })).finish();
}

/** Number of spans in a request. */
export function countSpans(request: OtlpTraceRequest): number {
  let count = 0;
  for (const resourceSpans of request.resourceSpans) {
    for (const scopeSpans of resourceSpans.scopeSpans) count += scopeSpans.spans.length;
  }
  return count;
}

// ------------------------------------------------------------------------------------------------------------
// Errors

/** A decoding failure inside this module; turned into `TriplineError('OTLP_BAD_REQUEST')` at the boundary. */
class DecodeError extends Error {
  /** Where in the input (JSON path segments, outermost first). */
  readonly path: string[] = [];
}

function asBadRequest(error: unknown, format: OtlpFormat): TriplineError {
  if (error instanceof TriplineError) return error;
  if (error instanceof DecodeError) {
    const where = error.path.length > 0 ? ` at ${error.path.join('.').replaceAll('.[', '[')}` : '';
    return new TriplineError('OTLP_BAD_REQUEST', `invalid OTLP/${format === 'json' ? 'JSON' : 'protobuf'} trace request${where}: ${error.message}`);
  }
  // Not expected (the decoders throw DecodeError), but a request must never turn into a 500.
  return new TriplineError('OTLP_BAD_REQUEST', `invalid OTLP/${format === 'json' ? 'JSON' : 'protobuf'} trace request: ${messageOf(error)}`, {
    cause: error,
  });
}

// ------------------------------------------------------------------------------------------------------------
// Protobuf decoding. One request is decoded at a time (decoding is synchronous), so the input and the read
// position live in module variables rather than being passed to every function.

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;
const WIRE_I32 = 5;

const tag = (field: number, wire: number): number => (field << 3) | wire;
const TAG_LEN_1 = 10 /* 1:len */;

const EMPTY = Buffer.alloc(0);
let buf: Buffer = EMPTY;
let view: DataView = new DataView(EMPTY.buffer, 0, 0);
let pos = 0;
/** Halves of the last 64-bit value read by readVarint64 / readFixed64 (avoids allocating a pair). */
let lo = 0;
let hi = 0;

/**
 * Decoded objects cost hundreds of bytes each, so a body made of tiny spans or attributes would decode to
 * hundreds of times its size (a 4 MiB request could take a process's memory). Each decoded object spends
 * the fewest bytes a sensible encoding of it takes (a span with its ids and times takes more than 48); a
 * request that spends more than its own size (plus a small allowance) is refused with 413.
 */
const OBJECT_COST = { span: 48, event: 16, link: 32, keyValue: 8, nestedValue: 4 } as const;
const OBJECT_ALLOWANCE_BYTES = 64 * 1024;
let objectBudget = 0;

function objectBudgetFor(body: Uint8Array): number {
  return body.length + OBJECT_ALLOWANCE_BYTES;
}

function spendObject(cost: number): void {
  objectBudget -= cost;
  if (objectBudget < 0) {
    throw new TriplineError('OTLP_PAYLOAD_TOO_LARGE', 'the request holds more spans, events, links and attributes than its size can encode sensibly; send fewer per request');
  }
}

function decodeProtobufRequest(body: Uint8Array): OtlpTraceRequest {
  objectBudget = objectBudgetFor(body);
  buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  pos = 0;
  try {
    const end = buf.length;
    const resourceSpans: OtlpResourceSpans[] = [];
    while (pos < end) {
      const t = readTag(end);
      if (t === TAG_LEN_1) resourceSpans.push(decodeResourceSpans(readLength(end)));
      else otherField(t, end, REQUEST_FIELDS, 'ExportTraceServiceRequest');
    }
    return { resourceSpans };
  } finally {
    buf = EMPTY; // do not keep the request body alive
    view = new DataView(EMPTY.buffer, 0, 0);
  }
}

// Field names per message, for "wrong wire type" messages; a field listed here is known, others are skipped.
const REQUEST_FIELDS: readonly (string | undefined)[] = [undefined, 'resource_spans'];
const RESOURCE_SPANS_FIELDS: readonly (string | undefined)[] = [undefined, 'resource', 'scope_spans', 'schema_url'];
const RESOURCE_FIELDS: readonly (string | undefined)[] = [undefined, 'attributes', 'dropped_attributes_count', 'entity_refs'];
const SCOPE_SPANS_FIELDS: readonly (string | undefined)[] = [undefined, 'scope', 'spans', 'schema_url'];
const SCOPE_FIELDS: readonly (string | undefined)[] = [undefined, 'name', 'version', 'attributes', 'dropped_attributes_count'];
const SPAN_FIELDS: readonly (string | undefined)[] = [
  undefined,
  'trace_id',
  'span_id',
  'trace_state',
  'parent_span_id',
  'name',
  'kind',
  'start_time_unix_nano',
  'end_time_unix_nano',
  'attributes',
  'dropped_attributes_count',
  'events',
  'dropped_events_count',
  'links',
  'dropped_links_count',
  'status',
  'flags',
];
const EVENT_FIELDS: readonly (string | undefined)[] = [undefined, 'time_unix_nano', 'name', 'attributes', 'dropped_attributes_count'];
const LINK_FIELDS: readonly (string | undefined)[] = [
  undefined,
  'trace_id',
  'span_id',
  'trace_state',
  'attributes',
  'dropped_attributes_count',
  'flags',
];
// Field 1 of Status is reserved (the old deprecated_code): skipped like an unknown field.
const STATUS_FIELDS: readonly (string | undefined)[] = [undefined, undefined, 'message', 'code'];
const KEY_VALUE_FIELDS: readonly (string | undefined)[] = [undefined, 'key', 'value', 'key_strindex'];
const ANY_VALUE_FIELDS: readonly (string | undefined)[] = [
  undefined,
  'string_value',
  'bool_value',
  'int_value',
  'double_value',
  'array_value',
  'kvlist_value',
  'bytes_value',
  'string_value_strindex',
];
const LIST_FIELDS: readonly (string | undefined)[] = [undefined, 'values'];

function fail(message: string): never {
  throw new DecodeError(message);
}

function truncated(what: string, need: number, end: number): never {
  const limit = end === buf.length ? 'the body ends' : 'the enclosing message ends';
  return fail(`truncated input: ${what} at byte ${pos} needs ${need} byte(s) but ${limit} at byte ${end}`);
}

/** Reads a varint and returns its low 32 bits, unsigned. Accepts up to 10 bytes (the protobuf maximum). */
function readVarint32(end: number): number {
  let p = pos;
  let result = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (p >= end) return truncated('a varint', 1, end);
    const b = buf[p++] ?? 0;
    result |= (b & 0x7f) << shift;
    if (b < 0x80) {
      pos = p;
      return result >>> 0;
    }
  }
  for (let i = 5; i < 10; i++) {
    if (p >= end) return truncated('a varint', 1, end);
    if ((buf[p++] ?? 0) < 0x80) {
      pos = p;
      return result >>> 0;
    }
  }
  return fail(`varint longer than 10 bytes at byte ${pos}`);
}

/** Reads a varint into `lo`/`hi`. */
function readVarint64(end: number): void {
  let p = pos;
  let l = 0;
  let h: number;
  let b: number;
  for (let shift = 0; shift < 28; shift += 7) {
    if (p >= end) truncated('a varint', 1, end);
    b = buf[p++] ?? 0;
    l |= (b & 0x7f) << shift;
    if (b < 0x80) {
      pos = p;
      lo = l >>> 0;
      hi = 0;
      return;
    }
  }
  if (p >= end) truncated('a varint', 1, end);
  b = buf[p++] ?? 0;
  l |= (b & 0x0f) << 28;
  h = (b & 0x7f) >> 4;
  if (b < 0x80) {
    pos = p;
    lo = l >>> 0;
    hi = h >>> 0;
    return;
  }
  for (let shift = 3; shift < 38; shift += 7) {
    if (p >= end) truncated('a varint', 1, end);
    b = buf[p++] ?? 0;
    h |= (b & 0x7f) << shift;
    if (b < 0x80) {
      pos = p;
      lo = l >>> 0;
      hi = h >>> 0;
      return;
    }
  }
  fail(`varint longer than 10 bytes at byte ${pos}`);
}

function readTag(end: number): number {
  const t = readVarint32(end);
  if (t >>> 3 === 0) fail(`invalid field number 0 at byte ${pos}`);
  return t;
}

/** Reads the length of a length-delimited field and returns where its content ends. */
function readLength(end: number): number {
  const length = readVarint32(end);
  if (length > end - pos) truncated('a length-delimited field', length, end);
  return pos + length;
}

function readFixed32(end: number): number {
  if (end - pos < 4) truncated('a fixed32', 4, end);
  const value = view.getUint32(pos, true);
  pos += 4;
  return value;
}

/** Reads a fixed64 into `lo`/`hi`. */
function readFixed64(end: number): void {
  if (end - pos < 8) truncated('a fixed64', 8, end);
  lo = view.getUint32(pos, true);
  hi = view.getUint32(pos + 4, true);
  pos += 8;
}

function readDouble(end: number): number {
  if (end - pos < 8) truncated('a double', 8, end);
  const value = view.getFloat64(pos, true);
  pos += 8;
  return value;
}

/**
 * Buffer's native slicing methods without the argument handling of `toString(encoding, start, end)`, which
 * costs as much as the decoding itself for short strings. They are public methods of Buffer.prototype but
 * not in the type definitions; when absent (another runtime), `toString` is used.
 */
interface NativeSlices {
  utf8Slice(start: number, end: number): string;
  hexSlice(start: number, end: number): string;
}
const bufferPrototype = Buffer.prototype as Partial<NativeSlices>;
const HAS_NATIVE_SLICES = typeof bufferPrototype.utf8Slice === 'function' && typeof bufferPrototype.hexSlice === 'function';

function utf8(start: number, end: number): string {
  return HAS_NATIVE_SLICES ? (buf as Buffer & NativeSlices).utf8Slice(start, end) : buf.toString('utf8', start, end);
}

function hex(start: number, end: number): string {
  return HAS_NATIVE_SLICES ? (buf as Buffer & NativeSlices).hexSlice(start, end) : buf.toString('hex', start, end);
}

/**
 * Short strings (attribute keys, enum-like values, task ids) repeat from span to span, so they are looked up
 * in a small direct-mapped cache before being decoded: a slot is chosen from the length and five sampled
 * bytes, and a hit is confirmed by comparing every byte with the cached string's char codes, which is
 * cheaper than a call into the native UTF-8 decoder; equal strings also end up sharing one instance. Only
 * strings that decode one char per byte are cached, and a cached string holds only ASCII and U+FFFD (an
 * invalid byte), which no byte equals; so a confirmed hit is exactly the ASCII decoding of the bytes.
 * Collisions only cost a miss. The cache holds at most STRING_CACHE_SIZE strings of STRING_CACHE_MAX_BYTES.
 */
const STRING_CACHE_SIZE = 4096;
const STRING_CACHE_MAX_BYTES = 64;
const stringCache: string[] = new Array<string>(STRING_CACHE_SIZE).fill('');

function readString(end: number): string {
  const stop = readLength(end);
  const start = pos;
  pos = stop;
  const length = stop - start;
  if (length === 0) return '';
  if (length > STRING_CACHE_MAX_BYTES) return utf8(start, stop);
  const quarter = length >> 2;
  let hash =
    length ^
    ((buf[start] ?? 0) << 6) ^
    ((buf[stop - 1] ?? 0) << 12) ^
    ((buf[start + (length >> 1)] ?? 0) << 18) ^
    ((buf[start + quarter] ?? 0) << 1) ^
    ((buf[stop - 1 - quarter] ?? 0) << 23);
  hash = Math.imul(hash, 0x9e3779b1);
  const slot = hash >>> 20; // STRING_CACHE_SIZE = 2^12
  const cached = stringCache[slot] ?? '';
  if (cached.length === length) {
    let i = 0;
    while (i < length && cached.charCodeAt(i) === buf[start + i]) i++;
    if (i === length) return cached;
  }
  const decoded = utf8(start, stop);
  if (decoded.length === length) stringCache[slot] = decoded;
  return decoded;
}

function readBytes(end: number): Uint8Array {
  const stop = readLength(end);
  const out = new Uint8Array(stop - pos);
  out.set(buf.subarray(pos, stop));
  pos = stop;
  return out;
}

/** Reads a trace or span id: `size` bytes (or none) as lowercase hex; '' when absent or all zeroes. */
function readId(end: number, size: number, what: string): string {
  const stop = readLength(end);
  const start = pos;
  pos = stop;
  const length = stop - start;
  if (length === size) {
    for (let i = start; i < stop; i++) {
      if (buf[i] !== 0) return hex(start, stop);
    }
    return '';
  }
  if (length === 0) return '';
  return fail(`${what} must be ${size} bytes, got ${length} (ending at byte ${stop})`);
}

/** Reads a fixed64 as a decimal string. */
function readNanos(end: number): string {
  readFixed64(end);
  return uint64ToDecimal(lo, hi);
}

/** A known field arrived with an unexpected wire type, or an unknown field arrived: fail or skip. */
function otherField(t: number, end: number, fields: readonly (string | undefined)[], message: string): void {
  const field = t >>> 3;
  const wire = t & 7;
  const name = fields[field];
  if (name !== undefined) fail(`wrong wire type ${wire} for ${message}.${name} (field ${field}) at byte ${pos}`);
  skipField(wire, field, end, 0);
}

function skipField(wire: number, field: number, end: number, depth: number): void {
  switch (wire) {
    case WIRE_VARINT:
      readVarint64(end);
      return;
    case WIRE_I64:
      if (end - pos < 8) truncated('a fixed64', 8, end);
      pos += 8;
      return;
    case WIRE_LEN:
      pos = readLength(end);
      return;
    case WIRE_I32:
      if (end - pos < 4) truncated('a fixed32', 4, end);
      pos += 4;
      return;
    case WIRE_START_GROUP: {
      if (depth >= MAX_UNKNOWN_GROUP_DEPTH) fail(`unknown groups nested deeper than ${MAX_UNKNOWN_GROUP_DEPTH} at byte ${pos}`);
      for (;;) {
        const t = readTag(end);
        if ((t & 7) === WIRE_END_GROUP) {
          if (t >>> 3 !== field) fail(`end-group tag for field ${t >>> 3} closes group ${field} at byte ${pos}`);
          return;
        }
        skipField(t & 7, t >>> 3, end, depth + 1);
      }
    }
    case WIRE_END_GROUP:
      return fail(`unexpected end-group tag for field ${field} at byte ${pos}`);
    default:
      return fail(`invalid wire type ${wire} for field ${field} at byte ${pos}`);
  }
}

function decodeResourceSpans(end: number): OtlpResourceSpans {
  let resource: OtlpResource | undefined;
  const scopeSpans: OtlpScopeSpans[] = [];
  let schemaUrl = '';
  while (pos < end) {
    const t = readTag(end);
    switch (t) {
      case 10 /* 1:len */:
        resource = decodeResource(readLength(end), resource);
        break;
      case 18 /* 2:len */:
        scopeSpans.push(decodeScopeSpans(readLength(end)));
        break;
      case 26 /* 3:len */:
        schemaUrl = readString(end);
        break;
      default:
        otherField(t, end, RESOURCE_SPANS_FIELDS, 'ResourceSpans');
    }
  }
  const out: OtlpResourceSpans = { scopeSpans };
  if (resource !== undefined) out.resource = resource;
  if (schemaUrl !== '') out.schemaUrl = schemaUrl;
  return out;
}

/** Decodes a Resource; a repeated occurrence merges into the previous one, as protobuf requires. */
function decodeResource(end: number, into: OtlpResource | undefined): OtlpResource {
  const attributes = into?.attributes ?? [];
  let dropped = into?.droppedAttributesCount ?? 0;
  while (pos < end) {
    const t = readTag(end);
    switch (t) {
      case 10 /* 1:len */:
        attributes.push(decodeKeyValue(readLength(end), 0));
        break;
      case 16 /* 2:varint */:
        dropped = readVarint32(end);
        break;
      case 26 /* 3:len */: // entity_refs [Development]: not part of Tripline's model
        pos = readLength(end);
        break;
      default:
        otherField(t, end, RESOURCE_FIELDS, 'Resource');
    }
  }
  const out: OtlpResource = { attributes };
  if (dropped !== 0) out.droppedAttributesCount = dropped;
  return out;
}

function decodeScopeSpans(end: number): OtlpScopeSpans {
  let scope: OtlpScope | undefined;
  const spans: OtlpSpan[] = [];
  let schemaUrl = '';
  while (pos < end) {
    const t = readTag(end);
    switch (t) {
      case 18 /* 2:len */:
        spans.push(decodeSpan(readLength(end)));
        break;
      case 10 /* 1:len */:
        scope = decodeScope(readLength(end), scope);
        break;
      case 26 /* 3:len */:
        schemaUrl = readString(end);
        break;
      default:
        otherField(t, end, SCOPE_SPANS_FIELDS, 'ScopeSpans');
    }
  }
  const out: OtlpScopeSpans = { spans };
  if (scope !== undefined) out.scope = scope;
  if (schemaUrl !== '') out.schemaUrl = schemaUrl;
  return out;
}

function decodeScope(end: number, into: OtlpScope | undefined): OtlpScope {
  let name = into?.name ?? '';
  let version = into?.version ?? '';
  const attributes = into?.attributes ?? [];
  let dropped = into?.droppedAttributesCount ?? 0;
  while (pos < end) {
    const t = readTag(end);
    switch (t) {
      case 10 /* 1:len */:
        name = readString(end);
        break;
      case 18 /* 2:len */:
        version = readString(end);
        break;
      case 26 /* 3:len */:
        attributes.push(decodeKeyValue(readLength(end), 0));
        break;
      case 32 /* 4:varint */:
        dropped = readVarint32(end);
        break;
      default:
        otherField(t, end, SCOPE_FIELDS, 'InstrumentationScope');
    }
  }
  const out: OtlpScope = { name, attributes };
  if (version !== '') out.version = version;
  if (dropped !== 0) out.droppedAttributesCount = dropped;
  return out;
}

function decodeSpan(end: number): OtlpSpan {
  spendObject(OBJECT_COST.span);
  let traceId = '';
  let spanId = '';
  let traceState = '';
  let parentSpanId = '';
  let flags = 0;
  let name = '';
  let kind = 0;
  let startTimeUnixNano = '0';
  let endTimeUnixNano = '0';
  const attributes: OtlpKeyValue[] = [];
  let droppedAttributes = 0;
  const events: OtlpSpanEvent[] = [];
  let droppedEvents = 0;
  const links: OtlpSpanLink[] = [];
  let droppedLinks = 0;
  let status: OtlpStatus | undefined;
  while (pos < end) {
    const t = readTag(end);
    switch (t) {
      case 74 /* 9:len */:
        attributes.push(decodeKeyValue(readLength(end), 0));
        break;
      case 10 /* 1:len */:
        traceId = readId(end, 16, 'Span.trace_id');
        break;
      case 18 /* 2:len */:
        spanId = readId(end, 8, 'Span.span_id');
        break;
      case 26 /* 3:len */:
        traceState = readString(end);
        break;
      case 34 /* 4:len */:
        parentSpanId = readId(end, 8, 'Span.parent_span_id');
        break;
      case 133 /* 16:i32 */:
        flags = readFixed32(end);
        break;
      case 42 /* 5:len */:
        name = readString(end);
        break;
      case 48 /* 6:varint */:
        kind = readVarint32(end) | 0;
        break;
      case 57 /* 7:i64 */:
        startTimeUnixNano = readNanos(end);
        break;
      case 65 /* 8:i64 */:
        endTimeUnixNano = readNanos(end);
        break;
      case 80 /* 10:varint */:
        droppedAttributes = readVarint32(end);
        break;
      case 90 /* 11:len */:
        events.push(decodeEvent(readLength(end)));
        break;
      case 96 /* 12:varint */:
        droppedEvents = readVarint32(end);
        break;
      case 106 /* 13:len */:
        links.push(decodeLink(readLength(end)));
        break;
      case 112 /* 14:varint */:
        droppedLinks = readVarint32(end);
        break;
      case 122 /* 15:len */:
        status = decodeStatus(readLength(end), status);
        break;
      default:
        otherField(t, end, SPAN_FIELDS, 'Span');
    }
  }
  const span: OtlpSpan = {
    traceId,
    spanId,
    parentSpanId,
    name,
    kind,
    startTimeUnixNano,
    endTimeUnixNano,
    attributes,
    events,
    links,
  };
  if (traceState !== '') span.traceState = traceState;
  if (flags !== 0) span.flags = flags;
  if (droppedAttributes !== 0) span.droppedAttributesCount = droppedAttributes;
  if (droppedEvents !== 0) span.droppedEventsCount = droppedEvents;
  if (droppedLinks !== 0) span.droppedLinksCount = droppedLinks;
  if (status !== undefined) span.status = status;
  return span;
}

function decodeEvent(end: number): OtlpSpanEvent {
  spendObject(OBJECT_COST.event);
  let timeUnixNano = '0';
  let name = '';
  const attributes: OtlpKeyValue[] = [];
  let dropped = 0;
  while (pos < end) {
    const t = readTag(end);
    switch (t) {
      case 9 /* 1:i64 */:
        timeUnixNano = readNanos(end);
        break;
      case 18 /* 2:len */:
        name = readString(end);
        break;
      case 26 /* 3:len */:
        attributes.push(decodeKeyValue(readLength(end), 0));
        break;
      case 32 /* 4:varint */:
        dropped = readVarint32(end);
        break;
      default:
        otherField(t, end, EVENT_FIELDS, 'Span.Event');
    }
  }
  const event: OtlpSpanEvent = { timeUnixNano, name, attributes };
  if (dropped !== 0) event.droppedAttributesCount = dropped;
  return event;
}

function decodeLink(end: number): OtlpSpanLink {
  spendObject(OBJECT_COST.link);
  let traceId = '';
  let spanId = '';
  let traceState = '';
  const attributes: OtlpKeyValue[] = [];
  let dropped = 0;
  let flags = 0;
  while (pos < end) {
    const t = readTag(end);
    switch (t) {
      case 10 /* 1:len */:
        traceId = readId(end, 16, 'Span.Link.trace_id');
        break;
      case 18 /* 2:len */:
        spanId = readId(end, 8, 'Span.Link.span_id');
        break;
      case 26 /* 3:len */:
        traceState = readString(end);
        break;
      case 34 /* 4:len */:
        attributes.push(decodeKeyValue(readLength(end), 0));
        break;
      case 40 /* 5:varint */:
        dropped = readVarint32(end);
        break;
      case 53 /* 6:i32 */:
        flags = readFixed32(end);
        break;
      default:
        otherField(t, end, LINK_FIELDS, 'Span.Link');
    }
  }
  const link: OtlpSpanLink = { traceId, spanId, attributes };
  if (traceState !== '') link.traceState = traceState;
  if (dropped !== 0) link.droppedAttributesCount = dropped;
  if (flags !== 0) link.flags = flags;
  return link;
}

function decodeStatus(end: number, into: OtlpStatus | undefined): OtlpStatus {
  let code = into?.code ?? 0;
  let message = into?.message ?? '';
  while (pos < end) {
    const t = readTag(end);
    switch (t) {
      case 24 /* 3:varint */:
        code = readVarint32(end) | 0;
        break;
      case 18 /* 2:len */:
        message = readString(end);
        break;
      default:
        otherField(t, end, STATUS_FIELDS, 'Status');
    }
  }
  const status: OtlpStatus = { code };
  if (message !== '') status.message = message;
  return status;
}

/** `depth` is the depth of the AnyValue that holds this pair (0 for attributes). */
function decodeKeyValue(end: number, depth: number): OtlpKeyValue {
  spendObject(OBJECT_COST.keyValue);
  let key = '';
  let value: OtlpAnyValue | undefined;
  while (pos < end) {
    const t = readTag(end);
    switch (t) {
      case 10 /* 1:len */:
        key = readString(end);
        break;
      case 18 /* 2:len */:
        value = decodeAnyValue(readLength(end), depth + 1, value);
        break;
      case 24 /* 3:varint */: // key_strindex: Profiling only; ignored for traces
        readVarint64(end);
        break;
      default:
        otherField(t, end, KEY_VALUE_FIELDS, 'KeyValue');
    }
  }
  return value === undefined ? { key } : { key, value };
}

function decodeAnyValue(end: number, depth: number, into: OtlpAnyValue | undefined): OtlpAnyValue {
  if (depth > 0) spendObject(OBJECT_COST.nestedValue);
  if (depth > MAX_ANY_VALUE_DEPTH) fail(`AnyValue nested deeper than ${MAX_ANY_VALUE_DEPTH} levels at byte ${pos}`);
  let value = into;
  while (pos < end) {
    const t = readTag(end);
    switch (t) {
      case 10 /* 1:len */:
        value = { stringValue: readString(end) };
        break;
      case 24 /* 3:varint */:
        readVarint64(end);
        value = { intValue: int64Value(lo, hi) };
        break;
      case 16 /* 2:varint */:
        readVarint64(end);
        value = { boolValue: (lo | hi) !== 0 };
        break;
      case 33 /* 4:i64 */:
        value = { doubleValue: readDouble(end) };
        break;
      case 42 /* 5:len */: {
        const stop = readLength(end);
        // A repeated array_value merges into the previous one (protobuf semantics for a message field).
        const values = value?.arrayValue?.values ?? [];
        while (pos < stop) {
          const u = readTag(stop);
          if (u === 10 /* 1:len */) values.push(decodeAnyValue(readLength(stop), depth + 1, undefined));
          else otherField(u, stop, LIST_FIELDS, 'ArrayValue');
        }
        value = { arrayValue: { values } };
        break;
      }
      case 50 /* 6:len */: {
        const stop = readLength(end);
        const values = value?.kvlistValue?.values ?? [];
        while (pos < stop) {
          const u = readTag(stop);
          if (u === 10 /* 1:len */) values.push(decodeKeyValue(readLength(stop), depth));
          else otherField(u, stop, LIST_FIELDS, 'KeyValueList');
        }
        value = { kvlistValue: { values } };
        break;
      }
      case 58 /* 7:len */:
        value = { bytesValue: readBytes(end) };
        break;
      case 64 /* 8:varint */: // string_value_strindex: Profiling only; the value counts as empty for traces
        readVarint64(end);
        value = {};
        break;
      default:
        otherField(t, end, ANY_VALUE_FIELDS, 'AnyValue');
    }
  }
  return value ?? {};
}

// ------------------------------------------------------------------------------------------------------------
// 64-bit integers without BigInt on the common paths

const TWO_POW_32 = 4294967296;

/** Decimal string of the unsigned 64-bit integer hi * 2^32 + lo (both halves unsigned 32-bit). */
export function uint64ToDecimal(low: number, high: number): string {
  if (high < 0x200000) return String(high * TWO_POW_32 + low); // < 2^53: exact as a double
  // 2^32 = 4294 * 10^6 + 967296, so the value is (high * 4294) * 10^6 + (high * 967296 + low), and both
  // products stay below 2^53.
  const bottom = high * 967296 + low;
  const top = high * 4294 + Math.floor(bottom / 1e6);
  const rest = bottom % 1e6;
  return String(top) + String(rest).padStart(6, '0');
}

/** An int64 (two's complement halves) as a number when it is a safe integer, else as a decimal string. */
function int64Value(low: number, high: number): number | string {
  const signedHigh = high | 0;
  if (signedHigh >= -0x200000 && signedHigh < 0x200000) {
    const n = signedHigh * TWO_POW_32 + low;
    if (Number.isSafeInteger(n)) return n;
  }
  return BigInt.asIntN(64, (BigInt(high) << 32n) | BigInt(low)).toString();
}

// ------------------------------------------------------------------------------------------------------------
// Protobuf encoding (protobufjs Writer; field-number order, defaults left out, as protoc-generated code does)

type Writer = protobuf.Writer;

/**
 * One writer serves every encode (encoding is synchronous), so that its buffer, once grown to the usual
 * request size, is not grown again from 128 bytes for each request; a buffer grown past this size is let go.
 */
const MAX_RETAINED_WRITER_BYTES = 4 * 1024 * 1024;
let writer: Writer = protobuf.Writer.create();

function writeResourceSpans(w: Writer, rs: OtlpResourceSpans): void {
  if (rs.resource !== undefined) {
    w.uint32(10 /* 1:len */).fork();
    writeAttributes(w, 1, rs.resource.attributes);
    if (rs.resource.droppedAttributesCount) w.uint32(16 /* 2:varint */).uint32(rs.resource.droppedAttributesCount);
    w.ldelim();
  }
  for (const ss of rs.scopeSpans) {
    w.uint32(18 /* 2:len */).fork();
    writeScopeSpans(w, ss);
    w.ldelim();
  }
  if (rs.schemaUrl) w.uint32(26 /* 3:len */).string(rs.schemaUrl);
}

function writeScopeSpans(w: Writer, ss: OtlpScopeSpans): void {
  const scope = ss.scope;
  if (scope !== undefined) {
    w.uint32(10 /* 1:len */).fork();
    if (scope.name) w.uint32(10 /* 1:len */).string(scope.name);
    if (scope.version) w.uint32(18 /* 2:len */).string(scope.version);
    writeAttributes(w, 3, scope.attributes);
    if (scope.droppedAttributesCount) w.uint32(32 /* 4:varint */).uint32(scope.droppedAttributesCount);
    w.ldelim();
  }
  for (const span of ss.spans) {
    w.uint32(18 /* 2:len */).fork();
    writeSpan(w, span);
    w.ldelim();
  }
  if (ss.schemaUrl) w.uint32(26 /* 3:len */).string(ss.schemaUrl);
}

function writeSpan(w: Writer, span: OtlpSpan): void {
  writeId(w, 1, span.traceId, 16);
  writeId(w, 2, span.spanId, 8);
  if (span.traceState) w.uint32(26 /* 3:len */).string(span.traceState);
  writeId(w, 4, span.parentSpanId, 8);
  if (span.name) w.uint32(42 /* 5:len */).string(span.name);
  if (span.kind) w.uint32(48 /* 6:varint */).int32(span.kind);
  writeNanos(w, 7, span.startTimeUnixNano);
  writeNanos(w, 8, span.endTimeUnixNano);
  writeAttributes(w, 9, span.attributes);
  if (span.droppedAttributesCount) w.uint32(80 /* 10:varint */).uint32(span.droppedAttributesCount);
  for (const event of span.events) {
    w.uint32(90 /* 11:len */).fork();
    writeNanos(w, 1, event.timeUnixNano);
    if (event.name) w.uint32(18 /* 2:len */).string(event.name);
    writeAttributes(w, 3, event.attributes);
    if (event.droppedAttributesCount) w.uint32(32 /* 4:varint */).uint32(event.droppedAttributesCount);
    w.ldelim();
  }
  if (span.droppedEventsCount) w.uint32(96 /* 12:varint */).uint32(span.droppedEventsCount);
  for (const link of span.links) {
    w.uint32(106 /* 13:len */).fork();
    writeId(w, 1, link.traceId, 16);
    writeId(w, 2, link.spanId, 8);
    if (link.traceState) w.uint32(26 /* 3:len */).string(link.traceState);
    writeAttributes(w, 4, link.attributes);
    if (link.droppedAttributesCount) w.uint32(40 /* 5:varint */).uint32(link.droppedAttributesCount);
    if (link.flags) w.uint32(53 /* 6:i32 */).fixed32(link.flags);
    w.ldelim();
  }
  if (span.droppedLinksCount) w.uint32(112 /* 14:varint */).uint32(span.droppedLinksCount);
  if (span.status !== undefined) {
    w.uint32(122 /* 15:len */).fork();
    if (span.status.message) w.uint32(18 /* 2:len */).string(span.status.message);
    if (span.status.code) w.uint32(24 /* 3:varint */).int32(span.status.code);
    w.ldelim();
  }
  if (span.flags) w.uint32(133 /* 16:i32 */).fixed32(span.flags);
}

function writeAttributes(w: Writer, field: number, attributes: readonly OtlpKeyValue[]): void {
  const t = tag(field, WIRE_LEN);
  for (const kv of attributes) {
    w.uint32(t).fork();
    writeKeyValueBody(w, kv);
    w.ldelim();
  }
}

function writeKeyValueBody(w: Writer, kv: OtlpKeyValue): void {
  if (kv.key) w.uint32(10 /* 1:len */).string(kv.key);
  if (kv.value !== undefined) {
    w.uint32(18 /* 2:len */).fork();
    writeAnyValueBody(w, kv.value);
    w.ldelim();
  }
}

function writeAnyValueBody(w: Writer, v: OtlpAnyValue): void {
  if (v.stringValue !== undefined) w.uint32(10 /* 1:len */).string(v.stringValue);
  else if (v.boolValue !== undefined) w.uint32(16 /* 2:varint */).bool(v.boolValue);
  else if (v.intValue !== undefined) writeInt64(w, v.intValue);
  else if (v.doubleValue !== undefined) w.uint32(33 /* 4:i64 */).double(v.doubleValue);
  else if (v.arrayValue !== undefined) {
    w.uint32(42 /* 5:len */).fork();
    for (const item of v.arrayValue.values) {
      w.uint32(10 /* 1:len */).fork();
      writeAnyValueBody(w, item);
      w.ldelim();
    }
    w.ldelim();
  } else if (v.kvlistValue !== undefined) {
    w.uint32(50 /* 6:len */).fork();
    writeAttributes(w, 1, v.kvlistValue.values);
    w.ldelim();
  } else if (v.bytesValue !== undefined) w.uint32(58 /* 7:len */).bytes(v.bytesValue);
}

function writeInt64(w: Writer, value: number | string): void {
  w.uint32(24 /* 3:varint */);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new TypeError(`intValue ${value} is not a safe integer; pass larger values as decimal strings`);
    w.int64(value);
    return;
  }
  const big = parseDecimalBigInt(value, 'intValue');
  if (big < INT64_MIN || big >= INT64_LIMIT) throw new TypeError(`intValue ${value} is outside the int64 range`);
  w.int64(big.toString()); // protobufjs parses decimal strings with long.js
}

const DIGITS = /^\d+$/;

function writeNanos(w: Writer, field: number, value: string): void {
  if (value === '0' || value === '') return;
  if (!DIGITS.test(value) || value.length > 20) throw new TypeError(`timestamp ${JSON.stringify(value)} is not an unsigned decimal integer`);
  let low: number;
  let high: number;
  if (value.length <= 15) {
    const n = Number(value);
    low = n % TWO_POW_32;
    high = (n - low) / TWO_POW_32;
  } else {
    // value = a * 10^9 + b with a < 2^37 and b < 10^9; a = aHigh * 2^16 + aLow. Every product below stays
    // under 2^53, so the halves come out exact without BigInt.
    const a = Number(value.slice(0, -9));
    const b = Number(value.slice(-9));
    const aLow = a % 65536;
    const x = ((a - aLow) / 65536) * 1e9; // aHigh * 10^9, to be multiplied by 2^16
    const y = aLow * 1e9 + b;
    const xLow = x % 65536;
    const lowSum = xLow * 65536 + (y % TWO_POW_32);
    low = lowSum % TWO_POW_32;
    high = (x - xLow) / 65536 + Math.floor(y / TWO_POW_32) + (lowSum - low) / TWO_POW_32;
    if (high >= TWO_POW_32) throw new TypeError(`timestamp ${value} is outside the uint64 range`);
  }
  if (low === 0 && high === 0) return;
  w.uint32(tag(field, WIRE_I64)).fixed32(low).fixed32(high);
}

function parseDecimalBigInt(value: string, what: string): bigint {
  if (!/^-?\d+$/.test(value)) throw new TypeError(`${what} ${JSON.stringify(value)} is not a decimal integer`);
  return BigInt(value);
}

/** Nibble value of each ASCII hex digit, -1 for other characters. */
const HEX_NIBBLE = new Int8Array(128).fill(-1);
for (let c = 0; c < 10; c++) HEX_NIBBLE[48 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX_NIBBLE[97 + c] = 10 + c;
  HEX_NIBBLE[65 + c] = 10 + c;
}
/** Scratch space for one id (the writer copies it at once). */
const ID_BYTES: Record<number, Uint8Array> = { 8: new Uint8Array(8), 16: new Uint8Array(16) };

function writeId(w: Writer, field: number, id: string, size: 8 | 16): void {
  if (id === '') return;
  const bytes = ID_BYTES[size];
  if (id.length !== size * 2 || bytes === undefined) throw new TypeError(`id ${JSON.stringify(id)} must be ${size * 2} hex characters (or '' when absent)`);
  for (let i = 0; i < size; i++) {
    const high = HEX_NIBBLE[id.charCodeAt(2 * i)] ?? -1;
    const low = HEX_NIBBLE[id.charCodeAt(2 * i + 1)] ?? -1;
    if ((high | low) < 0) throw new TypeError(`id ${JSON.stringify(id)} must be hex`);
    bytes[i] = (high << 4) | low;
  }
  w.uint32(tag(field, WIRE_LEN)).uint32(size).raw(bytes);
}

// ------------------------------------------------------------------------------------------------------------
// OTLP/JSON decoding: the protobuf JSON mapping with OTLP's exceptions (hex ids, integer enums, int64 as
// strings or numbers). Field names are accepted in lowerCamelCase and in the proto's snake_case; unknown
// fields are ignored; `null` means "absent".

type JsonObject = Record<string, unknown>;

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

function decodeJsonRequest(body: Uint8Array): OtlpTraceRequest {
  let text: string;
  try {
    text = utf8Strict.decode(body);
  } catch {
    return fail('the body is not valid UTF-8');
  }
  if (text.trim() === '') return { resourceSpans: [] };
  // Every span, event, link and attribute is a JSON object: count them before JSON.parse builds them. An
  // attribute takes at least ~20 bytes of JSON ({"key":"k","value":{…}}), so one object per 8 bytes is generous.
  let objects = 0;
  for (let i = 0; i < body.length; i += 1) if (body[i] === 0x7b /* { */) objects += 1;
  if (objects * OBJECT_COST.keyValue > objectBudgetFor(body)) {
    throw new TriplineError('OTLP_PAYLOAD_TOO_LARGE', 'the request holds more JSON objects than its size can encode sensibly; send fewer spans per request');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return fail(`the body is not valid JSON (${messageOf(error)})`);
  }
  const root = jsonObject(parsed, 'the request');
  let resourceSpans: OtlpResourceSpans[] = [];
  for (const key in root) {
    if (key === 'resourceSpans' || key === 'resource_spans') resourceSpans = jsonArray(root[key], key, jsonResourceSpans);
  }
  return { resourceSpans };
}

function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return typeof value === 'object' ? 'an object' : typeof value;
}

function fieldError(field: string, message: string): DecodeError {
  const error = new DecodeError(message);
  error.path.push(field);
  return error;
}

function jsonObject(value: unknown, what: string): JsonObject {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as JsonObject;
  return fail(`${what} must be a JSON object, got ${describeJson(value)}`);
}

/** A nested message field: an object, or absent when null. */
function jsonMessage(value: unknown, field: string): JsonObject | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'object' && !Array.isArray(value)) return value as JsonObject;
  throw fieldError(field, `expected an object, got ${describeJson(value)}`);
}

function jsonArray<T>(value: unknown, field: string, item: (element: unknown) => T): T[] {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) throw fieldError(field, `expected an array, got ${describeJson(value)}`);
  const out: T[] = [];
  for (let i = 0; i < value.length; i++) {
    try {
      out.push(item(value[i]));
    } catch (error) {
      if (error instanceof DecodeError) error.path.unshift(`${field}[${i}]`);
      throw error;
    }
  }
  return out;
}

/** Runs `decode` for a nested message, prefixing the field to the path of any error. */
function within<T>(field: string, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    if (error instanceof DecodeError) error.path.unshift(field);
    throw error;
  }
}

function jsonString(value: unknown, field: string): string {
  // JSON escapes can spell lone UTF-16 surrogates ("\ud800") that no UTF-8 text holds; they become U+FFFD, as
  // invalid UTF-8 does in protobuf strings, so that every decoded string can be stored (ClickHouse refuses a
  // JSON insert holding one, and a write that can never succeed would block the writes after it).
  if (typeof value === 'string') return value.isWellFormed() ? value : value.toWellFormed();
  if (value === null) return '';
  throw fieldError(field, `expected a string, got ${describeJson(value)}`);
}

const DECIMAL = /^-?\d+$/;
const UNSIGNED_DECIMAL = /^\d+$/;

/** uint32 (counts, flags): a number or a decimal string. */
function jsonUint32(value: unknown, field: string): number {
  if (value === null) return 0;
  const n = typeof value === 'string' && UNSIGNED_DECIMAL.test(value) ? Number(value) : value;
  if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff) return n;
  throw fieldError(field, `expected an unsigned 32-bit integer, got ${describeJson(value)}`);
}

const UINT64_MAX_DECIMAL = '18446744073709551615';
const INT64_MIN = -(2n ** 63n);
const INT64_LIMIT = 2n ** 63n;

/** fixed64 nanoseconds: a decimal string (as OTLP/JSON writes them) or a number; returns a decimal string. */
function jsonNanos(value: unknown, field: string): string {
  if (value === null) return '0';
  if (typeof value === 'string' && UNSIGNED_DECIMAL.test(value)) {
    const digits = value.length > 1 && value.charCodeAt(0) === 48 ? value.replace(/^0+(?=\d)/, '') : value;
    if (digits.length < 20 || (digits.length === 20 && digits <= UINT64_MAX_DECIMAL)) return digits;
  } else if (typeof value === 'number' && Number.isInteger(value) && value >= 0) {
    if (value <= Number.MAX_SAFE_INTEGER) return String(value);
    if (value < 2 ** 64) return BigInt(value).toString();
  }
  throw fieldError(field, `expected an unsigned 64-bit integer (decimal string), got ${describeJson(value)}`);
}

/** int64: a decimal string or a number; a number when safe, else a decimal string. */
function jsonInt64(value: unknown, field: string): number | string {
  if (typeof value === 'string' && DECIMAL.test(value)) {
    if (value.length <= 15) return Number(value) + 0; // + 0 turns -0 into 0
    // No int64 has more than 19 digits: longer input (after leading zeros) is out of range without parsing it
    // (BigInt of a 16 MB digit string takes seconds).
    const digits = value.replace(/^(-?)0+(?=\d)/, '$1');
    const big = digits.length <= 20 ? BigInt(digits) : INT64_LIMIT;
    if (big >= INT64_MIN && big < INT64_LIMIT) {
      const n = Number(big);
      return Number.isSafeInteger(n) ? n : big.toString();
    }
  } else if (typeof value === 'number' && Number.isInteger(value)) {
    if (Number.isSafeInteger(value)) return value + 0;
    if (value >= -(2 ** 63) && value < 2 ** 63) return BigInt(value).toString();
  }
  throw fieldError(field, `expected a signed 64-bit integer, got ${describeJson(value)}`);
}

function jsonDouble(value: unknown, field: string): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') {
    if (value === 'NaN') return Number.NaN;
    if (value === 'Infinity') return Number.POSITIVE_INFINITY;
    if (value === '-Infinity') return Number.NEGATIVE_INFINITY;
    const n = Number(value);
    if (value.trim() !== '' && Number.isFinite(n)) return n;
  }
  throw fieldError(field, `expected a number, got ${describeJson(value)}`);
}

function jsonBool(value: unknown, field: string): boolean {
  if (typeof value === 'boolean') return value;
  throw fieldError(field, `expected true or false, got ${describeJson(value)}`);
}

/** An enum: its number, or its name from `names` (names are accepted as the protobuf JSON mapping allows). */
function jsonEnum(value: unknown, field: string, names: Readonly<Record<string, number>>): number {
  if (value === null) return 0;
  if (typeof value === 'number' && Number.isInteger(value) && value >= -0x80000000 && value <= 0x7fffffff) return value;
  if (typeof value === 'string') {
    const named = names[value];
    if (named !== undefined && Object.hasOwn(names, value)) return named;
    if (DECIMAL.test(value)) return jsonEnum(Number(value), field, names);
  }
  throw fieldError(field, `expected an enum number, got ${describeJson(value)}`);
}

const SPAN_KIND_NAMES: Readonly<Record<string, number>> = {
  SPAN_KIND_UNSPECIFIED: 0,
  SPAN_KIND_INTERNAL: 1,
  SPAN_KIND_SERVER: 2,
  SPAN_KIND_CLIENT: 3,
  SPAN_KIND_PRODUCER: 4,
  SPAN_KIND_CONSUMER: 5,
};
const STATUS_CODE_NAMES: Readonly<Record<string, number>> = { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 };

const HEX_CHARS = /^[0-9a-fA-F]*$/;
const ZERO_ID = /^0*$/;

/** A hex id of `size` bytes; '' when empty or all zeroes (as in protobuf). */
function jsonId(value: unknown, field: string, size: number): string {
  if (value === null) return '';
  if (typeof value !== 'string') throw fieldError(field, `expected a hex string, got ${describeJson(value)}`);
  if (value === '') return '';
  if (value.length !== size * 2) {
    throw fieldError(field, `expected ${size * 2} hex characters (${size} bytes), got ${value.length} characters`);
  }
  if (!HEX_CHARS.test(value)) throw fieldError(field, `expected hex characters, got ${describeJson(value)}`);
  return ZERO_ID.test(value) ? '' : value.toLowerCase();
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;
const BASE64URL = /^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}(?:==)?|[A-Za-z0-9_-]{3}=?)?$/;

function jsonBytes(value: unknown, field: string): Uint8Array {
  if (typeof value === 'string' && (BASE64.test(value) || BASE64URL.test(value))) {
    const decoded = Buffer.from(value, 'base64');
    return new Uint8Array(decoded.buffer.slice(decoded.byteOffset, decoded.byteOffset + decoded.byteLength));
  }
  throw fieldError(field, `expected base64, got ${describeJson(value)}`);
}

function jsonResourceSpans(element: unknown): OtlpResourceSpans {
  const o = jsonObject(element, 'a ResourceSpans');
  let resource: OtlpResource | undefined;
  let scopeSpans: OtlpScopeSpans[] = [];
  let schemaUrl = '';
  for (const key in o) {
    const v = o[key];
    switch (key) {
      case 'resource': {
        const r = jsonMessage(v, key);
        if (r !== undefined) resource = within(key, () => jsonResource(r));
        break;
      }
      case 'scopeSpans':
      case 'scope_spans':
        scopeSpans = jsonArray(v, key, jsonScopeSpans);
        break;
      case 'schemaUrl':
      case 'schema_url':
        schemaUrl = jsonString(v, key);
        break;
    }
  }
  const out: OtlpResourceSpans = { scopeSpans };
  if (resource !== undefined) out.resource = resource;
  if (schemaUrl !== '') out.schemaUrl = schemaUrl;
  return out;
}

function jsonResource(o: JsonObject): OtlpResource {
  let attributes: OtlpKeyValue[] = [];
  let dropped = 0;
  for (const key in o) {
    const v = o[key];
    switch (key) {
      case 'attributes':
        attributes = jsonArray(v, key, jsonAttribute);
        break;
      case 'droppedAttributesCount':
      case 'dropped_attributes_count':
        dropped = jsonUint32(v, key);
        break;
    }
  }
  const out: OtlpResource = { attributes };
  if (dropped !== 0) out.droppedAttributesCount = dropped;
  return out;
}

function jsonScopeSpans(element: unknown): OtlpScopeSpans {
  const o = jsonObject(element, 'a ScopeSpans');
  let scope: OtlpScope | undefined;
  let spans: OtlpSpan[] = [];
  let schemaUrl = '';
  for (const key in o) {
    const v = o[key];
    switch (key) {
      case 'scope': {
        const s = jsonMessage(v, key);
        if (s !== undefined) scope = within(key, () => jsonScope(s));
        break;
      }
      case 'spans':
        spans = jsonArray(v, key, jsonSpan);
        break;
      case 'schemaUrl':
      case 'schema_url':
        schemaUrl = jsonString(v, key);
        break;
    }
  }
  const out: OtlpScopeSpans = { spans };
  if (scope !== undefined) out.scope = scope;
  if (schemaUrl !== '') out.schemaUrl = schemaUrl;
  return out;
}

function jsonScope(o: JsonObject): OtlpScope {
  let name = '';
  let version = '';
  let attributes: OtlpKeyValue[] = [];
  let dropped = 0;
  for (const key in o) {
    const v = o[key];
    switch (key) {
      case 'name':
        name = jsonString(v, key);
        break;
      case 'version':
        version = jsonString(v, key);
        break;
      case 'attributes':
        attributes = jsonArray(v, key, jsonAttribute);
        break;
      case 'droppedAttributesCount':
      case 'dropped_attributes_count':
        dropped = jsonUint32(v, key);
        break;
    }
  }
  const out: OtlpScope = { name, attributes };
  if (version !== '') out.version = version;
  if (dropped !== 0) out.droppedAttributesCount = dropped;
  return out;
}

function jsonSpan(element: unknown): OtlpSpan {
  const o = jsonObject(element, 'a Span');
  let traceId = '';
  let spanId = '';
  let traceState = '';
  let parentSpanId = '';
  let flags = 0;
  let name = '';
  let kind = 0;
  let startTimeUnixNano = '0';
  let endTimeUnixNano = '0';
  let attributes: OtlpKeyValue[] = [];
  let droppedAttributes = 0;
  let events: OtlpSpanEvent[] = [];
  let droppedEvents = 0;
  let links: OtlpSpanLink[] = [];
  let droppedLinks = 0;
  let status: OtlpStatus | undefined;
  for (const key in o) {
    const v = o[key];
    switch (key) {
      case 'traceId':
      case 'trace_id':
        traceId = jsonId(v, key, 16);
        break;
      case 'spanId':
      case 'span_id':
        spanId = jsonId(v, key, 8);
        break;
      case 'traceState':
      case 'trace_state':
        traceState = jsonString(v, key);
        break;
      case 'parentSpanId':
      case 'parent_span_id':
        parentSpanId = jsonId(v, key, 8);
        break;
      case 'flags':
        flags = jsonUint32(v, key);
        break;
      case 'name':
        name = jsonString(v, key);
        break;
      case 'kind':
        kind = jsonEnum(v, key, SPAN_KIND_NAMES);
        break;
      case 'startTimeUnixNano':
      case 'start_time_unix_nano':
        startTimeUnixNano = jsonNanos(v, key);
        break;
      case 'endTimeUnixNano':
      case 'end_time_unix_nano':
        endTimeUnixNano = jsonNanos(v, key);
        break;
      case 'attributes':
        attributes = jsonArray(v, key, jsonAttribute);
        break;
      case 'droppedAttributesCount':
      case 'dropped_attributes_count':
        droppedAttributes = jsonUint32(v, key);
        break;
      case 'events':
        events = jsonArray(v, key, jsonEvent);
        break;
      case 'droppedEventsCount':
      case 'dropped_events_count':
        droppedEvents = jsonUint32(v, key);
        break;
      case 'links':
        links = jsonArray(v, key, jsonLink);
        break;
      case 'droppedLinksCount':
      case 'dropped_links_count':
        droppedLinks = jsonUint32(v, key);
        break;
      case 'status': {
        const s = jsonMessage(v, key);
        if (s !== undefined) status = within(key, () => jsonStatus(s));
        break;
      }
    }
  }
  const span: OtlpSpan = {
    traceId,
    spanId,
    parentSpanId,
    name,
    kind,
    startTimeUnixNano,
    endTimeUnixNano,
    attributes,
    events,
    links,
  };
  if (traceState !== '') span.traceState = traceState;
  if (flags !== 0) span.flags = flags;
  if (droppedAttributes !== 0) span.droppedAttributesCount = droppedAttributes;
  if (droppedEvents !== 0) span.droppedEventsCount = droppedEvents;
  if (droppedLinks !== 0) span.droppedLinksCount = droppedLinks;
  if (status !== undefined) span.status = status;
  return span;
}

function jsonEvent(element: unknown): OtlpSpanEvent {
  const o = jsonObject(element, 'a Span.Event');
  let timeUnixNano = '0';
  let name = '';
  let attributes: OtlpKeyValue[] = [];
  let dropped = 0;
  for (const key in o) {
    const v = o[key];
    switch (key) {
      case 'timeUnixNano':
      case 'time_unix_nano':
        timeUnixNano = jsonNanos(v, key);
        break;
      case 'name':
        name = jsonString(v, key);
        break;
      case 'attributes':
        attributes = jsonArray(v, key, jsonAttribute);
        break;
      case 'droppedAttributesCount':
      case 'dropped_attributes_count':
        dropped = jsonUint32(v, key);
        break;
    }
  }
  const event: OtlpSpanEvent = { timeUnixNano, name, attributes };
  if (dropped !== 0) event.droppedAttributesCount = dropped;
  return event;
}

function jsonLink(element: unknown): OtlpSpanLink {
  const o = jsonObject(element, 'a Span.Link');
  let traceId = '';
  let spanId = '';
  let traceState = '';
  let attributes: OtlpKeyValue[] = [];
  let dropped = 0;
  let flags = 0;
  for (const key in o) {
    const v = o[key];
    switch (key) {
      case 'traceId':
      case 'trace_id':
        traceId = jsonId(v, key, 16);
        break;
      case 'spanId':
      case 'span_id':
        spanId = jsonId(v, key, 8);
        break;
      case 'traceState':
      case 'trace_state':
        traceState = jsonString(v, key);
        break;
      case 'attributes':
        attributes = jsonArray(v, key, jsonAttribute);
        break;
      case 'droppedAttributesCount':
      case 'dropped_attributes_count':
        dropped = jsonUint32(v, key);
        break;
      case 'flags':
        flags = jsonUint32(v, key);
        break;
    }
  }
  const link: OtlpSpanLink = { traceId, spanId, attributes };
  if (traceState !== '') link.traceState = traceState;
  if (dropped !== 0) link.droppedAttributesCount = dropped;
  if (flags !== 0) link.flags = flags;
  return link;
}

function jsonStatus(o: JsonObject): OtlpStatus {
  let code = 0;
  let message = '';
  for (const key in o) {
    const v = o[key];
    if (key === 'code') code = jsonEnum(v, key, STATUS_CODE_NAMES);
    else if (key === 'message') message = jsonString(v, key);
  }
  const status: OtlpStatus = { code };
  if (message !== '') status.message = message;
  return status;
}

function jsonAttribute(element: unknown): OtlpKeyValue {
  return jsonKeyValue(element, 0);
}

/** `depth` is the depth of the AnyValue that holds this pair (0 for attributes). */
function jsonKeyValue(element: unknown, depth: number): OtlpKeyValue {
  const o = jsonObject(element, 'a KeyValue');
  let key = '';
  let value: OtlpAnyValue | undefined;
  for (const k in o) {
    const v = o[k];
    if (k === 'key') key = jsonString(v, k);
    else if (k === 'value') {
      const m = jsonMessage(v, k);
      value = m === undefined ? undefined : within(k, () => jsonAnyValue(m, depth + 1));
    }
  }
  return value === undefined ? { key } : { key, value };
}

function jsonAnyValue(o: JsonObject, depth: number): OtlpAnyValue {
  if (depth > MAX_ANY_VALUE_DEPTH) return fail(`AnyValue nested deeper than ${MAX_ANY_VALUE_DEPTH} levels`);
  let value: OtlpAnyValue = {};
  for (const key in o) {
    const v = o[key];
    if (v === null) continue;
    switch (key) {
      case 'stringValue':
      case 'string_value':
        value = { stringValue: jsonString(v, key) };
        break;
      case 'boolValue':
      case 'bool_value':
        value = { boolValue: jsonBool(v, key) };
        break;
      case 'intValue':
      case 'int_value':
        value = { intValue: jsonInt64(v, key) };
        break;
      case 'doubleValue':
      case 'double_value':
        value = { doubleValue: jsonDouble(v, key) };
        break;
      case 'arrayValue':
      case 'array_value': {
        const list = jsonMessage(v, key);
        const values = list === undefined ? [] : within(key, () => jsonListValues(list, (item) => jsonAnyValue(jsonObject(item, 'an AnyValue'), depth + 1)));
        value = { arrayValue: { values } };
        break;
      }
      case 'kvlistValue':
      case 'kvlist_value': {
        const list = jsonMessage(v, key);
        const values = list === undefined ? [] : within(key, () => jsonListValues(list, (item) => jsonKeyValue(item, depth)));
        value = { kvlistValue: { values } };
        break;
      }
      case 'bytesValue':
      case 'bytes_value':
        value = { bytesValue: jsonBytes(v, key) };
        break;
    }
  }
  return value;
}

function jsonListValues<T>(o: JsonObject, item: (element: unknown) => T): T[] {
  let values: T[] = [];
  for (const key in o) {
    if (key === 'values') values = jsonArray(o[key], key, item);
  }
  return values;
}
