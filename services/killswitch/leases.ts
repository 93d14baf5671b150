/**
 * Leases: a task holding an active token leases a named secret for (at most) its lifetime, after the policy
 * allows `lease_secret`. A lease ends when the task ends (released), when it expires, when the task releases it,
 * or when the task is revoked (revoked at the provider at once; a provider that fails is retried and the lease
 * stays `revoke_failed` — which the kill's verification reports — until it succeeds).
 *
 * The secret's value goes to the task once, in the lease answer; Tripline never stores it.
 */
import { randomUUID } from 'node:crypto';
import { TriplineError, messageOf } from '../shared/errors.ts';
import { stableId } from '../shared/ids.ts';
import type { Logger } from '../shared/logger.ts';
import type { Authority } from './authority.ts';
import type { BatchWriter } from './batch-writer.ts';
import { KillSwitchError } from './errors.ts';
import type { KillSwitchStore, LeaseRecord, LeaseStatus, PolicyDecisionRecord } from './ks-store.ts';
import type { PolicyEngine } from './policy.ts';
import { checkSecretName } from './secrets.ts';
import type { SecretProvider } from './secrets.ts';
import type { TaskClaims } from './tokens.ts';

export interface LeaseManagerOptions {
  store: KillSwitchStore;
  /** Asked in order; the first that `has` the secret serves it. */
  providers: readonly SecretProvider[];
  policy: PolicyEngine;
  decisions: BatchWriter<PolicyDecisionRecord>;
  authority: Authority;
  /** The task's current score (0–100), for the policy. */
  taskScore(tenant: string, taskId: string): Promise<number>;
  /** Default and longest lease, in seconds (a lease never outlives the token it was asked with). */
  ttlSeconds: number;
  logger: Logger;
  /** How often expired leases are ended and failed revocations retried. @default 1000 */
  sweepIntervalMs?: number;
  now?: () => number;
}

export interface EndResult {
  /** Leases ended at their provider. */
  ended: number;
  /** Leases whose provider did not confirm (ids with the reason). */
  failed: string[];
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

const taskKey = (tenant: string, taskId: string): string => `${tenant}\u0000${taskId}`;

export function createLeaseManager(options: LeaseManagerOptions): LeaseManager {
  const { store, logger, authority } = options;
  const now = options.now ?? Date.now;
  /** Open leases (active or revoke_failed) per task. */
  const open = new Map<string, Map<string, LeaseRecord>>();
  const pending = new Set<Promise<unknown>>();
  let lastVersion = 0;
  let stopped = false;

  const nextVersion = (): number => (lastVersion = Math.max(lastVersion + 1, now() * 1000));

  function track<T>(promise: Promise<T>): Promise<T> {
    pending.add(promise);
    void promise.finally(() => pending.delete(promise)).catch(() => undefined);
    return promise;
  }

  function hold(lease: LeaseRecord): void {
    const key = taskKey(lease.tenant, lease.taskId);
    const leases = open.get(key) ?? new Map<string, LeaseRecord>();
    leases.set(lease.id, lease);
    open.set(key, leases);
  }

  function drop(lease: LeaseRecord): void {
    const key = taskKey(lease.tenant, lease.taskId);
    const leases = open.get(key);
    leases?.delete(lease.id);
    if (leases?.size === 0) open.delete(key);
  }

  function providerOf(name: string): SecretProvider | undefined {
    return options.providers.find((provider) => provider.name === name);
  }

  /** Ends one lease at its provider and records the new status. Never throws. */
  async function end(lease: LeaseRecord, status: Exclude<LeaseStatus, 'active' | 'revoke_failed'>, reason: string): Promise<string | undefined> {
    let failure: string | undefined;
    try {
      const provider = providerOf(lease.provider);
      if (provider === undefined) throw new Error(`provider ${lease.provider} is not configured`);
      await provider.revoke(lease, reason);
    } catch (error) {
      failure = messageOf(error);
    }
    const endedMs = now();
    const next: LeaseRecord = failure === undefined
      ? { ...lease, status, endedMs, endReason: reason, version: nextVersion() }
      : { ...lease, status: 'revoke_failed', endedMs, endReason: `${reason}; provider: ${failure}`, version: nextVersion() };
    if (failure === undefined) drop(lease);
    else hold(next);
    try {
      await store.upsertLeases([next]);
    } catch (error) {
      logger.error({ leaseId: lease.id, err: messageOf(error) }, 'recording a lease state failed');
    }
    if (failure !== undefined) logger.error({ leaseId: lease.id, secret: lease.secret, provider: lease.provider, err: failure }, 'a lease could not be ended at its provider; retrying');
    return failure;
  }

  async function sweep(): Promise<void> {
    const nowMs = now();
    const work: Promise<unknown>[] = [];
    for (const leases of open.values()) {
      for (const lease of leases.values()) {
        if (lease.status === 'revoke_failed') work.push(end(lease, 'revoked', lease.endReason.split('; provider:')[0] ?? 'revoked'));
        else if (lease.expiresMs <= nowMs) work.push(end(lease, 'expired', 'the lease expired'));
      }
    }
    await Promise.all(work);
  }

  let sweeping: Promise<void> | undefined;
  const sweeper = setInterval(() => {
    if (sweeping !== undefined || stopped) return;
    sweeping = track(sweep())
      .catch((error: unknown) => logger.error({ err: messageOf(error) }, 'lease sweep failed'))
      .finally(() => (sweeping = undefined));
  }, options.sweepIntervalMs ?? 1000);
  sweeper.unref();

  return {
    async lease(claims, secret, ttlSeconds) {
      checkSecretName(secret);
      const score = await options.taskScore(claims.tenant, claims.taskId);
      const context = { task_id: claims.taskId, task_type: claims.taskType, secret, score: Math.round(score), scopes: claims.scopes };
      const decision = options.policy.authorize({ agentId: claims.agentId, action: 'lease_secret', resource: secret, context });
      const decisionId = stableId(claims.tenant, 'decision', 'lease_secret', claims.taskId, now(), randomUUID());
      options.decisions.add({
        id: decisionId,
        tenant: claims.tenant,
        timeMs: now(),
        action: 'lease_secret',
        agentId: claims.agentId,
        taskId: claims.taskId,
        taskType: claims.taskType,
        resource: secret,
        decision: decision.decision,
        policies: decision.policies,
        reasons: [],
        errors: decision.errors,
        context: JSON.stringify(context),
      });
      if (decision.decision !== 'allow') {
        const by = decision.policies.length > 0 ? `forbidden by ${decision.policies.join(', ')}` : 'no policy permits it (default deny)';
        throw new KillSwitchError('POLICY_DENIED', `task ${claims.taskId} (${claims.taskType}) may not lease ${secret}: ${by}`, { details: { decisionId, policies: decision.policies } });
      }
      let provider: SecretProvider | undefined;
      for (const candidate of options.providers) {
        if (await candidate.has(claims.tenant, secret)) {
          provider = candidate;
          break;
        }
      }
      if (provider === undefined) throw new KillSwitchError('SECRET_NOT_FOUND', `no secret provider holds a secret named ${secret}`);
      const issuedMs = now();
      const lifetime = Math.max(1, Math.min(options.ttlSeconds, ttlSeconds ?? options.ttlSeconds));
      const wantedExpiry = Math.min(issuedMs + lifetime * 1000, claims.expiresAtMs);
      const leaseId = randomUUID();
      const provided = await provider.lease({ leaseId, tenant: claims.tenant, taskId: claims.taskId, taskType: claims.taskType, agentId: claims.agentId, secret, ttlSeconds: Math.ceil((wantedExpiry - issuedMs) / 1000), expiresMs: wantedExpiry });
      const lease: LeaseRecord = {
        id: leaseId,
        tenant: claims.tenant,
        taskId: claims.taskId,
        taskType: claims.taskType,
        agentId: claims.agentId,
        secret,
        provider: provider.name,
        providerRef: provided.providerRef,
        status: 'active',
        issuedMs,
        expiresMs: provided.expiresMs ?? wantedExpiry,
        endedMs: null,
        endReason: '',
        version: nextVersion(),
      };
      hold(lease);
      await store.upsertLeases([lease]);
      // The task may have been revoked while the provider answered: then the lease ends at once.
      if (!authority.isActive(claims)) {
        await end(lease, 'revoked', 'the task was revoked while the lease was being issued');
        throw new KillSwitchError('TASK_REVOKED', `task ${claims.taskId} was revoked`, { details: { taskId: claims.taskId } });
      }
      return { lease, value: provided.value };
    },

    async release(claims, leaseId) {
      const lease = open.get(taskKey(claims.tenant, claims.taskId))?.get(leaseId) ?? (await store.getLease(claims.tenant, leaseId)) ?? undefined;
      if (lease?.taskId !== claims.taskId) throw new TriplineError('NOT_FOUND', `task ${claims.taskId} holds no lease ${leaseId}`);
      if (lease.status !== 'active') return lease;
      const failure = await end(lease, 'released', 'released by the task');
      if (failure !== undefined) throw new KillSwitchError('SECRET_PROVIDER_FAILED', `lease ${leaseId} could not be ended at its provider: ${failure}`);
      return (await store.getLease(claims.tenant, leaseId)) ?? lease;
    },

    get: (tenant, id) => store.getLease(tenant, id),
    list: (tenant, taskId) => store.listLeases(tenant, taskId),

    endTask(tenant, taskId, how, reason) {
      const leases = [...(open.get(taskKey(tenant, taskId))?.values() ?? [])].filter((lease) => lease.status === 'active' || how === 'revoked');
      if (leases.length === 0) return Promise.resolve({ ended: 0, failed: [] });
      return track(
        (async () => {
          const failures = await Promise.all(leases.map((lease) => end(lease, how, reason)));
          const failed = leases.flatMap((lease, index) => (failures[index] === undefined ? [] : [`lease ${lease.id} (${lease.secret}, ${lease.provider}): ${failures[index] ?? ''}`]));
          return { ended: leases.length - failed.length, failed };
        })(),
      );
    },

    open: (tenant, taskId) => [...(open.get(taskKey(tenant, taskId))?.values() ?? [])],

    async load() {
      const leases = await store.listActiveLeases();
      for (const lease of leases) {
        lastVersion = Math.max(lastVersion, lease.version);
        hold(lease);
      }
      // A crash between a kill and its lease revocation: end the leases of tasks that are revoked now.
      const revoked = leases.filter((lease) => authority.task(lease.tenant, lease.taskId).revoked);
      await Promise.all(revoked.map((lease) => end(lease, 'revoked', 'the task was revoked (ended at start-up)')));
      if (leases.length > 0) logger.info({ active: leases.length - revoked.length, revokedAtStart: revoked.length }, 'leases loaded');
    },

    async stop() {
      stopped = true;
      clearInterval(sweeper);
      await Promise.allSettled([...pending]);
    },
  };
}
