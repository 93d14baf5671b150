/**
 * The built-in console: a small web page served by the API (`GET /`) for people running Tripline without
 * Grafana. Live alerts and revocations, each task's score and reasons, a sparkline of events per kind over the
 * last minutes, and buttons to kill and restore a task.
 *
 * - The page is server-rendered HTML (layout, styles) plus one small vanilla script, `GET /console/app.js`
 *   (no framework, no build step). The script polls every second and builds the DOM with textContent only.
 * - Alerts and revocations come from the public JSON API (`/v1/alerts`, `/v1/revocations`, with each kill's
 *   verification outcome when the API has the kill switch), refreshed at once on the kill switch's server-sent
 *   events (`/v1/stream`) where the API offers them; kill and restore
 *   call the same `POST /v1/tasks/:id/revoke|restore` with the reason and name the person enters, so the
 *   console's actions land in the same audit trail as any API client's.
 * - Tasks and activity come from two read endpoints of the console's own (`/console/api/tasks`,
 *   `/console/api/activity`), over services/store/clickhouse/console-queries.ts.
 *
 * - The page and its script are public; the data needs an API token (viewer to watch, operator to kill and
 *   restore). The page asks for one and keeps it in the tab's sessionStorage; requests send it as a bearer
 *   token, and the event stream is read with fetch (EventSource cannot send headers).
 *
 * Register it on the API app before it listens:
 * `await registerConsole(app, { openQueries: () => openConsoleQueries(config.store), logger })`; the composition
 * root chooses the store adapter, the console only reads through it.
 *
 * Here: the deps and the routes. The page is ./console/page.ts (its styles ./console/styles.ts), the script
 * ./console/client-script.ts.
 */
import type { FastifyInstance } from 'fastify';
import { TriplineError, messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { ConsoleQueries } from '../store/clickhouse/console-queries.ts';
import { tenantOf } from './access.ts';
import { CLIENT_SCRIPT } from './console/client-script.ts';
import { page } from './console/page.ts';
import { timelinePage } from './console/timeline-page.ts';
import { TIMELINE_SCRIPT } from './console/timeline-script.ts';

export interface ConsoleDeps {
  /**
   * Opens the console's read queries on the store's ClickHouse (read-only), e.g.
   * `() => openConsoleQueries(config.store)`; they are closed when the app closes.
   */
  openQueries: () => Promise<ConsoleQueries>;
  logger: Logger;
  /** Queries to use instead of opening them with `openQueries` (tests). The caller closes them. */
  queries?: ConsoleQueries;
}

/** The activity sparkline: 60 buckets over the window. */
const ACTIVITY_BUCKETS = 60;

const tasksQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
} as const;

const activityQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { minutes: { type: 'integer', minimum: 1, maximum: 60, default: 5 } },
} as const;

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

/** Adds the console's routes to the API app. Never throws for a store problem: the page then says so. */
export async function registerConsole(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  let queries = deps.queries;
  if (queries === undefined) {
    try {
      const opened = await deps.openQueries();
      queries = opened;
      app.addHook('onClose', () => opened.close());
    } catch (error) {
      deps.logger.warn(
        { err: messageOf(error) },
        'the console cannot read tasks and activity; it will show alerts and revocations only',
      );
    }
  }
  const ready = (): ConsoleQueries => {
    if (queries === undefined)
      throw new TriplineError(
        'STORE_UNAVAILABLE',
        'The console could not open its read connection to ClickHouse; see the server log',
      );
    return queries;
  };

  app.get('/', (_request, reply) =>
    reply
      .headers({ ...SECURITY_HEADERS, 'cache-control': 'no-cache' })
      .type('text/html; charset=utf-8')
      .send(page()),
  );

  app.get('/console/app.js', (_request, reply) =>
    reply
      .headers({ 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache' })
      .type('text/javascript; charset=utf-8')
      .send(CLIENT_SCRIPT),
  );

  // A task's timeline (docs/timeline.md): the page and its script are public, the data needs a viewer token.
  app.get('/console/timeline', (_request, reply) =>
    reply
      .headers({ ...SECURITY_HEADERS, 'cache-control': 'no-cache' })
      .type('text/html; charset=utf-8')
      .send(timelinePage()),
  );

  app.get('/console/timeline.js', (_request, reply) =>
    reply
      .headers({ 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache' })
      .type('text/javascript; charset=utf-8')
      .send(TIMELINE_SCRIPT),
  );

  app.get<{ Querystring: { limit: number } }>(
    '/console/api/tasks',
    { schema: { querystring: tasksQuery } },
    async (request, reply) => {
      const result = await ready().tasks(tenantOf(request), request.query.limit);
      return reply.header('cache-control', 'no-store').send(result);
    },
  );

  app.get<{ Querystring: { minutes: number } }>(
    '/console/api/activity',
    { schema: { querystring: activityQuery } },
    async (request, reply) => {
      const bucketMs = (request.query.minutes * 60_000) / ACTIVITY_BUCKETS;
      const result = await ready().activity(tenantOf(request), {
        nowMs: Date.now(),
        bucketMs,
        buckets: ACTIVITY_BUCKETS,
      });
      return reply.header('cache-control', 'no-store').send({ ...result, minutes: request.query.minutes });
    },
  );
}
