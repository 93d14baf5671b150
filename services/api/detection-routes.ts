/**
 * Detection routes, as a fastify plugin registered on the API app:
 *
 *   POST /v1/alerts/:id/false-positive   {reason, actor?}  → 201 (learned) or 200 (the task was already marked)
 *   GET  /v1/shadow-report?from=&to=&task_type=           what shadow mode would have done (default: last 24 h)
 *   GET  /v1/baselines/:taskType?agent_id=                what is normal for the type (or one agent within it),
 *                                                          its regime and how many false positives it learned
 *
 * Times are ISO 8601 or epoch milliseconds. Errors are TriplineErrors, answered by the app's error handler.
 */
import type { FastifyPluginAsync } from 'fastify';
import { actorOf, tenantOf } from './access.ts';
import { actionBody, idParam } from './schemas.ts';
import { describeBaseline } from '../core/detect/index.ts';
import type { Feedback } from '../detection/feedback.ts';
import { shadowReport } from '../detection/shadow-report.ts';
import type { BaselineBook } from '../processor/baseline-book.ts';
import { TriplineError } from '../shared/errors.ts';
import type { DetectionQueries } from '../store/clickhouse/detection-queries.ts';

export interface DetectionRoutesOptions {
  feedback: Feedback;
  queries: DetectionQueries;
  /** The baselines the detector uses (embedded: `() => processor.baselines()`; distributed: loaded from the store). */
  baselines: (tenant: string) => BaselineBook | Promise<BaselineBook>;
  warmupTasks: number;
  agentWarmupTasks: number;
  now?: () => number;
}

const DAY_MS = 86_400_000;

const alertIdParam = idParam('id');
const feedbackBody = actionBody;

const shadowQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    from: { type: 'string', minLength: 1, maxLength: 64 },
    to: { type: 'string', minLength: 1, maxLength: 64 },
    task_type: { type: 'string', minLength: 1, maxLength: 256 },
    examples: { type: 'integer', minimum: 0, maximum: 100, default: 10 },
  },
} as const;

const baselineParams = {
  type: 'object',
  required: ['taskType'],
  properties: { taskType: { type: 'string', minLength: 1, maxLength: 256 } },
} as const;

const baselineQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { agent_id: { type: 'string', minLength: 1, maxLength: 256 } },
} as const;

/** ISO 8601 or epoch milliseconds. */
export function parseTime(name: string, value: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms))
    throw new TriplineError(
      'VALIDATION_FAILED',
      `${name}=${JSON.stringify(value)} is not an ISO 8601 time or epoch milliseconds`,
      { details: { key: name } },
    );
  return ms;
}

export const detectionRoutes: FastifyPluginAsync<DetectionRoutesOptions> = (app, options) => {
  const now = options.now ?? Date.now;

  app.post<{ Params: { id: string }; Body: { reason: string; actor?: string } }>(
    '/v1/alerts/:id/false-positive',
    { schema: { params: alertIdParam, body: feedbackBody } },
    async (request, reply) => {
      const result = await options.feedback.markFalsePositive({
        tenant: tenantOf(request),
        alertId: request.params.id,
        actor: actorOf(request, request.body.actor),
        reason: request.body.reason,
      });
      const { tenant: _tenant, timeMs, ...feedback } = result.feedback;
      return reply.status(result.created ? 201 : 200).send({
        created: result.created,
        feedback: { ...feedback, time: new Date(timeMs).toISOString() },
        baseline: result.baseline,
      });
    },
  );

  app.get<{ Querystring: { from?: string; to?: string; task_type?: string; examples: number } }>(
    '/v1/shadow-report',
    { schema: { querystring: shadowQuery } },
    async (request) => {
      const toMs = request.query.to === undefined ? now() : parseTime('to', request.query.to);
      const fromMs = request.query.from === undefined ? toMs - DAY_MS : parseTime('from', request.query.from);
      if (fromMs > toMs)
        throw new TriplineError('VALIDATION_FAILED', 'from must not be after to', { details: { key: 'from' } });
      return shadowReport(options.queries, {
        tenant: tenantOf(request),
        fromMs,
        toMs,
        examples: request.query.examples,
        ...(request.query.task_type === undefined ? {} : { taskType: request.query.task_type }),
      });
    },
  );

  app.get<{ Params: { taskType: string }; Querystring: { agent_id?: string } }>(
    '/v1/baselines/:taskType',
    { schema: { params: baselineParams, querystring: baselineQuery } },
    async (request) => {
      const tenant = tenantOf(request);
      const { taskType } = request.params;
      const book = await options.baselines(tenant);
      const type = book.get(tenant, taskType);
      if (type === undefined)
        throw new TriplineError(
          'NOT_FOUND',
          `no baseline for task type ${taskType}: no task of this type has completed without an alert yet`,
        );
      const agentId = request.query.agent_id;
      const agent = agentId === undefined ? undefined : book.get(tenant, taskType, agentId);
      if (agentId !== undefined && agent === undefined)
        throw new TriplineError('NOT_FOUND', `no baseline for agent ${agentId} in task type ${taskType}`);
      const typeRegime = type.tasks >= options.warmupTasks ? 'type_baseline' : 'rules';
      const agentRegime = (tasks: number): string =>
        tasks >= options.agentWarmupTasks ? 'agent_baseline' : typeRegime;
      const agents = book
        .list(tenant)
        .filter((entry) => entry.taskType === taskType && entry.agentId !== '')
        .map((entry) => ({
          agentId: entry.agentId,
          tasks: entry.baseline.tasks,
          regime: agentRegime(entry.baseline.tasks),
        }))
        .sort((a, b) => b.tasks - a.tasks || (a.agentId < b.agentId ? -1 : 1));
      const shown = agent ?? type;
      return {
        taskType,
        agentId: agentId ?? null,
        tasks: shown.tasks,
        regime: agent !== undefined ? agentRegime(agent.tasks) : typeRegime,
        warmupTasks: agent !== undefined ? options.agentWarmupTasks : options.warmupTasks,
        falsePositivesLearned: shown.falsePositivesLearned,
        agents,
        normal: describeBaseline(shown),
      };
    },
  );
  return Promise.resolve();
};
