/**
 * The kill switch's HTTP routes, registered by services/api/app.ts in their own encapsulated scope (who may
 * call each is in services/api/access.ts; each request acts for its token's tenant):
 *
 *   GET    /.well-known/jwks.json                    the public keys task tokens are signed with
 *   GET    /.well-known/oauth-authorization-server   RFC 8414 metadata (jwks_uri, introspection, revocation)
 *   POST   /v1/tasks                                 policy check → task token (201) or 403 POLICY_DENIED
 *   GET    /v1/tasks/:taskId/credentials             the task's tokens (claims, never the token) and whether active
 *   POST   /oauth2/introspect                        RFC 7662 (form or JSON: token)
 *   POST   /oauth2/revoke                            RFC 7009 (form or JSON: token)
 *   POST   /v1/check                                 request-time check: may task T call tool X on R now? (allow,
 *                                                     deny, or pending: an approval point, services/api/approval-routes.ts)
 *   GET    /v1/stream                                server-sent events (revocations, alerts, escalations, verifications)
 *   POST   /v1/leases                                lease a secret (Authorization: Bearer <task token>)
 *   GET    /v1/leases?task_id=…, GET /v1/leases/:id  lease state (never the value)
 *   DELETE /v1/leases/:id                            the task releases its lease (Bearer)
 *   PUT    /v1/secrets/:name, GET /v1/secrets, DELETE /v1/secrets/:name   the built-in encrypted store
 *   GET    /v1/revocations/:id                       a revocation with its verification outcome
 *   POST   /v1/revocations/:id/ack                   the agent helper acknowledges a revocation
 *   GET    /v1/decisions                             recorded policy decisions (filter task_id, agent_id)
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { speaksFor } from '../core/agent-binding.ts';
import { principalOf, tenantOf } from './access.ts';
import { TriplineError } from '../shared/errors.ts';
import { KillSwitchError } from '../killswitch/errors.ts';
import type { KillSwitchRuntime } from '../app/killswitch.ts';
import { STREAM_EVENT_TYPES } from '../killswitch/stream.ts';
import type { StreamEventType } from '../killswitch/stream.ts';
import type { TaskClaims } from '../killswitch/tokens.ts';
import {
  ackBody,
  checkBody,
  decisionsQuery,
  idParam,
  iso,
  leaseBody,
  leaseView,
  revocationDocument,
  secretBody,
  startTaskBody,
  streamQuery,
  tokenBody,
  verificationView,
} from './killswitch-schemas.ts';

/** Kept here for services/api/app.ts, which imports them from this module. */
export { leaseView, verificationView } from './killswitch-schemas.ts';

export interface KillSwitchRoutesDeps {
  runtime: Pick<
    KillSwitchRuntime,
    'authority' | 'checker' | 'leases' | 'secrets' | 'stream' | 'verifier' | 'tokens' | 'store' | 'config'
  > &
    Partial<Pick<KillSwitchRuntime, 'approvals'>>;
}

function bearer(request: FastifyRequest): string {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  if (match?.[1] === undefined)
    throw new KillSwitchError('TOKEN_INVALID', 'send the task token as "Authorization: Bearer <token>"');
  return match[1];
}

function list(value: string | undefined): Set<string> {
  return new Set(
    (value ?? '')
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== ''),
  );
}

type Runtime = KillSwitchRoutesDeps['runtime'];

export function registerKillSwitchRoutes(app: FastifyInstance, deps: KillSwitchRoutesDeps): void {
  const { runtime } = deps;

  // Streams end before the server closes (open SSE responses would otherwise hold close() forever).
  app.addHook('preClose', (done) => {
    runtime.stream.stop();
    done();
  });

  app.register((scope, _options, done) => {
    // RFC 7662 and RFC 7009 requests are form-encoded.
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, parsed) => {
      parsed(null, Object.fromEntries(new URLSearchParams(typeof body === 'string' ? body : body.toString('utf8'))));
    });
    registerTokenRoutes(scope, runtime);
    registerCheckRoutes(scope, runtime);
    registerLeaseRoutes(scope, runtime);
    registerRevocationRoutes(scope, runtime);
    done();
  });
}

/** Task tokens: the keys and metadata to verify them, issuing them, their state, introspection and revocation. */
function registerTokenRoutes(scope: FastifyInstance, runtime: Runtime): void {
  const { authority, tokens, store, config } = runtime;

  scope.get('/.well-known/jwks.json', (_request, reply) =>
    reply.header('cache-control', 'public, max-age=300').send(tokens.jwks()),
  );

  scope.get('/.well-known/oauth-authorization-server', () => ({
    issuer: config.tokenIssuer,
    jwks_uri: `${config.publicUrl}/.well-known/jwks.json`,
    introspection_endpoint: `${config.publicUrl}/oauth2/introspect`,
    revocation_endpoint: `${config.publicUrl}/oauth2/revoke`,
    introspection_endpoint_auth_methods_supported: ['none'],
    revocation_endpoint_auth_methods_supported: ['none'],
    token_endpoint_auth_signing_alg_values_supported: ['EdDSA'],
  }));

  scope.post<{
    Body: {
      agentId: string;
      taskType: string;
      taskId?: string;
      tools?: string[];
      resources?: string[];
      scopes?: string[];
      ttlSeconds?: number;
      endUser?: string;
      conversation?: string;
    };
  }>('/v1/tasks', { schema: { body: startTaskBody } }, async (request, reply) => {
    const body = request.body;
    // The agent is the token's to name: a bound token starts tasks for its own agents only (Cedar's principal).
    const principal = principalOf(request);
    if (!speaksFor(principal.agents, body.agentId))
      throw new TriplineError(
        'FORBIDDEN',
        `this agent token may not speak for agent ${JSON.stringify(body.agentId)} (it is bound to ${principal.agents.join(', ')})`,
      );
    const result = await authority.startTask({ tenant: principal.tenant, ...body });
    const { claims } = result;
    return reply.status(201).send({
      taskId: result.taskId,
      taskType: claims.taskType,
      agentId: claims.agentId,
      token: result.token,
      tokenType: 'Bearer',
      jti: claims.jti,
      scope: claims.scopes.join(' '),
      tools: claims.tools,
      resources: claims.resources,
      issuedAt: iso(claims.issuedAtMs),
      expiresAt: iso(claims.expiresAtMs),
      expiresIn: Math.round((claims.expiresAtMs - claims.issuedAtMs) / 1000),
      decision: { id: result.decision.id, decision: result.decision.decision, policies: result.decision.policies },
    });
  });

  scope.get<{ Params: { taskId: string } }>(
    '/v1/tasks/:taskId/credentials',
    { schema: { params: idParam('taskId') } },
    async (request) => {
      const tenant = tenantOf(request);
      const rows = await store.listCredentials(tenant, request.params.taskId);
      const view = authority.task(tenant, request.params.taskId);
      return {
        taskId: request.params.taskId,
        revoked: view.revoked,
        items: rows.map((row) => {
          const claims: TaskClaims = {
            tenant: row.tenant,
            agentId: row.agentId,
            taskId: row.taskId,
            taskType: row.taskType,
            scopes: row.scopes,
            tools: row.tools,
            resources: row.resources,
            jti: row.jti,
            issuedAtMs: row.issuedMs,
            expiresAtMs: row.expiresMs,
            issuer: config.tokenIssuer,
            audience: config.tokenAudience,
          };
          return {
            jti: row.jti,
            agentId: row.agentId,
            taskType: row.taskType,
            scopes: row.scopes,
            tools: row.tools,
            resources: row.resources,
            issuedAt: iso(row.issuedMs),
            expiresAt: iso(row.expiresMs),
            decisionId: row.decisionId,
            kid: row.kid,
            active: authority.isActive(claims),
          };
        }),
      };
    },
  );

  scope.post<{ Body: { token: string } }>(
    '/oauth2/introspect',
    { schema: { body: tokenBody } },
    async (request, reply) => {
      const answer = await authority.introspect(request.body.token);
      // Another tenant's token is inactive as far as this caller can tell.
      const own = answer.active && answer.tenant === tenantOf(request);
      return reply.header('cache-control', 'no-store').send(own ? answer : { active: false });
    },
  );

  scope.post<{ Body: { token: string } }>('/oauth2/revoke', { schema: { body: tokenBody } }, async (request, reply) => {
    // RFC 7009 §2.2: 200 whether or not the token was valid (nothing to learn from the answer).
    const claims = await tokens.verify(request.body.token).catch(() => undefined);
    if (claims?.tenant === tenantOf(request))
      await authority.revokeToken(request.body.token, principalOf(request).name, 'revoked by its holder (RFC 7009)');
    return reply.status(200).header('cache-control', 'no-store').send();
  });
}

/** The request-time check and the event stream agent helpers hear revocations on. */
function registerCheckRoutes(scope: FastifyInstance, runtime: Runtime): void {
  const { checker, stream } = runtime;

  scope.post<{
    Body: {
      token?: string;
      taskId?: string;
      tool: string;
      resource?: string;
      sideEffect?: string;
      arguments?: Record<string, unknown>;
      argumentsComplete?: boolean;
    };
  }>('/v1/check', { schema: { body: checkBody } }, async (request) => {
    const principal = principalOf(request);
    const answer = await checker.check({
      tenant: principal.tenant,
      ...request.body,
      // A bound agent token asks about its own agents' tasks only.
      ...(principal.role === 'agent' ? { agents: principal.agents } : {}),
    });
    return answer;
  });

  scope.get<{ Querystring: { task_id?: string; agent_id?: string; types?: string } }>(
    '/v1/stream',
    { schema: { querystring: streamQuery } },
    (request, reply) => {
      const types = list(request.query.types);
      const unknown = [...types].find((type) => !(STREAM_EVENT_TYPES as readonly string[]).includes(type));
      if (unknown !== undefined)
        throw new TriplineError(
          'VALIDATION_FAILED',
          `types has ${JSON.stringify(unknown)}; known: ${STREAM_EVENT_TYPES.join(', ')}`,
        );
      const principal = principalOf(request);
      const filter = {
        tenant: principal.tenant,
        taskIds: list(request.query.task_id),
        agentIds: list(request.query.agent_id),
        types:
          types.size === 0
            ? new Set<StreamEventType>(['revocation', 'alert', 'escalation'])
            : (types as Set<StreamEventType>),
        // An agent hears of its own agents' tasks only, without the evidence (services/killswitch/stream.ts).
        ...(principal.role === 'agent' ? { agentToken: principal.agents } : {}),
      };
      // Refused before the response is taken over: the usual error body, with Retry-After.
      const refusal = stream.refusal(principal.tenant);
      if (refusal !== undefined) throw refusal;
      reply.hijack();
      stream.attach(reply.raw, filter);
    },
  );
}

/** Secret leases (asked and released with the task token) and the built-in secret store. */
function registerLeaseRoutes(scope: FastifyInstance, runtime: Runtime): void {
  const { authority, leases, secrets, tokens } = runtime;

  scope.post<{ Body: { secret: string; ttlSeconds?: number } }>(
    '/v1/leases',
    { schema: { body: leaseBody } },
    async (request, reply) => {
      const claims = await authority.authenticate(bearer(request));
      const { lease, value } = await leases.lease(claims, request.body.secret, request.body.ttlSeconds);
      return reply
        .status(201)
        .header('cache-control', 'no-store')
        .send({ ...leaseView(lease), value });
    },
  );

  scope.get<{ Querystring: { task_id: string } }>(
    '/v1/leases',
    {
      schema: {
        querystring: {
          type: 'object',
          required: ['task_id'],
          additionalProperties: false,
          properties: { task_id: { type: 'string', minLength: 1, maxLength: 256 } },
        },
      },
    },
    async (request) => ({ items: (await leases.list(tenantOf(request), request.query.task_id)).map(leaseView) }),
  );

  scope.get<{ Params: { leaseId: string } }>(
    '/v1/leases/:leaseId',
    { schema: { params: idParam('leaseId') } },
    async (request) => {
      const lease = await leases.get(tenantOf(request), request.params.leaseId);
      if (lease === null) throw new TriplineError('NOT_FOUND', `no lease ${request.params.leaseId}`);
      return leaseView(lease);
    },
  );

  scope.delete<{ Params: { leaseId: string } }>(
    '/v1/leases/:leaseId',
    { schema: { params: idParam('leaseId') } },
    async (request) => {
      const claims = await tokens.verify(bearer(request));
      return leaseView(await leases.release(claims, request.params.leaseId));
    },
  );

  scope.put<{ Params: { name: string }; Body: { value: string } }>(
    '/v1/secrets/:name',
    { schema: { params: idParam('name'), body: secretBody } },
    async (request) => {
      const saved = await secrets.put(tenantOf(request), request.params.name, request.body.value);
      return { name: saved.name, version: saved.version };
    },
  );

  scope.get('/v1/secrets', async (request) => ({
    items: (await secrets.list(tenantOf(request))).map((secret) => ({
      name: secret.name,
      version: secret.version,
      updatedAt: iso(secret.updatedMs),
    })),
  }));

  scope.delete<{ Params: { name: string } }>(
    '/v1/secrets/:name',
    { schema: { params: idParam('name') } },
    async (request, reply) => {
      if (!(await secrets.remove(tenantOf(request), request.params.name)))
        throw new TriplineError('NOT_FOUND', `no secret ${request.params.name}`);
      return reply.status(204).send();
    },
  );
}

/** Revocations with their verification, the agent helper's acknowledgement, and recorded policy decisions. */
function registerRevocationRoutes(scope: FastifyInstance, runtime: Runtime): void {
  const { verifier, store } = runtime;

  scope.get<{ Params: { revocationId: string } }>(
    '/v1/revocations/:revocationId',
    { schema: { params: idParam('revocationId') } },
    async (request) => {
      const tenant = tenantOf(request);
      const revocation = await store.getRevocation(tenant, request.params.revocationId);
      if (revocation === null) throw new TriplineError('NOT_FOUND', `no revocation ${request.params.revocationId}`);
      const verification = revocation.action === 'revoke' ? await verifier.get(tenant, revocation.id) : null;
      return { ...revocationDocument(revocation), verification: verificationView(verification) };
    },
  );

  scope.post<{
    Params: { revocationId: string };
    Body: { agentId?: string; taskId?: string; receivedAt?: string; receivedAtMs?: number } | undefined;
  }>(
    '/v1/revocations/:revocationId/ack',
    { schema: { params: idParam('revocationId'), body: ackBody } },
    async (request, reply) => {
      const body = request.body ?? {};
      const receivedAtMs =
        body.receivedAtMs ?? (body.receivedAt === undefined ? undefined : Date.parse(body.receivedAt));
      const principal = principalOf(request);
      const record = await verifier.acknowledge(principal.tenant, request.params.revocationId, {
        ...(body.agentId === undefined ? {} : { agentId: body.agentId }),
        // Only an agent the revocation is about acknowledges it (the token's binding, not the body, says who).
        agents: principal.agents,
        ...(receivedAtMs === undefined || !Number.isFinite(receivedAtMs) ? {} : { receivedAtMs }),
      });
      if (record === undefined)
        throw new TriplineError(
          'NOT_FOUND',
          `no revocation ${request.params.revocationId} of this agent is being verified`,
        );
      return reply.status(202).send({ acknowledged: true, outcome: record.outcome });
    },
  );

  scope.get<{ Querystring: { task_id?: string; agent_id?: string; limit: number } }>(
    '/v1/decisions',
    { schema: { querystring: decisionsQuery } },
    async (request) => {
      const rows = await store.listDecisions({
        tenant: tenantOf(request),
        limit: request.query.limit,
        ...(request.query.task_id === undefined ? {} : { taskId: request.query.task_id }),
        ...(request.query.agent_id === undefined ? {} : { agentId: request.query.agent_id }),
      });
      return {
        items: rows.map((row) => {
          let context: unknown = row.context;
          try {
            context = JSON.parse(row.context);
          } catch {
            // kept as text
          }
          const { tenant: _tenant, timeMs, ...rest } = row;
          return { ...rest, time: iso(timeMs), context };
        }),
      };
    },
  );
}
