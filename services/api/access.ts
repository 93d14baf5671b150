/**
 * Authentication, authorisation and the audit trail of the API, in one place.
 *
 * Every route names the access it needs in ROUTE_ACCESS; registering a route that is not in the table
 * fails at start-up, so a new route is never open by accident. For each request: the bearer token is looked
 * up (unknown or revoked → 401), its role checked against the route (→ 403), and its principal (tenant, role,
 * name) attached to the request; routes read the tenant from it, never from the request. Every request that
 * changes something is written to the audit trail with the actor its token names and the reason it gave,
 * refused ones included.
 */
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { bearerToken } from '../auth/api-tokens.ts';
import type { AccessControl } from '../auth/access-control.ts';
import type { AuditTrail } from '../auth/audit-trail.ts';
import { permits } from '../auth/roles.ts';
import type { Access, Principal } from '../auth/roles.ts';
import { TriplineError } from '../shared/errors.ts';

export const ROUTE_ACCESS: Readonly<Record<string, Access>> = {
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /': 'public',
  'GET /console/app.js': 'public',
  'GET /console/timeline': 'public',
  'GET /console/timeline.js': 'public',
  'GET /.well-known/jwks.json': 'public',
  'GET /.well-known/oauth-authorization-server': 'public',

  'GET /v1/whoami': 'enforce',
  'GET /v1/tasks/:taskId': 'viewer',
  'GET /v1/tasks/:taskId/credentials': 'viewer',
  // Scores and reasons an agent must not read (docs/timeline.md): people only.
  'GET /v1/tasks/:taskId/timeline': 'viewer',
  'GET /v1/alerts': 'viewer',
  'GET /v1/revocations': 'viewer',
  'GET /v1/revocations/:revocationId': 'viewer',
  'GET /v1/baselines': 'viewer',
  'GET /v1/baselines/:taskType': 'viewer',
  'GET /v1/shadow-report': 'viewer',
  'GET /v1/spend': 'viewer',
  'GET /v1/decisions': 'viewer',
  'GET /v1/leases': 'viewer',
  'GET /v1/leases/:leaseId': 'viewer',
  'GET /v1/secrets': 'viewer',
  'GET /console/api/tasks': 'viewer',
  'GET /console/api/activity': 'viewer',
  'GET /v1/approvals': 'viewer',
  'GET /v1/approvals/:approvalId': 'viewer',

  'POST /v1/tasks/:taskId/revoke': 'operator',
  'POST /v1/tasks/:taskId/restore': 'operator',
  'POST /v1/alerts/:id/false-positive': 'operator',
  // Approval points: a person decides; agent tokens never pass (services/auth/roles.ts).
  'POST /v1/approvals/:approvalId/approve': 'operator',
  'POST /v1/approvals/:approvalId/deny': 'operator',

  'PUT /v1/secrets/:name': 'admin',
  'DELETE /v1/secrets/:name': 'admin',
  'GET /v1/admin/tokens': 'admin',
  'POST /v1/admin/tokens': 'admin',
  'DELETE /v1/admin/tokens/:tokenId': 'admin',
  'GET /v1/audit': 'admin',

  'POST /v1/tasks': 'agent',
  'POST /v1/revocations/:revocationId/ack': 'agent',
  // Enforcement points and agents: request-time checks, introspection, the event stream. Revoking a task
  // token (RFC 7009) needs the token itself in the body; holding it is the authority.
  'POST /v1/check': 'enforce',
  'POST /oauth2/introspect': 'enforce',
  'POST /oauth2/revoke': 'enforce',
  'GET /v1/stream': 'enforce',

  // Leases are asked for with the task token (the route checks it).
  'POST /v1/leases': 'task',
  'DELETE /v1/leases/:leaseId': 'task',
  // An agent polls its own approval with its task token (the route checks it).
  'GET /v1/approvals/:approvalId/status': 'task',
};

/** POST routes that only read (not audited). */
const READ_ONLY_POSTS = new Set(['POST /v1/check', 'POST /oauth2/introspect']);

export interface ApiAccess {
  control: Pick<AccessControl, 'authenticate'>;
  audit?: AuditTrail;
}

const principals = new WeakMap<FastifyRequest, Principal>();
const accesses = new WeakMap<FastifyRequest, Access>();

/** The authenticated caller of a request (routes that need a token only). */
export function principalOf(request: FastifyRequest): Principal {
  const principal = principals.get(request);
  if (principal === undefined) throw new TriplineError('UNAUTHENTICATED', 'this route needs an API token');
  return principal;
}

export function tenantOf(request: FastifyRequest): string {
  return principalOf(request).tenant;
}

/**
 * The actor recorded on a manual kill, restore or false positive: the token's name, and the person the
 * request names (the console asks for it) after it — the request may name anyone, the token cannot lie.
 */
export function actorOf(request: FastifyRequest, claimed: string | undefined): string {
  const { name } = principalOf(request);
  return claimed === undefined || claimed === name ? name : `${claimed} (via ${name})`;
}

function routeKey(method: string, url: string): string {
  return `${method === 'HEAD' ? 'GET' : method} ${url}`;
}

export function installAccessControl(app: FastifyInstance, access: ApiAccess): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (ROUTE_ACCESS[routeKey(method, route.url)] === undefined) {
        throw new Error(
          `The route ${method} ${route.url} has no entry in ROUTE_ACCESS (services/api/access.ts): say who may use it`,
        );
      }
    }
  });

  app.addHook('onRequest', async (request, reply) => {
    const url = request.routeOptions.url;
    if (url === undefined) return; // no such route: the 404 handler answers
    const needed = ROUTE_ACCESS[routeKey(request.method, url)] ?? 'admin';
    accesses.set(request, needed);
    if (needed === 'public' || needed === 'task') return;
    const principal = await access.control.authenticate(bearerToken(request.headers.authorization));
    if (principal === undefined) {
      void reply.header('www-authenticate', 'Bearer realm="tripline"');
      throw new TriplineError('UNAUTHENTICATED', 'send a valid API token as "Authorization: Bearer <token>"');
    }
    principals.set(request, principal);
    if (!permits(principal.role, needed)) {
      throw new TriplineError(
        'FORBIDDEN',
        `a ${principal.role} token may not ${request.method} ${url} (needs ${needed === 'enforce' ? 'any token' : needed})`,
      );
    }
  });

  const audit = access.audit;
  if (audit === undefined) return;
  app.addHook('onResponse', async (request, reply) => {
    const needed = accesses.get(request);
    const key = routeKey(request.method, request.routeOptions.url ?? '');
    if (
      needed === undefined ||
      needed === 'public' ||
      needed === 'task' ||
      request.method === 'GET' ||
      request.method === 'HEAD' ||
      READ_ONLY_POSTS.has(key)
    )
      return;
    const principal = principals.get(request);
    const body = request.body as { reason?: unknown } | undefined;
    audit.record({
      timeMs: Date.now(),
      tenant: principal?.tenant ?? '',
      actor: principal?.name ?? '',
      tokenId: principal?.tokenId ?? '',
      role: principal?.role ?? '',
      method: request.method,
      route: request.routeOptions.url ?? request.url,
      target: JSON.stringify(request.params ?? {}),
      reason: typeof body?.reason === 'string' ? body.reason : '',
      status: reply.statusCode,
      requestId: request.id,
    });
  });
}
