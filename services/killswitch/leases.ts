/**
 * Leases: a task holding an active token leases a named secret for (at most) its lifetime, after the policy
 * allows `lease_secret`. A lease ends when the task ends (released), when it expires, when the task releases it,
 * or when the task is revoked (revoked at the provider at once; a provider that fails is retried and the lease
 * stays `revoke_failed` — which the kill's verification reports — until it succeeds).
 *
 * The secret's value goes to the task once, in the lease answer; Tripline never stores it.
 */
import { TriplineError, messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { Authority } from './authority.ts';
import type { TaskStateSource } from './checks.ts';
import type { SilentTaskWatch } from './silent-tasks.ts';
import type { BatchWriter } from './batch-writer.ts';
import { KillSwitchError } from './errors.ts';
import type { KillSwitchStore, LeaseRecord, PolicyDecisionRecord } from './ks-store.ts';
import { endLease, endLeases, sweepLeases } from './lease-ending.ts';
import type { EndResult } from './lease-ending.ts';
import { issueLease } from './lease-issuing.ts';
import type { IssuingDeps } from './lease-issuing.ts';
import { OpenLeases } from './open-leases.ts';
import type { PolicyEngine } from './policy.ts';
import { checkSecretName } from './secrets.ts';
import type { SecretProvider } from './secrets.ts';
import type { TaskClaims } from './tokens.ts';

export type { EndResult } from './lease-ending.ts';

export interface LeaseManagerOptions {
  store: KillSwitchStore;
  /** Asked in order; the first that `has` the secret serves it. */
  providers: readonly SecretProvider[];
  policy: PolicyEngine;
  decisions: BatchWriter<PolicyDecisionRecord>;
  authority: Authority;
  /** The task's current status (an ended task leases nothing) and score (0–100, for the policy). */
  taskState: TaskStateSource;
  /** Default and longest lease, in seconds (a lease never outlives the token it was asked with). */
  ttlSeconds: number;
  /** Told of every lease asked: a credentialed task leasing without telemetry alerts (silent-tasks.ts). */
  silentTasks?: SilentTaskWatch;
  logger: Logger;
  /** How often expired leases are ended and failed revocations retried. @default 1000 */
  sweepIntervalMs?: number;
  now?: () => number;
}

export interface LeaseManager {
  lease(claims: TaskClaims, secret: string, ttlSeconds?: number): Promise<{ lease: LeaseRecord; value: string }>;
  /** The task ends its own lease early. */
  release(claims: TaskClaims, leaseId: string): Promise<LeaseRecord>;
  get(tenant: string, id: string): Promise<LeaseRecord | null>;
  list(tenant: string, taskId: string): Promise<LeaseRecord[]>;
  /** Ends every active lease of the task: `revoked` for a kill, `released` when the task ended. */
  endTask(tenant: string, taskId: string, how: 'revoked' | 'released', reason: string): Promise<EndResult>;
  /** Active or revoke_failed leases of a task held in memory (for verification). */
  open(tenant: string, taskId: string): LeaseRecord[];
  load(): Promise<void>;
  stop(): Promise<void>;
}

export function createLeaseManager(options: LeaseManagerOptions): LeaseManager {
  const { store, logger, authority } = options;
  const now = options.now ?? Date.now;
  /** Open leases (active or revoke_failed) per task. */
  const open = new OpenLeases();
  const pending = new Set<Promise<unknown>>();
  let lastVersion = 0;
  let stopped = false;

  const nextVersion = (): number => (lastVersion = Math.max(lastVersion + 1, now() * 1000));
  const book: IssuingDeps = { ...options, open, now, nextVersion };

  function track<T>(promise: Promise<T>): Promise<T> {
    pending.add(promise);
    void promise.finally(() => pending.delete(promise)).catch(() => undefined);
    return promise;
  }

  let sweeping: Promise<void> | undefined;
  const sweeper = setInterval(() => {
    if (sweeping !== undefined || stopped) return;
    sweeping = track(sweepLeases(book))
      .catch((error: unknown) => logger.error({ err: messageOf(error) }, 'lease sweep failed'))
      .finally(() => (sweeping = undefined));
  }, options.sweepIntervalMs ?? 1000);
  sweeper.unref();

  return {
    async lease(claims, secret, ttlSeconds) {
      checkSecretName(secret);
      return issueLease(book, claims, secret, ttlSeconds);
    },

    async release(claims, leaseId) {
      const lease =
        open.get(claims.tenant, claims.taskId, leaseId) ?? (await store.getLease(claims.tenant, leaseId)) ?? undefined;
      if (lease?.taskId !== claims.taskId)
        throw new TriplineError('NOT_FOUND', `task ${claims.taskId} holds no lease ${leaseId}`);
      if (lease.status !== 'active') return lease;
      const failure = await endLease(book, lease, 'released', 'released by the task');
      if (failure !== undefined)
        throw new KillSwitchError(
          'SECRET_PROVIDER_FAILED',
          `lease ${leaseId} could not be ended at its provider: ${failure}`,
        );
      return (await store.getLease(claims.tenant, leaseId)) ?? lease;
    },

    get: (tenant, id) => store.getLease(tenant, id),
    list: (tenant, taskId) => store.listLeases(tenant, taskId),

    endTask(tenant, taskId, how, reason) {
      const leases = open.ofTask(tenant, taskId).filter((lease) => lease.status === 'active' || how === 'revoked');
      if (leases.length === 0) return Promise.resolve({ ended: 0, failed: [] });
      return track(endLeases(book, leases, how, reason));
    },

    open: (tenant, taskId) => open.ofTask(tenant, taskId),

    async load() {
      const leases = await store.listActiveLeases();
      for (const lease of leases) {
        lastVersion = Math.max(lastVersion, lease.version);
        open.hold(lease);
      }
      // A crash between a kill and its lease revocation: end the leases of tasks that are revoked now.
      const revoked = leases.filter((lease) => authority.task(lease.tenant, lease.taskId).revoked);
      await Promise.all(
        revoked.map((lease) => endLease(book, lease, 'revoked', 'the task was revoked (ended at start-up)')),
      );
      if (leases.length > 0)
        logger.info({ active: leases.length - revoked.length, revokedAtStart: revoked.length }, 'leases loaded');
    },

    async stop() {
      stopped = true;
      clearInterval(sweeper);
      await Promise.allSettled([...pending]);
    },
  };
}
