/**
 * Tripline's Grafana dashboards as code. `node dashboards/src/generate.ts` writes them to dashboards/json/;
 * test/integration/dashboards.test.ts checks that the files match this source and runs every query against the
 * ClickHouse engine with data from a real pipeline run.
 *
 * Every query reads with FINAL (schemas/clickhouse/README.md), filters on the tenant variable, and uses the
 * plugin's macros: `$__timeFilter(col)`, `$__timeInterval(col)`, `$__interval_s()` (argument-less macros are
 * written with `()`, see macros.ts for why). The database is `tripline` (CLICKHOUSE_DATABASE's default).
 */
import { barGauge, dashboard, note, stat, table, timeseries, variable } from './grafana.ts';
import type { ColumnOptions, DashboardSpec, Link } from './grafana.ts';

// Grafana template syntax inside SQL (plain strings: not TypeScript template placeholders).
const TENANT = "tenant = '${tenant}'";
const TASK = "task_id = '${task_id}'";

const tenantVariable = variable({
  name: 'tenant',
  label: 'Tenant',
  description: 'The tenant whose agents are shown (from the authenticated ingest credential; "default" without auth).',
  sql: 'SELECT DISTINCT tenant FROM tripline.tasks FINAL ORDER BY tenant',
  current: 'default',
});

const TASK_LINK: Link = {
  title: 'Open the task timeline',
  url: '/d/tripline-task/tripline-task?var-tenant=${tenant}&var-task_id=${__value.raw}&${__url_time_range}',
};
const taskIdColumn: ColumnOptions = { links: [TASK_LINK], width: 170 };
const scoreColumn: ColumnOptions = { colorByScore: true, width: 70 };
const STATUS_COLORS = {
  active: { text: 'active', color: 'blue' },
  completed: { text: 'completed', color: 'green' },
  revoked: { text: 'revoked', color: 'red' },
};
const DECISION_COLORS = {
  allow: { text: 'allow', color: 'green' },
  alert: { text: 'alert', color: 'orange' },
  revoke: { text: 'revoke', color: 'red' },
};
const ACTION_COLORS = {
  revoke: { text: 'revoke', color: 'red' },
  restore: { text: 'restore', color: 'green' },
};

export const fleet: DashboardSpec = dashboard({
  file: 'fleet.json',
  uid: 'tripline-fleet',
  title: 'Tripline / Fleet',
  description: 'Every agent at a glance: event rates by kind, alerts and revocations, the riskiest agents and tasks, and which detector regime each task type is in.',
  variables: [tenantVariable],
  panels: [
    stat('Events', 'Classified spans stored in the time range.', `SELECT count() AS events FROM tripline.events FINAL WHERE ${TENANT} AND $__timeFilter(start_time)`, {
      size: { w: 5, h: 4 },
      color: 'blue',
      needs: ['events'],
    }),
    stat('Alerts', 'Alerts raised in the time range (shadow-mode alerts not counted; see Baselines).', `SELECT countIf(NOT shadow) AS alerts FROM tripline.alerts FINAL WHERE ${TENANT} AND $__timeFilter(time)`, {
      size: { w: 5, h: 4 },
      color: 'orange',
      needs: ['alerts'],
    }),
    stat('Revocations', 'Tasks revoked in the time range, by the detector or by hand.', `SELECT countIf(action = 'revoke') AS revocations FROM tripline.revocations FINAL WHERE ${TENANT} AND $__timeFilter(time)`, {
      size: { w: 5, h: 4 },
      color: 'red',
      needs: ['revocations'],
    }),
    stat('Active tasks', 'Tasks running now (not completed, not revoked), whatever the time range.', `SELECT countIf(status = 'active') AS active_tasks FROM tripline.tasks FINAL WHERE ${TENANT}`, {
      size: { w: 5, h: 4 },
      color: 'green',
      needs: ['active_tasks'],
    }),
    stat(
      'Since the last event',
      'Seconds since Tripline last stored an event of a span that started in the time range. A pipeline that stopped (agents, collector, gateway, Kafka or processors) shows here first: alert on it in Grafana (docs/dashboards.md).',
      `SELECT dateDiff('second', max(ingested_at), now64(6)) AS seconds_since_last_event FROM tripline.events FINAL WHERE ${TENANT} AND $__timeFilter(start_time)`,
      {
        size: { w: 4, h: 4 },
        unit: 's',
        thresholds: [
          { color: 'green', value: null },
          { color: 'orange', value: 300 },
          { color: 'red', value: 900 },
        ],
        needs: ['seconds_since_last_event'],
      },
    ),
    timeseries(
      'Events per second by kind',
      'Tool calls, data accesses and privilege changes per second (by span start time).',
      `
      SELECT $__timeInterval(start_time) AS t, kind, count() / $__interval_s() AS events_per_second
      FROM tripline.events FINAL
      WHERE ${TENANT} AND $__timeFilter(start_time)
      GROUP BY t, kind
      ORDER BY t, kind
      `,
      { size: { w: 12, h: 8 }, unit: 'reqps', style: 'lines', timeColumn: 't', needs: ['t', 'kind', 'events_per_second'] },
    ),
    timeseries(
      'Alerts and revocations',
      'Alerts by decision (shadow mode marked) and kill-switch actions by source, per interval.',
      `
      SELECT t, series, n
      FROM
      (
          SELECT $__timeInterval(time) AS t, concat('alert ', decision, if(shadow, ' (shadow)', '')) AS series, count() AS n
          FROM tripline.alerts FINAL
          WHERE ${TENANT} AND $__timeFilter(time)
          GROUP BY t, series
          UNION ALL
          SELECT $__timeInterval(time) AS t, concat(action, ' by ', source) AS series, count() AS n
          FROM tripline.revocations FINAL
          WHERE ${TENANT} AND $__timeFilter(time)
          GROUP BY t, series
      )
      ORDER BY t, series
      `,
      { size: { w: 12, h: 8 }, style: 'bars', stack: true, timeColumn: 't', needs: ['t', 'series', 'n'] },
    ),
    table(
      'Riskiest tasks',
      'Running tasks and tasks seen in the time range, highest score first. Click a task id for its timeline.',
      `
      SELECT task_id, task_type, agent_id, status, score, decision, regime,
             arrayStringConcat(arraySlice(reasons, 1, 3), ' | ') AS top_reasons,
             count_tool_call + count_data_access + count_privilege_change AS events,
             last_event_at
      FROM tripline.tasks FINAL
      WHERE ${TENANT} AND (status = 'active' OR $__timeFilter(last_event_at))
      ORDER BY score DESC, last_event_at DESC
      LIMIT 25
      `,
      {
        size: { w: 14, h: 10 },
        columns: { task_id: taskIdColumn, score: scoreColumn, status: { mappings: STATUS_COLORS, width: 90 }, decision: { mappings: DECISION_COLORS, width: 80 } },
        needs: ['task_id', 'task_type', 'agent_id', 'status', 'score', 'decision', 'regime', 'top_reasons', 'last_event_at'],
      },
    ),
    table(
      'Riskiest agents',
      'Agents by the highest task score in the time range, with how many of their tasks were flagged and are revoked now.',
      `
      SELECT agent_id,
             arrayStringConcat(arraySort(groupUniqArray(task_type)), ', ') AS task_types,
             count() AS tasks,
             max(score) AS max_score,
             round(avg(score), 1) AS avg_score,
             countIf(decision != 'allow') AS flagged_tasks,
             countIf(status = 'revoked') AS revoked_now,
             max(last_event_at) AS last_seen
      FROM tripline.tasks FINAL
      WHERE ${TENANT} AND $__timeFilter(last_event_at)
      GROUP BY agent_id
      ORDER BY max_score DESC, flagged_tasks DESC, last_seen DESC
      LIMIT 25
      `,
      {
        size: { w: 10, h: 10 },
        columns: { max_score: scoreColumn, avg_score: { width: 80 } },
        needs: ['agent_id', 'task_types', 'tasks', 'max_score', 'flagged_tasks', 'revoked_now', 'last_seen'],
      },
    ),
    table(
      'Detector regime per task type',
      'Which knowledge the verdicts of each task type rest on: "rules" while it warms up, "type_baseline" once it has learned from enough completed tasks (TRIPLINE_WARMUP_TASKS), "agent_baseline" for agents with their own.',
      `
      SELECT e.task_type AS task_type,
             e.current_regime AS current_regime,
             e.events AS events,
             e.rules_events AS rules_events,
             e.baseline_events AS baseline_events,
             b.tasks AS baseline_tasks,
             b.updated_at AS baseline_updated_at
      FROM
      (
          SELECT task_type,
                 argMax(regime, start_time) AS current_regime,
                 count() AS events,
                 countIf(regime = 'rules') AS rules_events,
                 countIf(regime != 'rules') AS baseline_events
          FROM tripline.events FINAL
          WHERE ${TENANT} AND $__timeFilter(start_time)
          GROUP BY task_type
      ) AS e
      LEFT JOIN
      (
          SELECT task_type, tasks, updated_at
          FROM tripline.baselines FINAL
          WHERE ${TENANT} AND agent_id = ''
      ) AS b ON b.task_type = e.task_type
      ORDER BY task_type
      `,
      {
        size: { w: 24, h: 7 },
        columns: {
          current_regime: { mappings: { rules: { text: 'rules (warming up)', color: 'orange' }, type_baseline: { text: 'type baseline', color: 'green' }, agent_baseline: { text: 'agent baseline', color: 'green' } } },
        },
        needs: ['task_type', 'current_regime', 'events', 'rules_events', 'baseline_events', 'baseline_tasks'],
      },
    ),
  ],
});

const taskIdVariable = variable({
  name: 'task_id',
  label: 'Task',
  description: 'The task to show. Flagged tasks are listed first; any task id can be typed in.',
  sql: `SELECT task_id FROM tripline.tasks FINAL WHERE ${TENANT} ORDER BY decision != 'allow' DESC, last_event_at DESC LIMIT 500`,
  current: '',
});

export const task: DashboardSpec = dashboard({
  file: 'task.json',
  uid: 'tripline-task',
  title: 'Tripline / Task',
  description: 'One task: its state, and each event with the score, reasons and decision it got. The panels show the whole task whatever the time range.',
  variables: [tenantVariable, taskIdVariable],
  panels: [
    stat('Status', 'active, completed or revoked (a restore returns a revoked task to active or completed).', `SELECT status FROM tripline.tasks FINAL WHERE ${TENANT} AND ${TASK}`, {
      size: { w: 6, h: 4 },
      text: true,
      mappings: STATUS_COLORS,
      needs: ['status'],
    }),
    stat('Peak score', 'The highest verdict score of the task, 0 to 100.', `SELECT score FROM tripline.tasks FINAL WHERE ${TENANT} AND ${TASK}`, {
      size: { w: 6, h: 4 },
      colorByScore: true,
      needs: ['score'],
    }),
    stat('Decision', 'The strongest decision reached: allow, alert or revoke.', `SELECT decision FROM tripline.tasks FINAL WHERE ${TENANT} AND ${TASK}`, {
      size: { w: 6, h: 4 },
      text: true,
      mappings: DECISION_COLORS,
      needs: ['decision'],
    }),
    stat('Regime', 'Which knowledge the peak verdict rested on.', `SELECT regime FROM tripline.tasks FINAL WHERE ${TENANT} AND ${TASK}`, {
      size: { w: 6, h: 4 },
      text: true,
      needs: ['regime'],
    }),
    table(
      'Task',
      'Who ran it, when, how much it did, and why it scored as it did.',
      `
      SELECT task_type, agent_id, started_at, last_event_at, ended_at,
             count_tool_call AS tool_calls, count_data_access AS data_accesses, count_privilege_change AS privilege_changes,
             arrayStringConcat(reasons, ' | ') AS reasons_text
      FROM tripline.tasks FINAL
      WHERE ${TENANT} AND ${TASK}
      `,
      { size: { w: 24, h: 4 }, columns: { reasons_text: { displayName: 'reasons' } }, needs: ['task_type', 'agent_id', 'started_at', 'ended_at', 'tool_calls', 'data_accesses', 'privilege_changes', 'reasons_text'] },
    ),
    timeseries(
      'Score of each event',
      'Each event of the task at its start time, by kind. Dashed lines: the default alert (50) and revoke (80) thresholds.',
      `
      SELECT start_time AS t, kind, score
      FROM tripline.events FINAL
      WHERE ${TENANT} AND ${TASK}
      ORDER BY t
      `,
      { size: { w: 24, h: 8 }, style: 'points', scoreThresholds: true, min: 0, max: 100, timeColumn: 't', needs: ['t', 'kind', 'score'] },
    ),
    table(
      'Timeline',
      'Every event in order with what it touched, its score, decision and reasons.',
      `
      SELECT start_time, kind, name,
             multiIf(
                 kind = 'tool_call', concat(ifNull(tool_name, ''), ' [', ifNull(tool_side_effect, '?'), '] ', ifNull(tool_target, '')),
                 kind = 'data_access', concat(ifNull(data_operation, ''), ' ', ifNull(data_resource, ''), ' rows=', toString(ifNull(data_rows, 0)), ' ', ifNull(data_classification, '')),
                 concat(ifNull(privilege_action, ''), ' ', ifNull(privilege_resource, ''), ' +', arrayStringConcat(arrayFilter(s -> NOT has(scopes_before, s), scopes_after), ','))
             ) AS detail,
             score, decision, regime,
             arrayStringConcat(reasons, ' | ') AS reasons_text,
             ifNull(hard_rule, '') AS hard_rule,
             shadow, error
      FROM tripline.events FINAL
      WHERE ${TENANT} AND ${TASK}
      ORDER BY start_time, id
      `,
      {
        size: { w: 24, h: 12 },
        columns: { score: scoreColumn, decision: { mappings: DECISION_COLORS, width: 80 }, reasons_text: { displayName: 'reasons' }, start_time: { width: 190 } },
        needs: ['start_time', 'kind', 'detail', 'score', 'decision', 'regime', 'reasons_text', 'shadow'],
      },
    ),
    table(
      'Alerts and kill-switch actions',
      'Alerts raised for the task, and every revoke and restore with who did it and why.',
      `
      SELECT time, what, score, actor, reason, details
      FROM
      (
          SELECT time, concat('alert ', decision, if(shadow, ' (shadow)', '')) AS what, score, '' AS actor, '' AS reason,
                 arrayStringConcat(reasons, ' | ') AS details
          FROM tripline.alerts FINAL
          WHERE ${TENANT} AND ${TASK}
          UNION ALL
          SELECT time, concat(action, ' by ', source) AS what, score, actor, reason,
                 arrayStringConcat(reasons, ' | ') AS details
          FROM tripline.revocations FINAL
          WHERE ${TENANT} AND ${TASK}
      )
      ORDER BY time
      `,
      { size: { w: 24, h: 7 }, columns: { score: scoreColumn }, needs: ['time', 'what', 'score', 'actor', 'reason', 'details'] },
    ),
  ],
});

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
  description: 'Revocations and restores, automatic and manual; whether each kill was verified to have taken effect; how fast kills happen; and who acted by hand.',
  variables: [tenantVariable],
  panels: [
    stat('Automatic kills', 'Tasks the detector revoked in the time range.', `SELECT countIf(action = 'revoke' AND source = 'detector') AS automatic_kills FROM tripline.revocations FINAL WHERE ${TENANT} AND $__timeFilter(time)`, {
      size: { w: 6, h: 4 },
      color: 'red',
      needs: ['automatic_kills'],
    }),
    stat('Manual kills', 'Tasks a person revoked (POST /v1/tasks/:id/revoke or the console).', `SELECT countIf(action = 'revoke' AND source = 'manual') AS manual_kills FROM tripline.revocations FINAL WHERE ${TENANT} AND $__timeFilter(time)`, {
      size: { w: 6, h: 4 },
      color: 'purple',
      needs: ['manual_kills'],
    }),
    stat('Restores', 'Revoked tasks a person restored.', `SELECT countIf(action = 'restore') AS restores FROM tripline.revocations FINAL WHERE ${TENANT} AND $__timeFilter(time)`, {
      size: { w: 6, h: 4 },
      color: 'green',
      needs: ['restores'],
    }),
    stat('Revoked now', 'Tasks whose credentials are revoked at this moment, whatever the time range.', `SELECT countIf(status = 'revoked') AS revoked_now FROM tripline.tasks FINAL WHERE ${TENANT}`, {
      size: { w: 6, h: 4 },
      color: 'dark-red',
      needs: ['revoked_now'],
    }),
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
      'Automatic kills: from the end of the offending span (as the agent timed it) to the revocation decision (Tripline\'s clock). Meaningful when agent and Tripline clocks are synchronised (NTP); simulated agents run a faster clock, so their values can be negative.',
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
          verification: { mappings: { ...OUTCOME_COLORS, unverified: { text: 'unverified', color: 'text' } }, width: 100 },
          reasons_text: { displayName: 'reasons' },
          time: { width: 190 },
        },
        needs: ['time', 'action', 'source', 'actor', 'task_id', 'agent_id', 'score', 'reason', 'reasons_text', 'verification'],
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
        needs: ['revoked_at', 'task_id', 'agent_id', 'outcome', 'decided_after_ms', 'acknowledged_after_ms', 'failures_text'],
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

export const baselines: DashboardSpec = dashboard({
  file: 'baselines.json',
  uid: 'tripline-baselines',
  title: 'Tripline / Baselines',
  description: 'What normal looks like per task type, how many completed tasks it was learned from, and what shadow mode would have revoked.',
  variables: [tenantVariable],
  panels: [
    barGauge(
      'Tasks learned per task type',
      'Completed benign tasks each task type baseline was learned from. Below TRIPLINE_WARMUP_TASKS (default 20) the type is still scored by rules.',
      `
      SELECT task_type, tasks AS learned_from_tasks
      FROM tripline.baselines FINAL
      WHERE ${TENANT} AND agent_id = '' AND task_type != '*'
      ORDER BY learned_from_tasks DESC, task_type
      `,
      { size: { w: 8, h: 8 }, needs: ['task_type', 'learned_from_tasks'] },
    ),
    table(
      'What is normal, per task type',
      'Per completed task: median and 90th percentile of events, tool calls, rows read and duration; how many distinct tools and resources normal tasks use; hosts they send data to.',
      `
      WITH
          JSONExtract(model, 'dists', 'events', 'Array(Float64)') AS per_task_events,
          JSONExtract(model, 'dists', 'toolCalls', 'Array(Float64)') AS per_task_tool_calls,
          JSONExtract(model, 'dists', 'rows', 'Array(Float64)') AS per_task_rows,
          JSONExtract(model, 'dists', 'durationMs', 'Array(Float64)') AS per_task_duration_ms
      SELECT task_type,
             tasks AS learned_from_tasks,
             arrayReduce('median', per_task_events) AS events_median,
             arrayReduce('quantileExact(0.9)', per_task_events) AS events_p90,
             arrayReduce('median', per_task_tool_calls) AS tool_calls_median,
             arrayReduce('quantileExact(0.9)', per_task_rows) AS rows_p90,
             round(arrayReduce('median', per_task_duration_ms) / 1000, 1) AS duration_median_s,
             length(JSONExtractKeys(model, 'tools')) AS distinct_tools,
             length(JSONExtractKeys(model, 'resources')) AS distinct_resources,
             arrayStringConcat(arraySort(JSONExtractKeys(model, 'egressHosts')), ', ') AS egress_hosts,
             updated_at
      FROM tripline.baselines FINAL
      WHERE ${TENANT} AND agent_id = '' AND task_type != '*'
      ORDER BY task_type
      `,
      {
        size: { w: 16, h: 8 },
        columns: { duration_median_s: { unit: 's' } },
        needs: ['task_type', 'learned_from_tasks', 'events_median', 'events_p90', 'tool_calls_median', 'rows_p90', 'distinct_tools', 'distinct_resources', 'egress_hosts', 'updated_at'],
      },
    ),
    table(
      'Tools per task type',
      'Which tools normal tasks of each type use, the share of tasks that use each, and calls per task that uses it. A tool outside this list is novel.',
      `
      SELECT task_type, tool,
             JSONExtractUInt(model, 'tools', tool, 'tasks') AS tasks_using,
             round(tasks_using / greatest(tasks, 1), 3) AS share_of_tasks,
             round(JSONExtractUInt(model, 'tools', tool, 'calls') / greatest(tasks_using, 1), 1) AS calls_per_task
      FROM tripline.baselines FINAL
      ARRAY JOIN JSONExtractKeys(model, 'tools') AS tool
      WHERE ${TENANT} AND agent_id = '' AND task_type != '*'
      ORDER BY task_type, share_of_tasks DESC, tool
      `,
      { size: { w: 12, h: 10 }, columns: { share_of_tasks: { unit: 'percentunit' } }, needs: ['task_type', 'tool', 'tasks_using', 'share_of_tasks', 'calls_per_task'] },
    ),
    table(
      'Data resources per task type',
      'Which tables, URLs and files normal tasks read, how often, and the 90th percentile of rows per task from each.',
      `
      SELECT task_type, resource,
             JSONExtractUInt(model, 'resources', resource, 'tasks') AS tasks_using,
             round(tasks_using / greatest(tasks, 1), 3) AS share_of_tasks,
             arrayReduce('quantileExact(0.9)', JSONExtract(model, 'resources', resource, 'rows', 'Array(Float64)')) AS rows_per_task_p90
      FROM tripline.baselines FINAL
      ARRAY JOIN JSONExtractKeys(model, 'resources') AS resource
      WHERE ${TENANT} AND agent_id = '' AND task_type != '*'
      ORDER BY task_type, share_of_tasks DESC, resource
      `,
      { size: { w: 12, h: 10 }, columns: { share_of_tasks: { unit: 'percentunit' } }, needs: ['task_type', 'resource', 'tasks_using', 'share_of_tasks', 'rows_per_task_p90'] },
    ),
    stat(
      'Shadow mode: would have revoked',
      'Tasks in shadow mode (TRIPLINE_SHADOW, or "shadow" in TRIPLINE_TASK_TYPE_OVERRIDES) that reached the revoke threshold in the time range: recorded, not acted on.',
      `SELECT countIf(decision = 'revoke') AS would_have_revoked, countIf(decision = 'alert') AS would_have_alerted FROM tripline.alerts FINAL WHERE ${TENANT} AND shadow AND $__timeFilter(time)`,
      { size: { w: 6, h: 8 }, color: 'purple', needs: ['would_have_revoked', 'would_have_alerted'] },
    ),
    table(
      'Shadow decisions',
      'Each shadow-mode task that would have been revoked or alerted on, with its score and reasons. Use it to tune thresholds before turning shadow mode off.',
      `
      SELECT time, decision, task_type, task_id, agent_id, score, regime,
             arrayStringConcat(reasons, ' | ') AS reasons_text
      FROM tripline.alerts FINAL
      WHERE ${TENANT} AND shadow AND $__timeFilter(time)
      ORDER BY time DESC
      LIMIT 200
      `,
      {
        size: { w: 18, h: 8 },
        columns: { task_id: taskIdColumn, score: scoreColumn, decision: { mappings: DECISION_COLORS, width: 80 }, reasons_text: { displayName: 'reasons' } },
        needs: ['time', 'decision', 'task_type', 'task_id', 'agent_id', 'score', 'reasons_text'],
      },
    ),
    table(
      'Per-agent baselines',
      'Agents with enough completed tasks of a type get their own baseline (TRIPLINE_AGENT_WARMUP_TASKS, default 30).',
      `
      SELECT task_type, agent_id, tasks AS learned_from_tasks, updated_at
      FROM tripline.baselines FINAL
      WHERE ${TENANT} AND agent_id != ''
      ORDER BY task_type, learned_from_tasks DESC, agent_id
      `,
      { size: { w: 16, h: 8 }, needs: ['task_type', 'agent_id', 'learned_from_tasks', 'updated_at'] },
    ),
    note(
      'Reading these baselines',
      [
        'A baseline is learned online from **completed tasks that raised no alert**; a task that alerted or was revoked never teaches it.',
        '',
        'Numbers are per task: a task far above the 90th percentile of its type, a tool or resource no normal task of the type used, or data sent to a host outside the list, is what raises a score.',
        '',
        'The API shows the same baselines in full: `GET /v1/baselines`.',
      ].join('\n'),
      { w: 8, h: 8 },
    ),
  ],
});

export const DASHBOARDS: readonly DashboardSpec[] = [fleet, task, killSwitch, baselines];
