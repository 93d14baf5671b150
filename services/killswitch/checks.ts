/**
 * Request-time checks (`POST /v1/check`): an enforcement point (a tool gateway, an MCP proxy, an API in front
 * of a database) asks "may task T call tool X on resource R now?" before it acts. The answer comes from, in
 * order: the token (if given: valid and active), the task's revocation state and whether it ended (an ended task
 * is denied like a revoked one), the agent's escalation, a loop or rate limit refusing the task's calls for a
 * while (services/core/loops.ts), then the
 * Cedar policies (`call_tool`) with the task's current score in the context. Every answer is recorded with
 * the policies and reasons that decided it.
 */
import { randomUUID } from 'node:crypto';
import type { TaskStatus } from '../../schemas/events.ts';
import { describeScope } from '../core/escalation-policy.ts';
import { stableId } from '../shared/ids.ts';
import type { Authority } from './authority.ts';
import type { BatchWriter } from './batch-writer.ts';
import { isKillSwitchError } from './errors.ts';
import type { PolicyDecisionRecord } from './ks-store.ts';
import type { PolicyEngine } from './policy.ts';
import type { TaskClaims } from './tokens.ts';

/** What the processor (or the store) knows of a task right now. */
export interface TaskSnapshot {
  status: TaskStatus;
  score: number;
  taskType: string;
  agentId: string;
  /**
   * A loop or rate limit's `refuse` step (services/core/loops.ts): the task's calls are denied with this reason
   * until `untilMs`, while it stays active (not revoked).
   */
  refusing?: { reason: string; untilMs: number };
}

export type TaskStateSource = (tenant: string, taskId: string) => Promise<TaskSnapshot | undefined>;

export interface CheckRequest {
  tenant: string;
  /** The task's bearer token; when absent, `taskId` names the task. */
  token?: string;
  taskId?: string;
  tool: string;
  resource?: string;
  /** read, write or destructive (default read). */
  sideEffect?: string;
}

export interface CheckAnswer {
  allowed: boolean;
  decision: 'allow' | 'deny';
  /** Why, for people: the revocation, the token, the policies. */
  reasons: string[];
  /** The policies that decided (empty for a default deny or a deny before the policies). */
  policies: string[];
  decisionId: string;
  task?: {
    taskId: string;
    taskType: string;
    agentId: string;
    status: TaskStatus | 'unknown';
    score: number;
    revoked: boolean;
    /** A loop or rate limit refuses the task's calls until `untilMs` (services/core/loops.ts); it is not revoked. */
    refusing?: { reason: string; untilMs: number };
  };
}

export interface Checker {
  check(request: CheckRequest): Promise<CheckAnswer>;
}

export function createChecker(options: {
  authority: Authority;
  policy: PolicyEngine;
  taskState: TaskStateSource;
  decisions: BatchWriter<PolicyDecisionRecord>;
  now?: () => number;
}): Checker {
  const { authority, policy } = options;
  const now = options.now ?? Date.now;

  function record(
    request: CheckRequest,
    taskId: string,
    taskType: string,
    agentId: string,
    decision: 'allow' | 'deny',
    policies: string[],
    reasons: string[],
    errors: string[],
    context: Record<string, unknown>,
  ): string {
    const timeMs = now();
    const id = stableId(request.tenant, 'decision', 'call_tool', taskId, timeMs, randomUUID());
    options.decisions.add({
      id,
      tenant: request.tenant,
      timeMs,
      action: 'call_tool',
      agentId,
      taskId,
      taskType,
      resource: request.tool,
      decision,
      policies,
      reasons,
      errors,
      context: JSON.stringify(context),
    });
    return id;
  }

  return {
    async check(request) {
      const sideEffect = request.sideEffect ?? 'read';
      let claims: TaskClaims | undefined;
      if (request.token !== undefined) {
        try {
          claims = await authority.authenticate(request.token);
        } catch (error) {
          const reason = isKillSwitchError(error) ? error.message : 'the token is not valid';
          const id = record(request, request.taskId ?? '', '', '', 'deny', [], [reason], [], { tool: request.tool });
          return { allowed: false, decision: 'deny', reasons: [reason], policies: [], decisionId: id };
        }
        if (claims.tenant !== request.tenant) {
          // Another tenant's token says nothing about this tenant's tasks (and is not described to it).
          const reason = 'the token was not issued to this tenant';
          const id = record(request, request.taskId ?? '', '', '', 'deny', [], [reason], [], { tool: request.tool });
          return { allowed: false, decision: 'deny', reasons: [reason], policies: [], decisionId: id };
        }
      }
      const taskId = claims?.taskId ?? request.taskId ?? '';
      const snapshot = taskId === '' ? undefined : await options.taskState(request.tenant, taskId);
      const grants = claims ?? authority.grants(request.tenant, taskId);
      const taskType = claims?.taskType ?? grants?.taskType ?? snapshot?.taskType ?? '';
      const agentId = claims?.agentId ?? grants?.agentId ?? snapshot?.agentId ?? '';
      const score = snapshot?.score ?? 0;
      const revocation = authority.task(request.tenant, taskId);
      const status: TaskStatus | 'unknown' = revocation.revoked ? 'revoked' : (snapshot?.status ?? 'unknown');
      const refusing =
        snapshot?.refusing !== undefined && snapshot.refusing.untilMs > now() ? snapshot.refusing : undefined;
      const task = {
        taskId,
        taskType,
        agentId,
        status,
        score,
        revoked: revocation.revoked,
        ...(refusing === undefined ? {} : { refusing }),
      };
      const deny = (reason: string): CheckAnswer => {
        const id = record(request, taskId, taskType, agentId, 'deny', [], [reason], [], { tool: request.tool, score });
        return { allowed: false, decision: 'deny', reasons: [reason], policies: [], decisionId: id, task };
      };
      if (taskId === '') return deny('name the task: send its token (preferred) or taskId');
      if (revocation.revoked) {
        const by =
          revocation.revocation === undefined
            ? ''
            : ` by ${revocation.revocation.source === 'detector' ? 'the detector' : revocation.revocation.actor} (${revocation.revocation.reason})`;
        return deny(`task ${taskId} is revoked${by}`);
      }
      // An ended task acts no more: its token and its id are refused like a revoked one's.
      if (status === 'completed') return deny(`task ${taskId} ended: nothing may act for it any more`);
      if (taskType === '' || agentId === '')
        return deny(`task ${taskId} is not known to Tripline (no token issued, no events seen)`);
      const block = authority.blocked(request.tenant, agentId, taskId);
      if (block !== undefined)
        return deny(
          `agent ${agentId} is escalated${block.scope === undefined ? '' : ` for ${describeScope(block.scope)}`} until ${new Date(block.untilMs).toISOString()}`,
        );
      if (refusing !== undefined)
        return deny(
          `task ${taskId} is refused calls until ${new Date(refusing.untilMs).toISOString()}: ${refusing.reason}`,
        );
      const context = {
        task_id: taskId,
        task_type: taskType,
        tool: request.tool,
        resource: request.resource ?? '',
        side_effect: sideEffect,
        score: Math.round(score),
        granted_tools: grants?.tools ?? [],
        granted_resources: grants?.resources ?? [],
        scopes: grants?.scopes ?? [],
      };
      const decision = policy.authorize({ agentId, action: 'call_tool', resource: request.tool, context });
      const reasons =
        decision.decision === 'allow'
          ? [`allowed by ${decision.policies.join(', ')}`]
          : decision.policies.length > 0
            ? [`forbidden by ${decision.policies.join(', ')}`]
            : [`no policy permits ${taskType} tasks to call ${request.tool} (default deny)`];
      const id = record(
        request,
        taskId,
        taskType,
        agentId,
        decision.decision,
        decision.policies,
        decision.decision === 'allow' ? [] : reasons,
        decision.errors,
        context,
      );
      return {
        allowed: decision.decision === 'allow',
        decision: decision.decision,
        reasons,
        policies: decision.policies,
        decisionId: id,
        task,
      };
    },
  };
}
