/**
 * Every long-lived structure keyed by what an agent sends has a bound (docs/limits.md): a hostile agent sending
 * ever new names, ids or huge strings fills it to its cap and no further.
 */
import { describe, expect, it } from 'vitest';
import { createTenantRateLimiter } from '../../services/auth/rate-limit.ts';
import { boundedName, classifyRequest, MAX_NAME_LENGTH } from '../../services/core/classify.ts';
import { request, span } from '../helpers/otlp-spans.ts';
import {
  MAX_KEY_CHARS,
  MAX_SAME_CALL_SPANS,
  MAX_TASK_KEYS,
  emptyBaseline,
  serializeBaseline,
  summarize,
} from '../../services/core/detect/index.ts';
import { DISABLED_LOOP_POLICY } from '../../services/core/loop-policy.ts';
import { MAX_LOOP_KEYS, newLoopState, observeLoops } from '../../services/core/loops.ts';
import { AuthorityState, MAX_REVOKED_TASKS } from '../../services/killswitch/authority-state.ts';
import { MAX_REVOKED_KEYS, createLocalKillSwitch } from '../../services/killswitch/kill-switch.ts';
import {
  BaselineBook,
  MAX_AGENT_BASELINES_PER_TENANT,
  MAX_TASK_TYPES_PER_TENANT,
} from '../../services/processor/baseline-book.ts';
import { MAX_SEEN_EVENTS, TaskTable, markSeen, newLiveTask } from '../../services/processor/task-table.ts';
import type { AgentEvent, Revocation } from '../../schemas/events.ts';
import { T0, dataAccess, stateOf, taskCtx, toolCall } from './detect/fixtures.ts';
import { startProcessor } from './processor/harness.ts';

const HUGE = 'x'.repeat(100_000);

describe('task state under a hostile agent', () => {
  it('keeps at most MAX_TASK_KEYS transitions however many distinct tools follow each other', () => {
    const ctx = taskCtx('x', 'task');
    for (let i = 0; i < MAX_TASK_KEYS * 3; i++) toolCall(ctx, `tool-${String(i)}`);
    const state = stateOf(ctx.events);
    expect(state.tools.size).toBe(MAX_TASK_KEYS);
    expect(state.transitions.size).toBe(MAX_TASK_KEYS);
    // Transitions already held keep counting.
    expect(state.transitions.get('^\u0001tool-0')).toBe(1);
  });

  it('cuts tool names, resources, hosts and privilege actions used as keys to MAX_KEY_CHARS', () => {
    const ctx = taskCtx('x', 'task');
    toolCall(ctx, `a${HUGE}`, { target: `https://h${HUGE}.example.com/` });
    dataAccess(ctx, `db.${HUGE}`);
    const state = stateOf(ctx.events);
    const keys = [...state.tools.keys(), ...state.resources.keys(), ...state.hosts, ...state.transitions.keys()];
    expect(keys.length).toBeGreaterThanOrEqual(4);
    for (const key of keys) expect(key.length).toBeLessThanOrEqual(2 * MAX_KEY_CHARS + 1);
    for (const key of [...state.tools.keys(), ...state.resources.keys(), ...state.hosts])
      expect(key.length).toBeLessThanOrEqual(MAX_KEY_CHARS);
    expect([...state.resources.values()][0]?.example.length).toBeLessThanOrEqual(MAX_KEY_CHARS);
  });

  it('counts a huge tool name in the loop state under its cut key, and no more than MAX_LOOP_KEYS of them', () => {
    const loops = newLoopState();
    const limits = DISABLED_LOOP_POLICY.defaults;
    const ctx = taskCtx('x', 'task');
    for (let i = 0; i < MAX_LOOP_KEYS + 50; i++) {
      const event = toolCall(ctx, `${String(i)}-${HUGE}`, { argumentsHash: 'h' });
      observeLoops(loops, event, limits);
    }
    expect(loops.repeats.size).toBe(MAX_LOOP_KEYS);
    for (const key of loops.repeats.keys()) expect(key.length).toBeLessThanOrEqual(MAX_KEY_CHARS + 2);
  });
});

describe('tool-call spans remembered to recognise a second record of a call', () => {
  it('keep at most MAX_SAME_CALL_SPANS spans and waiting children, with keys of bounded length', () => {
    const ctx = taskCtx('x', 'task');
    // Every span under a parent never seen, with a new huge name; then a huge fan-out of one parent.
    for (let i = 0; i < MAX_SAME_CALL_SPANS * 3; i++) {
      const event = toolCall(ctx, `${String(i)}-${HUGE}`, { callId: `call-${String(i)}` });
      event.parentSpanId = `missing-${String(i)}`;
    }
    for (let i = 0; i < MAX_SAME_CALL_SPANS * 3; i++) toolCall(ctx, `child-${String(i)}`).parentSpanId = 'fan-out';
    const state = stateOf(ctx.events);
    expect(state.counts.tool_call).toBe(MAX_SAME_CALL_SPANS * 6);
    expect(state.sameCalls.spans.size).toBe(MAX_SAME_CALL_SPANS);
    expect(state.sameCalls.waiting.size).toBeLessThanOrEqual(MAX_SAME_CALL_SPANS);
    for (const key of state.sameCalls.waiting.keys()) expect(key.length).toBeLessThanOrEqual(MAX_KEY_CHARS + 200);
  });
});

describe('agent ids and task types from spans', () => {
  it('keep at most MAX_NAME_LENGTH characters, distinct long names staying distinct', () => {
    expect(boundedName('agent-1')).toBe('agent-1');
    const a = boundedName(`${HUGE}a`);
    const b = boundedName(`${HUGE}b`);
    expect(a.length).toBeLessThanOrEqual(MAX_NAME_LENGTH);
    expect(a).not.toBe(b);
  });

  it('are bounded as classification reads them from a span', () => {
    const { events } = classifyRequest(
      request([
        span('execute_tool get_ticket', {
          'tripline.task.id': 'task-1',
          'tripline.task.type': `type-${HUGE}`,
          'gen_ai.agent.id': `agent-${HUGE}`,
          'gen_ai.operation.name': 'execute_tool',
          'gen_ai.tool.name': 'get_ticket',
        }),
      ]),
      'acme',
    );
    expect(events[0]?.agentId.length).toBeLessThanOrEqual(MAX_NAME_LENGTH);
    expect(events[0]?.taskType.length).toBeLessThanOrEqual(MAX_NAME_LENGTH);
    expect(events[0]?.claims?.agentId).toBe(events[0]?.agentId);
  });
});

describe('a task in the processor', () => {
  it('remembers the newest MAX_SEEN_EVENTS event ids, the oldest forgotten first', () => {
    const task = newLiveTask('t1', 'task', 'x', 'agent', T0);
    for (let i = 0; i < MAX_SEEN_EVENTS * 3; i++) expect(markSeen(task, `e-${String(i)}`)).toBe(true);
    expect(task.seen.size).toBe(MAX_SEEN_EVENTS);
    expect(markSeen(task, `e-${String(MAX_SEEN_EVENTS * 3 - 1)}`)).toBe(false);
    expect(task.seen.has('e-0')).toBe(false);
  });

  it('still drops a redelivered event within the newest ids', async () => {
    const h = await startProcessor();
    const ctx = taskCtx('summarize_ticket', 'replayed');
    for (let i = 0; i < 10; i++) toolCall(ctx, 'get_ticket');
    await h.processor.handle({ events: ctx.events, boundaries: [] });
    await h.processor.handle({ events: ctx.events, boundaries: [] });
    expect(h.processor.taskSnapshot('t1', 'replayed')).toMatchObject({ events: 10 });
    await h.processor.stop();
  });

  it('holds at most maxLiveTasksPerTenant live tasks of a tenant, completing the oldest, other tenants untouched', async () => {
    const h = await startProcessor({ maxLiveTasksPerTenant: 20 });
    const other = taskCtx('summarize_ticket', 'other-task');
    toolCall(other, 'get_ticket');
    const events: AgentEvent[] = other.events.map((event) => ({ ...event, tenant: 't2' }));
    for (let i = 0; i < 200; i++) {
      const ctx = taskCtx('summarize_ticket', `flood-${String(i)}`, 'agent-1', T0 + i);
      toolCall(ctx, 'get_ticket');
      events.push(...ctx.events);
    }
    await h.processor.handle({ events, boundaries: [] });
    let live = 0;
    for (let i = 0; i < 200; i++) if (h.processor.taskSnapshot('t1', `flood-${String(i)}`)?.status === 'active') live++;
    expect(live).toBe(20);
    expect(h.processor.taskSnapshot('t1', 'flood-199')?.status).toBe('active');
    expect(h.processor.taskSnapshot('t1', 'flood-0')?.status).toBe('completed');
    expect(h.processor.taskSnapshot('t2', 'other-task')?.status).toBe('active');
    expect((await h.store.getTask('t1', 'flood-0'))?.status).toBe('completed');
    await h.processor.stop();
  });

  it('counts live tasks per tenant in the task table', () => {
    const table = new TaskTable(10, () => T0, 3);
    for (let i = 0; i < 5; i++) table.setLive(`t1\u0000${String(i)}`, newLiveTask('t1', String(i), 'x', 'a', T0));
    expect(table.liveCount('t1')).toBe(5);
    expect([...table.overflowing()].map(([, task]) => task.state.taskId)).toEqual(['0', '1']);
    table.retire('t1\u00000', newLiveTask('t1', '0', 'x', 'a', T0));
    table.forget('t1\u00001');
    expect(table.liveCount('t1')).toBe(3);
    expect([...table.overflowing()]).toEqual([]);
  });
});

describe('baselines', () => {
  const summary = (taskType = 'x'): ReturnType<typeof summarize> => {
    const ctx = taskCtx(taskType, 'task');
    toolCall(ctx, 'get_ticket');
    return summarize(stateOf(ctx.events));
  };

  it('learn at most MAX_AGENT_BASELINES_PER_TENANT agent baselines per tenant, the type and the fleet still learning', () => {
    const book = new BaselineBook();
    const s = summary();
    for (let i = 0; i < MAX_AGENT_BASELINES_PER_TENANT + 10; i++) book.learnTask('t1', 'x', `agent-${String(i)}`, s);
    expect(book.list('t1').filter((entry) => entry.agentId !== '')).toHaveLength(MAX_AGENT_BASELINES_PER_TENANT);
    expect(book.refused.agent_baselines_full).toBe(10);
    expect(book.get('t1', 'x')?.tasks).toBe(MAX_AGENT_BASELINES_PER_TENANT + 10);
    // An agent held already keeps learning.
    book.learnTask('t1', 'x', 'agent-0', s);
    expect(book.get('t1', 'x', 'agent-0')?.tasks).toBe(2);
  });

  it('learn at most MAX_TASK_TYPES_PER_TENANT types per tenant, also when loaded from the store', () => {
    const book = new BaselineBook();
    for (let i = 0; i < MAX_TASK_TYPES_PER_TENANT + 5; i++)
      book.learnTask('t1', `type-${String(i)}`, 'a', summary(`type-${String(i)}`));
    const types = book.list('t1').filter((entry) => entry.agentId === '' && entry.taskType.startsWith('type-'));
    expect(types).toHaveLength(MAX_TASK_TYPES_PER_TENANT);
    expect(book.refused.task_types_full).toBe(5);
    expect(book.get('t1', `type-${String(MAX_TASK_TYPES_PER_TENANT)}`, 'a')).toBeUndefined();

    const records = Array.from({ length: MAX_AGENT_BASELINES_PER_TENANT + 7 }, (_, i) => ({
      tenant: 't1',
      taskType: 'x',
      agentId: `agent-${String(i)}`,
      tasks: 0,
      model: serializeBaseline(emptyBaseline('x', `agent-${String(i)}`)),
      updatedMs: T0,
    }));
    const loaded = BaselineBook.fromRecords(records, () => undefined);
    expect(loaded.list('t1')).toHaveLength(MAX_AGENT_BASELINES_PER_TENANT);
  });
});

/** A revocation (or restore) of a task of tenant `t1`'s agent `agent`. */
function revocationOf(taskId: string, action: Revocation['action'], timeMs: number): Revocation {
  return {
    id: `${action}-${taskId}`,
    tenant: 't1',
    taskId,
    taskType: 'x',
    agentId: 'agent',
    action,
    source: 'manual',
    actor: 'ops',
    reason: 'test',
    reasons: [],
    score: 0,
    eventId: '',
    timeMs,
  };
}

describe('the credentials authority', () => {
  it('forgets the longest-revoked tasks beyond its cap once no token issued before their revoke can verify', () => {
    const killSwitch = createLocalKillSwitch();
    const state = new AuthorityState({ revocations: 0, windowMs: 60_000, blockMs: 60_000 }, killSwitch, 60_000);
    const revoke = (i: number): void => {
      const revocation = revocationOf(`task-${String(i)}`, 'revoke', T0 + i);
      state.apply(revocation);
      killSwitch.apply(revocation);
    };
    for (let i = 0; i < 50; i++) revoke(i);
    // Within a token's lifetime of the revokes, a token issued elsewhere before them may still verify: all kept.
    state.sweep(T0 + 1_000, 10);
    expect(state.tasks.size).toBe(50);
    expect(state.needsStoredState('t1', 'task-0')).toBe(false);

    state.sweep(T0 + 61_000, 10);
    expect(state.tasks.size).toBe(10);
    expect(state.forgottenRevocations).toBe(40);
    expect(state.task('t1', 'task-49')?.revoked).toBe(true);
    expect(state.task('t1', 'task-0')).toBeUndefined();
    expect(state.revokedOf('t1', 'agent')).toHaveLength(10);
    // What memory forgot is read from the store when a task start names it; what it holds is not.
    expect(state.needsStoredState('t1', 'task-0')).toBe(true);
    expect(state.needsStoredState('t1', 'task-49')).toBe(false);
    expect(MAX_REVOKED_TASKS).toBeGreaterThan(0);
  });
});

describe('the kill switch', () => {
  it('remembers the newest revoked tasks up to its cap, forgetting the longest-revoked first', () => {
    const killSwitch = createLocalKillSwitch(undefined, { maxRevoked: 3 });
    const apply = (taskId: string, action: Revocation['action']): void =>
      killSwitch.apply(revocationOf(taskId, action, T0));
    const revoked = (): string[] => ['a', 'b', 'c', 'd', 'e'].filter((id) => killSwitch.isRevoked('t1', id));
    for (const id of ['a', 'b', 'c', 'd']) apply(id, 'revoke');
    expect(revoked()).toEqual(['b', 'c', 'd']);
    apply('b', 'revoke'); // revoked again: the newest now
    apply('e', 'revoke');
    expect(revoked()).toEqual(['b', 'd', 'e']);
    apply('d', 'restore');
    expect(revoked()).toEqual(['b', 'e']);
    expect(killSwitch.isRevoked('t2', 'b')).toBe(false);
    expect(MAX_REVOKED_KEYS).toBeGreaterThan(0);
  });
});

describe('the tenant rate limit', () => {
  it('charges bytes as well as spans: a few huge spans wait as many small ones do', () => {
    let now = 0;
    const limiter = createTenantRateLimiter(
      { spansPerSecond: 1000, burstSpans: 1000, bytesPerSecond: 1_000_000, burstBytes: 1_000_000 },
      () => now,
    );
    expect(limiter.admit('a')).toBeUndefined();
    limiter.charge('a', 1, 3_000_000); // one span of 3 MB: 2 MB in debt
    expect(limiter.admit('a')).toBe(2);
    expect(limiter.admit('b')).toBeUndefined();
    now += 2_000;
    expect(limiter.admit('a')).toBeUndefined();
  });

  it('charges spans alone when no byte rate is set', () => {
    const limiter = createTenantRateLimiter({ spansPerSecond: 10, burstSpans: 10 }, () => 0);
    limiter.charge('a', 1, 10_000_000_000);
    expect(limiter.admit('a')).toBeUndefined();
  });
});
