/**
 * The kill switch routes' request schemas (JSON Schema, validated by fastify before a handler runs) and the
 * response views of stored records (epoch milliseconds as ISO 8601, no tenant). See
 * services/api/killswitch-routes.ts.
 */
import type { Revocation } from '../../schemas/events.ts';
import type { LeaseRecord, VerificationRecord } from '../killswitch/ks-store.ts';

export const idParam = (name: string) =>
  ({
    type: 'object',
    required: [name],
    properties: { [name]: { type: 'string', minLength: 1, maxLength: 256 } },
  }) as const;

const names = { type: 'array', maxItems: 200, items: { type: 'string', minLength: 1, maxLength: 256 } } as const;

export const startTaskBody = {
  type: 'object',
  required: ['agentId', 'taskType'],
  additionalProperties: false,
  properties: {
    agentId: { type: 'string', minLength: 1, maxLength: 256 },
    taskType: { type: 'string', minLength: 1, maxLength: 256 },
    // Dot segments cannot be addressed in a URL path (services/core/classify.ts, addressableTaskId).
    taskId: { type: 'string', minLength: 1, maxLength: 256, not: { enum: ['.', '..'] } },
    tools: names,
    resources: names,
    scopes: names,
    ttlSeconds: { type: 'integer', minimum: 1, maximum: 86_400 },
    // Claims that only narrow an escalation (services/core/escalation-policy.ts).
    endUser: { type: 'string', minLength: 1, maxLength: 128 },
    conversation: { type: 'string', minLength: 1, maxLength: 128 },
  },
} as const;

export const tokenBody = {
  type: 'object',
  required: ['token'],
  properties: {
    token: { type: 'string', minLength: 1, maxLength: 8192 },
    token_type_hint: { type: 'string', maxLength: 64 },
  },
} as const;

export const checkBody = {
  type: 'object',
  required: ['tool'],
  additionalProperties: false,
  properties: {
    token: { type: 'string', minLength: 1, maxLength: 8192 },
    taskId: { type: 'string', minLength: 1, maxLength: 256 },
    tool: { type: 'string', minLength: 1, maxLength: 256 },
    resource: { type: 'string', maxLength: 1024 },
    sideEffect: { type: 'string', enum: ['read', 'write', 'destructive'] },
    // The call's arguments (docs/approvals.md): bound into an approval, top-level scalars reach the policy.
    arguments: { type: 'object' },
    // false: `arguments` holds only some of the call's arguments (too large to send whole): no approval can be bound.
    argumentsComplete: { type: 'boolean' },
  },
} as const;

export const streamQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    task_id: { type: 'string', minLength: 1, maxLength: 8192 },
    agent_id: { type: 'string', minLength: 1, maxLength: 8192 },
    types: { type: 'string', minLength: 1, maxLength: 256 },
  },
} as const;

export const leaseBody = {
  type: 'object',
  required: ['secret'],
  additionalProperties: false,
  properties: {
    secret: { type: 'string', minLength: 1, maxLength: 200 },
    ttlSeconds: { type: 'integer', minimum: 1, maximum: 86_400 },
  },
} as const;

export const secretBody = {
  type: 'object',
  required: ['value'],
  additionalProperties: false,
  properties: { value: { type: 'string', minLength: 1, maxLength: 32_768 } },
} as const;

export const ackBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    agentId: { type: 'string', minLength: 1, maxLength: 256 },
    taskId: { type: 'string', minLength: 1, maxLength: 256 },
    /** When the agent received the revocation (its clock): ISO 8601, or `receivedAtMs` epoch ms with sub-ms precision. */
    receivedAt: { type: 'string', maxLength: 64 },
    receivedAtMs: { type: 'number', minimum: 0 },
  },
} as const;

export const decisionsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    task_id: { type: 'string', minLength: 1, maxLength: 256 },
    agent_id: { type: 'string', minLength: 1, maxLength: 256 },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  },
} as const;

export const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function leaseView(lease: LeaseRecord): Record<string, unknown> {
  return {
    leaseId: lease.id,
    taskId: lease.taskId,
    taskType: lease.taskType,
    agentId: lease.agentId,
    secret: lease.secret,
    provider: lease.provider,
    status: lease.status,
    issuedAt: iso(lease.issuedMs),
    expiresAt: iso(lease.expiresMs),
    endedAt: iso(lease.endedMs),
    endReason: lease.endReason === '' ? null : lease.endReason,
  };
}

export function verificationView(record: VerificationRecord | null): Record<string, unknown> | null {
  if (record === null) return null;
  return {
    outcome: record.outcome,
    revokedAt: iso(record.revokedMs),
    decidedAt: iso(record.decidedMs),
    acknowledgedAt: iso(record.acknowledgedMs),
    failures: record.failures,
    checks: record.checks,
  };
}

export function revocationDocument(revocation: Revocation): Record<string, unknown> {
  const { tenant: _tenant, ...rest } = revocation;
  return { ...rest, time: iso(revocation.timeMs) };
}
