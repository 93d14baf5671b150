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
 * The outcome is `verified` when every check passed, else `failed` with what failed and when; evidence of
 * continued activity fails it at once, even before the window ends, and even after it was `verified` (late
 * spans). A failed verification raises its own alert (stored, published, notified).
 */
import type { AgentEvent, Alert, Revocation } from '../../schemas/events.ts';
import { messageOf } from '../shared/errors.ts';
import { stableId } from '../shared/ids.ts';
import type { Logger } from '../shared/logger.ts';
import type { Authority } from './authority.ts';
import { createBatchWriter } from './batch-writer.ts';
import type { KillSwitch } from './kill-switch.ts';
import type { CheckResult, KillSwitchStore, VerificationChecks, VerificationRecord } from './ks-store.ts';
import type { EndResult, LeaseManager } from './leases.ts';

export interface VerifierOptions {
  store: KillSwitchStore;
  authority: Authority;
  leases: LeaseManager;
  killSwitch: KillSwitch;
  /** Where the alert of a failed verification is stored (the spine's alerts table). */
  insertAlerts(alerts: Alert[]): Promise<void>;
  /** Called for each decided outcome (the runtime notifies and streams failures). */
  onOutcome?(verification: VerificationRecord, revocation: Revocation, alert: Alert | undefined): void;
  windowMs: number;
  clockSkewMs: number;
  requireAck: boolean;
  logger: Logger;
  /** How long after the decision late evidence can still fail a verified kill. @default 600000 */
  lateEvidenceMs?: number;
  now?: () => number;
}

/** The longest an acknowledged revocation may take to reach the agent and still excuse operations under way. */
export const IN_FLIGHT_MAX_MS = 1000;

/**
 * Verification records are written in the background every this many ms: a kill changes its record three times
 * within moments (pending, acknowledged, decided), and each insert costs the engine a part, so one insert
 * carries the changes of every kill of the interval instead of three per kill competing with the next kill's
 * revocation insert.
 */
const WRITE_INTERVAL_MS = 200;

export interface Acknowledgement {
  agentId?: string;
  /** When the agent helper received the revocation (agent clock, epoch ms). */
  receivedAtMs?: number;
}

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

interface Tracked {
  revocation: Revocation;
  record: VerificationRecord;
  leases: Promise<EndResult>;
  leaseResult?: EndResult;
  timer: NodeJS.Timeout | undefined;
  restoredMs?: number;
  /** When the agent helper received the revocation (agent clock), from its acknowledgement. */
  agentReceivedMs?: number;
  /** Events that started after the revocation but possibly before it reached the agent. */
  suspects: Violation[];
  /** Events that started after any grace: the agent acted on a dead task. */
  violations: Violation[];
  violationCount: number;
  deciding?: Promise<void>;
  decided: boolean;
  forgetAtMs: number;
  done: Promise<void>;
  resolveDone: () => void;
}

interface Violation {
  eventId: string;
  name: string;
  kind: string;
  startMs: number;
}

const key = (tenant: string, id: string): string => `${tenant}\u0000${id}`;
/** Read through a function: `decided` changes while a decision awaits. */
const isDecided = (item: Tracked): boolean => item.decided;

export function createVerifier(options: VerifierOptions): Verifier {
  const { store, authority, leases, killSwitch, logger } = options;
  const now = options.now ?? Date.now;
  const lateEvidenceMs = options.lateEvidenceMs ?? 600_000;
  const tracked = new Map<string, Tracked>();
  /** tenant+task → the tracked revocation of its newest revoke. */
  const byTask = new Map<string, Tracked>();
  const ownAlerts = new Set<string>();
  const writes = new Set<Promise<unknown>>();
  /** Versions make the newest record of a verification win, whichever insert carries it. */
  const records = createBatchWriter<VerificationRecord>({ name: 'verifications', write: (rows) => store.upsertVerifications(rows), logger, intervalMs: WRITE_INTERVAL_MS });
  let lastVersion = 0;
  let stopped = false;

  const nextVersion = (): number => (lastVersion = Math.max(lastVersion + 1, now() * 1000));

  function write(record: VerificationRecord): void {
    const copy = structuredClone({ ...record, version: nextVersion() });
    record.version = copy.version;
    records.add(copy);
  }

  function introspectionCheck(revocation: Revocation): CheckResult {
    const at = now();
    const view = authority.task(revocation.tenant, revocation.taskId);
    const jtis = authority.knownTokens(revocation.tenant, revocation.taskId);
    if (!view.revoked) return { ok: false, detail: 'the task is not marked revoked: its tokens would still introspect active', atMs: at };
    return { ok: true, detail: jtis.length === 0 ? 'task refused; no tokens issued or seen by this process' : `task refused; ${jtis.length} token(s) introspect inactive`, atMs: at };
  }

  function failuresOf(checks: VerificationChecks): string[] {
    const failures: string[] = [];
    if (checks.introspection !== undefined && !checks.introspection.ok) failures.push(`introspection: ${checks.introspection.detail}`);
    if (checks.leases !== undefined && !checks.leases.ok) failures.push(`leases: ${checks.leases.detail}`);
    if (checks.agentStopped !== undefined && !checks.agentStopped.ok) failures.push(`agent: ${checks.agentStopped.detail}`);
    if (checks.acknowledged !== undefined && !checks.acknowledged.ok && checks.acknowledged.required) failures.push(`acknowledgement: ${checks.acknowledged.detail}`);
    return failures;
  }

  function ackDetail(item: Tracked, acknowledgedMs: number): string {
    const received = item.agentReceivedMs === undefined ? '' : `; the agent received it ${Math.round(item.agentReceivedMs - item.revocation.timeMs)} ms after it (agent clock)`;
    return `acknowledged ${Math.round(acknowledgedMs - item.revocation.timeMs)} ms after the revocation${received}`;
  }

  function violationDetail(count: number, first: { name: string; kind: string; startMs: number }, revokedMs: number): string {
    return `the agent kept acting: ${count} event(s) started after the revocation, the first "${first.name}" (${first.kind.replace('_', ' ')}) ${Math.round(first.startMs - revokedMs)} ms after it`;
  }

  /** Operations that started before this (agent clock) were under way when the kill reached the agent. */
  function graceEnd(item: Tracked): number {
    const base = item.revocation.timeMs + options.clockSkewMs;
    const received = item.agentReceivedMs;
    if (received === undefined) return base;
    return Math.max(base, Math.min(received, item.revocation.timeMs + options.clockSkewMs + IN_FLIGHT_MAX_MS));
  }

  /** Records the agent-stopped check from the violations known so far (the suspects past the grace count too). */
  function judgeAgent(item: Tracked): void {
    const end = graceEnd(item);
    const late = item.suspects.filter((event) => event.startMs > end);
    const count = item.violationCount + late.length;
    if (count === 0) return;
    const first = [...late, ...item.violations].sort((a, b) => a.startMs - b.startMs)[0];
    if (first === undefined) return;
    item.record.checks.agentStopped = { ok: false, detail: violationDetail(count, first, item.revocation.timeMs), atMs: now(), violations: count, firstViolation: first };
  }

  function alertOf(item: Tracked, failures: string[]): Alert {
    const { revocation } = item;
    const id = stableId(revocation.tenant, revocation.taskId, 'alert', 'verification_failed', revocation.id);
    ownAlerts.add(id);
    return {
      id,
      tenant: revocation.tenant,
      taskId: revocation.taskId,
      taskType: revocation.taskType,
      agentId: revocation.agentId,
      eventId: item.record.checks.agentStopped?.firstViolation?.eventId ?? revocation.eventId,
      timeMs: now(),
      score: revocation.score,
      decision: 'alert',
      regime: 'rules',
      reasons: [`the kill of task ${revocation.taskId} (revocation ${revocation.id}) could not be verified`, ...failures],
      shadow: false,
    };
  }

  function conclude(item: Tracked): void {
    const failures = failuresOf(item.record.checks);
    const wasVerified = item.record.outcome === 'verified';
    item.record.outcome = failures.length === 0 ? 'verified' : 'failed';
    item.record.failures = failures;
    item.record.decidedMs = now();
    item.decided = true;
    item.forgetAtMs = now() + lateEvidenceMs;
    if (item.timer !== undefined) clearTimeout(item.timer);
    item.timer = undefined;
    write(item.record);
    let alert: Alert | undefined;
    if (item.record.outcome === 'failed') {
      alert = alertOf(item, failures);
      logger.error({ taskId: item.revocation.taskId, revocationId: item.revocation.id, failures, late: wasVerified }, 'the kill could not be verified');
      killSwitch.alert(alert);
      const stored = options.insertAlerts([alert]).catch((error: unknown) => logger.error({ err: messageOf(error) }, 'storing the alert of a failed verification failed'));
      writes.add(stored);
      void stored.finally(() => writes.delete(stored));
    } else {
      logger.info({ taskId: item.revocation.taskId, revocationId: item.revocation.id, ms: Math.round((item.record.decidedMs) - item.record.revokedMs) }, 'kill verified');
    }
    try {
      options.onOutcome?.(structuredClone(item.record), item.revocation, alert);
    } catch (error) {
      logger.error({ err: messageOf(error) }, 'an outcome listener failed');
    }
    item.resolveDone();
  }

  function decide(item: Tracked): Promise<void> {
    if (item.decided) return Promise.resolve();
    item.deciding ??= decideNow(item).finally(() => (item.deciding = undefined));
    return item.deciding;
  }

  async function decideNow(item: Tracked): Promise<void> {
    const { revocation, record } = item;
    // Leases: wait for the providers (bounded: a provider that hangs counts as failed).
    if (item.leaseResult === undefined) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), Math.max(5000, options.windowMs))));
      item.leaseResult = (await Promise.race([item.leases, late])) ?? { ended: 0, failed: ['the lease providers did not answer in time'] };
      clearTimeout(timer);
    }
    if (isDecided(item)) return;
    const stillOpen = leases.open(revocation.tenant, revocation.taskId).filter((lease) => lease.status === 'active');
    const leaseFailures = [...item.leaseResult.failed, ...stillOpen.map((lease) => `lease ${lease.id} (${lease.secret}) is still active`)];
    record.checks.leases = {
      ok: leaseFailures.length === 0,
      detail: leaseFailures.length === 0 ? (item.leaseResult.ended === 0 ? 'no leases held' : `${item.leaseResult.ended} lease(s) revoked at their provider`) : leaseFailures.join('; '),
      atMs: now(),
      revoked: item.leaseResult.ended,
      failed: leaseFailures,
    };
    // Introspection again, unless a person restored the task in the meantime (then the first check stands).
    if (item.restoredMs === undefined) record.checks.introspection = introspectionCheck(revocation);
    judgeAgent(item);
    // Events after the revocation that another process scored, or that were stored before this process started.
    if (record.checks.agentStopped?.ok !== false && item.restoredMs === undefined) {
      try {
        const after = await store.eventsAfter(revocation.tenant, revocation.taskId, graceEnd(item));
        if (isDecided(item)) return;
        if (after.count > 0 && after.first !== undefined) {
          record.checks.agentStopped = { ok: false, detail: violationDetail(after.count, after.first, revocation.timeMs), atMs: now(), violations: after.count, firstViolation: after.first };
        }
      } catch (error) {
        logger.warn({ err: messageOf(error) }, 'could not look up events after a revocation; deciding on the events this process saw');
      }
    }
    const inFlight = item.suspects.length;
    record.checks.agentStopped ??= {
      ok: true,
      detail: `no event of the task started after the revocation reached the agent (watched ${options.windowMs} ms${inFlight === 0 ? '' : `; ${inFlight} already under way when it arrived`})`,
      atMs: now(),
      violations: 0,
    };
    const acknowledgedAt = record.acknowledgedMs;
    record.checks.acknowledged = acknowledgedAt === null
      ? { ok: false, required: options.requireAck, detail: 'the agent helper did not acknowledge the revocation', atMs: now() }
      : { ok: true, required: options.requireAck, detail: ackDetail(item, acknowledgedAt), atMs: acknowledgedAt };
    conclude(item);
  }

  function start(revocation: Revocation, existing?: VerificationRecord): void {
    const id = key(revocation.tenant, revocation.id);
    if (tracked.has(id) || stopped) return;
    const record: VerificationRecord = existing ?? {
      revocationId: revocation.id,
      tenant: revocation.tenant,
      taskId: revocation.taskId,
      taskType: revocation.taskType,
      agentId: revocation.agentId,
      outcome: 'pending',
      revokedMs: revocation.timeMs,
      decidedMs: null,
      acknowledgedMs: null,
      checks: {},
      failures: [],
      version: 0,
    };
    let resolveDone: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    const item: Tracked = {
      revocation,
      record,
      suspects: [],
      violations: [],
      violationCount: 0,
      leases: leases.endTask(revocation.tenant, revocation.taskId, 'revoked', `task revoked: ${revocation.reason}`),
      timer: undefined,
      decided: false,
      forgetAtMs: Number.POSITIVE_INFINITY,
      done,
      resolveDone,
    };
    void item.leases.then((result) => (item.leaseResult = result)).catch(() => undefined);
    tracked.set(id, item);
    byTask.set(key(revocation.tenant, revocation.taskId), item);
    if (existing === undefined) write(record);
    // The kill switch applies a revocation to every subscriber in turn: check once they all have.
    queueMicrotask(() => {
      if (!item.decided && item.restoredMs === undefined) record.checks.introspection = introspectionCheck(revocation);
    });
    const delay = Math.max(0, revocation.timeMs + options.windowMs - now());
    item.timer = setTimeout(() => {
      item.timer = undefined;
      decide(item).catch((error: unknown) => logger.error({ err: messageOf(error), revocationId: revocation.id }, 'verification failed to run'));
    }, delay);
    item.timer.unref();
  }

  function restored(revocation: Revocation): void {
    const item = byTask.get(key(revocation.tenant, revocation.taskId));
    if (item === undefined || item.decided) return;
    item.restoredMs = revocation.timeMs;
    // Decide now: activity after a restore is allowed, so the watch ends here.
    if (item.timer !== undefined) clearTimeout(item.timer);
    item.timer = undefined;
    decide(item).catch((error: unknown) => logger.error({ err: messageOf(error) }, 'verification failed to run'));
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
    if (ownAlerts.size > 100_000) ownAlerts.clear();
  }, 30_000);
  sweeper.unref();

  return {
    onRevokedTaskEvent(event) {
      const item = byTask.get(key(event.tenant, event.taskId));
      if (item === undefined || item.restoredMs !== undefined) return;
      const revokedMs = item.revocation.timeMs;
      if (event.startMs <= revokedMs + options.clockSkewMs) return;
      const seen: Violation = { eventId: event.id, name: event.name, kind: event.kind, startMs: event.startMs };
      if (item.decided) {
        if (event.startMs <= graceEnd(item)) return;
      } else if (event.startMs <= revokedMs + options.clockSkewMs + IN_FLIGHT_MAX_MS) {
        // Maybe under way when the kill reached the agent: weighed when the outcome is decided.
        if (item.suspects.length < 10_000) item.suspects.push(seen);
        return;
      }
      item.violationCount += 1;
      if (item.violations.length < 100) item.violations.push(seen);
      judgeAgent(item);
      const count = item.record.checks.agentStopped?.violations ?? 0;
      if (!item.decided) {
        // The kill did not take: say so now, not at the end of the window.
        if (item.timer !== undefined) clearTimeout(item.timer);
        item.timer = undefined;
        void decide(item).catch((error: unknown) => logger.error({ err: messageOf(error) }, 'verification failed to run'));
      } else if (item.record.outcome === 'verified') {
        conclude(item);
      } else if (count % 100 === 0) {
        write(item.record);
      }
    },

    async acknowledge(tenant, revocationId, ack) {
      const item = tracked.get(key(tenant, revocationId));
      const at = now();
      if (item !== undefined) {
        if (ack.agentId !== undefined && ack.agentId !== item.revocation.agentId) return undefined;
        item.record.acknowledgedMs ??= at;
        if (item.agentReceivedMs === undefined && ack.receivedAtMs !== undefined && !item.decided) item.agentReceivedMs = ack.receivedAtMs;
        if (item.decided) {
          item.record.checks.acknowledged = { ok: true, required: options.requireAck, detail: ackDetail(item, at), atMs: at };
          if (options.requireAck && item.record.outcome === 'failed' && failuresOf(item.record.checks).length === 0) conclude(item);
          else write(item.record);
        } else {
          write(item.record);
        }
        return structuredClone(item.record);
      }
      const stored = await store.getVerification(tenant, revocationId);
      if (stored === null) return undefined;
      if (ack.agentId !== undefined && ack.agentId !== stored.agentId) return undefined;
      if (stored.acknowledgedMs === null) {
        stored.acknowledgedMs = at;
        write(stored);
      }
      return stored;
    },

    async get(tenant, revocationId) {
      const item = tracked.get(key(tenant, revocationId));
      if (item !== undefined) return structuredClone(item.record);
      return store.getVerification(tenant, revocationId);
    },

    ownsAlert: (alertId) => ownAlerts.has(alertId),

    async settled() {
      await Promise.all([...tracked.values()].map((item) => item.done));
      await Promise.allSettled([...writes, records.flush()]);
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
      await Promise.allSettled([...writes, records.stop()]);
    },
  };
}
