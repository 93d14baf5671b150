/**
 * One tool call, however many instrumentations record it (services/core/detect/same-call.ts): a tool-call span whose
 * direct parent in the task records the same call (the same call id when both have one, else the same tool name)
 * is folded into that call, in whatever order the spans arrive. Different tools under a tool, a tool calling itself
 * more than once, spans of other traces and odd input stay calls of their own.
 */
import { describe, expect, it } from 'vitest';
import type { AgentEvent, ToolCallDetail } from '../../../schemas/events.ts';
import {
  MAX_SAME_CALL_SPANS,
  markedSameCall,
  newTaskState,
  observe,
  sameCallOf,
  summarize,
} from '../../../services/core/detect/index.ts';
import type { TaskState } from '../../../services/core/detect/index.ts';
import {
  MAX_RECORDS_PER_CALL,
  isSameCall,
  matchSameCall,
  newSameCallIndex,
} from '../../../services/core/detect/same-call.ts';
import { observeLoops, newLoopState } from '../../../services/core/loops.ts';
import type { LoopLimits } from '../../../services/core/loops.ts';
import { T0, TENANT } from './fixtures.ts';

interface SpanSpec {
  span: string;
  parent?: string;
  tool: string;
  trace?: string;
  startMs?: number;
  error?: boolean;
  detail?: Partial<ToolCallDetail>;
}

function toolSpan(spec: SpanSpec): AgentEvent {
  const trace = spec.trace ?? 'trace-1';
  const startMs = spec.startMs ?? T0;
  return {
    id: `${trace}${spec.span}`,
    tenant: TENANT,
    kind: 'tool_call',
    taskId: 'task-1',
    taskType: 'refund',
    agentId: 'agent-1',
    traceId: trace,
    spanId: spec.span,
    parentSpanId: spec.parent ?? 'root',
    name: `execute_tool ${spec.tool}`,
    startMs,
    endMs: startMs + 10,
    error: spec.error ?? false,
    tool: { name: spec.tool, ...spec.detail },
    attributes: {},
  };
}

function fold(events: readonly AgentEvent[]): TaskState {
  const state = newTaskState({ tenant: TENANT, taskId: 'task-1', taskType: 'refund', agentId: 'agent-1', startMs: T0 });
  for (const event of events) observe(state, event);
  return state;
}

/** Every order of a list (small lists only). */
function orders<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, index) =>
    orders([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [item, ...rest]),
  );
}

/** The first record (OpenInference's tool span, with the arguments) and the framework's own record inside it. */
const outer = toolSpan({
  span: 'oi',
  tool: 'issue_refund',
  detail: { argumentKeys: ['amount', 'order_id'], argumentsHash: 'a1', target: 'payments.example' },
});
const inner = toolSpan({ span: 'core', parent: 'oi', tool: 'issue_refund', startMs: T0 + 1, detail: { callId: 'c1' } });
const next = toolSpan({ span: 'next', tool: 'get_order', startMs: T0 + 20 });

describe('the same call recorded twice', () => {
  it.each([
    ['parent first', [outer, inner]],
    ['child first', [inner, outer]],
  ])('counts once, %s', (_, events) => {
    const state = fold([...events, next]);
    expect(state.counts.tool_call).toBe(2);
    expect(state.events).toBe(2);
    expect(Object.fromEntries(state.tools)).toEqual({ issue_refund: 1, get_order: 1 });
    expect(Object.fromEntries(state.transitions)).toEqual({
      '^\u0001issue_refund': 1,
      'issue_refund\u0001get_order': 1,
    });
    expect(state.maxToolCallsPerMinute).toBe(2);
    // The target only the outer record carries is the call's, whichever record counted it.
    expect([...state.hosts]).toEqual(['payments.example']);
  });

  it('says which event counted the call, right after the second record is folded in, and marks the stored copy', () => {
    const state = fold([inner]);
    expect(sameCallOf(state, inner)).toBeUndefined();
    observe(state, outer);
    const same = sameCallOf(state, outer);
    expect(same).toEqual({ of: inner.id, firstArguments: true, firstResult: false });
    observe(state, next);
    expect(sameCallOf(state, next)).toBeUndefined();
    const marked = markedSameCall(outer, inner.id);
    expect(marked.tool?.sameCallOf).toBe(inner.id);
    expect(outer.tool?.sameCallOf).toBeUndefined();
  });

  it('gives the same summary in every arrival order, and the same as one record of each call', () => {
    const single = summarize(fold([outer, next]));
    const doubled = [outer, inner, next];
    for (const order of orders(doubled)) {
      const summary = summarize(fold(order));
      expect(summary, order.map((event) => event.spanId).join(',')).toMatchObject({
        events: single.events,
        toolCalls: single.toolCalls,
        tools: single.tools,
        hosts: single.hosts,
        errors: single.errors,
      });
    }
  });

  it('merges a chain of three instrumentations into one call in every order in which the middle is not last', () => {
    const top = toolSpan({ span: 'a', tool: 'search' });
    const middle = toolSpan({ span: 'b', parent: 'a', tool: 'search', startMs: T0 + 1 });
    const bottom = toolSpan({ span: 'c', parent: 'b', tool: 'search', startMs: T0 + 2 });
    for (const order of [
      [top, middle, bottom],
      [bottom, middle, top],
      [middle, top, bottom],
      [middle, bottom, top],
    ])
      expect(fold(order).counts.tool_call, order.map((event) => event.spanId).join(',')).toBe(1);
  });

  it('matches by call id when both records carry one, whatever the names', () => {
    const mcp = toolSpan({ span: 'p', tool: 'refund', detail: { callId: 'x-1' } });
    const sdk = toolSpan({ span: 'q', parent: 'p', tool: 'issue_refund', detail: { callId: 'x-1' } });
    expect(fold([mcp, sdk]).counts.tool_call).toBe(1);
    expect(fold([sdk, mcp]).counts.tool_call).toBe(1);
    expect(isSameCall({ name: 'a', callId: 'x' }, { name: 'b', callId: 'x' })).toBe(true);
    expect(isSameCall({ name: 'a', callId: 'x' }, { name: 'a', callId: 'y' })).toBe(false);
    expect(isSameCall({ name: 'a', callId: 'x' }, { name: 'a', callId: undefined })).toBe(true);
  });

  it('keeps two calls of one tool with different call ids apart (a tool that calls itself)', () => {
    const parent = toolSpan({ span: 'p', tool: 'search', detail: { callId: 'c1' } });
    const child = toolSpan({ span: 'q', parent: 'p', tool: 'search', detail: { callId: 'c2' } });
    for (const order of orders([parent, child])) expect(fold(order).counts.tool_call).toBe(2);
  });

  it('folds an error into the call once, and a result the counted record did not show', () => {
    const failingOuter = toolSpan({ span: 'o', tool: 'pay', error: true, detail: { resultRecorded: true } });
    const failingInner = toolSpan({ span: 'i', parent: 'o', tool: 'pay', error: true });
    for (const order of orders([failingOuter, failingInner])) {
      const state = fold(order);
      expect(state.errors).toBe(1);
      expect(state.resultsRecorded).toBe(1);
      expect(state.resultsUnrecorded).toBe(0);
      expect(state.failingTargets.size).toBe(1);
    }
    const quietInner = toolSpan({ span: 'i', parent: 'o', tool: 'pay' });
    expect(fold([quietInner, failingOuter]).errors).toBe(1);
  });

  it('folds the counterparties and amount of the second record into the task', () => {
    const withArgs = toolSpan({
      span: 'o',
      tool: 'send_payment',
      detail: { sideEffect: 'write', counterparties: [{ kind: 'account', key: 'abcdef0123456789' }], amount: 90 },
    });
    const bare = toolSpan({ span: 'i', parent: 'o', tool: 'send_payment' });
    const state = fold([bare, withArgs]);
    expect([...state.parties.keys()]).toEqual(['account:abcdef0123456789']);
    expect(state.parties.get('account:abcdef0123456789')?.atSink).toBe(true);
    expect(state.maxAmount).toBe(90);
    expect(state.counts.tool_call).toBe(1);
  });
});

describe('calls that stay calls of their own', () => {
  it('counts a different tool called inside a tool (an agent-as-tool calling a tool)', () => {
    const parent = toolSpan({ span: 'p', tool: 'research' });
    const child = toolSpan({ span: 'q', parent: 'p', tool: 'web_search' });
    for (const order of orders([parent, child])) {
      const state = fold(order);
      expect(state.counts.tool_call).toBe(2);
      expect(Object.fromEntries(state.tools)).toEqual({ research: 1, web_search: 1 });
    }
  });

  it('merges at most one child per record: a tool calling itself three times (no call ids) counts three, in every order', () => {
    const parent = toolSpan({ span: 'p', tool: 'search' });
    const children = [1, 2, 3].map((n) => toolSpan({ span: `c${String(n)}`, parent: 'p', tool: 'search' }));
    for (const order of orders([parent, ...children])) expect(fold(order).counts.tool_call).toBe(3);
  });

  it('takes at most MAX_RECORDS_PER_CALL records as one call: a deeper chain of same-named spans counts its further spans', () => {
    const chain = Array.from({ length: 6 }, (_, n) =>
      toolSpan({
        span: `s${String(n)}`,
        ...(n === 0 ? {} : { parent: `s${String(n - 1)}` }),
        tool: 'search',
        startMs: T0 + n,
      }),
    );
    expect(MAX_RECORDS_PER_CALL).toBe(3);
    expect(fold(chain).counts.tool_call).toBe(2);
    expect(fold([...chain].reverse()).counts.tool_call).toBe(2);
  });

  it('does not merge across traces, nor with a parent that is no tool call, nor without a parent', () => {
    const parent = toolSpan({ span: 'p', tool: 'search' });
    const otherTrace = toolSpan({ span: 'q', parent: 'p', tool: 'search', trace: 'trace-2' });
    expect(fold([parent, otherTrace]).counts.tool_call).toBe(2);
    expect(fold([otherTrace, parent]).counts.tool_call).toBe(2);

    const data: AgentEvent = { ...toolSpan({ span: 'd', tool: 'x' }), kind: 'data_access', data: { resource: 'db.t' } };
    delete data.tool;
    const underData = toolSpan({ span: 'q', parent: 'd', tool: 'x' });
    expect(fold([data, underData]).counts).toMatchObject({ tool_call: 1, data_access: 1 });

    const orphans = [toolSpan({ span: 'a', parent: '', tool: 'x' }), toolSpan({ span: 'b', parent: '', tool: 'x' })];
    expect(fold(orphans).counts.tool_call).toBe(2);
  });

  it('takes odd input without throwing: no span id, no tool detail, empty names, a span folded twice', () => {
    const noSpan = toolSpan({ span: '', parent: 'p', tool: 'x' });
    const noDetail = toolSpan({ span: 's', parent: 'p', tool: '' });
    delete noDetail.tool;
    const state = fold([noSpan, noSpan, noDetail, toolSpan({ span: 'p', tool: '' })]);
    expect(state.counts.tool_call).toBeGreaterThan(0);
    const again = fold([outer, inner, inner]);
    // A record folded twice (a redelivery past the processor's de-duplication) is still the same call.
    expect(again.counts.tool_call).toBe(1);
  });

  it('stays within MAX_SAME_CALL_SPANS spans and waiting children, the oldest forgotten first', () => {
    const index = newSameCallIndex();
    for (let i = 0; i < 3 * MAX_SAME_CALL_SPANS; i += 1)
      matchSameCall(index, toolSpan({ span: `s${String(i)}`, parent: `missing${String(i)}`, tool: 'x' }));
    expect(index.spans.size).toBe(MAX_SAME_CALL_SPANS);
    expect(index.waiting.size).toBeLessThanOrEqual(MAX_SAME_CALL_SPANS);
    // The newest child still finds its parent; the oldest waits no more.
    const last = 3 * MAX_SAME_CALL_SPANS - 1;
    expect(matchSameCall(index, toolSpan({ span: `missing${String(last)}`, tool: 'x' })).same).toBe(true);
    expect(matchSameCall(index, toolSpan({ span: 'missing0', tool: 'x' })).same).toBe(false);
  });
});

describe('loops and rates count the call once', () => {
  const limits: LoopLimits = {
    repeat: { alert: 2 },
    cycle: { alert: 2, minLength: 2, maxLength: 4 },
    noProgress: { alert: 2 },
    toolRate: { alert: 2, windowMs: 60_000 },
    taskRate: { alert: 2, windowMs: 60_000 },
    refuseForMs: 1000,
  };

  it('reaches no step on one call recorded twice, and counts the arguments the second record brings', () => {
    const loops = newLoopState();
    const state = newTaskState({ tenant: TENANT, taskId: 't', taskType: 'refund', agentId: 'a', startMs: T0 });
    const bare = toolSpan({ span: 'i', parent: 'o', tool: 'pay' });
    const withArgs = toolSpan({ span: 'o', tool: 'pay', detail: { argumentsHash: 'h1' } });
    const found = [bare, withArgs].flatMap((event) => {
      observe(state, event);
      return observeLoops(loops, event, limits, sameCallOf(state, event));
    });
    expect(found).toEqual([]);
    expect(loops.repeats.get('pay\u0000h1')).toBe(1);
    expect(loops.taskTimes).toHaveLength(1);
  });
});
