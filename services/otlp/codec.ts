/**
 * OTLP trace codec: `ExportTraceServiceRequest` bytes (protobuf or OTLP/JSON) to and from the decoded shape
 * of `schemas/otlp.ts`, plus the OTLP/HTTP response bodies (`ExportTraceServiceResponse`, `google.rpc.Status`).
 *
 * The schema is `schemas/otlp/**.proto` (opentelemetry-proto v1.11.0), loaded once with protobufjs
 * (services/otlp/schema.ts). Requests are decoded by a single-pass decoder written against that schema
 * (services/otlp/decode-protobuf.ts) and encoded with protobufjs's `Writer` (services/otlp/encode.ts); OTLP/JSON
 * is decoded by services/otlp/decode-json.ts. The unit tests check both against protobufjs's reflection codec
 * for the same `.proto` files (byte for byte) and against bytes produced by the OpenTelemetry JS exporter.
 *
 * Decoding is strict where the upstream collector (pdata) is strict and lenient where it is lenient:
 * truncated input, a known field with the wrong wire type, an id of the wrong length, invalid hex, invalid
 * JSON or a JSON value of the wrong type are rejected; unknown fields are skipped. Every failure is a
 * `TriplineError('OTLP_BAD_REQUEST')` whose message says where the input went wrong.
 */
import { Buffer } from 'node:buffer';
import type { OtlpFormat, OtlpTraceRequest } from '../../schemas/otlp.ts';
import { TriplineError } from '../shared/errors.ts';
import { asBadRequest } from './decode-error.ts';
import { decodeJsonRequest } from './decode-json.ts';
import { decodeProtobufRequest } from './decode-protobuf.ts';
import { otlpSchema } from './schema.ts';

export { MAX_ANY_VALUE_DEPTH } from './decode-limits.ts';
export { encodeTraceRequest } from './encode.ts';
export { uint64ToDecimal } from './int64.ts';
export { otlpSchema } from './schema.ts';

/** `google.rpc.Code` values used in OTLP/HTTP error bodies. */
export const RPC_CODE = {
  OK: 0,
  INVALID_ARGUMENT: 3,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

const ExportTraceServiceResponse = otlpSchema.lookupType(
  'opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse',
);
const RpcStatus = otlpSchema.lookupType('google.rpc.Status');

/**
 * Decodes an OTLP/HTTP trace request body (already decompressed).
 *
 * An empty body (or, for JSON, a body of only whitespace) is a valid request with no spans. Ids come out as
 * lowercase hex ('' when absent or all zeroes), timestamps as decimal strings, `intValue` as a number when it
 * is a safe integer and as a decimal string otherwise; fields at their default value are left out.
 *
 * @throws TriplineError `OTLP_BAD_REQUEST` when the body cannot be decoded (never another error type).
 */
export function decodeTraceRequest(body: Uint8Array, format: OtlpFormat): OtlpTraceRequest {
  const name: string = format; // checked at run time too: callers may come from untyped code
  if (name !== 'protobuf' && name !== 'json') {
    throw new TriplineError(
      'OTLP_UNSUPPORTED_MEDIA_TYPE',
      `unknown OTLP format ${JSON.stringify(name)}; use 'protobuf' or 'json'`,
    );
  }
  try {
    return format === 'protobuf' ? decodeProtobufRequest(body) : decodeJsonRequest(body);
  } catch (error) {
    throw asBadRequest(error, format);
  }
}

/**
 * Body of a successful OTLP/HTTP export: an empty `ExportTraceServiceResponse` (`{}` in JSON) when nothing
 * was rejected and there is no message, else `partialSuccess { rejectedSpans, errorMessage }`. A message with
 * `rejectedSpans` 0 is a warning, as the specification allows.
 */
export function encodeTraceResponse(
  rejectedSpans: number,
  errorMessage: string | undefined,
  format: OtlpFormat,
): Uint8Array {
  const rejected = Number.isSafeInteger(rejectedSpans) && rejectedSpans > 0 ? rejectedSpans : 0;
  const message = errorMessage ?? '';
  if (rejected === 0 && message === '') {
    return format === 'json' ? Buffer.from('{}') : new Uint8Array(0);
  }
  if (format === 'json') {
    const partialSuccess: { rejectedSpans?: string; errorMessage?: string } = {};
    if (rejected > 0) partialSuccess.rejectedSpans = String(rejected);
    if (message !== '') partialSuccess.errorMessage = message;
    return Buffer.from(JSON.stringify({ partialSuccess }));
  }
  const partialSuccess: { rejectedSpans?: number; errorMessage?: string } = {};
  if (rejected > 0) partialSuccess.rejectedSpans = rejected;
  if (message !== '') partialSuccess.errorMessage = message;
  return ExportTraceServiceResponse.encode(ExportTraceServiceResponse.fromObject({ partialSuccess })).finish();
}

/** Body of an OTLP/HTTP error: `google.rpc.Status { code, message }` (see RPC_CODE), without details. */
export function encodeRpcStatus(code: number, message: string, format: OtlpFormat): Uint8Array {
  if (format === 'json') return Buffer.from(JSON.stringify({ code, message }));
  return RpcStatus.encode(RpcStatus.fromObject({ code, message })).finish();
}

/** Number of spans in a request. */
export function countSpans(request: OtlpTraceRequest): number {
  let count = 0;
  for (const resourceSpans of request.resourceSpans) {
    for (const scopeSpans of resourceSpans.scopeSpans) count += scopeSpans.spans.length;
  }
  return count;
}
