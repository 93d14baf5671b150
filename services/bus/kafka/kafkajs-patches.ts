/**
 * Three fixes to kafkajs 2.2.4 (the version package.json pins), applied to the classes kafkajs itself uses (the
 * same CommonJS module instances), once per process, by `patchKafkajs()` (services/bus/kafka/client.ts calls it
 * for every Tripline client). Each replaced method is first compared with kafkajs 2.2.4's code (whitespace and
 * comments aside): a kafkajs with other code there (an upgrade) is left untouched, and the tests in
 * test/unit/bus/kafkajs-patches.test.ts say so.
 *
 * 1. The request queue's busy timer. Once a connection has had an answer,
 *    `RequestQueue.scheduleCheckPendingRequests` re-arms a timer after every check, whether or not requests wait,
 *    with the delay `throttledUntil - Date.now()`; `throttledUntil` starts at -1, so the delay is negative, Node
 *    runs it after 1 ms (Node ≥ 23 also prints a TimeoutNegativeWarning), and every broker connection checks its
 *    queue 1,000 times a second forever (tulios/kafkajs#1704, #1751; unfixed upstream). An idle gateway spent
 *    ~4% of a core on it, about what the whole upstream collector spends at 2,000 spans/s. The replacement
 *    schedules a check only while requests are pending (as before) or a broker-requested throttle runs; the queue
 *    is checked anyway whenever a request is pushed or answered (`push`, `fulfillRequest`).
 *
 * 2. The protocol encoder, which writes every produce request. kafkajs writes each varint by building an Array
 *    and then a Buffer from it, and each varlong (a record's timestamp delta) through BigInt-backed Long objects:
 *    about twenty short-lived objects per record, seen as allocation and garbage-collection time in the gateway's
 *    profile. The replacements write the same bytes in place: `writeUVarInt` (and so `writeVarInt`) straight into
 *    the buffer; `writeVarLong` and `Encoder.sizeOfVarLong` without Long for integers within ±2^30 (their 64-bit
 *    zigzag fits 31 bits, where the 64-bit and 32-bit encodings are the same bytes; anything else goes to kafkajs'
 *    code); `ensureAvailable` grows the buffer with `Buffer.allocUnsafe` instead of the zero-filled `Buffer.alloc`
 *    (an encoder only exposes the bytes it wrote: `buffer` is the slice up to `offset`). The tests check
 *    byte-for-byte equality with kafkajs' methods on generated values.
 *
 * 3. The record batch CRC-32C, which kafkajs computes one byte at a time in JavaScript (and then copies through
 *    a `Uint32Array.from` to make it unsigned): ~8% of the gateway's CPU at 10,000 spans/s. The replacement reads
 *    8 bytes per step (slicing-by-8, the same polynomial and result). The record batch module takes the function
 *    when it is first loaded (kafkajs loads it lazily, with the first produce request), so the replacement is put
 *    in the module cache in its place before that; if the record batch module was loaded already, or the
 *    replacement disagrees with kafkajs' function on a check vector, nothing is changed.
 */
import { Buffer } from 'node:buffer';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

type AnyFunction = (...args: never[]) => unknown;

/** The code of a function without comments and whitespace, between its outer braces. */
function bodyOf(fn: AnyFunction): string {
  const source = fn.toString();
  return source
    .slice(source.indexOf('{') + 1, source.lastIndexOf('}'))
    .replace(/\/\/[^\n]*|\/\*[\s\S]*?\*\//g, '')
    .replace(/\s+/g, '');
}

export type PatchOutcome = 'patched' | 'not-needed';

// ---------------------------------------------------------------------------------------------------------
// 1. The request queue

/** What the method reads of a RequestQueue. */
interface QueueState {
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  pending: unknown[];
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

/** kafkajs' own re-check period while requests wait (`CHECK_PENDING_REQUESTS_INTERVAL`). */
const CHECK_PENDING_REQUESTS_INTERVAL_MS = 10;

const FAULTY_SCHEDULE_BODY =
  'letscheduleAt=this.throttledUntil-Date.now()if(!this.throttleCheckTimeoutId){if(this.pending.length>0){scheduleAt=scheduleAt>0?scheduleAt:CHECK_PENDING_REQUESTS_INTERVAL}this.throttleCheckTimeoutId=setTimeout(()=>{this.throttleCheckTimeoutId=nullthis.checkPendingRequests()},scheduleAt)}';

function scheduleCheckPendingRequests(this: QueueState): void {
  if (this.throttleCheckTimeoutId !== null) return;
  const throttledFor = this.throttledUntil - Date.now();
  let delay: number;
  if (this.pending.length > 0) delay = throttledFor > 0 ? throttledFor : CHECK_PENDING_REQUESTS_INTERVAL_MS;
  else if (throttledFor > 0) delay = throttledFor;
  else return;
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, delay);
}

function fixRequestQueue(): PatchOutcome {
  const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as
    { prototype?: Partial<QueueState> } | undefined;
  const proto = RequestQueue?.prototype;
  const method = proto?.scheduleCheckPendingRequests;
  if (proto === undefined || typeof method !== 'function' || bodyOf(method) !== FAULTY_SCHEDULE_BODY)
    return 'not-needed';
  proto.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
  return 'patched';
}

// ---------------------------------------------------------------------------------------------------------
// 2. The encoder
/** The part of kafkajs' Encoder the replacements use. */
interface EncoderInstance {
  buf: Buffer;
  offset: number;
  ensureAvailable: (this: EncoderInstance, length: number) => void;
  writeUVarInt: (this: EncoderInstance, value: number) => EncoderInstance;
  writeVarLong: (this: EncoderInstance, value: unknown) => EncoderInstance;
}

interface EncoderClass {
  prototype: EncoderInstance;
  nextPowerOfTwo: (value: number) => number;
  sizeOfVarLong: (this: EncoderClass, value: unknown) => number;
}

/** kafkajs 2.2.4's code of each replaced method, whitespace and comments removed. */
const ENCODER_BODIES = {
  ensureAvailable:
    'if(this.offset+length>this.buf.length){constnewLength=Encoder.nextPowerOfTwo(this.offset+length)constnewBuffer=Buffer.alloc(newLength)this.buf.copy(newBuffer,0,0,this.offset)this.buf=newBuffer}',
  writeUVarInt:
    'constbyteArray=[]while((value&UNSIGNED_INT32_MAX_NUMBER)!==0){byteArray.push((value&OTHER_BITS)|MOST_SIGNIFICANT_BIT)value>>>=7}byteArray.push(value&OTHER_BITS)this.writeBufferInternal(Buffer.from(byteArray))returnthis',
  writeVarLong:
    'constbyteArray=[]letlongValue=Encoder.encodeZigZag64(value)while(longValue.and(UNSIGNED_INT64_MAX_NUMBER).notEquals(Long.fromInt(0))){byteArray.push(longValue.and(OTHER_BITS).or(MOST_SIGNIFICANT_BIT).toInt())longValue=longValue.shiftRightUnsigned(7)}byteArray.push(longValue.toInt())this.writeBufferInternal(Buffer.from(byteArray))returnthis',
  sizeOfVarLong:
    'letlongValue=Encoder.encodeZigZag64(value)letbytes=1while(longValue.and(UNSIGNED_INT64_MAX_NUMBER).notEquals(Long.fromInt(0))){bytes+=1longValue=longValue.shiftRightUnsigned(7)}returnbytes',
} as const;

/** Integers whose 64-bit zigzag fits in 31 bits: their varlong is their 32-bit varint. */
const SMALL = 2 ** 30;

function isSmallInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= -SMALL && value < SMALL;
}

let originals:
  | {
      ensureAvailable: EncoderInstance['ensureAvailable'];
      writeUVarInt: EncoderInstance['writeUVarInt'];
      writeVarLong: EncoderInstance['writeVarLong'];
      sizeOfVarLong: EncoderClass['sizeOfVarLong'];
    }
  | undefined;

/** kafkajs' own methods as they were before the patch (for tests), or undefined when nothing was patched. */
export function originalEncoderMethods(): typeof originals {
  return originals;
}

/** Replaces the four methods, or none of them when kafkajs has other code in any. */
function speedUpEncoder(): PatchOutcome {
  const Encoder = require('kafkajs/src/protocol/encoder.js') as EncoderClass;
  const proto = Encoder.prototype;
  const current = {
    ensureAvailable: proto.ensureAvailable,
    writeUVarInt: proto.writeUVarInt,
    writeVarLong: proto.writeVarLong,
    sizeOfVarLong: Encoder.sizeOfVarLong,
  };
  const matches = (Object.keys(ENCODER_BODIES) as (keyof typeof ENCODER_BODIES)[]).every(
    (name) => typeof current[name] === 'function' && bodyOf(current[name]) === ENCODER_BODIES[name],
  );
  if (!matches) return 'not-needed';
  originals = current;
  const nextPowerOfTwo = (value: number): number => Encoder.nextPowerOfTwo(value);
  const originalWriteVarLong = current.writeVarLong;
  const originalSizeOfVarLong = current.sizeOfVarLong;

  proto.ensureAvailable = function ensureAvailable(this: EncoderInstance, length: number): void {
    if (this.offset + length > this.buf.length) {
      const grown = Buffer.allocUnsafe(nextPowerOfTwo(this.offset + length));
      this.buf.copy(grown, 0, 0, this.offset);
      this.buf = grown;
    }
  };

  proto.writeUVarInt = function writeUVarInt(this: EncoderInstance, value: number): EncoderInstance {
    let size = 1;
    for (let rest = value >>> 7; rest !== 0; rest >>>= 7) size++;
    this.ensureAvailable(size);
    const buf = this.buf;
    let at = this.offset;
    while ((value & 0xffffff80) !== 0) {
      buf[at++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    buf[at++] = value & 0x7f;
    this.offset = at;
    return this;
  };

  proto.writeVarLong = function writeVarLong(this: EncoderInstance, value: unknown): EncoderInstance {
    if (!isSmallInteger(value)) return originalWriteVarLong.call(this, value);
    return this.writeUVarInt((value << 1) ^ (value >> 31));
  };

  Encoder.sizeOfVarLong = function sizeOfVarLong(value: unknown): number {
    if (!isSmallInteger(value)) return originalSizeOfVarLong.call(Encoder, value);
    let zigzag = ((value << 1) ^ (value >> 31)) >>> 0;
    let bytes = 1;
    while (zigzag >= 0x80) {
      bytes++;
      zigzag >>>= 7;
    }
    return bytes;
  };

  return 'patched';
}

// ---------------------------------------------------------------------------------------------------------
// 3. The record batch CRC-32C

/** CRC-32C (Castagnoli, reflected polynomial 0x82f63b78) tables for slicing-by-8: table k at [k*256, k*256+256). */
const CRC_TABLES = ((): Int32Array => {
  const tables = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    tables[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = tables[n] as number;
    for (let k = 1; k < 8; k++) {
      c = (tables[c & 0xff] as number) ^ (c >>> 8);
      tables[k * 256 + n] = c;
    }
  }
  return tables;
})();

/** The CRC-32C of `bytes` as an unsigned 32-bit integer (what kafkajs' `crc32C` module returns). */
export function crc32c(bytes: Uint8Array): number {
  const t = CRC_TABLES;
  let crc = -1;
  let i = 0;
  const length = bytes.length;
  for (; i + 8 <= length; i += 8) {
    const one =
      crc ^
      ((bytes[i] as number) |
        ((bytes[i + 1] as number) << 8) |
        ((bytes[i + 2] as number) << 16) |
        ((bytes[i + 3] as number) << 24));
    const two =
      (bytes[i + 4] as number) |
      ((bytes[i + 5] as number) << 8) |
      ((bytes[i + 6] as number) << 16) |
      ((bytes[i + 7] as number) << 24);
    crc =
      (t[1792 + (one & 0xff)] as number) ^
      (t[1536 + ((one >>> 8) & 0xff)] as number) ^
      (t[1280 + ((one >>> 16) & 0xff)] as number) ^
      (t[1024 + (one >>> 24)] as number) ^
      (t[768 + (two & 0xff)] as number) ^
      (t[512 + ((two >>> 8) & 0xff)] as number) ^
      (t[256 + ((two >>> 16) & 0xff)] as number) ^
      (t[two >>> 24] as number);
  }
  for (; i < length; i++) crc = (t[(crc ^ (bytes[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

function replaceCrc32c(): PatchOutcome {
  const crcPath = require.resolve('kafkajs/src/protocol/recordBatch/crc32C/index.js');
  const batchPath = require.resolve('kafkajs/src/protocol/recordBatch/v0/index.js');
  // The record batch module would keep the function it already took.
  if (require.cache[batchPath] !== undefined) return 'not-needed';
  const original = require(crcPath) as (bytes: Buffer) => number;
  const cached = require.cache[crcPath];
  if (typeof original !== 'function' || cached === undefined) return 'not-needed';
  const vectors = [
    Buffer.from('123456789'),
    Buffer.alloc(0),
    Buffer.from(Array.from({ length: 1031 }, (_, i) => (i * 37 + 11) & 0xff)),
  ];
  if (!vectors.every((bytes) => crc32c(bytes) === original(bytes))) return 'not-needed';
  cached.exports = crc32c;
  return 'patched';
}

// ---------------------------------------------------------------------------------------------------------

export interface KafkajsPatches {
  requestQueue: PatchOutcome;
  encoder: PatchOutcome;
  crc32c: PatchOutcome;
}

let outcome: KafkajsPatches | undefined;

/** Applies the fixes once per process (idempotent); says which were applied. */
export function patchKafkajs(): KafkajsPatches {
  outcome ??= { requestQueue: fixRequestQueue(), encoder: speedUpEncoder(), crc32c: replaceCrc32c() };
  return outcome;
}
