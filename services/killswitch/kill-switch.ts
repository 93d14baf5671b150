/**
 * The kill switch port: where decided alerts and revocations go the moment they are decided, before they are
 * stored, so enforcement does not wait for the store. The local implementation keeps the recently revoked tasks
 * in memory and fans out to subscribers (the API's server-sent events, notifiers, Kafka in distributed mode).
 *
 * `isRevoked` is a fast answer for recent kills, not the record: the set keeps the newest `maxRevoked`
 * revocations. The record is the store, and the credentials authority (services/killswitch/authority-state.ts)
 * keeps what a token check needs and reads the store for what it forgot.
 */
import type { Alert, Revocation } from '../../schemas/events.ts';

export type KillSwitchMessage = { type: 'alert'; alert: Alert } | { type: 'revocation'; revocation: Revocation };

export interface KillSwitch {
  /** Apply a revocation or restore now, and tell every subscriber. */
  apply(revocation: Revocation): void;
  alert(alert: Alert): void;
  /** Revoked by one of the newest `maxRevoked` revocations this process applied (and not restored since). */
  isRevoked(tenant: string, taskId: string): boolean;
  /** Returns the unsubscribe function. A throwing listener never affects the others. */
  subscribe(listener: (message: KillSwitchMessage) => void): () => void;
}

/** Revoked tasks the local kill switch remembers; beyond it the longest-revoked is forgotten first. */
export const MAX_REVOKED_KEYS = 100_000;

export interface LocalKillSwitchOptions {
  /** @default MAX_REVOKED_KEYS */
  maxRevoked?: number;
}

export function createLocalKillSwitch(
  onListenerError: (error: unknown) => void = () => undefined,
  { maxRevoked = MAX_REVOKED_KEYS }: LocalKillSwitchOptions = {},
): KillSwitch {
  // Insertion order is revocation order (a task revoked again moves to the end), so the first key is the oldest.
  const revoked = new Set<string>();
  const listeners = new Set<(message: KillSwitchMessage) => void>();
  const key = (tenant: string, taskId: string): string => `${tenant}\u0000${taskId}`;

  function emit(message: KillSwitchMessage): void {
    for (const listener of listeners) {
      try {
        listener(message);
      } catch (error) {
        onListenerError(error);
      }
    }
  }

  return {
    apply(revocation) {
      const task = key(revocation.tenant, revocation.taskId);
      revoked.delete(task);
      if (revocation.action === 'revoke') {
        revoked.add(task);
        for (const oldest of revoked) {
          if (revoked.size <= maxRevoked) break;
          revoked.delete(oldest);
        }
      }
      emit({ type: 'revocation', revocation });
    },
    alert(alert) {
      emit({ type: 'alert', alert });
    },
    isRevoked: (tenant, taskId) => revoked.has(key(tenant, taskId)),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
