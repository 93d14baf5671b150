/**
 * `GET /v1/tasks/:taskId/timeline`: everything that happened to one task, in order (services/core/timeline.ts),
 * as a JSON page (`limit`, `cursor`) or the whole of it as JSON lines (`format=jsonl`, a download).
 *
 * Each source is read through its store port (the spine's Store, the kill switch's store, the audit trail's
 * access store; each works over ClickHouse and in memory), at most TIMELINE_SOURCE_CAP entries from each; a source
 * cut at its cap is named in `truncatedSources` (and the export's last line says so). A source whose store the API
 * was not given (no kill switch, no audit trail) is simply absent. Adding a source is one more entry in `sources`.
 *
 * Viewer role and up, of the caller's tenant only: the timeline holds the detector's scores and reasons, which an
 * agent must not read (it would learn how close it is to a kill), so agent and task tokens are refused.
 */
import type { FastifyInstance } from 'fastify';
import type { Revocation } from '../../schemas/events.ts';
import type { AccessStore } from '../auth/access-store.ts';
import { capSource, mergeTimeline } from '../core/timeline.ts';
import type { TimelineEntry, TimelinePosition, TimelineSource } from '../core/timeline.ts';
import type { ApprovalManager } from '../killswitch/approvals.ts';
import type { KillSwitchStore } from '../killswitch/ks-store.ts';
import { TriplineError } from '../shared/errors.ts';
import type { ListFilter, Page, Store, TaskRecord } from '../store/store.ts';
import { tenantOf } from './access.ts';
import { idParam } from './schemas.ts';
import {
  alertEntries,
  approvalEntries,
  auditEntries,
  credentialEntries,
  decisionEntries,
  eventEntries,
  leaseEntries,
  modelCallEntries,
  revocationEntries,
  taskEntries,
  verificationEntries,
} from './timeline-entries.ts';

/** At most this many entries from each source (events, alerts, …); beyond it the timeline says it is truncated. */
export const TIMELINE_SOURCE_CAP = 10_000;
/** At most this many children of the task are listed. */
const CHILD_CAP = 1000;
const PAGE_OF_ROWS = 1000;

export interface TimelineDeps {
  store: Pick<
    Store,
    'getTask' | 'childTasks' | 'eventsForTask' | 'listAlerts' | 'listRevocations' | 'modelCallsForTask'
  >;
  killSwitch?: Pick<
    KillSwitchStore,
    'listCredentials' | 'listTokenRevocations' | 'listDecisions' | 'listLeases' | 'getVerifications'
  >;
  audit?: Pick<AccessStore, 'listAudit'>;
  /** Approval points' steps (services/killswitch/approvals.ts). */
  approvals?: Pick<ApprovalManager, 'taskSteps'>;
  /** Per-source cap (tests); TIMELINE_SOURCE_CAP by default. */
  cap?: number;
}

export interface TaskTimeline {
  taskId: string;
  task: TaskRecord | null;
  sources: TimelineSource[];
}

/** Reads a keyset-paged list (newest first) until it ends or holds more than `cap` rows. */
async function readPages<T>(
  read: (filter: ListFilter) => Promise<Page<T>>,
  filter: Omit<ListFilter, 'limit' | 'cursor'>,
  cap: number,
): Promise<T[]> {
  const rows: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await read({ ...filter, limit: PAGE_OF_ROWS, ...(cursor === undefined ? {} : { cursor }) });
    rows.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== undefined && rows.length <= cap);
  return rows;
}

async function forEachId<T>(ids: readonly string[], read: (id: string) => Promise<T[]>): Promise<T[]> {
  return (await Promise.all(ids.map(read))).flat();
}

function uniqueBy<T>(rows: readonly T[], key: (row: T) => string): T[] {
  const seen = new Map<string, T>();
  for (const row of rows) if (!seen.has(key(row))) seen.set(key(row), row);
  return [...seen.values()];
}

/**
 * Reads every source of a task's timeline. `requested` is the id in the URL: the task's id or its declared name
 * (records of the kill switch are kept under the declared id, events under the task's own).
 */
export async function readTaskTimeline(deps: TimelineDeps, tenant: string, requested: string): Promise<TaskTimeline> {
  const cap = deps.cap ?? TIMELINE_SOURCE_CAP;
  const task = await deps.store.getTask(tenant, requested);
  const taskId = task?.taskId ?? requested;
  const ids = [...new Set([taskId, task?.name ?? '', requested].filter((id) => id !== ''))];
  const ks = deps.killSwitch;
  const audit = deps.audit;
  const [children, events, modelCalls, alerts, revocations, credentials, tokenRevocations, decisions, leases] =
    await Promise.all([
      task === null ? [] : deps.store.childTasks(tenant, ids, CHILD_CAP),
      forEachId(ids, (id) => deps.store.eventsForTask(tenant, id, cap + 1)),
      forEachId(ids, (id) => deps.store.modelCallsForTask(tenant, id, cap + 1)),
      forEachId(ids, (id) => readPages((f) => deps.store.listAlerts(f), { tenant, taskId: id }, cap)),
      forEachId(ids, (id) => readPages((f) => deps.store.listRevocations(f), { tenant, taskId: id }, cap)),
      ks === undefined ? [] : forEachId(ids, (id) => ks.listCredentials(tenant, id)),
      ks === undefined ? [] : forEachId(ids, (id) => ks.listTokenRevocations(tenant, id)),
      ks === undefined ? [] : forEachId(ids, (id) => ks.listDecisions({ tenant, taskId: id, limit: cap + 1 })),
      ks === undefined ? [] : forEachId(ids, (id) => ks.listLeases(tenant, id)),
    ]);
  const uniqueRevocations = uniqueBy(revocations, (r: Revocation) => r.id);
  // Audit rows about the task, its revocations (acknowledgements) and its alerts (false positives).
  const about = {
    taskIds: ids,
    revocationIds: uniqueRevocations.map((r) => r.id),
    alertIds: uniqueBy(alerts, (a) => a.id).map((a) => a.id),
  };
  const approvals = deps.approvals;
  const [verifications, audits, approvalSteps] = await Promise.all([
    ks === undefined
      ? []
      : ks.getVerifications(
          tenant,
          uniqueRevocations.filter((r) => r.action === 'revoke').map((r) => r.id),
        ),
    audit === undefined ? [] : audit.listAudit({ tenant, about, limit: cap + 1 }),
    approvals === undefined ? [] : forEachId(ids, (id) => approvals.taskSteps(tenant, id)),
  ]);
  const source = (name: string, entries: TimelineEntry[]): TimelineSource =>
    capSource(
      name,
      uniqueBy(entries, (e) => e.id),
      cap,
    );
  const sources: TimelineSource[] = [
    source('task', task === null ? [] : taskEntries(task, children)),
    source('events', eventEntries(events)),
    source('model_calls', modelCallEntries(modelCalls)),
    source('alerts', alertEntries(alerts)),
    source('revocations', revocationEntries(uniqueRevocations)),
  ];
  if (ks !== undefined) {
    sources.push(
      source('decisions', decisionEntries(decisions)),
      source('credentials', credentialEntries(credentials, tokenRevocations, uniqueRevocations)),
      source('leases', leaseEntries(leases)),
      source('verifications', verificationEntries(verifications)),
    );
  }
  if (audit !== undefined) sources.push(source('audit', auditEntries(audits)));
  if (approvals !== undefined) sources.push(source('approvals', approvalEntries(approvalSteps)));
  return { taskId, task, sources };
}

export function encodeTimelineCursor(position: TimelinePosition): string {
  return Buffer.from(JSON.stringify([position.timeMs, position.rank, position.id])).toString('base64url');
}

export function decodeTimelineCursor(cursor: string): TimelinePosition {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === 3 &&
      typeof value[0] === 'number' &&
      typeof value[1] === 'number' &&
      typeof value[2] === 'string'
    ) {
      return { timeMs: value[0], rank: value[1], id: value[2] };
    }
  } catch {
    // answered below
  }
  throw new TriplineError('VALIDATION_FAILED', 'cursor is not one this API gave out (pass nextCursor as it is)');
}

export function timelineEntryView(entry: TimelineEntry): Record<string, unknown> {
  return {
    timeMs: entry.timeMs,
    time: new Date(entry.timeMs).toISOString(),
    kind: entry.kind,
    source: entry.source,
    id: entry.id,
    summary: entry.summary,
    detail: entry.detail,
  };
}

function taskSummary(task: TaskRecord | null): Record<string, unknown> | null {
  if (task === null) return null;
  return {
    taskId: task.taskId,
    ...(task.name === '' ? {} : { name: task.name }),
    taskType: task.taskType,
    agentId: task.agentId,
    status: task.status,
    score: task.score,
    reasons: task.reasons,
    ...(task.parentTaskId === undefined ? {} : { parentTaskId: task.parentTaskId }),
    startedAt: new Date(task.startedMs).toISOString(),
    endedAt: task.endedMs === null ? null : new Date(task.endedMs).toISOString(),
  };
}

const timelineQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 200 },
    cursor: { type: 'string', minLength: 1, maxLength: 2048 },
    format: { type: 'string', enum: ['json', 'jsonl'], default: 'json' },
  },
} as const;

interface TimelineQuery {
  limit: number;
  cursor?: string;
  format: 'json' | 'jsonl';
}

/** A file name safe in a Content-Disposition header. */
function fileName(taskId: string): string {
  return `timeline-${taskId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100)}.jsonl`;
}

export function registerTimelineRoutes(app: FastifyInstance, deps: TimelineDeps): void {
  app.get<{ Params: { taskId: string }; Querystring: TimelineQuery }>(
    '/v1/tasks/:taskId/timeline',
    { schema: { params: idParam('taskId'), querystring: timelineQuery } },
    async (request, reply) => {
      const after = request.query.cursor === undefined ? undefined : decodeTimelineCursor(request.query.cursor);
      const timeline = await readTaskTimeline(deps, tenantOf(request), request.params.taskId);
      if (timeline.task === null && timeline.sources.every((s) => s.entries.length === 0))
        throw new TriplineError('NOT_FOUND', `no task ${request.params.taskId}`);
      void reply.header('cache-control', 'no-store');
      if (request.query.format === 'jsonl') {
        const all = mergeTimeline(timeline.sources, { limit: Number.MAX_SAFE_INTEGER });
        const lines = all.items.map((entry) => JSON.stringify(timelineEntryView(entry)));
        if (all.truncated) lines.push(JSON.stringify(truncatedLine(all.items.at(-1), all.truncatedSources, deps)));
        return reply
          .header('content-disposition', `attachment; filename="${fileName(timeline.taskId)}"`)
          .type('application/x-ndjson; charset=utf-8')
          .send(lines.length === 0 ? '' : `${lines.join('\n')}\n`);
      }
      const page = mergeTimeline(timeline.sources, {
        limit: request.query.limit,
        ...(after === undefined ? {} : { after }),
      });
      return {
        taskId: timeline.taskId,
        task: taskSummary(timeline.task),
        items: page.items.map(timelineEntryView),
        nextCursor: page.next === undefined ? null : encodeTimelineCursor(page.next),
        truncated: page.truncated,
        truncatedSources: page.truncatedSources,
        counts: page.counts,
        capPerSource: deps.cap ?? TIMELINE_SOURCE_CAP,
      };
    },
  );
}

/** The export's last line when a source was cut: an entry of kind `truncated`, after every other. */
function truncatedLine(
  last: TimelineEntry | undefined,
  sources: readonly string[],
  deps: TimelineDeps,
): Record<string, unknown> {
  const timeMs = last?.timeMs ?? 0;
  return {
    timeMs,
    time: new Date(timeMs).toISOString(),
    kind: 'truncated',
    source: 'timeline',
    id: 'truncated',
    summary: `The timeline is incomplete: ${sources.join(', ')} had more than ${deps.cap ?? TIMELINE_SOURCE_CAP} entries each; only the first are here.`,
    detail: { truncatedSources: sources, capPerSource: deps.cap ?? TIMELINE_SOURCE_CAP },
  };
}
