/**
 * Which task an event is, and when a task ends, through classification and the processor on the memory store:
 * a trace without a declared task is the task, and its root ends it; a task id declared after the trace's first
 * spans becomes the name of the task they began; a root that arrives before its events still ends their task; a
 * root without events makes no task; a task ends once, however many roots say so; events of a task that arrive
 * after it ended are scored as such.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { classifyRequest } from '../../../services/core/classify.ts';
import type { Processor } from '../../../services/processor/processor.ts';
import { dataAccess, taskCtx, toolCall } from '../detect/fixtures.ts';
import {
  TENANT,
  newSpanId,
  newTraceId,
  request,
  revocationsOf,
  rootOf,
  span,
  startProcessor,
  toolSpan,
} from './harness.ts';
import type { Attrs, Harness } from './harness.ts';

const OTLP_TENANT = 'default';
const RESOURCE: Attrs = { 'service.name': 'refund-service', 'tripline.task.type': 'customer_refund' };
let t = Date.now() - 6 * 3_600_000;
const started: Harness[] = [];

async function start(...args: Parameters<typeof startProcessor>): Promise<Harness> {
  const h = await startProcessor(...args);
  started.push(h);
  return h;
}

async function send(processor: Processor, spans: Parameters<typeof request>[1], resource = RESOURCE): Promise<void> {
  const { events, boundaries } = classifyRequest(request(resource, spans), OTLP_TENANT);
  await processor.handle({ events, boundaries });
}

afterEach(async () => {
  for (const h of started.splice(0)) await h.processor.stop();
});

describe('task identity and task ends (memory store)', () => {
  it('takes the trace as the task when nothing declares one, and completes and learns it when its root ends', async () => {
    const ended: { taskId: string; endMs: number }[] = [];
    const { processor, store } = await start({
      hooks: { onTaskEnded: (_tenant, taskId, endMs) => ended.push({ taskId, endMs }) },
    });
    const trace = newTraceId();
    const root = newSpanId();
    t += 60_000;
    await send(processor, [toolSpan(trace, root, 'get_order', t + 10), toolSpan(trace, root, 'issue_refund', t + 40)]);
    expect(await store.getTask(OTLP_TENANT, trace)).toMatchObject({
      taskId: trace,
      name: '',
      status: 'active',
      taskType: 'customer_refund',
      agentId: 'refund-agent',
    });
    await send(processor, [
      span({
        traceId: trace,
        spanId: root,
        name: 'invoke_agent refund-agent',
        startMs: t,
        endMs: t + 80,
        attributes: { 'gen_ai.operation.name': 'invoke_agent' },
      }),
    ]);
    expect(await store.getTask(OTLP_TENANT, trace)).toMatchObject({
      status: 'completed',
      endedMs: t + 80,
      counts: { tool_call: 2 },
    });
    expect(processor.baselines().get(OTLP_TENANT, 'customer_refund')?.tasks).toBe(1);
    // The same root delivered again ends nothing twice and teaches nothing twice.
    await send(processor, [
      span({
        traceId: trace,
        spanId: root,
        name: 'invoke_agent refund-agent',
        startMs: t,
        endMs: t + 80,
        attributes: { 'gen_ai.operation.name': 'invoke_agent' },
      }),
    ]);
    expect(ended).toEqual([{ taskId: trace, endMs: t + 80 }]);
    expect(processor.baselines().get(OTLP_TENANT, 'customer_refund')?.tasks).toBe(1);
  });

  it('names the task its first spans began with the task id a later wrapper span declares', async () => {
    const { processor, store, messages } = await start();
    const trace = newTraceId();
    const wrapper = newSpanId();
    t += 60_000;
    await send(processor, [
      toolSpan(trace, wrapper, 'get_order', t + 10),
      toolSpan(trace, wrapper, 'issue_refund', t + 50),
    ]);
    expect(processor.taskSnapshot(OTLP_TENANT, 'refund-42')).toBeUndefined();
    await send(processor, [
      span({
        traceId: trace,
        spanId: wrapper,
        name: 'task customer_refund',
        startMs: t,
        endMs: t + 95,
        attributes: { 'tripline.task.id': 'refund-42' },
      }),
    ]);
    // Stored under the trace id it began with, found by either.
    expect(await store.getTask(OTLP_TENANT, 'refund-42')).toMatchObject({
      taskId: trace,
      name: 'refund-42',
      status: 'completed',
      counts: { tool_call: 2 },
    });
    expect(processor.taskSnapshot(OTLP_TENANT, 'refund-42')).toMatchObject({
      status: 'completed',
      taskType: 'customer_refund',
      agentId: 'refund-agent',
    });
    expect(processor.taskSnapshot(OTLP_TENANT, trace)).toEqual(processor.taskSnapshot(OTLP_TENANT, 'refund-42'));
    // A later span of the trace that declares the name belongs to the same task; a person kills it by its name.
    const notify = toolSpan(trace, wrapper, 'notify', t + 60);
    notify.attributes.push({ key: 'tripline.task.id', value: { stringValue: 'refund-42' } });
    await send(processor, [notify]);
    expect((await store.getTask(OTLP_TENANT, trace))?.counts.tool_call).toBe(3);
    const kill = await processor.revoke({ tenant: OTLP_TENANT, taskId: 'refund-42', actor: 'alice', reason: 'check' });
    expect(kill).toMatchObject({ taskId: trace, action: 'revoke' });
    expect(revocationsOf(messages).map((item) => item.taskId)).toEqual([trace]);
    expect((await store.getTask(OTLP_TENANT, 'refund-42'))?.status).toBe('revoked');
  });

  it('ends the task of a root that arrived before its events, and makes no task of a root without events', async () => {
    const { processor, store } = await start();
    const quiet = newTraceId();
    t += 60_000;
    await send(processor, [span({ traceId: quiet, name: 'GET /health', startMs: t, endMs: t + 2 })]);
    expect(await store.getTask(OTLP_TENANT, quiet)).toBeNull();
    expect(processor.liveTasks()).toBe(0);

    const trace = newTraceId();
    const root = newSpanId();
    await send(processor, [
      span({
        traceId: trace,
        spanId: root,
        name: 'invoke_agent refund-agent',
        startMs: t,
        endMs: t + 80,
        attributes: { 'gen_ai.operation.name': 'invoke_agent' },
      }),
    ]);
    expect(await store.getTask(OTLP_TENANT, trace)).toBeNull();
    await send(processor, [
      span({
        traceId: trace,
        parentSpanId: root,
        name: 'SELECT',
        startMs: t + 10,
        endMs: t + 12,
        attributes: { 'db.system': 'sqlite', 'db.statement': 'SELECT * FROM orders WHERE id = ?' },
      }),
    ]);
    expect(await store.getTask(OTLP_TENANT, trace)).toMatchObject({
      status: 'completed',
      endedMs: t + 80,
      counts: { tool_call: 0, data_access: 1 },
    });
  });

  it('applies a declaration of the task type before the end beside it, so the task is learned as that type', async () => {
    const { processor, store } = await start();
    const trace = newTraceId();
    const root = newSpanId();
    t += 60_000;
    const resource = { 'service.name': 'orders' };
    await send(processor, [toolSpan(trace, root, 'get_order', t + 10)], resource);
    expect((await store.getTask(OTLP_TENANT, trace))?.taskType).toBe('unknown');
    await send(
      processor,
      [
        span({
          traceId: trace,
          parentSpanId: root,
          name: 'declare',
          startMs: t + 20,
          endMs: t + 21,
          attributes: { 'tripline.task.type': 'order_lookup' },
        }),
        span({
          traceId: trace,
          spanId: root,
          name: 'invoke_agent',
          startMs: t,
          endMs: t + 50,
          attributes: { 'gen_ai.operation.name': 'invoke_agent' },
        }),
      ],
      resource,
    );
    expect(await store.getTask(OTLP_TENANT, trace)).toMatchObject({ taskType: 'order_lookup', status: 'completed' });
    expect(processor.baselines().get(OTLP_TENANT, 'order_lookup')?.tasks).toBe(1);
    expect(processor.baselines().get(OTLP_TENANT, 'unknown')).toBeUndefined();
  });

  it('keeps an ended task in memory, bounded, to score its late events as after its end', async () => {
    const { processor, store } = await start({ endedTaskMemory: 1 });
    const ctx = taskCtx('summarize_ticket', 'ends-early', 'agent-1', t);
    toolCall(ctx, 'get_ticket', { type: 'function', sideEffect: 'read' });
    dataAccess(ctx, 'tickets/1', { rows: 1 });
    await processor.handle({ events: [...ctx.events], boundaries: [rootOf(ctx.events)] });
    expect(processor.taskSnapshot(TENANT, 'ends-early')).toMatchObject({ status: 'completed' });

    // Credentials used after the task ended: an event of the task from another trace, started after its end.
    const late = taskCtx('summarize_ticket', 'ends-early', 'agent-1', ctx.t + 60_000);
    late.seq = ctx.seq;
    const lateEvent = dataAccess(late, 'crm.customers', { rows: 500, classification: 'restricted' });
    await processor.handle({
      events: [{ ...lateEvent, traceId: 'another-trace', id: 'another-trace:late' }],
      boundaries: [],
    });
    const record = await store.getTask(TENANT, 'ends-early');
    expect(record).toMatchObject({ status: 'revoked', decision: 'revoke' });
    expect(record?.reasons.join(' ')).toMatch(/after the task ended/);

    // Memory is bounded: another ended task pushes it out (the store still has it).
    const next = taskCtx('summarize_ticket', 'ends-next', 'agent-1', t + 1000);
    toolCall(next, 'get_ticket');
    await processor.handle({ events: [...next.events], boundaries: [rootOf(next.events)] });
    expect(processor.taskSnapshot(TENANT, 'ends-early')).toBeUndefined();
    expect(processor.liveTasks()).toBe(1);
    expect((await store.getTask(TENANT, 'ends-early'))?.status).toBe('revoked');
  });
});
