/**
 * Escalation to the agent: when one agent has `revocations` of its tasks revoked within `windowMs`, the
 * revocations stop being about one task and become about the agent — its other tasks are revoked and it may
 * not start tasks for `blockMs`. Only that agent (within its tenant): never another agent.
 *
 * Pure and deterministic: the processor (which revokes the agent's other tasks) and the credentials authority
 * (which refuses the agent new tokens) each fold the same revocations into their own window and reach the same
 * decision, in one process or across processes that read the same revocations topic.
 *
 * Counted: revokes of distinct tasks of the agent, automatic or manual, except the ones escalation itself
 * made (actor `ESCALATION_ACTOR`). A restore takes that task's revoke out of the count (a false positive that a
 * person corrected should not push the agent toward escalation).
 */
import type { Revocation } from '../../schemas/events.ts';

/** The actor of revocations made because the agent was escalated. */
import { ESCALATION_ACTOR } from '../core/decide.ts';

export { ESCALATION_ACTOR };

export interface EscalationPolicy {
  /** Revocations of one agent's tasks within the window that escalate (0 = never escalate). */
  revocations: number;
  windowMs: number;
  /** How long an escalated agent may not start tasks. */
  blockMs: number;
}

export interface Escalation {
  tenant: string;
  agentId: string;
  /** When it escalated (the time of the revocation that crossed the threshold). */
  atMs: number;
  untilMs: number;
  /** The revoked tasks that made it escalate. */
  taskIds: string[];
}

export class EscalationWindow {
  readonly #policy: EscalationPolicy;
  /** Per tenant+agent: revoked task id → revocation time. */
  readonly #recent = new Map<string, Map<string, number>>();
  readonly #blocked = new Map<string, Escalation>();

  constructor(policy: EscalationPolicy) {
    this.#policy = policy;
  }

  get enabled(): boolean {
    return this.#policy.revocations > 0;
  }

  /** Folds one revocation or restore in; returns the escalation it causes, if it crosses the threshold now. */
  observe(revocation: Revocation): Escalation | undefined {
    if (!this.enabled || revocation.actor === ESCALATION_ACTOR) return undefined;
    const key = agentKey(revocation.tenant, revocation.agentId);
    const tasks = this.#recent.get(key) ?? new Map<string, number>();
    if (revocation.action === 'restore') {
      tasks.delete(revocation.taskId);
      return undefined;
    }
    tasks.set(revocation.taskId, revocation.timeMs);
    this.#recent.set(key, tasks);
    const from = revocation.timeMs - this.#policy.windowMs;
    for (const [taskId, timeMs] of tasks) if (timeMs < from) tasks.delete(taskId);
    if (tasks.size < this.#policy.revocations) return undefined;
    const current = this.#blocked.get(key);
    if (current !== undefined && current.untilMs > revocation.timeMs) return undefined;
    const escalation: Escalation = {
      tenant: revocation.tenant,
      agentId: revocation.agentId,
      atMs: revocation.timeMs,
      untilMs: revocation.timeMs + this.#policy.blockMs,
      taskIds: [...tasks.keys()],
    };
    this.#blocked.set(key, escalation);
    tasks.clear();
    return escalation;
  }

  /** The agent's escalation in force at `nowMs`, if any. */
  blocked(tenant: string, agentId: string, nowMs: number): Escalation | undefined {
    const escalation = this.#blocked.get(agentKey(tenant, agentId));
    return escalation !== undefined && escalation.untilMs > nowMs ? escalation : undefined;
  }

  /** Every escalation in force at `nowMs`. */
  active(nowMs: number): Escalation[] {
    return [...this.#blocked.values()].filter((escalation) => escalation.untilMs > nowMs);
  }

  /** Ends an agent's block early (a person lifted it). */
  lift(tenant: string, agentId: string): boolean {
    return this.#blocked.delete(agentKey(tenant, agentId));
  }
}

function agentKey(tenant: string, agentId: string): string {
  return `${tenant}\u0000${agentId}`;
}
