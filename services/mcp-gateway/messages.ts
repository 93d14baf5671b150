/**
 * What the gateway reads of MCP's JSON-RPC messages: which requests it guards (`tools/call`, `resources/read`),
 * their name or URI, the W3C trace context a client put in `_meta`, and the refusal it answers with. Pure.
 */

export type JsonRpcId = string | number;

/** A request the gateway guards and records. */
export interface GuardedCall {
  id: JsonRpcId;
  method: 'tools/call' | 'resources/read';
  /** The tool's name, or the resource's URI. */
  name: string;
  /** `params.arguments` of a tool call (undefined for a resource read). */
  arguments: unknown;
  traceparent: TraceParent | undefined;
}

export interface TraceParent {
  traceId: string;
  spanId: string;
  sampled: boolean;
}

export type ParsedBody =
  | { kind: 'guarded'; call: GuardedCall }
  | { kind: 'other'; method: string | undefined; id: JsonRpcId | undefined; guardedInBatch: boolean }
  | { kind: 'invalid'; code: number; reason: string };

/** JSON-RPC's parse error and invalid request. */
export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;
export const INVALID_PARAMS = -32602;
/** Mcp-Name / Mcp-Method that disagree with the body (2026-07-28, HeaderMismatch). */
export const HEADER_MISMATCH = -32020;
/**
 * The gateway's refusal of a call (a revoked or escalated task, a policy denial): in the range the MCP
 * specification leaves to implementations (-32000 to -32019), apart from the SDKs' own (-32000, -32001).
 */
export const CALL_REFUSED = -32010;

const GUARDED = new Set(['tools/call', 'resources/read']);

/** Reads a POST body: a guarded call, another message (or a batch), or something that is not JSON-RPC. */
export function parseBody(text: string): ParsedBody {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { kind: 'invalid', code: PARSE_ERROR, reason: 'the body is not JSON' };
  }
  if (Array.isArray(parsed)) {
    // Batches (2025-03-26 only): the gateway cannot answer part of one, so it refuses batches holding a guarded call.
    const guardedInBatch = parsed.some(
      (item) => isObject(item) && typeof item.method === 'string' && GUARDED.has(item.method),
    );
    return { kind: 'other', method: undefined, id: undefined, guardedInBatch };
  }
  if (!isObject(parsed) || parsed.jsonrpc !== '2.0')
    return { kind: 'invalid', code: INVALID_REQUEST, reason: 'not a JSON-RPC 2.0 message' };
  const method = typeof parsed.method === 'string' ? parsed.method : undefined;
  const id = typeof parsed.id === 'string' || typeof parsed.id === 'number' ? parsed.id : undefined;
  if (method === undefined || !GUARDED.has(method) || !('id' in parsed))
    return { kind: 'other', method, id, guardedInBatch: false };
  if (id === undefined)
    return { kind: 'invalid', code: INVALID_REQUEST, reason: 'a request id must be a string or number' };
  const params = isObject(parsed.params) ? parsed.params : {};
  const name = method === 'tools/call' ? params.name : params.uri;
  if (typeof name !== 'string' || name === '')
    return {
      kind: 'invalid',
      code: INVALID_PARAMS,
      reason: `${method} needs params.${method === 'tools/call' ? 'name' : 'uri'}`,
    };
  const meta = isObject(params._meta) ? params._meta : {};
  return {
    kind: 'guarded',
    call: {
      id,
      method: method as GuardedCall['method'],
      name,
      arguments: method === 'tools/call' ? params.arguments : undefined,
      traceparent: parseTraceParent(meta.traceparent),
    },
  };
}

/** The guarded call of a parsed message object (the stdio bridge hands messages already parsed). */
export function guardedCallOf(message: unknown): GuardedCall | undefined {
  if (!isObject(message) || typeof message.method !== 'string' || !GUARDED.has(message.method)) return undefined;
  const parsed = parseBody(JSON.stringify(message));
  return parsed.kind === 'guarded' ? parsed.call : undefined;
}

/** W3C traceparent (version 00; later versions read by the same first four fields). */
export function parseTraceParent(value: unknown): TraceParent | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/.exec(value.trim());
  if (match === null) return undefined;
  const [, version, traceId, spanId, flags, rest] = match;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === undefined || spanId === undefined || flags === undefined) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, sampled: (Number.parseInt(flags, 16) & 1) === 1 };
}

/**
 * Decodes an `Mcp-Name` / `Mcp-Param-*` header value: plain, or `=?base64?…?=` (2026-07-28, Value Encoding).
 * Undefined when the encoded form is malformed.
 */
export function decodeHeaderValue(value: string): string | undefined {
  const match = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/.exec(value);
  if (match?.[1] === undefined) return value.startsWith('=?base64?') ? undefined : value;
  return Buffer.from(match[1], 'base64').toString('utf8');
}

/**
 * Whether the standard request headers a client sent agree with the body (the gateway reads the body, so it
 * must check them: an intermediary routing on the header and the server executing the body must see one call).
 * Headers that are absent are not required here: clients of protocol versions before 2026-07-28 send none.
 */
export function headerMismatch(
  headers: { method: string | undefined; name: string | undefined },
  body: { method: string | undefined; name: string | undefined },
): string | undefined {
  if (headers.method !== undefined && headers.method !== body.method)
    return `Header mismatch: Mcp-Method header value '${headers.method}' does not match body value '${body.method ?? ''}'`;
  if (headers.name !== undefined) {
    const decoded = decodeHeaderValue(headers.name);
    if (decoded === undefined) return 'Header mismatch: the Mcp-Name header is not validly encoded';
    if (body.name !== undefined && decoded !== body.name)
      return `Header mismatch: Mcp-Name header value '${decoded}' does not match body value '${body.name}'`;
  }
  return undefined;
}

export interface JsonRpcError {
  jsonrpc: '2.0';
  id: JsonRpcId | null;
  error: { code: number; message: string; data?: unknown };
}

export function errorResponse(id: JsonRpcId | null, code: number, message: string, data?: unknown): JsonRpcError {
  return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } };
}

/** The outcome of a guarded call, read from the upstream's response. */
export interface CallOutcome {
  /** JSON-RPC error code, or `tool_error` for a result with `isError: true`. */
  errorType: string | undefined;
  /** The result as the client receives it (content, structured content), JSON text. */
  result: string | undefined;
}

/** The response to `id` among messages, when it is there. */
export function outcomeOf(message: unknown, id: JsonRpcId): CallOutcome | undefined {
  if (!isObject(message) || message.id !== id || !('result' in message || 'error' in message)) return undefined;
  if (isObject(message.error)) {
    const code = message.error.code;
    return { errorType: typeof code === 'number' ? String(code) : 'error', result: undefined };
  }
  const result = isObject(message.result) ? message.result : {};
  const recorded: Record<string, unknown> = {};
  for (const key of ['content', 'structuredContent', 'contents'] as const)
    if (result[key] !== undefined) recorded[key] = result[key];
  return {
    errorType: result.isError === true ? 'tool_error' : undefined,
    result: JSON.stringify(recorded),
  };
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
