/**
 * Detection read models over ClickHouse, beside the Store port: what shadow mode would have done over a time
 * range, alerts by id, operator feedback (false positives), and what the learner rebuilds baselines from.
 * Takes a `@clickhouse/client` client and the database Tripline's tables live in; the same SQL runs on a
 * ClickHouse server and on the in-process engine (chdb). Every read says FINAL (see store.ts).
 *
 * The `feedback` table comes with migration 009; `ensureSchema` also creates it on first use (idempotent).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { AgentEvent, Alert } from '../../../schemas/events.ts';
import { TriplineError } from '../../shared/errors.ts';
import { QUERY_SETTINGS, isDatabaseName, openClickHouseClient } from './client.ts';
import type { DetectionContext } from './detection-context.ts';
import { createFeedbackTable, getFeedback, insertFeedback, listFeedback } from './feedback-queries.ts';
import type { FeedbackRecord } from './feedback-queries.ts';
import { eventsForTasks, learnableTasks } from './learner-queries.ts';
import type { LearnableTask, LearnableTaskOptions } from './learner-queries.ts';
import { alertsInRange, getAlert, taskCountsByType } from './shadow-queries.ts';
import type { TaskAlertSummary, TimeRange } from './shadow-queries.ts';

export type { FeedbackRecord } from './feedback-queries.ts';
export type { LearnableTask } from './learner-queries.ts';
export type { TaskAlertSummary, TimeRange } from './shadow-queries.ts';

export interface DetectionQueries {
  /** Create the feedback table if it is missing (idempotent). */
  ensureSchema(): Promise<void>;
  getAlert(tenant: string, alertId: string): Promise<Alert | null>;
  /** Per task with alerts in the range: the strongest decision, separately for shadow and live alerts. */
  alertsInRange(range: TimeRange): Promise<TaskAlertSummary[]>;
  /** Tasks started in the range, per task type. */
  taskCountsByType(range: TimeRange): Promise<Map<string, number>>;
  insertFeedback(record: FeedbackRecord): Promise<void>;
  getFeedback(tenant: string, taskId: string): Promise<FeedbackRecord | null>;
  listFeedback(tenant?: string): Promise<FeedbackRecord[]>;
  /**
   * Tasks to learn from, in the order they ended: completed tasks with no live alert and never revoked
   * (the processor's rule), plus ended tasks an operator marked false positive. Keyset paging.
   */
  learnableTasks(options: LearnableTaskOptions): Promise<LearnableTask[]>;
  /** Events of several tasks of a tenant, per task in time order (as `Store.eventsForTask`). */
  eventsForTasks(tenant: string, taskIds: readonly string[]): Promise<Map<string, AgentEvent[]>>;
}

export function createDetectionQueries(client: ClickHouseClient, database: string): DetectionQueries {
  if (!isDatabaseName(database))
    throw new TriplineError(
      'CONFIG_INVALID',
      `database must be letters, digits and _ (got ${JSON.stringify(database)})`,
    );
  const context: DetectionContext = { client, db: database };
  let schema: Promise<void> | undefined;
  const ensureSchema = (): Promise<void> => {
    schema ??= createFeedbackTable(context).catch((error: unknown) => {
      schema = undefined;
      throw error;
    });
    return schema;
  };
  return {
    ensureSchema,
    getAlert: (tenant, alertId) => getAlert(context, tenant, alertId),
    alertsInRange: (range) => alertsInRange(context, range),
    taskCountsByType: (range) => taskCountsByType(context, range),
    async insertFeedback(record) {
      await ensureSchema();
      await insertFeedback(context, record);
    },
    async getFeedback(tenant, taskId) {
      await ensureSchema();
      return getFeedback(context, tenant, taskId);
    },
    async listFeedback(tenant) {
      await ensureSchema();
      return listFeedback(context, tenant);
    },
    async learnableTasks(options) {
      await ensureSchema();
      return learnableTasks(context, options);
    },
    eventsForTasks: (tenant, taskIds) => eventsForTasks(context, tenant, taskIds),
  };
}

export interface DetectionClientOptions {
  /** A ClickHouse server's HTTP(S) URL; unset = the in-process engine at `dataDir`. */
  url?: string | undefined;
  username?: string;
  password?: string;
  dataDir: string;
}

/**
 * A client of its own, for processes that have no store open (the learner) or before the store shares its
 * client. On the in-process engine it joins the process's data directory (libchdb lets connections share it; it
 * must be the directory any store in this process uses, and the main thread).
 */
export function openDetectionClient(options: DetectionClientOptions): ClickHouseClient {
  return openClickHouseClient(options, { application: 'tripline-detection', settings: QUERY_SETTINGS });
}
