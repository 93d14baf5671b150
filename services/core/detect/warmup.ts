/**
 * What warm-up (the rules regime) allows: which revoke-level scores may revoke there, and what a verdict means for
 * learning its task once it completes.
 */
import type { Verdict } from '../../../schemas/events.ts';
import { combine } from './combine.ts';
import { decide } from './config.ts';
import type { Ctx } from './evidence.ts';

/**
 * Families whose evidence is that something is new to the type (a tool, a host, a resource, a scope, a transition,
 * a new host after a secret, a counterparty — also one that came from content the agent read). In warm-up the type's own record is too short to tell its ordinary work from an
 * attack by novelty, so novelty alerts there and never revokes on its own.
 */
const NOVELTY_FAMILIES: ReadonlySet<string> = new Set([
  'tool',
  'transition',
  'resource',
  'classification',
  'host',
  'sequence',
  'privilege',
  'counterparty',
]);

/**
 * Whether a revoke-level score may revoke. Always once the type has a baseline. In warm-up (rules regime) only a
 * signature no legitimate task shows: a hard rule (an unapproved administrative scope, a self-approved privilege,
 * credentials used after the task), or absolute limits alone reaching the threshold (the built-in volume limits, a
 * storm of failing calls) — never novelty, which alerts and lets the type learn (`learningEffect`).
 */
export function mayRevokeInWarmup(ctx: Ctx): boolean {
  if (ctx.regime !== 'rules' || ctx.hardRule !== undefined) return true;
  const absolute = combine(ctx.out.filter((feature) => !NOVELTY_FAMILIES.has(feature.family)));
  return decide(Math.round(absolute * 10) / 10, ctx.state.taskType, ctx.config).decision === 'revoke';
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
  return verdict.regime === 'rules' && verdict.hardRule === undefined && verdict.decision === 'alert'
    ? 'held'
    : 'excluded';
}

/** The stronger of two effects (a task is excluded by any excluding verdict, else held by any holding one). */
export function strongerEffect(a: LearningEffect, b: LearningEffect): LearningEffect {
  const rank = { teaches: 0, held: 1, excluded: 2 } as const;
  return rank[a] >= rank[b] ? a : b;
}
