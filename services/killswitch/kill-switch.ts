/**
 * The kill switch port: where decided alerts and revocations go the moment they are decided, before they are
 * stored, so enforcement does not wait for the store. The local implementation keeps the revoked set in
 * memory and fans out to subscribers (the API's server-sent events, notifiers, Kafka in distributed mode).
 */
import type { Alert, Revocation } from '../../schemas/events.ts';

export type KillSwitchMessage = { type: 'alert'; alert: Alert } | { type: 'revocation'; revocation: Revocation };

export interface KillSwitch {
  /** Apply a revocation or restore now, and tell every subscriber. */
  apply(revocation: Revocation): void;
  alert(alert: Alert): void;
  isRevoked(tenant: string, taskId: string): boolean;
  /** Returns the unsubscribe function. A throwing listener never affects the others. */
  subscribe(listener: (message: KillSwitchMessage) => void): () => void;
}

export function createLocalKillSwitch(onListenerError: (error: unknown) => void = () => undefined): KillSwitch {
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
      if (revocation.action === 'revoke') revoked.add(key(revocation.tenant, revocation.taskId));
      else revoked.delete(key(revocation.tenant, revocation.taskId));
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
