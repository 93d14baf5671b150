/**
 * The ZSTD codec's compressor keeps one native zstd context for every batch: each output must be a complete
 * zstd frame of its input alone, whatever came before (sizes from empty to beyond the scratch buffer).
 */
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import fc from 'fast-check';
import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { createZstdCompressor, registerKafkaCodecs } from '../../../services/bus/kafka/codecs.ts';

/** The window log a zstd frame declares, or undefined for a single-segment frame (no window descriptor). */
function frameWindowLog(frame: Buffer): number | undefined {
  expect(frame.readUInt32LE(0)).toBe(0xfd2fb528);
  const descriptor = frame[4] ?? 0;
  if ((descriptor & 0x20) !== 0) return undefined;
  return 10 + ((frame[5] ?? 0) >> 3);
}

describe('zstd codec', () => {
  it('compresses each batch into a frame of its own', () => {
    const compress = createZstdCompressor();
    const text = Buffer.from(
      '{"name":"execute_tool search","attributes":{"gen_ai.operation.name":"execute_tool"}}'.repeat(2000),
    );
    const inputs = [
      Buffer.alloc(0),
      Buffer.from('x'),
      randomBytes(5000),
      text.subarray(0, 6000),
      text,
      randomBytes(200_000),
      text.subarray(100, 300),
    ];
    for (const input of inputs) {
      const output = compress(input);
      expect(zlib.zstdDecompressSync(output).equals(input)).toBe(true);
      // The same level and window as zstdCompressSync with the codec's options (frame headers may differ by a byte).
      const reference = zlib.zstdCompressSync(input, {
        params: { [zlib.constants.ZSTD_c_compressionLevel]: 3, [zlib.constants.ZSTD_c_windowLog]: 17 },
      });
      expect(Math.abs(output.length - reference.length)).toBeLessThanOrEqual(8);
    }
    // Every frame keeps the codec's parameters, not only the first: a 128 KiB window for inputs above it.
    for (const input of [randomBytes(200_000), text, randomBytes(300_000)])
      expect(frameWindowLog(compress(input))).toBe(17);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 20_000 }), fc.integer({ min: 0, max: 50 }), (bytes, repeat) => {
        const input = Buffer.concat([Buffer.from(bytes), text.subarray(0, repeat * 100)]);
        return zlib.zstdDecompressSync(compress(input)).equals(input);
      }),
      { numRuns: 300 },
    );
  });

  it('is the codec kafkajs uses for ZSTD, for writing and reading', async () => {
    registerKafkaCodecs();
    const codec = (
      kafkajs.CompressionCodecs as unknown as Record<
        number,
        () => { compress(encoder: { buffer: Buffer }): Promise<Buffer>; decompress(buffer: Buffer): Promise<Buffer> }
      >
    )[kafkajs.CompressionTypes.ZSTD];
    expect(codec).toBeDefined();
    const input = Buffer.from('span bytes '.repeat(500));
    const zstd = codec?.();
    const compressed = await zstd?.compress({ buffer: input });
    expect(compressed !== undefined && (await zstd?.decompress(compressed))?.equals(input)).toBe(true);
  });

  it('reads GZIP batches (and zlib-wrapped ones, as kafkajs does) and rejects a corrupt one', async () => {
    registerKafkaCodecs();
    type Codec = {
      compress(encoder: { buffer: Buffer }): Promise<Buffer>;
      decompress(buffer: Buffer): Promise<Buffer>;
    };
    const gzip = (kafkajs.CompressionCodecs as unknown as Record<number, () => Codec>)[
      kafkajs.CompressionTypes.GZIP
    ]?.();
    const input = Buffer.from('span bytes '.repeat(5000));
    const compressed = await gzip?.compress({ buffer: input });
    expect(compressed?.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(compressed !== undefined && (await gzip?.decompress(compressed))?.equals(input)).toBe(true);
    expect((await gzip?.decompress(zlib.deflateSync(input)))?.equals(input)).toBe(true);
    await expect(gzip?.decompress(Buffer.from('not a gzip stream'))).rejects.toThrow();
  });
});
