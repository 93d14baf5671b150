/**
 * The MCP gateway: each configured MCP server served at `/mcp/<name>` over Streamable HTTP, every request
 * authenticated (a Tripline task token, or a bound client's token), every `tools/call` checked with Tripline's
 * authority before the server sees it and every `resources/read` checked against the task's credentials, and a
 * span of each call that went into Tripline's ingest. It takes web `Request`s and answers `Response`s; the HTTP
 * server around it is services/api/mcp-gateway-routes.ts, the wiring services/app/mcp-gateway.ts.
 */
import type { Logger } from '../shared/logger.ts';
import { messageOf } from '../shared/errors.ts';
import type { McpAuthority } from './authority.ts';
import type { HttpUpstream, McpGatewayConfig } from './config.ts';
import { CallGuard } from './guard.ts';
import type { CallContext, Principal } from './guard.ts';
import { forwardHttp, gatewayError } from './http-upstream.ts';
import type { ResponseWatcher } from './http-upstream.ts';
import {
  HEADER_MISMATCH,
  INVALID_REQUEST,
  errorResponse,
  headerMismatch,
  isObject,
  outcomeOf,
  parseBody,
} from './messages.ts';
import type { ParsedBody } from './messages.ts';
import { SessionOwners } from './session-owners.ts';
import { BoundSessions } from './sessions.ts';
import type { SpanSink } from './span-sink.ts';
import { StdioBridge } from './stdio-upstream.ts';

export interface McpGatewayRequest {
  /** The upstream's name (the path's last segment). */
  upstream: string;
  method: string;
  headers: Headers;
  /** The POST body as received, or undefined. */
  body: string | undefined;
  /** Aborted when the client goes away (for a stream: the request is cancelled upstream too). */
  signal: AbortSignal;
}

export interface McpGateway {
  handle(request: McpGatewayRequest): Promise<Response>;
  /** RFC 9728 metadata of `/mcp/<name>`, or undefined for an unknown name. */
  resourceMetadata(upstream: string): Record<string, unknown> | undefined;
  /** Where an upstream is served (e.g. for a client's configuration). */
  resourceUrl(upstream: string): string;
  stats(): { boundSessions: number; stdioSessions: number };
  stop(): Promise<void>;
}

export interface McpGatewayOptions {
  config: McpGatewayConfig;
  authority: McpAuthority;
  sink: SpanSink;
  /** The authorization server that issues task tokens (`iss`): named in the resource metadata. */
  issuer: string;
  logger: Logger;
  now?: () => number;
}

export function createMcpGateway(options: McpGatewayOptions): McpGateway {
  const { config, authority, sink, logger } = options;
  const now = options.now ?? Date.now;
  const sessions = new BoundSessions(authority, config.sessionIdleMs, now);
  const guard = new CallGuard({ authority, sessions, sink, bindings: config.clients, logger, now });
  const owners = new SessionOwners();
  const endBound = (principal: Principal, upstream: string, sessionId: string | undefined): void => {
    if (principal.kind !== 'bound') return;
    sessions
      .end(principal.binding, upstream, sessionId)
      .then((end) => guard.ended(end === undefined ? [] : [end]))
      .catch((error: unknown) => logger.error({ err: messageOf(error) }, 'ending a bound session failed'));
  };
  const bridges = new Map<string, StdioBridge>();
  for (const [name, upstream] of Object.entries(config.servers))
    if (upstream.kind === 'stdio')
      bridges.set(
        name,
        new StdioBridge({
          name,
          upstream,
          guard,
          logger,
          idleMs: config.sessionIdleMs,
          onClosed: (principal, id) => endBound(principal, name, id),
        }),
      );
  const sweeper = setInterval(
    () => {
      for (const bridge of bridges.values()) bridge.sweep(now());
      sessions
        .sweep()
        .then((ends) => guard.ended(ends))
        .catch((error: unknown) => logger.error({ err: messageOf(error) }, 'sweeping idle MCP sessions failed'));
    },
    Math.min(60_000, config.sessionIdleMs / 2),
  );
  sweeper.unref();

  /** A guarded call: checked, then forwarded with its response watched for the span. */
  async function forwardGuarded(
    upstream: HttpUpstream,
    request: McpGatewayRequest,
    principal: Principal,
    parsed: Extract<ParsedBody, { kind: 'guarded' }>,
    context: CallContext,
  ): Promise<Response> {
    const { call } = parsed;
    const admission = await guard.admit(principal, call, context);
    if (!admission.ok) return Response.json(admission.error);
    const startMs = now();
    return forwardHttp(upstream, request, {
      id: call.id,
      onMessage: (message) =>
        guard.record(
          admission.identity,
          call,
          admission.sideEffect,
          context,
          startMs,
          message === undefined ? undefined : outcomeOf(message, call.id),
        ),
    });
  }

  async function handle(request: McpGatewayRequest): Promise<Response> {
    const upstream = config.servers[request.upstream];
    if (upstream === undefined) return gatewayError(404, `no MCP server ${request.upstream} behind this gateway`);
    const origin = request.headers.get('origin');
    if (origin !== null && !config.allowedOrigins.includes(origin))
      return gatewayError(403, `Forbidden: origin ${origin} is not allowed (TRIPLINE_MCP_ALLOWED_ORIGINS)`);
    const credential = await guard.credential(request.headers.get('authorization'));
    if (!credential.ok) return unauthorized(config.publicUrl, request.upstream, credential);
    const { principal } = credential;
    const sessionId = request.headers.get('mcp-session-id') ?? undefined;
    if (sessionId !== undefined && !owners.allows(request.upstream, sessionId, principal.owner))
      return Response.json(errorResponse(null, -32001, 'Session not found'), { status: 404 });
    const parsed = request.body === undefined ? undefined : parseBody(request.body);
    const refusal = parsed === undefined ? undefined : refuseBody(parsed, request.headers);
    if (refusal !== undefined) return refusal;

    if (upstream.kind === 'stdio') {
      const bridge = bridges.get(request.upstream);
      if (bridge === undefined) return gatewayError(500, 'no bridge for this MCP server');
      const body = request.body === undefined ? undefined : (JSON.parse(request.body) as unknown);
      return bridge.handle({ request: webRequest(request), body, principal });
    }
    const context: CallContext = {
      upstream: request.upstream,
      sessionId,
      protocolVersion: request.headers.get('mcp-protocol-version') ?? undefined,
    };
    let response: Response;
    if (parsed?.kind === 'guarded') response = await forwardGuarded(upstream, request, principal, parsed, context);
    else {
      const listing = parsed?.kind === 'other' && parsed.method === 'tools/list' ? parsed.id : undefined;
      const watch: ResponseWatcher | undefined =
        listing === undefined
          ? undefined
          : {
              id: listing,
              onMessage: (message) =>
                guard.learnTools(request.upstream, isObject(message) ? message.result : undefined),
            };
      response = await forwardHttp(upstream, request, watch);
    }
    const minted = response.headers.get('mcp-session-id');
    if (minted !== null && response.ok) owners.opened(request.upstream, minted, principal.owner);
    if (request.method === 'DELETE' && sessionId !== undefined && (response.ok || response.status === 404)) {
      owners.closed(request.upstream, sessionId);
      endBound(principal, request.upstream, sessionId);
    }
    return response;
  }

  return {
    async handle(request) {
      try {
        return await handle(request);
      } catch (error) {
        if (request.signal.aborted) return new Response(null, { status: 499 });
        logger.error({ err: messageOf(error), upstream: request.upstream }, 'the MCP gateway failed a request');
        return gatewayError(500, 'the gateway failed; see its log');
      }
    },
    resourceMetadata: (upstream) =>
      config.servers[upstream] === undefined ? undefined : resourceMetadata(config.publicUrl, options.issuer, upstream),
    resourceUrl: (upstream) => resourceUrl(config.publicUrl, upstream),
    stats: () => ({
      boundSessions: sessions.size,
      stdioSessions: [...bridges.values()].reduce((sum, bridge) => sum + bridge.sessions, 0),
    }),
    async stop() {
      clearInterval(sweeper);
      await Promise.all([...bridges.values()].map((bridge) => bridge.stop()));
      guard.ended(await sessions.endAll());
      await sink.flush();
    },
  };
}

const resourceUrl = (publicUrl: string, upstream: string): string => `${publicUrl}/mcp/${upstream}`;
const metadataUrl = (publicUrl: string, upstream: string): string =>
  `${publicUrl}/.well-known/oauth-protected-resource/mcp/${upstream}`;

/** RFC 9728: the resource, and Tripline's token issuer as its authorization server. */
function resourceMetadata(publicUrl: string, issuer: string, upstream: string): Record<string, unknown> {
  return {
    resource: resourceUrl(publicUrl, upstream),
    authorization_servers: [issuer],
    bearer_methods_supported: ['header'],
    resource_name: `${upstream} (through Tripline's MCP gateway)`,
  };
}

/** 401 with the challenge of MCP's authorization (RFC 6750, and RFC 9728's `resource_metadata`). */
function unauthorized(publicUrl: string, upstream: string, credential: { missing: boolean; reason: string }): Response {
  const metadata = `resource_metadata="${metadataUrl(publicUrl, upstream)}"`;
  const challenge = credential.missing
    ? `Bearer ${metadata}`
    : `Bearer error="invalid_token", error_description="${credential.reason.replace(/["\\]/g, "'")}", ${metadata}`;
  return gatewayError(401, `Unauthorized: ${credential.reason}`, { 'www-authenticate': challenge });
}

/**
 * What the gateway refuses before anything else: a body it cannot read, a batch holding a call it would have to
 * guard (batches exist only in protocol 2025-03-26; it cannot refuse part of one), and standard headers
 * (`Mcp-Method`, `Mcp-Name`) that disagree with the body.
 */
function refuseBody(parsed: ParsedBody, headers: Headers): Response | undefined {
  if (parsed.kind === 'invalid') return Response.json(errorResponse(null, parsed.code, parsed.reason), { status: 400 });
  if (parsed.kind === 'other' && parsed.guardedInBatch)
    return Response.json(
      errorResponse(null, INVALID_REQUEST, 'the gateway does not take batches holding tools/call or resources/read'),
      { status: 400 },
    );
  const mismatch = headerMismatch(
    { method: headers.get('mcp-method') ?? undefined, name: headers.get('mcp-name') ?? undefined },
    {
      method: parsed.kind === 'guarded' ? parsed.call.method : parsed.method,
      name: parsed.kind === 'guarded' ? parsed.call.name : undefined,
    },
  );
  if (mismatch === undefined) return undefined;
  return Response.json(errorResponse(parsed.kind === 'guarded' ? parsed.call.id : null, HEADER_MISMATCH, mismatch), {
    status: 400,
  });
}

/** The request as the SDK's transport takes it (the body already read and parsed). */
function webRequest(request: McpGatewayRequest): Request {
  return new Request(`http://mcp-gateway.invalid/mcp/${request.upstream}`, {
    method: request.method,
    headers: request.headers,
    ...(request.body === undefined ? {} : { body: request.body }),
    signal: request.signal,
  });
}
