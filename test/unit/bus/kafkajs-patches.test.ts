/**
 * The kafkajs fixes (services/bus/kafka/kafkajs-patches.ts): they apply to the installed kafkajs 2.2.4, the request
 * queue no longer re-arms its timer when nothing waits, and the faster encoder writes exactly kafkajs' bytes.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c, originalEncoderMethods, patchKafkajs } from '../../../services/bus/kafka/kafkajs-patches.ts';

const require = createRequire(import.meta.url);
const kafkajsVersion = (
  JSON.parse(readFileSync(require.resolve('kafkajs/package.json'), 'utf8')) as { version: string }
).version;

interface Queue {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
  destroy(): void;
}
const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as new (options: object) => Queue;

interface Encoder {
  buffer: Buffer;
  writeUVarInt: (value: number) => Encoder;
  writeVarInt(value: number): Encoder;
  writeVarLong(value: unknown): Encoder;
  writeVarIntBytes(value: unknown): Encoder;
  writeBytes(value: unknown): Encoder;
  writeInt32(value: number): Encoder;
  writeString(value: string): Encoder;
}
const Encoder = require('kafkajs/src/protocol/encoder.js') as {
  new (initialSize?: number): Encoder;
  sizeOfVarLong(value: unknown): number;
};

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

describe('kafkajs patches', () => {
  const outcome = patchKafkajs();

  it('apply to kafkajs 2.2.4 (and leave another version alone)', () => {
    const expected = kafkajsVersion === '2.2.4' ? 'patched' : 'not-needed';
    expect(outcome).toEqual({ requestQueue: expected, encoder: expected, crc32c: expected });
    expect(patchKafkajs()).toBe(outcome);
  });

  it('arm the request queue timer only while requests wait or a throttle runs', () => {
    const queue = new RequestQueue({
      maxInFlightRequests: 1,
      requestTimeout: 1000,
      enforceRequestTimeout: false,
      clientId: 'test',
      broker: 'b:9092',
      logger: silent,
    });
    try {
      // What kafkajs does after every answer: nothing waits, no throttle → nothing to schedule (was: a 1 ms timer, forever).
      queue.checkPendingRequests();
      expect(queue.throttleCheckTimeoutId).toBeNull();

      queue.throttledUntil = Date.now() + 60_000;
      queue.scheduleCheckPendingRequests();
      expect(queue.throttleCheckTimeoutId).not.toBeNull();
      clearTimeout(queue.throttleCheckTimeoutId ?? undefined);
      queue.throttleCheckTimeoutId = null;

      queue.throttledUntil = -1;
      queue.pending.push({});
      queue.scheduleCheckPendingRequests();
      expect(queue.throttleCheckTimeoutId).not.toBeNull();
    } finally {
      clearTimeout(queue.throttleCheckTimeoutId ?? undefined);
      queue.pending.length = 0;
      queue.destroy();
    }
  });

  it('encode exactly what kafkajs encodes', () => {
    const originals = originalEncoderMethods();
    if (kafkajsVersion !== '2.2.4') return;
    expect(originals).toBeDefined();
    if (originals === undefined) return;
    expect((Encoder as unknown as { prototype: Encoder }).prototype.writeUVarInt).not.toBe(originals.writeUVarInt);
    const kafkajsOwn = (): Encoder =>
      Object.assign(new Encoder(), {
        ensureAvailable: originals.ensureAvailable,
        writeUVarInt: originals.writeUVarInt,
        writeVarLong: originals.writeVarLong,
      });

    const int = fc.oneof(
      fc.integer(),
      fc.integer({ min: -200, max: 200 }),
      fc.constantFrom(0, -1, 127, 128, 2 ** 30 - 1, -(2 ** 30), 2 ** 31 - 1, -(2 ** 31)),
    );
    const long = fc.oneof(
      int,
      fc.maxSafeInteger(),
      fc.constantFrom(2 ** 30, -(2 ** 30) - 1, 2 ** 40, -(2 ** 53) + 1, Date.now()),
    );
    const op = fc.oneof(
      fc.record({ op: fc.constant('uvarint' as const), value: fc.oneof(int, fc.nat({ max: 2 ** 32 - 1 })) }),
      fc.record({ op: fc.constant('varint' as const), value: int }),
      fc.record({ op: fc.constant('varlong' as const), value: long }),
      fc.record({
        op: fc.constant('varintBytes' as const),
        value: fc.oneof(
          fc.string(),
          fc.uint8Array({ maxLength: 3000 }).map((bytes) => Buffer.from(bytes)),
        ),
      }),
      fc.record({
        op: fc.constant('bytes' as const),
        value: fc.uint8Array({ maxLength: 5000 }).map((bytes) => Buffer.from(bytes)),
      }),
      fc.record({ op: fc.constant('int32' as const), value: fc.integer() }),
      fc.record({ op: fc.constant('string' as const), value: fc.string({ maxLength: 100 }) }),
    );
    const apply = (encoder: Encoder, ops: { op: string; value: unknown }[]): Buffer => {
      for (const { op: name, value } of ops) {
        if (name === 'uvarint') encoder.writeUVarInt(value as number);
        else if (name === 'varint') encoder.writeVarInt(value as number);
        else if (name === 'varlong') encoder.writeVarLong(value);
        else if (name === 'varintBytes') encoder.writeVarIntBytes(value);
        else if (name === 'bytes') encoder.writeBytes(value);
        else if (name === 'int32') encoder.writeInt32(value as number);
        else encoder.writeString(value as string);
      }
      return encoder.buffer;
    };
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => apply(new Encoder(), ops).equals(apply(kafkajsOwn(), ops))),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(
        long,
        (value) =>
          Encoder.sizeOfVarLong(value) ===
          originals.sizeOfVarLong.call(Encoder as unknown as ThisParameterType<typeof originals.sizeOfVarLong>, value),
      ),
      { numRuns: 2000 },
    );
  });

  it('compute the record batch CRC-32C as kafkajs does, for every record batch kafkajs writes', () => {
    const kafkajsCrc = require('kafkajs/src/protocol/recordBatch/crc32C/crc32C.js') as (bytes: Buffer) => number;
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat({ max: 7 }), (bytes, offset) => {
        const view = Buffer.from(bytes).subarray(Math.min(offset, bytes.length));
        return crc32c(view) === kafkajsCrc(view);
      }),
      { numRuns: 1000 },
    );
    if (kafkajsVersion !== '2.2.4') return;
    // The record batch module, loaded after the patch, takes the replacement.
    require('kafkajs/src/protocol/recordBatch/v0/index.js');
    expect(require.cache[require.resolve('kafkajs/src/protocol/recordBatch/crc32C/index.js')]?.exports).toBe(crc32c);
  });
});
