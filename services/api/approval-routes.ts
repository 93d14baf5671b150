/**
 * Approval points (docs/approvals.md), registered by services/api/app.ts with the kill switch:
 *
 *   GET  /v1/approvals?status=&task_id=&limit=   the tenant's approvals, newest first (viewer)
 *   GET  /v1/approvals/:approvalId               one approval (viewer)
 *   POST /v1/approvals/:approvalId/approve       a person approves (operator; the approver is the token's name)
 *   POST /v1/approvals/:approvalId/deny          a person denies (operator)
 *   GET  /v1/approvals/:approvalId/status        the agent polls its own approval (Authorization: Bearer <task token>)
 *
 * Agent tokens never pass an operator route (services/auth/roles.ts), and a task token is no API token at all:
 * nothing an agent holds can approve. The approve and deny requests are written to the audit trail by the access
 * hook (services/api/access.ts); the steps no person's request makes (requested, used, expired) are written to it
 * here, with the agent or `tripline` as the actor.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { APPROVAL_STATUSES } from '../core/approvals.ts';
import type { ApprovalStatus } from '../core/approvals.ts';
import type { AuditTrail } from '../auth/audit-trail.ts';
import type { Authority } from '../killswitch/authority.ts';
import { approvalView } from '../killswitch/approvals.ts';
import type { ApprovalManager } from '../killswitch/approvals.ts';
import { KillSwitchError } from '../killswitch/errors.ts';
import { TriplineError } from '../shared/errors.ts';
import { actorOf, tenantOf } from './access.ts';
import { idParam } from './schemas.ts';

export interface ApprovalRoutesDeps {
  approvals: ApprovalManager;
  authority: Pick<Authority, 'authenticate'>;
  publicUrl: string;
  audit?: AuditTrail;
}

const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    status: { type: 'string', enum: [...APPROVAL_STATUSES] },
    task_id: { type: 'string', minLength: 1, maxLength: 256 },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  },
} as const;

const decisionBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    reason: { type: 'string', maxLength: 2000 },
    actor: { type: 'string', minLength: 1, maxLength: 256 },
  },
} as const;

const approvalIdParam = idParam('approvalId');

function bearer(request: FastifyRequest): string {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  if (match?.[1] === undefined)
    throw new KillSwitchError('TOKEN_INVALID', 'send the task token as "Authorization: Bearer <token>"');
  return match[1];
}

export function registerApprovalRoutes(app: FastifyInstance, deps: ApprovalRoutesDeps): void {
  const { approvals, authority, publicUrl, audit } = deps;
  const view = (approval: Parameters<typeof approvalView>[0]) => approvalView(approval, publicUrl);

  if (audit !== undefined) {
    const unsubscribe = approvals.subscribe((step, approval) => {
      if (step.step === 'approved' || step.step === 'denied') return; // the approve/deny request is audited itself
      audit.record({
        timeMs: step.timeMs,
        tenant: step.tenant,
        actor: step.actor,
        tokenId: step.step === 'expired' ? 'tripline' : `agent:${approval.agentId}`,
        role: step.step === 'expired' ? 'system' : 'agent',
        method: 'APPROVAL',
        route: `approval ${step.step}`,
        target: JSON.stringify({ approvalId: approval.id, taskId: approval.taskId, tool: approval.tool }),
        reason: step.reason,
        status: 200,
        requestId: '',
      });
    });
    app.addHook('onClose', (_instance, done) => {
      unsubscribe();
      done();
    });
  }

  app.get<{ Querystring: { status?: ApprovalStatus; task_id?: string; limit: number } }>(
    '/v1/approvals',
    { schema: { querystring: listQuery } },
    async (request) => {
      const rows = await approvals.list({
        tenant: tenantOf(request),
        limit: request.query.limit,
        ...(request.query.status === undefined ? {} : { status: request.query.status }),
        ...(request.query.task_id === undefined ? {} : { taskId: request.query.task_id }),
      });
      // The status filter is the stored one; an open approval past its expiry is shown as expired.
      const items = rows.filter((row) => request.query.status === undefined || row.status === request.query.status);
      return { items: items.map(view) };
    },
  );

  app.get<{ Params: { approvalId: string } }>(
    '/v1/approvals/:approvalId',
    { schema: { params: approvalIdParam } },
    async (request) => {
      const approval = await approvals.get(tenantOf(request), request.params.approvalId);
      if (approval === null) throw new TriplineError('NOT_FOUND', `no approval ${request.params.approvalId}`);
      return view(approval);
    },
  );

  for (const decision of ['approve', 'deny'] as const) {
    app.post<{ Params: { approvalId: string }; Body: { reason?: string; actor?: string } | undefined }>(
      `/v1/approvals/:approvalId/${decision}`,
      { schema: { params: approvalIdParam, body: decisionBody } },
      async (request) => {
        const body = request.body ?? {};
        const approval = await approvals.decide(
          tenantOf(request),
          request.params.approvalId,
          decision,
          actorOf(request, body.actor),
          body.reason ?? '',
        );
        return view(approval);
      },
    );
  }

  // The agent's own approval, with its task token: another task's approval is not found.
  app.get<{ Params: { approvalId: string } }>(
    '/v1/approvals/:approvalId/status',
    { schema: { params: approvalIdParam } },
    async (request, reply) => {
      const claims = await authority.authenticate(bearer(request));
      const approval = await approvals.get(claims.tenant, request.params.approvalId);
      if (approval === null || approval.taskId !== claims.taskId)
        throw new TriplineError('NOT_FOUND', `no approval ${request.params.approvalId} of this task`);
      return reply.header('cache-control', 'no-store').send({
        approvalId: approval.id,
        status: approval.status,
        tool: approval.tool,
        resource: approval.resource,
        expiresAt: new Date(approval.expiresMs).toISOString(),
        decidedBy: approval.decidedBy === '' ? null : approval.decidedBy,
        decisionReason: approval.decisionReason === '' ? null : approval.decisionReason,
      });
    },
  );
}
