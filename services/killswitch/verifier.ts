/**
 * Verification: after a revocation, check that the kill took effect and record the outcome beside it.
 *
 * For every revoke the kill switch applies (here, or carried from another process), the verifier
 *   1. checks at once that the task's tokens introspect inactive and the task is refused new ones;
 *   2. revokes the task's secret leases at their providers and checks that each one ended;
 *   3. watches for `windowMs` for evidence that the agent kept acting: any event of the task (tool call, data
 *      access, privilege change) that started after the revocation reached the agent — reported by the processor
 *      as it scores (`onRevokedTaskEvent`) and, at the end, looked up in the events table (which also covers
 *      events another process scored);
 *   4. records whether the agent helper acknowledged the revocation (required only with `requireAck`).
 *
 * "Reached the agent": the revocation time plus `clockSkewMs`; or, when the agent helper acknowledged, the time
 * it says it received the revocation (its own clock, the clock its spans carry), up to `IN_FLIGHT_MAX_MS` after
 * the revocation. An operation that started in between was already under way when the kill arrived; one that
 * started later is the agent acting on a dead task. Evidence past the longest grace fails the kill at once;
 * evidence inside it is weighed when the outcome is decided (the acknowledgement may still be on its way).
 * Those times are the agent's word: an event Tripline received more than `RECEIPT_ALLOWANCE_MS` after both the
 * revocation and its own claimed end counts whatever its timestamps say (a backdated span).
 * The outcome is `verified` when every check passed, else `failed` with what failed and when; evidence of
 * continued activity fails it at once, even before the window ends, and even after it was `verified` (late
 * spans). A failed verification raises its own alert (stored, published, notified).
 */
import type { AgentEvent, Revocation } from '../../schemas/events.ts';
import { createBatchWriter } from './batch-writer.ts';
import type { VerificationRecord } from './ks-store.ts';
import { introspectionCheck } from './verification-checks.ts';
import { decideSoon } from './verification-decision.ts';
import { acknowledgeStored, acknowledgeTracked, observeEvent } from './verification-reports.ts';
import { key, newTracked, pendingRecord } from './verification-state.ts';
import type { Acknowledgement, Tracked, VerifierContext, VerifierOptions } from './verification-state.ts';

export { IN_FLIGHT_MAX_MS } from './verification-checks.ts';
export type { Acknowledgement, VerifierOptions } from './verification-state.ts';

/**
 * Verification records are written in the background every this many ms: a kill changes its record three times
 * within moments (pending, acknowledged, decided), and each insert costs the engine a part, so one insert
 * carries the changes of every kill of the interval instead of three per kill competing with the next kill's
 * revocation insert.
 */
const WRITE_INTERVAL_MS = 200;

export interface Verifier {
  /** Processor hook: an event of a task that is revoked now (the verifier decides whether it came too late). */
  onRevokedTaskEvent(event: AgentEvent): void;
  acknowledge(tenant: string, revocationId: string, ack: Acknowledgement): Promise<VerificationRecord | undefined>;
  get(tenant: string, revocationId: string): Promise<VerificationRecord | null>;
  /** Is this alert one the verifier raised (a failed verification)? */
  ownsAlert(alertId: string): boolean;
  /** Resolves when every verification started so far has an outcome (tests). */
  settled(): Promise<void>;
  /** Resumes verifications left pending by a previous run. */
  load(): Promise<void>;
  stop(): Promise<void>;
}

export function createVerifier(options: VerifierOptions): Verifier {
  const { store, leases, killSwitch, logger } = options;
  const now = options.now ?? Date.now;
  const tracked = new Map<string, Tracked>();
  /** tenant+task → the tracked revocation of its newest revoke. */
  const byTask = new Map<string, Tracked>();
  /** Versions make the newest record of a verification win, whichever insert carries it. */
  const records = createBatchWriter<VerificationRecord>({
    name: 'verifications',
    write: (rows) => store.upsertVerifications(rows),
    logger,
    intervalMs: WRITE_INTERVAL_MS,
  });
  let lastVersion = 0;
  let stopped = false;

  const nextVersion = (): number => (lastVersion = Math.max(lastVersion + 1, now() * 1000));

  const ctx: VerifierContext = {
    options,
    now,
    lateEvidenceMs: options.lateEvidenceMs ?? 600_000,
    ownAlerts: new Set<string>(),
    writes: new Set<Promise<unknown>>(),
    write(record) {
      const copy = structuredClone({ ...record, version: nextVersion() });
      record.version = copy.version;
      records.add(copy);
    },
  };

  function start(revocation: Revocation, existing?: VerificationRecord): void {
    const id = key(revocation.tenant, revocation.id);
    if (tracked.has(id) || stopped) return;
    const record: VerificationRecord = existing ?? pendingRecord(revocation);
    const item = newTracked(
      revocation,
      record,
      leases.endTask(revocation.tenant, revocation.taskId, 'revoked', `task revoked: ${revocation.reason}`),
    );
    void item.leases.then((result) => (item.leaseResult = result)).catch(() => undefined);
    tracked.set(id, item);
    byTask.set(key(revocation.tenant, revocation.taskId), item);
    if (existing === undefined) ctx.write(record);
    // The kill switch applies a revocation to every subscriber in turn: check once they all have.
    queueMicrotask(() => {
      if (!item.decided && item.restoredMs === undefined)
        record.checks.introspection = introspectionCheck(options.authority, revocation, now());
    });
    const delay = Math.max(0, revocation.timeMs + options.windowMs - now());
    item.timer = setTimeout(() => {
      item.timer = undefined;
      decideSoon(ctx, item, { revocationId: revocation.id });
    }, delay);
    item.timer.unref();
  }

  function restored(revocation: Revocation): void {
    const item = byTask.get(key(revocation.tenant, revocation.taskId));
    if (item === undefined || item.decided) return;
    item.restoredMs = revocation.timeMs;
    // Decide now: activity after a restore is allowed, so the watch ends here.
    decideSoon(ctx, item);
  }

  const unsubscribe = killSwitch.subscribe((message) => {
    if (message.type !== 'revocation') return;
    if (message.revocation.action === 'revoke') start(message.revocation);
    else restored(message.revocation);
  });

  const sweeper = setInterval(() => {
    const nowMs = now();
    for (const [id, item] of tracked) {
      if (item.decided && item.forgetAtMs < nowMs) {
        tracked.delete(id);
        const taskId = key(item.revocation.tenant, item.revocation.taskId);
        if (byTask.get(taskId) === item) byTask.delete(taskId);
      }
    }
    if (ctx.ownAlerts.size > 100_000) ctx.ownAlerts.clear();
  }, 30_000);
  sweeper.unref();

  return {
    onRevokedTaskEvent(event) {
      const item = byTask.get(key(event.tenant, event.taskId));
      if (item !== undefined) observeEvent(ctx, item, event);
    },

    async acknowledge(tenant, revocationId, ack) {
      const item = tracked.get(key(tenant, revocationId));
      const at = now();
      if (item !== undefined) return acknowledgeTracked(ctx, item, ack, at) ? structuredClone(item.record) : undefined;
      return acknowledgeStored(ctx, tenant, revocationId, ack, at);
    },

    async get(tenant, revocationId) {
      const item = tracked.get(key(tenant, revocationId));
      if (item !== undefined) return structuredClone(item.record);
      return store.getVerification(tenant, revocationId);
    },

    ownsAlert: (alertId) => ctx.ownAlerts.has(alertId),

    async settled() {
      await Promise.all([...tracked.values()].map((item) => item.done));
      await Promise.allSettled([...ctx.writes, records.flush()]);
    },

    async load() {
      const pending = await store.listPendingVerifications();
      for (const record of pending) {
        const revocation = await store.getRevocation(record.tenant, record.revocationId);
        if (revocation === null) continue;
        lastVersion = Math.max(lastVersion, record.version);
        start(revocation, record);
      }
      if (pending.length > 0) logger.info({ pending: pending.length }, 'resuming verifications left pending');
    },

    async stop() {
      stopped = true;
      unsubscribe();
      clearInterval(sweeper);
      for (const item of tracked.values()) if (item.timer !== undefined) clearTimeout(item.timer);
      // Decisions under way finish (and are written) before the store closes; pending ones resume at the next start.
      await Promise.allSettled([...tracked.values()].map((item) => item.deciding ?? Promise.resolve()));
      await Promise.allSettled([...ctx.writes, records.stop()]);
    },
  };
}
