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
 *
 * Here: the regime and the verdict. The features are scored in task-features.ts (every event), tool-features.ts,
 * counterparty-features.ts, data-features.ts, host-features.ts and privilege-features.ts, with the helpers of evidence.ts and the numbers
 * of limits.ts; warmup.ts says what may revoke in warm-up and what a verdict means for learning.
 */
import type { AgentEvent, Contribution, Regime, Verdict } from '../../../schemas/events.ts';
import type { Baseline } from './baseline.ts';
import { combine } from './combine.ts';
import { decide, type DetectorConfig } from './config.ts';
import type { Ctx } from './evidence.ts';
import { classificationRank, eventHost } from './signals.ts';
import type { TaskState } from './state.ts';
import { lifecycle, errors, shape } from './task-features.ts';
import { tools } from './tool-features.ts';
import { counterparties } from './counterparty-features.ts';
import { data, restrictedAfterEgress } from './data-features.ts';
import { hosts } from './host-features.ts';
import { privilege } from './privilege-features.ts';
import { mayRevokeInWarmup } from './warmup.ts';

export { K_BASELINE, K_RULES, PRIORS } from './limits.ts';
export { learningEffect, strongerEffect } from './warmup.ts';
export type { LearningEffect } from './warmup.ts';

/** The baselines a verdict may rest on. `fleet` is the tenant-wide baseline (all types), the warm-up prior. */
export interface BaselineLookup {
  type?: Baseline;
  agent?: Baseline;
  fleet?: Baseline;
}

/** Which regime applies and which baselines it rests on. */
export function regimeFor(
  baselines: BaselineLookup,
  config: DetectorConfig,
): { regime: Regime; primary: Baseline | undefined; type: Baseline | undefined; fleet: Baseline | undefined } {
  const type = baselines.type;
  const fleet =
    baselines.fleet !== undefined && baselines.fleet.tasks >= config.warmupTasks ? baselines.fleet : undefined;
  const agent = baselines.agent;
  if (agent !== undefined && agent.tasks >= config.agentWarmupTasks)
    return { regime: 'agent_baseline', primary: agent, type: type ?? agent, fleet };
  if (type !== undefined && type.tasks >= config.warmupTasks)
    return { regime: 'type_baseline', primary: type, type, fleet };
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
    who:
      r.regime === 'agent_baseline'
        ? `agent ${state.agentId}'s tasks of type ${state.taskType}`
        : `tasks of type ${state.taskType}`,
    out: [],
    hardRule: undefined,
  };
  lifecycle(ctx);
  switch (event.kind) {
    case 'tool_call':
      tools(ctx);
      counterparties(ctx);
      break;
    case 'data_access': {
      data(ctx);
      if (ctx.primary !== undefined)
        restrictedAfterEgress(ctx, ctx.primary, classificationRank(event.data?.classification));
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
