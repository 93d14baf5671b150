import { describe, expect, it } from 'vitest';
import type { ClassifiedBatch } from '../../services/core/classify.ts';
import type { EventBatch } from '../../services/bus/bus.ts';
import { createInProcessBus } from '../../services/bus/in-process-bus.ts';
import { createLogger } from '../../services/shared/logger.ts';
import type { AgentEvent } from '../../schemas/events.ts';
import { TriplineError } from '../../services/shared/errors.ts';

const logger = createLogger('silent');
const request = { resourceSpans: [] };

function batchOf(count: number, prefix = 'e'): ClassifiedBatch {
  const events = Array.from({ length: count }, (_, index) => ({ id: `${prefix}${index}` }) as AgentEvent);
  return { events, boundaries: [], usages: [], usageOnly: 0, dropped: 0 };
}

describe('in-process bus', () => {
  it('delivers every published event in order, in batches', async () => {
    const bus = createInProcessBus({ capacity: 1000, batchSize: 50, flushIntervalMs: 0, logger });
    const seen: string[] = [];
    const sizes: number[] = [];
    await bus.start((batch: EventBatch) => {
      sizes.push(batch.events.length);
      seen.push(...batch.events.map((event) => event.id));
      return Promise.resolve();
    });
    for (let i = 0; i < 10; i += 1) await bus.publish(batchOf(20, `b${i}-`), request);
    await bus.drained();
    expect(seen).toHaveLength(200);
    expect(seen[0]).toBe('b0-0');
    expect(seen.at(-1)).toBe('b9-19');
    await bus.stop();
  });

  it('refuses past capacity with PIPELINE_BUSY and a retry delay, and accepts again once drained', async () => {
    let release: () => void = () => undefined;
    const bus = createInProcessBus({ capacity: 100, batchSize: 1000, flushIntervalMs: 0, logger });
    await bus.start(() => new Promise<void>((resolve) => (release = resolve)));
    await bus.publish(batchOf(60), request);
    const refused = await bus.publish(batchOf(60), request).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(TriplineError);
    expect(refused).toMatchObject({
      code: 'PIPELINE_BUSY',
      status: 429,
      retriable: true,
      details: { retryAfterSeconds: 1 },
    });
    release();
    await bus.drained();
    await expect(bus.publish(batchOf(60), request)).resolves.toBeUndefined();
    release();
    await bus.stop();
  });

  it('retries a failing handler with the same batch and loses nothing', async () => {
    const bus = createInProcessBus({ capacity: 1000, batchSize: 1000, flushIntervalMs: 0, logger, maxRetryDelayMs: 5 });
    let attempts = 0;
    const delivered: string[] = [];
    await bus.start((batch) => {
      attempts += 1;
      if (attempts < 3) return Promise.reject(new Error('store down'));
      delivered.push(...batch.events.map((event) => event.id));
      return Promise.resolve();
    });
    await bus.publish(batchOf(5), request);
    await bus.drained();
    expect(attempts).toBe(3);
    expect(delivered).toEqual(['e0', 'e1', 'e2', 'e3', 'e4']);
    await bus.stop();
  });

  it('drains on stop and then refuses with SHUTTING_DOWN', async () => {
    const bus = createInProcessBus({ capacity: 1000, batchSize: 10, flushIntervalMs: 0, logger });
    const delivered: string[] = [];
    await bus.start((batch) => {
      delivered.push(...batch.events.map((event) => event.id));
      return Promise.resolve();
    });
    await bus.publish(batchOf(30), request);
    await bus.stop();
    expect(delivered).toHaveLength(30);
    await expect(bus.publish(batchOf(1), request)).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
  });
});
