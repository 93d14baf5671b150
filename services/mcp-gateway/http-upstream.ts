/**
 * Forwarding to a Streamable HTTP upstream: the client's request as it came (method, MCP headers, body bytes),
 * the gateway's own credentials for the upstream instead of the client's (an MCP server must not pass its
 * client's token on), and the upstream's answer streamed back untouched (JSON, SSE, 202, errors). When asked,
 * the response is read as it passes for the JSON-RPC response to one request id (a guarded call's outcome, a
 * `tools/list` result).
 */
import type { HttpUpstream } from './config.ts';
import { isObject } from './messages.ts';
import type { JsonRpcId } from './messages.ts';
import { SseReader } from './sse.ts';

/** Request headers passed to the upstream (the MCP transport's and content negotiation). */
const FORWARDED_REQUEST_HEADERS = [
  'accept',
  'content-type',
  'mcp-session-id',
  'mcp-protocol-version',
  'mcp-method',
  'mcp-name',
  'last-event-id',
];
/** Response headers passed back to the client. */
const FORWARDED_RESPONSE_HEADERS = [
  'content-type',
  'mcp-session-id',
  'mcp-protocol-version',
  'cache-control',
  'x-accel-buffering',
  'retry-after',
  'allow',
];
/** A JSON response read for an outcome is looked at up to this size (it is forwarded whole in any case). */
const MAX_OBSERVED_JSON_BYTES = 8 * 1024 * 1024;

export interface ForwardRequest {
  method: string;
  headers: Headers;
  body: string | undefined;
  signal: AbortSignal;
}

/** Called once with the response message to the watched id, or undefined when none came. */
export type ResponseWatcher = { id: JsonRpcId; onMessage(message: Record<string, unknown> | undefined): void };

export async function forwardHttp(
  upstream: HttpUpstream,
  request: ForwardRequest,
  watch?: ResponseWatcher,
): Promise<Response> {
  const headers = new Headers(upstream.headers);
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = request.headers.get(name);
    if (value !== null) headers.set(name, value);
  }
  for (const [name, value] of request.headers) if (name.startsWith('mcp-param-')) headers.set(name, value);
  let upstreamResponse: Response;
  try {
    upstreamResponse = await fetch(upstream.url, {
      method: request.method,
      headers,
      ...(request.body === undefined ? {} : { body: request.body }),
      signal: request.signal,
      redirect: 'manual',
    });
  } catch (error) {
    watch?.onMessage(undefined);
    if (request.signal.aborted) throw error;
    return gatewayError(
      502,
      `the MCP server could not be reached (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  const responseHeaders = new Headers();
  for (const name of FORWARDED_RESPONSE_HEADERS) {
    const value = upstreamResponse.headers.get(name);
    if (value !== null) responseHeaders.set(name, value);
  }
  if (upstreamResponse.status === 401 || upstreamResponse.status === 403) {
    // The upstream refused the gateway's own credentials: the client's cannot fix that (and must not be sent
    // to the upstream's authorization server).
    await upstreamResponse.body?.cancel();
    watch?.onMessage(undefined);
    return gatewayError(
      502,
      `the MCP server refused the gateway's credentials (HTTP ${String(upstreamResponse.status)})`,
    );
  }
  const body = upstreamResponse.body;
  if (body === null || watch === undefined) {
    watch?.onMessage(undefined);
    return new Response(body, { status: upstreamResponse.status, headers: responseHeaders });
  }
  const contentType = upstreamResponse.headers.get('content-type') ?? '';
  return new Response(body.pipeThrough(observer(contentType, watch, request.signal)), {
    status: upstreamResponse.status,
    headers: responseHeaders,
  });
}

/** Passes the bytes through and finds the response to the watched id in them (JSON or SSE). */
function observer(
  contentType: string,
  watch: ResponseWatcher,
  signal: AbortSignal,
): TransformStream<Uint8Array, Uint8Array> {
  let done = false;
  const finish = (message: Record<string, unknown> | undefined): void => {
    if (done) return;
    done = true;
    watch.onMessage(message);
  };
  const matches = (candidate: unknown): Record<string, unknown> | undefined =>
    isObject(candidate) && candidate.id === watch.id && ('result' in candidate || 'error' in candidate)
      ? candidate
      : undefined;
  signal.addEventListener('abort', () => finish(undefined), { once: true });
  if (contentType.includes('text/event-stream')) {
    const reader = new SseReader();
    return new TransformStream({
      transform(chunk, controller) {
        controller.enqueue(chunk);
        if (done) return;
        for (const data of reader.push(chunk)) {
          const found = matches(parseJson(data));
          if (found !== undefined) return finish(found);
        }
      },
      flush: () => finish(undefined),
    });
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  return new TransformStream({
    transform(chunk, controller) {
      controller.enqueue(chunk);
      size += chunk.byteLength;
      if (size <= MAX_OBSERVED_JSON_BYTES) chunks.push(chunk);
    },
    flush() {
      if (size > MAX_OBSERVED_JSON_BYTES) return finish(undefined);
      finish(matches(parseJson(Buffer.concat(chunks).toString('utf8'))));
    },
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** An error of the gateway itself (not the upstream's), as a JSON-RPC error without id. */
export function gatewayError(status: number, message: string, headers: Record<string, string> = {}): Response {
  return Response.json({ jsonrpc: '2.0', id: null, error: { code: -32603, message } }, { status, headers });
}
