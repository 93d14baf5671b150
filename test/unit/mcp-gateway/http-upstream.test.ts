import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forwardHttp } from '../../../services/mcp-gateway/http-upstream.ts';
import type { HttpUpstream } from '../../../services/mcp-gateway/config.ts';

const SSE_BODY =
  'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\n\n' +
  'event: message\ndata: {"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"streamed"}]}}\n\n';

describe('forwarding to a Streamable HTTP upstream', () => {
  let server: Server;
  let url: string;
  const seen: IncomingHttpHeaders[] = [];

  beforeAll(async () => {
    server = createServer((request, response) => {
      seen.push(request.headers);
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { id?: number; method?: string };
        if (body.method === 'deny') {
          response.writeHead(401, { 'www-authenticate': 'Bearer realm="upstream"' }).end();
        } else if (body.id === 2) {
          response.writeHead(200, { 'content-type': 'text/event-stream', 'mcp-session-id': 's-1' });
          // Split mid-event, as the network may.
          response.write(SSE_BODY.slice(0, 120));
          setTimeout(() => response.end(SSE_BODY.slice(120)), 20);
        } else {
          response
            .writeHead(200, { 'content-type': 'application/json', 'set-cookie': 'a=b' })
            .end(JSON.stringify({ jsonrpc: '2.0', id: body.id, result: { content: [], isError: true } }));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    url = `http://127.0.0.1:${String(address.port)}/mcp`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const upstream = (): HttpUpstream => ({ kind: 'http', url, headers: { 'x-api-key': 'gateway-own-key' } });
  const post = (body: unknown): { method: string; headers: Headers; body: string; signal: AbortSignal } => ({
    method: 'POST',
    headers: new Headers({
      authorization: 'Bearer client-task-token',
      cookie: 'session=client',
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': 'x',
      'mcp-param-region': 'eu',
    }),
    body: JSON.stringify(body),
    signal: new AbortController().signal,
  });

  it("passes a JSON answer through and reads its outcome; sends the gateway's credentials, never the client's", async () => {
    let watched: unknown = 'not called';
    const response = await forwardHttp(upstream(), post({ jsonrpc: '2.0', id: 1, method: 'tools/call' }), {
      id: 1,
      onMessage: (message) => (watched = message),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('set-cookie')).toBeNull();
    expect(await response.json()).toEqual({ jsonrpc: '2.0', id: 1, result: { content: [], isError: true } });
    expect(watched).toEqual({ jsonrpc: '2.0', id: 1, result: { content: [], isError: true } });
    const headers = seen.at(-1) ?? {};
    expect(headers.authorization).toBeUndefined();
    expect(headers.cookie).toBeUndefined();
    expect(headers['x-api-key']).toBe('gateway-own-key');
    expect(headers['mcp-protocol-version']).toBe('2026-07-28');
    expect(headers['mcp-name']).toBe('x');
    expect(headers['mcp-param-region']).toBe('eu');
  });

  it('streams SSE through byte for byte and finds the response among the events', async () => {
    let watched: unknown;
    const response = await forwardHttp(upstream(), post({ jsonrpc: '2.0', id: 2, method: 'tools/call' }), {
      id: 2,
      onMessage: (message) => (watched = message),
    });
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    expect(response.headers.get('mcp-session-id')).toBe('s-1');
    expect(await response.text()).toBe(SSE_BODY);
    expect(watched).toEqual({ jsonrpc: '2.0', id: 2, result: { content: [{ type: 'text', text: 'streamed' }] } });
  });

  it("answers 502 when the upstream refuses the gateway's credentials, and when it cannot be reached", async () => {
    let watched: unknown = 'not called';
    const refused = await forwardHttp(upstream(), post({ jsonrpc: '2.0', id: 3, method: 'deny' }), {
      id: 3,
      onMessage: (message) => (watched = message),
    });
    expect(refused.status).toBe(502);
    expect(refused.headers.get('www-authenticate')).toBeNull();
    expect(watched).toBeUndefined();
    const unreachable = await forwardHttp(
      { kind: 'http', url: 'http://127.0.0.1:1/mcp', headers: {} },
      post({ jsonrpc: '2.0', id: 4, method: 'tools/call' }),
    );
    expect(unreachable.status).toBe(502);
  });
});
