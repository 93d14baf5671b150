/**
 * The scoring core: one event, its task's state (already including the event) and the baselines in; a
 * verdict out. Pure and deterministic: no I/O, no clock, no randomness; same inputs, same verdict.
 *
 * Regimes: `agent_baseline` when the agent has `agentWarmupTasks` tasks of this type, else `type_baseline`
 * when the type has `warmupTasks`, else `rules` (hard rules, the fleet-wide prior with a wide margin, and the
 * type's own few tasks so that a new type's normal work is not revoked).
 *
 * Per event, the features of the event's kind are scored, including the task's cumulative features of that
 * kind (rows so far, scopes gained so far…), plus lifecycle, error and shape features on every event.
 */
import type { AgentEvent, Contribution, Regime, Verdict } from '../../../schemas/events.ts';
import type { Baseline, DistName } from './baseline.ts';
import { combine } from './combine.ts';
import { DEFAULT_AFTER_END_GRACE_MS, type DetectorConfig, decide } from './config.ts';
import { fmtBytes, fmtDuration, fmtNum, fmtPercent } from './format.ts';
import { CLASSIFICATION_NAMES, classificationRank, eventHost, hostFamily, isAdminScope, isEgress, isGenericEgress, namespaceOf, resourceKey, toolName } from './signals.ts';
import { excessScore, type Fence } from './stats.ts';
import { nonNegative, type TaskState } from './state.ts';

/** The baselines a verdict may rest on. `fleet` is the tenant-wide baseline (all types), the warm-up prior. */
export interface BaselineLookup {
  type?: Baseline;
  agent?: Baseline;
  fleet?: Baseline;
}

/** Fence multiple at which a numeric feature reaches 100 (linear in log between the fence and k × fence). */
export const K_BASELINE = 6;
/** Same, in the rules regime (wider: the prior is not this type's). */
export const K_RULES = 12;
/** In the rules regime the fleet's fence is widened by this factor (a new type may legitimately do more). */
export const RULES_WIDEN = 3;
/** ...and the type's own few tasks by this one. */
export const PARTIAL_TYPE_WIDEN = 2;
/**
 * `tool.calls_per_task` at SPREE_FACTOR × the tool's per-task limit and ten times the most a task of the type made (a
 * spree of one tool) scores up to SPREE_CAP: it revokes alone.
 */
export const SPREE_FACTOR = 2;
export const SPREE_CAP = 85;
/** Per-tool / per-resource distributions are used once the item appeared in this many tasks. */
export const MIN_KEYED_TASKS = 5;
/**
 * In the rules regime, features from priors that are specific but not this type's (what the tenant reads from
 * one resource, sensitive rows) alert at most: a new type may legitimately do more with a known resource.
 */
export const RULES_SPECIFIC_CAP = 75;
/** Unseen privilege actions and ordinary scopes count this much when the change says it was approved. */
export const APPROVED_FACTOR = 0.6;
/** A feature seen by the type but never by this agent counts this much of an unseen one. */
export const AGENT_ONLY_FACTOR = 0.4;

/** Built-in upper limits for the rules regime when the fleet has not warmed up either. */
export const PRIORS: Readonly<Record<DistName, number>> = Object.freeze({
  events: 5000,
  toolCalls: 3000,
  dataAccesses: 3000,
  privilegeChanges: 20,
  errors: 200,
  errorRate: 0.9,
  durationMs: 6 * 3_600_000,
  rows: 1_000_000,
  bytes: 1024 ** 3,
  sensitiveRows: 10_000,
  maxRowsPerAccess: 100_000,
  maxBytesPerAccess: 256 * 1024 ** 2,
  distinctTools: 60,
  distinctResources: 200,
  distinctHosts: 50,
  scopesGained: 10,
  maxEventsPerMinute: 600,
  maxToolCallsPerMinute: 300,
  maxErrorsPerMinute: 30,
});

interface Feature extends Contribution {
  family: string;
}

interface Ctx {
  event: AgentEvent;
  state: TaskState;
  config: DetectorConfig;
  regime: Regime;
  /** Agent baseline (agent regime) or type baseline (type regime); undefined in the rules regime. */
  primary: Baseline | undefined;
  /** The type's baseline, any size. */
  type: Baseline | undefined;
  /** The fleet baseline, only when warmed up. */
  fleet: Baseline | undefined;
  /** "tasks of type X" / "agent A's tasks of type X". */
  who: string;
  out: Feature[];
  hardRule: string | undefined;
}

interface NumRef {
  upper: number;
  p99: number;
  max: number;
  k: number;
}

/**
 * In the rules regime a feature judged only against the fleet (other task types) scores at most this: below
 * the alert threshold, because an alert stops a task from being learned and a new type that merely does more
 * than the others would never warm up. Built-in limits (PRIORS) and specific evidence score fully.
 */
export const RULES_FLEET_CAP = 40;

function add(ctx: Ctx, family: string, feature: string, score: number, reason: string): void {
  if (score > 0) ctx.out.push({ family, feature, score: Math.min(100, score), reason });
}

function hard(ctx: Ctx, rule: string, family: string, feature: string, reason: string): void {
  ctx.hardRule ??= rule;
  ctx.out.push({ family, feature, score: 100, reason: `${reason} (hard rule ${rule})` });
}

// ---------------------------------------------------------------------------------------------------------
// Numeric features against fences

function fenceUpper(f: Fence, floor: number): number {
  return Math.max(f.upper, f.max + floor, floor);
}

/** The type's (or agent's) fence in the baseline regimes. */
function baselineRef(ctx: Ctx, p: Baseline, d: DistName, floor: number): NumRef {
  const f = p.dists[d].fence;
  let upper = fenceUpper(f, floor);
  if (ctx.regime === 'agent_baseline' && ctx.type !== undefined && ctx.type !== p && ctx.type.tasks >= ctx.config.warmupTasks) {
    upper = Math.max(upper, ctx.type.dists[d].fence.p99);
  }
  return { upper, p99: f.p99, max: f.max, k: K_BASELINE };
}

/** What the type's own few tasks (rules regime) allow: their fence, widened. 0 without any. */
function partialUpper(ctx: Ctx, d: DistName, floor: number): number {
  const t = ctx.type;
  return t !== undefined && t.tasks > 0 ? fenceUpper(t.dists[d].fence, floor) * PARTIAL_TYPE_WIDEN : 0;
}

function numeric(
  ctx: Ctx,
  family: string,
  feature: string,
  d: DistName,
  x: number,
  floor: number,
  cap: number,
  fmt: (n: number) => string,
  what: () => string,
  fleetCap = RULES_FLEET_CAP,
): void {
  const p = ctx.primary;
  if (p !== undefined) {
    const ref = baselineRef(ctx, p, d, floor);
    const s = excessScore(x, ref.upper, ref.k);
    if (s > 0) add(ctx, family, feature, Math.min(cap, s), `${what()}; p99 for ${ctx.who} is ${fmt(ref.p99)} (highest ${fmt(ref.max)})`);
    return;
  }
  // Rules regime: the built-in limit can score fully; the fleet (other types' behaviour) only weakly.
  const own = partialUpper(ctx, d, floor);
  const priorUpper = Math.max(PRIORS[d], own, floor);
  const sPrior = Math.min(cap, excessScore(x, priorUpper, K_RULES));
  const fleet = ctx.fleet?.dists[d].fence;
  const fleetUpper = fleet === undefined ? 0 : Math.max(fenceUpper(fleet, floor) * RULES_WIDEN, own);
  const sFleet = fleet === undefined ? 0 : Math.min(cap, fleetCap, excessScore(x, fleetUpper, K_RULES));
  if (sPrior <= 0 && sFleet <= 0) return;
  if (sPrior >= sFleet || fleet === undefined) add(ctx, family, feature, sPrior, `${what()}; ${rulesWho(ctx)}: built-in limit ${fmt(priorUpper)}`);
  else add(ctx, family, feature, sFleet, `${what()}; ${rulesWho(ctx)}: p99 across the tenant's tasks is ${fmt(fleet.p99)}, limit ${fmt(fleetUpper)}`);
}

function rulesWho(ctx: Ctx): string {
  return `rules regime (${fmtNum(ctx.type?.tasks ?? 0)} of ${fmtNum(ctx.config.warmupTasks)} warm-up tasks for type ${ctx.state.taskType})`;
}

function keyedNumeric(
  ctx: Ctx,
  family: string,
  feature: string,
  fence: Fence,
  x: number,
  floor: number,
  cap: number,
  fmt: (n: number) => string,
  what: () => string,
): void {
  const upper = fenceUpper(fence, floor);
  const s = excessScore(x, upper, K_BASELINE);
  if (s > 0) add(ctx, family, feature, Math.min(cap, s), `${what()}; p99 for ${ctx.who} is ${fmt(fence.p99)} (highest ${fmt(fence.max)})`);
}

// ---------------------------------------------------------------------------------------------------------
// Novelty

interface Seen {
  /** Tasks of the primary baseline with the item. */
  primary: number;
  /** Tasks of the type's baseline with the item (= primary outside the agent regime). */
  type: number;
}

function seen(ctx: Ctx, get: (b: Baseline) => number | undefined): Seen {
  const p = ctx.primary;
  if (p === undefined) return { primary: 0, type: 0 };
  const primary = get(p) ?? 0;
  const type = ctx.type !== undefined && ctx.type !== p ? (get(ctx.type) ?? 0) : primary;
  return { primary, type: Math.max(primary, type) };
}

/** Fraction of an unseen item's score: 1 unseen anywhere, AGENT_ONLY_FACTOR when only the type has it, 0 seen. */
function novelty(s: Seen): number {
  if (s.primary > 0) return 0;
  return s.type > 0 ? AGENT_ONLY_FACTOR : 1;
}

function share(ctx: Ctx, tasks: number): string {
  const total = ctx.type?.tasks ?? 0;
  return total > 0 ? fmtPercent(tasks / total) : '0%';
}

// ---------------------------------------------------------------------------------------------------------
// Features by kind

function lifecycle(ctx: Ctx): void {
  const ended = ctx.state.endedMs;
  // A span of the trace whose root ended the task is part of the task, however late its clock says it started.
  if (ended === null || (ctx.state.endedByTrace !== null && ctx.event.traceId === ctx.state.endedByTrace)) return;
  const late = ctx.event.startMs - ended;
  if (late > (ctx.config.afterEndGraceMs ?? DEFAULT_AFTER_END_GRACE_MS)) {
    hard(ctx, 'after_end', 'lifecycle', 'lifecycle.after_end', `${ctx.event.kind.replace('_', ' ')} "${ctx.event.name}" ${fmtDuration(late)} after the task ended: its credentials were used after the task`);
  }
}

function tools(ctx: Ctx): void {
  const { event, state } = ctx;
  const name = toolName(event);
  const calls = state.tools.get(name) ?? 0;
  const p = ctx.primary;
  if (p !== undefined) {
    const s = seen(ctx, (b) => b.tools[name]?.tasks);
    const f = novelty(s);
    const pNew = p.derived.pNew.tools;
    if (f > 0) {
      const sideEffect = event.tool?.sideEffect;
      const risky = sideEffect === 'write' || sideEffect === 'destructive' || (sideEffect !== 'read' && eventHost(event) !== undefined);
      const fleetNew = ctx.fleet !== undefined && ctx.fleet.tools[name] === undefined;
      // A new tool declared read-only alerts but does not revoke alone: agents gain read-only tools (a timezone
      // lookup, a search) far more often than they turn hostile through one, and what they read is scored anyway.
      const base = (sideEffect === 'read' ? 65 : 75) + (risky ? 15 : 0) + (fleetNew ? 8 : 0);
      const reason =
        f === 1
          ? `called tool ${name}, which ${ctx.who} have never used (${fmtNum(p.tasks)} tasks learned${fleetNew ? '; no task of this tenant has used it' : ''})`
          : `called tool ${name}, which agent ${state.agentId} has never used for type ${state.taskType} (other agents use it in ${share(ctx, s.type)} of tasks)`;
      add(ctx, 'tool', f === 1 ? 'tool.unseen' : 'tool.agent_unseen', base * f * (1 - pNew), reason);
    } else {
      if (s.type <= 2 && p.tasks >= 10 * s.type) {
        const rarity = 1 / (1 + s.type) ** 2;
        add(ctx, 'tool', 'tool.rare', 75 * rarity * (1 - pNew), `called tool ${name}, which only ${fmtNum(s.type)} of ${fmtNum(p.tasks)} ${ctx.who} have used`);
      }
      const ts = p.tools[name];
      if (ts?.perTask && ts.tasks >= MIN_KEYED_TASKS) {
        // A spree: twice the type's limit for the tool (itself above anything the type has done) and ten times the most
        // any of its tasks made is no busy day; it may revoke on its own. Below that, a busier task alerts at most.
        const limit = fenceUpper(ts.perTask.fence, 5);
        const spree = calls >= Math.max(SPREE_FACTOR * limit, 10 * Math.max(1, ts.perTask.fence.max));
        keyedNumeric(ctx, 'size', 'tool.calls_per_task', ts.perTask.fence, calls, 5, spree ? SPREE_CAP : 75, fmtNum, () => `called ${name} ${fmtNum(calls)} times in this task${spree ? ` (a spree: at least ${fmtNum(SPREE_FACTOR)}× the type's limit of ${fmtNum(limit)})` : ''}`);
      }
      transition(ctx, p, name);
    }
    numeric(ctx, 'tool', 'tool.distinct_per_task', 'distinctTools', state.tools.size, 3, 50, fmtNum, () => `used ${fmtNum(state.tools.size)} different tools in this task`);
  }
  numeric(ctx, 'rate', 'tool.calls_per_minute', 'maxToolCallsPerMinute', state.toolCallsLastMinute, 20, 70, fmtNum, () => `made ${fmtNum(state.toolCallsLastMinute)} tool calls in the last minute`);
}

/** Smoothed Markov model: P(to | from) = (c + ½) / (n_from + ½ · V). Scored only with enough evidence. */
function transition(ctx: Ctx, p: Baseline, to: string): void {
  const from = ctx.state.prevTool;
  if (from !== '^' && p.tools[from] === undefined) return;
  const total = p.derived.transitionTotals[from] ?? 0;
  if (total < 30) return;
  const c = p.transitions[from]?.[to] ?? 0;
  const prob = (c + 0.5) / (total + 0.5 * p.derived.vocabulary);
  const s = Math.min(45, 30 * (-Math.log10(prob) - 2));
  const fromText = from === '^' ? 'the task start' : from;
  add(ctx, 'transition', 'tool.transition', s, `went from ${fromText} to ${to}; ${ctx.who} made that step ${fmtNum(c)} times in ${fmtNum(total)} steps from ${fromText} (smoothed probability ${fmtPercent(prob)})`);
}

function errors(ctx: Ctx): void {
  const { state } = ctx;
  const e = state.errorsLastMinute;
  numeric(ctx, 'errors', 'errors.per_minute', 'maxErrorsPerMinute', e, 5, 100, fmtNum, () => `${fmtNum(e)} failing calls in the last minute`);
  numeric(ctx, 'errors', 'errors.per_task', 'errors', state.errors, 3, 90, fmtNum, () => `${fmtNum(state.errors)} failing calls in this task`);
  if (state.events >= 10) {
    const rate = state.errors / state.events;
    numeric(ctx, 'errors', 'errors.rate', 'errorRate', rate, 0.1, 50, fmtPercent, () => `${fmtPercent(rate)} of this task's ${fmtNum(state.events)} events failed`);
  }
  // Probing storm: a burst of mostly failing calls, beyond anything the type does, across many targets.
  const window = Math.max(1, state.eventsLastMinute);
  const limit = ctx.primary !== undefined ? Math.max(10, baselineRef(ctx, ctx.primary, 'maxErrorsPerMinute', 5).upper) : Math.max(10, partialUpper(ctx, 'maxErrorsPerMinute', 5));
  if (e >= limit && e / window >= 0.5) {
    const targets = state.failingTargets.size;
    const s = 50 + 3 * (e - limit) + (targets >= 5 ? 10 : 0);
    add(
      ctx,
      'errors',
      'errors.storm',
      Math.min(100, s),
      `probing storm: ${fmtNum(e)} failing calls in the last minute (${fmtPercent(e / window)} of calls), against ${fmtNum(targets)} different targets; ${ctx.regime === 'rules' ? 'the rule allows' : ctx.who + ' stay under'} ${fmtNum(limit)}`,
    );
  }
}

function data(ctx: Ctx): void {
  const { event, state } = ctx;
  const d = event.data;
  const resource = d?.resource ?? event.name;
  const key = state.lastDataEventId === event.id ? state.lastResourceKey : resourceKey(resource);
  const rows = nonNegative(d?.rows);
  const bytes = nonNegative(d?.bytes);
  const use = state.resources.get(key);

  numeric(ctx, 'volume', 'data.rows_per_access', 'maxRowsPerAccess', rows, 20, 100, fmtNum, () => `read ${fmtNum(rows)} rows from ${resource} in one access`);
  numeric(ctx, 'volume', 'data.bytes_per_access', 'maxBytesPerAccess', bytes, 256 * 1024, 100, fmtBytes, () => `moved ${fmtBytes(bytes)} in one access to ${resource}`);
  numeric(ctx, 'volume', 'data.rows_per_task', 'rows', state.rows, 20, 100, fmtNum, () => `read ${fmtNum(state.rows)} rows in this task over ${fmtNum(state.counts.data_access)} accesses`);
  numeric(ctx, 'volume', 'data.bytes_per_task', 'bytes', state.bytes, 256 * 1024, 100, fmtBytes, () => `moved ${fmtBytes(state.bytes)} in this task over ${fmtNum(state.counts.data_access)} accesses`);
  if (state.sensitiveRows > 0 && classificationRank(d?.classification) >= 2) {
    numeric(ctx, 'volume', 'data.sensitive_rows_per_task', 'sensitiveRows', state.sensitiveRows, 20, 100, fmtNum, () => `read ${fmtNum(state.sensitiveRows)} rows of confidential or restricted data in this task`, RULES_SPECIFIC_CAP);
  }
  numeric(ctx, 'size', 'data.accesses_per_task', 'dataAccesses', state.counts.data_access, 10, 70, fmtNum, () => `made ${fmtNum(state.counts.data_access)} data accesses in this task`);

  const p = ctx.primary;
  if (use === undefined) return;
  if (p === undefined) {
    // Rules regime: what the whole tenant reads from this very resource, widened; alert at most.
    const fr = ctx.fleet?.resources[key];
    if (fr?.rows && fr.tasks >= MIN_KEYED_TASKS) {
      const ownRows = ctx.type?.resources[key]?.rows;
      const upper = Math.max(fenceUpper(fr.rows.fence, 20) * RULES_WIDEN, ownRows ? fenceUpper(ownRows.fence, 20) * PARTIAL_TYPE_WIDEN : 0);
      const s = excessScore(use.rows, upper, K_RULES);
      if (s > 0) add(ctx, 'volume', 'data.resource_rows_per_task', Math.min(RULES_SPECIFIC_CAP, s), `read ${fmtNum(use.rows)} rows from ${resource} in this task; ${rulesWho(ctx)}: p99 across the tenant's tasks that read it is ${fmtNum(fr.rows.fence.p99)}, limit ${fmtNum(upper)}`);
    }
    return;
  }
  const rs = p.resources[key];
  if (rs !== undefined && rs.tasks >= MIN_KEYED_TASKS) {
    if (rs.rows) keyedNumeric(ctx, 'volume', 'data.resource_rows_per_task', rs.rows.fence, use.rows, 20, 100, fmtNum, () => `read ${fmtNum(use.rows)} rows from ${resource} in this task`);
    if (rs.bytes) keyedNumeric(ctx, 'volume', 'data.resource_bytes_per_task', rs.bytes.fence, use.bytes, 256 * 1024, 100, fmtBytes, () => `moved ${fmtBytes(use.bytes)} from ${resource} in this task`);
  }
  resourceNovelty(ctx, p, key, resource, use.classRank);
  numeric(ctx, 'resource', 'data.distinct_resources', 'distinctResources', state.resources.size, 3, 70, fmtNum, () => `touched ${fmtNum(state.resources.size)} different resources in this task`);
  classification(ctx, p, resource, classificationRank(d?.classification));
}

/** Lateral movement: resources (and whole namespaces) the type never touches, more of them scoring higher. */
function resourceNovelty(ctx: Ctx, p: Baseline, key: string, resource: string, classRank: number): void {
  const f = novelty(seen(ctx, (b) => b.resources[key]?.tasks));
  if (f === 0) return;
  const ns = namespaceOf(key);
  const nsNew = novelty(seen(ctx, (b) => b.namespaces[ns])) > 0;
  let unseen = 0;
  let checked = 0;
  for (const k of ctx.state.resources.keys()) {
    if (++checked > 256) break;
    if (novelty(seen(ctx, (b) => b.resources[k]?.tasks)) > 0) unseen++;
  }
  const pNew = nsNew ? p.derived.pNew.namespaces : p.derived.pNew.resources;
  const base = (nsNew ? 60 : 40) + 15 * Math.max(0, unseen - 1) + (classRank >= 2 ? 10 : 0);
  const whoText = f === 1 ? ctx.who : `agent ${ctx.state.agentId}'s tasks (other agents of the type do)`;
  add(
    ctx,
    'resource',
    'data.resource_unseen',
    Math.min(95, base) * f * (1 - pNew),
    `accessed ${resource}, ${nsNew ? `in namespace ${ns}, which` : 'a resource'} ${whoText} have never touched; ${fmtNum(unseen)} new resource${unseen === 1 ? '' : 's'} in this task`,
  );
}

function classification(ctx: Ctx, p: Baseline, resource: string, rank: number): void {
  if (rank < 2) return;
  const level = CLASSIFICATION_NAMES[rank] ?? 'restricted';
  const s = seen(ctx, (b) => b.classifications[level]);
  const f = novelty(s);
  const maxSeen = CLASSIFICATION_NAMES[p.derived.maxClassRank] ?? 'unclassified';
  if (f > 0) {
    add(ctx, 'classification', 'data.classification', (rank === 3 ? 65 : 45) * f, `read ${level} data (${resource}); ${ctx.who} never reached above ${maxSeen}`);
  } else if (s.type <= 2 && p.tasks >= 50 * s.type) {
    add(ctx, 'classification', 'data.classification', (rank === 3 ? 65 : 45) * 0.3, `read ${level} data (${resource}); only ${fmtNum(s.type)} of ${fmtNum(p.tasks)} ${ctx.who} did`);
  }
}

/** Contact with hosts, egress, and the read-secret → send-out sequence. */
function hosts(ctx: Ctx, host: string): void {
  const { event, state } = ctx;
  const egress = isEgress(event, host);
  const family = hostFamily(host);
  const p = ctx.primary;
  let hostNew: boolean;
  let familyNew: boolean;
  if (p !== undefined) {
    const f = novelty(seen(ctx, (b) => b.hosts[host]));
    hostNew = f === 1;
    familyNew = novelty(seen(ctx, (b) => b.hostFamilies[family])) === 1;
    if (f > 0) {
      const pNew = familyNew ? p.derived.pNew.hostFamilies : p.derived.pNew.hosts;
      // Data sent through a channel that takes any URL (an HTTP/upload tool, a remote write) to an organisation the
      // type never contacts is exfiltration's signature: it revokes on its own, unless the type often meets new hosts.
      const base = (egress ? (familyNew && isGenericEgress(event) ? 80 : 60) : 35) * (familyNew ? 1 : 0.6);
      const whoText = f === 1 ? ctx.who : `agent ${state.agentId}'s tasks (other agents of the type do)`;
      add(ctx, 'host', 'egress.host_unseen', base * f * (1 - pNew), `${egress ? 'sent data to' : 'contacted'} ${host}, a host ${whoText} have never contacted${familyNew ? ` (nor anything under ${family})` : ''}`);
    }
    numeric(ctx, 'host', 'egress.distinct_hosts', 'distinctHosts', state.hosts.size, 2, 60, fmtNum, () => `contacted ${fmtNum(state.hosts.size)} different hosts in this task`);
  } else {
    const known = (b: Baseline | undefined, k: 'hosts' | 'hostFamilies', v: string): boolean => b !== undefined && b[k][v] !== undefined;
    hostNew = !known(ctx.type, 'hosts', host) && !known(ctx.fleet, 'hosts', host);
    familyNew = !known(ctx.type, 'hostFamilies', family) && !known(ctx.fleet, 'hostFamilies', family);
  }
  if (!egress || !hostNew) return;

  // Read a secret, then send to a new host.
  if (state.secretReadMs !== null && state.secretReadMs <= event.startMs) {
    let s: number;
    if (p !== undefined) {
      s = (familyNew ? 92 : 72) * (1 - 0.4 * p.derived.pNew.hosts);
    } else if (isGenericEgress(event)) {
      // Rules regime: a general-purpose HTTP/upload channel to a destination the tenant has never used.
      const anyKnowledge = (ctx.type?.tasks ?? 0) > 0 || ctx.fleet !== undefined;
      s = familyNew ? (anyKnowledge ? 92 : 75) : 60;
    } else {
      // Rules regime, purpose-named integration (notify_slack, deploy…): a new type may legitimately call it.
      s = familyNew ? 45 : 30;
    }
    const whoText = p !== undefined ? ctx.who : `type ${state.taskType} and the tenant's other tasks`;
    add(ctx, 'sequence', 'sequence.secret_then_egress', s, `sent data to ${host} ${fmtDuration(event.startMs - state.secretReadMs)} after reading ${state.secretWhat}; ${whoText} never contacted that host`);
  }
  // Hard rule: restricted data the type never reads, plus egress to a host it never contacts.
  if (p !== undefined && state.classRank === 3 && seen(ctx, (b) => b.classifications.restricted).type === 0) {
    hard(ctx, 'restricted_with_new_egress', 'sequence', 'sequence.restricted_with_new_egress', `read restricted data, which ${ctx.who} never read, and sent data to ${host}, a host they never contact`);
  }
}

/** Restricted data read now, egress to a new host earlier in the task (the other order of the hard rule). */
function restrictedAfterEgress(ctx: Ctx, p: Baseline, rank: number): void {
  if (rank !== 3 || seen(ctx, (b) => b.classifications.restricted).type > 0) return;
  for (const h of ctx.state.egressHosts) {
    if (seen(ctx, (b) => b.hosts[h]).type === 0) {
      hard(ctx, 'restricted_with_new_egress', 'sequence', 'sequence.restricted_with_new_egress', `read restricted data, which ${ctx.who} never read (${fmtNum(p.tasks)} tasks), after sending data to ${h}, a host they never contact`);
      return;
    }
  }
}

/** Whether a change's grantor is the agent itself (`agent-7`, `agent:agent-7`, `Agent-7 `…). */
function isSelf(grantedBy: string, agentId: string): boolean {
  const who = grantedBy.trim().toLowerCase().replace(/^(agent|gen_ai\.agent|self)[:/]/, '');
  return who === 'self' || who === agentId.trim().toLowerCase();
}

function privilege(ctx: Ctx): void {
  const { event, state } = ctx;
  const pc = event.privilege;
  const action = pc?.action ?? event.name;
  const p = ctx.primary;
  // An agent cannot approve its own privileges: `approved` on a change it granted itself is a claim, not an approval.
  const selfApproved = pc?.approved === true && pc.grantedBy !== undefined && isSelf(pc.grantedBy, state.agentId);
  const approved = pc?.approved === true && !selfApproved;
  // An approved change (by policy or a person) of an ordinary scope is weaker evidence than a self-granted one.
  const approval = approved ? APPROVED_FACTOR : 1;
  if (p !== undefined) {
    const f = novelty(seen(ctx, (b) => b.privilegeActions[action]));
    if (f > 0) add(ctx, 'privilege', 'privilege.action_unseen', 55 * f * approval * (1 - p.derived.pNew.privilegeActions), `made a privilege change (${action}${approved ? ', approved' : ''}) that ${f === 1 ? ctx.who : `agent ${state.agentId}'s tasks`} never make`);
  }
  if (pc !== undefined) {
    const before = new Set(pc.scopesBefore);
    const fresh = pc.scopesAfter.filter((s) => !before.has(s));
    const how = `${action}${pc.grantedBy !== undefined ? `, granted by ${pc.grantedBy}` : ''}${pc.approved === false ? ', not approved' : selfApproved ? ', approved by the agent itself' : approved ? ', approved' : ''}`;
    if (selfApproved && fresh.length > 0) {
      hard(ctx, 'privilege_self_approved', 'approval', 'privilege.self_approved', `gained ${fmtNum(fresh.length)} scope${fresh.length === 1 ? '' : 's'} (${how}): an agent cannot approve its own privileges`);
    }
    let unseenPlain = 0;
    let firstPlain = '';
    for (const scope of fresh) {
      const s: Seen =
        p !== undefined
          ? seen(ctx, (b) => b.scopes[scope])
          : { primary: ctx.type?.scopes[scope] ?? 0, type: ctx.type?.scopes[scope] ?? 0 };
      const f = novelty(s);
      if (f === 0) continue;
      if (isAdminScope(scope)) {
        if (f === 1 && (p !== undefined || !approved)) {
          hard(ctx, 'privilege_admin_unseen', 'privilege', 'privilege.admin_scope', `gained administrative scope ${scope} (${how}), which ${p !== undefined ? ctx.who : `type ${state.taskType}`} never hold`);
        } else {
          add(ctx, 'privilege', 'privilege.admin_scope', f === 1 ? 75 : 60, `gained administrative scope ${scope} (${how}), which ${f === 1 ? `type ${state.taskType} never held before` : `agent ${state.agentId} never held (other agents of the type do)`}`);
        }
      } else if (p !== undefined) {
        unseenPlain++;
        if (firstPlain === '') firstPlain = scope;
      }
    }
    if (p !== undefined && unseenPlain > 0) {
      const s = Math.min(75, 50 + 10 * (unseenPlain - 1)) * approval * (1 - p.derived.pNew.scopes);
      add(ctx, 'privilege', 'privilege.scope_unseen', s, `gained scope ${firstPlain}${unseenPlain > 1 ? ` and ${fmtNum(unseenPlain - 1)} more` : ''} (${how}), which ${ctx.who} never hold`);
    }
    if (pc.approved === false && fresh.length > 0) add(ctx, 'approval', 'privilege.unapproved', 30, `gained ${fmtNum(fresh.length)} scope${fresh.length === 1 ? '' : 's'} without approval (${how})`);
  }
  numeric(ctx, 'privilege', 'privilege.scope_growth', 'scopesGained', state.gainedScopes.size, 2, 80, fmtNum, () => `holds ${fmtNum(state.gainedScopes.size)} scopes it did not hold at the start of the task`);
  numeric(ctx, 'privilege', 'privilege.changes_per_task', 'privilegeChanges', state.counts.privilege_change, 2, 70, fmtNum, () => `made ${fmtNum(state.counts.privilege_change)} privilege changes in this task`);
}

function shape(ctx: Ctx): void {
  const { state, event } = ctx;
  numeric(ctx, 'size', 'shape.events_per_task', 'events', state.events, 15, 50, fmtNum, () => `${fmtNum(state.events)} events in this task so far`);
  const elapsed = Math.max(event.endMs, event.startMs) - state.startedMs;
  numeric(ctx, 'size', 'shape.duration', 'durationMs', elapsed, 120_000, 40, fmtDuration, () => `task running for ${fmtDuration(elapsed)}`);
}

// ---------------------------------------------------------------------------------------------------------

/**
 * Families whose evidence is that something is new to the type (a tool, a host, a resource, a scope, a transition,
 * a new host after a secret). In warm-up the type's own record is too short to tell its ordinary work from an
 * attack by novelty, so novelty alerts there and never revokes on its own.
 */
const NOVELTY_FAMILIES: ReadonlySet<string> = new Set(['tool', 'transition', 'resource', 'classification', 'host', 'sequence', 'privilege']);

/**
 * Whether a revoke-level score may revoke. Always once the type has a baseline. In warm-up (rules regime) only a
 * signature no legitimate task shows: a hard rule (an unapproved administrative scope, a self-approved privilege,
 * credentials used after the task), or absolute limits alone reaching the threshold (the built-in volume limits, a
 * storm of failing calls) — never novelty, which alerts and lets the type learn (`learningEffect`).
 */
function mayRevokeInWarmup(ctx: Ctx): boolean {
  if (ctx.regime !== 'rules' || ctx.hardRule !== undefined) return true;
  const absolute = combine(ctx.out.filter((feature) => !NOVELTY_FAMILIES.has(feature.family)));
  return decide(Math.round(absolute * 10) / 10, ctx.state.taskType, ctx.config).decision === 'revoke';
}

/** Which regime applies and which baselines it rests on. */
export function regimeFor(
  baselines: BaselineLookup,
  config: DetectorConfig,
): { regime: Regime; primary: Baseline | undefined; type: Baseline | undefined; fleet: Baseline | undefined } {
  const type = baselines.type;
  const fleet = baselines.fleet !== undefined && baselines.fleet.tasks >= config.warmupTasks ? baselines.fleet : undefined;
  const agent = baselines.agent;
  if (agent !== undefined && agent.tasks >= config.agentWarmupTasks) return { regime: 'agent_baseline', primary: agent, type: type ?? agent, fleet };
  if (type !== undefined && type.tasks >= config.warmupTasks) return { regime: 'type_baseline', primary: type, type, fleet };
  return { regime: 'rules', primary: undefined, type, fleet };
}

function byScore(a: Contribution, b: Contribution): number {
  return b.score - a.score || (a.feature < b.feature ? -1 : a.feature > b.feature ? 1 : 0);
}

/**
 * Score one event. `state` must already include the event (`observe` first). Deterministic.
 * The fleet baseline is used only once it has `warmupTasks` tasks; its `taskType` should be `*`.
 */
export function score(event: AgentEvent, state: TaskState, baselines: BaselineLookup, config: DetectorConfig): Verdict {
  const r = regimeFor(baselines, config);
  const ctx: Ctx = {
    event,
    state,
    config,
    regime: r.regime,
    primary: r.primary,
    type: r.type,
    fleet: r.fleet,
    who: r.regime === 'agent_baseline' ? `agent ${state.agentId}'s tasks of type ${state.taskType}` : `tasks of type ${state.taskType}`,
    out: [],
    hardRule: undefined,
  };
  lifecycle(ctx);
  switch (event.kind) {
    case 'tool_call':
      tools(ctx);
      break;
    case 'data_access': {
      data(ctx);
      if (ctx.primary !== undefined) restrictedAfterEgress(ctx, ctx.primary, classificationRank(event.data?.classification));
      break;
    }
    case 'privilege_change':
      privilege(ctx);
      break;
  }
  const host = eventHost(event);
  if (host !== undefined) hosts(ctx, host);
  if (event.error) errors(ctx);
  shape(ctx);

  const combined = ctx.hardRule !== undefined ? 100 : combine(ctx.out);
  const total = Math.round(combined * 10) / 10;
  const decided = decide(total, state.taskType, config);
  const { shadow } = decided;
  const decision = decided.decision === 'revoke' && !mayRevokeInWarmup(ctx) ? 'alert' : decided.decision;
  const contributions: Contribution[] = [];
  for (const f of ctx.out) {
    const rounded = Math.round(f.score * 10) / 10;
    if (rounded > 0) contributions.push({ feature: f.feature, score: rounded, reason: f.reason });
  }
  contributions.sort(byScore);
  const verdict: Verdict = { score: total, decision, regime: r.regime, contributions, shadow };
  if (ctx.hardRule !== undefined) verdict.hardRule = ctx.hardRule;
  return verdict;
}

/**
 * What a verdict means for learning its task once it completes: `excluded` keeps it out of the baselines (an alert
 * or revocation acted on); `held`, a warm-up alert (rules regime, no hard rule), waits: a new type's novelty is
 * what its first tasks are made of, and held tasks are learned together once they are most of the type's warm-up
 * (`BaselineBook.holdWarmupTask`), so a type whose ordinary work alerts (a deploy agent that reads a secret and
 * posts to the team's webhook in every task) still leaves warm-up, and a few attacks among normal tasks teach
 * nothing. Shadow verdicts were not acted on.
 */
export type LearningEffect = 'teaches' | 'held' | 'excluded';

export function learningEffect(verdict: Pick<Verdict, 'decision' | 'shadow' | 'regime' | 'hardRule'>): LearningEffect {
  if (verdict.decision === 'allow' || verdict.shadow) return 'teaches';
  return verdict.regime === 'rules' && verdict.hardRule === undefined && verdict.decision === 'alert' ? 'held' : 'excluded';
}

/** The stronger of two effects (a task is excluded by any excluding verdict, else held by any holding one). */
export function strongerEffect(a: LearningEffect, b: LearningEffect): LearningEffect {
  const rank = { teaches: 0, held: 1, excluded: 2 } as const;
  return rank[a] >= rank[b] ? a : b;
}
