/** Features of a tool call: a tool new to the type or the agent, a rare one, a spree of one tool, an unusual step. */
import type { Baseline } from './baseline.ts';
import { add, fenceUpper, numeric, keyedNumeric, seen, novelty, share, type Ctx } from './evidence.ts';
import { fmtNum, fmtPercent } from './format.ts';
import { SPREE_FACTOR, SPREE_CAP, MIN_KEYED_TASKS } from './limits.ts';
import { sameCallOf } from './state.ts';
import { eventHost, toolName } from './signals.ts';

export function tools(ctx: Ctx): void {
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
      const risky =
        sideEffect === 'write' ||
        sideEffect === 'destructive' ||
        (sideEffect !== 'read' && eventHost(event) !== undefined);
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
        add(
          ctx,
          'tool',
          'tool.rare',
          75 * rarity * (1 - pNew),
          `called tool ${name}, which only ${fmtNum(s.type)} of ${fmtNum(p.tasks)} ${ctx.who} have used`,
        );
      }
      const ts = p.tools[name];
      if (ts?.perTask && ts.tasks >= MIN_KEYED_TASKS) {
        // A spree: twice the type's limit for the tool (itself above anything the type has done) and ten times the most
        // any of its tasks made is no busy day; it may revoke on its own. Below that, a busier task alerts at most.
        const limit = fenceUpper(ts.perTask.fence, 5);
        const spree = calls >= Math.max(SPREE_FACTOR * limit, 10 * Math.max(1, ts.perTask.fence.max));
        keyedNumeric(
          ctx,
          'size',
          'tool.calls_per_task',
          ts.perTask.fence,
          calls,
          5,
          spree ? SPREE_CAP : 75,
          fmtNum,
          () =>
            `called ${name} ${fmtNum(calls)} times in this task${spree ? ` (a spree: at least ${fmtNum(SPREE_FACTOR)}× the type's limit of ${fmtNum(limit)})` : ''}`,
        );
      }
      // Another record of a call already counted took no step of its own: the call's step was scored with it.
      if (sameCallOf(state, event) === undefined) transition(ctx, p, name);
    }
    numeric(
      ctx,
      'tool',
      'tool.distinct_per_task',
      'distinctTools',
      state.tools.size,
      3,
      50,
      fmtNum,
      () => `used ${fmtNum(state.tools.size)} different tools in this task`,
    );
  }
  numeric(
    ctx,
    'rate',
    'tool.calls_per_minute',
    'maxToolCallsPerMinute',
    state.toolCallsLastMinute,
    20,
    70,
    fmtNum,
    () => `made ${fmtNum(state.toolCallsLastMinute)} tool calls in the last minute`,
  );
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
  add(
    ctx,
    'transition',
    'tool.transition',
    s,
    `went from ${fromText} to ${to}; ${ctx.who} made that step ${fmtNum(c)} times in ${fmtNum(total)} steps from ${fromText} (smoothed probability ${fmtPercent(prob)})`,
  );
}
