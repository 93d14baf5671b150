/**
 * ZSTD for kafkajs from Node's own zlib (`zlib.zstdCompress`, Node ≥ 22.15), so no native add-on is needed.
 * kafkajs ships only GZIP; registering this codec lets Tripline produce ZSTD batches
 * (TRIPLINE_KAFKA_COMPRESSION=zstd) and, as important, read them: an upstream collector may write the span
 * topics with `compression: zstd`. GZIP is registered again with synchronous decompression (see below).
 * Registration is process-wide (kafkajs keeps codecs in a module-level table) and idempotent.
 */
import { Buffer } from 'node:buffer';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import kafkajs from 'kafkajs';

const gzip = promisify(zlib.gzip);

/** The zstd level Tripline produces with (3 is zstd's own default: fast, and smaller than GZIP's output). */
export const ZSTD_LEVEL = 3;

/**
 * Level 3 with a 128 KiB window: kafkajs compresses every partition's batch separately, so most inputs are a few
 * KB; batches are at most maxBatchBytes, and the window only bounds back-references (ratio unchanged on span
 * records).
 */
const ZSTD_OPTIONS: zlib.ZstdOptions = {
  params: { [zlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL, [zlib.constants.ZSTD_c_windowLog]: 17 },
};

/** The native compressor inside a zlib stream, as `zlib.zstdCompressSync` itself drives it. */
interface NativeHandle {
  writeSync(
    flush: number,
    input: Uint8Array,
    inOffset: number,
    inLength: number,
    output: Uint8Array,
    outOffset: number,
    outLength: number,
  ): void;
}

/**
 * Compresses one batch. `zstdCompressSync` builds a whole Transform stream, its native handle and a zstd context
 * per call and tears them down again: for a batch of a few KB that is about half the cost (6 KB: ~55 → ~29 µs
 * with warm caches, ~180 → ~90 µs with cold ones, as at low load). So one stream is kept and its native handle
 * is driven the way `zstdCompressSync` drives it: one `writeSync` with ZSTD_e_end into an output at least
 * `ZSTD_compressBound` long. A frame that ends leaves zstd's context ready for the next frame with the same
 * parameters, so the handle is never `reset`: Node's reset also resets the parameters (level, window) to
 * zstd's defaults, and it frees what the context had set up, which doubled the time of a 2 KB frame
 * (~20 → ~10 µs). Any surprise (the stream's internals are not what Node 24 has, an error, input left over)
 * falls back to `zstdCompressSync` for good.
 */
export function createZstdCompressor(): (input: Buffer) => Buffer {
  let reusable = openReusable();
  return (input) => {
    if (reusable !== undefined) {
      const output = reusable(input);
      if (output !== undefined) return output;
      reusable = undefined;
    }
    return zlib.zstdCompressSync(input, ZSTD_OPTIONS);
  };
}

function openReusable(): ((input: Buffer) => Buffer | undefined) | undefined {
  const zstd = zlib.createZstdCompress(ZSTD_OPTIONS);
  // A native error destroys the stream (and emits 'error', which must not go unhandled).
  zstd.on('error', () => undefined);
  const internals = zstd as unknown as { _handle?: Partial<NativeHandle>; _writeState?: unknown };
  const handle = internals._handle;
  const state = internals._writeState;
  if (
    handle === undefined ||
    typeof handle.writeSync !== 'function' ||
    !(state instanceof Uint32Array) ||
    state.length < 2
  )
    return undefined;
  const native = handle as NativeHandle;
  let scratch = Buffer.allocUnsafe(64 * 1024);
  const compress = (input: Buffer): Buffer | undefined => {
    // ≥ ZSTD_compressBound(n) = n + n/256 + up to 64 (+ the frame header): the frame always ends in one call.
    const bound = input.length + (input.length >>> 7) + 1024;
    if (scratch.length < bound) scratch = Buffer.allocUnsafe(bound);
    try {
      native.writeSync(zlib.constants.ZSTD_e_end, input, 0, input.length, scratch, 0, scratch.length);
    } catch {
      return undefined;
    }
    if (zstd.destroyed) return undefined;
    const outputLeft = state[0] as number;
    const inputLeft = state[1] as number;
    // The whole input went in and room was left over, so the frame ended (zstd stops only when output is full).
    if (inputLeft !== 0 || outputLeft === 0) return undefined;
    return Buffer.from(scratch.subarray(0, scratch.length - outputLeft));
  };
  // Proof on samples that the handle does what zstdCompressSync does, frame after frame; else never use it.
  const samples = [
    Buffer.from('tripline zstd codec self-check '.repeat(64)),
    Buffer.from('and the frame after it '.repeat(32)),
  ];
  for (const sample of samples) {
    const proof = compress(sample);
    if (proof === undefined || !zlib.zstdDecompressSync(proof).equals(sample)) return undefined;
  }
  return compress;
}

/** The result of synchronous work as a promise: a throw becomes a rejection, as the async codec's would. */
function settled<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}

/**
 * An output chunk that holds the whole decompressed batch: zlib's default of 16 KiB makes a buffer per chunk and
 * a copy to join them. A gzip stream ends with its length modulo 2^32 (RFC 1952); a zlib stream does not say.
 */
function gzipOutputChunk(input: Buffer): number {
  const stated =
    input.length >= 18 && input[0] === 0x1f && input[1] === 0x8b ? input.readUInt32LE(input.length - 4) : 0;
  const guess = stated > 0 ? stated : input.length * 8;
  return Math.min(64 * 1024 * 1024, Math.max(64 * 1024, guess));
}

let registered = false;

export function registerKafkaCodecs(): void {
  if (registered) return;
  registered = true;
  const codecs = kafkajs.CompressionCodecs as unknown as Record<number, () => unknown>;
  const compress = createZstdCompressor();
  // Decompression is synchronous for both codecs: a consumer decompresses a batch of a few hundred KB at most, and
  // the asynchronous form costs more than the work (a thread-pool round trip, and a buffer per 16 KiB chunk then
  // concatenated: a third of a processor's time outside scoring and storing, measured with kafka.bench.ts).
  codecs[kafkajs.CompressionTypes.ZSTD] = () => ({
    // Synchronous too: the async call's thread-pool round trip cost more than compressing a batch of a few KB.
    compress: (encoder: { buffer: Buffer }) => Promise.resolve(compress(encoder.buffer)),
    decompress: (buffer: Buffer) => settled(() => zlib.zstdDecompressSync(buffer)),
  });
  // GZIP as kafkajs ships it (compression off the event loop: a gateway's batches are larger and level 6 is slow),
  // but decompressed synchronously (`unzip` as kafkajs does: gzip or zlib headers).
  codecs[kafkajs.CompressionTypes.GZIP] = () => ({
    compress: (encoder: { buffer: Buffer }) => gzip(encoder.buffer),
    decompress: (buffer: Buffer) => settled(() => zlib.unzipSync(buffer, { chunkSize: gzipOutputChunk(buffer) })),
  });
}
