/**
 * The notification dispatcher: routes each notification to the destinations whose rules match (kind, minimum
 * severity, task types) and delivers it there without ever making the caller wait.
 *
 * Isolation: `notify()` only enqueues (synchronous, O(destinations)); each destination has its own bounded
 * queue and its own workers (`concurrency`), so a destination that hangs or fails uses up its own workers and
 * retries and nothing else — the kill that raised the notification, and every other destination, go on at once.
 * Each destination's queue is shared fairly between tenants: every tenant has its own queue (delivered in turn),
 * holding at most `maxQueuedPerTenant`; a tenant past its share drops its own oldest notification, and when the
 * destination holds `maxQueued` the tenant holding the most drops its oldest, so one tenant's flood never evicts
 * another tenant's notifications. Every drop is logged with its tenant and counted (`dropped()`). Each destination sends a
 * notification id at most once (recent ids are remembered), so the same event reaching the dispatcher twice
 * (e.g. from the kill switch and from the verifier) is delivered once.
 */
import { messageOf } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { PostResult } from '../http-client.ts';
import type { NotifierConfig } from './config.ts';
import { severityAtLeast } from './notification.ts';
import type { Notification } from './notification.ts';
import { createTarget } from './targets.ts';
import type { NotifierTarget } from './targets.ts';

export interface DeliveryRecord {
  destination: string;
  notificationId: string;
  kind: Notification['kind'];
  ok: boolean;
  status?: number;
  error?: string;
  attempts: number;
  elapsedMs: number;
  /** From notify() to the end of the delivery. */
  totalMs: number;
}

export interface Dispatcher {
  /** Enqueue for every matching destination; returns at once with the destinations it was queued for. */
  notify(notification: Notification): string[];
  /** Resolves when every queue is empty and no delivery is in flight (tests, shutdown). */
  idle(): Promise<void>;
  /** The most recent deliveries (newest last), for tests and the log. */
  recent(): DeliveryRecord[];
  onDelivery(listener: (record: DeliveryRecord) => void): () => void;
  /** Notifications dropped from full queues so far, per destination and tenant. */
  dropped(): { destination: string; tenant: string; count: number }[];
  stop(options?: { drainMs?: number }): Promise<void>;
}

interface Queued {
  notification: Notification;
  queuedAt: number;
}

interface Destination {
  config: NotifierConfig;
  target: NotifierTarget;
  /** Per tenant, oldest first; the map's order is the delivery turn (a tenant served moves to the end). */
  queues: Map<string, Queued[]>;
  queued: number;
  /** Per tenant, notifications dropped from this destination's full queue. */
  dropped: Map<string, number>;
  inFlight: number;
  sent: Set<string>;
}

export function matches(config: NotifierConfig, notification: Notification): boolean {
  return (
    config.kinds.includes(notification.kind) &&
    severityAtLeast(notification.severity, config.minSeverity) &&
    (config.taskTypes.length === 0 || config.taskTypes.includes(notification.taskType))
  );
}

export function createDispatcher(
  configs: readonly NotifierConfig[],
  logger: Logger,
  targets: (config: NotifierConfig) => NotifierTarget = createTarget,
): Dispatcher {
  const destinations: Destination[] = configs.map((config) => ({
    config,
    target: targets(config),
    queues: new Map(),
    queued: 0,
    dropped: new Map(),
    inFlight: 0,
    sent: new Set(),
  }));
  const abort = new AbortController();
  const history: DeliveryRecord[] = [];
  const listeners = new Set<(record: DeliveryRecord) => void>();
  let idleWaiters: (() => void)[] = [];
  let stopped = false;

  function busy(): boolean {
    return destinations.some((destination) => destination.queued > 0 || destination.inFlight > 0);
  }

  function settleIdle(): void {
    if (busy()) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  function record(destination: Destination, item: Queued, result: PostResult): void {
    const entry: DeliveryRecord = {
      destination: destination.config.name,
      notificationId: item.notification.id,
      kind: item.notification.kind,
      ok: result.ok,
      attempts: result.attempts,
      elapsedMs: result.elapsedMs,
      totalMs: performance.now() - item.queuedAt,
      ...(result.status === undefined ? {} : { status: result.status }),
      ...(result.error === undefined ? {} : { error: result.error }),
    };
    history.push(entry);
    if (history.length > 1000) history.shift();
    if (result.ok)
      logger.debug(
        { notifier: entry.destination, kind: entry.kind, attempts: entry.attempts, ms: Math.round(entry.elapsedMs) },
        'notification delivered',
      );
    else
      logger.error(
        {
          notifier: entry.destination,
          kind: entry.kind,
          attempts: entry.attempts,
          status: entry.status,
          err: entry.error,
        },
        'notification not delivered',
      );
    for (const listener of listeners) {
      try {
        listener(entry);
      } catch (error) {
        logger.error({ err: messageOf(error) }, 'a delivery listener failed');
      }
    }
  }

  /** The next notification to deliver: the oldest of the tenant whose turn it is. */
  function next(destination: Destination): Queued | undefined {
    for (const [tenant, queue] of destination.queues) {
      const item = queue.shift();
      destination.queues.delete(tenant);
      if (queue.length > 0) destination.queues.set(tenant, queue);
      if (item === undefined) continue;
      destination.queued -= 1;
      return item;
    }
    return undefined;
  }

  /** Drops the oldest notification of `tenant` (its share, or the destination, is full), logged and counted. */
  function dropOldest(destination: Destination, tenant: string, why: string): void {
    const queue = destination.queues.get(tenant);
    const dropped = queue?.shift();
    if (queue === undefined || dropped === undefined) return;
    if (queue.length === 0) destination.queues.delete(tenant);
    destination.queued -= 1;
    const count = (destination.dropped.get(tenant) ?? 0) + 1;
    destination.dropped.set(tenant, count);
    logger.error(
      { notifier: destination.config.name, tenant, dropped: dropped.notification.id, droppedSoFar: count },
      `notifier queue full: dropping the tenant's oldest notification (${why})`,
    );
  }

  /** Queues a notification within its tenant's share (see the module's comment on fairness). */
  function enqueue(destination: Destination, notification: Notification): void {
    const { tenant } = notification;
    const queue = destination.queues.get(tenant) ?? [];
    if (queue.length === 0) destination.queues.set(tenant, queue);
    queue.push({ notification, queuedAt: performance.now() });
    destination.queued += 1;
    if (queue.length > destination.config.maxQueuedPerTenant)
      dropOldest(destination, tenant, 'its share of the queue is full: the destination is too slow or down');
    if (destination.queued > destination.config.maxQueued) {
      let largest = tenant;
      for (const [other, list] of destination.queues)
        if (list.length > (destination.queues.get(largest)?.length ?? 0)) largest = other;
      dropOldest(destination, largest, 'the destination is full and this tenant holds the most');
    }
  }

  function pump(destination: Destination): void {
    while (!stopped && destination.inFlight < destination.config.concurrency && destination.queued > 0) {
      const item = next(destination);
      if (item === undefined) break;
      destination.inFlight += 1;
      destination.target
        .deliver(item.notification, abort.signal)
        .catch((error: unknown): PostResult => ({ ok: false, error: messageOf(error), attempts: 1, elapsedMs: 0 }))
        .then((result) => record(destination, item, result))
        .finally(() => {
          destination.inFlight -= 1;
          pump(destination);
          settleIdle();
        })
        .catch(() => undefined);
    }
  }

  return {
    notify(notification) {
      if (stopped) return [];
      const queued: string[] = [];
      for (const destination of destinations) {
        if (!matches(destination.config, notification) || destination.sent.has(notification.id)) continue;
        destination.sent.add(notification.id);
        if (destination.sent.size > 10_000) {
          const oldest = destination.sent.values().next().value;
          if (oldest !== undefined) destination.sent.delete(oldest);
        }
        enqueue(destination, notification);
        queued.push(destination.config.name);
        // Start deliveries on the next tick: the caller (a kill in progress) is never slowed by a send.
        queueMicrotask(() => pump(destination));
      }
      return queued;
    },
    idle() {
      if (!busy()) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    recent: () => [...history],
    dropped: () =>
      destinations.flatMap((destination) =>
        [...destination.dropped].map(([tenant, count]) => ({ destination: destination.config.name, tenant, count })),
      ),
    onDelivery(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async stop(options = {}) {
      if (stopped) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.idle(),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, options.drainMs ?? 5000))),
      ]);
      clearTimeout(timer);
      stopped = true;
      abort.abort();
      const left = destinations.reduce((sum, destination) => sum + destination.queued, 0);
      if (left > 0) logger.warn({ notifications: left }, 'stopping with notifications not delivered');
      for (const destination of destinations) {
        destination.queues.clear();
        destination.queued = 0;
      }
      settleIdle();
    },
  };
}
