/**
 * The HTTP API (JSON on port 8080). `buildApiApp` never listens: tests use `app.inject()`, `main.ts` listens.
 * Routes are versioned under /v1. The kill switch's routes (task credentials, JWKS, introspection, revocation,
 * request-time checks, the event stream, leases, secrets, verification) come from services/api/killswitch-routes.ts
 * when `deps.killSwitch` is given. Every route needs a token of the right role unless services/api/access.ts
 * says it is public; each request acts for its token's tenant.
 */
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { actorOf, installAccessControl, tenantOf } from './access.ts';
import type { ApiAccess } from './access.ts';
import { registerAdminRoutes } from './admin-routes.ts';
import type { AdminRoutesDeps } from './admin-routes.ts';
import { detectionRoutes } from './detection-routes.ts';
import { actionBody, idParam } from './schemas.ts';
import type { DetectionRoutesOptions } from './detection-routes.ts';
import type { Alert, Revocation } from '../../schemas/events.ts';
import { TriplineError, isTriplineError, messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { createHttpServer } from './http.ts';
import type { TlsOptions } from './http.ts';
import type { ListFilter, Store, TaskRecord } from '../store/store.ts';
import { taskTreeView } from './task-tree-view.ts';
import { registerTimelineRoutes } from './timeline.ts';
import type { ManualAction } from '../processor/processor.ts';
import { registerKillSwitchRoutes, verificationView } from './killswitch-routes.ts';
import { registerApprovalRoutes } from './approval-routes.ts';
import { registerSpendRoutes, taskSpend } from './spend-routes.ts';
import type { KillSwitchRoutesDeps } from './killswitch-routes.ts';

/** What a task type's detector rests on right now. */
export interface DetectorStatus {
  regime: 'rules' | 'type_baseline';
  baselineTasks: number;
  warmupTasks: number;
}

export interface ApiDeps {
  store: Store;
  /** Serve HTTPS with this certificate and key; undefined = plain HTTP. */
  tls?: TlsOptions | undefined;
  commands: { revoke(action: ManualAction): Promise<Revocation>; restore(action: ManualAction): Promise<Revocation> };
  detectorStatus(tenant: string, taskType: string): Promise<DetectorStatus>;
  /** Baselines per task type, for people: what is normal and how many tasks it was learned from. */
  baselines(
    tenant: string,
  ): Promise<{ taskType: string; tasks: number; regime: DetectorStatus['regime']; normal: Record<string, unknown> }[]>;
  /**
   * Readiness of the parts behind the API (store, bus): cheap, no table read. `checks` (store errors included) go
   * to the log, never to the public /readyz.
   */
  ready(): Promise<{ ready: boolean; checks: Record<string, string> }>;
  logger: Logger;
  /** The kill switch (credentials, introspection, leases, verification, stream); its routes are absent without it. */
  killSwitch?: KillSwitchRoutesDeps['runtime'];
  /** Who may call which route, and the audit trail of writes. */
  access: ApiAccess;
  /** Token management and the audit trail's reads; absent without it. */
  admin?: AdminRoutesDeps;
  /** Detection routes (false-positive feedback, shadow report, one baseline); absent without it. */
  detection?: DetectionRoutesOptions;
}

/** The tenant of the tokens Tripline makes at first start. */
export const DEFAULT_TENANT = 'default';

const taskIdParam = idParam('taskId');

const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    task_id: { type: 'string', minLength: 1, maxLength: 256 },
    agent_id: { type: 'string', minLength: 1, maxLength: 256 },
    since: { type: 'string', minLength: 1, maxLength: 64 },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
    cursor: { type: 'string', minLength: 1, maxLength: 512 },
  },
} as const;

interface ListQuery {
  task_id?: string;
  agent_id?: string;
  since?: string;
  limit: number;
  cursor?: string;
}

export function buildApiApp(deps: ApiDeps): FastifyInstance {
  // Task ids may be up to 256 characters (encoded, more): the router's default of 100 would answer 414.
  const app = createHttpServer(deps.logger, { bodyLimit: 64 * 1024, maxParamLength: 1024, tls: deps.tls });

  app.setErrorHandler((error: FastifyError | TriplineError, request, reply) => {
    if (isTriplineError(error)) {
      const retryAfter = error.details.retryAfterSeconds;
      if (typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter));
      // Details are safe to show by construction (they never hold secrets), e.g. the policies that denied.
      return reply.status(error.status).send({
        error: {
          code: error.code,
          message: error.message,
          ...(Object.keys(error.details).length === 0 ? {} : { details: error.details }),
        },
      });
    }
    if (error.validation !== undefined) {
      return reply.status(400).send({ error: { code: 'VALIDATION_FAILED', message: error.message } });
    }
    if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.status(error.statusCode).send({ error: { code: error.code, message: error.message } });
    }
    request.log.error({ err: messageOf(error), url: request.url }, 'request failed');
    return reply.status(500).send({ error: { code: 'INTERNAL', message: 'internal error; see the server log' } });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url}` } }),
  );

  installAccessControl(app, deps.access);

  app.get('/healthz', () => ({ status: 'ok' }));

  // Public (probes send no token): the answer says ready or not, nothing about the parts behind it.
  app.get('/readyz', async (_request, reply) => {
    const readiness = await deps.ready();
    if (!readiness.ready) deps.logger.warn({ checks: readiness.checks }, 'not ready');
    return reply.status(readiness.ready ? 200 : 503).send({ status: readiness.ready ? 'ready' : 'not_ready' });
  });

  app.get<{ Params: { taskId: string } }>('/v1/tasks/:taskId', { schema: { params: taskIdParam } }, async (request) => {
    const tenant = tenantOf(request);
    const task = await deps.store.getTask(tenant, request.params.taskId);
    if (task === null) throw new TriplineError('NOT_FOUND', `no task ${request.params.taskId}`);
    const [detector, tree, spend] = await Promise.all([
      deps.detectorStatus(tenant, task.taskType),
      taskTreeView(deps.store, task),
      taskSpend(deps.store, tenant, task.taskId, Date.now()),
    ]);
    return { ...taskView(task, detector), ...tree, spend };
  });

  app.get<{ Querystring: ListQuery }>('/v1/alerts', { schema: { querystring: listQuery } }, async (request) => {
    const page = await deps.store.listAlerts(listFilter(tenantOf(request), request.query));
    return { items: page.items.map(alertView), nextCursor: page.nextCursor ?? null };
  });

  app.get<{ Querystring: ListQuery }>('/v1/revocations', { schema: { querystring: listQuery } }, async (request) => {
    const page = await deps.store.listRevocations(listFilter(tenantOf(request), request.query));
    const killSwitch = deps.killSwitch;
    if (killSwitch === undefined) return { items: page.items.map(revocationView), nextCursor: page.nextCursor ?? null };
    // Each revoke with its verification outcome (one query for the page).
    const verifications = new Map(
      (
        await killSwitch.store.getVerifications(
          tenantOf(request),
          page.items.filter((item) => item.action === 'revoke').map((item) => item.id),
        )
      ).map((record) => [record.revocationId, record]),
    );
    return {
      items: page.items.map((item) => ({
        ...revocationView(item),
        verification: item.action === 'revoke' ? verificationView(verifications.get(item.id) ?? null) : null,
      })),
      nextCursor: page.nextCursor ?? null,
    };
  });

  app.post<{ Params: { taskId: string }; Body: { reason: string; actor?: string } }>(
    '/v1/tasks/:taskId/revoke',
    { schema: { params: taskIdParam, body: actionBody } },
    async (request, reply) => {
      const revocation = await deps.commands.revoke(manualAction(request, request.params.taskId, request.body));
      return reply.status(201).send(revocationView(revocation));
    },
  );

  app.post<{ Params: { taskId: string }; Body: { reason: string; actor?: string } }>(
    '/v1/tasks/:taskId/restore',
    { schema: { params: taskIdParam, body: actionBody } },
    async (request, reply) => {
      const revocation = await deps.commands.restore(manualAction(request, request.params.taskId, request.body));
      return reply.status(201).send(revocationView(revocation));
    },
  );

  app.get('/v1/baselines', async (request) => ({ items: await deps.baselines(tenantOf(request)) }));

  registerTimelineRoutes(app, {
    store: deps.store,
    ...(deps.killSwitch === undefined ? {} : { killSwitch: deps.killSwitch.store }),
    ...(deps.killSwitch?.approvals === undefined ? {} : { approvals: deps.killSwitch.approvals }),
    ...(deps.admin === undefined ? {} : { audit: deps.admin.store }),
  });

  if (deps.admin !== undefined) registerAdminRoutes(app, deps.admin);
  if (deps.killSwitch !== undefined) registerKillSwitchRoutes(app, { runtime: deps.killSwitch });
  if (deps.killSwitch?.approvals !== undefined)
    registerApprovalRoutes(app, {
      approvals: deps.killSwitch.approvals,
      authority: deps.killSwitch.authority,
      publicUrl: deps.killSwitch.config.publicUrl,
      ...(deps.access.audit === undefined ? {} : { audit: deps.access.audit }),
    });
  if (deps.detection !== undefined) void app.register(detectionRoutes, deps.detection);
  registerSpendRoutes(app, deps.store);

  return app;
}

function manualAction(request: FastifyRequest, taskId: string, body: { reason: string; actor?: string }): ManualAction {
  return { tenant: tenantOf(request), taskId, reason: body.reason, actor: actorOf(request, body.actor) };
}

function listFilter(tenant: string, query: ListQuery): ListFilter {
  const filter: ListFilter = { tenant, limit: query.limit };
  if (query.task_id !== undefined) filter.taskId = query.task_id;
  if (query.agent_id !== undefined) filter.agentId = query.agent_id;
  if (query.cursor !== undefined) filter.cursor = query.cursor;
  if (query.since !== undefined) filter.sinceMs = parseSince(query.since);
  return filter;
}

/** `since` is an ISO 8601 time or epoch milliseconds. */
function parseSince(value: string): number {
  const asNumber = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(asNumber)) {
    throw new TriplineError(
      'VALIDATION_FAILED',
      `since=${JSON.stringify(value)} is not an ISO 8601 time or epoch milliseconds`,
    );
  }
  return asNumber;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function taskView(task: TaskRecord, detector: DetectorStatus): Record<string, unknown> {
  return {
    taskId: task.taskId,
    ...(task.name === '' ? {} : { name: task.name }),
    taskType: task.taskType,
    agentId: task.agentId,
    status: task.status,
    score: task.score,
    decision: task.decision,
    regime: task.regime,
    reasons: task.reasons,
    counts: task.counts,
    startedAt: iso(task.startedMs),
    lastEventAt: iso(task.lastEventMs),
    endedAt: iso(task.endedMs),
    detector,
  };
}

export function alertView(alert: Alert): Record<string, unknown> {
  const { tenant: _tenant, ...rest } = alert;
  return { ...rest, time: iso(alert.timeMs) };
}

export function revocationView(revocation: Revocation): Record<string, unknown> {
  const { tenant: _tenant, ...rest } = revocation;
  return { ...rest, time: iso(revocation.timeMs) };
}
