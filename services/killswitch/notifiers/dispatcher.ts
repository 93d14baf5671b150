/**
 * The notification dispatcher: routes each notification to the destinations whose rules match (kind, minimum
 * severity, task types) and delivers it there without ever making the caller wait.
 *
 * Isolation: `notify()` only enqueues (synchronous, O(destinations)); each destination has its own bounded
 * queue and its own workers (`concurrency`), so a destination that hangs or fails uses up its own workers and
 * retries and nothing else — the kill that raised the notification, and every other destination, go on at once.
 * A full queue drops the oldest notification of that destination with an error log. Each destination sends a
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
  stop(options?: { drainMs?: number }): Promise<void>;
}

interface Queued {
  notification: Notification;
  queuedAt: number;
}

interface Destination {
  config: NotifierConfig;
  target: NotifierTarget;
  queue: Queued[];
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
    queue: [],
    inFlight: 0,
    sent: new Set(),
  }));
  const abort = new AbortController();
  const history: DeliveryRecord[] = [];
  const listeners = new Set<(record: DeliveryRecord) => void>();
  let idleWaiters: (() => void)[] = [];
  let stopped = false;

  function busy(): boolean {
    return destinations.some((destination) => destination.queue.length > 0 || destination.inFlight > 0);
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

  function pump(destination: Destination): void {
    while (!stopped && destination.inFlight < destination.config.concurrency && destination.queue.length > 0) {
      const item = destination.queue.shift();
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
        destination.queue.push({ notification, queuedAt: performance.now() });
        if (destination.queue.length > destination.config.maxQueued) {
          const dropped = destination.queue.shift();
          logger.error(
            { notifier: destination.config.name, dropped: dropped?.notification.id },
            'notifier queue full: dropping its oldest notification (the destination is too slow or down)',
          );
        }
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
      const left = destinations.reduce((sum, destination) => sum + destination.queue.length, 0);
      if (left > 0) logger.warn({ notifications: left }, 'stopping with notifications not delivered');
      for (const destination of destinations) destination.queue.length = 0;
      settleIdle();
    },
  };
}
