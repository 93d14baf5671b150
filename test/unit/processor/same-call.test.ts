/**
 * One tool call recorded by two instrumentations (a framework's own `execute_tool` span inside OpenInference's tool
 * span) through the processor, on the in-memory store: counted once whether both records come in one batch or in
 * two, child first or parent first, and across a restart in between (the task rebuilt from its stored events); the
 * second record is stored marked with the event that counted the call; the learner's summary of the stored events
 * counts the call once too.
 */
import { describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../../schemas/events.ts';
import { summarizeStored } from '../../../services/detection/stored-task.ts';
import type { MemoryStore } from '../../../services/store/memory-store.ts';
import { TENANT, startProcessor } from './harness.ts';

const NOW = Date.now() - 60_000;

/** A task's calls: `issue_refund` recorded by OpenInference (`oi`, with arguments) and by AutoGen (`core`, inside it). */
function recordedTwice(taskId: string): { outer: AgentEvent; inner: AgentEvent; next: AgentEvent } {
  const traceId = `trace-${taskId}`;
  const event = (spanId: string, parentSpanId: string, tool: string, startMs: number, name: string): AgentEvent => ({
    id: `${traceId}${spanId}`,
    tenant: TENANT,
    kind: 'tool_call',
    taskId,
    taskType: 'support_refund',
    agentId: 'support-agent',
    traceId,
    spanId,
    parentSpanId,
    name,
    startMs,
    endMs: startMs + 20,
    error: false,
    tool: { name: tool },
    attributes: {},
  });
  const outer = event('oi', 'run', 'issue_refund', NOW, 'support_agent.issue_refund');
  outer.tool = { name: 'issue_refund', argumentKeys: ['amount', 'order_id'], argumentsHash: 'h1' };
  const inner = event('core', 'oi', 'issue_refund', NOW + 1, 'execute_tool issue_refund');
  inner.tool = { name: 'issue_refund', callId: 'call_0' };
  const next = event('next', 'run', 'get_order', NOW + 100, 'support_agent.get_order');
  return { outer, inner, next };
}

async function stored(store: MemoryStore, taskId: string): Promise<AgentEvent[]> {
  return (await store.eventsForTask(TENANT, taskId)).map(({ event }) => event);
}

describe('a tool call recorded twice, through the processor', () => {
  type Records = ReturnType<typeof recordedTwice>;
  it.each([
    // In one batch the events are scored in start order: the outer record counts, whatever the arrival order.
    ['in one batch, child first', (e: Records) => [[e.inner, e.outer, e.next]], 'inner'],
    ['in two batches, child first', (e: Records) => [[e.inner], [e.outer, e.next]], 'outer'],
    ['in two batches, parent first', (e: Records) => [[e.outer], [e.inner, e.next]], 'inner'],
  ] as const)('counts it once %s, and stores the second record marked', async (label, batches, marked) => {
    const h = await startProcessor();
    const taskId = `twice-${label.replaceAll(/\W+/g, '-')}`;
    const events = recordedTwice(taskId);
    for (const batch of batches(events)) await h.processor.handle({ events: batch, boundaries: [] });
    expect(h.processor.taskSnapshot(TENANT, taskId)).toMatchObject({ status: 'active' });
    const record = await h.store.getTask(TENANT, taskId);
    expect(record?.counts).toEqual({ tool_call: 2, data_access: 0, privilege_change: 0 });
    const rows = await stored(h.store, taskId);
    expect(rows).toHaveLength(3);
    const second = events[marked];
    const counted = marked === 'inner' ? events.outer : events.inner;
    expect(rows.filter((event) => event.tool?.sameCallOf !== undefined).map((event) => event.id)).toEqual([second.id]);
    expect(rows.find((event) => event.id === second.id)?.tool?.sameCallOf).toBe(counted.id);
    // The learner reads the stored events: the call counts once there too.
    const summary = summarizeStored(
      { tenant: TENANT, taskId, taskType: 'support_refund', agentId: 'support-agent', endMs: NOW + 200 },
      rows,
    );
    expect(summary).toMatchObject({ toolCalls: 2, tools: { issue_refund: 1, get_order: 1 } });
    await h.processor.stop();
  });

  it('counts it once when the processor restarts between the two records (the task rebuilt from the store)', async () => {
    const first = await startProcessor();
    const taskId = 'twice-restart';
    const { outer, inner, next } = recordedTwice(taskId);
    await first.processor.handle({ events: [inner], boundaries: [] });
    await first.processor.stop();

    const second = await startProcessor({ store: first.store });
    await second.processor.handle({ events: [outer, next], boundaries: [] });
    expect((await second.store.getTask(TENANT, taskId))?.counts.tool_call).toBe(2);
    const rows = await stored(second.store, taskId);
    expect(rows.find((event) => event.id === outer.id)?.tool?.sameCallOf).toBe(inner.id);
    expect(rows.find((event) => event.id === inner.id)?.tool?.sameCallOf).toBeUndefined();
    await second.processor.stop();
  });
});
