/**
 * One test (or a few) per feature: each builds a task of a warmed-up type (30 benign tasks learned) that
 * differs from normal in one way and checks that feature's contribution, its score and its sentence.
 */
import { describe, expect, it } from 'vitest';
import type { Contribution, Verdict } from '../../../schemas/events.ts';
import { emptyBaseline, learn, summarize } from '../../../services/core/detect/index.ts';
import {
  type TaskCtx,
  benignTask,
  dataAccess,
  gap,
  privilegeChange,
  rng,
  run,
  stateOf,
  summarizeTicket,
  taskCtx,
  toolCall,
  train,
} from './fixtures.ts';

const TYPE = 'summarize_ticket';
const trained = train(TYPE, 30, 11, 30);

function normalStart(id: string): TaskCtx {
  const ctx = taskCtx(TYPE, id);
  summarizeTicket(ctx, rng(1234));
  return ctx;
}

/** The verdict on one tool call after a normal task's start. */
function afterCall(id: string, tool: string, options: Parameters<typeof toolCall>[2]): Verdict {
  const ctx = normalStart(id);
  toolCall(ctx, tool, options);
  return last(ctx);
}

function last(ctx: TaskCtx): Verdict {
  const v = run(ctx.events, trained.lookup).verdicts.at(-1);
  if (v === undefined) throw new Error('no verdict');
  return v;
}

function feature(v: Verdict, name: string): Contribution | undefined {
  return v.contributions.find((c) => c.feature === name);
}

function expectFeature(v: Verdict, name: string, min: number, max = 100): Contribution {
  const c = feature(v, name);
  expect(c, `${name} in ${JSON.stringify(v.contributions)}`).toBeDefined();
  if (c === undefined) throw new Error('unreachable');
  expect(c.score).toBeGreaterThanOrEqual(min);
  expect(c.score).toBeLessThanOrEqual(max);
  return c;
}

describe('normal work', () => {
  it('scores a normal task at 0 in the type regime', () => {
    const res = run(benignTask(TYPE, 'normal', rng(77)).events, trained.lookup);
    expect(res.max.score).toBeLessThan(20);
    expect(res.verdicts.every((v) => v.regime === 'type_baseline')).toBe(true);
  });
});

describe('tool features', () => {
  it('tool.unseen: a tool the type never used, stronger when it writes, alert-only when it is declared read-only', () => {
    const ctx = normalStart('t1');
    toolCall(ctx, 'delete_records', { sideEffect: 'destructive' });
    const c = expectFeature(last(ctx), 'tool.unseen', 85);
    expect(c.reason).toBe(
      `called tool delete_records, which tasks of type ${TYPE} have never used (30 tasks learned; no task of this tenant has used it)`,
    );
    const ctx2 = normalStart('t1b');
    toolCall(ctx2, 'run_query', { sideEffect: 'read' }); // used by another type of the tenant
    expectFeature(last(ctx2), 'tool.unseen', 60, 70);
    // New to the whole tenant and calling a host, but read-only: an alert, not a revocation.
    const readOnly = afterCall('t1c', 'get_timezone', { sideEffect: 'read', target: 'https://api.example.org/tz' });
    expectFeature(readOnly, 'tool.unseen', 70, 79);
    expect(readOnly.decision).toBe('alert');
    // The same call without a declared side effect may write: it still revokes.
    expect(afterCall('t1d', 'get_timezone', { target: 'https://api.example.org/tz' }).decision).toBe('revoke');
  });

  it('tool.calls_per_task: a known tool called more than usual alerts at most; a spree revokes alone', () => {
    const busy = normalStart('t2-busy');
    for (let i = 0; i < 9; i++) toolCall(busy, 'summarize');
    const b = expectFeature(last(busy), 'tool.calls_per_task', 15, 75);
    expect(b.reason).toMatch(
      /^called summarize 10 times in this task; p99 for tasks of type summarize_ticket is 1 \(highest 1\)$/,
    );
    const ctx = normalStart('t2');
    for (let i = 0; i < 60; i++) toolCall(ctx, 'summarize');
    const c = expectFeature(last(ctx), 'tool.calls_per_task', 85, 85);
    expect(c.reason).toMatch(
      /^called summarize 61 times in this task \(a spree: at least 2× the type's limit of 6\); p99 for tasks of type summarize_ticket is 1 \(highest 1\)$/,
    );
  });

  it('tool.calls_per_minute: a burst of calls', () => {
    const ctx = normalStart('t3');
    for (let i = 0; i < 150; i++) toolCall(ctx, 'search_kb', { durMs: 100 });
    expectFeature(last(ctx), 'tool.calls_per_minute', 50, 70);
  });

  it('tool.transition: a step the type (with enough history) never makes', () => {
    const b = emptyBaseline(TYPE);
    const r = rng(5);
    for (let i = 0; i < 200; i++) learn(b, summarize(stateOf(benignTask(TYPE, `tr-${String(i)}`, r).events)));
    const ctx = taskCtx(TYPE, 't4');
    toolCall(ctx, 'get_ticket');
    toolCall(ctx, 'post_comment', { sideEffect: 'write', target: 'https://helpdesk.acme.io/api/comments' });
    const res = run(ctx.events, { type: b });
    const c = res.verdicts.at(-1)?.contributions.find((x) => x.feature === 'tool.transition');
    expect(c?.reason).toMatch(
      /^went from get_ticket to post_comment; tasks of type summarize_ticket made that step 0 times in 200 steps from get_ticket/,
    );
    expect(c?.score).toBeLessThanOrEqual(45);
  });
});

describe('data features', () => {
  it('data.rows_per_access and data.resource_rows_per_task: one huge read', () => {
    const ctx = normalStart('d1');
    dataAccess(ctx, 'crm.customers', { rows: 5000, bytes: 900, classification: 'confidential' });
    const v = last(ctx);
    expectFeature(v, 'data.rows_per_access', 100);
    const c = expectFeature(v, 'data.resource_rows_per_task', 100);
    expect(c.reason).toMatch(
      /^read 5,00\d rows from crm.customers in this task; p99 for tasks of type summarize_ticket is 1 \(highest 1\)$/,
    );
    expect(v.decision).toBe('revoke');
  });

  it('data.rows_per_task: many small reads summing beyond the per-task norm', () => {
    const ctx = normalStart('d2');
    for (let i = 0; i < 40; i++) dataAccess(ctx, 'kb.articles', { rows: 8, bytes: 20_000, classification: 'internal' });
    const v = last(ctx);
    expect(feature(v, 'data.rows_per_access')).toBeUndefined();
    expectFeature(v, 'data.rows_per_task', 50);
    expectFeature(v, 'data.bytes_per_task', 30);
  });

  it('data.sensitive_rows_per_task: confidential rows add up', () => {
    const ctx = normalStart('d3');
    for (let i = 0; i < 10; i++) dataAccess(ctx, 'crm.customers', { rows: 9, classification: 'confidential' });
    expectFeature(last(ctx), 'data.sensitive_rows_per_task', 30);
  });

  it('data.resource_unseen: lateral movement, more new resources scoring higher', () => {
    const ctx = normalStart('d4');
    dataAccess(ctx, 'crm.invoices', { rows: 1, classification: 'internal' });
    const one = expectFeature(last(ctx), 'data.resource_unseen', 35, 45);
    expect(one.reason).toBe(
      `accessed crm.invoices, a resource tasks of type ${TYPE} have never touched; 1 new resource in this task`,
    );
    dataAccess(ctx, 'hr.salaries', { rows: 1, classification: 'confidential' });
    dataAccess(ctx, 'finance.ledger', { rows: 1, classification: 'confidential' });
    const three = expectFeature(last(ctx), 'data.resource_unseen', 80);
    expect(three.reason).toMatch(
      /namespace finance, which tasks of type summarize_ticket have never touched; 3 new resources/,
    );
  });

  it('data.classification: a level the type never reaches', () => {
    const ctx = normalStart('d5');
    dataAccess(ctx, 'kb.articles', { rows: 2, classification: 'restricted' });
    const c = expectFeature(last(ctx), 'data.classification', 60, 70);
    expect(c.reason).toBe(`read restricted data (kb.articles); tasks of type ${TYPE} never reached above confidential`);
  });
});

describe('host features', () => {
  it('egress.host_unseen: sending to a host the type never contacts, less for a known organisation', () => {
    const ctx = normalStart('h1');
    toolCall(ctx, 'post_comment', { sideEffect: 'write', target: 'https://drop.example.org/x' });
    const c = expectFeature(last(ctx), 'egress.host_unseen', 55, 60);
    expect(c.reason).toBe(
      `sent data to drop.example.org, a host tasks of type ${TYPE} have never contacted (nor anything under example.org)`,
    );
    const ctx2 = normalStart('h2');
    toolCall(ctx2, 'post_comment', { sideEffect: 'write', target: 'https://status.acme.io/x' });
    expectFeature(last(ctx2), 'egress.host_unseen', 30, 40);
  });

  it('egress.host_unseen: data sent through a tool that takes any URL to an organisation the type never contacts revokes alone', () => {
    const v = afterCall('h5', 'upload_attachment', { sideEffect: 'write', target: 'https://transfer.sh/invoice.pdf' });
    expectFeature(v, 'egress.host_unseen', 75, 80);
    expect(v.decision).toBe('revoke');
    // A known organisation through the same tool is weaker evidence.
    expectFeature(
      afterCall('h6', 'upload_attachment', { sideEffect: 'write', target: 'https://files.acme.io/invoice.pdf' }),
      'egress.host_unseen',
      30,
      40,
    );
  });

  it('sequence.secret_then_egress: a secret read, then sending to a new host', () => {
    const ctx = normalStart('h3');
    dataAccess(ctx, 'vault/secret/api-key', { rows: 1, classification: 'restricted' });
    gap(ctx, 2000);
    toolCall(ctx, 'post_comment', { sideEffect: 'write', target: 'https://drop.example.org/x' });
    const v = last(ctx);
    const c = expectFeature(v, 'sequence.secret_then_egress', 85);
    expect(c.reason).toMatch(
      /^sent data to drop.example.org 2.1 s after reading vault\/secret\/api-key; tasks of type summarize_ticket never contacted that host$/,
    );
    // Restricted data never read by the type + egress to a new host: a hard rule.
    expect(v.hardRule).toBe('restricted_with_new_egress');
    expect(v.score).toBe(100);
  });

  it('the hard rule also fires in the other order (egress first, then restricted data)', () => {
    const ctx = normalStart('h4');
    toolCall(ctx, 'post_comment', { sideEffect: 'write', target: 'https://drop.example.org/x' });
    dataAccess(ctx, 'payments.cards', { rows: 1, classification: 'restricted' });
    expect(last(ctx).hardRule).toBe('restricted_with_new_egress');
  });
});

describe('privilege features', () => {
  it('privilege.admin_scope: escalation into an admin scope the type never holds is a hard rule', () => {
    const ctx = normalStart('p1');
    privilegeChange(ctx, 'elevate', ['helpdesk:read'], ['helpdesk:read', 'org:admin'], {
      grantedBy: 'self',
      approved: false,
    });
    const v = last(ctx);
    expect(v.hardRule).toBe('privilege_admin_unseen');
    expect(v.decision).toBe('revoke');
    expect(feature(v, 'privilege.admin_scope')?.reason).toBe(
      `gained administrative scope org:admin (elevate, granted by self, not approved), which tasks of type ${TYPE} never hold (hard rule privilege_admin_unseen)`,
    );
    expectFeature(v, 'privilege.action_unseen', 50);
    expectFeature(v, 'privilege.unapproved', 30, 30);
  });

  it('privilege.scope_unseen and privilege.scope_growth: scopes pile up', () => {
    const ctx = normalStart('p2');
    privilegeChange(
      ctx,
      'token_issue',
      ['helpdesk:read'],
      ['helpdesk:read', 'crm:read', 'crm:write', 'billing:read', 'billing:write', 'hr:read'],
    );
    const v = last(ctx);
    expectFeature(v, 'privilege.scope_unseen', 70, 75);
    expectFeature(v, 'privilege.scope_growth', 20);
  });

  it('privilege.self_approved: a change the agent granted itself is not approved, whatever it says (hard rule)', () => {
    for (const grantedBy of ['agent-1', 'agent:agent-1', ' Agent-1 ', 'self']) {
      const ctx = normalStart(`p4-${grantedBy}`);
      privilegeChange(ctx, 'token_issue', ['helpdesk:read'], ['helpdesk:read', 'helpdesk:comment'], {
        grantedBy,
        approved: true,
      });
      const v = last(ctx);
      expect(v.hardRule).toBe('privilege_self_approved');
      expect(v.decision).toBe('revoke');
      expect(feature(v, 'privilege.self_approved')?.reason).toBe(
        `gained 1 scope (token_issue, granted by ${grantedBy}, approved by the agent itself): an agent cannot approve its own privileges (hard rule privilege_self_approved)`,
      );
    }
    // Approved by someone else: the usual change is not scored.
    const ctx = normalStart('p5');
    privilegeChange(ctx, 'token_issue', ['helpdesk:read'], ['helpdesk:read', 'helpdesk:comment'], {
      grantedBy: 'manager-7',
      approved: true,
    });
    expect(last(ctx).contributions.filter((c) => c.feature.startsWith('privilege.'))).toEqual([]);
  });

  it('a known change is not scored', () => {
    const ctx = normalStart('p3');
    privilegeChange(ctx, 'token_issue', ['helpdesk:read'], ['helpdesk:read', 'helpdesk:comment']);
    expect(last(ctx).contributions.filter((c) => c.feature.startsWith('privilege.'))).toEqual([]);
  });
});

describe('errors and shape', () => {
  it('errors.storm: a burst of failing calls across many targets', () => {
    const ctx = normalStart('e1');
    for (let i = 0; i < 25; i++)
      toolCall(ctx, 'search_kb', { error: true, target: `https://helpdesk.acme.io/api/${String(i)}`, durMs: 100 });
    const v = last(ctx);
    const c = expectFeature(v, 'errors.storm', 90);
    expect(c.reason).toMatch(
      /^probing storm: 25 failing calls in the last minute \(\d+% of calls\), against 25 different targets; tasks of type summarize_ticket stay under 10$/,
    );
    expectFeature(v, 'errors.per_task', 50);
  });

  it('shape.events_per_task and shape.duration are capped supporting signals', () => {
    const ctx = normalStart('s1');
    for (let i = 0; i < 30; i++) {
      gap(ctx, 60_000);
      toolCall(ctx, i % 2 === 0 ? 'search_kb' : 'get_ticket');
    }
    const v = last(ctx);
    expectFeature(v, 'shape.duration', 1, 40);
    expectFeature(v, 'shape.events_per_task', 1, 50);
  });
});

describe('lifecycle', () => {
  it('lifecycle.after_end: any event after the task ended revokes (hard rule), within the grace it does not', () => {
    const ctx = normalStart('l1');
    const endIdx = ctx.events.length - 1;
    gap(ctx, 500);
    toolCall(ctx, 'summarize');
    gap(ctx, 30_000);
    toolCall(ctx, 'get_ticket');
    const res = run(ctx.events, trained.lookup, undefined, endIdx);
    expect(res.verdicts.at(-2)?.hardRule).toBeUndefined();
    const v = res.verdicts.at(-1);
    expect(v?.hardRule).toBe('after_end');
    expect(v?.decision).toBe('revoke');
    expect(v?.contributions[0]?.reason).toBe(
      'tool call "execute_tool get_ticket" 30.7 s after the task ended: its credentials were used after the task (hard rule after_end)',
    );
  });
});
