/**
 * The cheap murmur2 partitioner gives exactly the partitions of kafkajs' DefaultPartitioner (Java's murmur2), so
 * records keep landing where they did and where Kafka's Java client and the collector's murmur2 hasher put them.
 */
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { Partitioners } from 'kafkajs';
import type { PartitionMetadata } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { KeyHashPartitioner, murmur2, partitionOfKey } from '../../../services/bus/kafka/partitioner.ts';

const kafkajsMurmur2 = createRequire(import.meta.url)('kafkajs/src/producer/partitioners/default/murmur2.js') as (
  key: string | Buffer,
) => number;

const metadata = (count: number): PartitionMetadata[] =>
  Array.from({ length: count }, (_, partitionId) => ({
    partitionErrorCode: 0,
    partitionId,
    leader: 0,
    replicas: [0],
    isr: [0],
  }));

describe('murmur2 partitioner', () => {
  it('hashes like kafkajs (and Java) for ASCII, non-ASCII, empty, long and byte keys', () => {
    const keys = [
      '',
      'a',
      'ab',
      'abc',
      'abcd',
      'abcde',
      'task-0001',
      '4bf92f3577b34da6a3ce929d0e0e4736',
      'été',
      '任务-7',
      '🙂 emoji',
      'lone \ud800 surrogate',
      'x'.repeat(5000),
      '任'.repeat(400),
    ];
    for (const key of keys) {
      expect(murmur2(key)).toBe(kafkajsMurmur2(key));
      expect(murmur2(Buffer.from(key))).toBe(kafkajsMurmur2(Buffer.from(key)));
    }
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 400 }), (key) => murmur2(key) === kafkajsMurmur2(key)),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => murmur2(bytes) === kafkajsMurmur2(Buffer.from(bytes))),
      { numRuns: 500 },
    );
  });

  it('picks the partitions of kafkajs DefaultPartitioner', () => {
    const ours = KeyHashPartitioner();
    const theirs = Partitioners.DefaultPartitioner();
    fc.assert(
      fc.property(fc.string({ maxLength: 64 }), fc.integer({ min: 1, max: 64 }), (key, count) => {
        const args = { topic: 't', partitionMetadata: metadata(count), message: { key, value: null } };
        const expected = theirs(args);
        return ours(args) === expected && partitionOfKey(key, count) === expected;
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps an explicit partition and spreads keyless messages over the partitions', () => {
    const partitioner = KeyHashPartitioner();
    expect(
      partitioner({ topic: 't', partitionMetadata: metadata(6), message: { key: 'k', value: null, partition: 4 } }),
    ).toBe(4);
    const seen = new Set<number>();
    for (let i = 0; i < 60; i++)
      seen.add(partitioner({ topic: 't', partitionMetadata: metadata(6), message: { value: null } }));
    expect(seen.size).toBe(6);
  });
});
