/**
 * Token issuance: a task gets a token only when no escalation in force reaches it (the whole agent, or the end
 * user / conversation the request names), the task is not revoked and the
 * policy allows `start_task` with the tools, resources and scopes asked for. Every decision is recorded (a
 * refusal too), and so is every token issued (its claims, never the token).
 */
import { randomUUID } from 'node:crypto';
import { cleanScope, describeScope, isWholeAgent } from '../core/escalation-policy.ts';
import type { EscalationScope } from '../core/escalation-policy.ts';
import { TriplineError, messageOf } from '../shared/errors.ts';
import { stableId } from '../shared/ids.ts';
import type { Logger } from '../shared/logger.ts';
import type { AuthorityState } from './authority-state.ts';
import type { BatchWriter } from './batch-writer.ts';
import { KillSwitchError } from './errors.ts';
import type { CredentialRecord, KillSwitchStore, PolicyDecisionRecord } from './ks-store.ts';
import type { PolicyDecision, PolicyEngine } from './policy.ts';
import type { TaskClaims, TokenService } from './tokens.ts';

export interface StartTaskRequest {
  tenant: string;
  agentId: string;
  taskType: string;
  /** Reuse a task id (e.g. a restored task asking for new credentials); default a new UUID. */
  taskId?: string;
  tools?: readonly string[];
  resources?: readonly string[];
  scopes?: readonly string[];
  /** Shorter than the configured lifetime, never longer. */
  ttlSeconds?: number;
  /**
   * The end user the task acts for and its conversation, as the agent says (claims: they only narrow an
   * escalation — a task naming another end user than a scoped block's is not refused by it; none can lift one).
   */
  endUser?: string;
  conversation?: string;
}

export interface StartTaskResult {
  taskId: string;
  token: string;
  claims: TaskClaims;
  decision: PolicyDecision & { id: string };
}

export interface IssuanceDeps {
  state: AuthorityState;
  /** Read when the state forgot revocations and a start names a task it has none for. */
  store: Pick<KillSwitchStore, 'loadTaskRevocations'>;
  tokens: TokenService;
  policy: PolicyEngine;
  decisions: BatchWriter<PolicyDecisionRecord>;
  credentials: BatchWriter<CredentialRecord>;
  kid: string;
  logger: Logger;
  /** Called after a token was issued (the processor holds the task from then on). `isNew`: Tripline chose the task id. */
  onTaskStarted?: (claims: TaskClaims, isNew: boolean) => void;
  now: () => number;
}

/** What a start_task decision is taken on (and recorded with). */
interface Grants {
  taskId: string;
  scope: EscalationScope;
  tools: string[];
  resources: string[];
  scopes: string[];
  context: { task_id: string; tools: string[]; resources: string[]; scopes: string[] };
}

function recordDecision(
  deps: IssuanceDeps,
  request: StartTaskRequest,
  taskId: string,
  decision: PolicyDecision,
  reasons: string[],
  context: Record<string, unknown>,
): string {
  const timeMs = deps.now();
  const id = stableId(request.tenant, 'decision', 'start_task', taskId, timeMs, randomUUID());
  deps.decisions.add({
    id,
    tenant: request.tenant,
    timeMs,
    action: 'start_task',
    agentId: request.agentId,
    taskId,
    taskType: request.taskType,
    resource: request.taskType,
    decision: decision.decision,
    policies: decision.policies,
    reasons,
    errors: decision.errors,
    context: JSON.stringify(context),
  });
  return id;
}

/** Refuses a task its agent may not start (escalated) or that is revoked, before the policy is asked; recorded as a deny. */
function refuseBlockedOrRevoked(
  deps: IssuanceDeps,
  request: StartTaskRequest,
  { taskId, scope, context }: Grants,
): void {
  const { state } = deps;
  const existing = state.task(request.tenant, taskId);
  if (existing !== undefined && existing.agentId !== request.agentId) {
    throw new TriplineError('CONFLICT', `task ${taskId} belongs to agent ${existing.agentId}`);
  }
  const refuse = (code: 'AGENT_BLOCKED' | 'TASK_REVOKED', reason: string, details: Record<string, unknown>): never => {
    const decisionId = recordDecision(
      deps,
      request,
      taskId,
      { decision: 'deny', policies: [], errors: [] },
      [reason],
      context,
    );
    throw new KillSwitchError(code, reason, { details: { ...details, decisionId, taskId } });
  };
  const block = state.escalations.blocking(request.tenant, request.agentId, scope, deps.now());
  if (block !== undefined) {
    const scoped = isWholeAgent(block.scope) ? '' : ` for ${describeScope(block.scope)}`;
    refuse(
      'AGENT_BLOCKED',
      `agent ${request.agentId} was escalated${scoped} after repeated revocations (${block.taskIds.length} tasks) and may not start tasks${scoped} until ${new Date(block.untilMs).toISOString()}`,
      { until: new Date(block.untilMs).toISOString(), ...(block.scope === undefined ? {} : { scope: block.scope }) },
    );
  }
  if (existing?.revoked === true || state.killSwitch.isRevoked(request.tenant, taskId)) {
    refuse('TASK_REVOKED', `task ${taskId} is revoked; a person may restore it first`, {
      revocationId: existing?.revocation?.id,
    });
  }
}

/** Asks the policy; returns the recorded decision, or throws POLICY_DENIED. */
function authorize(
  deps: IssuanceDeps,
  request: StartTaskRequest,
  { taskId, context }: Grants,
): PolicyDecision & { id: string } {
  const decision = deps.policy.authorize({
    agentId: request.agentId,
    action: 'start_task',
    resource: request.taskType,
    context,
  });
  const decisionId = recordDecision(deps, request, taskId, decision, [], context);
  if (decision.decision !== 'allow') {
    const by =
      decision.policies.length > 0
        ? `forbidden by ${decision.policies.join(', ')}`
        : 'no policy permits it (default deny)';
    throw new KillSwitchError(
      'POLICY_DENIED',
      `agent ${request.agentId} may not start a ${request.taskType} task with these tools, resources and scopes: ${by}`,
      {
        details: { decisionId, policies: decision.policies, taskId },
      },
    );
  }
  return { ...decision, id: decisionId };
}

function recordCredentials(
  deps: IssuanceDeps,
  claims: TaskClaims,
  { taskId, tools, resources, scopes }: Grants,
  decisionId: string,
): void {
  deps.credentials.add({
    tenant: claims.tenant,
    jti: claims.jti,
    taskId,
    taskType: claims.taskType,
    agentId: claims.agentId,
    scopes,
    tools,
    resources,
    issuedMs: claims.issuedAtMs,
    expiresMs: claims.expiresAtMs,
    decisionId,
    kid: deps.kid,
  });
}

export async function startTask(deps: IssuanceDeps, request: StartTaskRequest): Promise<StartTaskResult> {
  const taskId = request.taskId ?? randomUUID();
  const tools = [...new Set(request.tools ?? [])].sort();
  const resources = [...new Set(request.resources ?? [])].sort();
  const scopes = [...new Set(request.scopes ?? [])].sort();
  // What the task named before wins, field by field: asking again under another end user lifts no block.
  const scope = {
    ...cleanScope({ endUser: request.endUser, conversation: request.conversation }),
    ...deps.state.task(request.tenant, taskId)?.scope,
  };
  const context = { task_id: taskId, tools, resources, scopes };
  const grants: Grants = { taskId, scope, tools, resources, scopes, context };
  // A task id Tripline chose now was never revoked.
  if (request.taskId !== undefined && deps.state.needsStoredState(request.tenant, taskId))
    deps.state.loadTaskStates(await deps.store.loadTaskRevocations({ tenant: request.tenant, taskId }));
  refuseBlockedOrRevoked(deps, request, grants);
  const decision = authorize(deps, request, grants);
  const { token, claims } = await deps.tokens.issue({
    tenant: request.tenant,
    agentId: request.agentId,
    taskId,
    taskType: request.taskType,
    scopes,
    tools,
    resources,
    ...(request.ttlSeconds === undefined ? {} : { ttlSeconds: request.ttlSeconds }),
  });
  deps.state.remember(claims);
  const entry = deps.state.task(claims.tenant, taskId);
  if (entry !== undefined) entry.scope = scope;
  if (deps.onTaskStarted !== undefined) {
    try {
      deps.onTaskStarted(claims, request.taskId === undefined);
    } catch (error) {
      deps.logger.error({ err: messageOf(error) }, 'onTaskStarted failed');
    }
  }
  recordCredentials(deps, claims, grants, decision.id);
  return { taskId, token, claims, decision };
}
