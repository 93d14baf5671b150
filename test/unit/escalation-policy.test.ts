/**
 * Escalation that cannot cascade (services/core/escalation-policy.ts, services/killswitch/escalation.ts): which
 * revocations count, the narrowest scope they share, and the bound — unconfident revocations never escalate, one
 * false positive takes down nothing beyond itself, a block reaches only its scope, escalation kills never count.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Contribution, EscalationBasis, Revocation, Verdict } from '../../schemas/events.ts';
import {
  CONFIDENCE_MARGIN,
  ESCALATION_ACTOR,
  MAX_SCOPE_VALUE_LENGTH,
  confidenceBar,
  countsTowardEscalation,
  covers,
  detectorBasis,
  noteScope,
  parseEscalationBasis,
  sharedScope,
  strongGroups,
} from '../../services/core/escalation-policy.ts';
import type { EscalationScope } from '../../services/core/escalation-policy.ts';
import { EscalationWindow, MAX_BLOCKS_PER_AGENT } from '../../services/killswitch/escalation.ts';

const POLICY = { revocations: 3, windowMs: 600_000, blockMs: 900_000 };

function revocation(
  taskId: string,
  timeMs: number,
  escalation: EscalationBasis | undefined,
  extra: Partial<Revocation> = {},
): Revocation {
  return {
    id: `r-${taskId}-${String(timeMs)}`,
    tenant: 'acme',
    taskId,
    taskType: 'mail',
    agentId: 'assistant',
    action: 'revoke',
    source: 'detector',
    actor: 'tripline',
    reason: 'r',
    reasons: [],
    score: 100,
    eventId: 'e',
    timeMs,
    ...(escalation === undefined ? {} : { escalation }),
    ...extra,
  };
}

const confident = (scope: EscalationScope = {}): EscalationBasis => ({ counts: true, basis: 'hard_rule', ...scope });

describe('which revocations count', () => {
  const corroborated: Contribution[] = [
    { feature: 'data.rows_per_task', score: 90, reason: '' },
    { feature: 'egress.host_unseen', score: 60, reason: '' },
  ];
  const verdict = (
    score: number,
    regime: Verdict['regime'],
    hardRule?: string,
    contributions: Contribution[] = corroborated,
  ): Verdict => ({
    score,
    decision: 'revoke',
    regime,
    contributions,
    shadow: false,
    ...(hardRule === undefined ? {} : { hardRule }),
  });

  it('counts hard rules in any regime and corroborated confident scores off warm-up only', () => {
    expect(confidenceBar(80)).toBe(80 + CONFIDENCE_MARGIN);
    expect(confidenceBar(95)).toBe(100);
    expect(detectorBasis(verdict(100, 'rules', 'after_end', []), 80, {})).toEqual({ counts: true, basis: 'hard_rule' });
    expect(detectorBasis(verdict(100, 'rules'), 80, {}).counts).toBe(false);
    expect(detectorBasis(verdict(100, 'rules'), 80, {}).basis).toBe('warmup');
    expect(detectorBasis(verdict(94.9, 'type_baseline'), 80, {}).basis).toBe('below_confidence');
    expect(detectorBasis(verdict(95, 'agent_baseline'), 80, { endUser: 'u' })).toEqual({
      counts: true,
      basis: 'confident_score',
      endUser: 'u',
    });
    expect(detectorBasis(verdict(Number.NaN, 'type_baseline'), 80, {}).counts).toBe(false);
  });

  it('does not count one kind of evidence, however strong: a payment to a new account alone', () => {
    const alone = [
      { feature: 'tool.counterparty_flow', score: 97, reason: '' },
      { feature: 'tool.rare', score: 60, reason: '' },
      { feature: 'egress.distinct_hosts', score: 49.9, reason: '' },
    ];
    expect(strongGroups(alone)).toBe(1);
    expect(detectorBasis(verdict(97, 'type_baseline', undefined, alone), 80, {})).toEqual({
      counts: false,
      basis: 'uncorroborated',
    });
    expect(strongGroups(corroborated)).toBe(2);
  });

  it('never counts an escalation kill or a restore, whatever the message says; an older one by who made it', () => {
    expect(countsTowardEscalation(revocation('t', 0, confident(), { actor: ESCALATION_ACTOR }))).toBe(false);
    expect(countsTowardEscalation(revocation('t', 0, confident(), { action: 'restore' }))).toBe(false);
    expect(countsTowardEscalation(revocation('t', 0, undefined))).toBe(false);
    expect(countsTowardEscalation(revocation('t', 0, undefined, { source: 'manual', actor: 'alice' }))).toBe(true);
    expect(countsTowardEscalation(revocation('t', 0, { counts: false, basis: 'below_confidence' }))).toBe(false);
  });
});

describe('scope claims', () => {
  it('takes the first claim of each field, bounded, preferring the GenAI conversation id', () => {
    const scope: EscalationScope = {};
    noteScope(scope, { 'session.id': 's-1', 'gen_ai.conversation.id': 'c-1' });
    noteScope(scope, { 'enduser.id': 42 });
    noteScope(scope, { 'enduser.id': 'someone-else', 'gen_ai.conversation.id': 'c-2' });
    expect(scope).toEqual({ endUser: '42', conversation: 'c-1' });
    const long: EscalationScope = {};
    noteScope(long, { 'enduser.id': 'x'.repeat(1000), 'session.id': true });
    expect(long).toEqual({ endUser: 'x'.repeat(MAX_SCOPE_VALUE_LENGTH) });
  });

  it('never throws on bad input and reads back only valid bases', () => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), (attributes, basis) => {
        const scope = noteScope({}, attributes as Record<string, string>);
        for (const value of Object.values(scope)) expect((value as string).length).toBeLessThanOrEqual(128);
        const parsed = parseEscalationBasis(basis);
        if (parsed !== undefined) expect(typeof parsed.counts).toBe('boolean');
      }),
      { numRuns: 500 },
    );
    expect(parseEscalationBasis({ counts: true, basis: 'manual', endUser: 7, conversation: 'c' })).toEqual({
      counts: true,
      basis: 'manual',
      conversation: 'c',
    });
  });

  it('shares only what every scope names alike, and a scoped block reaches only work that names it', () => {
    expect(
      sharedScope([
        { endUser: 'u', conversation: 'c' },
        { endUser: 'u', conversation: 'c' },
      ]),
    ).toEqual({
      endUser: 'u',
      conversation: 'c',
    });
    expect(sharedScope([{ endUser: 'u', conversation: 'c' }, { endUser: 'u' }])).toEqual({ endUser: 'u' });
    expect(sharedScope([{ endUser: 'u' }, { endUser: 'v' }])).toEqual({});
    expect(covers(undefined, {})).toBe(true);
    expect(covers({ endUser: 'u' }, { endUser: 'u', conversation: 'c' })).toBe(true);
    expect(covers({ endUser: 'u' }, { endUser: 'v' })).toBe(false);
    expect(covers({ endUser: 'u' }, {})).toBe(false);
  });
});

/** Revocations that must never count: unconfident, warm-up, an escalation's own, an older detector one, restores. */
const uncounted = fc.oneof(
  fc.constant<EscalationBasis | undefined>({ counts: false, basis: 'below_confidence' }),
  fc.constant<EscalationBasis | undefined>({ counts: false, basis: 'warmup', endUser: 'u-1' }),
  fc.constant<EscalationBasis | undefined>(undefined),
);

describe('the bound', () => {
  it('any sequence of revocations that do not count never escalates (tasks, times, scopes, escalation kills)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            task: fc.integer({ min: 0, max: 20 }),
            dt: fc.integer({ min: 0, max: 120_000 }),
            basis: uncounted,
            escalationKill: fc.boolean(),
            restore: fc.boolean(),
          }),
          { maxLength: 200 },
        ),
        (steps) => {
          const window = new EscalationWindow({ ...POLICY, revocations: 2 });
          let t = 0;
          for (const step of steps) {
            t += step.dt;
            const extra: Partial<Revocation> = step.escalationKill
              ? { actor: ESCALATION_ACTOR, escalation: { counts: true, basis: 'manual' } }
              : step.restore
                ? { action: 'restore', source: 'manual', actor: 'alice' }
                : {};
            expect(window.observe(revocation(`t-${String(step.task)}`, t, step.basis, extra))).toBeUndefined();
          }
          expect(window.active(t)).toEqual([]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('one false positive, however confident, escalates nothing (threshold 2 or more)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 10 }), fc.integer({ min: 0, max: 1e12 }), (threshold, timeMs) => {
        const window = new EscalationWindow({ ...POLICY, revocations: threshold });
        expect(window.observe(revocation('fp', timeMs, confident({ endUser: 'u' })))).toBeUndefined();
        // The same task revoked again (a replay, a second event) is still one task.
        expect(window.observe(revocation('fp', timeMs + 1, confident({ endUser: 'u' })))).toBeUndefined();
      }),
    );
  });

  it("escalation kills never feed the window: a block's own revocations cannot cause the next one", () => {
    const window = new EscalationWindow(POLICY);
    window.observe(revocation('a', 0, confident()));
    window.observe(revocation('b', 1, confident()));
    for (let i = 0; i < 50; i += 1)
      expect(
        window.observe(revocation(`x-${String(i)}`, 2 + i, confident(), { actor: ESCALATION_ACTOR })),
      ).toBeUndefined();
    expect(window.observe(revocation('c', 100, confident()))).toMatchObject({ taskIds: ['a', 'b', 'c'] });
  });

  it('blocks the end user the repeats share, not the agent; the whole agent only when they share none', () => {
    const window = new EscalationWindow(POLICY);
    window.observe(revocation('u1-a', 0, confident({ endUser: 'u1', conversation: 'c1' })));
    window.observe(revocation('u1-b', 1000, confident({ endUser: 'u1', conversation: 'c2' })));
    const block = window.observe(revocation('u1-c', 2000, { counts: true, basis: 'manual', endUser: 'u1' }));
    expect(block).toMatchObject({ agentId: 'assistant', scope: { endUser: 'u1' }, untilMs: 902_000 });
    expect(window.blocking('acme', 'assistant', { endUser: 'u1', conversation: 'c9' }, 5000)).toBe(block);
    expect(window.blocking('acme', 'assistant', { endUser: 'u2' }, 5000)).toBeUndefined();
    expect(window.blocking('acme', 'assistant', {}, 5000)).toBeUndefined();
    expect(window.blocking('acme', 'assistant', { endUser: 'u1' }, 902_000)).toBeUndefined();

    // Three more confident kills for three different people: nothing narrower explains them.
    window.observe(revocation('u2-a', 3000, confident({ endUser: 'u2' })));
    window.observe(revocation('u3-a', 4000, confident({ endUser: 'u3' })));
    const whole = window.observe(revocation('u4-a', 5000, confident({ endUser: 'u4' })));
    expect(whole).toBeDefined();
    expect(whole?.scope).toBeUndefined();
    expect(window.blocking('acme', 'assistant', {}, 6000)).toBe(whole);
    expect(window.blocks('acme', 'assistant', 6000)).toHaveLength(2);
  });

  it('adds no block a block in force already covers, and bounds the scoped blocks of one agent', () => {
    const window = new EscalationWindow({ ...POLICY, revocations: 2 });
    let t = 0;
    const twice = (scope: EscalationScope): ReturnType<EscalationWindow['observe']> => {
      window.observe(revocation(`a-${String(t)}`, (t += 1), confident(scope)));
      return window.observe(revocation(`b-${String(t)}`, (t += 1), confident(scope)));
    };
    expect(twice({ endUser: 'u', conversation: 'c' })?.scope).toEqual({ endUser: 'u', conversation: 'c' });
    expect(twice({ endUser: 'u' })?.scope).toEqual({ endUser: 'u' });
    expect(twice({ endUser: 'u', conversation: 'd' })).toBeUndefined();
    for (let i = 2; i < MAX_BLOCKS_PER_AGENT; i += 1) expect(twice({ endUser: `v${String(i)}` })?.scope).toBeDefined();
    expect(window.blocks('acme', 'assistant', t)).toHaveLength(MAX_BLOCKS_PER_AGENT);
    expect(twice({ endUser: 'one-too-many' })?.scope).toBeUndefined();
  });
});
