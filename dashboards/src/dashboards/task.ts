/** The task dashboard (`tripline-task`): one task's state, and each event with the score, reasons and decision it got. */
import { dashboard, stat, table, timeseries, variable } from '../grafana.ts';
import type { DashboardSpec } from '../grafana.ts';
import { TENANT, TASK, tenantVariable, scoreColumn, STATUS_COLORS, DECISION_COLORS } from './common.ts';

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
  description:
    'One task: its state, and each event with the score, reasons and decision it got. The panels show the whole task whatever the time range.',
  variables: [tenantVariable, taskIdVariable],
  panels: [
    stat(
      'Status',
      'active, completed or revoked (a restore returns a revoked task to active or completed).',
      `SELECT status FROM tripline.tasks FINAL WHERE ${TENANT} AND ${TASK}`,
      {
        size: { w: 6, h: 4 },
        text: true,
        mappings: STATUS_COLORS,
        needs: ['status'],
      },
    ),
    stat(
      'Peak score',
      'The highest verdict score of the task, 0 to 100.',
      `SELECT score FROM tripline.tasks FINAL WHERE ${TENANT} AND ${TASK}`,
      {
        size: { w: 6, h: 4 },
        colorByScore: true,
        needs: ['score'],
      },
    ),
    stat(
      'Decision',
      'The strongest decision reached: allow, alert or revoke.',
      `SELECT decision FROM tripline.tasks FINAL WHERE ${TENANT} AND ${TASK}`,
      {
        size: { w: 6, h: 4 },
        text: true,
        mappings: DECISION_COLORS,
        needs: ['decision'],
      },
    ),
    stat(
      'Regime',
      'Which knowledge the peak verdict rested on.',
      `SELECT regime FROM tripline.tasks FINAL WHERE ${TENANT} AND ${TASK}`,
      {
        size: { w: 6, h: 4 },
        text: true,
        needs: ['regime'],
      },
    ),
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
      {
        size: { w: 24, h: 4 },
        columns: { reasons_text: { displayName: 'reasons' } },
        needs: [
          'task_type',
          'agent_id',
          'started_at',
          'ended_at',
          'tool_calls',
          'data_accesses',
          'privilege_changes',
          'reasons_text',
        ],
      },
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
      {
        size: { w: 24, h: 8 },
        style: 'points',
        scoreThresholds: true,
        min: 0,
        max: 100,
        timeColumn: 't',
        needs: ['t', 'kind', 'score'],
      },
    ),
    table(
      'Timeline',
      'Every event in order with what it touched, its score, decision and reasons (a second record of a tool call says so).',
      `
      SELECT start_time, kind, name,
             multiIf(
                 kind = 'tool_call', concat(ifNull(tool_name, ''), ' [', ifNull(tool_side_effect, '?'), '] ', ifNull(tool_target, ''),
                     if(JSONExtractString(tool_facts, 'sameCallOf') = '', '',
                        concat(' (another record of the call ', JSONExtractString(tool_facts, 'sameCallOf'), ': not a second call)'))),
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
        columns: {
          score: scoreColumn,
          decision: { mappings: DECISION_COLORS, width: 80 },
          reasons_text: { displayName: 'reasons' },
          start_time: { width: 190 },
        },
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
      {
        size: { w: 24, h: 7 },
        columns: { score: scoreColumn },
        needs: ['time', 'what', 'score', 'actor', 'reason', 'details'],
      },
    ),
  ],
});
