/**
 * What the verifier hears about a kill it watches: the revoked task's events (evidence the agent kept acting,
 * reported by the processor as it scores) and the agent helper's acknowledgement of the revocation.
 */
import { speaksFor } from '../core/agent-binding.ts';
import type { AgentEvent } from '../../schemas/events.ts';
import type { VerificationRecord } from './ks-store.ts';
import {
  IN_FLIGHT_MAX_MS,
  ackDetail,
  failuresOf,
  graceEnd,
  judgeAgent,
  receivedTooLate,
} from './verification-checks.ts';
import { decideSoon } from './verification-decision.ts';
import { conclude } from './verification-outcome.ts';
import { violationOf } from './verification-state.ts';
import type { Acknowledgement, Tracked, VerifierContext, Violation } from './verification-state.ts';

/**
 * An event of the task after its revocation: weighed now, or when the outcome is decided. Its timestamps are the
 * agent's word; one received (now, Tripline's clock) too long after the revocation and its own claimed end
 * counts whatever they say.
 */
export function observeEvent(ctx: VerifierContext, item: Tracked, event: AgentEvent): void {
  const { clockSkewMs } = ctx.options;
  if (item.restoredMs !== undefined) return;
  const revokedMs = item.revocation.timeMs;
  const receivedMs = ctx.now();
  if (receivedTooLate(event.endMs, receivedMs, revokedMs)) {
    record(ctx, item, { ...violationOf(event), receivedMs });
    return;
  }
  if (event.startMs <= revokedMs + clockSkewMs) return;
  const seen = violationOf(event);
  if (item.decided) {
    if (event.startMs <= graceEnd(item, clockSkewMs)) return;
  } else if (event.startMs <= revokedMs + clockSkewMs + IN_FLIGHT_MAX_MS) {
    // Maybe under way when the kill reached the agent: weighed when the outcome is decided.
    if (item.suspects.length < 10_000) item.suspects.push(seen);
    return;
  }
  record(ctx, item, seen);
}

/** Evidence the agent kept acting: fails the kill now (or again, when it was verified). */
function record(ctx: VerifierContext, item: Tracked, seen: Violation): void {
  const { clockSkewMs } = ctx.options;
  item.violationCount += 1;
  if (item.violations.length < 100) item.violations.push(seen);
  judgeAgent(item, clockSkewMs, ctx.now);
  const count = item.record.checks.agentStopped?.violations ?? 0;
  if (!item.decided) {
    // The kill did not take: say so now, not at the end of the window.
    decideSoon(ctx, item);
  } else if (item.record.outcome === 'verified') {
    conclude(ctx, item);
  } else if (count % 100 === 0) {
    ctx.write(item.record);
  }
}

/**
 * Records the acknowledgement of a verification this process watches (`acknowledgedAt`: now). Returns false
 * when it came from another agent than the revoked task's.
 */
export function acknowledgeTracked(
  ctx: VerifierContext,
  item: Tracked,
  ack: Acknowledgement,
  acknowledgedAt: number,
): boolean {
  if (ack.agentId !== undefined && ack.agentId !== item.revocation.agentId) return false;
  if (!speaksFor(ack.agents ?? [], item.revocation.agentId)) return false;
  const { requireAck } = ctx.options;
  item.record.acknowledgedMs ??= acknowledgedAt;
  if (item.agentReceivedMs === undefined && ack.receivedAtMs !== undefined && !item.decided)
    item.agentReceivedMs = ack.receivedAtMs;
  if (item.decided) {
    item.record.checks.acknowledged = {
      ok: true,
      required: requireAck,
      detail: ackDetail(item, acknowledgedAt),
      atMs: acknowledgedAt,
    };
    if (requireAck && item.record.outcome === 'failed' && failuresOf(item.record.checks).length === 0)
      conclude(ctx, item);
    else ctx.write(item.record);
  } else {
    ctx.write(item.record);
  }
  return true;
}

/** Records the acknowledgement of a verification this process does not watch (its record is read from the store). */
export async function acknowledgeStored(
  ctx: VerifierContext,
  tenant: string,
  revocationId: string,
  ack: Acknowledgement,
  acknowledgedAt: number,
): Promise<VerificationRecord | undefined> {
  const stored = await ctx.options.store.getVerification(tenant, revocationId);
  if (stored === null) return undefined;
  if (ack.agentId !== undefined && ack.agentId !== stored.agentId) return undefined;
  if (!speaksFor(ack.agents ?? [], stored.agentId)) return undefined;
  if (stored.acknowledgedMs === null) {
    stored.acknowledgedMs = acknowledgedAt;
    ctx.write(stored);
  }
  return stored;
}
