/**
 * Deciding a verification (at the end of its window, on evidence the kill did not take, or on a restore): wait
 * for the lease providers, run the checks once more, look up events another process scored, then conclude.
 */
import type { EndResult } from './leases.ts';
import { messageOf } from '../shared/errors.ts';
import {
  RECEIPT_ALLOWANCE_MS,
  ackDetail,
  graceEnd,
  introspectionCheck,
  judgeAgent,
  leasesCheck,
  violationDetail,
} from './verification-checks.ts';
import { conclude } from './verification-outcome.ts';
import { isDecided } from './verification-state.ts';
import type { Tracked, VerifierContext } from './verification-state.ts';

/** Decides once: a decision under way is shared, a decided verification is left as it is. */
export function decide(ctx: VerifierContext, item: Tracked): Promise<void> {
  if (item.decided) return Promise.resolve();
  item.deciding ??= decideNow(ctx, item).finally(() => (item.deciding = undefined));
  return item.deciding;
}

/** Starts a decision now (the window's timer, if any, is cancelled); errors are logged. */
export function decideSoon(ctx: VerifierContext, item: Tracked, context: Record<string, unknown> = {}): void {
  if (item.timer !== undefined) clearTimeout(item.timer);
  item.timer = undefined;
  decide(ctx, item).catch((error: unknown) =>
    ctx.options.logger.error({ err: messageOf(error), ...context }, 'verification failed to run'),
  );
}

/** Leases: wait for the providers (bounded: a provider that hangs counts as failed). */
async function leasesInTime(ctx: VerifierContext, item: Tracked): Promise<EndResult> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>(
    (resolve) => (timer = setTimeout(() => resolve(undefined), Math.max(5000, ctx.options.windowMs))),
  );
  const result = (await Promise.race([item.leases, late])) ?? {
    ended: 0,
    failed: ['the lease providers did not answer in time'],
  };
  clearTimeout(timer);
  return result;
}

/**
 * Events after the revocation that another process scored, or that were stored before this process started.
 * Resolves false when the verification was decided meanwhile.
 */
async function lookUpLaterEvents(ctx: VerifierContext, item: Tracked): Promise<boolean> {
  const { revocation, record } = item;
  try {
    const after = await ctx.options.store.eventsAfter(
      revocation.tenant,
      revocation.taskId,
      graceEnd(item, ctx.options.clockSkewMs),
      { revokedMs: revocation.timeMs, allowanceMs: RECEIPT_ALLOWANCE_MS },
    );
    if (isDecided(item)) return false;
    if (after.count > 0 && after.first !== undefined) {
      record.checks.agentStopped = {
        ok: false,
        detail: violationDetail(after.count, after.first, revocation.timeMs),
        atMs: ctx.now(),
        violations: after.count,
        firstViolation: after.first,
      };
    }
  } catch (error) {
    ctx.options.logger.warn(
      { err: messageOf(error) },
      'could not look up events after a revocation; deciding on the events this process saw',
    );
  }
  return true;
}

async function decideNow(ctx: VerifierContext, item: Tracked): Promise<void> {
  const { revocation, record } = item;
  const { options } = ctx;
  if (item.leaseResult === undefined) item.leaseResult = await leasesInTime(ctx, item);
  if (isDecided(item)) return;
  const stillOpen = options.leases
    .open(revocation.tenant, revocation.taskId)
    .filter((lease) => lease.status === 'active');
  record.checks.leases = leasesCheck(item.leaseResult, stillOpen, ctx.now());
  // Introspection again, unless a person restored the task in the meantime (then the first check stands).
  if (item.restoredMs === undefined)
    record.checks.introspection = introspectionCheck(options.authority, revocation, ctx.now());
  judgeAgent(item, options.clockSkewMs, ctx.now);
  if (
    record.checks.agentStopped?.ok !== false &&
    item.restoredMs === undefined &&
    !(await lookUpLaterEvents(ctx, item))
  )
    return;
  const inFlight = item.suspects.length;
  record.checks.agentStopped ??= {
    ok: true,
    detail: `no event of the task started after the revocation reached the agent (watched ${options.windowMs} ms${inFlight === 0 ? '' : `; ${inFlight} already under way when it arrived`})`,
    atMs: ctx.now(),
    violations: 0,
  };
  const acknowledgedAt = record.acknowledgedMs;
  record.checks.acknowledged =
    acknowledgedAt === null
      ? {
          ok: false,
          required: options.requireAck,
          detail: 'the agent helper did not acknowledge the revocation',
          atMs: ctx.now(),
        }
      : { ok: true, required: options.requireAck, detail: ackDetail(item, acknowledgedAt), atMs: acknowledgedAt };
  conclude(ctx, item);
}
