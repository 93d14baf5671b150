/** What is normal for a baseline, in words and numbers for people and the API (`GET /v1/baselines`). */
import { DIST_NAMES, type Baseline } from './baseline.ts';
import type { Fence } from './stats.ts';

function fenceView(f: Fence): Record<string, number> {
  const round = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    samples: f.n,
    p50: round(f.p50),
    p90: round(f.p90),
    p99: round(f.p99),
    max: round(f.max),
    upperFence: round(f.upper),
  };
}

function ranked(
  r: Readonly<Record<string, number>>,
  tasks: number,
  limit: number,
): { key: string; tasks: number; share: number }[] {
  return Object.keys(r)
    .map((key) => ({
      key,
      tasks: r[key] ?? 0,
      share: tasks > 0 ? Math.round(((r[key] ?? 0) / tasks) * 1000) / 1000 : 0,
    }))
    .sort((a, b) => b.tasks - a.tasks || (a.key < b.key ? -1 : 1))
    .slice(0, limit);
}

/** What is normal for this baseline, for people and the API. */
export function describeBaseline(b: Baseline): Record<string, unknown> {
  const perTask: Record<string, Record<string, number>> = {};
  for (const n of DIST_NAMES) perTask[n] = fenceView(b.dists[n].fence);
  const tools = Object.keys(b.tools)
    .map((name) => {
      const t = b.tools[name] ?? { tasks: 0, calls: 0, perTask: null };
      return {
        tool: name,
        tasks: t.tasks,
        share: b.tasks > 0 ? Math.round((t.tasks / b.tasks) * 1000) / 1000 : 0,
        callsPerTask: t.perTask === null ? null : fenceView(t.perTask.fence),
      };
    })
    .sort((x, y) => y.tasks - x.tasks || (x.tool < y.tool ? -1 : 1));
  const transitions: { from: string; to: string; probability: number; count: number }[] = [];
  for (const from in b.transitions) {
    const row = b.transitions[from] ?? {};
    const total = b.derived.transitionTotals[from] ?? 0;
    for (const to in row) {
      const c = row[to] ?? 0;
      transitions.push({ from, to, count: c, probability: total > 0 ? Math.round((c / total) * 1000) / 1000 : 0 });
    }
  }
  transitions.sort((x, y) => y.count - x.count || (x.from + x.to < y.from + y.to ? -1 : 1));
  const resources = Object.keys(b.resources)
    .map((key) => {
      const r = b.resources[key] ?? { tasks: 0, accesses: 0, rows: null, bytes: null };
      return {
        resource: key,
        tasks: r.tasks,
        share: b.tasks > 0 ? Math.round((r.tasks / b.tasks) * 1000) / 1000 : 0,
        rowsPerTask: r.rows === null ? null : fenceView(r.rows.fence),
        bytesPerTask: r.bytes === null ? null : fenceView(r.bytes.fence),
      };
    })
    .sort((x, y) => y.tasks - x.tasks || (x.resource < y.resource ? -1 : 1))
    .slice(0, 100);
  return {
    taskType: b.taskType,
    agentId: b.agentId,
    tasks: b.tasks,
    window: b.window,
    perTask,
    tools,
    transitions: transitions.slice(0, 50),
    resources,
    namespaces: ranked(b.namespaces, b.tasks, 100),
    classifications: ranked(b.classifications, b.tasks, 10),
    hosts: ranked(b.hosts, b.tasks, 100),
    egressHosts: ranked(b.egressHosts, b.tasks, 100),
    privilegeActions: ranked(b.privilegeActions, b.tasks, 50),
    scopesGained: ranked(b.scopes, b.tasks, 100),
    secretReadShare: b.tasks > 0 ? Math.round((b.secretTasks / b.tasks) * 1000) / 1000 : 0,
    falsePositivesLearned: b.falsePositivesLearned,
    noveltyRates: { ...b.derived.pNew },
    counterparties: counterpartyView(b),
  };
}

/** How the baseline's tasks deal with counterparties (counts and shares; the keys are hashes and stay out). */
function counterpartyView(b: Baseline): Record<string, unknown> {
  const c = b.counterparties;
  const of = (n: number): number => (b.tasks > 0 ? Math.round((n / b.tasks) * 1000) / 1000 : 0);
  return {
    known: Object.keys(c.known).length,
    recipients: Object.keys(c.sinks).length,
    readAbout: Object.keys(c.read).length,
    sinkTaskShare: of(c.sinkTasks),
    flowShare: of(c.flows),
    newRecipientRate: Math.round(c.pNewAtSink * 1000) / 1000,
    newOrganisationRate: Math.round(c.pNewOrgAtSink * 1000) / 1000,
    amountPerTask: fenceView(c.amounts.fence),
  };
}
