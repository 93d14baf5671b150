import { describe, expect, it } from 'vitest';
import {
  CALL_REFUSED,
  decodeHeaderValue,
  errorResponse,
  guardedCallOf,
  headerMismatch,
  outcomeOf,
  parseBody,
  parseTraceParent,
} from '../../../services/mcp-gateway/messages.ts';
import { SseReader } from '../../../services/mcp-gateway/sse.ts';

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01';

describe('MCP messages the gateway reads', () => {
  it('finds a tools/call with its name, arguments and the trace context in _meta', () => {
    const parsed = parseBody(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: { name: 'get_weather', arguments: { city: 'Oslo' }, _meta: { traceparent: TRACEPARENT } },
      }),
    );
    expect(parsed).toEqual({
      kind: 'guarded',
      call: {
        id: 7,
        method: 'tools/call',
        name: 'get_weather',
        arguments: { city: 'Oslo' },
        traceparent: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: '00f067aa0ba902b7', sampled: true },
      },
    });
  });

  it('finds a resources/read by its URI; other messages and notifications pass as they are', () => {
    const read = parseBody(
      JSON.stringify({ jsonrpc: '2.0', id: 'r1', method: 'resources/read', params: { uri: 'file:///a' } }),
    );
    expect(read).toMatchObject({
      kind: 'guarded',
      call: { method: 'resources/read', name: 'file:///a', arguments: undefined },
    });
    expect(parseBody(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }))).toEqual({
      kind: 'other',
      method: 'tools/list',
      id: 1,
      guardedInBatch: false,
    });
    // A client's response to a server's request (protocol 2025-11-25 and earlier) goes on.
    expect(parseBody(JSON.stringify({ jsonrpc: '2.0', id: 9, result: {} }))).toMatchObject({
      kind: 'other',
      method: undefined,
    });
    expect(parseBody(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }))).toMatchObject({
      kind: 'other',
    });
  });

  it('refuses what it cannot read rather than forwarding it unchecked', () => {
    expect(parseBody('{nope')).toMatchObject({ kind: 'invalid', code: -32700 });
    expect(parseBody('{"id": 1}')).toMatchObject({ kind: 'invalid', code: -32600 });
    expect(parseBody(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: {} }))).toMatchObject({
      kind: 'invalid',
      code: -32602,
      reason: 'tools/call needs params.name',
    });
    expect(
      parseBody(JSON.stringify({ jsonrpc: '2.0', id: null, method: 'tools/call', params: { name: 'x' } })),
    ).toMatchObject({
      kind: 'invalid',
    });
    expect(parseBody(JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x' } }]))).toEqual(
      {
        kind: 'other',
        method: undefined,
        guardedInBatch: true,
      },
    );
  });

  it('reads W3C traceparent and rejects malformed or all-zero ids', () => {
    expect(parseTraceParent(TRACEPARENT)?.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(parseTraceParent('00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-00')?.sampled).toBe(false);
    expect(parseTraceParent('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toBeUndefined();
    expect(parseTraceParent('ff-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01')).toBeUndefined();
    expect(parseTraceParent('00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01-extra')).toBeUndefined();
    expect(parseTraceParent(42)).toBeUndefined();
  });

  it('checks Mcp-Method and Mcp-Name against the body, decoding the base64 sentinel form', () => {
    expect(decodeHeaderValue('=?base64?SGVsbG8sIOS4lueVjA==?=')).toBe('Hello, 世界');
    expect(decodeHeaderValue('plain')).toBe('plain');
    expect(decodeHeaderValue('=?base64?!!?=')).toBeUndefined();
    const body = { method: 'tools/call', name: 'get_weather' };
    expect(headerMismatch({ method: undefined, name: undefined }, body)).toBeUndefined();
    expect(headerMismatch({ method: 'tools/call', name: 'get_weather' }, body)).toBeUndefined();
    expect(headerMismatch({ method: 'tools/call', name: '=?base64?Z2V0X3dlYXRoZXI=?=' }, body)).toBeUndefined();
    expect(headerMismatch({ method: 'tools/list', name: undefined }, body)).toMatch(
      /Mcp-Method header value 'tools\/list'/,
    );
    expect(headerMismatch({ method: 'tools/call', name: 'delete_all' }, body)).toMatch(
      /Mcp-Name header value 'delete_all'/,
    );
  });

  it("reads a call's outcome from the response to its id: the result, a tool error, a JSON-RPC error", () => {
    const ok = { jsonrpc: '2.0', id: 3, result: { content: [{ type: 'text', text: 'sunny' }], _meta: { x: 1 } } };
    expect(outcomeOf(ok, 3)).toEqual({ errorType: undefined, result: '{"content":[{"type":"text","text":"sunny"}]}' });
    expect(outcomeOf(ok, 4)).toBeUndefined();
    expect(outcomeOf({ jsonrpc: '2.0', id: 3, result: { content: [], isError: true } }, 3)?.errorType).toBe(
      'tool_error',
    );
    expect(outcomeOf({ jsonrpc: '2.0', id: 3, error: { code: -32602, message: 'no' } }, 3)).toEqual({
      errorType: '-32602',
      result: undefined,
    });
    expect(outcomeOf({ jsonrpc: '2.0', method: 'notifications/progress', params: {} }, 3)).toBeUndefined();
  });

  it('answers a refusal as a JSON-RPC error with its data; reads parsed messages the stdio bridge hands it', () => {
    expect(errorResponse(5, CALL_REFUSED, 'refused', { code: 'TASK_REVOKED' })).toEqual({
      jsonrpc: '2.0',
      id: 5,
      error: { code: -32010, message: 'refused', data: { code: 'TASK_REVOKED' } },
    });
    expect(guardedCallOf({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x' } })?.name).toBe('x');
    expect(guardedCallOf({ jsonrpc: '2.0', id: 1, method: 'ping' })).toBeUndefined();
  });
});

describe('SseReader', () => {
  it('yields the data of complete events across chunk borders and line endings', () => {
    const reader = new SseReader();
    const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
    expect(reader.push(bytes(': keep-alive\n\nevent: message\nid: 1\ndata: {"a"'))).toEqual([]);
    expect(reader.push(bytes(':1}\n\ndata: line1\r'))).toEqual(['{"a":1}']);
    expect(reader.push(bytes('\ndata:line2\r\n\r\n'))).toEqual(['line1\nline2']);
    // A multi-byte character split between chunks.
    const euro = bytes('data: €\n\n');
    expect(reader.push(euro.slice(0, 7))).toEqual([]);
    expect(reader.push(euro.slice(7))).toEqual(['€']);
  });
});
