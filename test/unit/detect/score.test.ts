/** The scoring core: determinism, purity, regimes, thresholds per type, shadow mode, verdict shape. */
import { describe, expect, it } from 'vitest';
import { DECISIONS, REGIMES } from '../../../schemas/events.ts';
import {
  DEFAULT_DETECTOR_CONFIG,
  emptyBaseline,
  learn,
  observe,
  newTaskState,
  resolveDetectorConfig,
  score,
  summarize,
} from '../../../services/core/detect/index.ts';
import { ATTACKS, T0, benignTask, rng, run, stateOf, summarizeTicket, taskCtx, toolCall, train } from './fixtures.ts';

const TYPE = 'summarize_ticket';
const trained = train(TYPE, 30, 21, 30);

function attackTask(name: string, id = `atk-${name}`): ReturnType<typeof taskCtx> {
  const ctx = taskCtx(TYPE, id);
  const r = rng(8);
  summarizeTicket(ctx, r);
  ATTACKS[name]?.(ctx, r);
  return ctx;
}

describe('score', () => {
  it('is deterministic: the same inputs give the same verdicts', () => {
    const events = attackTask('lateral_movement').events;
    const a = run(events, trained.lookup).verdicts;
    const b = run(events, trained.lookup).verdicts;
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
  });

  it('does not change the state or the baselines it reads', () => {
    const ctx = attackTask('slow_drip');
    const state = stateOf(ctx.events);
    const before = JSON.stringify(summarize(state));
    const baselineBefore = JSON.stringify(trained.type);
    const lastEvent = ctx.events.at(-1);
    if (lastEvent === undefined) throw new Error('no events');
    score(lastEvent, state, trained.lookup, DEFAULT_DETECTOR_CONFIG);
    expect(JSON.stringify(summarize(state))).toBe(before);
    expect(JSON.stringify(trained.type)).toBe(baselineBefore);
  });

  it('returns a well-formed, JSON-serializable verdict: contributions non-zero, highest first, score >= each', () => {
    for (const name of Object.keys(ATTACKS)) {
      for (const v of run(attackTask(name).events, trained.lookup).verdicts) {
        expect(v.score).toBeGreaterThanOrEqual(0);
        expect(v.score).toBeLessThanOrEqual(100);
        expect(DECISIONS).toContain(v.decision);
        expect(REGIMES).toContain(v.regime);
        expect(JSON.parse(JSON.stringify(v))).toEqual(v);
        for (let i = 0; i < v.contributions.length; i++) {
          const c = v.contributions[i];
          expect(c?.score).toBeGreaterThan(0);
          expect(c?.reason.length).toBeGreaterThan(10);
          expect(v.score).toBeGreaterThanOrEqual(c?.score ?? 0);
          if (i > 0) expect(c?.score).toBeLessThanOrEqual(v.contributions[i - 1]?.score ?? 0);
        }
      }
    }
  });

  it('sets score 100 and names the rule when a hard rule decides', () => {
    const res = run(attackTask('privilege_escalation').events, trained.lookup);
    expect(res.max).toMatchObject({ score: 100, decision: 'revoke', hardRule: 'privilege_admin_unseen' });
  });
});

describe('regimes', () => {
  const events = benignTask(TYPE, 'reg', rng(3), { agentId: 'agent-9' }).events;

  it('uses rules until the type has warmupTasks tasks, then the type baseline', () => {
    const b = emptyBaseline(TYPE);
    const r = rng(4);
    for (let i = 0; i < 19; i++) learn(b, summarize(stateOf(benignTask(TYPE, `w-${String(i)}`, r).events)));
    expect(run(events, { type: b }).max.regime).toBe('rules');
    learn(b, summarize(stateOf(benignTask(TYPE, 'w-19', r).events)));
    expect(run(events, { type: b }).max.regime).toBe('type_baseline');
    expect(run(events, { type: b }, resolveDetectorConfig({ warmupTasks: 50 })).max.regime).toBe('rules');
  });

  it('uses the agent baseline once the agent has agentWarmupTasks tasks of the type', () => {
    const type = emptyBaseline(TYPE);
    const agent = emptyBaseline(TYPE, 'agent-9');
    const r = rng(6);
    for (let i = 0; i < 30; i++) {
      const s = summarize(stateOf(benignTask(TYPE, `a-${String(i)}`, r, { agentId: 'agent-9' }).events));
      learn(type, s);
      if (i < 29) learn(agent, s);
    }
    expect(run(events, { type, agent }).max.regime).toBe('type_baseline');
    learn(agent, summarize(stateOf(benignTask(TYPE, 'a-last', r, { agentId: 'agent-9' }).events)));
    const v = run(events, { type, agent }).max;
    expect(v.regime).toBe('agent_baseline');
    expect(v.decision).toBe('allow');
  });

  it('in the agent regime, a tool other agents of the type use scores lower than one nobody uses', () => {
    const type = emptyBaseline(TYPE);
    const agent = emptyBaseline(TYPE, 'agent-9');
    const r = rng(6);
    for (let i = 0; i < 40; i++) {
      const s = summarize(stateOf(benignTask(TYPE, `a-${String(i)}`, r, { agentId: 'agent-9' }).events));
      learn(type, s);
      learn(agent, s);
    }
    const other = taskCtx(TYPE, 'other', 'agent-2');
    toolCall(other, 'escalate_ticket');
    learn(type, summarize(stateOf(other.events)));
    const ctx = taskCtx(TYPE, 'x', 'agent-9');
    toolCall(ctx, 'escalate_ticket');
    toolCall(ctx, 'wipe_disk', { sideEffect: 'destructive' });
    const vs = run(ctx.events, { type, agent }).verdicts;
    expect(vs[0]?.contributions[0]?.feature).toBe('tool.agent_unseen');
    expect(vs[0]?.contributions[0]?.reason).toMatch(
      /agent agent-9 has never used for type summarize_ticket \(other agents use it in 2.4% of tasks\)/,
    );
    expect(vs[0]?.decision).toBe('allow');
    expect(vs[1]?.contributions[0]?.feature).toBe('tool.unseen');
    expect(vs[1]?.decision).toBe('revoke');
  });
});

describe('thresholds and shadow mode', () => {
  const events = attackTask('lateral_movement').events;
  it('applies per-type thresholds', () => {
    const base = run(events, trained.lookup).max;
    expect(base.decision).toBe('revoke');
    const lenient = resolveDetectorConfig({ perTaskType: { [TYPE]: { revokeThreshold: 100, alertThreshold: 90 } } });
    expect(run(events, trained.lookup, lenient).max.decision).toBe('allow');
    const strict = resolveDetectorConfig({ alertThreshold: 10, revokeThreshold: 20 });
    expect(run(benignTask(TYPE, 'b', rng(2), { busy: 2 }).events, trained.lookup, strict).max.score).toBeLessThan(100);
  });

  it('records the decision but flags shadow (global or per type)', () => {
    const globalShadow = resolveDetectorConfig({ shadow: true });
    expect(run(events, trained.lookup, globalShadow).max).toMatchObject({ decision: 'revoke', shadow: true });
    const typeShadow = resolveDetectorConfig({ perTaskType: { [TYPE]: { shadow: true } } });
    expect(run(events, trained.lookup, typeShadow).max).toMatchObject({ decision: 'revoke', shadow: true });
    expect(run(events, trained.lookup).max.shadow).toBe(false);
  });
});

describe('events without details', () => {
  it('scores spans that lack their tool/data/privilege detail without throwing', () => {
    const s = newTaskState({ tenant: 't1', taskId: 'bare', taskType: TYPE, agentId: 'a', startMs: T0 });
    for (const kind of ['tool_call', 'data_access', 'privilege_change'] as const) {
      const e = {
        id: kind,
        tenant: 't1',
        kind,
        taskId: 'bare',
        taskType: TYPE,
        agentId: 'a',
        traceId: 'x',
        spanId: kind,
        parentSpanId: '',
        name: kind,
        startMs: T0,
        endMs: T0 + 1,
        error: false,
        attributes: {},
      };
      observe(s, e);
      expect(score(e, s, trained.lookup, DEFAULT_DETECTOR_CONFIG).score).toBeGreaterThanOrEqual(0);
    }
  });
});
