/**
 * Request-time checks (`POST /v1/check`): an enforcement point (a tool gateway, an MCP proxy, an API in front
 * of a database) asks "may task T call tool X on resource R now?" before it acts. The answer comes from, in
 * order: the token (if given: valid and active), the task's revocation state and whether it ended (an ended task
 * is denied like a revoked one), the agent's escalation, a loop or rate limit refusing the task's calls for a
 * while (services/core/loops.ts), then the
 * Cedar policies (`call_tool`) with the task's current score and the call's arguments in the context. Every
 * answer is recorded with the policies and reasons that decided it.
 *
 * Approval points (docs/approvals.md): when the only policies that deny a call are `@approval("required")`
 * forbids and the same call with `approved` would be allowed, the answer is `pending` with an approval id bound
 * to the exact call (task, tool, resource, canonical arguments). Once a person approved it, the same call is
 * allowed once (the approval is used up); a denied one stays denied until its expiry.
 */
import { randomUUID } from 'node:crypto';
import type { TaskStatus } from '../../schemas/events.ts';
import { speaksFor } from '../core/agent-binding.ts';
import { ArgumentsNotBindable, bindingHash, canonicalJson, policyArguments } from '../core/approvals.ts';
import { describeScope } from '../core/escalation-policy.ts';
import { stableId } from '../shared/ids.ts';
import type { ApprovalRecord } from './approval-store.ts';
import { approvalUrl } from './approvals.ts';
import type { ApprovalManager } from './approvals.ts';
import type { Authority } from './authority.ts';
import type { BatchWriter } from './batch-writer.ts';
import { isKillSwitchError } from './errors.ts';
import type { PolicyDecisionRecord } from './ks-store.ts';
import type { PolicyEngine } from './policy.ts';
import type { SilentTaskWatch } from './silent-tasks.ts';
import type { TaskClaims } from './tokens.ts';

/** What the processor (or the store) knows of a task right now. */
export interface TaskSnapshot {
  status: TaskStatus;
  score: number;
  taskType: string;
  agentId: string;
  /** Events scored for the task so far (its telemetry); absent when unknown. */
  events?: number;
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
  /** Set when an agent token asks: the agents it speaks for; another agent's task is denied and not described. */
  agents?: readonly string[];
  /** The call's arguments: bound into an approval's hash; top-level numbers, strings and booleans reach the policy. */
  arguments?: Record<string, unknown>;
  /** false: `arguments` are only part of the call's (too large to send whole); no approval can be bound to them. */
  argumentsComplete?: boolean;
}

/** The approval a `pending` answer waits for. */
export interface CheckApproval {
  approvalId: string;
  status: ApprovalRecord['status'];
  expiresAt: string;
  /** The console page of the approval. */
  url: string;
}

export interface CheckAnswer {
  allowed: boolean;
  /** `pending`: a person must approve this exact call first (`approvalId`; `allowed` is false). */
  decision: 'allow' | 'deny' | 'pending';
  approvalId?: string;
  approval?: CheckApproval;
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
  /** Told of every check of a credentialed task (services/killswitch/silent-tasks.ts). */
  silentTasks?: SilentTaskWatch;
  /** Approval points; without them a call an approval policy forbids is denied. */
  approvals?: ApprovalManager;
  /** Links to approvals. @default http://localhost:8080 */
  publicUrl?: string;
  now?: () => number;
}): Checker {
  const { authority, policy, approvals } = options;
  const now = options.now ?? Date.now;
  const publicUrl = options.publicUrl ?? 'http://localhost:8080';
  const approvalIds = new Set(policy.approvalPolicyIds());
  const approvalOf = (approval: ApprovalRecord): CheckApproval => ({
    approvalId: approval.id,
    status: approval.status,
    expiresAt: new Date(approval.expiresMs).toISOString(),
    url: approvalUrl(publicUrl, approval.id),
  });

  function record(
    request: CheckRequest,
    taskId: string,
    taskType: string,
    agentId: string,
    decision: 'allow' | 'deny' | 'pending',
    policies: string[],
    reasons: string[],
    errors: string[],
    context: Record<string, unknown>,
    presetId?: string,
  ): string {
    const timeMs = now();
    const id = presetId ?? stableId(request.tenant, 'decision', 'call_tool', taskId, timeMs, randomUUID());
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
      if (request.agents !== undefined && agentId !== '' && !speaksFor(request.agents, agentId)) {
        const reason = `task ${taskId} is not one of this agent token's tasks`;
        const id = record(request, taskId, taskType, agentId, 'deny', [], [reason], [], { tool: request.tool });
        return { allowed: false, decision: 'deny', reasons: [reason], policies: [], decisionId: id };
      }
      if (grants !== undefined && taskType !== '' && agentId !== '')
        options.silentTasks?.observe(
          {
            tenant: request.tenant,
            taskId,
            taskType,
            agentId,
            ...(claims === undefined ? {} : { issuedAtMs: claims.issuedAtMs }),
          },
          snapshot,
          'check',
        );
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
      const args = request.arguments ?? {};
      // Arguments too large or deep to bind (services/core/approvals.ts) still reach the policies; only an
      // approval cannot be bound to them, so a call that would need one is denied instead.
      let hash = '';
      let canonical = '';
      let unbindable: string | undefined;
      try {
        canonical = canonicalJson(args);
        hash = bindingHash({
          tenant: request.tenant,
          taskId,
          tool: request.tool,
          resource: request.resource ?? '',
          arguments: args,
        });
      } catch (error) {
        if (!(error instanceof ArgumentsNotBindable)) throw error;
        unbindable = error.message;
      }
      if (request.argumentsComplete === false) unbindable = 'only part of them was sent (too large to send whole)';
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
        arguments: policyArguments(args),
        approved: false,
      };
      const authorize = (approved: boolean) =>
        policy.authorize({ agentId, action: 'call_tool', resource: request.tool, context: { ...context, approved } });
      const answer = (
        decision: 'allow' | 'deny' | 'pending',
        policies: string[],
        reasons: string[],
        errors: string[],
        approval?: ApprovalRecord,
        decisionId?: string,
      ): CheckAnswer => {
        const recorded = {
          ...context,
          binding_hash: hash,
          ...(approval === undefined ? {} : { approval_id: approval.id }),
        };
        const recordedReasons = decision === 'allow' && approval === undefined ? [] : reasons;
        const id = record(
          request,
          taskId,
          taskType,
          agentId,
          decision,
          policies,
          recordedReasons,
          errors,
          recorded,
          decisionId,
        );
        return {
          allowed: decision === 'allow',
          decision,
          ...(approval === undefined ? {} : { approvalId: approval.id, approval: approvalOf(approval) }),
          reasons,
          policies,
          decisionId: id,
          task,
        };
      };
      const bound = unbindable === undefined ? approvals?.bound(request.tenant, taskId, hash) : undefined;

      // An approved call: allowed once, if the policies allow it with the approval (the task may have changed).
      if (approvals !== undefined && bound?.status === 'approved') {
        const approved = authorize(true);
        if (approved.decision === 'allow') {
          const used = await approvals.use(bound, agentId).catch(() => undefined);
          if (used !== undefined)
            return answer(
              'allow',
              approved.policies,
              [`approved by ${bound.decidedBy} (approval ${bound.id})`, `allowed by ${approved.policies.join(', ')}`],
              approved.errors,
              used,
            );
        }
      }

      const decision = authorize(false);
      if (decision.decision === 'allow')
        return answer('allow', decision.policies, [`allowed by ${decision.policies.join(', ')}`], decision.errors);
      const waitsForPerson =
        decision.policies.length > 0 &&
        decision.policies.every((id) => approvalIds.has(id)) &&
        authorize(true).decision === 'allow';
      if (approvals !== undefined && waitsForPerson && unbindable !== undefined)
        return answer(
          'deny',
          decision.policies,
          [`a person must approve this call, but its arguments cannot be bound to an approval: ${unbindable}`],
          decision.errors,
        );
      if (approvals !== undefined && waitsForPerson) {
        const names = decision.policies.join(', ');
        if (bound?.status === 'denied') {
          const why = bound.decisionReason === '' ? '' : `: ${bound.decisionReason}`;
          return answer(
            'deny',
            decision.policies,
            [`${bound.decidedBy} denied this call (approval ${bound.id}${why})`],
            decision.errors,
            bound,
          );
        }
        if (bound?.status === 'pending')
          return answer(
            'pending',
            decision.policies,
            [`waiting for a person to approve this call (${names})`],
            decision.errors,
            bound,
          );
        const reasons = [`a person must approve this call (${names})`];
        const decisionId = stableId(request.tenant, 'decision', 'call_tool', taskId, now(), randomUUID());
        const requested = await approvals.request({
          tenant: request.tenant,
          taskId,
          taskType,
          agentId,
          tool: request.tool,
          resource: request.resource ?? '',
          arguments: canonical,
          bindingHash: hash,
          policies: decision.policies,
          reasons,
          decisionId,
        });
        return answer('pending', decision.policies, reasons, decision.errors, requested, decisionId);
      }
      const reasons =
        decision.policies.length > 0
          ? [`forbidden by ${decision.policies.join(', ')}`]
          : [`no policy permits ${taskType} tasks to call ${request.tool} (default deny)`];
      return answer('deny', decision.policies, reasons, decision.errors);
    },
  };
}
