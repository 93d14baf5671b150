/**
 * The refusals in force that a process learned from refusal alerts (a loop or rate limit's `refuse` step:
 * `Alert.refuseUntilMs`, services/core/loops.ts), for `POST /v1/check` where the processor's memory is not at hand
 * (the distributed API process). Bounded: the oldest entries go first; ended ones are dropped when looked up.
 */
import type { Alert } from '../../schemas/events.ts';

export const MAX_REFUSALS = 100_000;
const UNTIL_SUFFIX = / until \d{4}-\d\d-\d\dT[\d:.]+Z$/;

export interface Refusing {
  reason: string;
  untilMs: number;
}

export class RefusalBook {
  readonly #refusals = new Map<string, Refusing>();

  /** Notes the refusal an alert carries (other alerts are ignored). */
  note(alert: Alert): void {
    if (alert.refuseUntilMs === undefined || alert.shadow) return;
    const key = `${alert.tenant}\u0000${alert.taskId}`;
    const current = this.#refusals.get(key);
    if (current !== undefined && current.untilMs >= alert.refuseUntilMs) return;
    this.#refusals.delete(key);
    // The alert's first reason is the loop's sentence and `until <ISO time>` (core/decide.ts refusalAlert); the
    // time is said again by /v1/check.
    const reason = (alert.reasons[0] ?? 'a loop or rate limit').replace(UNTIL_SUFFIX, '');
    this.#refusals.set(key, { reason, untilMs: alert.refuseUntilMs });
    if (this.#refusals.size > MAX_REFUSALS) {
      const oldest = this.#refusals.keys().next().value;
      if (oldest !== undefined) this.#refusals.delete(oldest);
    }
  }

  /** The refusal of a task in force at `nowMs`, if any. */
  of(tenant: string, taskId: string, nowMs: number): Refusing | undefined {
    const key = `${tenant}\u0000${taskId}`;
    const refusing = this.#refusals.get(key);
    if (refusing === undefined) return undefined;
    if (refusing.untilMs > nowMs) return refusing;
    this.#refusals.delete(key);
    return undefined;
  }
}
