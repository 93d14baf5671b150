/**
 * Approval points, the parts without I/O: what an approval is bound to (the canonical arguments and the hash),
 * the state machine, the manager over the in-memory store (request, decide, use, expire, the task's steps in
 * order), and the policy engine's reading of `@approval("required")` with the shipped policies.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ArgumentsNotBindable,
  bindingHash,
  canonicalJson,
  effectiveStatus,
  policyArguments,
  transition,
} from '../../services/core/approvals.ts';
import type { ApprovalBinding } from '../../services/core/approvals.ts';
import { createInMemoryApprovalStore } from '../../services/killswitch/approval-store.ts';
import type { ApprovalStepRecord } from '../../services/killswitch/approval-store.ts';
import { createApprovalManager } from '../../services/killswitch/approvals.ts';
import type { ApprovalRequest } from '../../services/killswitch/approvals.ts';
import { isKillSwitchError } from '../../services/killswitch/errors.ts';
import { loadPolicyEngine } from '../../services/killswitch/policy.ts';
import { DEFAULT_POLICY_DIR } from '../../services/killswitch/settings.ts';
import { argumentsToSend, verdictOf } from '../../services/mcp-gateway/authority.ts';
import { isTriplineError } from '../../services/shared/errors.ts';
import { createLogger } from '../../services/shared/logger.ts';

const binding: ApprovalBinding = {
  tenant: 'default',
  taskId: 'task-1',
  tool: 'issue_refund',
  resource: 'payments',
  arguments: { amount: 900, order: { id: 'o-1', lines: [1, 2] }, currency: 'EUR' },
};

describe('the binding', () => {
  it('is the same for the same call whatever the key order, and JSON-equal numbers', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: 'x' } })).toBe(
      '{"a":{"c":"x","d":[1,{"y":2,"z":1}]},"b":1}',
    );
    const reordered = {
      ...binding,
      arguments: { currency: 'EUR', order: { lines: [1, 2], id: 'o-1' }, amount: 900.0 },
    };
    expect(bindingHash(reordered)).toBe(bindingHash(binding));
    expect(bindingHash(binding)).toMatch(/^[0-9a-f]{64}$/);
    // undefined members are left out, as JSON does
    expect(bindingHash({ ...binding, arguments: { ...binding.arguments, note: undefined } })).toBe(
      bindingHash(binding),
    );
  });

  it('changes with any argument, the tool, the resource, the task or the tenant', () => {
    const base = bindingHash(binding);
    const variants: ApprovalBinding[] = [
      { ...binding, arguments: { ...binding.arguments, amount: 901 } },
      { ...binding, arguments: { ...binding.arguments, amount: '900' } },
      { ...binding, arguments: { ...binding.arguments, order: { id: 'o-1', lines: [2, 1] } } },
      { ...binding, arguments: { ...binding.arguments, extra: null } },
      { ...binding, tool: 'issue_refunds' },
      { ...binding, resource: 'payments-eu' },
      { ...binding, taskId: 'task-2' },
      { ...binding, tenant: 'other' },
    ];
    const hashes = variants.map(bindingHash);
    expect(new Set([base, ...hashes]).size).toBe(variants.length + 1);
  });

  it('refuses arguments it cannot bind, with a typed error', () => {
    expect(() => canonicalJson({ amount: Number.NaN })).toThrow(ArgumentsNotBindable);
    expect(() => canonicalJson({ amount: 10n })).toThrow(ArgumentsNotBindable);
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 20; i++) deep = { deep };
    expect(() => canonicalJson(deep)).toThrow(/nested deeper/);
    expect(() => canonicalJson({ many: Array.from({ length: 2000 }, (_, i) => i) })).toThrow(/more than/);
  });

  it('gives the policy the top-level scalars, numbers as whole numbers', () => {
    expect(policyArguments({ amount: 500.6, currency: 'EUR', urgent: true, order: { id: 1 }, list: [1] })).toEqual({
      amount: 501,
      currency: 'EUR',
      urgent: true,
    });
  });
});

describe('the state machine', () => {
  const open = { status: 'pending' as const, expiresMs: 1000 };

  it('goes pending → approved → used, or pending → denied, once each', () => {
    expect(transition(open, 'approve', 10)).toEqual({ ok: true, status: 'approved', step: 'approved' });
    expect(transition(open, 'deny', 10)).toEqual({ ok: true, status: 'denied', step: 'denied' });
    expect(transition({ status: 'approved', expiresMs: 1000 }, 'use', 10)).toEqual({
      ok: true,
      status: 'used',
      step: 'used',
    });
    expect(transition(open, 'use', 10)).toMatchObject({ ok: false, status: 'pending' });
    expect(transition({ status: 'approved', expiresMs: 1000 }, 'deny', 10)).toMatchObject({ ok: false });
    expect(transition({ status: 'denied', expiresMs: 1000 }, 'approve', 10)).toMatchObject({ ok: false });
    expect(transition({ status: 'used', expiresMs: 1000 }, 'use', 10)).toMatchObject({ ok: false, status: 'used' });
  });

  it('expires what is open at its expiry, and nothing before', () => {
    expect(effectiveStatus(open, 999)).toBe('pending');
    expect(effectiveStatus(open, 1000)).toBe('expired');
    expect(effectiveStatus({ status: 'denied', expiresMs: 1000 }, 5000)).toBe('denied');
    expect(transition(open, 'expire', 999)).toMatchObject({ ok: false });
    expect(transition(open, 'expire', 1000)).toEqual({ ok: true, status: 'expired', step: 'expired' });
    expect(transition({ status: 'approved', expiresMs: 1000 }, 'expire', 1000)).toMatchObject({ ok: true });
    // past its expiry nothing else happens to it
    expect(transition(open, 'approve', 1000)).toMatchObject({ ok: false, status: 'expired' });
    expect(transition({ status: 'approved', expiresMs: 1000 }, 'use', 1001)).toMatchObject({
      ok: false,
      status: 'expired',
    });
  });
});

describe('the manager', () => {
  function setup() {
    let clock = 1_000_000;
    const store = createInMemoryApprovalStore();
    const manager = createApprovalManager({
      store,
      ttlMs: 60_000,
      logger: createLogger('silent'),
      sweepEveryMs: 0,
      now: () => clock,
    });
    const steps: ApprovalStepRecord[] = [];
    manager.subscribe((step) => steps.push(step));
    const request = (taskId = 'task-1', hash = bindingHash({ ...binding, taskId })): ApprovalRequest => ({
      tenant: 'default',
      taskId,
      taskType: 'customer_refund',
      agentId: 'refund-agent',
      tool: 'issue_refund',
      resource: 'payments',
      arguments: canonicalJson(binding.arguments),
      bindingHash: hash,
      policies: ['approval.large-refunds'],
      reasons: ['a person must approve this call (approval.large-refunds)'],
      decisionId: 'd-1',
    });
    return { store, manager, steps, request, tick: (ms: number) => (clock += ms) };
  }

  it('binds a request to its call, lets a person approve it, and lets the call through once', async () => {
    const { manager, steps, request, tick } = setup();
    const input = request();
    const approval = await manager.request(input);
    expect(approval).toMatchObject({ status: 'pending', expiresMs: approval.requestedMs + 60_000, version: 1 });
    expect(manager.bound('default', 'task-1', input.bindingHash)?.id).toBe(approval.id);
    expect(manager.bound('default', 'task-1', 'another-hash')).toBeUndefined();
    expect(manager.bound('other', 'task-1', input.bindingHash)).toBeUndefined();

    tick(1000);
    const approved = await manager.decide('default', approval.id, 'approve', 'alice (via ops-token)', 'checked');
    expect(approved).toMatchObject({
      status: 'approved',
      decidedBy: 'alice (via ops-token)',
      decisionReason: 'checked',
    });
    tick(1000);
    const used = await manager.use(approved, 'refund-agent');
    expect(used.status).toBe('used');
    expect(manager.bound('default', 'task-1', input.bindingHash)).toBeUndefined();
    await expect(manager.use(used, 'refund-agent')).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(manager.decide('default', approval.id, 'deny', 'bob', '')).rejects.toMatchObject({
      code: 'CONFLICT',
    });

    expect(steps.map((step) => [step.step, step.actor])).toEqual([
      ['requested', 'refund-agent'],
      ['approved', 'alice (via ops-token)'],
      ['used', 'refund-agent'],
    ]);
    const timeline = await manager.taskSteps('default', 'task-1');
    expect(timeline.map((step) => step.step)).toEqual(['requested', 'approved', 'used']);
    expect(timeline.map((step) => step.timeMs)).toEqual([...timeline.map((step) => step.timeMs)].sort());
    expect((await manager.get('default', approval.id))?.status).toBe('used');
  });

  it('keeps a denial bound to the call until its expiry, and another tenant never finds it', async () => {
    const { manager, request, tick } = setup();
    const input = request();
    const approval = await manager.request(input);
    await expect(manager.decide('other', approval.id, 'approve', 'mallory', '')).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(await manager.get('other', approval.id)).toBeNull();
    const denied = await manager.decide('default', approval.id, 'deny', 'bob', 'too much');
    expect(denied.status).toBe('denied');
    expect(manager.bound('default', 'task-1', input.bindingHash)?.status).toBe('denied');
    tick(60_000);
    expect(manager.bound('default', 'task-1', input.bindingHash)).toBeUndefined();
  });

  it('expires an undecided approval (recorded by the sweep, or when read), and refuses to approve it after', async () => {
    const { manager, steps, request, tick } = setup();
    const first = await manager.request(request('task-1'));
    const second = await manager.request(request('task-2'));
    tick(59_999);
    expect(await manager.sweep()).toBe(0);
    tick(1);
    expect((await manager.get('default', first.id))?.status).toBe('expired');
    expect(await manager.sweep()).toBe(1); // the second; the first was recorded when read
    expect((await manager.get('default', second.id))?.status).toBe('expired');
    await expect(manager.decide('default', first.id, 'approve', 'alice', '')).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    expect(steps.filter((step) => step.step === 'expired').map((step) => [step.approvalId, step.actor])).toEqual([
      [first.id, 'tripline'],
      [second.id, 'tripline'],
    ]);
  });

  it('expires an approved call that was not made in time', async () => {
    const { manager, request, tick } = setup();
    const input = request();
    const approval = await manager.request(input);
    const approved = await manager.decide('default', approval.id, 'approve', 'alice', '');
    tick(60_000);
    expect(manager.bound('default', 'task-1', input.bindingHash)).toBeUndefined();
    await expect(manager.use(approved, 'refund-agent')).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await manager.get('default', approval.id))?.status).toBe('expired');
  });

  it('rebuilds the open approvals from the store', async () => {
    const { store, manager, request } = setup();
    const input = request();
    const approval = await manager.request(input);
    const again = createApprovalManager({
      store,
      ttlMs: 60_000,
      logger: createLogger('silent'),
      sweepEveryMs: 0,
      now: () => approval.requestedMs + 1,
    });
    expect(again.bound('default', 'task-1', input.bindingHash)).toBeUndefined();
    await again.load();
    expect(again.bound('default', 'task-1', input.bindingHash)?.id).toBe(approval.id);
  });
});

describe('approval policies', () => {
  const call = (amount: number, approved: boolean) => ({
    agentId: 'refund-agent',
    action: 'call_tool' as const,
    resource: 'issue_refund',
    context: {
      task_id: 't',
      task_type: 'customer_refund',
      tool: 'issue_refund',
      resource: 'payments',
      side_effect: 'write',
      score: 0,
      granted_tools: [],
      granted_resources: [],
      scopes: [],
      arguments: { amount },
      approved,
    },
  });

  it('the shipped policy asks a person for a refund above 500, and lets the approved one through', () => {
    const engine = loadPolicyEngine(DEFAULT_POLICY_DIR);
    expect(engine.approvalPolicyIds()).toEqual(['approval.large-refunds']);
    expect(engine.authorize(call(500, false))).toMatchObject({ decision: 'allow' });
    expect(engine.authorize(call(501, false))).toMatchObject({
      decision: 'deny',
      policies: ['approval.large-refunds'],
    });
    expect(engine.authorize(call(501, true))).toMatchObject({ decision: 'allow' });
    // a caller that knows nothing of approvals passes neither: the approval policy holds
    const { approved: _approved, arguments: _args, ...bare } = call(501, false).context;
    expect(engine.authorize({ ...call(501, false), context: bare })).toMatchObject({ decision: 'allow' });
    expect(engine.authorize({ ...call(501, false), context: { ...bare, arguments: { amount: 501 } } })).toMatchObject({
      decision: 'deny',
      policies: ['approval.large-refunds'],
    });
  });

  it('refuses an approval permit and an unknown annotation value at load', () => {
    const dir = (text: string): string => {
      const path = mkdtempSync(join(tmpdir(), 'tripline-approval-policy-'));
      writeFileSync(join(path, 'p.cedar'), text);
      return path;
    };
    const load = (text: string): unknown => {
      try {
        loadPolicyEngine(dir(text));
        return undefined;
      } catch (error) {
        return error;
      }
    };
    const permit = load('@id("x") @approval("required") permit (principal, action, resource);');
    expect(isKillSwitchError(permit, 'POLICY_INVALID') && permit.message).toMatch(/a permit/);
    const odd = load('@id("y") @approval("maybe") forbid (principal, action, resource);');
    expect(isTriplineError(odd) && odd.message).toMatch(/the only value is "required"/);
  });
});

describe('the MCP gateway at an approval point', () => {
  it('refuses a pending call with APPROVAL_PENDING and the link a person approves at', () => {
    const verdict = verdictOf({
      allowed: false,
      decision: 'pending',
      approvalId: 'ap-1',
      approval: { approvalId: 'ap-1', status: 'pending', expiresAt: '', url: 'https://t.example/#approval=ap-1' },
      reasons: ['a person must approve this call (approval.large-refunds)'],
      policies: ['approval.large-refunds'],
      decisionId: 'd-1',
    });
    expect(verdict).toEqual({
      allowed: false,
      code: 'APPROVAL_PENDING',
      reasons: [
        'a person must approve this call (approval.large-refunds)',
        'a person can approve or deny it at https://t.example/#approval=ap-1',
      ],
      decisionId: 'd-1',
    });
  });
});

describe('arguments sent to the check over HTTP', () => {
  it('sends them whole when they fit, else the scalars marked incomplete', () => {
    expect(argumentsToSend(undefined)).toEqual({});
    expect(argumentsToSend({ amount: 900, order: { id: 'o-1' } })).toEqual({
      arguments: { amount: 900, order: { id: 'o-1' } },
    });
    const big = { amount: 900, note: 'x'.repeat(2000), rows: Array.from({ length: 10_000 }, (_, i) => i) };
    expect(argumentsToSend(big)).toEqual({ arguments: { amount: 900 }, argumentsComplete: false });
  });
});
