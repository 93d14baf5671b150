/**
 * Reading the protobuf wire format of one OTLP request: the input, the read position and the primitives that
 * read varints, fixed-width values, strings, ids and timestamps from it, checking lengths as they go, and
 * that skip (or reject) fields a message does not know.
 *
 * One request is decoded at a time (decoding is synchronous), so the input and the read position live in
 * module variables rather than being passed to every function. `pos` is exported read-only (an ES module
 * binding); only the functions here move it.
 */
import { Buffer } from 'node:buffer';
import { fail } from './decode-error.ts';
import { int64Value, uint64ToDecimal } from './int64.ts';
import { WIRE_END_GROUP, WIRE_I32, WIRE_I64, WIRE_LEN, WIRE_START_GROUP, WIRE_VARINT } from './wire.ts';

/** Deepest nesting of unknown protobuf groups skipped before the input is rejected. */
const MAX_UNKNOWN_GROUP_DEPTH = 32;

const EMPTY = Buffer.alloc(0);
let buf: Buffer = EMPTY;
let view: DataView = new DataView(EMPTY.buffer, 0, 0);
/** The read position in the input. */
export let pos = 0;
/** Halves of the last 64-bit value read by readVarint64 / readFixed64 (avoids allocating a pair). */
let lo = 0;
let hi = 0;

/** Makes `body` the input, read from its start; returns where it ends. */
export function openInput(body: Uint8Array): number {
  buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  pos = 0;
  return buf.length;
}

/** Lets go of the input, so that the request body is not kept alive. */
export function closeInput(): void {
  buf = EMPTY;
  view = new DataView(EMPTY.buffer, 0, 0);
}

function truncated(what: string, need: number, end: number): never {
  const limit = end === buf.length ? 'the body ends' : 'the enclosing message ends';
  return fail(`truncated input: ${what} at byte ${pos} needs ${need} byte(s) but ${limit} at byte ${end}`);
}

/** Reads a varint and returns its low 32 bits, unsigned. Accepts up to 10 bytes (the protobuf maximum). */
export function readVarint32(end: number): number {
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
export function readVarint64(end: number): void {
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

export function readTag(end: number): number {
  const t = readVarint32(end);
  if (t >>> 3 === 0) fail(`invalid field number 0 at byte ${pos}`);
  return t;
}

/** Reads the length of a length-delimited field and returns where its content ends. */
export function readLength(end: number): number {
  const length = readVarint32(end);
  if (length > end - pos) truncated('a length-delimited field', length, end);
  return pos + length;
}

/** Skips the content of a length-delimited field. */
export function skipLengthDelimited(end: number): void {
  pos = readLength(end);
}

export function readFixed32(end: number): number {
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

export function readDouble(end: number): number {
  if (end - pos < 8) truncated('a double', 8, end);
  const value = view.getFloat64(pos, true);
  pos += 8;
  return value;
}

/** Reads an int64 varint: a number when it is a safe integer, else a decimal string. */
export function readInt64(end: number): number | string {
  readVarint64(end);
  return int64Value(lo, hi);
}

/** Reads a bool varint (any non-zero value is true). */
export function readBool(end: number): boolean {
  readVarint64(end);
  return (lo | hi) !== 0;
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
const HAS_NATIVE_SLICES =
  typeof bufferPrototype.utf8Slice === 'function' && typeof bufferPrototype.hexSlice === 'function';

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

export function readString(end: number): string {
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

export function readBytes(end: number): Uint8Array {
  const stop = readLength(end);
  const out = new Uint8Array(stop - pos);
  out.set(buf.subarray(pos, stop));
  pos = stop;
  return out;
}

/** Reads a trace or span id: `size` bytes (or none) as lowercase hex; '' when absent or all zeroes. */
export function readId(end: number, size: number, what: string): string {
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
export function readNanos(end: number): string {
  readFixed64(end);
  return uint64ToDecimal(lo, hi);
}

/** A known field arrived with an unexpected wire type, or an unknown field arrived: fail or skip. */
export function otherField(t: number, end: number, fields: readonly (string | undefined)[], message: string): void {
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
      if (depth >= MAX_UNKNOWN_GROUP_DEPTH)
        fail(`unknown groups nested deeper than ${MAX_UNKNOWN_GROUP_DEPTH} at byte ${pos}`);
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
