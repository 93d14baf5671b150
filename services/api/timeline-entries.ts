/**
 * The timeline's sources as entries (services/core/timeline.ts): one function per kind of record, each taking
 * stored records and returning entries with a sentence a person reads. Pure; services/api/timeline.ts reads the
 * records through the store ports and merges what these return.
 */
import type { AgentEvent, Alert, Revocation } from '../../schemas/events.ts';
import type { AuditRecord } from '../auth/access-store.ts';
import type { TimelineEntry } from '../core/timeline.ts';
import type { ApprovalStepRecord } from '../killswitch/approval-store.ts';
import type {
  CheckResult,
  CredentialRecord,
  LeaseRecord,
  PolicyDecisionRecord,
  TokenRevocationRecord,
  VerificationRecord,
} from '../killswitch/ks-store.ts';
import type { ModelUsageRow, ScoredEvent, TaskRecord } from '../store/store.ts';

const iso = (ms: number): string => new Date(ms).toISOString();
const list = (items: readonly string[]): string => (items.length === 0 ? 'none' : items.join(', '));
const number = (n: number): string => n.toLocaleString('en-US');
const count = (n: number, one: string, many = `${one}s`): string => `${number(n)} ${n === 1 ? one : many}`;

function entry(
  source: string,
  kind: string,
  id: string,
  timeMs: number,
  summary: string,
  detail: Record<string, unknown>,
): TimelineEntry {
  return { timeMs, kind, source, id, summary, detail };
}

/** The task's start and end, the parent it declared and the children that declared it. */
export function taskEntries(task: TaskRecord, children: readonly TaskRecord[]): TimelineEntry[] {
  const out = [
    entry(
      'task',
      'task_started',
      `${task.taskId}/start`,
      task.startedMs,
      `Task ${task.taskId} of type ${task.taskType} started (agent ${task.agentId}).`,
      {
        taskId: task.taskId,
        ...(task.name === '' ? {} : { name: task.name }),
        taskType: task.taskType,
        agentId: task.agentId,
      },
    ),
  ];
  if (task.parentTaskId !== undefined) {
    out.push(
      entry(
        'task',
        'parent',
        `${task.taskId}/parent`,
        task.startedMs,
        `It declared ${task.parentTaskId} as its parent task.`,
        {
          parentTaskId: task.parentTaskId,
        },
      ),
    );
  }
  for (const child of children) {
    out.push(
      entry(
        'task',
        'child_started',
        `${child.taskId}/child`,
        child.startedMs,
        `Child task ${child.taskId} of type ${child.taskType} started (agent ${child.agentId}); it is ${child.status} now.`,
        {
          taskId: child.taskId,
          taskType: child.taskType,
          agentId: child.agentId,
          status: child.status,
          score: child.score,
        },
      ),
    );
  }
  if (task.endedMs !== null) {
    out.push(
      entry(
        'task',
        'task_ended',
        `${task.taskId}/end`,
        task.endedMs,
        `Task ended ${task.status === 'revoked' ? 'revoked' : 'normally'}: ${count(task.counts.tool_call, 'tool call')}, ${count(task.counts.data_access, 'data access', 'data accesses')}, ${count(task.counts.privilege_change, 'privilege change')}, final score ${Math.round(task.score)}.`,
        { status: task.status, score: task.score, decision: task.decision, reasons: task.reasons, counts: task.counts },
      ),
    );
  }
  return out;
}

function actionText(event: AgentEvent): string {
  const sameCallOf = event.tool?.sameCallOf;
  if (sameCallOf !== undefined)
    return `Another instrumentation's record (span ${event.name}) of the call to tool ${event.tool?.name ?? event.name} counted as event ${sameCallOf}: not a second call`;
  if (event.kind === 'tool_call') {
    const tool = event.tool;
    const side = tool?.sideEffect === undefined ? '' : ` (${tool.sideEffect})`;
    const target = tool?.target === undefined ? '' : ` on ${tool.target}`;
    const amount = tool?.amount === undefined ? '' : `, amount ${number(tool.amount)}`;
    return `Called tool ${tool?.name ?? event.name}${side}${target}${amount}`;
  }
  if (event.kind === 'data_access') {
    const data = event.data;
    const facts = [
      data?.operation,
      data?.rows === undefined ? undefined : `${number(data.rows)} ${data.rows === 1 ? 'row' : 'rows'}`,
      data?.bytes === undefined ? undefined : `${number(data.bytes)} bytes`,
      data?.classification,
    ].filter((fact) => fact !== undefined);
    return `Accessed ${data?.resource ?? event.name}${facts.length === 0 ? '' : ` (${facts.join(', ')})`}`;
  }
  const privilege = event.privilege;
  const approved = privilege?.approved === undefined ? '' : privilege.approved ? ', approved' : ', not approved';
  return `Privilege ${privilege?.action ?? event.name}: scopes ${list(privilege?.scopesBefore ?? [])} → ${list(privilege?.scopesAfter ?? [])}${approved}`;
}

/** The task's events (tool calls, data access, privilege changes) with the verdict each got. */
export function eventEntries(events: readonly ScoredEvent[]): TimelineEntry[] {
  return events.map(({ event, verdict }) => {
    const reason = verdict.contributions[0]?.reason;
    const judged =
      verdict.decision === 'allow'
        ? ''
        : `; the detector said ${verdict.decision} (score ${Math.round(verdict.score)})${reason === undefined ? '' : `: ${reason}`}`;
    return entry(
      'events',
      event.tool?.sameCallOf === undefined ? event.kind : 'same_tool_call',
      event.id,
      event.startMs,
      `${actionText(event)}${event.error ? ', failed' : ''}${judged}.`,
      {
        eventId: event.id,
        name: event.name,
        traceId: event.traceId,
        spanId: event.spanId,
        durationMs: Math.max(0, event.endMs - event.startMs),
        error: event.error,
        ...(event.tool === undefined ? {} : { tool: event.tool }),
        ...(event.data === undefined ? {} : { data: event.data }),
        ...(event.privilege === undefined ? {} : { privilege: event.privilege }),
        verdict: {
          score: verdict.score,
          decision: verdict.decision,
          regime: verdict.regime,
          reasons: verdict.contributions.map((c) => c.reason),
          ...(verdict.hardRule === undefined ? {} : { hardRule: verdict.hardRule }),
          shadow: verdict.shadow,
        },
      },
    );
  });
}

export function alertEntries(alerts: readonly Alert[]): TimelineEntry[] {
  return alerts.map((alert) =>
    entry(
      'alerts',
      'alert',
      alert.id,
      alert.timeMs,
      `Alert${alert.shadow ? ' (shadow mode, not acted on)' : ''}: ${alert.decision} at score ${Math.round(alert.score)}${alert.reasons[0] === undefined ? '' : `: ${alert.reasons[0]}`}.`,
      {
        alertId: alert.id,
        eventId: alert.eventId,
        score: alert.score,
        decision: alert.decision,
        regime: alert.regime,
        reasons: alert.reasons,
        shadow: alert.shadow,
      },
    ),
  );
}

function revocationKind(revocation: Revocation): string {
  if (revocation.action === 'restore') return 'restore';
  return revocation.escalation?.basis === 'escalation' ? 'escalation' : 'revocation';
}

function revocationSummary(revocation: Revocation): string {
  const by = revocation.source === 'detector' ? 'the detector' : revocation.actor;
  const why =
    revocation.source === 'detector' ? (revocation.reasons[0] ?? revocation.reason) : `"${revocation.reason}"`;
  if (revocation.action === 'restore') return `Task restored by ${by}: ${why}.`;
  if (revocation.escalation?.basis === 'escalation')
    return `Task revoked because its agent ${revocation.agentId} was escalated: ${why}.`;
  if (revocation.escalation?.basis === 'task_tree')
    return `Task revoked with its parent ${revocation.parentTaskId ?? ''}: ${why}.`.replace(' :', ':');
  const score = revocation.source === 'detector' ? ` (score ${Math.round(revocation.score)})` : '';
  return `Task revoked by ${by}${score}: ${why}. Its credentials stop working now.`;
}

/** Kills, restores and escalations of the task. */
export function revocationEntries(revocations: readonly Revocation[]): TimelineEntry[] {
  return revocations.map((revocation) =>
    entry('revocations', revocationKind(revocation), revocation.id, revocation.timeMs, revocationSummary(revocation), {
      revocationId: revocation.id,
      action: revocation.action,
      source: revocation.source,
      actor: revocation.actor,
      reason: revocation.reason,
      reasons: revocation.reasons,
      score: revocation.score,
      eventId: revocation.eventId,
      ...(revocation.escalation === undefined ? {} : { escalation: revocation.escalation }),
      ...(revocation.parentTaskId === undefined ? {} : { parentTaskId: revocation.parentTaskId }),
    }),
  );
}

const DECISION_WORDS: Record<PolicyDecisionRecord['decision'], string> = {
  allow: 'allowed',
  deny: 'denied',
  pending: "held for a person's approval",
};

/** Request-time checks and task starts the policy answered (`/v1/check`, `POST /v1/tasks`, leases). */
export function decisionEntries(decisions: readonly PolicyDecisionRecord[]): TimelineEntry[] {
  return decisions.map((decision) => {
    const why =
      decision.reasons.length > 0
        ? `: ${decision.reasons.join('; ')}`
        : decision.policies.length > 0
          ? ` by ${decision.policies.join(', ')}`
          : decision.decision === 'deny'
            ? ' (no policy permits it)'
            : '';
    return entry(
      'decisions',
      'policy_decision',
      decision.id,
      decision.timeMs,
      `Policy ${DECISION_WORDS[decision.decision]} ${decision.action} ${decision.resource}${why}.`,
      {
        decisionId: decision.id,
        action: decision.action,
        resource: decision.resource,
        decision: decision.decision,
        policies: decision.policies,
        reasons: decision.reasons,
        errors: decision.errors,
      },
    );
  });
}

/**
 * Task tokens issued; each one revoked on its own (RFC 7009); and each still unexpired token at a revoke of the
 * task (a task's revocation kills every token issued before it, without a row of its own).
 */
export function credentialEntries(
  credentials: readonly CredentialRecord[],
  tokenRevocations: readonly TokenRevocationRecord[],
  revocations: readonly Revocation[],
): TimelineEntry[] {
  const out: TimelineEntry[] = [];
  for (const credential of credentials) {
    out.push(
      entry(
        'credentials',
        'credential_issued',
        `${credential.jti}/issued`,
        credential.issuedMs,
        `Task token ${credential.jti} issued for tools ${list(credential.tools)}, valid until ${iso(credential.expiresMs)}.`,
        {
          jti: credential.jti,
          scopes: credential.scopes,
          tools: credential.tools,
          resources: credential.resources,
          expiresAt: iso(credential.expiresMs),
          decisionId: credential.decisionId,
        },
      ),
    );
  }
  for (const revoked of tokenRevocations) {
    out.push(
      entry(
        'credentials',
        'credential_revoked',
        `${revoked.jti}/revoked`,
        revoked.timeMs,
        `Task token ${revoked.jti} revoked by ${revoked.actor}${revoked.reason === '' ? '' : `: ${revoked.reason}`}.`,
        { jti: revoked.jti, actor: revoked.actor, reason: revoked.reason, by: 'token' },
      ),
    );
  }
  for (const revocation of revocations) {
    if (revocation.action !== 'revoke') continue;
    for (const credential of credentials) {
      if (credential.issuedMs > revocation.timeMs || credential.expiresMs <= revocation.timeMs) continue;
      out.push(
        entry(
          'credentials',
          'credential_revoked',
          `${credential.jti}/${revocation.id}`,
          revocation.timeMs,
          `Task token ${credential.jti} is dead: introspection answers inactive and checks deny it from now on.`,
          { jti: credential.jti, revocationId: revocation.id, by: 'task_revocation' },
        ),
      );
    }
  }
  return out;
}

/** Secrets leased to the task, and how each lease ended. */
export function leaseEntries(leases: readonly LeaseRecord[]): TimelineEntry[] {
  const out: TimelineEntry[] = [];
  for (const lease of leases) {
    const detail = { leaseId: lease.id, secret: lease.secret, provider: lease.provider, status: lease.status };
    out.push(
      entry(
        'leases',
        'lease_issued',
        `${lease.id}/issued`,
        lease.issuedMs,
        `Lease ${lease.id} on secret ${lease.secret} issued (${lease.provider}), until ${iso(lease.expiresMs)}.`,
        { ...detail, expiresAt: iso(lease.expiresMs) },
      ),
    );
    if (lease.endedMs !== null) {
      const how =
        lease.status === 'revoke_failed'
          ? 'could not be revoked at its provider'
          : lease.status === 'revoked'
            ? 'revoked at its provider'
            : lease.status === 'revoked_at_tripline_only'
              ? 'revoked at Tripline only (the value handed out still works at its system until rotated there)'
              : lease.status;
      out.push(
        entry(
          'leases',
          'lease_ended',
          `${lease.id}/ended`,
          lease.endedMs,
          `Lease ${lease.id} on secret ${lease.secret} ${how}${lease.endReason === '' ? '' : `: ${lease.endReason}`}.`,
          { ...detail, endReason: lease.endReason },
        ),
      );
    }
  }
  return out;
}

/** Each kill's delivery to the agent (the helper's acknowledgement) and its verification outcome. */
export function verificationEntries(verifications: readonly VerificationRecord[]): TimelineEntry[] {
  const out: TimelineEntry[] = [];
  for (const verification of verifications) {
    const id = verification.revocationId;
    if (verification.acknowledgedMs !== null) {
      out.push(
        entry(
          'verifications',
          'acknowledged',
          `${id}/ack`,
          verification.acknowledgedMs,
          `The agent's helper acknowledged the revocation ${Math.max(0, verification.acknowledgedMs - verification.revokedMs)} ms after it.`,
          { revocationId: id },
        ),
      );
    }
    const checks: [string, CheckResult | undefined][] = [
      ['introspection', verification.checks.introspection],
      ['leases', verification.checks.leases],
      ['agent stopped', verification.checks.agentStopped],
      ['acknowledged', verification.checks.acknowledged],
    ];
    const found = checks
      .flatMap(([name, check]) =>
        check === undefined ? [] : [`${check.ok ? 'ok' : 'FAILED'} ${name}: ${check.detail}`],
      )
      .join('; ');
    const summary =
      verification.outcome === 'verified'
        ? `The kill was verified${found === '' ? '' : `: ${found}`}.`
        : verification.outcome === 'failed'
          ? `The kill could not be verified: ${list(verification.failures)}.`
          : 'The kill is being verified (pending).';
    out.push(
      entry(
        'verifications',
        'verification',
        `${id}/outcome`,
        verification.decidedMs ?? verification.revokedMs,
        summary,
        {
          revocationId: id,
          outcome: verification.outcome,
          failures: verification.failures,
          checks: verification.checks,
        },
      ),
    );
  }
  return out;
}

/** Requests people and agents made about the task through the API (kills, restores, false positives). */
export function auditEntries(records: readonly AuditRecord[]): TimelineEntry[] {
  return records.map((record) =>
    entry(
      'audit',
      'audit',
      `${record.timeMs}/${record.requestId}/${record.route}`,
      record.timeMs,
      `${record.actor === '' ? 'Someone without a valid token' : `${record.actor} (${record.role})`} called ${record.method} ${record.route}: answered ${record.status}${record.reason === '' ? '' : `, reason "${record.reason}"`}.`,
      {
        actor: record.actor,
        role: record.role,
        method: record.method,
        route: record.route,
        target: record.target,
        reason: record.reason,
        status: record.status,
        requestId: record.requestId,
      },
    ),
  );
}

const APPROVAL_WORDS: Record<ApprovalStepRecord['step'], string> = {
  requested: 'asked a person to approve',
  approved: 'approved',
  denied: 'denied',
  used: 'used the approval of',
  expired: 'expired unanswered:',
};

/** Approval points (docs/approvals.md): each step of each approval the task's calls waited for. */
export function approvalEntries(steps: readonly ApprovalStepRecord[]): TimelineEntry[] {
  return steps.map((step) => {
    const who = step.step === 'expired' ? 'The approval' : step.actor;
    const why = step.reason === '' ? '' : ` (${step.reason})`;
    return entry(
      'approvals',
      'approval',
      `${step.approvalId}:${step.step}:${step.timeMs}`,
      step.timeMs,
      `${who} ${APPROVAL_WORDS[step.step]} approval ${step.approvalId}${why}.`,
      { approvalId: step.approvalId, step: step.step, actor: step.actor, reason: step.reason },
    );
  });
}

/** The task's model calls (docs/budgets.md): tokens in and out, the model, and what the price table made of them. */
export function modelCallEntries(rows: readonly ModelUsageRow[]): TimelineEntry[] {
  return rows.map(({ usage, costUsd, priced }) =>
    entry(
      'model_calls',
      'model_call',
      usage.id,
      usage.endMs,
      `The agent called ${usage.model} (${usage.operation}): ${count(usage.inputTokens, 'token')} in, ${count(usage.outputTokens, 'token')} out, $${costUsd.toFixed(4)}${priced ? '' : ' (model not in the price table: fallback price)'}.`,
      {
        model: usage.model,
        operation: usage.operation,
        ...(usage.provider === undefined ? {} : { provider: usage.provider }),
        inputTokens: usage.inputTokens,
        outputTokens: usage.outputTokens,
        costUsd,
        priced,
      },
    ),
  );
}
