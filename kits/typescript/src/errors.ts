/**
 * Typed errors of the agent helpers. Agents catch these by class (`instanceof TaskRevokedError`) or by `code`.
 */

/** What Tripline sent about the revocation (the `revocation` server-sent event). */
export interface RevocationNotice {
  id: string;
  taskId: string;
  taskType: string;
  agentId: string;
  action: 'revoke' | 'restore';
  source: 'detector' | 'manual';
  actor: string;
  reason: string;
  reasons: string[];
  score: number;
  timeMs: number;
}

/**
 * Thrown instead of running a tool call (or a data access, or a privilege change) of a task Tripline has
 * revoked. The operation did not run. The task's credentials are dead; a person may restore the task.
 */
export class TaskRevokedError extends Error {
  override readonly name = 'TaskRevokedError';
  readonly code = 'TASK_REVOKED';
  readonly taskId: string;
  /** The revocation id (GET /v1/revocations/{id} on Tripline's API), or '' for an agent-wide escalation. */
  readonly revocationId: string;
  readonly reason: string;
  readonly reasons: readonly string[];
  /** The operation that was refused, e.g. `execute_tool get_ticket`. */
  readonly operation: string;
  readonly revokedAtMs: number;

  constructor(options: {
    taskId: string;
    revocationId: string;
    reason: string;
    reasons?: readonly string[];
    operation: string;
    revokedAtMs: number;
  }) {
    super(`task ${options.taskId} was revoked by Tripline (${options.reason}); refused ${options.operation}`);
    this.taskId = options.taskId;
    this.revocationId = options.revocationId;
    this.reason = options.reason;
    this.reasons = options.reasons ?? [];
    this.operation = options.operation;
    this.revokedAtMs = options.revokedAtMs;
  }
}

/**
 * Thrown instead of running an operation of a task that a loop or rate limit refuses for a while (Tripline's
 * `refuse` step: the task repeated one call, cycled through the same tools, or called too fast). The operation did
 * not run; the task is not revoked: after `refusedUntilMs` its calls run again (a task that keeps looping is then
 * revoked).
 */
export class TaskRefusedError extends Error {
  override readonly name = 'TaskRefusedError';
  readonly code = 'TASK_REFUSED';
  readonly taskId: string;
  /** Why, e.g. `loop.repeat: tool get_order was called 10 times with the same arguments in this task …`. */
  readonly reason: string;
  readonly operation: string;
  readonly refusedUntilMs: number;

  constructor(options: { taskId: string; reason: string; operation: string; refusedUntilMs: number }) {
    super(
      `task ${options.taskId} is refused calls until ${new Date(options.refusedUntilMs).toISOString()} (${options.reason}); refused ${options.operation}`,
    );
    this.taskId = options.taskId;
    this.reason = options.reason;
    this.operation = options.operation;
    this.refusedUntilMs = options.refusedUntilMs;
  }
}

/** Tripline refused to start the task (POST /v1/tasks answered 403): no credentials were issued and nothing ran. */
export class TaskDeniedError extends Error {
  override readonly name = 'TaskDeniedError';
  /** POLICY_DENIED, AGENT_BLOCKED or TASK_REVOKED. */
  readonly code: string;
  readonly taskType: string;
  /** The policies that decided (empty: no policy permits it, default deny). */
  readonly policies: readonly string[];
  readonly decisionId: string | undefined;

  constructor(options: {
    code: string;
    message: string;
    taskType: string;
    policies?: readonly string[];
    decisionId?: string;
  }) {
    super(options.message);
    this.code = options.code;
    this.taskType = options.taskType;
    this.policies = options.policies ?? [];
    this.decisionId = options.decisionId;
  }
}

/** Tripline's API could not be reached or answered unexpectedly (not a decision). */
export class TriplineUnavailableError extends Error {
  override readonly name = 'TriplineUnavailableError';
  readonly code = 'TRIPLINE_UNAVAILABLE';
}

/** `POST /v1/check` denied the call (no approval can change that): the call did not run. */
export class CallDeniedError extends Error {
  override readonly name = 'CallDeniedError';
  readonly code = 'CALL_DENIED';
  readonly tool: string;
  readonly reasons: readonly string[];
  /** The policies that decided (empty: default deny or a refusal before the policies). */
  readonly policies: readonly string[];
  readonly decisionId: string;

  constructor(options: { tool: string; reasons: readonly string[]; policies: readonly string[]; decisionId: string }) {
    super(`Tripline denied the call to ${options.tool}: ${options.reasons.join('; ') || 'no reason given'}`);
    this.tool = options.tool;
    this.reasons = options.reasons;
    this.policies = options.policies;
    this.decisionId = options.decisionId;
  }
}

/** What every approval error carries: the approval (GET /v1/approvals/{id}) and the call it is bound to. */
export abstract class ApprovalError extends Error {
  abstract readonly code: 'APPROVAL_PENDING' | 'APPROVAL_DENIED' | 'APPROVAL_EXPIRED' | 'APPROVAL_TIMEOUT';
  readonly approvalId: string;
  readonly tool: string;

  constructor(message: string, options: { approvalId: string; tool: string }) {
    super(message);
    this.approvalId = options.approvalId;
    this.tool = options.tool;
  }
}

/** The call waits for a person's approval and the caller chose not to wait (`onPending: 'fail'`). */
export class ApprovalPendingError extends ApprovalError {
  override readonly name = 'ApprovalPendingError';
  readonly code = 'APPROVAL_PENDING';
  /** The approval's page in Tripline's console. */
  readonly url: string;
  readonly expiresAt: string;

  constructor(options: {
    approvalId: string;
    tool: string;
    url: string;
    expiresAt: string;
    reasons: readonly string[];
  }) {
    super(
      `the call to ${options.tool} waits for a person's approval ${options.approvalId} (${options.reasons.join('; ')}); ${options.url}`,
      options,
    );
    this.url = options.url;
    this.expiresAt = options.expiresAt;
  }
}

/** A person denied the call: it did not run, and the same call is denied until the approval's expiry. */
export class ApprovalDeniedError extends ApprovalError {
  override readonly name = 'ApprovalDeniedError';
  readonly code = 'APPROVAL_DENIED';
  readonly decidedBy: string;
  readonly reason: string;

  constructor(options: { approvalId: string; tool: string; decidedBy: string; reason: string }) {
    super(
      `${options.decidedBy || 'a person'} denied the call to ${options.tool} (approval ${options.approvalId})${options.reason === '' ? '' : `: ${options.reason}`}`,
      options,
    );
    this.decidedBy = options.decidedBy;
    this.reason = options.reason;
  }
}

/** Nobody decided (or the approved call was not made) before the approval expired: the call did not run. */
export class ApprovalExpiredError extends ApprovalError {
  override readonly name = 'ApprovalExpiredError';
  readonly code = 'APPROVAL_EXPIRED';
  readonly expiresAt: string;

  constructor(options: { approvalId: string; tool: string; expiresAt: string }) {
    super(`approval ${options.approvalId} of the call to ${options.tool} expired at ${options.expiresAt}`, options);
    this.expiresAt = options.expiresAt;
  }
}

/** The caller's wait (`timeoutMs`) ended before a person decided: the call did not run; the approval may still come. */
export class ApprovalTimeoutError extends ApprovalError {
  override readonly name = 'ApprovalTimeoutError';
  readonly code = 'APPROVAL_TIMEOUT';
  readonly waitedMs: number;

  constructor(options: { approvalId: string; tool: string; waitedMs: number }) {
    super(
      `no decision on approval ${options.approvalId} of the call to ${options.tool} within ${options.waitedMs} ms`,
      options,
    );
    this.waitedMs = options.waitedMs;
  }
}
