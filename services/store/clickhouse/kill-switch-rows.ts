/**
 * The kill switch's rows (schemas/clickhouse/006–008, and the spine's `revocations` as the kill switch reads
 * them): the records as the rows written (snake_case, as the columns are named), the column lists to read them
 * with, and the rows read back into records.
 */
import type { Revocation } from '../../../schemas/events.ts';
import type {
  CredentialRecord,
  LeaseRecord,
  LeaseStatus,
  Outcome,
  PolicyDecisionRecord,
  SecretRecord,
  TokenRevocationRecord,
  VerificationChecks,
  VerificationRecord,
} from '../../killswitch/ks-store.ts';
import { escalationOfRow } from './rows.ts';
import { fromMicros, utcText } from './values.ts';

const fromNullableMicros = (us: number | null): number | null => (us === null ? null : us / 1000);

export interface RevocationRowOut {
  id: string;
  tenant: string;
  task_id: string;
  task_type: string;
  agent_id: string;
  action: string;
  source: string;
  actor: string;
  reason: string;
  reasons: string[];
  score: number;
  event_id: string;
  time_us: number;
  escalation: string;
}
export const REVOCATION_COLUMNS = `id, tenant, task_id, task_type, agent_id, action, source, actor, reason, reasons, score, event_id,
  toUnixTimestamp64Micro(time) AS time_us, escalation`;

export function rowToRevocation(r: RevocationRowOut): Revocation {
  return {
    id: r.id,
    tenant: r.tenant,
    taskId: r.task_id,
    taskType: r.task_type,
    agentId: r.agent_id,
    action: r.action === 'restore' ? 'restore' : 'revoke',
    source: r.source === 'manual' ? 'manual' : 'detector',
    actor: r.actor,
    reason: r.reason,
    reasons: r.reasons,
    score: r.score,
    eventId: r.event_id,
    timeMs: fromMicros(r.time_us),
    ...escalationOfRow(r.escalation),
  };
}

export interface CredentialRowOut {
  tenant: string;
  jti: string;
  task_id: string;
  task_type: string;
  agent_id: string;
  scopes: string[];
  tools: string[];
  resources: string[];
  issued_us: number;
  expires_us: number;
  decision_id: string;
  kid: string;
}
export const CREDENTIAL_COLUMNS = `tenant, jti, task_id, task_type, agent_id, scopes, tools, resources, toUnixTimestamp64Micro(issued_at) AS issued_us,
  toUnixTimestamp64Micro(expires_at) AS expires_us, decision_id, kid`;

export interface TokenRevocationRowOut {
  tenant: string;
  jti: string;
  task_id: string;
  agent_id: string;
  time_us: number;
  expires_us: number;
  actor: string;
  reason: string;
}

export interface DecisionRowOut {
  id: string;
  tenant: string;
  time_us: number;
  action: string;
  agent_id: string;
  task_id: string;
  task_type: string;
  resource: string;
  decision: string;
  policies: string[];
  reasons: string[];
  errors: string[];
  context: string;
}

export interface LeaseRowOut {
  id: string;
  tenant: string;
  task_id: string;
  task_type: string;
  agent_id: string;
  secret: string;
  provider: string;
  provider_ref: string;
  status: string;
  issued_us: number;
  expires_us: number;
  ended_us: number | null;
  end_reason: string;
  version: number;
}
export const LEASE_COLUMNS = `id, tenant, task_id, task_type, agent_id, secret, provider, provider_ref, status, toUnixTimestamp64Micro(issued_at) AS issued_us,
  toUnixTimestamp64Micro(expires_at) AS expires_us, toUnixTimestamp64Micro(ended_at) AS ended_us, end_reason, version`;

export function rowToLease(r: LeaseRowOut): LeaseRecord {
  return {
    id: r.id,
    tenant: r.tenant,
    taskId: r.task_id,
    taskType: r.task_type,
    agentId: r.agent_id,
    secret: r.secret,
    provider: r.provider,
    providerRef: r.provider_ref,
    status: r.status as LeaseStatus,
    issuedMs: fromMicros(r.issued_us),
    expiresMs: fromMicros(r.expires_us),
    endedMs: fromNullableMicros(r.ended_us),
    endReason: r.end_reason,
    version: r.version,
  };
}

export interface SecretRowOut {
  tenant: string;
  name: string;
  version: number;
  ciphertext: string;
  iv: string;
  tag: string;
  key_id: string;
  deleted: boolean;
  updated_us: number;
}

export interface VerificationRowOut {
  revocation_id: string;
  tenant: string;
  task_id: string;
  task_type: string;
  agent_id: string;
  outcome: string;
  revoked_us: number;
  decided_us: number | null;
  acknowledged_us: number | null;
  checks: string;
  failures: string[];
  version: number;
}
export const VERIFICATION_COLUMNS = `revocation_id, tenant, task_id, task_type, agent_id, outcome, toUnixTimestamp64Micro(revoked_at) AS revoked_us,
  toUnixTimestamp64Micro(decided_at) AS decided_us, toUnixTimestamp64Micro(acknowledged_at) AS acknowledged_us, checks, failures, version`;

export function rowToVerification(r: VerificationRowOut): VerificationRecord {
  let checks: VerificationChecks;
  try {
    checks = JSON.parse(r.checks) as VerificationChecks;
  } catch {
    checks = {};
  }
  return {
    revocationId: r.revocation_id,
    tenant: r.tenant,
    taskId: r.task_id,
    taskType: r.task_type,
    agentId: r.agent_id,
    outcome: r.outcome as Outcome,
    revokedMs: fromMicros(r.revoked_us),
    decidedMs: fromNullableMicros(r.decided_us),
    acknowledgedMs: fromNullableMicros(r.acknowledged_us),
    checks,
    failures: r.failures,
    version: r.version,
  };
}

export function rowToCredential(r: CredentialRowOut): CredentialRecord {
  return {
    tenant: r.tenant,
    jti: r.jti,
    taskId: r.task_id,
    taskType: r.task_type,
    agentId: r.agent_id,
    scopes: r.scopes,
    tools: r.tools,
    resources: r.resources,
    issuedMs: fromMicros(r.issued_us),
    expiresMs: fromMicros(r.expires_us),
    decisionId: r.decision_id,
    kid: r.kid,
  };
}

export function rowToTokenRevocation(r: TokenRevocationRowOut): TokenRevocationRecord {
  return {
    tenant: r.tenant,
    jti: r.jti,
    taskId: r.task_id,
    agentId: r.agent_id,
    timeMs: fromMicros(r.time_us),
    expiresMs: fromMicros(r.expires_us),
    actor: r.actor,
    reason: r.reason,
  };
}

export function rowToDecision(r: DecisionRowOut): PolicyDecisionRecord {
  return {
    id: r.id,
    tenant: r.tenant,
    timeMs: fromMicros(r.time_us),
    action: r.action,
    agentId: r.agent_id,
    taskId: r.task_id,
    taskType: r.task_type,
    resource: r.resource,
    decision: r.decision === 'allow' || r.decision === 'pending' ? r.decision : 'deny',
    policies: r.policies,
    reasons: r.reasons,
    errors: r.errors,
    context: r.context,
  };
}

export function rowToSecret(r: SecretRowOut): SecretRecord {
  return {
    tenant: r.tenant,
    name: r.name,
    version: r.version,
    ciphertext: r.ciphertext,
    iv: r.iv,
    tag: r.tag,
    keyId: r.key_id,
    deleted: r.deleted,
    updatedMs: fromMicros(r.updated_us),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Records -> rows (JSONEachRow).

export function credentialToRow(r: CredentialRecord): object {
  return {
    tenant: r.tenant,
    jti: r.jti,
    task_id: r.taskId,
    task_type: r.taskType,
    agent_id: r.agentId,
    scopes: r.scopes,
    tools: r.tools,
    resources: r.resources,
    issued_at: utcText(r.issuedMs),
    expires_at: utcText(r.expiresMs),
    decision_id: r.decisionId,
    kid: r.kid,
  };
}

export function tokenRevocationToRow(r: TokenRevocationRecord): object {
  return {
    tenant: r.tenant,
    jti: r.jti,
    task_id: r.taskId,
    agent_id: r.agentId,
    time: utcText(r.timeMs),
    expires_at: utcText(r.expiresMs),
    actor: r.actor,
    reason: r.reason,
  };
}

export function decisionToRow(r: PolicyDecisionRecord): object {
  return {
    id: r.id,
    tenant: r.tenant,
    time: utcText(r.timeMs),
    action: r.action,
    agent_id: r.agentId,
    task_id: r.taskId,
    task_type: r.taskType,
    resource: r.resource,
    decision: r.decision,
    policies: r.policies,
    reasons: r.reasons,
    errors: r.errors,
    context: r.context,
  };
}

export function leaseToRow(r: LeaseRecord): object {
  return {
    id: r.id,
    tenant: r.tenant,
    task_id: r.taskId,
    task_type: r.taskType,
    agent_id: r.agentId,
    secret: r.secret,
    provider: r.provider,
    provider_ref: r.providerRef,
    status: r.status,
    issued_at: utcText(r.issuedMs),
    expires_at: utcText(r.expiresMs),
    ended_at: r.endedMs === null ? null : utcText(r.endedMs),
    end_reason: r.endReason,
    version: r.version,
  };
}

export function secretToRow(r: SecretRecord): object {
  return {
    tenant: r.tenant,
    name: r.name,
    version: r.version,
    ciphertext: r.ciphertext,
    iv: r.iv,
    tag: r.tag,
    key_id: r.keyId,
    deleted: r.deleted,
    updated_at: utcText(r.updatedMs),
  };
}

export function verificationToRow(r: VerificationRecord): object {
  return {
    revocation_id: r.revocationId,
    tenant: r.tenant,
    task_id: r.taskId,
    task_type: r.taskType,
    agent_id: r.agentId,
    outcome: r.outcome,
    revoked_at: utcText(r.revokedMs),
    decided_at: r.decidedMs === null ? null : utcText(r.decidedMs),
    acknowledged_at: r.acknowledgedMs === null ? null : utcText(r.acknowledgedMs),
    checks: JSON.stringify(r.checks),
    failures: r.failures,
    version: r.version,
  };
}
