/**
 * Request-time checks with approval points (docs/approvals.md): before a call, `POST /v1/check` with the call's
 * tool, resource and arguments. `allow` runs it; `deny` throws CallDeniedError; `pending` means a person must
 * approve this exact call first: the kit either waits (polls `GET /v1/approvals/{id}/status` with the task
 * token, bounded by `timeoutMs`) and checks again once it is approved, or throws ApprovalPendingError at once
 * (`onPending: 'fail'`). A denial, an expiry and the end of the wait are typed errors.
 */
import {
  ApprovalDeniedError,
  ApprovalExpiredError,
  ApprovalPendingError,
  ApprovalTimeoutError,
  CallDeniedError,
  TaskRevokedError,
  TriplineUnavailableError,
} from './errors.ts';
import type { ApiClient } from './api.ts';

export interface CallCheckOptions {
  /** The call's arguments: an approval is bound to them (a changed argument needs a new approval). */
  arguments?: Record<string, unknown>;
  /** What the call acts on (a table, an account, a URL). */
  resource?: string;
  /** read, write or destructive. */
  sideEffect?: 'read' | 'write' | 'destructive';
  /** On `pending`: wait for the person (bounded by `timeoutMs`), or throw ApprovalPendingError. @default 'wait' */
  onPending?: 'wait' | 'fail';
  /** Longest wait for a decision. @default 300000 (5 minutes) */
  timeoutMs?: number;
  /** How often the approval is polled while waiting. @default 1000 */
  pollIntervalMs?: number;
}

export interface CallCheckResult {
  decisionId: string;
  /** The approval that let the call through, when one did. */
  approvalId: string | undefined;
  reasons: string[];
}

interface CheckAnswer {
  allowed?: boolean;
  decision?: 'allow' | 'deny' | 'pending';
  approvalId?: string;
  approval?: { approvalId: string; status: string; expiresAt: string; url: string };
  reasons?: string[];
  policies?: string[];
  decisionId?: string;
  task?: { revoked?: boolean };
  error?: { code?: string; message?: string };
}

interface ApprovalStatusAnswer {
  status?: string;
  expiresAt?: string;
  decidedBy?: string | null;
  decisionReason?: string | null;
  error?: { code?: string; message?: string };
}

async function request(what: string, url: string, init: RequestInit): Promise<{ status: number; body: unknown }> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  } catch (error) {
    throw new TriplineUnavailableError(
      `Tripline's API cannot be reached for ${what}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  const body: unknown = await response.json().catch(() => ({}));
  return { status: response.status, body };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Checks one call; resolves when it may run, throws a typed error when it may not. */
export async function checkCall(
  api: ApiClient,
  task: { taskId: string; token: string | undefined },
  tool: string,
  options: CallCheckOptions = {},
): Promise<CallCheckResult> {
  const onPending = options.onPending ?? 'wait';
  const timeoutMs = options.timeoutMs ?? 300_000;
  const pollIntervalMs = Math.max(10, options.pollIntervalMs ?? 1000);
  const started = Date.now();

  const ask = async (): Promise<CheckAnswer> => {
    const { status, body: raw } = await request('a check', `${api.base}/v1/check`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...api.headers },
      body: JSON.stringify({
        ...(task.token === undefined ? { taskId: task.taskId } : { token: task.token }),
        tool,
        ...(options.resource === undefined ? {} : { resource: options.resource }),
        ...(options.sideEffect === undefined ? {} : { sideEffect: options.sideEffect }),
        ...(options.arguments === undefined ? {} : { arguments: options.arguments }),
      }),
    });
    const body = raw as CheckAnswer;
    if (status !== 200 || body.decision === undefined)
      throw new TriplineUnavailableError(`POST /v1/check answered HTTP ${status}: ${body.error?.message ?? ''}`);
    return body;
  };
  const refuse = (answer: CheckAnswer): never => {
    if (answer.task?.revoked === true)
      throw new TaskRevokedError({
        taskId: task.taskId,
        revocationId: '',
        reason: answer.reasons?.[0] ?? 'revoked',
        reasons: answer.reasons ?? [],
        operation: `call ${tool}`,
        revokedAtMs: Date.now(),
      });
    throw new CallDeniedError({
      tool,
      reasons: answer.reasons ?? [],
      policies: answer.policies ?? [],
      decisionId: answer.decisionId ?? '',
    });
  };
  const allowed = (answer: CheckAnswer): CallCheckResult => ({
    decisionId: answer.decisionId ?? '',
    approvalId: answer.approvalId,
    reasons: answer.reasons ?? [],
  });

  let answer = await ask();
  if (answer.decision === 'allow') return allowed(answer);
  if (answer.decision !== 'pending' || answer.approvalId === undefined) return refuse(answer);
  const approvalId = answer.approvalId;
  if (onPending === 'fail')
    throw new ApprovalPendingError({
      approvalId,
      tool,
      url: answer.approval?.url ?? '',
      expiresAt: answer.approval?.expiresAt ?? '',
      reasons: answer.reasons ?? [],
    });
  if (task.token === undefined)
    throw new TypeError('waiting for an approval needs the task token (startTelemetry({ credentials: true }))');

  for (;;) {
    const waited = Date.now() - started;
    if (waited >= timeoutMs) throw new ApprovalTimeoutError({ approvalId, tool, waitedMs: waited });
    await sleep(Math.min(pollIntervalMs, timeoutMs - waited));
    const { status, body: raw } = await request(
      'an approval',
      `${api.base}/v1/approvals/${encodeURIComponent(approvalId)}/status`,
      { headers: { ...api.headers, authorization: `Bearer ${task.token}` } },
    );
    const body = raw as ApprovalStatusAnswer;
    // The task was revoked while it waited: its token no longer reads anything.
    if (body.error?.code === 'TASK_REVOKED')
      throw new TaskRevokedError({
        taskId: task.taskId,
        revocationId: '',
        reason: body.error.message ?? 'revoked',
        operation: `call ${tool}`,
        revokedAtMs: Date.now(),
      });
    if (status !== 200)
      throw new TriplineUnavailableError(
        `GET /v1/approvals/${approvalId}/status answered HTTP ${status}: ${body.error?.message ?? ''}`,
      );
    switch (body.status) {
      case 'pending':
        continue;
      case 'denied':
        throw new ApprovalDeniedError({
          approvalId,
          tool,
          decidedBy: body.decidedBy ?? '',
          reason: body.decisionReason ?? '',
        });
      case 'expired':
        throw new ApprovalExpiredError({ approvalId, tool, expiresAt: body.expiresAt ?? '' });
      default: {
        // approved (or used meanwhile by the same call from elsewhere): check again; the approval lets it through once.
        answer = await ask();
        if (answer.decision === 'allow') return allowed(answer);
        if (answer.decision === 'pending' && answer.approvalId === approvalId) continue;
        if (answer.decision === 'pending')
          throw new ApprovalExpiredError({ approvalId, tool, expiresAt: body.expiresAt ?? '' });
        return refuse(answer);
      }
    }
  }
}
