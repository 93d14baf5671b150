/**
 * What shadow mode would have done over a time range: per task type, the tasks whose shadow verdicts reached
 * revoke ("would have been revoked") or only alert ("would have alerted"), out of the tasks of that type that
 * started in the range, with the strongest examples and their reasons. Live (acted-on) decisions in the same
 * range are counted beside them for comparison. Read from ClickHouse (alerts and tasks).
 */
import type { DetectionQueries, TaskAlertSummary, TimeRange } from '../store/clickhouse/detection-queries.ts';

export interface ShadowExample {
  taskId: string;
  agentId: string;
  decision: 'alert' | 'revoke';
  score: number;
  regime: string;
  reasons: string[];
  firstAt: string;
}

export interface ShadowTypeReport {
  taskType: string;
  /** Tasks of the type that started in the range. */
  tasks: number;
  wouldRevoke: number;
  /** Alerted in shadow mode without reaching revoke. */
  wouldAlert: number;
  /** Live decisions in the range (types not in shadow mode). */
  revoked: number;
  alerted: number;
  examples: ShadowExample[];
}

export interface ShadowReport {
  from: string;
  to: string;
  taskType: string | null;
  totals: { tasks: number; wouldRevoke: number; wouldAlert: number; revoked: number; alerted: number };
  byTaskType: ShadowTypeReport[];
}

export interface ShadowReportOptions extends TimeRange {
  /** Examples per task type, strongest first. @default 10 */
  examples?: number;
}

function example(summary: TaskAlertSummary): ShadowExample {
  return {
    taskId: summary.taskId,
    agentId: summary.agentId,
    decision: summary.decision,
    score: summary.score,
    regime: summary.regime,
    reasons: summary.reasons,
    firstAt: new Date(summary.firstMs).toISOString(),
  };
}

export async function shadowReport(queries: DetectionQueries, options: ShadowReportOptions): Promise<ShadowReport> {
  const limit = options.examples ?? 10;
  const [alerts, counts] = await Promise.all([queries.alertsInRange(options), queries.taskCountsByType(options)]);
  const types = new Map<string, ShadowTypeReport>();
  const typeReport = (taskType: string): ShadowTypeReport => {
    let report = types.get(taskType);
    if (report === undefined) {
      report = {
        taskType,
        tasks: counts.get(taskType) ?? 0,
        wouldRevoke: 0,
        wouldAlert: 0,
        revoked: 0,
        alerted: 0,
        examples: [],
      };
      types.set(taskType, report);
    }
    return report;
  };
  for (const taskType of counts.keys()) typeReport(taskType);
  // `alertsInRange` is ordered by score, strongest first.
  for (const summary of alerts) {
    const report = typeReport(summary.taskType);
    if (summary.shadow) {
      if (summary.decision === 'revoke') report.wouldRevoke++;
      else report.wouldAlert++;
      if (report.examples.length < limit) report.examples.push(example(summary));
    } else if (summary.decision === 'revoke') report.revoked++;
    else report.alerted++;
  }
  const byTaskType = [...types.values()].sort(
    (a, b) => b.wouldRevoke - a.wouldRevoke || b.wouldAlert - a.wouldAlert || (a.taskType < b.taskType ? -1 : 1),
  );
  const sum = (pick: (r: ShadowTypeReport) => number): number => byTaskType.reduce((total, r) => total + pick(r), 0);
  return {
    from: new Date(options.fromMs).toISOString(),
    to: new Date(options.toMs).toISOString(),
    taskType: options.taskType ?? null,
    totals: {
      tasks: sum((r) => r.tasks),
      wouldRevoke: sum((r) => r.wouldRevoke),
      wouldAlert: sum((r) => r.wouldAlert),
      revoked: sum((r) => r.revoked),
      alerted: sum((r) => r.alerted),
    },
    byTaskType,
  };
}
