/** The baselines dashboard (`tripline-baselines`): what normal looks like per task type. */
import { barGauge, dashboard, note, stat, table } from '../grafana.ts';
import type { DashboardSpec } from '../grafana.ts';
import { TENANT, tenantVariable, taskIdColumn, scoreColumn, DECISION_COLORS } from './common.ts';

export const baselines: DashboardSpec = dashboard({
  file: 'baselines.json',
  uid: 'tripline-baselines',
  title: 'Tripline / Baselines',
  description:
    'What normal looks like per task type, how many completed tasks it was learned from, and what shadow mode would have revoked.',
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
        needs: [
          'task_type',
          'learned_from_tasks',
          'events_median',
          'events_p90',
          'tool_calls_median',
          'rows_p90',
          'distinct_tools',
          'distinct_resources',
          'egress_hosts',
          'updated_at',
        ],
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
      {
        size: { w: 12, h: 10 },
        columns: { share_of_tasks: { unit: 'percentunit' } },
        needs: ['task_type', 'tool', 'tasks_using', 'share_of_tasks', 'calls_per_task'],
      },
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
      {
        size: { w: 12, h: 10 },
        columns: { share_of_tasks: { unit: 'percentunit' } },
        needs: ['task_type', 'resource', 'tasks_using', 'share_of_tasks', 'rows_per_task_p90'],
      },
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
        columns: {
          task_id: taskIdColumn,
          score: scoreColumn,
          decision: { mappings: DECISION_COLORS, width: 80 },
          reasons_text: { displayName: 'reasons' },
        },
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
