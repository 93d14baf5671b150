/**
 * The protobuf encoder of OTLP trace requests: writes with protobufjs's `Writer` in field-number order, leaving
 * out fields at their default value, as protoc-generated encoders do.
 */
import protobuf from 'protobufjs';
import type {
  OtlpAnyValue,
  OtlpKeyValue,
  OtlpResourceSpans,
  OtlpScopeSpans,
  OtlpSpan,
  OtlpTraceRequest,
} from '../../schemas/otlp.ts';
import { INT64_LIMIT, INT64_MIN, TWO_POW_32 } from './int64.ts';
import { TAG_LEN_1, WIRE_I64, WIRE_LEN, tag } from './wire.ts';

type Writer = protobuf.Writer;

/**
 * One writer serves every encode (encoding is synchronous), so that its buffer, once grown to the usual
 * request size, is not grown again from 128 bytes for each request; a buffer grown past this size is let go.
 */
const MAX_RETAINED_WRITER_BYTES = 4 * 1024 * 1024;
let writer: Writer = protobuf.Writer.create();

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
    if (!Number.isSafeInteger(value))
      throw new TypeError(`intValue ${value} is not a safe integer; pass larger values as decimal strings`);
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
  if (!DIGITS.test(value) || value.length > 20)
    throw new TypeError(`timestamp ${JSON.stringify(value)} is not an unsigned decimal integer`);
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
  if (id.length !== size * 2 || bytes === undefined)
    throw new TypeError(`id ${JSON.stringify(id)} must be ${size * 2} hex characters (or '' when absent)`);
  for (let i = 0; i < size; i++) {
    const high = HEX_NIBBLE[id.charCodeAt(2 * i)] ?? -1;
    const low = HEX_NIBBLE[id.charCodeAt(2 * i + 1)] ?? -1;
    if ((high | low) < 0) throw new TypeError(`id ${JSON.stringify(id)} must be hex`);
    bytes[i] = (high << 4) | low;
  }
  w.uint32(tag(field, WIRE_LEN)).uint32(size).raw(bytes);
}
