/**
 * What the gateway asks Tripline's credentials authority, and the two ways it asks: in-process (the embedded
 * mode: the kill switch runtime's token service, checker and authority) and over HTTP (the distributed mode: the
 * API's JWKS, `POST /v1/check`, `POST /oauth2/introspect`, `POST /v1/tasks`, with an agent token).
 *
 * A task token is verified offline first (signature, issuer, audience, expiry): a token that fails is no
 * credential at all (HTTP 401). Whether the task may still act is asked per guarded call, so a revoked task's
 * call is refused with an MCP error the person sees, not with a bare 401.
 */
import { createRemoteJWKSet, jwtVerify } from 'jose';
import type { Authority } from '../killswitch/authority.ts';
import type { CheckAnswer, Checker } from '../killswitch/checks.ts';
import type { TokenService } from '../killswitch/tokens.ts';
import { isKillSwitchError } from '../killswitch/errors.ts';
import { policyArguments } from '../core/approvals.ts';
import type { ClientBinding } from './config.ts';

/** Who a request acts for: from the credential, never from the request. */
export interface TaskIdentity {
  tenant: string;
  agentId: string;
  taskId: string;
  taskType: string;
  /** The task token (the client's own, or the one the gateway got for a bound client's session). */
  token: string;
  expiresAtMs: number;
}

export type RefusalCode = 'TASK_REVOKED' | 'AGENT_BLOCKED' | 'POLICY_DENIED' | 'TOKEN_INVALID' | 'APPROVAL_PENDING';

export type Verdict =
  | { allowed: true; decisionId?: string }
  | { allowed: false; code: RefusalCode; reasons: string[]; decisionId?: string };

export interface McpAuthority {
  /** Verifies a task token offline; throws InvalidCredential when it is no valid, unexpired Tripline task token. */
  verify(token: string): Promise<TaskIdentity>;
  /**
   * May the task call this tool now (revocation, escalation, policy with its current score and the call's
   * arguments)? A call an approval point stops is refused with APPROVAL_PENDING and the approval's link
   * (docs/approvals.md); the same call once a person approved it goes through.
   */
  checkTool(identity: TaskIdentity, tool: string, sideEffect: string, args?: Record<string, unknown>): Promise<Verdict>;
  /** May the task read data now (its token still active)? */
  checkRead(identity: TaskIdentity): Promise<Verdict>;
  /** Starts a task for a bound client (a policy decision; refused: TaskStartRefused). */
  startTask(binding: ClientBinding, context: { conversation: string; taskId?: string }): Promise<TaskIdentity>;
}

export class InvalidCredential extends Error {}

export class TaskStartRefused extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** The refusal's code, read from what the check said (a revocation, an escalation, else the policy). */
export function verdictOf(answer: CheckAnswer): Verdict {
  if (answer.allowed) return { allowed: true, decisionId: answer.decisionId };
  if (answer.decision === 'pending') {
    const link = answer.approval === undefined ? [] : [`a person can approve or deny it at ${answer.approval.url}`];
    return {
      allowed: false,
      code: 'APPROVAL_PENDING',
      reasons: [...answer.reasons, ...link],
      decisionId: answer.decisionId,
    };
  }
  const text = answer.reasons.join(' ');
  const code: RefusalCode =
    answer.task?.revoked === true || / is revoked/.test(text)
      ? 'TASK_REVOKED'
      : / is escalated/.test(text)
        ? 'AGENT_BLOCKED'
        : answer.task === undefined
          ? 'TOKEN_INVALID'
          : 'POLICY_DENIED';
  return { allowed: false, code, reasons: answer.reasons, decisionId: answer.decisionId };
}

export function inProcessAuthority(parts: {
  tokens: Pick<TokenService, 'verify'>;
  checker: Checker;
  authority: Pick<Authority, 'authenticate' | 'blocked' | 'startTask'>;
}): McpAuthority {
  const { tokens, checker, authority } = parts;
  return {
    async verify(token) {
      try {
        return identityOf(await tokens.verify(token), token);
      } catch (error) {
        throw new InvalidCredential(isKillSwitchError(error) ? error.message : 'the token is not valid');
      }
    },
    async checkTool(identity, tool, sideEffect, args) {
      return verdictOf(
        await checker.check({
          tenant: identity.tenant,
          token: identity.token,
          tool,
          sideEffect,
          ...(args === undefined ? {} : { arguments: args }),
        }),
      );
    },
    async checkRead(identity) {
      const block = authority.blocked(identity.tenant, identity.agentId, identity.taskId);
      if (block !== undefined)
        return {
          allowed: false,
          code: 'AGENT_BLOCKED',
          reasons: [`agent ${identity.agentId} is escalated until ${new Date(block.untilMs).toISOString()}`],
        };
      try {
        await authority.authenticate(identity.token);
        return { allowed: true };
      } catch (error) {
        const code = isKillSwitchError(error) && error.code === 'TASK_REVOKED' ? 'TASK_REVOKED' : 'TOKEN_INVALID';
        return { allowed: false, code, reasons: [error instanceof Error ? error.message : String(error)] };
      }
    },
    async startTask(binding, context) {
      try {
        const result = await authority.startTask({
          tenant: binding.tenant,
          agentId: binding.agentId,
          taskType: binding.taskType,
          tools: binding.tools,
          resources: binding.resources,
          scopes: binding.scopes,
          conversation: context.conversation,
          ...(context.taskId === undefined ? {} : { taskId: context.taskId }),
        });
        return identityOf(result.claims, result.token);
      } catch (error) {
        throw new TaskStartRefused(
          isKillSwitchError(error) ? error.code : 'TASK_START_FAILED',
          error instanceof Error ? error.message : String(error),
        );
      }
    },
  };
}

function identityOf(
  claims: { tenant: string; agentId: string; taskId: string; taskType: string; expiresAtMs: number },
  token: string,
): TaskIdentity {
  const { tenant, agentId, taskId, taskType, expiresAtMs } = claims;
  return { tenant, agentId, taskId, taskType, token, expiresAtMs };
}

export interface HttpAuthorityOptions {
  apiUrl: string;
  /** An agent token of the gateway's tenant. */
  apiToken: string;
  issuer: string;
  audience: string;
  /** Per request to the API. @default 5000 */
  timeoutMs?: number;
}

/** The distributed mode: the API's JWKS (cached by jose), `/v1/check`, `/oauth2/introspect`, `/v1/tasks`. */
export function httpAuthority(options: HttpAuthorityOptions): McpAuthority {
  const jwks = createRemoteJWKSet(new URL(`${options.apiUrl}/.well-known/jwks.json`));
  const timeoutMs = options.timeoutMs ?? 5000;
  /**
   * POSTs to the API; throws when the API could not answer the question (unreachable, 5xx, the gateway's own token
   * refused), so the call is refused as CHECK_UNAVAILABLE. `answers` are the statuses that carry an answer.
   */
  async function post(
    path: string,
    body: unknown,
    answers: readonly number[],
  ): Promise<{ status: number; json: unknown }> {
    const response = await fetch(`${options.apiUrl}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${options.apiToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!answers.includes(response.status))
      throw new Error(`POST ${path} answered ${String(response.status)}: ${text.slice(0, 300)}`);
    return { status: response.status, json };
  }
  return {
    async verify(token) {
      try {
        const { payload } = await jwtVerify(token, jwks, {
          issuer: options.issuer,
          audience: options.audience,
          typ: 'at+jwt',
          clockTolerance: 5,
        });
        const text = (key: string): string => {
          const value = payload[key];
          if (typeof value !== 'string' || value === '') throw new InvalidCredential(`the token has no ${key}`);
          return value;
        };
        return {
          tenant: text('tenant'),
          agentId: text('agent_id'),
          taskId: text('task_id'),
          taskType: text('task_type'),
          token,
          expiresAtMs: (payload.exp ?? 0) * 1000,
        };
      } catch (error) {
        if (error instanceof InvalidCredential) throw error;
        throw new InvalidCredential(
          `the token is not valid (${error instanceof Error ? error.message : 'unreadable'})`,
        );
      }
    },
    async checkTool(identity, tool, sideEffect, args) {
      const body = { token: identity.token, tool, sideEffect, ...argumentsToSend(args) };
      const { json } = await post('/v1/check', body, [200]);
      return verdictOf(json as CheckAnswer);
    },
    async checkRead(identity) {
      const { json } = await post('/oauth2/introspect', { token: identity.token }, [200]);
      if ((json as { active?: unknown } | undefined)?.active === true) return { allowed: true };
      return {
        allowed: false,
        code: 'TOKEN_INVALID',
        reasons: [
          `the credentials of task ${identity.taskId} are no longer active (the task was revoked or its agent blocked)`,
        ],
      };
    },
    async startTask(binding, context) {
      let answered: { status: number; json: unknown };
      try {
        answered = await post(
          '/v1/tasks',
          {
            agentId: binding.agentId,
            taskType: binding.taskType,
            tools: binding.tools,
            resources: binding.resources,
            scopes: binding.scopes,
            conversation: context.conversation,
            ...(context.taskId === undefined ? {} : { taskId: context.taskId }),
          },
          [201, 400, 403],
        );
      } catch (error) {
        throw new TaskStartRefused(
          'TASK_START_FAILED',
          `Tripline could not be asked to start the task (${error instanceof Error ? error.message : String(error)})`,
        );
      }
      const { status, json } = answered;
      const body = json as { token?: string; error?: { code?: string; message?: string } } | undefined;
      if (status !== 201 || typeof body?.token !== 'string')
        throw new TaskStartRefused(
          body?.error?.code ?? 'TASK_START_FAILED',
          body?.error?.message ?? `HTTP ${String(status)}`,
        );
      return this.verify(body.token);
    },
  };
}

/** Above this, a call's arguments are not sent whole to `POST /v1/check` (its body is limited to 64 KiB). */
const MAX_SENT_ARGUMENTS_CHARS = 48 * 1024;

/**
 * The arguments of a check over HTTP: whole when they fit, else their top-level scalars (what policies read; strings
 * up to 1 KiB) marked incomplete, so that no approval is ever bound to less than the whole call (docs/approvals.md).
 */
export function argumentsToSend(args: Record<string, unknown> | undefined): {
  arguments?: Record<string, unknown>;
  argumentsComplete?: false;
} {
  if (args === undefined) return {};
  let text: string | undefined;
  try {
    text = JSON.stringify(args);
  } catch {
    text = undefined;
  }
  if (text !== undefined && text.length <= MAX_SENT_ARGUMENTS_CHARS) return { arguments: args };
  const scalars = Object.entries(policyArguments(args)).filter(
    ([, value]) => typeof value !== 'string' || value.length <= 1024,
  );
  return { arguments: Object.fromEntries(scalars), argumentsComplete: false };
}
