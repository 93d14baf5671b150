/**
 * A real MCP server for the gateway's tests (the official TypeScript SDK's `McpServer`): a shop's support tools
 * (`get_order` and `export_customers` read, `issue_refund` writes, `http_post` sends data out) and one resource
 * (`shop://policies/refunds`). Every call that reaches it is recorded, so a test can show that a refused call never
 * did. Served over Streamable HTTP in the test's process (`startShopHttpServer`) or over stdio by
 * test/agents/typescript/mcp-shop-stdio.ts.
 */
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server as HttpServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';

export interface ServedCall {
  tool: string;
  args: Record<string, unknown>;
}

export const REFUND_POLICY_URI = 'shop://policies/refunds';

const TOOLS = [
  {
    name: 'get_order',
    description: 'Look an order up',
    inputSchema: { type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'] },
    annotations: { readOnlyHint: true },
  },
  {
    name: 'export_customers',
    description: 'Export customer records',
    inputSchema: { type: 'object', properties: { limit: { type: 'number' } } },
    annotations: { readOnlyHint: true },
  },
  {
    name: 'issue_refund',
    description: 'Refund an order',
    inputSchema: {
      type: 'object',
      properties: { order_id: { type: 'string' }, amount: { type: 'number' } },
      required: ['order_id', 'amount'],
    },
    annotations: { readOnlyHint: false, destructiveHint: false },
  },
  {
    name: 'http_post',
    description: 'POST a body to a URL',
    inputSchema: {
      type: 'object',
      properties: { url: { type: 'string' }, body: { type: 'string' } },
      required: ['url', 'body'],
    },
    annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: true },
  },
] as const;

function answer(tool: string, args: Record<string, unknown>): string {
  switch (tool) {
    case 'get_order':
      return JSON.stringify({
        order_id: args.order_id,
        status: 'delivered',
        total: 42.5,
        customer: 'customer7@shop.example',
      });
    case 'export_customers':
      return Array.from(
        { length: Number(args.limit ?? 3) },
        (_, i) => `${String(i + 1)},Customer ${String(i + 1)},customer${String(i + 1)}@shop.example`,
      ).join('\n');
    case 'issue_refund':
      return JSON.stringify({ refunded: args.amount, order_id: args.order_id });
    default:
      return 'posted';
  }
}

/** The shop's MCP server; `onCall` hears of every tool call that reached it. */
export function createShopServer(onCall: (call: ServedCall) => void): McpServer {
  // The low-level request handlers take the tools' JSON Schemas as they are (the high-level API wants zod).
  const mcp = new McpServer({ name: 'shop', version: '1.0.0' }, { capabilities: { tools: {}, resources: {} } });
  const server = mcp.server;
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: TOOLS.map((tool) => ({ ...tool })) }));
  server.setRequestHandler(CallToolRequestSchema, (request) => {
    const { name } = request.params;
    const args = request.params.arguments ?? {};
    if (!TOOLS.some((tool) => tool.name === name))
      return { content: [{ type: 'text', text: `unknown tool ${name}` }], isError: true };
    onCall({ tool: name, args });
    return { content: [{ type: 'text', text: answer(name, args) }] };
  });
  server.setRequestHandler(ListResourcesRequestSchema, () => ({
    resources: [{ uri: REFUND_POLICY_URI, name: 'refund policy', mimeType: 'text/plain' }],
  }));
  server.setRequestHandler(ReadResourceRequestSchema, (request) => ({
    contents: [{ uri: request.params.uri, mimeType: 'text/plain', text: 'Refunds up to 50 EUR need no approval.' }],
  }));
  return mcp;
}

/** Appends each call to a JSON-lines file (the stdio server's log, read by the test). */
export function logCallsTo(path: string): (call: ServedCall) => void {
  return (call) => appendFileSync(path, `${JSON.stringify(call)}\n`);
}

export interface ShopHttpServer {
  url: string;
  calls: ServedCall[];
  close(): Promise<void>;
}

/** The shop over Streamable HTTP (sessions, SSE responses), one SDK server per session, on 127.0.0.1. */
export async function startShopHttpServer(): Promise<ShopHttpServer> {
  const calls: ServedCall[] = [];
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const http: HttpServer = createServer((request, response) => {
    void (async () => {
      const sessionId = request.headers['mcp-session-id'];
      let transport = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
      if (transport === undefined) {
        if (typeof sessionId === 'string') {
          response
            .writeHead(404, { 'content-type': 'application/json' })
            .end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }));
          return;
        }
        const created: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => {
            sessions.set(id, created);
          },
          onsessionclosed: (id) => {
            sessions.delete(id);
          },
        });
        await createShopServer((call) => calls.push(call)).connect(created);
        transport = created;
      }
      await transport.handleRequest(request, response);
    })().catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(500).end(String(error));
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const address = http.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return {
    url: `http://127.0.0.1:${String(address.port)}/mcp`,
    calls,
    async close() {
      await Promise.all([...sessions.values()].map((transport) => transport.close()));
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
