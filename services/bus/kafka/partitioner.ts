/**
 * The partition of a keyed record: murmur2 of the key's UTF-8 bytes, like Kafka's Java client and kafkajs'
 * DefaultPartitioner (`toPositive(murmur2(key)) % partitions`), computed with 32-bit integer arithmetic instead of
 * kafkajs' Long objects (which allocate a few hundred objects per key) and without a Buffer per key. Same results
 * as kafkajs for every key (test/unit/bus/kafka-partitioner.test.ts).
 */
import { Buffer } from 'node:buffer';
import { Partitioners } from 'kafkajs';
import type { ICustomPartitioner } from 'kafkajs';

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** Java's `Utils.murmur2` over bytes[0, length). */
function murmur2Bytes(bytes: Uint8Array, length: number): number {
  let h = SEED ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k =
      (bytes[i4] as number) |
      ((bytes[i4 + 1] as number) << 8) |
      ((bytes[i4 + 2] as number) << 16) |
      ((bytes[i4 + 3] as number) << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  const rest = length & 3;
  if (rest > 0) {
    const tail = length - rest;
    if (rest === 3) h ^= (bytes[tail + 2] as number) << 16;
    if (rest >= 2) h ^= (bytes[tail + 1] as number) << 8;
    h ^= bytes[tail] as number;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** Keys are encoded here (task ids and trace ids are short), so that hashing one allocates nothing. */
const scratch = new Uint8Array(1024);
const utf8 = new TextEncoder();

/** murmur2 of the UTF-8 bytes of `key` (a signed 32-bit integer, as Java returns it). */
export function murmur2(key: string | Uint8Array): number {
  if (typeof key !== 'string') return murmur2Bytes(key, key.length);
  // At most 3 bytes per UTF-16 unit: a key this short always fits.
  if (key.length * 3 <= scratch.length) return murmur2Bytes(scratch, utf8.encodeInto(key, scratch).written);
  const bytes = Buffer.from(key, 'utf8');
  return murmur2Bytes(bytes, bytes.length);
}

/** The partition of `key` among `partitions`, as Kafka's default partitioner picks it. */
export function partitionOfKey(key: string | Uint8Array, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

/**
 * A kafkajs partitioner factory (`createPartitioner`) that places keyed messages like kafkajs'
 * DefaultPartitioner, cheaply; a message with an explicit partition keeps it, and one without a key goes to
 * kafkajs' own partitioner (round robin over available partitions).
 */
export const KeyHashPartitioner: ICustomPartitioner = () => {
  const fallback = Partitioners.DefaultPartitioner();
  return (args) => {
    const { message, partitionMetadata } = args;
    if (typeof message.partition === 'number') return message.partition;
    if (message.key !== undefined && message.key !== null && partitionMetadata.length > 0)
      return partitionOfKey(message.key, partitionMetadata.length);
    return fallback(args);
  };
};
