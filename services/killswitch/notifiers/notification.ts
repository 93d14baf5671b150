/**
 * What notifiers send: one `Notification` per alert, revocation, restore, escalation, failed verification or
 * approval asked for,
 * with a severity (for routing) and a deterministic id (the idempotency key: the same event notified twice has
 * the same id, so receivers deduplicate).
 */
import type { Alert, Revocation } from '../../../schemas/events.ts';
import type { Escalation } from '../escalation.ts';
import type { VerificationRecord } from '../ks-store.ts';
import type { ApprovalRecord } from '../approval-store.ts';
import { approvalUrl } from '../approvals.ts';
import { stableId } from '../../shared/ids.ts';
import { describeScope } from '../../core/escalation-policy.ts';

export const SEVERITIES = ['info', 'warning', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const NOTIFICATION_KINDS = [
  'alert',
  'revocation',
  'restore',
  'escalation',
  'verification_failed',
  'approval_requested',
] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

export interface Notification {
  /** Deterministic: the idempotency key. */
  id: string;
  kind: NotificationKind;
  severity: Severity;
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  timeMs: number;
  /** One line, e.g. "Tripline revoked task t-1 (summarize_ticket) of agent a-1". */
  title: string;
  /** A few sentences for people. */
  summary: string;
  reasons: string[];
  score?: number;
  /** Links into Tripline's API (absolute when TRIPLINE_PUBLIC_URL is set). */
  links: Record<string, string>;
  /** Stable grouping key: notifications about the same incident share it (PagerDuty dedup_key, Alertmanager labels). */
  incidentKey: string;
  data: Record<string, unknown>;
}

export function severityAtLeast(severity: Severity, minimum: Severity): boolean {
  return SEVERITIES.indexOf(severity) >= SEVERITIES.indexOf(minimum);
}

export function fromAlert(alert: Alert, baseUrl: string): Notification {
  const severity: Severity = alert.shadow ? 'info' : alert.decision === 'revoke' ? 'critical' : 'warning';
  const shadow = alert.shadow ? ' (shadow mode: nothing was revoked)' : '';
  return {
    id: stableId('notification', 'alert', alert.tenant, alert.id),
    kind: 'alert',
    severity,
    tenant: alert.tenant,
    taskId: alert.taskId,
    taskType: alert.taskType,
    agentId: alert.agentId,
    timeMs: alert.timeMs,
    title: `Tripline ${alert.decision === 'revoke' ? 'revoke-level alert' : 'alert'}: task ${alert.taskId} (${alert.taskType}) of agent ${alert.agentId}, score ${Math.round(alert.score)}${shadow}`,
    summary: alert.reasons.slice(0, 3).join('; ') || 'no reasons recorded',
    reasons: alert.reasons,
    score: alert.score,
    links: {
      task: `${baseUrl}/v1/tasks/${encodeURIComponent(alert.taskId)}`,
      alerts: `${baseUrl}/v1/alerts?task_id=${encodeURIComponent(alert.taskId)}`,
    },
    incidentKey: `tripline/${alert.tenant}/${alert.taskId}/alert`,
    data: { alert },
  };
}

export function fromRevocation(revocation: Revocation, baseUrl: string): Notification {
  const restore = revocation.action === 'restore';
  const by = revocation.source === 'detector' ? 'the detector' : revocation.actor;
  return {
    id: stableId('notification', revocation.action, revocation.tenant, revocation.id),
    kind: restore ? 'restore' : 'revocation',
    severity: restore ? 'info' : 'critical',
    tenant: revocation.tenant,
    taskId: revocation.taskId,
    taskType: revocation.taskType,
    agentId: revocation.agentId,
    timeMs: revocation.timeMs,
    title: restore
      ? `Tripline restored task ${revocation.taskId} (${revocation.taskType}) of agent ${revocation.agentId}, by ${by}`
      : `Tripline revoked task ${revocation.taskId} (${revocation.taskType}) of agent ${revocation.agentId}, by ${by}`,
    summary: [revocation.reason, ...revocation.reasons.slice(0, 3)].filter((line) => line !== '').join('; '),
    reasons: revocation.reasons,
    score: revocation.score,
    links: {
      revocation: `${baseUrl}/v1/revocations/${revocation.id}`,
      task: `${baseUrl}/v1/tasks/${encodeURIComponent(revocation.taskId)}`,
    },
    incidentKey: `tripline/${revocation.tenant}/${revocation.taskId}/revocation`,
    data: { revocation },
  };
}

export function fromEscalation(escalation: Escalation, baseUrl: string): Notification {
  return {
    id: stableId('notification', 'escalation', escalation.tenant, escalation.agentId, escalation.atMs),
    kind: 'escalation',
    severity: 'critical',
    tenant: escalation.tenant,
    taskId: escalation.taskIds[escalation.taskIds.length - 1] ?? '',
    taskType: '',
    agentId: escalation.agentId,
    timeMs: escalation.atMs,
    title:
      escalation.scope === undefined
        ? `Tripline escalated agent ${escalation.agentId}: ${escalation.taskIds.length} of its tasks were revoked; all its tasks are revoked and it may not start tasks until ${new Date(escalation.untilMs).toISOString()}`
        : `Tripline escalated agent ${escalation.agentId} for ${describeScope(escalation.scope)}: ${escalation.taskIds.length} of its tasks were revoked; its tasks there are revoked and it may not start tasks there until ${new Date(escalation.untilMs).toISOString()}`,
    summary: `Revoked tasks: ${escalation.taskIds.join(', ')}`,
    reasons: [`${escalation.taskIds.length} revocations within the escalation window`],
    links: { revocations: `${baseUrl}/v1/revocations?agent_id=${encodeURIComponent(escalation.agentId)}` },
    incidentKey: `tripline/${escalation.tenant}/agent/${escalation.agentId}/escalation`,
    data: { escalation },
  };
}

export function fromFailedVerification(
  verification: VerificationRecord,
  revocation: Revocation | undefined,
  baseUrl: string,
): Notification {
  return {
    id: stableId('notification', 'verification_failed', verification.tenant, verification.revocationId),
    kind: 'verification_failed',
    severity: 'critical',
    tenant: verification.tenant,
    taskId: verification.taskId,
    taskType: verification.taskType,
    agentId: verification.agentId,
    timeMs: verification.decidedMs ?? verification.revokedMs,
    title: `Tripline could NOT verify the kill of task ${verification.taskId} (${verification.taskType}) of agent ${verification.agentId}`,
    summary: verification.failures.join('; '),
    reasons: verification.failures,
    ...(revocation === undefined ? {} : { score: revocation.score }),
    links: {
      revocation: `${baseUrl}/v1/revocations/${verification.revocationId}`,
      task: `${baseUrl}/v1/tasks/${encodeURIComponent(verification.taskId)}`,
    },
    incidentKey: `tripline/${verification.tenant}/${verification.taskId}/verification`,
    data: { verification, ...(revocation === undefined ? {} : { revocation }) },
  };
}

/** A call waits for a person (docs/approvals.md): the first link opens the approval in the console. */
export function fromApprovalRequest(approval: ApprovalRecord, baseUrl: string): Notification {
  return {
    id: stableId('notification', 'approval_requested', approval.tenant, approval.id),
    kind: 'approval_requested',
    severity: 'warning',
    tenant: approval.tenant,
    taskId: approval.taskId,
    taskType: approval.taskType,
    agentId: approval.agentId,
    timeMs: approval.requestedMs,
    title: `Approval needed: task ${approval.taskId} (${approval.taskType}) of agent ${approval.agentId} wants to call ${approval.tool}${approval.resource === '' ? '' : ` on ${approval.resource}`}`,
    summary: `Arguments: ${approval.arguments.slice(0, 500)}. ${approval.reasons.join('; ')}. Expires ${new Date(approval.expiresMs).toISOString()}.`,
    reasons: approval.reasons,
    links: {
      approve: approvalUrl(baseUrl, approval.id),
      approval: `${baseUrl}/v1/approvals/${encodeURIComponent(approval.id)}`,
    },
    incidentKey: `tripline/${approval.tenant}/${approval.taskId}/approval/${approval.id}`,
    data: { approval: { ...approval, tenant: undefined } },
  };
}
