/**
 * The embedded bus: a bounded in-memory queue between the gateway and the processor in one process.
 * Publishing past `capacity` events is refused with PIPELINE_BUSY (the OTLP edge answers 429 with
 * Retry-After, and the SDK retries), so memory stays bounded. Each tenant holds at most `tenantCapacity` of it:
 * a tenant past its share is refused (PIPELINE_BUSY, naming the tenant) while other tenants' spans are still
 * accepted, so one tenant's burst cannot fill the bus for all. A handler failure (e.g. the store is down)
 * keeps the batch and retries it with backoff: nothing accepted is dropped.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClassifiedBatch } from '../core/classify.ts';
import { TriplineError, messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { EventBatch, EventPublisher, EventSource } from './bus.ts';

export interface InProcessBusOptions {
  capacity: number;
  /** Most events one tenant holds (waiting or in hand). @default capacity (no per-tenant share) */
  tenantCapacity?: number;
  batchSize: number;
  flushIntervalMs: number;
  logger: Logger;
  /** Longest wait between retries of a failing handler. */
  maxRetryDelayMs?: number;
}

export interface InProcessBus extends EventPublisher, EventSource {
  /** Events waiting or in hand. */
  depth(): number;
  /** Resolves when every event published so far has been handled. */
  drained(): Promise<void>;
}

export function createInProcessBus(options: InProcessBusOptions): InProcessBus {
  const queue: ClassifiedBatch[] = [];
  let queuedEvents = 0;
  let inHand = 0;
  /** Per tenant, its events waiting or in hand. */
  const held = new Map<string, number>();
  let inHandByTenant = new Map<string, number>();
  const tenantCapacity = Math.min(options.tenantCapacity ?? options.capacity, options.capacity);
  let handler: ((batch: EventBatch) => Promise<void>) | undefined;
  let wake: (() => void) | undefined;
  let loop: Promise<void> | undefined;
  let stopping = false;
  let closed = false;
  const drainWaiters: (() => void)[] = [];

  const sizeOf = (batch: EventBatch): number =>
    batch.events.length + batch.boundaries.length + (batch.usages?.length ?? 0);

  /** The batch's events per tenant (a gateway's batch is one request's: one tenant). */
  function tenantsOf(batch: EventBatch): Map<string, number> {
    const counts = new Map<string, number>();
    for (const item of [...batch.events, ...batch.boundaries, ...(batch.usages ?? [])])
      counts.set(item.tenant, (counts.get(item.tenant) ?? 0) + 1);
    return counts;
  }

  function release(counts: ReadonlyMap<string, number>): void {
    for (const [tenant, count] of counts) {
      const left = (held.get(tenant) ?? 0) - count;
      if (left > 0) held.set(tenant, left);
      else held.delete(tenant);
    }
  }

  function notifyDrained(): void {
    if (queuedEvents + inHand > 0) return;
    for (const resolve of drainWaiters.splice(0)) resolve();
  }

  function take(): EventBatch {
    const merged: EventBatch = { events: [], boundaries: [], usages: [] };
    while (queue.length > 0 && merged.events.length < options.batchSize) {
      const next = queue.shift();
      if (next === undefined) break;
      merged.events.push(...next.events);
      merged.boundaries.push(...next.boundaries);
      if (next.usages.length > 0) merged.usages?.push(...next.usages);
    }
    return merged;
  }

  async function run(): Promise<void> {
    let failures = 0;
    let pending: EventBatch | undefined;
    while (!stopping || pending !== undefined || queue.length > 0) {
      if (pending === undefined) {
        if (queue.length === 0) {
          if (stopping) break;
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          continue;
        }
        // A short wait lets a trickle of small requests share one store write; under load the queue fills while
        // the previous batch is handled, so batches grow without waiting.
        if (options.flushIntervalMs > 0 && queuedEvents < options.batchSize && !stopping)
          await sleep(options.flushIntervalMs);
        pending = take();
        const size = sizeOf(pending);
        queuedEvents -= size;
        inHand = size;
        inHandByTenant = tenantsOf(pending);
      }
      try {
        if (handler === undefined) throw new Error('bus started without a handler');
        await handler(pending);
        pending = undefined;
        inHand = 0;
        release(inHandByTenant);
        inHandByTenant = new Map();
        failures = 0;
        notifyDrained();
      } catch (error) {
        failures += 1;
        const delay = Math.min(options.maxRetryDelayMs ?? 5000, 50 * 2 ** Math.min(failures, 10));
        options.logger.error(
          { err: messageOf(error), failures, retryInMs: delay, events: inHand },
          'processing a batch failed; retrying',
        );
        if (stopping && failures >= 3) {
          options.logger.error({ events: inHand + queuedEvents }, 'stopping with unprocessed events');
          break;
        }
        await sleep(delay);
      }
    }
  }

  return {
    publish(batch) {
      if (closed)
        return Promise.reject(
          new TriplineError('SHUTTING_DOWN', 'Tripline is stopping', { details: { retryAfterSeconds: 5 } }),
        );
      const size = sizeOf(batch);
      if (size === 0) return Promise.resolve();
      if (size > options.capacity) {
        // No wait makes room for it: answering 429 would have the client retry the same batch forever.
        return Promise.reject(
          new TriplineError(
            'OTLP_PAYLOAD_TOO_LARGE',
            `the request holds ${size} events, more than the pipeline holds (${options.capacity}); send smaller batches`,
          ),
        );
      }
      if (queuedEvents + inHand + size > options.capacity) {
        return Promise.reject(
          new TriplineError(
            'PIPELINE_BUSY',
            `the pipeline holds ${queuedEvents + inHand} events (capacity ${options.capacity}); retry later`,
            {
              details: { retryAfterSeconds: 1 },
            },
          ),
        );
      }
      const tenants = tenantsOf(batch);
      for (const [tenant, count] of tenants) {
        const holds = held.get(tenant) ?? 0;
        if (holds + count <= tenantCapacity) continue;
        return Promise.reject(
          new TriplineError(
            'PIPELINE_BUSY',
            `tenant ${JSON.stringify(tenant)} holds ${holds} events of the pipeline (its share is ${tenantCapacity}); retry later`,
            { details: { retryAfterSeconds: 1 } },
          ),
        );
      }
      for (const [tenant, count] of tenants) held.set(tenant, (held.get(tenant) ?? 0) + count);
      queue.push(batch);
      queuedEvents += size;
      wake?.();
      return Promise.resolve();
    },
    start(batchHandler) {
      handler = batchHandler;
      loop ??= run();
      return Promise.resolve();
    },
    async stop() {
      closed = true;
      stopping = true;
      wake?.();
      await loop;
    },
    async close() {
      closed = true;
      await Promise.resolve();
    },
    depth: () => queuedEvents + inHand,
    drained() {
      if (queuedEvents + inHand === 0) return Promise.resolve();
      return new Promise<void>((resolve) => drainWaiters.push(resolve));
    },
  };
}
