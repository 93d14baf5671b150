/**
 * Baselines: what normal looks like for one task type (or one agent within a type, or the whole tenant's
 * fleet), learned online from summaries of completed benign tasks.
 *
 * A baseline is plain JSON-serializable data. Numeric features keep a bounded window of per-task values
 * (`Dist`) whose fences are recomputed when the baseline learns, so scoring reads precomputed numbers only.
 * Categorical features (tools, resources, hosts, scopes…) count the tasks they appeared in, over all history.
 * `learn` mutates the baseline it is given and returns it (use `cloneBaseline` to keep the old one);
 * `rebuildBaseline` is exactly a fold of `learn`.
 *
 * Serialization (and `cloneBaseline`) is in baseline-codec.ts, `describeBaseline` in baseline-view.ts.
 */
import { type CounterpartyStats, emptyCounterpartyStats, learnCounterparties } from './counterparty-baseline.ts';
import { DEFAULT_WINDOW, type Dist, emptyDist, goodTuringNew, pushValue, refreshFence } from './stats.ts';
import { classificationRank, hostFamily, namespaceOf } from './signals.ts';
import type { TaskSummary } from './summary.ts';

export const BASELINE_FORMAT = 1;
/** The task type of a tenant's fleet baseline (learned over all its task types; the prior during warm-up). */
export const FLEET_TASK_TYPE = '*';
/** Keys kept per categorical record; past it the category is saturated and novelty there is not scored. */
export const MAX_BASELINE_KEYS = 4096;
/** Per-tool and per-resource distributions are kept for this many tools/resources (first seen first). */
export const MAX_KEYED_DISTS = 64;
/** Window of per-tool and per-resource distributions. */
export const KEYED_WINDOW = 128;

export const DIST_NAMES = [
  'events',
  'toolCalls',
  'dataAccesses',
  'privilegeChanges',
  'errors',
  'errorRate',
  'durationMs',
  'rows',
  'bytes',
  'sensitiveRows',
  'maxRowsPerAccess',
  'maxBytesPerAccess',
  'distinctTools',
  'distinctResources',
  'distinctHosts',
  'scopesGained',
  'maxEventsPerMinute',
  'maxToolCallsPerMinute',
  'maxErrorsPerMinute',
] as const;
export type DistName = (typeof DIST_NAMES)[number];

export interface ToolStats {
  /** Tasks that used the tool. */
  tasks: number;
  calls: number;
  /** Calls per task, over tasks that used it (null past MAX_KEYED_DISTS tools). */
  perTask: Dist | null;
}

export interface ResourceStats {
  tasks: number;
  accesses: number;
  /** Cumulative rows / bytes per task from this resource, over tasks that touched it. */
  rows: Dist | null;
  bytes: Dist | null;
}

export const NOVELTY_CATEGORIES = [
  'tools',
  'resources',
  'namespaces',
  'hosts',
  'hostFamilies',
  'privilegeActions',
  'scopes',
] as const;
export type NoveltyCategory = (typeof NOVELTY_CATEGORIES)[number];

/** Recomputed on every `learn` and on parse; never serialized. */
export interface BaselineDerived {
  /** Good–Turing probability that a task brings a new item of the category (1 when saturated). */
  pNew: Record<NoveltyCategory, number>;
  /** Outgoing transition totals per tool. */
  transitionTotals: Record<string, number>;
  /** Distinct tools + 1 (the smoothing vocabulary of the Markov model). */
  vocabulary: number;
  /** Highest classification rank any task reached (-1 none). */
  maxClassRank: number;
}

export interface Baseline {
  format: typeof BASELINE_FORMAT;
  taskType: string;
  /** '' for a task type's (or the fleet's) baseline; the agent id for a per-agent baseline. */
  agentId: string;
  /** Completed tasks learned. */
  tasks: number;
  /** Values kept per distribution. */
  window: number;
  dists: Record<DistName, Dist>;
  tools: Record<string, ToolStats>;
  /** `from → to → count`; `^` is the task start. */
  transitions: Record<string, Record<string, number>>;
  resources: Record<string, ResourceStats>;
  /** Tasks per resource namespace / classification level / host / host family / egress host / action / scope. */
  namespaces: Record<string, number>;
  classifications: Record<string, number>;
  hosts: Record<string, number>;
  hostFamilies: Record<string, number>;
  egressHosts: Record<string, number>;
  privilegeActions: Record<string, number>;
  scopes: Record<string, number>;
  /** Tasks that read a secret. */
  secretTasks: number;
  /** Tasks learned because an operator marked their alert a false positive. */
  falsePositivesLearned: number;
  /** Counterparties dealt with, how often new ones receive something, flows from results, amounts. */
  counterparties: CounterpartyStats;
  derived: BaselineDerived;
}

export function record<V>(): Record<string, V> {
  return Object.create(null) as Record<string, V>;
}

function emptyDerived(): BaselineDerived {
  return {
    pNew: {
      tools: 0.5,
      resources: 0.5,
      namespaces: 0.5,
      hosts: 0.5,
      hostFamilies: 0.5,
      privilegeActions: 0.5,
      scopes: 0.5,
    },
    transitionTotals: record<number>(),
    vocabulary: 1,
    maxClassRank: -1,
  };
}

export function emptyBaseline(taskType: string, agentId = ''): Baseline {
  const dists = {} as Record<DistName, Dist>;
  for (const n of DIST_NAMES) dists[n] = emptyDist();
  return {
    format: BASELINE_FORMAT,
    taskType,
    agentId,
    tasks: 0,
    window: DEFAULT_WINDOW,
    dists,
    tools: record<ToolStats>(),
    transitions: record<Record<string, number>>(),
    resources: record<ResourceStats>(),
    namespaces: record<number>(),
    classifications: record<number>(),
    hosts: record<number>(),
    hostFamilies: record<number>(),
    egressHosts: record<number>(),
    privilegeActions: record<number>(),
    scopes: record<number>(),
    secretTasks: 0,
    falsePositivesLearned: 0,
    counterparties: emptyCounterpartyStats(),
    derived: emptyDerived(),
  };
}

function keyCount(r: Readonly<Record<string, unknown>>): number {
  return Object.keys(r).length;
}

/** Count one more task for `key`; false when the record is full and the key is new. */
function bump(r: Record<string, number>, key: string): void {
  const v = r[key];
  if (v !== undefined) r[key] = v + 1;
  else if (keyCount(r) < MAX_BASELINE_KEYS) r[key] = 1;
}

/** The per-task value of a distribution, from a summary. */
export function distValue(s: TaskSummary, name: DistName): number {
  switch (name) {
    case 'events':
      return s.events;
    case 'toolCalls':
      return s.toolCalls;
    case 'dataAccesses':
      return s.dataAccesses;
    case 'privilegeChanges':
      return s.privilegeChanges;
    case 'errors':
      return s.errors;
    case 'errorRate':
      return s.events > 0 ? s.errors / s.events : 0;
    case 'durationMs':
      return s.durationMs;
    case 'rows':
      return s.rows;
    case 'bytes':
      return s.bytes;
    case 'sensitiveRows':
      return s.sensitiveRows;
    case 'maxRowsPerAccess':
      return s.maxRowsPerAccess;
    case 'maxBytesPerAccess':
      return s.maxBytesPerAccess;
    case 'distinctTools':
      return Object.keys(s.tools).length;
    case 'distinctResources':
      return Object.keys(s.resources).length;
    case 'distinctHosts':
      return s.hosts.length;
    case 'scopesGained':
      return s.scopesGained.length;
    case 'maxEventsPerMinute':
      return s.maxEventsPerMinute;
    case 'maxToolCallsPerMinute':
      return s.maxToolCallsPerMinute;
    case 'maxErrorsPerMinute':
      return s.maxErrorsPerMinute;
  }
}

export function refreshDerived(b: Baseline): void {
  const d = b.derived;
  const full = (r: Readonly<Record<string, unknown>>): boolean => keyCount(r) >= MAX_BASELINE_KEYS;
  d.pNew.tools = full(b.tools)
    ? 1
    : goodTuringNew(Object.fromEntries(Object.entries(b.tools).map(([k, v]) => [k, v.tasks])), b.tasks);
  d.pNew.resources = full(b.resources)
    ? 1
    : goodTuringNew(Object.fromEntries(Object.entries(b.resources).map(([k, v]) => [k, v.tasks])), b.tasks);
  d.pNew.namespaces = full(b.namespaces) ? 1 : goodTuringNew(b.namespaces, b.tasks);
  d.pNew.hosts = full(b.hosts) ? 1 : goodTuringNew(b.hosts, b.tasks);
  d.pNew.hostFamilies = full(b.hostFamilies) ? 1 : goodTuringNew(b.hostFamilies, b.tasks);
  d.pNew.privilegeActions = full(b.privilegeActions) ? 1 : goodTuringNew(b.privilegeActions, b.tasks);
  d.pNew.scopes = full(b.scopes) ? 1 : goodTuringNew(b.scopes, b.tasks);
  const totals = record<number>();
  for (const from in b.transitions) {
    let t = 0;
    const row = b.transitions[from] ?? {};
    for (const to in row) t += row[to] ?? 0;
    totals[from] = t;
  }
  d.transitionTotals = totals;
  d.vocabulary = keyCount(b.tools) + 1;
  let maxRank = -1;
  for (const level in b.classifications) maxRank = Math.max(maxRank, classificationRank(level));
  d.maxClassRank = maxRank;
}

/**
 * Learn one completed task. Mutates `baseline` and returns it. Callers decide what counts as benign (tasks
 * not revoked or flagged, plus tasks an operator marked as false positives); `learn` learns what it is given.
 * A fleet baseline (`FLEET_TASK_TYPE`) learns tasks of every type; any other only its own type.
 */
export function learn(baseline: Baseline, summary: TaskSummary): Baseline {
  const b = baseline;
  if (b.taskType !== FLEET_TASK_TYPE && summary.taskType !== b.taskType) {
    throw new Error(`learn: a baseline of task type "${b.taskType}" cannot learn a task of type "${summary.taskType}"`);
  }
  b.tasks++;
  for (const name of DIST_NAMES) {
    const dist = b.dists[name];
    pushValue(dist, distValue(summary, name), b.window);
    refreshFence(dist);
  }

  for (const name of Object.keys(summary.tools)) {
    const calls = summary.tools[name] ?? 0;
    let ts = b.tools[name];
    if (ts === undefined) {
      if (keyCount(b.tools) >= MAX_BASELINE_KEYS) continue;
      ts = { tasks: 0, calls: 0, perTask: keyCount(b.tools) < MAX_KEYED_DISTS ? emptyDist() : null };
      b.tools[name] = ts;
    }
    ts.tasks++;
    ts.calls += calls;
    if (ts.perTask !== null) {
      pushValue(ts.perTask, calls, KEYED_WINDOW);
      refreshFence(ts.perTask);
    }
  }
  for (const from of Object.keys(summary.transitions)) {
    const row = summary.transitions[from] ?? {};
    if (b.tools[from] === undefined && from !== '^') continue;
    const out = (b.transitions[from] ??= record<number>());
    for (const to of Object.keys(row)) {
      if (b.tools[to] === undefined) continue;
      out[to] = (out[to] ?? 0) + (row[to] ?? 0);
    }
  }

  const namespaces = new Set<string>();
  for (const key of Object.keys(summary.resources)) {
    const use = summary.resources[key];
    if (use === undefined) continue;
    namespaces.add(namespaceOf(key));
    let rs = b.resources[key];
    if (rs === undefined) {
      if (keyCount(b.resources) >= MAX_BASELINE_KEYS) continue;
      const keyed = keyCount(b.resources) < MAX_KEYED_DISTS;
      rs = { tasks: 0, accesses: 0, rows: keyed ? emptyDist() : null, bytes: keyed ? emptyDist() : null };
      b.resources[key] = rs;
    }
    rs.tasks++;
    rs.accesses += use.accesses;
    if (rs.rows !== null) {
      pushValue(rs.rows, use.rows, KEYED_WINDOW);
      refreshFence(rs.rows);
    }
    if (rs.bytes !== null) {
      pushValue(rs.bytes, use.bytes, KEYED_WINDOW);
      refreshFence(rs.bytes);
    }
  }
  for (const ns of namespaces) bump(b.namespaces, ns);
  for (const level of summary.classifications) bump(b.classifications, level);
  const families = new Set<string>();
  for (const h of summary.hosts) {
    bump(b.hosts, h);
    families.add(hostFamily(h));
  }
  for (const f of families) bump(b.hostFamilies, f);
  for (const h of summary.egressHosts) bump(b.egressHosts, h);
  for (const a of Object.keys(summary.privilegeActions)) bump(b.privilegeActions, a);
  for (const s of summary.scopesGained) bump(b.scopes, s);
  if (summary.secretRead) b.secretTasks++;
  if (summary.markedFalsePositive === true) b.falsePositivesLearned++;
  learnCounterparties(b.counterparties, summary, b.tasks);
  refreshDerived(b);
  return b;
}

/** The learner's batch path: exactly `summaries.reduce(learn, emptyBaseline(taskType, agentId))`. */
export function rebuildBaseline(taskType: string, summaries: readonly TaskSummary[], agentId = ''): Baseline {
  let b = emptyBaseline(taskType, agentId);
  for (const s of summaries) b = learn(b, s);
  return b;
}
