/**
 * The MCP gateway's HTTP server (its own port, TRIPLINE_MCP_PORT): every MCP server behind it at `/mcp/<name>`
 * (POST, GET, DELETE, as Streamable HTTP has them) and its protected resource metadata (RFC 9728) at
 * `/.well-known/oauth-protected-resource/mcp/<name>`. Bodies are taken as text and handed on unparsed, so what the
 * upstream receives is what the client sent; the gateway (services/mcp-gateway/gateway.ts) decides the rest.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { McpGateway } from '../mcp-gateway/gateway.ts';
import type { Logger } from '../shared/logger.ts';
import { createHttpServer } from './http.ts';
import type { TlsOptions } from './http.ts';

/** Largest MCP request body (a tool call's arguments). */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

export function buildMcpGatewayServer(gateway: McpGateway, logger: Logger, tls?: TlsOptions): FastifyInstance {
  const app = createHttpServer(logger.child({ component: 'mcp-gateway' }), {
    bodyLimit: MAX_BODY_BYTES,
    maxParamLength: 256,
    tls,
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  // Response streams (SSE) stay open as long as clients hold them: closing the server ends them.
  const open = new Set<AbortController>();
  app.addHook('preClose', (done) => {
    for (const controller of open) controller.abort();
    done();
  });

  const forward = async (request: FastifyRequest<{ Params: { name: string } }>, reply: FastifyReply): Promise<void> => {
    const controller = new AbortController();
    open.add(controller);
    // The client went away (closing a response stream is how it cancels a request): stop the upstream's too.
    reply.raw.once('close', () => {
      open.delete(controller);
      if (!reply.raw.writableFinished) controller.abort();
    });
    const headers = new Headers();
    for (const [name, value] of Object.entries(request.headers)) {
      if (value === undefined) continue;
      headers.set(name, Array.isArray(value) ? value.join(', ') : value);
    }
    const body = typeof request.body === 'string' && request.method === 'POST' ? request.body : undefined;
    const response = await gateway.handle({
      upstream: request.params.name,
      method: request.method,
      headers,
      body,
      signal: controller.signal,
    });
    return reply.send(response);
  };
  app.post('/mcp/:name', forward);
  app.get('/mcp/:name', forward);
  app.delete('/mcp/:name', forward);

  app.get<{ Params: { name: string } }>('/.well-known/oauth-protected-resource/mcp/:name', (request, reply) => {
    const metadata = gateway.resourceMetadata(request.params.name);
    if (metadata === undefined)
      return reply.status(404).send({ error: { code: 'NOT_FOUND', message: `no MCP server ${request.params.name}` } });
    return reply.header('cache-control', 'public, max-age=300').send(metadata);
  });
  app.get('/healthz', () => ({ status: 'ok', ...gateway.stats() }));
  return app;
}
