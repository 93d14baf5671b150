/** The fleet dashboard (`tripline-fleet`): every agent at a glance. */
import { dashboard, stat, table, timeseries } from '../grafana.ts';
import type { DashboardSpec } from '../grafana.ts';
import { TENANT, tenantVariable, taskIdColumn, scoreColumn, STATUS_COLORS, DECISION_COLORS } from './common.ts';

export const fleet: DashboardSpec = dashboard({
  file: 'fleet.json',
  uid: 'tripline-fleet',
  title: 'Tripline / Fleet',
  description:
    'Every agent at a glance: event rates by kind, alerts and revocations, the riskiest agents and tasks, and which detector regime each task type is in.',
  variables: [tenantVariable],
  panels: [
    stat(
      'Events',
      'Classified spans stored in the time range.',
      `SELECT count() AS events FROM tripline.events FINAL WHERE ${TENANT} AND $__timeFilter(start_time)`,
      {
        size: { w: 5, h: 4 },
        color: 'blue',
        needs: ['events'],
      },
    ),
    stat(
      'Alerts',
      'Alerts raised in the time range (shadow-mode alerts not counted; see Baselines).',
      `SELECT countIf(NOT shadow) AS alerts FROM tripline.alerts FINAL WHERE ${TENANT} AND $__timeFilter(time)`,
      {
        size: { w: 5, h: 4 },
        color: 'orange',
        needs: ['alerts'],
      },
    ),
    stat(
      'Revocations',
      'Tasks revoked in the time range, by the detector or by hand.',
      `SELECT countIf(action = 'revoke') AS revocations FROM tripline.revocations FINAL WHERE ${TENANT} AND $__timeFilter(time)`,
      {
        size: { w: 5, h: 4 },
        color: 'red',
        needs: ['revocations'],
      },
    ),
    stat(
      'Active tasks',
      'Tasks running now (not completed, not revoked), whatever the time range.',
      `SELECT countIf(status = 'active') AS active_tasks FROM tripline.tasks FINAL WHERE ${TENANT}`,
      {
        size: { w: 5, h: 4 },
        color: 'green',
        needs: ['active_tasks'],
      },
    ),
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
      {
        size: { w: 12, h: 8 },
        unit: 'reqps',
        style: 'lines',
        timeColumn: 't',
        needs: ['t', 'kind', 'events_per_second'],
      },
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
        columns: {
          task_id: taskIdColumn,
          score: scoreColumn,
          status: { mappings: STATUS_COLORS, width: 90 },
          decision: { mappings: DECISION_COLORS, width: 80 },
        },
        needs: [
          'task_id',
          'task_type',
          'agent_id',
          'status',
          'score',
          'decision',
          'regime',
          'top_reasons',
          'last_event_at',
        ],
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
    timeseries(
      'Model spend per agent',
      "What the agents' model calls cost (USD per interval, priced by the processor's price table: docs/budgets.md), by agent.",
      `
      SELECT $__timeInterval(time) AS t, agent_id, sum(cost_usd) AS cost_usd
      FROM tripline.model_usage FINAL
      WHERE ${TENANT} AND $__timeFilter(time)
      GROUP BY t, agent_id
      ORDER BY t, agent_id
      `,
      {
        size: { w: 12, h: 8 },
        unit: 'currencyUSD',
        style: 'bars',
        stack: true,
        timeColumn: 't',
        needs: ['t', 'agent_id', 'cost_usd'],
        rows: { whenTableHasRows: 'model_usage' },
      },
    ),
    table(
      'Costliest tasks',
      "Tasks by what their model calls cost in the time range, with tokens in and out, the models, and how many calls were priced at the table's fallback (model not in the price table).",
      `
      SELECT task_id, task_type, agent_id,
             round(sum(cost_usd), 4) AS cost_usd,
             sum(input_tokens) AS input_tokens,
             sum(output_tokens) AS output_tokens,
             count() AS calls,
             countIf(NOT priced) AS unpriced_calls,
             arrayStringConcat(arraySort(groupUniqArray(model)), ', ') AS models,
             max(time) AS last_call
      FROM tripline.model_usage FINAL
      WHERE ${TENANT} AND $__timeFilter(time)
      GROUP BY task_id, task_type, agent_id
      ORDER BY cost_usd DESC, last_call DESC
      LIMIT 25
      `,
      {
        size: { w: 12, h: 8 },
        columns: { task_id: taskIdColumn },
        needs: ['task_id', 'task_type', 'agent_id', 'cost_usd', 'input_tokens', 'output_tokens', 'calls', 'models'],
        rows: { whenTableHasRows: 'model_usage' },
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
          current_regime: {
            mappings: {
              rules: { text: 'rules (warming up)', color: 'orange' },
              type_baseline: { text: 'type baseline', color: 'green' },
              agent_baseline: { text: 'agent baseline', color: 'green' },
            },
          },
        },
        needs: ['task_type', 'current_regime', 'events', 'rules_events', 'baseline_events', 'baseline_tasks'],
      },
    ),
  ],
});
