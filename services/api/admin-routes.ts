/**
 * Who am I, tokens and the audit trail:
 *
 *   GET    /v1/whoami                 the caller's tenant, role and token name (any token)
 *   POST   /v1/admin/tokens           create a token; the answer is the only time it is shown (admin)
 *   GET    /v1/admin/tokens           the tenant's tokens, never the tokens themselves (admin)
 *   DELETE /v1/admin/tokens/:tokenId  revoke a token (admin)
 *   GET    /v1/audit                  the tenant's audit trail, newest first (admin); with `unauthenticated=true`,
 *                                      the writes refused for want of a valid token, which name no tenant (superuser)
 *
 * An admin manages its own tenant's tokens. The bootstrap admin token (superuser) may name another tenant,
 * which is how a new tenant gets its first admin token.
 */
import type { FastifyInstance } from 'fastify';
import type { AccessControl } from '../auth/access-control.ts';
import type { AccessStore, TokenRecord } from '../auth/access-store.ts';
import { AGENT_PATTERN_SOURCE, MAX_BINDING_PATTERNS } from '../core/agent-binding.ts';
import { ROLES } from '../auth/roles.ts';
import type { Role } from '../auth/roles.ts';
import { TriplineError } from '../shared/errors.ts';
import { principalOf } from './access.ts';
import { idParam } from './schemas.ts';

export interface AdminRoutesDeps {
  control: Pick<AccessControl, 'createToken' | 'revokeToken' | 'listTokens'>;
  store: Pick<AccessStore, 'listAudit'>;
}

const createBody = {
  type: 'object',
  required: ['role', 'name'],
  additionalProperties: false,
  properties: {
    role: { type: 'string', enum: [...ROLES] },
    name: { type: 'string', minLength: 1, maxLength: 200 },
    tenant: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' },
    // Agent tokens only: the agent ids (and `prefix*`) it may speak for; none: every agent of its tenant.
    agents: {
      type: 'array',
      maxItems: MAX_BINDING_PATTERNS,
      uniqueItems: true,
      items: { type: 'string', pattern: AGENT_PATTERN_SOURCE },
    },
    reason: { type: 'string', maxLength: 1000 },
  },
} as const;

const auditQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
    before: { type: 'string', minLength: 1, maxLength: 64 },
    unauthenticated: { type: 'boolean', default: false },
  },
} as const;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

function tokenView(record: TokenRecord): Record<string, unknown> {
  return {
    id: record.id,
    tenant: record.tenant,
    role: record.role,
    name: record.name,
    superuser: record.superuser,
    agents: record.agents,
    createdAt: iso(record.createdMs),
    createdBy: record.createdBy,
    revokedAt: iso(record.revokedMs),
    revokedBy: record.revokedBy === '' ? null : record.revokedBy,
  };
}

export function registerAdminRoutes(app: FastifyInstance, deps: AdminRoutesDeps): void {
  app.get('/v1/whoami', (request) => {
    const principal = principalOf(request);
    return {
      tenant: principal.tenant,
      role: principal.role,
      name: principal.name,
      tokenId: principal.tokenId,
      superuser: principal.superuser,
      agents: principal.agents,
    };
  });

  app.post<{ Body: { role: Role; name: string; tenant?: string; agents?: string[]; reason?: string } }>(
    '/v1/admin/tokens',
    { schema: { body: createBody } },
    async (request, reply) => {
      const principal = principalOf(request);
      const tenant = request.body.tenant ?? principal.tenant;
      if (tenant !== principal.tenant && !principal.superuser) {
        throw new TriplineError(
          'FORBIDDEN',
          `an admin token of tenant ${JSON.stringify(principal.tenant)} may not create tokens for another tenant`,
        );
      }
      const agents = request.body.agents ?? [];
      if (agents.length > 0 && request.body.role !== 'agent')
        throw new TriplineError(
          'VALIDATION_FAILED',
          `agents binds agent tokens only, not a ${request.body.role} token`,
        );
      const { token, record } = await deps.control.createToken({
        tenant,
        role: request.body.role,
        name: request.body.name,
        createdBy: principal.name,
        agents,
      });
      return reply
        .status(201)
        .header('cache-control', 'no-store')
        .send({ ...tokenView(record), token });
    },
  );

  app.get('/v1/admin/tokens', (request) => {
    const principal = principalOf(request);
    return { items: deps.control.listTokens(principal.tenant).map(tokenView) };
  });

  app.delete<{ Params: { tokenId: string } }>(
    '/v1/admin/tokens/:tokenId',
    { schema: { params: idParam('tokenId') } },
    async (request) => {
      const principal = principalOf(request);
      const revoked = await deps.control.revokeToken(
        request.params.tokenId,
        principal.superuser ? undefined : principal.tenant,
        principal.name,
      );
      if (revoked === undefined) throw new TriplineError('NOT_FOUND', `no live token ${request.params.tokenId}`);
      return tokenView(revoked);
    },
  );

  app.get<{ Querystring: { limit: number; before?: string; unauthenticated: boolean } }>(
    '/v1/audit',
    { schema: { querystring: auditQuery } },
    async (request) => {
      const principal = principalOf(request);
      if (request.query.unauthenticated && !principal.superuser) {
        throw new TriplineError(
          'FORBIDDEN',
          'requests without a valid token name no tenant: only the superuser admin token may list them',
        );
      }
      const beforeMs = request.query.before === undefined ? undefined : Date.parse(request.query.before);
      if (beforeMs !== undefined && !Number.isFinite(beforeMs))
        throw new TriplineError('VALIDATION_FAILED', 'before must be an ISO 8601 time');
      const rows = await deps.store.listAudit({
        // The audit trail records a request without a valid token under no tenant ('').
        tenant: request.query.unauthenticated ? '' : principal.tenant,
        limit: request.query.limit,
        ...(beforeMs === undefined ? {} : { beforeMs }),
      });
      return {
        items: rows.map((row) => ({
          time: iso(row.timeMs),
          actor: row.actor,
          tokenId: row.tokenId,
          role: row.role,
          method: row.method,
          route: row.route,
          target: JSON.parse(row.target) as unknown,
          reason: row.reason,
          status: row.status,
          requestId: row.requestId,
        })),
      };
    },
  );
}
