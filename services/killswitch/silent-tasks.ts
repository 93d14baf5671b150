/**
 * Credentialed tasks that act without telemetry (issue 14): a task that holds a task token and asks request-time
 * checks or secret leases, but whose spans never reached Tripline under its task id, keeps score 0, so every check
 * and lease would allow it. The first check or lease of such a task `graceMs` or more after its token was issued
 * (after its first check or lease when no token is at hand: a check by task id) raises one alert on it,
 * `identity.no_telemetry`, published and stored like any other. The check or lease itself is answered as before:
 * the alert is for people (and for the policies, which see the task's score).
 *
 * "Telemetry" is any event the processor scored for the task id (TaskSnapshot.events); a task not known to the
 * processor or the store has none.
 */
import type { Alert } from '../../schemas/events.ts';
import { IDENTITY_NO_TELEMETRY, identityAlert } from '../core/agent-binding.ts';
import type { TaskSnapshot } from './checks.ts';

/** Tasks remembered (first use, alerted); the oldest are forgotten past it. */
const MAX_TRACKED = 100_000;

export interface CredentialedUse {
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  /** When its task token was issued (absent for a check by task id). */
  issuedAtMs?: number;
}

export interface SilentTaskWatch {
  /** A check or lease of a credentialed task, with what the processor or store knows of the task right now. */
  observe(use: CredentialedUse, snapshot: TaskSnapshot | undefined, how: 'check' | 'lease'): void;
}

export function createSilentTaskWatch(options: {
  graceMs: number;
  raise: (alert: Alert) => void;
  now: () => number;
}): SilentTaskWatch {
  /** tenant NUL task → when it was first used (or `alerted`). */
  const tracked = new Map<string, number | 'alerted'>();
  const remember = (key: string, value: number | 'alerted'): void => {
    tracked.delete(key);
    tracked.set(key, value);
    if (tracked.size > MAX_TRACKED) {
      const oldest = tracked.keys().next().value;
      if (oldest !== undefined) tracked.delete(oldest);
    }
  };
  return {
    observe(use, snapshot, how) {
      if ((snapshot?.events ?? 0) > 0) return;
      const key = `${use.tenant}\u0000${use.taskId}`;
      const seen = tracked.get(key);
      if (seen === 'alerted') return;
      const at = options.now();
      const since = use.issuedAtMs ?? seen ?? at;
      if (seen === undefined) remember(key, since);
      if (at - since < options.graceMs) return;
      remember(key, 'alerted');
      const seconds = Math.round((at - since) / 1000);
      options.raise(
        identityAlert(
          { tenant: use.tenant, taskId: use.taskId, taskType: use.taskType, agentId: use.agentId },
          { eventId: '', timeMs: at },
          {
            feature: IDENTITY_NO_TELEMETRY,
            subject: 'silent',
            reason: `task ${use.taskId} asked for a ${how} ${String(seconds)} s after it got credentials and has sent no telemetry under its task id`,
          },
          snapshot === undefined ? undefined : { score: snapshot.score, regime: 'rules' },
        ),
      );
    },
  };
}
