/**
 * OTLP/HTTP trace receiver: `POST /v1/traces` on a Fastify app, as the OpenTelemetry specification (OTLP/HTTP)
 * defines it, with the answers OTLP clients act on:
 *
 * | situation                                              | status | body (in the request's format unless noted) |
 * | ------------------------------------------------------ | ------ | ------------------------------------------- |
 * | accepted (also: empty body, zero spans)                 | 200    | ExportTraceServiceResponse (`{}` / empty)   |
 * | handler rejected some spans or sent a warning           | 200    | `partialSuccess { rejectedSpans, errorMessage }` |
 * | body cannot be decoded, corrupt gzip                    | 400    | google.rpc.Status, code 3 INVALID_ARGUMENT  |
 * | body over `maxBodyBytes`, as sent or after gunzip       | 413    | google.rpc.Status, code 3                   |
 * | content type other than protobuf/JSON (or none)         | 415    | google.rpc.Status as JSON, code 3           |
 * | content encoding other than gzip/identity               | 415    | google.rpc.Status, code 3                   |
 * | no token, or an unknown or revoked one (`authenticate`) | 401    | Status code 16 UNAUTHENTICATED + WWW-Authenticate |
 * | a token that may not send spans (not an agent token)    | 403    | Status code 7 PERMISSION_DENIED             |
 * | the token's tenant is over its rate limit               | 429    | Status code 8 RESOURCE_EXHAUSTED + Retry-After |
 * | the receiver holds `maxInFlightBytes` of requests       | 429    | Status code 8 RESOURCE_EXHAUSTED + Retry-After |
 * | handler throws PIPELINE_BUSY                            | 429    | Status code 8 RESOURCE_EXHAUSTED + Retry-After |
 * | handler throws PIPELINE_UNAVAILABLE, SHUTTING_DOWN, any | 503    | Status code 14 UNAVAILABLE + Retry-After    |
 * |   other retriable error, or an unexpected error         |        | (never 500: OTLP clients drop data on 500)  |
 *
 * An unsupported Content-Encoding gets 415 (RFC 9110 §15.5.16: "...or the Content-Encoding of the request"),
 * which OTLP clients do not retry, rather than the 400 the upstream collector answers; both are final.
 *
 * The token is checked, and the tenant's rate limit applied, before the body is read: a request that will be
 * refused costs no decompression or decoding. OTLP clients do not retry 401.
 *
 * The route lives in an encapsulated plugin with its own body parsers (raw bytes for the three OTLP media
 * types) and error handler, so the app's other routes keep Fastify's JSON parsing and error handling.
 */
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { OtlpFormat, OtlpTraceRequest } from '../../schemas/otlp.ts';
import { TriplineError, isTriplineError, messageOf } from '../shared/errors.ts';
import type { TenantRateLimiter } from '../auth/rate-limit.ts';
import type { AgentBinding } from '../core/agent-binding.ts';
import { RPC_CODE, countSpans, decodeTraceRequest, encodeRpcStatus, encodeTraceResponse } from '../otlp/codec.ts';

/** What the receiver tells the handler besides the request. */
export interface OtlpHandlerContext {
  tenant: string;
  format: OtlpFormat;
  /** The agent ids the request's token may speak for (services/core/agent-binding.ts); empty: any of its tenant. */
  agents: AgentBinding;
}

/** Who sent a request, from its token: the tenant and the agents it may speak for. */
export interface IngestCaller {
  tenant: string;
  agents: AgentBinding;
}

/** The handler's verdict: how many spans it rejected (0 for none) and, optionally, why. */
export interface OtlpHandlerResult {
  rejectedSpans: number;
  errorMessage?: string;
  /** Spans the request held, charged to the tenant's rate limit (the protobuf handler counts them). */
  spans?: number;
}

/**
 * Takes a decoded request with at least one span. Throw `TriplineError('PIPELINE_BUSY')` for 429, or
 * `PIPELINE_UNAVAILABLE` / `SHUTTING_DOWN` for 503, with `details.retryAfterSeconds` to advertise a delay.
 */
export type OtlpTraceHandler = (request: OtlpTraceRequest, context: OtlpHandlerContext) => Promise<OtlpHandlerResult>;

export interface OtlpReceiverOptions {
  /**
   * Largest request body accepted, in bytes, both as received and after decompression; larger bodies get
   * 413. Decompression stops at this size, so a gzip bomb costs at most this much memory.
   */
  maxBodyBytes: number;
  /** Called for every request that holds at least one span. */
  handler: OtlpTraceHandler;
  /**
   * When set, protobuf requests go to it as bytes (after gunzip) instead of being decoded for `handler`; it
   * throws TriplineError OTLP_BAD_REQUEST for bytes that are not a request (→ 400).
   */
  protobufHandler?: (body: Uint8Array, context: OtlpHandlerContext) => Promise<OtlpHandlerResult>;
  /**
   * The tenant of a request (a string: any agent of it) or its caller (tenant and agent binding) from its
   * `Authorization` header; throws TriplineError UNAUTHENTICATED (→ 401) for a missing, unknown or revoked token.
   * Tripline's entry points always set it.
   * @default every request is the tenant `default` (for embedding the receiver behind other authentication)
   */
  authenticate?: (authorization: string | undefined) => Promise<string | IngestCaller>;
  /** Per-tenant span rate limits (→ 429 with Retry-After). @default none */
  rateLimiter?: TenantRateLimiter;
  /**
   * Request bytes (as declared by Content-Length, or `maxBodyBytes` when not declared) the receiver holds at
   * once; a request that would pass it gets 429 with Retry-After before its body is read, so a flood of
   * clients is refused instead of queued in memory. One request is always let in.
   * @default unlimited
   */
  maxInFlightBytes?: number;
}

/** The path OTLP/HTTP clients post traces to. */
export const OTLP_TRACES_PATH = '/v1/traces';

/** Retry-After (seconds) advertised with 429 and 503 when the error does not name one. */
const DEFAULT_RETRY_AFTER_SECONDS = 1;

const MEDIA_TYPES: Readonly<Record<string, OtlpFormat>> = {
  'application/x-protobuf': 'protobuf',
  'application/protobuf': 'protobuf',
  'application/json': 'json',
};

const gunzipAsync = promisify(gunzip);
const EMPTY_BODY = Buffer.alloc(0);

/**
 * Adds `POST /v1/traces` to `app` (inside an encapsulated plugin; the route exists once the app is ready).
 *
 * @throws TriplineError `CONFIG_INVALID` when `maxBodyBytes` is not a positive integer.
 */
export function registerOtlpReceiver(app: FastifyInstance, options: OtlpReceiverOptions): void {
  const { maxBodyBytes, handler } = options;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes <= 0) {
    throw new TriplineError(
      'CONFIG_INVALID',
      `OTLP receiver maxBodyBytes must be a positive integer (bytes), got ${String(maxBodyBytes)}`,
    );
  }
  const authenticate = options.authenticate ?? ((): Promise<string> => Promise.resolve('default'));
  const { rateLimiter } = options;
  const maxInFlightBytes = options.maxInFlightBytes ?? Number.POSITIVE_INFINITY;
  let inFlightBytes = 0;
  const reserved = new WeakMap<FastifyRequest, number>();
  const release = (request: FastifyRequest): void => {
    const bytes = reserved.get(request);
    if (bytes === undefined) return;
    reserved.delete(request);
    inFlightBytes -= bytes;
  };
  const callers = new WeakMap<FastifyRequest, IngestCaller>();
  const callerOf = (request: FastifyRequest): IngestCaller => {
    const caller = callers.get(request);
    if (caller === undefined) throw new TriplineError('UNAUTHENTICATED', 'the request was not authenticated');
    return caller;
  };

  void app.register((scope, _pluginOptions, done) => {
    // Raw bytes for the OTLP media types only; decoding happens in the route, after decompression.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      Object.keys(MEDIA_TYPES),
      { parseAs: 'buffer', bodyLimit: maxBodyBytes },
      (_request, body, parsed) => {
        parsed(null, body);
      },
    );
    scope.setErrorHandler((error, request, reply) => sendError(error, request, reply, maxBodyBytes));

    const routeOptions = {
      bodyLimit: maxBodyBytes,
      // Refuse an unknown token, a tenant over its limit and an unsupported Content-Encoding before the body is read.
      onRequest: async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
        const authenticated = await authenticate(request.headers.authorization);
        const caller = typeof authenticated === 'string' ? { tenant: authenticated, agents: [] } : authenticated;
        callers.set(request, caller);
        const { tenant } = caller;
        const waitSeconds = rateLimiter?.admit(tenant);
        if (waitSeconds !== undefined) {
          throw new TriplineError(
            'TENANT_RATE_LIMITED',
            `tenant ${JSON.stringify(tenant)} is over its ingest rate limit; retry in ${String(waitSeconds)} s`,
            { details: { retryAfterSeconds: waitSeconds } },
          );
        }
        isGzip(request.headers['content-encoding']);
        const declared = Number(request.headers['content-length']);
        const bytes = Number.isSafeInteger(declared) && declared >= 0 ? Math.min(declared, maxBodyBytes) : maxBodyBytes;
        if (inFlightBytes > 0 && inFlightBytes + bytes > maxInFlightBytes) {
          throw new TriplineError(
            'PIPELINE_BUSY',
            `the receiver holds ${String(inFlightBytes)} bytes of requests (limit ${String(maxInFlightBytes)}); retry later`,
            { details: { retryAfterSeconds: 1 } },
          );
        }
        inFlightBytes += bytes;
        reserved.set(request, bytes);
        // Released when the answer is sent or the connection goes away, whichever comes first.
        reply.raw.once('close', () => release(request));
      },
      onResponse: (request: FastifyRequest, _reply: FastifyReply, done: () => void): void => {
        release(request);
        done();
      },
    };
    scope.post(OTLP_TRACES_PATH, routeOptions, async (request, reply) => {
      const mediaType = mediaTypeOf(request.headers['content-type']);
      const format = mediaType === undefined ? undefined : MEDIA_TYPES[mediaType];
      if (format === undefined) {
        throw new TriplineError(
          'OTLP_UNSUPPORTED_MEDIA_TYPE',
          `unsupported content type ${JSON.stringify(request.headers['content-type'] ?? '')}; send application/x-protobuf or application/json`,
        );
      }
      const gzipped = isGzip(request.headers['content-encoding']);
      const raw = Buffer.isBuffer(request.body) ? request.body : EMPTY_BODY;
      const body = gzipped && raw.length > 0 ? await gunzipLimited(raw, maxBodyBytes) : raw;
      const { tenant, agents } = callerOf(request);
      let result: OtlpHandlerResult = { rejectedSpans: 0 };
      let spans = 0;
      if (format === 'protobuf' && options.protobufHandler !== undefined) {
        if (body.length > 0) {
          result = await options.protobufHandler(body, { tenant, format, agents });
          spans = result.spans ?? 0;
        }
      } else {
        const decoded = decodeTraceRequest(body, format);
        spans = countSpans(decoded);
        if (spans > 0) result = await handler(decoded, { tenant, format, agents });
      }
      rateLimiter?.charge(tenant, spans, body.length);

      return reply
        .code(200)
        .header('content-type', mediaType)
        .send(toBuffer(encodeTraceResponse(result.rejectedSpans, result.errorMessage, format)));
    });
    done();
  });
}

/** The media type of a Content-Type header, lowercased and without parameters. */
function mediaTypeOf(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const semicolon = contentType.indexOf(';');
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
}

/** Whether the body is gzip; absent and `identity` mean not encoded; anything else is refused with 415. */
function isGzip(contentEncoding: string | undefined): boolean {
  if (contentEncoding === undefined) return false;
  const codings = contentEncoding
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity');
  if (codings.length === 0) return false;
  if (codings.length === 1 && (codings[0] === 'gzip' || codings[0] === 'x-gzip')) return true;
  throw new TriplineError(
    'OTLP_UNSUPPORTED_MEDIA_TYPE',
    `unsupported content encoding ${JSON.stringify(contentEncoding)}; send gzip or identity`,
  );
}

/** Gunzips with a hard output limit (zlib stops as soon as the output passes it). */
async function gunzipLimited(raw: Buffer, limit: number): Promise<Buffer> {
  try {
    return await gunzipAsync(raw, { maxOutputLength: limit });
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new TriplineError(
        'OTLP_PAYLOAD_TOO_LARGE',
        `the request is larger than ${String(limit)} bytes after decompression`,
      );
    }
    throw new TriplineError('OTLP_BAD_REQUEST', `the gzip body could not be decompressed (${messageOf(error)})`, {
      cause: error,
    });
  }
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Fastify's own errors that the receiver answers as the OTLP specification wants. */
function fastifyErrorAnswer(code: string, maxBodyBytes: number): { status: number; message: string } | undefined {
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, message: `the request body is larger than the limit of ${String(maxBodyBytes)} bytes` };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, message: 'unsupported content type; send application/x-protobuf or application/json' };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, message: 'the request body does not match its Content-Length' };
    default:
      return undefined;
  }
}

interface ErrorAnswer {
  status: number;
  rpcCode: number;
  message: string;
  retryAfterSeconds?: number;
}

function answerFor(error: unknown, request: FastifyRequest, maxBodyBytes: number): ErrorAnswer {
  if (isTriplineError(error)) {
    switch (error.code) {
      case 'OTLP_BAD_REQUEST':
      case 'OTLP_PAYLOAD_TOO_LARGE':
      case 'OTLP_UNSUPPORTED_MEDIA_TYPE':
        return { status: error.status, rpcCode: RPC_CODE.INVALID_ARGUMENT, message: error.message };
      case 'UNAUTHENTICATED':
        return { status: 401, rpcCode: RPC_CODE.UNAUTHENTICATED, message: error.message };
      case 'FORBIDDEN':
        return { status: 403, rpcCode: RPC_CODE.PERMISSION_DENIED, message: error.message };
      case 'PIPELINE_BUSY':
      case 'TENANT_RATE_LIMITED':
        return {
          status: 429,
          rpcCode: RPC_CODE.RESOURCE_EXHAUSTED,
          message: error.message,
          retryAfterSeconds: retryAfterOf(error),
        };
      default:
        if (!error.retriable)
          request.log.error({ err: error }, 'OTLP trace handler failed; answering 503 so that the client retries');
        else request.log.warn({ code: error.code, message: error.message }, 'OTLP traces refused for now (503)');
        return {
          status: 503,
          rpcCode: RPC_CODE.UNAVAILABLE,
          message: error.message,
          retryAfterSeconds: retryAfterOf(error),
        };
    }
  }
  const code = (error as { code?: unknown } | null)?.code;
  const known = typeof code === 'string' ? fastifyErrorAnswer(code, maxBodyBytes) : undefined;
  if (known !== undefined) return { status: known.status, rpcCode: RPC_CODE.INVALID_ARGUMENT, message: known.message };
  const statusCode = (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500 && statusCode !== 429) {
    // e.g. the client aborted while sending the body
    return { status: statusCode, rpcCode: RPC_CODE.INVALID_ARGUMENT, message: messageOf(error) };
  }
  request.log.error({ err: error }, 'OTLP trace handler failed unexpectedly; answering 503 so that the client retries');
  return {
    status: 503,
    rpcCode: RPC_CODE.UNAVAILABLE,
    message: 'the trace pipeline failed unexpectedly; retry later',
    retryAfterSeconds: DEFAULT_RETRY_AFTER_SECONDS,
  };
}

function retryAfterOf(error: TriplineError): number {
  const seconds = error.details.retryAfterSeconds;
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0
    ? Math.ceil(seconds)
    : DEFAULT_RETRY_AFTER_SECONDS;
}

function sendError(error: unknown, request: FastifyRequest, reply: FastifyReply, maxBodyBytes: number): FastifyReply {
  const answer = answerFor(error, request, maxBodyBytes);
  // The error body uses the request's format when it is one of ours, else JSON (e.g. for 415).
  const mediaType = mediaTypeOf(request.headers['content-type']);
  const format = (mediaType === undefined ? undefined : MEDIA_TYPES[mediaType]) ?? 'json';
  if (answer.retryAfterSeconds !== undefined) void reply.header('retry-after', String(answer.retryAfterSeconds));
  if (answer.status === 401) void reply.header('www-authenticate', 'Bearer realm="tripline-otlp"');
  return reply
    .code(answer.status)
    .header('content-type', format === 'json' ? 'application/json' : (mediaType ?? 'application/x-protobuf'))
    .send(toBuffer(encodeRpcStatus(answer.rpcCode, answer.message, format)));
}
