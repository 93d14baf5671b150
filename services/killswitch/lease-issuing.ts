/**
 * Issuing a lease: the policy must allow `lease_secret` (the decision is recorded either way), the first
 * provider that has the secret serves it, and the lease never outlives the token it was asked with. An ended task's
 * token gets none; a task revoked while the provider answered gets no secret: its lease ends at once.
 */
import { randomUUID } from 'node:crypto';
import { stableId } from '../shared/ids.ts';
import type { Authority } from './authority.ts';
import type { TaskStateSource } from './checks.ts';
import type { BatchWriter } from './batch-writer.ts';
import { KillSwitchError } from './errors.ts';
import { endLease } from './lease-ending.ts';
import type { LeaseBook } from './lease-ending.ts';
import type { LeaseRecord, PolicyDecisionRecord } from './ks-store.ts';
import type { PolicyEngine } from './policy.ts';
import type { SecretProvider } from './secrets.ts';
import type { SilentTaskWatch } from './silent-tasks.ts';
import type { TaskClaims } from './tokens.ts';

export interface IssuingDeps extends LeaseBook {
  policy: PolicyEngine;
  decisions: BatchWriter<PolicyDecisionRecord>;
  authority: Authority;
  /** The task's current status and score (0–100, for the policy). */
  taskState: TaskStateSource;
  /** Default and longest lease, in seconds. */
  ttlSeconds: number;
  /** Told of every lease asked (services/killswitch/silent-tasks.ts). */
  silentTasks?: SilentTaskWatch | undefined;
}

/** Asks the policy whether the task may lease the secret, records the decision, throws POLICY_DENIED if not. */
async function authorize(deps: IssuingDeps, claims: TaskClaims, secret: string): Promise<void> {
  const snapshot = await deps.taskState(claims.tenant, claims.taskId);
  deps.silentTasks?.observe(claims, snapshot, 'lease');
  if (snapshot?.status === 'completed')
    throw new KillSwitchError('TOKEN_INVALID', `task ${claims.taskId} ended: its token is no longer valid`);
  const score = snapshot?.score ?? 0;
  const context = {
    task_id: claims.taskId,
    task_type: claims.taskType,
    secret,
    score: Math.round(score),
    scopes: claims.scopes,
  };
  const decision = deps.policy.authorize({
    agentId: claims.agentId,
    action: 'lease_secret',
    resource: secret,
    context,
  });
  const decisionId = stableId(claims.tenant, 'decision', 'lease_secret', claims.taskId, deps.now(), randomUUID());
  deps.decisions.add({
    id: decisionId,
    tenant: claims.tenant,
    timeMs: deps.now(),
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
    const by =
      decision.policies.length > 0
        ? `forbidden by ${decision.policies.join(', ')}`
        : 'no policy permits it (default deny)';
    throw new KillSwitchError(
      'POLICY_DENIED',
      `task ${claims.taskId} (${claims.taskType}) may not lease ${secret}: ${by}`,
      { details: { decisionId, policies: decision.policies } },
    );
  }
}

/** The first provider that holds the secret. */
async function providerFor(deps: IssuingDeps, tenant: string, secret: string): Promise<SecretProvider> {
  for (const candidate of deps.providers) {
    if (await candidate.has(tenant, secret)) return candidate;
  }
  throw new KillSwitchError('SECRET_NOT_FOUND', `no secret provider holds a secret named ${secret}`);
}

/** `secret`: a checked secret name. */
export async function issueLease(
  deps: IssuingDeps,
  claims: TaskClaims,
  secret: string,
  ttlSeconds: number | undefined,
): Promise<{ lease: LeaseRecord; value: string }> {
  await authorize(deps, claims, secret);
  const provider = await providerFor(deps, claims.tenant, secret);
  const issuedMs = deps.now();
  const lifetime = Math.max(1, Math.min(deps.ttlSeconds, ttlSeconds ?? deps.ttlSeconds));
  const wantedExpiry = Math.min(issuedMs + lifetime * 1000, claims.expiresAtMs);
  const leaseId = randomUUID();
  const provided = await provider.lease({
    leaseId,
    tenant: claims.tenant,
    taskId: claims.taskId,
    taskType: claims.taskType,
    agentId: claims.agentId,
    secret,
    ttlSeconds: Math.ceil((wantedExpiry - issuedMs) / 1000),
    expiresMs: wantedExpiry,
  });
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
    version: deps.nextVersion(),
  };
  deps.open.hold(lease);
  await deps.store.upsertLeases([lease]);
  // The task may have been revoked while the provider answered: then the lease ends at once.
  if (!deps.authority.isActive(claims)) {
    await endLease(deps, lease, 'revoked', 'the task was revoked while the lease was being issued');
    throw new KillSwitchError('TASK_REVOKED', `task ${claims.taskId} was revoked`, {
      details: { taskId: claims.taskId },
    });
  }
  return { lease, value: provided.value };
}
