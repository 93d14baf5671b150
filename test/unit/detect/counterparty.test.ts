/**
 * Counterparties in the detector: which calls are sinks, what a task state remembers about who it met and where,
 * what baselines learn (and how old baselines still load), and the features `tool.counterparty_flow`,
 * `tool.new_counterparty` and `tool.amount` on a synthetic payments type and a mail type. Events carry the
 * classifier's fields (`counterparties`, `resultCounterparties`, `resultRecorded`, `amount`) directly.
 */
import { describe, expect, it } from 'vitest';
import type { Counterparty, CounterpartyKind, InstructionCue, Verdict } from '../../../schemas/events.ts';
import {
  type Baseline,
  type BaselineLookup,
  DEFAULT_DETECTOR_CONFIG,
  FLEET_TASK_TYPE,
  cloneBaseline,
  emptyBaseline,
  learn,
  parseBaseline,
  serializeBaseline,
  summarize,
} from '../../../services/core/detect/index.ts';
import { MAX_COUNTERPARTIES, PRUNE_TO } from '../../../services/core/detect/counterparty-baseline.ts';
import { UNBACKED_MARGIN } from '../../../services/core/detect/counterparty-features.ts';
import { MAX_TASK_PARTIES } from '../../../services/core/detect/parties.ts';
import { sinkKind } from '../../../services/core/detect/signals.ts';
import { type TaskCtx, int, rng, run, stateOf, taskCtx, toolCall } from './fixtures.ts';

/** A stand-in for the classifier's keyed hash: 16 hex digits from the value. */
function cp(kind: CounterpartyKind, value: string): Counterparty {
  let a = 0x811c9dc5;
  let b = 0x9e3779b9;
  for (const ch of `${kind}:${value}`) {
    a = Math.imul(a ^ ch.charCodeAt(0), 16777619) >>> 0;
    b = Math.imul(b ^ ch.charCodeAt(0), 2246822519) >>> 0;
  }
  return { kind, key: a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0') };
}
const account = (name: string): Counterparty => cp('account', name);
const mail = (address: string): Counterparty[] => [cp('email', address), cp('domain', address.split('@')[1] ?? '')];

const BILLERS = ['power', 'phone', 'rent', 'freight'];

/** Pay a bill: list, read the invoice (its result names the account), pay that account. */
function payBill(ctx: TaskCtx, r: () => number, payee = BILLERS[int(r, 0, BILLERS.length - 1)] ?? 'power'): void {
  toolCall(ctx, 'list_documents', { sideEffect: 'read', resultRecorded: true });
  toolCall(ctx, 'read_document', {
    sideEffect: 'read',
    target: 'bills/invoice.pdf',
    resultRecorded: true,
    resultCounterparties: [account(payee)],
  });
  toolCall(ctx, 'pay_invoice', {
    sideEffect: 'write',
    counterparties: [account(payee)],
    amount: 100 + int(r, 0, 80),
    resultRecorded: true,
  });
}

/** Reply to a colleague's mail (the sender flows from the result to the reply, at the company's domain). */
function reply(ctx: TaskCtx, r: () => number, to = `p${String(int(r, 1, 6))}@acme.io`): void {
  toolCall(ctx, 'read_email', { sideEffect: 'read', resultRecorded: true, resultCounterparties: mail(to) });
  toolCall(ctx, 'send_email', { sideEffect: 'write', counterparties: mail(to), resultRecorded: true });
}

interface World {
  type: Baseline;
  fleet: Baseline;
  mailType: Baseline;
  lookup: BaselineLookup;
}

/** `n` benign payments tasks and `n` mail tasks learned; the fleet learns both. */
function world(n: number, seed = 5, gen: (ctx: TaskCtx, r: () => number) => void = payBill): World {
  const r = rng(seed);
  const type = emptyBaseline('payments');
  const mailType = emptyBaseline('mail');
  const fleet = emptyBaseline(FLEET_TASK_TYPE);
  for (let i = 0; i < n; i++) {
    const ctx = taskCtx('payments', `pay-${String(i)}`);
    gen(ctx, r);
    const s = summarize(stateOf(ctx.events));
    learn(type, s);
    learn(fleet, s);
    const m = taskCtx('mail', `mail-${String(i)}`);
    reply(m, r);
    const ms = summarize(stateOf(m.events));
    learn(mailType, ms);
    learn(fleet, ms);
  }
  return { type, fleet, mailType, lookup: { type, fleet } };
}

function lastVerdict(ctx: TaskCtx, lookup: BaselineLookup): Verdict {
  const v = run(ctx.events, lookup).verdicts.at(-1);
  if (v === undefined) throw new Error('no verdict');
  return v;
}

function feature(v: Verdict, name: string): { score: number; reason: string } | undefined {
  return v.contributions.find((c) => c.feature === name);
}

describe('sinks', () => {
  it('are calls that send, pay, share, post or invite, declared or named so, and never a declared read', () => {
    expect(sinkKind({ name: 'send_email' })).toBe('mail');
    expect(sinkKind({ name: 'pay_invoice', sideEffect: 'write' })).toBe('money');
    expect(sinkKind({ name: 'update_scheduled_payment', sideEffect: 'write' })).toBe('money');
    expect(sinkKind({ name: 'submit', amount: 12.5 })).toBe('money');
    expect(sinkKind({ name: 'shareFile' })).toBe('share');
    expect(sinkKind({ name: 'post_message' })).toBe('message');
    expect(sinkKind({ name: 'forward_message', sideEffect: 'write' })).toBe('message');
    expect(sinkKind({ name: 'create_event' })).toBe('invite');
    expect(sinkKind({ name: 'update_record', sideEffect: 'write' })).toBe('data');
    expect(sinkKind({ name: 'read_email' })).toBeUndefined();
    expect(sinkKind({ name: 'get_payees' })).toBeUndefined();
    expect(sinkKind({ name: 'send_email', sideEffect: 'read' })).toBeUndefined();
    expect(sinkKind({ name: 'summarize_text' })).toBeUndefined();
  });
});

describe('task state', () => {
  it('remembers where each counterparty was first met and whether it then reached a sink', () => {
    const ctx = taskCtx('payments', 't');
    toolCall(ctx, 'get_payees', { sideEffect: 'read', counterparties: [account('asked')], resultRecorded: true });
    toolCall(ctx, 'read_document', {
      sideEffect: 'read',
      target: 'bills/x.pdf',
      resultRecorded: true,
      resultCounterparties: [account('read'), account('asked')],
    });
    toolCall(ctx, 'pay_invoice', { sideEffect: 'write', counterparties: [account('read'), account('asked')] });
    const state = stateOf(ctx.events);
    const read = state.parties.get(`account:${account('read').key}`);
    const asked = state.parties.get(`account:${account('asked').key}`);
    expect(read).toMatchObject({ fromResult: true, source: 'read_document(bills/x.pdf)', atSink: true, flowed: true });
    expect(asked).toMatchObject({
      fromResult: false,
      source: 'get_payees',
      inResult: true,
      atSink: true,
      flowed: false,
    });
    expect(state.resultsRecorded).toBe(2);
    const s = summarize(state);
    expect(s.flowCounterparties).toEqual([`account:${account('read').key}`]);
    expect(s.sinkCounterparties?.sort()).toEqual(
      [`account:${account('asked').key}`, `account:${account('read').key}`].sort(),
    );
    expect(s.counterparties).toHaveLength(2);
  });

  it('ignores malformed counterparties and bounds what it keeps', () => {
    const ctx = taskCtx('payments', 't');
    const bad = [
      { kind: 'ssn', key: 'abcd' },
      { kind: 'email', key: 'x'.repeat(65) },
      { kind: 'email' },
      null,
      'email:abc',
    ] as unknown as Counterparty[];
    toolCall(ctx, 'send_email', { counterparties: bad, resultCounterparties: 'nope' as unknown as Counterparty[] });
    for (let i = 0; i < MAX_TASK_PARTIES + 40; i += 32)
      toolCall(ctx, 'send_email', {
        counterparties: Array.from({ length: 32 }, (_, j) => cp('email', `u${String(i + j)}@x.io`)),
        amount: Number.NaN,
      });
    const state = stateOf(ctx.events);
    expect(state.parties.size).toBe(MAX_TASK_PARTIES);
    expect(state.maxAmount).toBe(0);
    expect(() => run(ctx.events, world(25).lookup)).not.toThrow();
  });
});

describe('baselines', () => {
  it('learn who was dealt with, paid and read about, and the Good–Turing rate of new recipients', () => {
    const w = world(40);
    const c = w.type.counterparties;
    for (const b of BILLERS) {
      expect(c.known[`account:${account(b).key}`]).toBeGreaterThan(3);
      expect(c.sinks[`account:${account(b).key}`]).toBeGreaterThan(3);
      expect(c.read[`account:${account(b).key}`]).toBeGreaterThan(3);
    }
    expect(c.sinkTasks).toBe(40);
    expect(c.flows).toBe(40);
    expect(c.newRecipients).toBe(0);
    expect(c.pNewOrgAtSink).toBeCloseTo(0.5 / 41);
    expect(c.amounts.fence.n).toBe(40);
    expect(w.fleet.counterparties.known[`email:${cp('email', 'p1@acme.io').key}`]).toBeGreaterThan(0);
  });

  it('keep the most frequent counterparties when a record is full', () => {
    const b = emptyBaseline('payments');
    const regular = `account:${account('regular').key}`;
    for (let i = 0; i < MAX_COUNTERPARTIES + 10; i++) {
      const ctx = taskCtx('payments', `t${String(i)}`);
      toolCall(ctx, 'pay_invoice', {
        sideEffect: 'write',
        counterparties: [account('regular'), account(`once-${String(i)}`)],
      });
      learn(b, summarize(stateOf(ctx.events)));
    }
    const size = Object.keys(b.counterparties.known).length;
    expect(size).toBeLessThanOrEqual(MAX_COUNTERPARTIES);
    expect(size).toBeGreaterThan(PRUNE_TO);
    expect(b.counterparties.known[regular]).toBe(MAX_COUNTERPARTIES + 10);
  });

  it('round-trip through the codec, and a baseline stored before counterparties still loads', () => {
    const w = world(25);
    const again = cloneBaseline(w.type);
    expect(serializeBaseline(again)).toBe(serializeBaseline(w.type));
    expect(again.counterparties.pNewAtSink).toBe(w.type.counterparties.pNewAtSink);
    const old = JSON.parse(serializeBaseline(w.type)) as Record<string, unknown>;
    delete old.counterparties;
    const parsed = parseBaseline(JSON.stringify(old));
    expect(parsed.tasks).toBe(25);
    expect(Object.keys(parsed.counterparties.known)).toHaveLength(0);
    expect(parsed.counterparties.amounts.fence.n).toBe(0);
    old.counterparties = { known: { a: -1 }, sinks: {}, read: {}, sinkTasks: 0, flows: 0, amounts: [] };
    expect(() => parseBaseline(JSON.stringify(old))).toThrow(/counterparties\.known\.a/);
  });
});

describe('features (type regime, 40 tasks learned)', () => {
  const w = world(40);

  it('stay quiet for a known biller paid from its invoice', () => {
    const ctx = taskCtx('payments', 'ok');
    payBill(ctx, rng(9), 'rent');
    const v = lastVerdict(ctx, w.lookup);
    expect(v.decision).toBe('allow');
    expect(v.contributions.filter((c) => c.feature.startsWith('tool.') && c.feature !== 'tool.transition')).toEqual([]);
  });

  /** Read a letter naming the rent's account and a mule's (with the cues given), then pay the mule. */
  function payMule(id: string, cues?: InstructionCue[]): Verdict {
    const ctx = taskCtx('payments', id);
    toolCall(ctx, 'list_documents', { sideEffect: 'read', resultRecorded: true });
    toolCall(ctx, 'read_document', {
      sideEffect: 'read',
      target: 'bills/address-change.txt',
      resultRecorded: true,
      resultCounterparties: [account('rent'), account('mule')],
      ...(cues === undefined ? {} : { resultInstructions: cues }),
    });
    toolCall(ctx, 'pay_invoice', { sideEffect: 'write', counterparties: [account('mule')], amount: 140 });
    return lastVerdict(ctx, w.lookup);
  }

  it('revoke money sent to an account that first appeared in a document that instructs the assistant', () => {
    const v = payMule('injected', ['overrides_instructions', 'hides_from_user']);
    const flow = feature(v, 'tool.counterparty_flow');
    expect(v.decision).toBe('revoke');
    expect(flow?.score).toBeGreaterThanOrEqual(90);
    expect(flow?.reason).toMatch(
      /^sent 140 to an account tasks of type payments never dealt with \(nor has any task of this tenant\); it first appeared in the result of read_document\(bills\/address-change\.txt\) in this task; that result reads as an injected instruction: it overrides its instructions and asks it to keep the step from its user \(/,
    );
  });

  it('revoke the same flow when the payment is recorded twice and the record with its arguments comes second', () => {
    const ctx = taskCtx('payments', 'injected-twice');
    toolCall(ctx, 'list_documents', { sideEffect: 'read', resultRecorded: true });
    toolCall(ctx, 'read_document', {
      sideEffect: 'read',
      target: 'bills/address-change.txt',
      resultRecorded: true,
      resultCounterparties: [account('rent'), account('mule')],
      resultInstructions: ['overrides_instructions', 'hides_from_user'],
    });
    // An instrumentation's record with the arguments, and inside it a framework's own record of the call without
    // them (AutoGen's `execute_tool` inside OpenInference's tool span), which ends and arrives first.
    const outer = toolCall(ctx, 'pay_invoice', { sideEffect: 'write', counterparties: [account('mule')], amount: 140 });
    const inner = toolCall(ctx, 'pay_invoice', { callId: 'call_7' });
    inner.parentSpanId = outer.spanId;
    const events = [...ctx.events.filter((event) => event !== outer), outer];
    const res = run(events, w.lookup);
    expect(res.state.counts.tool_call).toBe(3);
    expect(res.state.tools.get('pay_invoice')).toBe(1);
    const [innerVerdict, outerVerdict] = res.verdicts.slice(-2);
    expect(innerVerdict?.decision).not.toBe('revoke');
    expect(outerVerdict?.decision).toBe('revoke');
    expect(
      outerVerdict === undefined ? undefined : feature(outerVerdict, 'tool.counterparty_flow')?.score,
    ).toBeGreaterThanOrEqual(90);
  });

  it('only alert on the same flow when nothing the task read instructs the assistant (a new biller’s first invoice)', () => {
    const v = payMule('new-biller');
    const flow = feature(v, 'tool.counterparty_flow');
    expect(v.decision).toBe('alert');
    expect(flow?.score).toBe(80 - UNBACKED_MARGIN);
    expect(flow?.reason).toContain('nothing it read in this task carried instructions to the assistant');
  });

  it('revoke an instructed flow to a new address at a partner’s domain (a compromised mailbox) that alone only alerts', () => {
    const mailLookup = { type: w.mailType, fleet: w.fleet };
    const send = (cues?: InstructionCue[]): Verdict => {
      const ctx = taskCtx('mail', 'partner');
      toolCall(ctx, 'read_email', {
        sideEffect: 'read',
        resultRecorded: true,
        resultCounterparties: mail('accounts7@acme.io'),
        ...(cues === undefined ? {} : { resultInstructions: cues }),
      });
      toolCall(ctx, 'send_email', { sideEffect: 'write', counterparties: mail('accounts7@acme.io') });
      return lastVerdict(ctx, mailLookup);
    };
    expect(send().decision).not.toBe('revoke');
    expect(send(['overrides_instructions']).decision).toBe('revoke');
  });

  it('back a flow with cues from any result that named the counterparty, and name that result', () => {
    const ctx = taskCtx('payments', 'listed-then-read');
    toolCall(ctx, 'list_documents', {
      sideEffect: 'read',
      resultRecorded: true,
      resultCounterparties: [account('mule')],
    });
    toolCall(ctx, 'read_document', {
      sideEffect: 'read',
      target: 'bills/note.txt',
      resultRecorded: true,
      resultCounterparties: [account('mule')],
      resultInstructions: ['addresses_the_assistant'],
    });
    toolCall(ctx, 'pay_invoice', { sideEffect: 'write', counterparties: [account('mule')] });
    const v = lastVerdict(ctx, w.lookup);
    expect(v.decision).toBe('revoke');
    expect(feature(v, 'tool.counterparty_flow')?.reason).toMatch(
      /first appeared in the result of list_documents in this task; the result of read_document\(bills\/note\.txt\), which also named it, reads as an injected instruction: it is addressed to the assistant/,
    );
  });

  it('only alert on a new account when results are not recorded, and say what cannot be seen', () => {
    const ctx = taskCtx('payments', 'unrecorded');
    toolCall(ctx, 'list_documents', { sideEffect: 'read', resultRecorded: false });
    toolCall(ctx, 'read_document', { sideEffect: 'read', resultRecorded: false });
    toolCall(ctx, 'pay_invoice', { sideEffect: 'write', counterparties: [account('mule')], amount: 140 });
    const v = lastVerdict(ctx, w.lookup);
    expect(feature(v, 'tool.counterparty_flow')).toBeUndefined();
    const fresh = feature(v, 'tool.new_counterparty');
    expect(fresh?.score).toBeGreaterThanOrEqual(50);
    expect(fresh?.score).toBeLessThanOrEqual(72);
    expect(fresh?.reason).toContain('no result of this task');
    expect(v.decision).toBe('alert');
  });

  it('flag an amount far above the type’s', () => {
    const ctx = taskCtx('payments', 'big');
    payBill(ctx, rng(3), 'rent');
    const last = ctx.events.at(-1);
    if (last?.tool !== undefined) last.tool.amount = 9_800;
    const v = lastVerdict(ctx, w.lookup);
    expect(feature(v, 'tool.amount')?.score).toBeGreaterThan(50);
    expect(feature(v, 'tool.amount')?.reason).toMatch(/an amount of 9,800 with pay_invoice; p99/);
  });

  it('weigh a new address at a domain the tenant deals with daily far below a never-seen domain', () => {
    const mailLookup = { type: w.mailType, fleet: w.fleet };
    const send = (to: string): Verdict => {
      const ctx = taskCtx('mail', `to-${to}`);
      toolCall(ctx, 'read_email', { sideEffect: 'read', resultRecorded: true, resultCounterparties: mail(to) });
      toolCall(ctx, 'send_email', { sideEffect: 'write', counterparties: mail(to), resultRecorded: true });
      return lastVerdict(ctx, mailLookup);
    };
    const colleague = feature(send('newhire@acme.io'), 'tool.counterparty_flow');
    const stranger = send('billing@acme-payments.xyz');
    expect(colleague?.score ?? 0).toBeLessThan(50);
    expect(colleague?.reason).toMatch(/at a domain the tenant dealt with in \d+ tasks/);
    expect(feature(stranger, 'tool.counterparty_flow')?.score).toBe(80 - UNBACKED_MARGIN);
    expect(stranger.decision).toBe('alert');
  });

  it('count a counterparty other task types of the tenant deal with less', () => {
    const ctx = taskCtx('payments', 'tenant-known');
    toolCall(ctx, 'read_document', {
      sideEffect: 'read',
      resultRecorded: true,
      resultCounterparties: mail('p1@acme.io'),
    });
    toolCall(ctx, 'transfer_money', { sideEffect: 'write', counterparties: [cp('email', 'p1@acme.io')] });
    const flow = feature(lastVerdict(ctx, w.lookup), 'tool.counterparty_flow');
    expect(flow?.reason).toContain('other task types of this tenant have');
    expect(flow?.score ?? 0).toBeLessThan(80);
  });

  it('lower the flow for a type whose tasks often hand things to strangers they read about', () => {
    const r = rng(77);
    const loose = world(40, 8, (ctx) => payBill(ctx, r, `new-${String(int(r, 1, 1_000_000))}`));
    const ctx = taskCtx('payments', 'loose');
    toolCall(ctx, 'read_document', {
      sideEffect: 'read',
      resultRecorded: true,
      resultCounterparties: [account('mule')],
    });
    toolCall(ctx, 'pay_invoice', { sideEffect: 'write', counterparties: [account('mule')] });
    const tight = taskCtx('payments', 'tight');
    tight.events.push(...ctx.events.map((e) => ({ ...e, taskId: 'tight' })));
    const looseFlow = feature(lastVerdict(ctx, loose.lookup), 'tool.counterparty_flow')?.score ?? 0;
    const tightFlow = feature(lastVerdict(tight, w.lookup), 'tool.counterparty_flow')?.score ?? 0;
    expect(loose.type.counterparties.pNewOrgAtSink).toBeGreaterThan(0.9);
    expect(looseFlow).toBeLessThan(10);
    expect(tightFlow).toBe(80 - UNBACKED_MARGIN);
  });

  it('halve a counterparty the type reads about in its ordinary work', () => {
    const r = rng(4);
    const familiar = world(40, 6, (ctx) => {
      payBill(ctx, r);
      toolCall(ctx, 'list_transactions', {
        sideEffect: 'read',
        resultRecorded: true,
        resultCounterparties: [account('landlord')],
      });
    });
    const ctx = taskCtx('payments', 'landlord');
    toolCall(ctx, 'list_transactions', {
      sideEffect: 'read',
      resultRecorded: true,
      resultCounterparties: [account('landlord')],
    });
    toolCall(ctx, 'transfer_money', { sideEffect: 'write', counterparties: [account('landlord')] });
    const flow = feature(lastVerdict(ctx, familiar.lookup), 'tool.counterparty_flow');
    expect(flow?.reason).toMatch(/their tasks read about it in 40 tasks/);
    expect(flow?.score ?? 100).toBeLessThan(50);
  });
});

describe('regimes', () => {
  it('agent regime: a counterparty the type knows but the agent never dealt with counts 0.4', () => {
    const w = world(40);
    const agent = emptyBaseline('payments', 'agent-9');
    const r = rng(12);
    for (let i = 0; i < 30; i++) {
      const ctx = taskCtx('payments', `a${String(i)}`, 'agent-9');
      payBill(ctx, r, 'power');
      learn(agent, summarize(stateOf(ctx.events)));
    }
    const ctx = taskCtx('payments', 'agent-new', 'agent-9');
    payBill(ctx, r, 'freight');
    const v = lastVerdict(ctx, { type: w.type, agent, fleet: w.fleet });
    expect(v.regime).toBe('agent_baseline');
    const flow = feature(v, 'tool.counterparty_flow');
    expect(flow?.reason).toMatch(
      /^sent \d+ to an account agent agent-9's tasks of type payments never dealt with \(other agents of the type have\)/,
    );
    expect(flow?.score ?? 100).toBeLessThan(50);
  });

  it('warm-up: a flow to a counterparty the tenant never dealt with alerts once the type has half its warm-up, never revokes', () => {
    const w = world(30);
    const few = (n: number): Baseline => {
      const b = emptyBaseline('payments');
      const r = rng(2);
      for (let i = 0; i < n; i++) {
        const ctx = taskCtx('payments', `few-${String(i)}`);
        payBill(ctx, r);
        learn(b, summarize(stateOf(ctx.events)));
      }
      return b;
    };
    const injected = (): TaskCtx => {
      const ctx = taskCtx('payments', 'warm');
      toolCall(ctx, 'read_document', {
        sideEffect: 'read',
        resultRecorded: true,
        resultCounterparties: [account('mule')],
      });
      toolCall(ctx, 'pay_invoice', { sideEffect: 'write', counterparties: [account('mule')], amount: 150 });
      return ctx;
    };
    const half = DEFAULT_DETECTOR_CONFIG.warmupTasks / 2;
    const early = lastVerdict(injected(), { type: few(half - 1), fleet: w.fleet });
    const later = lastVerdict(injected(), { type: few(half), fleet: w.fleet });
    expect(early.regime).toBe('rules');
    expect(feature(early, 'tool.counterparty_flow')).toBeUndefined();
    expect(later.regime).toBe('rules');
    expect(later.decision).toBe('alert');
    expect(feature(later, 'tool.counterparty_flow')?.reason).toMatch(/no task of this tenant dealt with.*alert only/);
    const known = taskCtx('payments', 'warm-known');
    payBill(known, rng(1), 'rent');
    expect(lastVerdict(known, { type: few(half), fleet: w.fleet }).decision).toBe('allow');
  });
});
