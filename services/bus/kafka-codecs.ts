/**
 * ZSTD for kafkajs from Node's own zlib (`zlib.zstdCompress`, Node ≥ 22.15), so no native add-on is needed.
 * kafkajs ships only GZIP; registering this codec lets Tripline produce ZSTD batches
 * (TRIPLINE_KAFKA_COMPRESSION=zstd) and, as important, read them: an upstream collector may write the span
 * topics with `compression: zstd`. Registration is process-wide (kafkajs keeps codecs in a module-level table)
 * and idempotent.
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import kafkajs from 'kafkajs';

const decompress = promisify(zlib.zstdDecompress);

/** The zstd level Tripline produces with (3 is zstd's own default: fast, and smaller than GZIP's output). */
export const ZSTD_LEVEL = 3;

let registered = false;

export function registerZstdCodec(): void {
  if (registered) return;
  registered = true;
  const codecs = kafkajs.CompressionCodecs as unknown as Record<number, () => unknown>;
  codecs[kafkajs.CompressionTypes.ZSTD] = () => ({
    // Synchronous, with a 128 KiB window: kafkajs compresses every partition's batch separately, and the async
    // call's stream set-up and zstd's default-window context dominated the CPU of small batches (~195 µs vs ~35 µs
    // per 5 KB batch, test/bench/gateway-vs-collector.bench.ts); batches are at most maxBatchBytes, so the
    // window only bounds back-references (ratio unchanged on span records).
    compress: (encoder: { buffer: Buffer }) =>
      Promise.resolve(zlib.zstdCompressSync(encoder.buffer, { params: { [zlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL, [zlib.constants.ZSTD_c_windowLog]: 17 } })),
    decompress: (buffer: Buffer) => decompress(buffer),
  });
}
