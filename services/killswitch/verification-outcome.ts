/**
 * Recording a verification's outcome: `verified` when every check passed, else `failed` with what failed; a
 * failure raises its own alert (stored, published, notified). The outcome listener hears of every decision.
 */
import type { Alert } from '../../schemas/events.ts';
import { messageOf } from '../shared/errors.ts';
import { stableId } from '../shared/ids.ts';
import { failuresOf } from './verification-checks.ts';
import type { Tracked, VerifierContext } from './verification-state.ts';

function alertOf(ctx: VerifierContext, item: Tracked, failures: string[]): Alert {
  const { revocation } = item;
  const id = stableId(revocation.tenant, revocation.taskId, 'alert', 'verification_failed', revocation.id);
  ctx.ownAlerts.add(id);
  return {
    id,
    tenant: revocation.tenant,
    taskId: revocation.taskId,
    taskType: revocation.taskType,
    agentId: revocation.agentId,
    eventId: item.record.checks.agentStopped?.firstViolation?.eventId ?? revocation.eventId,
    timeMs: ctx.now(),
    score: revocation.score,
    decision: 'alert',
    regime: 'rules',
    reasons: [`the kill of task ${revocation.taskId} (revocation ${revocation.id}) could not be verified`, ...failures],
    shadow: false,
  };
}

/** Raises the alert of a failed verification: published on the kill switch, stored in the background. */
function raiseAlert(ctx: VerifierContext, item: Tracked, failures: string[], late: boolean): Alert {
  const { logger, killSwitch } = ctx.options;
  const alert = alertOf(ctx, item, failures);
  logger.error(
    { taskId: item.revocation.taskId, revocationId: item.revocation.id, failures, late },
    'the kill could not be verified',
  );
  killSwitch.alert(alert);
  const stored = ctx.options
    .insertAlerts([alert])
    .catch((error: unknown) =>
      logger.error({ err: messageOf(error) }, 'storing the alert of a failed verification failed'),
    );
  ctx.writes.add(stored);
  void stored.finally(() => ctx.writes.delete(stored));
  return alert;
}

/** Decides the outcome from the checks recorded so far (again, when late evidence or an acknowledgement changes it). */
export function conclude(ctx: VerifierContext, item: Tracked): void {
  const { logger } = ctx.options;
  const failures = failuresOf(item.record.checks);
  const wasVerified = item.record.outcome === 'verified';
  item.record.outcome = failures.length === 0 ? 'verified' : 'failed';
  item.record.failures = failures;
  item.record.decidedMs = ctx.now();
  item.decided = true;
  item.forgetAtMs = ctx.now() + ctx.lateEvidenceMs;
  if (item.timer !== undefined) clearTimeout(item.timer);
  item.timer = undefined;
  ctx.write(item.record);
  let alert: Alert | undefined;
  if (item.record.outcome === 'failed') {
    alert = raiseAlert(ctx, item, failures, wasVerified);
  } else {
    logger.info(
      {
        taskId: item.revocation.taskId,
        revocationId: item.revocation.id,
        ms: Math.round(item.record.decidedMs - item.record.revokedMs),
      },
      'kill verified',
    );
  }
  try {
    ctx.options.onOutcome?.(structuredClone(item.record), item.revocation, alert);
  } catch (error) {
    logger.error({ err: messageOf(error) }, 'an outcome listener failed');
  }
  item.resolveDone();
}
