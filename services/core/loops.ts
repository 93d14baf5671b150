/**
 * Loops and rate limits: what no anomaly score stops. Per task, in bounded state, each tool call is counted as
 *
 * - `loop.repeat`: the same tool with the same arguments (their keyed hash, `ToolCallDetail.argumentsHash`);
 * - `loop.cycle`: a short cycle of tool names (n = 2..4 distinct-enough calls) repeating back to back;
 * - `loop.no_progress`: the same tool returning the same result (`ToolCallDetail.resultHash`) again and again;
 * - `rate.tool`: calls of one tool within a sliding window;
 * - `rate.task`: calls of the task within a sliding window.
 *
 * Each has an action ladder from the policy (./loop-policy.ts): counts at which it alerts, refuses the task's next
 * calls (POST /v1/check denies them for a while, the task stays active) and revokes the task. A step is reported
 * once per task and feature, with a sentence a person reads naming the tool, the count and the window.
 * Pure: values in, values out; the caller keeps the state with its task.
 */
import { boundedKey } from './detect/signals.ts';
import type { AgentEvent, Contribution, Verdict } from '../../schemas/events.ts';

export const LOOP_FEATURES = ['loop.repeat', 'loop.cycle', 'loop.no_progress', 'rate.tool', 'rate.task'] as const;
export type LoopFeature = (typeof LOOP_FEATURES)[number];

export const LOOP_ACTIONS = ['alert', 'refuse', 'revoke'] as const;
export type LoopAction = (typeof LOOP_ACTIONS)[number];

/** The counts at which each step of the ladder applies (a step left out is skipped). */
export type Ladder = Partial<Record<LoopAction, number>>;

export interface LoopLimits {
  /** Calls of one tool with the same arguments within the task. */
  repeat: Ladder;
  /** Back-to-back repetitions of a cycle of `minLength`..`maxLength` tool names (at least two distinct). */
  cycle: Ladder & { minLength: number; maxLength: number };
  /** Calls of one tool that returned the same result within the task. */
  noProgress: Ladder;
  /** Calls of one tool within `windowMs`. */
  toolRate: Ladder & { windowMs: number };
  /** Calls of the task (any tool) within `windowMs`. */
  taskRate: Ladder & { windowMs: number };
  /** How long a `refuse` step refuses the task's calls. */
  refuseForMs: number;
}

/** Distinct keys (tool + arguments, tool + result, tools) counted per task; further ones are not counted. */
export const MAX_LOOP_KEYS = 1024;
/** Longest cycle looked for. */
export const MAX_CYCLE_LENGTH = 8;

export interface LoopState {
  repeats: Map<string, number>;
  results: Map<string, number>;
  /** The last tool names, newest last (at most 2 × MAX_CYCLE_LENGTH). */
  recent: string[];
  /** Per cycle length n: how many calls in a row equalled the call n before them. */
  runs: number[];
  /** Per tool, its call times within the window (at most the ladder's highest count). */
  toolTimes: Map<string, number[]>;
  taskTimes: number[];
  /** The steps already reported, per feature (each is reported once). */
  reached: Map<LoopFeature, LoopAction>;
}

export interface LoopFinding {
  feature: LoopFeature;
  action: LoopAction;
  tool: string;
  count: number;
  /** A sentence a person reads: the tool, the count and the window. */
  reason: string;
}

export function newLoopState(): LoopState {
  return {
    repeats: new Map(),
    results: new Map(),
    recent: [],
    runs: [],
    toolTimes: new Map(),
    taskTimes: [],
    reached: new Map(),
  };
}

const RANK: Record<LoopAction, number> = { alert: 1, refuse: 2, revoke: 3 };

/** The highest step a count reaches on a ladder, if any. */
export function stepOf(ladder: Ladder, count: number): LoopAction | undefined {
  let step: LoopAction | undefined;
  for (const action of LOOP_ACTIONS) {
    const at = ladder[action];
    if (at !== undefined && count >= at) step = action;
  }
  return step;
}

function highest(ladder: Ladder): number {
  return Math.max(0, ...LOOP_ACTIONS.map((action) => ladder[action] ?? 0));
}

function bump(map: Map<string, number>, key: string): number {
  const count = (map.get(key) ?? 0) + 1;
  if (map.has(key) || map.size < MAX_LOOP_KEYS) map.set(key, count);
  return count;
}

/** Times within the window ending at `nowMs`, with `nowMs` added, at most `keep` of them (newest kept). */
function slide(times: number[], nowMs: number, windowMs: number, keep: number): number[] {
  const kept = times.filter((time) => time > nowMs - windowMs && time <= nowMs);
  kept.push(nowMs);
  return kept.length > keep ? kept.slice(kept.length - keep) : kept;
}

function minutes(windowMs: number): string {
  if (windowMs % 60_000 === 0) return `${windowMs / 60_000} min`;
  return `${Math.round(windowMs / 1000)} s`;
}

const STEP_WORDS: Record<LoopAction, string> = {
  alert: 'alert',
  refuse: 'its next calls are refused',
  revoke: 'the task is revoked',
};

/**
 * Counts one event (only tool calls count) and returns the new steps it reached, highest first. The state is
 * updated in place (the caller owns it, one per task). `sameCall`: the event is another instrumentation's record of
 * a call already counted (services/core/detect/same-call.ts): no call of its own (no cycle step, no rate), only the
 * call's first arguments or result hash when the counted record had none.
 */
export function observeLoops(
  state: LoopState,
  event: AgentEvent,
  limits: LoopLimits,
  sameCall?: { firstArguments: boolean; firstResult: boolean },
): LoopFinding[] {
  const tool = event.tool;
  if (event.kind !== 'tool_call' || tool === undefined) return [];
  const name = boundedKey(tool.name);
  const found: LoopFinding[] = [];
  const report = (feature: LoopFeature, ladder: Ladder, count: number, describe: (step: string) => string): void => {
    const step = stepOf(ladder, count);
    if (step === undefined) return;
    const before = state.reached.get(feature);
    if (before !== undefined && RANK[before] >= RANK[step]) return;
    state.reached.set(feature, step);
    found.push({ feature, action: step, tool: name, count, reason: describe(STEP_WORDS[step]) });
  };

  if (tool.argumentsHash !== undefined && (sameCall === undefined || sameCall.firstArguments)) {
    const count = bump(state.repeats, `${name}\u0000${tool.argumentsHash}`);
    report(
      'loop.repeat',
      limits.repeat,
      count,
      (step) => `loop.repeat: tool ${name} was called ${count} times with the same arguments in this task (${step})`,
    );
  }
  if (tool.resultHash !== undefined && (sameCall === undefined || sameCall.firstResult)) {
    const count = bump(state.results, `${name}\u0000${tool.resultHash}`);
    report(
      'loop.no_progress',
      limits.noProgress,
      count,
      (step) => `loop.no_progress: tool ${name} returned the same result ${count} times in this task (${step})`,
    );
  }

  if (sameCall !== undefined) return found.sort((a, b) => RANK[b.action] - RANK[a.action]);

  const cycle = observeCycle(state, name, limits.cycle);
  if (cycle !== undefined)
    report(
      'loop.cycle',
      limits.cycle,
      cycle.repetitions,
      (step) =>
        `loop.cycle: the cycle ${cycle.tools.join(' → ')} of ${cycle.tools.length} tools repeated ${cycle.repetitions} times in a row (${step})`,
    );

  const keepTool = Math.max(1, highest(limits.toolRate));
  const times = state.toolTimes.get(name);
  if (times !== undefined || state.toolTimes.size < MAX_LOOP_KEYS) {
    const next = slide(times ?? [], event.startMs, limits.toolRate.windowMs, keepTool);
    state.toolTimes.set(name, next);
    report(
      'rate.tool',
      limits.toolRate,
      next.length,
      (step) =>
        `rate.tool: tool ${name} was called ${next.length} times within ${minutes(limits.toolRate.windowMs)} (${step})`,
    );
  }
  state.taskTimes = slide(
    state.taskTimes,
    event.startMs,
    limits.taskRate.windowMs,
    Math.max(1, highest(limits.taskRate)),
  );
  const taskCalls = state.taskTimes.length;
  report(
    'rate.task',
    limits.taskRate,
    taskCalls,
    (step) =>
      `rate.task: the task made ${taskCalls} tool calls within ${minutes(limits.taskRate.windowMs)}, the last to ${name} (${step})`,
  );
  return found.sort((a, b) => RANK[b.action] - RANK[a.action]);
}

/**
 * Tracks, per cycle length n, how many calls in a row equalled the call n before them; returns the shortest
 * cycle (of at least two distinct tools) now running, with how many times it repeated back to back.
 */
function observeCycle(
  state: LoopState,
  name: string,
  limits: { minLength: number; maxLength: number },
): { tools: string[]; repetitions: number } | undefined {
  const recent = state.recent;
  const maxLength = Math.min(MAX_CYCLE_LENGTH, limits.maxLength);
  for (let n = 1; n <= maxLength; n += 1) {
    const earlier = recent[recent.length - n];
    state.runs[n] = earlier === name ? (state.runs[n] ?? 0) + 1 : 0;
  }
  recent.push(name);
  if (recent.length > 2 * MAX_CYCLE_LENGTH) recent.shift();
  for (let n = Math.max(2, limits.minLength); n <= maxLength; n += 1) {
    const run = state.runs[n] ?? 0;
    if (run < n) continue;
    const tools = recent.slice(recent.length - n);
    if (new Set(tools).size < 2) continue;
    // A shorter cycle inside this one (a b a b inside period 4) is that cycle, reported at its own length.
    if (hasShorterPeriod(tools)) continue;
    return { tools, repetitions: Math.floor((run + n) / n) };
  }
  return undefined;
}

function hasShorterPeriod(tools: readonly string[]): boolean {
  for (let d = 1; d < tools.length; d += 1) {
    if (tools.length % d !== 0) continue;
    if (tools.every((tool, index) => tool === tools[index % d])) return true;
  }
  return false;
}

/** The highest action among findings, if any. */
export function strongestAction(findings: readonly LoopFinding[]): LoopAction | undefined {
  let best: LoopAction | undefined;
  for (const finding of findings) if (best === undefined || RANK[finding.action] > RANK[best]) best = finding.action;
  return best;
}

/** Is this a feature of this module (a loop or rate contribution)? */
export function isLoopFeature(feature: string): feature is LoopFeature {
  return (LOOP_FEATURES as readonly string[]).includes(feature);
}

/**
 * The detector's verdict with the loop findings folded in: each a contribution (score 100 for a revoke step, the
 * alert threshold otherwise) ahead of the others; the decision raised to `revoke` by a revoke step (a hard rule
 * named by the feature, as the detector's own hard rules) and to at least `alert` by the others.
 */
export function withLoopFindings(
  verdict: Verdict,
  findings: readonly LoopFinding[],
  thresholds: { alert: number; revoke: number },
): Verdict {
  if (findings.length === 0) return verdict;
  const contributions: Contribution[] = findings.map((finding) => ({
    feature: finding.feature,
    score: finding.action === 'revoke' ? 100 : Math.min(100, Math.max(0, thresholds.alert)),
    reason: finding.reason,
  }));
  const revoke = findings.find((finding) => finding.action === 'revoke');
  const score = revoke !== undefined ? 100 : Math.max(verdict.score, thresholds.alert);
  const decision = revoke !== undefined ? 'revoke' : verdict.decision === 'revoke' ? 'revoke' : 'alert';
  const merged: Verdict = {
    ...verdict,
    score,
    decision,
    contributions: [...contributions, ...verdict.contributions],
  };
  if (revoke !== undefined && verdict.hardRule === undefined) merged.hardRule = revoke.feature;
  return merged;
}
