/**
 * Bad input on the way to the processor, on the in-process bus and the memory store (the gateway's path: decode,
 * classify, publish): a request with a malformed field is refused whole with a typed error before it reaches the
 * bus; a malformed attribute value is dropped and its span scored without it, with the rest of the batch; an event
 * delivered twice counts once; an unreadable stored baseline is logged and skipped; a write the store refuses as
 * invalid fails its batch with the store's typed error, and the next batches go on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { OtlpTraceRequest } from '../../../schemas/otlp.ts';
import { createInProcessBus } from '../../../services/bus/in-process-bus.ts';
import type { InProcessBus } from '../../../services/bus/in-process-bus.ts';
import { classifyRequest } from '../../../services/core/classify.ts';
import { decodeTraceRequest } from '../../../services/otlp/codec.ts';
import { TriplineError } from '../../../services/shared/errors.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import { createMemoryStore } from '../../../services/store/memory-store.ts';
import type { MemoryStore } from '../../../services/store/memory-store.ts';
import { benignTask, rng, taskCtx, toolCall } from '../detect/fixtures.ts';
import { TENANT, newSpanId, newTraceId, request, span, startProcessor, toolSpan } from './harness.ts';
import type { Harness } from './harness.ts';

const OTLP_TENANT = 'default';
const NOW = Date.now() - 3_600_000;
const RESOURCE = { 'service.name': 'orders', 'tripline.task.type': 'order_lookup' };
const running: { h: Harness; bus: InProcessBus }[] = [];

async function pipeline(): Promise<{ h: Harness; bus: InProcessBus; receive: (body: string) => Promise<void> }> {
  const h = await startProcessor();
  const bus = createInProcessBus({
    capacity: 1000,
    batchSize: 100,
    flushIntervalMs: 0,
    logger: createLogger('silent'),
  });
  await bus.start((batch) => h.processor.handle(batch));
  running.push({ h, bus });
  // What the OTLP route does with a request body: decode (typed errors), classify, publish.
  const receive = async (body: string): Promise<void> => {
    const decoded: OtlpTraceRequest = decodeTraceRequest(new TextEncoder().encode(body), 'json');
    await bus.publish(classifyRequest(decoded, OTLP_TENANT), decoded);
    await bus.drained();
  };
  return { h, bus, receive };
}

afterEach(async () => {
  for (const { h, bus } of running.splice(0)) {
    await bus.stop();
    await h.processor.stop();
  }
});

describe('bad input (in-process bus, memory store)', () => {
  it('refuses a request with a malformed field with a typed error before the bus, and scores the next one', async () => {
    const { h, bus, receive } = await pipeline();
    const trace = newTraceId();
    const spans = [toolSpan(trace, '', 'get_order', NOW), toolSpan(trace, '', 'issue_refund', NOW + 100)];
    const body = JSON.stringify(request(RESOURCE, spans));
    const broken = body.replace(
      `"startTimeUnixNano":"${spans[1]?.startTimeUnixNano ?? ''}"`,
      '"startTimeUnixNano":"soon"',
    );
    expect(broken).not.toBe(body);

    const refused = await receive(broken).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(TriplineError);
    expect(refused).toMatchObject({
      code: 'OTLP_BAD_REQUEST',
      status: 400,
      retriable: false,
      message: expect.stringContaining('spans[1].startTimeUnixNano') as string,
    });
    expect(bus.depth()).toBe(0);
    expect(h.store.allEvents()).toEqual([]);

    await receive(body);
    expect(await h.store.getTask(OTLP_TENANT, trace)).toMatchObject({ status: 'active', counts: { tool_call: 2 } });
    expect(h.errors).toEqual([]);
  });

  it('drops a malformed attribute value and scores its span without it, with the rest of the batch', async () => {
    const { h, receive } = await pipeline();
    const trace = newTraceId();
    const root = newSpanId();
    const read = span({
      traceId: trace,
      parentSpanId: root,
      name: 'SELECT orders',
      startMs: NOW + 50,
      endMs: NOW + 60,
      attributes: {
        'db.system': 'postgresql',
        'db.collection.name': 'orders',
        'db.response.returned_rows': 'many',
        'tripline.data.classification': 'galactic',
      },
    });
    await receive(
      JSON.stringify(
        request(RESOURCE, [toolSpan(trace, root, 'get_order', NOW), read, toolSpan(trace, root, 'reply', NOW + 100)]),
      ),
    );

    const stored = await h.store.eventsForTask(OTLP_TENANT, trace);
    expect(stored.map(({ event }) => event.kind)).toEqual(['tool_call', 'data_access', 'tool_call']);
    expect(stored[1]?.event.data).toEqual({ resource: 'orders', system: 'postgresql' });
    expect(stored.every(({ verdict }) => Number.isFinite(verdict.score))).toBe(true);
    expect(await h.store.getTask(OTLP_TENANT, trace)).toMatchObject({
      status: 'active',
      counts: { tool_call: 2, data_access: 1, privilege_change: 0 },
    });
    expect(h.errors).toEqual([]);
  });

  it('counts an event delivered twice in one batch once', async () => {
    const { processor, store } = await startProcessor();
    const ctx = taskCtx('summarize_ticket', 'twice', 'agent-1', NOW);
    const event = toolCall(ctx, 'get_ticket');
    await processor.handle({ events: [event, { ...event }], boundaries: [] });
    expect(await store.eventsForTask(TENANT, 'twice')).toHaveLength(1);
    expect((await store.getTask(TENANT, 'twice'))?.counts.tool_call).toBe(1);
    await processor.stop();
  });

  it('logs and skips an unreadable stored baseline, scoring against none', async () => {
    const store = createMemoryStore();
    await store.saveBaselines([
      {
        tenant: TENANT,
        taskType: 'summarize_ticket',
        agentId: '',
        tasks: 40,
        model: '{"not": "a baseline"',
        updatedMs: NOW,
      },
    ]);
    const { processor, errors } = await startProcessor({ store });
    expect(errors).toEqual([
      expect.objectContaining({
        msg: 'ignoring an unreadable baseline',
        tenant: TENANT,
        taskType: 'summarize_ticket',
        agentId: '',
      }),
    ]);
    expect(processor.baselines().get(TENANT, 'summarize_ticket')).toBeUndefined();
    const task = benignTask('summarize_ticket', 'after-bad-baseline', rng(4), { start: NOW });
    await processor.handle({ events: task.events, boundaries: [] });
    expect((await store.eventsForTask(TENANT, 'after-bad-baseline')).map(({ verdict }) => verdict.regime)).toEqual(
      task.events.map(() => 'rules'),
    );
    await processor.stop();
  });

  it("fails a batch the store refuses as invalid with the store's typed error, and writes the next ones", async () => {
    const store: MemoryStore = createMemoryStore();
    const refusing: MemoryStore = {
      ...store,
      insertEvents: (rows) =>
        rows.some(({ event }) => event.taskId === 'refused')
          ? Promise.reject(new TriplineError('VALIDATION_FAILED', 'an event the store cannot take'))
          : store.insertEvents(rows),
    };
    const { processor } = await startProcessor({ store: refusing });
    const bad = taskCtx('summarize_ticket', 'refused', 'agent-1', NOW);
    toolCall(bad, 'get_ticket');
    await expect(processor.handle({ events: bad.events, boundaries: [] })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    const good = benignTask('summarize_ticket', 'accepted', rng(6), { start: NOW });
    await processor.handle({ events: good.events, boundaries: [] });
    expect(await store.eventsForTask(TENANT, 'accepted')).toHaveLength(good.events.length);
    expect(await store.eventsForTask(TENANT, 'refused')).toEqual([]);
    await processor.stop();
  });
});
