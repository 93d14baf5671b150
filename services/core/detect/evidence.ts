/**
 * What every feature scorer works with: the context of one scoring (the event, its task, the regime and the
 * baselines it rests on, the features found so far), adding a feature or a hard rule, judging a number against a
 * fence (or, in the rules regime, against the built-in limit and the widened fleet), and how new an item is to the
 * type or to the agent.
 */
import type { AgentEvent, Contribution, Regime } from '../../../schemas/events.ts';
import type { Baseline, DistName } from './baseline.ts';
import type { DetectorConfig } from './config.ts';
import { fmtNum, fmtPercent } from './format.ts';
import {
  K_BASELINE,
  K_RULES,
  RULES_WIDEN,
  PARTIAL_TYPE_WIDEN,
  AGENT_ONLY_FACTOR,
  PRIORS,
  RULES_FLEET_CAP,
} from './limits.ts';
import { excessScore, type Fence } from './stats.ts';
import type { TaskState } from './state.ts';

export interface Feature extends Contribution {
  family: string;
}

export interface Ctx {
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

export function add(ctx: Ctx, family: string, feature: string, score: number, reason: string): void {
  if (score > 0) ctx.out.push({ family, feature, score: Math.min(100, score), reason });
}

export function hard(ctx: Ctx, rule: string, family: string, feature: string, reason: string): void {
  ctx.hardRule ??= rule;
  ctx.out.push({ family, feature, score: 100, reason: `${reason} (hard rule ${rule})` });
}

// ---------------------------------------------------------------------------------------------------------
// Numeric features against fences

export function fenceUpper(f: Fence, floor: number): number {
  return Math.max(f.upper, f.max + floor, floor);
}

/** The type's (or agent's) fence in the baseline regimes. */
export function baselineRef(ctx: Ctx, p: Baseline, d: DistName, floor: number): NumRef {
  const f = p.dists[d].fence;
  let upper = fenceUpper(f, floor);
  if (
    ctx.regime === 'agent_baseline' &&
    ctx.type !== undefined &&
    ctx.type !== p &&
    ctx.type.tasks >= ctx.config.warmupTasks
  ) {
    upper = Math.max(upper, ctx.type.dists[d].fence.p99);
  }
  return { upper, p99: f.p99, max: f.max, k: K_BASELINE };
}

/** What the type's own few tasks (rules regime) allow: their fence, widened. 0 without any. */
export function partialUpper(ctx: Ctx, d: DistName, floor: number): number {
  const t = ctx.type;
  return t !== undefined && t.tasks > 0 ? fenceUpper(t.dists[d].fence, floor) * PARTIAL_TYPE_WIDEN : 0;
}

export function numeric(
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
    if (s > 0)
      add(
        ctx,
        family,
        feature,
        Math.min(cap, s),
        `${what()}; p99 for ${ctx.who} is ${fmt(ref.p99)} (highest ${fmt(ref.max)})`,
      );
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
  if (sPrior >= sFleet || fleet === undefined)
    add(ctx, family, feature, sPrior, `${what()}; ${rulesWho(ctx)}: built-in limit ${fmt(priorUpper)}`);
  else
    add(
      ctx,
      family,
      feature,
      sFleet,
      `${what()}; ${rulesWho(ctx)}: p99 across the tenant's tasks is ${fmt(fleet.p99)}, limit ${fmt(fleetUpper)}`,
    );
}

export function rulesWho(ctx: Ctx): string {
  return `rules regime (${fmtNum(ctx.type?.tasks ?? 0)} of ${fmtNum(ctx.config.warmupTasks)} warm-up tasks for type ${ctx.state.taskType})`;
}

export function keyedNumeric(
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
  if (s > 0)
    add(
      ctx,
      family,
      feature,
      Math.min(cap, s),
      `${what()}; p99 for ${ctx.who} is ${fmt(fence.p99)} (highest ${fmt(fence.max)})`,
    );
}

// ---------------------------------------------------------------------------------------------------------
// Novelty

export interface Seen {
  /** Tasks of the primary baseline with the item. */
  primary: number;
  /** Tasks of the type's baseline with the item (= primary outside the agent regime). */
  type: number;
}

export function seen(ctx: Ctx, get: (b: Baseline) => number | undefined): Seen {
  const p = ctx.primary;
  if (p === undefined) return { primary: 0, type: 0 };
  const primary = get(p) ?? 0;
  const type = ctx.type !== undefined && ctx.type !== p ? (get(ctx.type) ?? 0) : primary;
  return { primary, type: Math.max(primary, type) };
}

/** Fraction of an unseen item's score: 1 unseen anywhere, AGENT_ONLY_FACTOR when only the type has it, 0 seen. */
export function novelty(s: Seen): number {
  if (s.primary > 0) return 0;
  return s.type > 0 ? AGENT_ONLY_FACTOR : 1;
}

export function share(ctx: Ctx, tasks: number): string {
  const total = ctx.type?.tasks ?? 0;
  return total > 0 ? fmtPercent(tasks / total) : '0%';
}
