/**
 * Approval points: calls a policy says need a person (docs/approvals.md). The checker (services/killswitch/
 * checks.ts) asks for an approval when a call's only obstacle is an `@approval("required")` policy, and finds
 * the approval a call is bound to (`bound`); people approve or deny through the API (operator role); the agent
 * polls its own approval with its task token; the approved call is let through once (`use`).
 *
 * The approvals bound to a call that may still decide something (pending, approved, and denied ones until their
 * expiry) are kept in memory, keyed by tenant, task and binding hash, and rebuilt from the store at start. A
 * sweep expires open approvals past their expiry. Every step (requested, approved, denied, expired, used) is
 * stored in order and told to the subscribers (the audit trail, the notifiers).
 */
import { randomUUID } from 'node:crypto';
import { effectiveStatus, transition } from '../core/approvals.ts';
import type { ApprovalEvent, ApprovalStatus, ApprovalStep } from '../core/approvals.ts';
import { TriplineError, messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { stableId } from '../shared/ids.ts';
import type { ApprovalFilter, ApprovalRecord, ApprovalStepRecord, ApprovalStore } from './approval-store.ts';

export interface ApprovalRequest {
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  tool: string;
  resource: string;
  /** Canonical JSON (services/core/approvals.ts canonicalJson). */
  arguments: string;
  bindingHash: string;
  policies: string[];
  reasons: string[];
  decisionId: string;
}

export type ApprovalListener = (step: ApprovalStepRecord, approval: ApprovalRecord) => void;

export interface ApprovalManager {
  /** Rebuilds the open approvals from the store. */
  load(): Promise<void>;
  /** The approval a call is bound to that still decides something now (pending, approved, or denied until expiry). */
  bound(tenant: string, taskId: string, bindingHash: string): ApprovalRecord | undefined;
  request(input: ApprovalRequest): Promise<ApprovalRecord>;
  /** A person's decision. NOT_FOUND for another tenant's or an unknown id; CONFLICT when it is no longer pending. */
  decide(
    tenant: string,
    id: string,
    decision: 'approve' | 'deny',
    actor: string,
    reason: string,
  ): Promise<ApprovalRecord>;
  /** The approved call is let through: the approval is used up. */
  use(approval: ApprovalRecord, actor: string): Promise<ApprovalRecord>;
  /** With its state at this moment (an open one past its expiry is expired, and recorded so). */
  get(tenant: string, id: string): Promise<ApprovalRecord | null>;
  list(filter: ApprovalFilter): Promise<ApprovalRecord[]>;
  /** A task's approval steps in time order (for the task's timeline). */
  taskSteps(tenant: string, taskId: string): Promise<ApprovalStepRecord[]>;
  /** Expires the open approvals past their expiry; returns how many. */
  sweep(): Promise<number>;
  subscribe(listener: ApprovalListener): () => void;
  /** How long an approval stays valid after it is asked for. */
  readonly ttlMs: number;
  stop(): void;
}

export function createApprovalManager(options: {
  store: ApprovalStore;
  ttlMs: number;
  logger: Logger;
  /** How often the sweep runs (0: never, tests). @default 5000 */
  sweepEveryMs?: number;
  now?: () => number;
}): ApprovalManager {
  const { store, ttlMs, logger } = options;
  const now = options.now ?? Date.now;
  /** By tenant, task and hash: the approval a call is bound to. */
  const byBinding = new Map<string, ApprovalRecord>();
  /** By tenant and id: the same records (pending, approved, denied until expiry). */
  const byId = new Map<string, ApprovalRecord>();
  const listeners = new Set<ApprovalListener>();
  const bindingKey = (tenant: string, taskId: string, hash: string): string => `${tenant}\u0000${taskId}\u0000${hash}`;
  const idKey = (tenant: string, id: string): string => `${tenant}\u0000${id}`;

  const remember = (approval: ApprovalRecord): void => {
    const keep = approval.status === 'pending' || approval.status === 'approved' || approval.status === 'denied';
    const binding = bindingKey(approval.tenant, approval.taskId, approval.bindingHash);
    if (keep) {
      byBinding.set(binding, approval);
      byId.set(idKey(approval.tenant, approval.id), approval);
    } else {
      if (byBinding.get(binding)?.id === approval.id) byBinding.delete(binding);
      byId.delete(idKey(approval.tenant, approval.id));
    }
  };

  const forget = (approval: ApprovalRecord): void => {
    const binding = bindingKey(approval.tenant, approval.taskId, approval.bindingHash);
    if (byBinding.get(binding)?.id === approval.id) byBinding.delete(binding);
    byId.delete(idKey(approval.tenant, approval.id));
  };

  async function save(approval: ApprovalRecord, step: ApprovalStep, actor: string, reason: string): Promise<void> {
    const record: ApprovalStepRecord = {
      tenant: approval.tenant,
      approvalId: approval.id,
      taskId: approval.taskId,
      step,
      timeMs: step === 'requested' ? approval.requestedMs : now(),
      actor,
      reason,
    };
    await store.upsertApprovals([approval]);
    await store.insertApprovalSteps([record]);
    for (const listener of listeners) {
      try {
        listener(record, approval);
      } catch (error) {
        logger.error({ err: messageOf(error) }, 'an approval listener failed');
      }
    }
  }

  /** Applies `event` to the approval (already known to be in memory or read from the store). */
  async function apply(
    approval: ApprovalRecord,
    event: ApprovalEvent,
    actor: string,
    reason: string,
  ): Promise<{ ok: true; approval: ApprovalRecord } | { ok: false; approval: ApprovalRecord; reason: string }> {
    const atMs = now();
    const result = transition(approval, event, atMs);
    if (!result.ok) {
      // Past its expiry while open: record the expiry first, so the answer and the store agree.
      if (result.status === 'expired' && approval.status !== 'expired') {
        const expired = await expire(approval);
        return { ok: false, approval: expired, reason: result.reason };
      }
      return { ok: false, approval, reason: result.reason };
    }
    const next: ApprovalRecord = {
      ...approval,
      status: result.status,
      version: approval.version + 1,
      ...(event === 'approve' || event === 'deny'
        ? { decidedMs: atMs, decidedBy: actor, decisionReason: reason }
        : event === 'use'
          ? { usedMs: atMs }
          : {}),
    };
    remember(next);
    await save(next, result.step, actor, reason);
    return { ok: true, approval: next };
  }

  async function expire(approval: ApprovalRecord): Promise<ApprovalRecord> {
    const next: ApprovalRecord = { ...approval, status: 'expired', version: approval.version + 1 };
    forget(next);
    await save(
      next,
      'expired',
      'tripline',
      `not ${approval.status === 'approved' ? 'used' : 'decided'} before its expiry`,
    );
    return next;
  }

  /** The approval as it stands now (an open one past expiry gets expired on the way). */
  async function current(approval: ApprovalRecord): Promise<ApprovalRecord> {
    const status = effectiveStatus(approval, now());
    return status === 'expired' && approval.status !== 'expired' ? expire(approval) : approval;
  }

  const sweepEveryMs = options.sweepEveryMs ?? 5000;
  let sweeping: Promise<number> | undefined;
  async function sweep(): Promise<number> {
    const atMs = now();
    let expired = 0;
    for (const approval of [...byId.values()]) {
      if (approval.expiresMs > atMs) continue;
      if (approval.status === 'denied') {
        forget(approval); // final already: it stops deciding the call at its expiry
        continue;
      }
      await expire(approval);
      expired += 1;
    }
    return expired;
  }
  const timer =
    sweepEveryMs > 0
      ? setInterval(() => {
          sweeping ??= sweep()
            .catch((error: unknown) => {
              logger.error({ err: messageOf(error) }, 'expiring approvals failed; retried at the next sweep');
              return 0;
            })
            .finally(() => {
              sweeping = undefined;
            });
        }, sweepEveryMs)
      : undefined;
  timer?.unref();

  return {
    ttlMs,
    async load() {
      for (const approval of await store.listOpenApprovals(now())) remember(approval);
    },
    bound(tenant, taskId, hash) {
      const approval = byBinding.get(bindingKey(tenant, taskId, hash));
      if (approval === undefined) return undefined;
      if (approval.expiresMs <= now()) return undefined; // the sweep records it
      return approval;
    },
    async request(input) {
      const requestedMs = now();
      const approval: ApprovalRecord = {
        id: stableId(input.tenant, 'approval', input.taskId, input.bindingHash, requestedMs, randomUUID()),
        ...input,
        status: 'pending',
        requestedMs,
        expiresMs: requestedMs + ttlMs,
        decidedMs: null,
        decidedBy: '',
        decisionReason: '',
        usedMs: null,
        version: 1,
      };
      // In memory before the write: a second check of the same call meanwhile finds this one.
      remember(approval);
      try {
        await save(approval, 'requested', input.agentId, input.reasons.join('; '));
      } catch (error) {
        forget(approval);
        throw error;
      }
      return approval;
    },
    async decide(tenant, id, decision, actor, reason) {
      const known = byId.get(idKey(tenant, id)) ?? (await store.getApproval(tenant, id));
      if (known === null) throw new TriplineError('NOT_FOUND', `no approval ${id}`);
      const result = await apply(known, decision, actor, reason);
      if (!result.ok)
        throw new TriplineError('CONFLICT', `approval ${id} is ${result.approval.status}: ${result.reason}`, {
          details: { status: result.approval.status },
        });
      return result.approval;
    },
    async use(approval, actor) {
      const result = await apply(approval, 'use', actor, 'the approved call was let through');
      if (!result.ok)
        throw new TriplineError('CONFLICT', `approval ${approval.id} is ${result.approval.status}: ${result.reason}`);
      return result.approval;
    },
    async get(tenant, id) {
      const known = byId.get(idKey(tenant, id)) ?? (await store.getApproval(tenant, id));
      return known === null ? null : current(known);
    },
    async list(filter) {
      const rows = await store.listApprovals(filter);
      return Promise.all(
        rows.map((row) => {
          const live = byId.get(idKey(row.tenant, row.id));
          return current(live !== undefined && live.version >= row.version ? live : row);
        }),
      );
    },
    taskSteps: (tenant, taskId) => store.listTaskApprovalSteps(tenant, taskId),
    sweep: () => sweep(),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop() {
      if (timer !== undefined) clearInterval(timer);
    },
  };
}

/** The API's view of an approval (ISO times, the arguments as JSON, no tenant). */
export function approvalView(approval: ApprovalRecord, publicUrl?: string): Record<string, unknown> {
  const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
  let args: unknown = approval.arguments;
  try {
    args = JSON.parse(approval.arguments);
  } catch {
    // kept as text
  }
  return {
    approvalId: approval.id,
    status: approval.status satisfies ApprovalStatus,
    taskId: approval.taskId,
    taskType: approval.taskType,
    agentId: approval.agentId,
    tool: approval.tool,
    resource: approval.resource,
    arguments: args,
    bindingHash: approval.bindingHash,
    policies: approval.policies,
    reasons: approval.reasons,
    decisionId: approval.decisionId,
    requestedAt: iso(approval.requestedMs),
    expiresAt: iso(approval.expiresMs),
    decidedAt: iso(approval.decidedMs),
    decidedBy: approval.decidedBy === '' ? null : approval.decidedBy,
    decisionReason: approval.decisionReason === '' ? null : approval.decisionReason,
    usedAt: iso(approval.usedMs),
    ...(publicUrl === undefined ? {} : { url: approvalUrl(publicUrl, approval.id) }),
  };
}

/** The console page of an approval (links in notifications). */
export function approvalUrl(publicUrl: string, id: string): string {
  return `${publicUrl.replace(/\/$/, '')}/#approval=${encodeURIComponent(id)}`;
}
