/**
 * How an OTLP decode fails: the decoders throw `DecodeError`, and the public `decodeTraceRequest` turns it into
 * `TriplineError('OTLP_BAD_REQUEST')` whose message says where the input went wrong.
 */
import type { OtlpFormat } from '../../schemas/otlp.ts';
import { TriplineError, messageOf } from '../shared/errors.ts';

/** A decoding failure inside the decoders; turned into `TriplineError('OTLP_BAD_REQUEST')` at the boundary. */
export class DecodeError extends Error {
  /** Where in the input (JSON path segments, outermost first). */
  readonly path: string[] = [];
}

export function fail(message: string): never {
  throw new DecodeError(message);
}

export function asBadRequest(error: unknown, format: OtlpFormat): TriplineError {
  if (error instanceof TriplineError) return error;
  if (error instanceof DecodeError) {
    const where = error.path.length > 0 ? ` at ${error.path.join('.').replaceAll('.[', '[')}` : '';
    return new TriplineError(
      'OTLP_BAD_REQUEST',
      `invalid OTLP/${format === 'json' ? 'JSON' : 'protobuf'} trace request${where}: ${error.message}`,
    );
  }
  // Not expected (the decoders throw DecodeError), but a request must never turn into a 500.
  return new TriplineError(
    'OTLP_BAD_REQUEST',
    `invalid OTLP/${format === 'json' ? 'JSON' : 'protobuf'} trace request: ${messageOf(error)}`,
    {
      cause: error,
    },
  );
}
