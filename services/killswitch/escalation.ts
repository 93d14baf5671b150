/**
 * Escalation: when one agent has `revocations` of its tasks revoked within `windowMs` by revocations that count
 * (services/core/escalation-policy.ts: a person's kill, a hard rule, a confident score — never a warm-up guess,
 * an unconfident score or an escalation's own kill), the revocations stop being about one task and become about
 * the narrowest scope they share: that end user's or that conversation's tasks of the agent, or the whole agent
 * when they share none. Its tasks in that scope are revoked and it may not start tasks there for `blockMs`.
 * Only that agent (within its tenant): never another agent.
 *
 * Pure and deterministic: the processor (which revokes the agent's tasks in scope) and the credentials authority
 * (which refuses the agent new tokens in scope) each fold the same revocations into their own window and reach
 * the same decision, in one process or across processes that read the same revocations topic. A restore takes
 * that task's revoke out of the count (a false positive that a person corrected should not push the agent toward
 * escalation).
 *
 * The bound: with `revocations` ≥ 2, one false positive takes down no task beyond itself (it is at most one of
 * the counted revocations, and an unconfident one is not counted at all); a block takes down only the agent's
 * tasks in its scope that are active when it starts or start before `untilMs`; its own kills never count, so a
 * block never causes another.
 *
 * A counted revocation of work a block in force already reaches is not added (that block explains it), so the
 * revocations in the window are always outside every block and their shared scope is too.
 *
 * Bounded: at most `MAX_COUNTED_PER_AGENT` counted revocations per agent (the oldest dropped), at most
 * `MAX_AGENTS` agents with counted revocations (the oldest dropped; expired blocks are swept once more agents than
 * that hold blocks), at most `MAX_BLOCKS_PER_AGENT` blocks in force per agent (the next escalation of an agent
 * holding that many covers the whole agent).
 */
import type { Revocation } from '../../schemas/events.ts';
import {
  ESCALATION_ACTOR,
  countsTowardEscalation,
  covers,
  isWholeAgent,
  scopeOfRevocation,
  sharedScope,
} from '../core/escalation-policy.ts';
import type { EscalationScope } from '../core/escalation-policy.ts';

export { ESCALATION_ACTOR };
export type { EscalationScope };

export const MAX_COUNTED_PER_AGENT = 1000;
export const MAX_AGENTS = 100_000;
export const MAX_BLOCKS_PER_AGENT = 16;

export interface EscalationPolicy {
  /** Counted revocations of one agent's tasks within the window that escalate (0 = never escalate). */
  revocations: number;
  windowMs: number;
  /** How long an escalated agent may not start tasks (in the escalation's scope). */
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
  /** The end user / conversation blocked; absent: the whole agent (so are escalations of older versions). */
  scope?: EscalationScope;
}

interface Counted {
  timeMs: number;
  scope: EscalationScope;
}

export class EscalationWindow {
  readonly #policy: EscalationPolicy;
  /** Per tenant+agent: counted revoked task id → its time and scope, oldest first. */
  readonly #recent = new Map<string, Map<string, Counted>>();
  /** Per tenant+agent: its blocks, oldest first (expired ones dropped as new ones come). */
  readonly #blocked = new Map<string, Escalation[]>();

  constructor(policy: EscalationPolicy) {
    this.#policy = policy;
  }

  get enabled(): boolean {
    return this.#policy.revocations > 0;
  }

  /** Folds one revocation or restore in; returns the escalation it causes, if it crosses the threshold now. */
  observe(revocation: Revocation): Escalation | undefined {
    if (!this.enabled) return undefined;
    const key = agentKey(revocation.tenant, revocation.agentId);
    if (revocation.action === 'restore') {
      const tasks = this.#recent.get(key);
      tasks?.delete(revocation.taskId);
      if (tasks?.size === 0) this.#recent.delete(key);
      return undefined;
    }
    if (!countsTowardEscalation(revocation)) return undefined;
    const inForce = this.#inForce(key, revocation.timeMs);
    const revoked = scopeOfRevocation(revocation);
    // Work a block in force already reaches adds nothing: that block explains it.
    if (inForce.some((block) => covers(block.scope, revoked))) return undefined;
    const tasks = this.#countedOf(key);
    tasks.delete(revocation.taskId);
    tasks.set(revocation.taskId, { timeMs: revocation.timeMs, scope: revoked });
    const from = revocation.timeMs - this.#policy.windowMs;
    for (const [taskId, counted] of tasks)
      if (counted.timeMs < from || tasks.size > MAX_COUNTED_PER_AGENT) tasks.delete(taskId);
    if (tasks.size < this.#policy.revocations) return undefined;
    // Each counted revocation is outside every block in force, so their shared scope is too.
    const scope = sharedScope([...tasks.values()].map((counted) => counted.scope));
    const escalation: Escalation = {
      tenant: revocation.tenant,
      agentId: revocation.agentId,
      atMs: revocation.timeMs,
      untilMs: revocation.timeMs + this.#policy.blockMs,
      taskIds: [...tasks.keys()],
    };
    if (!isWholeAgent(scope) && inForce.length < MAX_BLOCKS_PER_AGENT) escalation.scope = scope;
    this.#blocked.set(key, [...inForce, escalation]);
    if (this.#blocked.size > MAX_AGENTS)
      for (const [other, blocks] of this.#blocked)
        if (blocks.every((block) => block.untilMs <= revocation.timeMs)) this.#blocked.delete(other);
    this.#recent.delete(key);
    return escalation;
  }

  /** The escalation in force at `nowMs` that reaches work of `scope` of the agent (a whole-agent one first). */
  blocking(tenant: string, agentId: string, scope: EscalationScope, nowMs: number): Escalation | undefined {
    const blocks = this.blocks(tenant, agentId, nowMs).filter((block) => covers(block.scope, scope));
    return blocks.find((block) => isWholeAgent(block.scope)) ?? blocks[0];
  }

  /** The agent's escalations in force at `nowMs`, oldest first. */
  blocks(tenant: string, agentId: string, nowMs: number): Escalation[] {
    return this.#inForce(agentKey(tenant, agentId), nowMs);
  }

  /** Every escalation in force at `nowMs`. */
  active(nowMs: number): Escalation[] {
    return [...this.#blocked.values()].flat().filter((escalation) => escalation.untilMs > nowMs);
  }

  /** Ends an agent's blocks early (a person lifted them). */
  lift(tenant: string, agentId: string): boolean {
    return this.#blocked.delete(agentKey(tenant, agentId));
  }

  #countedOf(key: string): Map<string, Counted> {
    let tasks = this.#recent.get(key);
    if (tasks === undefined) {
      tasks = new Map();
      this.#recent.set(key, tasks);
      if (this.#recent.size > MAX_AGENTS) {
        const oldest = this.#recent.keys().next().value;
        if (oldest !== undefined) this.#recent.delete(oldest);
      }
    }
    return tasks;
  }

  #inForce(key: string, nowMs: number): Escalation[] {
    return (this.#blocked.get(key) ?? []).filter((escalation) => escalation.untilMs > nowMs);
  }
}

function agentKey(tenant: string, agentId: string): string {
  return `${tenant}\u0000${agentId}`;
}
