/**
 * The kit's requests to Tripline's API: a task token at a task's start (`POST /v1/tasks`, after the policy check)
 * and a lease on a secret for a task (`POST /v1/leases`, with the task token). Refusals become the kit's typed
 * errors.
 */
import { TaskDeniedError, TaskRevokedError, TriplineUnavailableError } from './errors.ts';
import type { Guard } from './guard.ts';

export interface ApiClient {
  base: string;
  headers: Record<string, string>;
}

/** What a task asks for when `credentials` is on (the policy decides; the token carries them). */
export interface TaskRequest {
  tools?: string[];
  resources?: string[];
  scopes?: string[];
  ttlSeconds?: number;
}

export interface SecretLease {
  leaseId: string;
  secret: string;
  value: string;
  expiresAt: string;
}

export async function requestToken(
  api: ApiClient,
  agentId: string,
  taskType: string,
  taskId: string | undefined,
  request: TaskRequest,
): Promise<{ token: string; taskId: string }> {
  let response: Response;
  try {
    response = await fetch(`${api.base}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...api.headers },
      body: JSON.stringify({
        agentId,
        taskType,
        ...(taskId === undefined ? {} : { taskId }),
        ...(request.tools === undefined ? {} : { tools: request.tools }),
        ...(request.resources === undefined ? {} : { resources: request.resources }),
        ...(request.scopes === undefined ? {} : { scopes: request.scopes }),
        ...(request.ttlSeconds === undefined ? {} : { ttlSeconds: request.ttlSeconds }),
      }),
    });
  } catch (error) {
    throw new TriplineUnavailableError(
      `Tripline's API at ${api.base} cannot be reached to start the task: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  const body = (await response.json().catch(() => ({}))) as {
    token?: string;
    taskId?: string;
    error?: { code?: string; message?: string; details?: { policies?: string[]; decisionId?: string } };
  };
  if (response.status === 201 && typeof body.token === 'string' && typeof body.taskId === 'string')
    return { token: body.token, taskId: body.taskId };
  if (response.status === 403 || response.status === 409) {
    throw new TaskDeniedError({
      code: body.error?.code ?? 'POLICY_DENIED',
      message: body.error?.message ?? `Tripline refused to start the ${taskType} task`,
      taskType,
      ...(body.error?.details?.policies === undefined ? {} : { policies: body.error.details.policies }),
      ...(body.error?.details?.decisionId === undefined ? {} : { decisionId: body.error.details.decisionId }),
    });
  }
  throw new TriplineUnavailableError(`POST /v1/tasks answered HTTP ${response.status}: ${body.error?.message ?? ''}`);
}

/** `POST /v1/leases` with the task token; Tripline's refusals become TaskRevokedError / TaskDeniedError. */
export async function requestLease(
  api: ApiClient,
  token: string,
  guard: Guard | undefined,
  taskId: string,
  taskType: string,
  secret: string,
  ttlSeconds: number | undefined,
): Promise<SecretLease> {
  const response = await fetch(`${api.base}/v1/leases`, {
    method: 'POST',
    // The task token, not the agent token: a lease belongs to the task.
    headers: { 'content-type': 'application/json', ...api.headers, authorization: `Bearer ${token}` },
    body: JSON.stringify({ secret, ...(ttlSeconds === undefined ? {} : { ttlSeconds }) }),
  });
  const body = (await response.json().catch(() => ({}))) as {
    leaseId?: string;
    value?: string;
    expiresAt?: string;
    error?: { code?: string; message?: string };
  };
  if (response.status === 201 && typeof body.value === 'string' && typeof body.leaseId === 'string') {
    return { leaseId: body.leaseId, secret, value: body.value, expiresAt: body.expiresAt ?? '' };
  }
  if (body.error?.code === 'TASK_REVOKED') {
    throw new TaskRevokedError({
      taskId,
      revocationId: guard?.revocation(taskId)?.id ?? '',
      reason: body.error.message ?? 'revoked',
      operation: `lease ${secret}`,
      revokedAtMs: Date.now(),
    });
  }
  if (response.status === 403)
    throw new TaskDeniedError({
      code: body.error?.code ?? 'POLICY_DENIED',
      message: body.error?.message ?? `lease of ${secret} denied`,
      taskType,
    });
  throw new TriplineUnavailableError(`POST /v1/leases answered HTTP ${response.status}: ${body.error?.message ?? ''}`);
}
