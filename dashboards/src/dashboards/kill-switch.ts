/** The kill-switch dashboard (`tripline-kill-switch`): kills and restores, whether each kill took effect, how fast, and who acted by hand. */
import { dashboard, stat, table, timeseries } from '../grafana.ts';
import type { DashboardSpec } from '../grafana.ts';
import { TENANT, tenantVariable, taskIdColumn, scoreColumn, ACTION_COLORS } from './common.ts';

const OUTCOME_COLORS = {
  verified: { text: 'verified', color: 'green' },
  failed: { text: 'failed', color: 'red' },
  pending: { text: 'pending', color: 'blue' },
};
const VERIFICATIONS = { whenTableHasRows: 'verifications' } as const;

export const killSwitch: DashboardSpec = dashboard({
  file: 'kill-switch.json',
  uid: 'tripline-kill-switch',
  title: 'Tripline / Kill switch',
  description:
    'Revocations and restores, automatic and manual; whether each kill was verified to have taken effect; how fast kills happen; and who acted by hand.',
  variables: [tenantVariable],
  panels: [
    stat(
      'Automatic kills',
      'Tasks the detector revoked in the time range.',
      `SELECT countIf(action = 'revoke' AND source = 'detector') AS automatic_kills FROM tripline.revocations FINAL WHERE ${TENANT} AND $__timeFilter(time)`,
      {
        size: { w: 6, h: 4 },
        color: 'red',
        needs: ['automatic_kills'],
      },
    ),
    stat(
      'Manual kills',
      'Tasks a person revoked (POST /v1/tasks/:id/revoke or the console).',
      `SELECT countIf(action = 'revoke' AND source = 'manual') AS manual_kills FROM tripline.revocations FINAL WHERE ${TENANT} AND $__timeFilter(time)`,
      {
        size: { w: 6, h: 4 },
        color: 'purple',
        needs: ['manual_kills'],
      },
    ),
    stat(
      'Restores',
      'Revoked tasks a person restored.',
      `SELECT countIf(action = 'restore') AS restores FROM tripline.revocations FINAL WHERE ${TENANT} AND $__timeFilter(time)`,
      {
        size: { w: 6, h: 4 },
        color: 'green',
        needs: ['restores'],
      },
    ),
    stat(
      'Revoked now',
      'Tasks whose credentials are revoked at this moment, whatever the time range.',
      `SELECT countIf(status = 'revoked') AS revoked_now FROM tripline.tasks FINAL WHERE ${TENANT}`,
      {
        size: { w: 6, h: 4 },
        color: 'dark-red',
        needs: ['revoked_now'],
      },
    ),
    stat(
      'Verification outcomes',
      'After each revocation Tripline checks that the kill took effect (introspection inactive, leases revoked, the agent stopped and acknowledged): verified, failed (each failure also raises an alert), or still pending.',
      `
      SELECT countIf(outcome = 'verified') AS verified, countIf(outcome = 'failed') AS failed, countIf(outcome = 'pending') AS pending
      FROM tripline.verifications FINAL
      WHERE ${TENANT} AND $__timeFilter(revoked_at)
      `,
      { size: { w: 8, h: 5 }, color: 'green', needs: ['verified', 'failed', 'pending'] },
    ),
    stat(
      'Kill latency: revocation to agent stopped',
      'From the revocation to the agent helper acknowledging it (the agent refuses its next tool call from then on), over the revocations in the time range.',
      `
      SELECT quantile(0.5)(latency_ms) AS p50, quantile(0.9)(latency_ms) AS p90, quantile(0.99)(latency_ms) AS p99, max(latency_ms) AS max
      FROM
      (
          SELECT dateDiff('millisecond', revoked_at, acknowledged_at) AS latency_ms
          FROM tripline.verifications FINAL
          WHERE ${TENANT} AND acknowledged_at IS NOT NULL AND $__timeFilter(revoked_at)
      )
      `,
      { size: { w: 8, h: 5 }, unit: 'ms', color: 'blue', needs: ['p50', 'p90', 'p99', 'max'] },
    ),
    stat(
      'Detection latency: offending span to revocation',
      "Automatic kills: from the end of the offending span (as the agent timed it) to the revocation decision (Tripline's clock). Meaningful when agent and Tripline clocks are synchronised (NTP); simulated agents run a faster clock, so their values can be negative.",
      `
      SELECT quantile(0.5)(latency_ms) AS p50, quantile(0.9)(latency_ms) AS p90, quantile(0.99)(latency_ms) AS p99, count() AS kills
      FROM
      (
          SELECT dateDiff('millisecond', e.end_time, r.time) AS latency_ms
          FROM tripline.revocations AS r FINAL
          INNER JOIN
          (
              SELECT id, end_time FROM tripline.events FINAL WHERE ${TENANT} AND $__timeFilter(start_time)
          ) AS e ON e.id = r.event_id
          WHERE r.${TENANT} AND r.source = 'detector' AND r.action = 'revoke' AND $__timeFilter(r.time)
      )
      `,
      { size: { w: 8, h: 5 }, unit: 'ms', color: 'blue', needs: ['p50', 'p90', 'p99', 'kills'] },
    ),
    timeseries(
      'Kill-switch actions',
      'Revokes and restores per interval, by source (detector or manual).',
      `
      SELECT $__timeInterval(time) AS t, concat(action, ' by ', source) AS series, count() AS actions
      FROM tripline.revocations FINAL
      WHERE ${TENANT} AND $__timeFilter(time)
      GROUP BY t, series
      ORDER BY t, series
      `,
      { size: { w: 24, h: 7 }, style: 'bars', stack: true, timeColumn: 't', needs: ['t', 'series', 'actions'] },
    ),
    table(
      'Revocations and restores',
      'Every kill-switch action in the time range, newest first, with the score and reasons behind automatic ones and the verification outcome of each revoke.',
      `
      SELECT r.time AS time, r.action AS action, r.source AS source, r.actor AS actor, r.task_id AS task_id,
             r.task_type AS task_type, r.agent_id AS agent_id, r.score AS score, r.reason AS reason,
             arrayStringConcat(r.reasons, ' | ') AS reasons_text,
             if(r.action = 'revoke', ifNull(nullIf(toString(v.outcome), ''), 'unverified'), '') AS verification
      FROM tripline.revocations AS r FINAL
      LEFT JOIN
      (
          SELECT revocation_id, outcome FROM tripline.verifications FINAL WHERE ${TENANT}
      ) AS v ON v.revocation_id = r.id
      WHERE r.${TENANT} AND $__timeFilter(r.time)
      ORDER BY time DESC
      LIMIT 200
      `,
      {
        size: { w: 24, h: 9 },
        columns: {
          task_id: taskIdColumn,
          score: scoreColumn,
          action: { mappings: ACTION_COLORS, width: 80 },
          verification: {
            mappings: { ...OUTCOME_COLORS, unverified: { text: 'unverified', color: 'text' } },
            width: 100,
          },
          reasons_text: { displayName: 'reasons' },
          time: { width: 190 },
        },
        needs: [
          'time',
          'action',
          'source',
          'actor',
          'task_id',
          'agent_id',
          'score',
          'reason',
          'reasons_text',
          'verification',
        ],
      },
    ),
    table(
      'Verifications',
      'For each revocation: did the kill take effect, when was that decided, when did the agent acknowledge, and what failed.',
      `
      SELECT revoked_at, task_id, task_type, agent_id, outcome,
             dateDiff('millisecond', revoked_at, decided_at) AS decided_after_ms,
             dateDiff('millisecond', revoked_at, acknowledged_at) AS acknowledged_after_ms,
             arrayStringConcat(failures, ' | ') AS failures_text
      FROM tripline.verifications FINAL
      WHERE ${TENANT} AND $__timeFilter(revoked_at)
      ORDER BY revoked_at DESC
      LIMIT 200
      `,
      {
        size: { w: 12, h: 8 },
        columns: {
          task_id: taskIdColumn,
          outcome: { mappings: OUTCOME_COLORS, width: 90 },
          decided_after_ms: { unit: 'ms' },
          acknowledged_after_ms: { unit: 'ms' },
          failures_text: { displayName: 'failures' },
        },
        needs: [
          'revoked_at',
          'task_id',
          'agent_id',
          'outcome',
          'decided_after_ms',
          'acknowledged_after_ms',
          'failures_text',
        ],
        rows: VERIFICATIONS,
      },
    ),
    table(
      'Manual actions',
      'Kills and restores done by people: who, when, on which task, and the reason they gave (the audit trail).',
      `
      SELECT time, action, actor, reason, task_id, task_type, agent_id
      FROM tripline.revocations FINAL
      WHERE ${TENANT} AND source = 'manual' AND $__timeFilter(time)
      ORDER BY time DESC
      LIMIT 200
      `,
      {
        size: { w: 12, h: 8 },
        columns: { task_id: taskIdColumn, action: { mappings: ACTION_COLORS, width: 80 }, time: { width: 190 } },
        needs: ['time', 'action', 'actor', 'reason', 'task_id'],
      },
    ),
  ],
});
