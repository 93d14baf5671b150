/**
 * Baselines to and from JSON: only the learned data is written; derived parts (sorted windows, fences, Good–Turing
 * rates) are recomputed on parse, so a stored baseline cannot carry inconsistent thresholds. Parsing validates
 * every field and names the first bad one.
 */
import {
  BASELINE_FORMAT,
  DIST_NAMES,
  KEYED_WINDOW,
  emptyBaseline,
  record,
  refreshDerived,
  type Baseline,
} from './baseline.ts';
import { counterpartyWire, parseCounterparties } from './counterparty-baseline.ts';
import { CLASSIFICATION_NAMES } from './signals.ts';
import { type Dist, distFromValues } from './stats.ts';

export function cloneBaseline(b: Baseline): Baseline {
  return parseBaseline(serializeBaseline(b));
}

function wireDist(d: Dist | null): number[] | null {
  return d === null ? null : d.values;
}

export function serializeBaseline(b: Baseline): string {
  const dists: Record<string, number[]> = {};
  for (const n of DIST_NAMES) dists[n] = b.dists[n].values;
  const tools = record<unknown>();
  for (const k in b.tools) {
    const t = b.tools[k];
    if (t !== undefined) tools[k] = { tasks: t.tasks, calls: t.calls, perTask: wireDist(t.perTask) };
  }
  const resources = record<unknown>();
  for (const k in b.resources) {
    const r = b.resources[k];
    if (r !== undefined)
      resources[k] = { tasks: r.tasks, accesses: r.accesses, rows: wireDist(r.rows), bytes: wireDist(r.bytes) };
  }
  return JSON.stringify({
    format: b.format,
    taskType: b.taskType,
    agentId: b.agentId,
    tasks: b.tasks,
    window: b.window,
    dists,
    tools,
    transitions: b.transitions,
    resources,
    namespaces: b.namespaces,
    classifications: b.classifications,
    hosts: b.hosts,
    hostFamilies: b.hostFamilies,
    egressHosts: b.egressHosts,
    privilegeActions: b.privilegeActions,
    scopes: b.scopes,
    secretTasks: b.secretTasks,
    falsePositivesLearned: b.falsePositivesLearned,
    counterparties: counterpartyWire(b.counterparties),
  });
}

function fail(path: string, what: string): never {
  throw new Error(`invalid baseline: ${path} ${what}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function count(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
    fail(path, `must be a non-negative integer (got ${JSON.stringify(v)})`);
  return v;
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string') fail(path, `must be a string (got ${JSON.stringify(v)})`);
  return v;
}

function values(v: unknown, path: string): number[] {
  if (!Array.isArray(v)) fail(path, 'must be an array of numbers');
  for (let i = 0; i < v.length; i++) {
    const x: unknown = v[i];
    if (typeof x !== 'number' || !Number.isFinite(x) || x < 0)
      fail(`${path}[${i}]`, `must be a non-negative finite number (got ${JSON.stringify(x)})`);
  }
  return v as number[];
}

function counts(v: unknown, path: string): Record<string, number> {
  if (!isObject(v)) fail(path, 'must be an object of counts');
  const out = record<number>();
  for (const k of Object.keys(v)) out[k] = count(v[k], `${path}.${k}`);
  return out;
}

function optDist(v: unknown, path: string, window: number): Dist | null {
  return v === null ? null : distFromValues(values(v, path), window);
}

/** Parse and validate a serialized baseline; throws an Error naming the first bad field. */
export function parseBaseline(json: string): Baseline {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new Error(`invalid baseline: not JSON (${error instanceof Error ? error.message : String(error)})`, {
      cause: error,
    });
  }
  if (!isObject(raw)) fail('(root)', 'must be an object');
  if (raw.format !== BASELINE_FORMAT) fail('format', `must be ${BASELINE_FORMAT} (got ${JSON.stringify(raw.format)})`);
  const b = emptyBaseline(str(raw.taskType, 'taskType'), str(raw.agentId, 'agentId'));
  b.tasks = count(raw.tasks, 'tasks');
  b.window = count(raw.window, 'window');
  if (b.window < 1) fail('window', 'must be at least 1');
  if (!isObject(raw.dists)) fail('dists', 'must be an object');
  const dists = raw.dists;
  for (const n of DIST_NAMES) b.dists[n] = distFromValues(values(dists[n], `dists.${n}`), b.window);
  if (!isObject(raw.tools)) fail('tools', 'must be an object');
  for (const k of Object.keys(raw.tools)) {
    const t = raw.tools[k];
    const p = `tools.${k}`;
    if (!isObject(t)) fail(p, 'must be an object');
    b.tools[k] = {
      tasks: count(t.tasks, `${p}.tasks`),
      calls: count(t.calls, `${p}.calls`),
      perTask: optDist(t.perTask, `${p}.perTask`, KEYED_WINDOW),
    };
  }
  if (!isObject(raw.transitions)) fail('transitions', 'must be an object');
  for (const k of Object.keys(raw.transitions)) b.transitions[k] = counts(raw.transitions[k], `transitions.${k}`);
  if (!isObject(raw.resources)) fail('resources', 'must be an object');
  for (const k of Object.keys(raw.resources)) {
    const r = raw.resources[k];
    const p = `resources.${k}`;
    if (!isObject(r)) fail(p, 'must be an object');
    b.resources[k] = {
      tasks: count(r.tasks, `${p}.tasks`),
      accesses: count(r.accesses, `${p}.accesses`),
      rows: optDist(r.rows, `${p}.rows`, KEYED_WINDOW),
      bytes: optDist(r.bytes, `${p}.bytes`, KEYED_WINDOW),
    };
  }
  b.namespaces = counts(raw.namespaces, 'namespaces');
  b.classifications = counts(raw.classifications, 'classifications');
  for (const level of Object.keys(b.classifications)) {
    if (!(CLASSIFICATION_NAMES as readonly string[]).includes(level))
      fail(`classifications.${level}`, `is not one of ${CLASSIFICATION_NAMES.join(', ')}`);
  }
  b.hosts = counts(raw.hosts, 'hosts');
  b.hostFamilies = counts(raw.hostFamilies, 'hostFamilies');
  b.egressHosts = counts(raw.egressHosts, 'egressHosts');
  b.privilegeActions = counts(raw.privilegeActions, 'privilegeActions');
  b.scopes = counts(raw.scopes, 'scopes');
  b.secretTasks = count(raw.secretTasks, 'secretTasks');
  b.falsePositivesLearned =
    raw.falsePositivesLearned === undefined ? 0 : count(raw.falsePositivesLearned, 'falsePositivesLearned');
  // Stored before counterparties were learned: none known yet.
  b.counterparties = parseCounterparties(raw.counterparties, b.tasks, { isObject, count, counts, values, fail });
  refreshDerived(b);
  return b;
}
