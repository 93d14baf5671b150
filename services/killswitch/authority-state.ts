/**
 * What the credentials authority knows, in memory, to answer at once whether a token is active: each task's
 * revocation state, grants and tokens; tokens revoked one by one; agents escalated after repeated revocations.
 * Learning a revocation is synchronous, so introspection sees it the moment the kill switch applies it.
 */
import type { Revocation } from '../../schemas/events.ts';
import { covers, isWholeAgent } from '../core/escalation-policy.ts';
import type { EscalationScope } from '../core/escalation-policy.ts';
import { EscalationWindow, MAX_BLOCKS_PER_AGENT } from './escalation.ts';
import type { Escalation, EscalationPolicy } from './escalation.ts';
import type { KillSwitch } from './kill-switch.ts';
import type { TaskRevocationState } from './ks-store.ts';
import type { TaskClaims } from './tokens.ts';

export interface TaskEntry {
  tenant: string;
  taskId: string;
  agentId: string;
  taskType: string;
  revoked: boolean;
  lastRevokeMs: number;
  revocation?: Revocation;
  grants?: { tools: string[]; resources: string[]; scopes: string[] };
  tokens: Map<string, number>;
  /** Latest expiry of a token of this task (entries without revocation state are forgotten after it). */
  expiresMs: number;
  /** The end user / conversation the agent named when it started the task (`{}`: none). */
  scope: EscalationScope;
}

export const key = (tenant: string, id: string): string => `${tenant}\u0000${id}`;

/**
 * Revoked (or once revoked, then restored) tasks kept in memory with their revocation after their tokens have
 * expired (what `task()` and the agents' stream describe). Beyond it the sweep forgets the longest-revoked first,
 * once no token issued before its revoke can still verify; a task start naming a forgotten task reads the task's
 * revocation state from the store again (`needsStoredState`).
 */
export const MAX_REVOKED_TASKS = 100_000;

export class AuthorityState {
  readonly tasks = new Map<string, TaskEntry>();
  /**
   * tenant+agent → its revoked tasks (by task key), kept with every change of `revoked`: the stream's connect
   * snapshot reads an agent's revocations without walking every task.
   */
  readonly #revokedByAgent = new Map<string, Map<string, TaskEntry>>();
  /** Tokens revoked one by one: jti → expiry (forgotten once expired). */
  readonly revokedTokens = new Map<string, number>();
  readonly escalations: EscalationWindow;
  /** tenant+agent → time of the newest whole-agent escalation (tokens issued at or before it are dead). */
  readonly agentRevokedBefore = new Map<string, number>();
  /** tenant+agent → its recent scoped escalations (tokens of tasks in scope issued at or before one are dead). */
  readonly scopedRevokedBefore = new Map<string, { scope: EscalationScope; atMs: number }[]>();
  readonly killSwitch: KillSwitch;
  /** The longest a token verifies after it was issued (lifetime and clock tolerance). */
  readonly #tokenLifetimeMs: number;
  /** Tasks whose revocation state the sweep forgot since start. */
  #forgottenRevocations = 0;

  constructor(escalation: EscalationPolicy, killSwitch: KillSwitch, tokenLifetimeMs: number) {
    this.escalations = new EscalationWindow(escalation);
    this.killSwitch = killSwitch;
    this.#tokenLifetimeMs = tokenLifetimeMs;
  }

  get forgottenRevocations(): number {
    return this.#forgottenRevocations;
  }

  /**
   * Whether memory alone may not know a task's revocation state: the sweep forgot some, and this task has none
   * here. (Until the sweep forgets, memory holds every revocation since the store was loaded.)
   */
  needsStoredState(tenant: string, taskId: string): boolean {
    return this.#forgottenRevocations > 0 && this.task(tenant, taskId)?.revocation === undefined;
  }

  task(tenant: string, taskId: string): TaskEntry | undefined {
    return this.tasks.get(key(tenant, taskId));
  }

  entryFor(tenant: string, taskId: string, agentId: string, taskType: string): TaskEntry {
    const existing = this.tasks.get(key(tenant, taskId));
    if (existing !== undefined) return existing;
    const entry: TaskEntry = {
      tenant,
      taskId,
      agentId,
      taskType,
      revoked: false,
      lastRevokeMs: 0,
      tokens: new Map(),
      expiresMs: 0,
      scope: {},
    };
    this.tasks.set(key(tenant, taskId), entry);
    return entry;
  }

  /** The agent's revoked tasks (from the index: the cost follows the agent's revocations, not all tasks). */
  revokedOf(tenant: string, agentId: string): TaskEntry[] {
    return [...(this.#revokedByAgent.get(key(tenant, agentId))?.values() ?? [])];
  }

  /** Keeps the per-agent index of revoked tasks in step with the entry's `revoked`. */
  #index(entry: TaskEntry): void {
    const agent = key(entry.tenant, entry.agentId);
    const task = key(entry.tenant, entry.taskId);
    const revoked = this.#revokedByAgent.get(agent);
    if (entry.revoked) {
      if (revoked === undefined) this.#revokedByAgent.set(agent, new Map([[task, entry]]));
      else revoked.set(task, entry);
      return;
    }
    revoked?.delete(task);
    if (revoked?.size === 0) this.#revokedByAgent.delete(agent);
  }

  /** Applies a revocation or restore. Synchronous: introspection sees it at once. Returns the escalation it set off. */
  apply(revocation: Revocation): Escalation | undefined {
    const entry = this.entryFor(revocation.tenant, revocation.taskId, revocation.agentId, revocation.taskType);
    if (revocation.action === 'revoke') {
      entry.revoked = true;
      entry.lastRevokeMs = Math.max(entry.lastRevokeMs, revocation.timeMs);
      entry.revocation = revocation;
    } else if (revocation.timeMs >= entry.lastRevokeMs) {
      entry.revoked = false;
      entry.revocation = revocation;
    }
    this.#index(entry);
    const escalation = this.escalations.observe(revocation);
    if (escalation !== undefined) {
      const agent = key(escalation.tenant, escalation.agentId);
      if (escalation.scope === undefined || isWholeAgent(escalation.scope))
        this.agentRevokedBefore.set(agent, Math.max(this.agentRevokedBefore.get(agent) ?? 0, escalation.atMs));
      else {
        const scoped = this.scopedRevokedBefore.get(agent) ?? [];
        scoped.push({ scope: escalation.scope, atMs: escalation.atMs });
        this.scopedRevokedBefore.set(agent, scoped.slice(-MAX_BLOCKS_PER_AGENT * 4));
      }
    }
    return escalation;
  }

  /** The escalation in force that reaches a task (by the scope it was started with; none given: the whole agent). */
  blocking(tenant: string, agentId: string, taskId: string | undefined, nowMs: number): Escalation | undefined {
    const scope = taskId === undefined ? {} : (this.task(tenant, taskId)?.scope ?? {});
    return this.escalations.blocking(tenant, agentId, scope, nowMs);
  }

  isActive(claims: TaskClaims, nowMs: number): boolean {
    if (claims.expiresAtMs <= nowMs) return false;
    if (this.revokedTokens.has(claims.jti)) return false;
    const entry = this.task(claims.tenant, claims.taskId);
    const issuedMs = entry?.tokens.get(claims.jti) ?? claims.issuedAtMs;
    if (entry !== undefined && (entry.revoked || issuedMs <= entry.lastRevokeMs)) return false;
    if (this.killSwitch.isRevoked(claims.tenant, claims.taskId)) return false;
    const agent = key(claims.tenant, claims.agentId);
    const escalatedAt = this.agentRevokedBefore.get(agent);
    if (escalatedAt !== undefined && issuedMs <= escalatedAt) return false;
    const scope = entry?.scope ?? {};
    return !(this.scopedRevokedBefore.get(agent) ?? []).some(
      (block) => issuedMs <= block.atMs && covers(block.scope, scope),
    );
  }

  /** Remembers a token issued or verified here (its issue time at millisecond precision, its task's grants). */
  remember(claims: TaskClaims): void {
    const entry = this.entryFor(claims.tenant, claims.taskId, claims.agentId, claims.taskType);
    if (!entry.tokens.has(claims.jti)) entry.tokens.set(claims.jti, claims.issuedAtMs);
    entry.grants ??= { tools: claims.tools, resources: claims.resources, scopes: claims.scopes };
    entry.expiresMs = Math.max(entry.expiresMs, claims.expiresAtMs);
  }

  /** Takes the tasks' last revocation states from the store. */
  loadTaskStates(states: readonly TaskRevocationState[]): void {
    for (const state of states) {
      const entry = this.entryFor(state.tenant, state.taskId, state.agentId, state.taskType);
      entry.lastRevokeMs = Math.max(entry.lastRevokeMs, state.lastRevokeMs);
      if (state.last.timeMs >= (entry.revocation?.timeMs ?? 0)) {
        entry.revoked = state.lastAction === 'revoke';
        entry.revocation = state.last;
      }
      this.#index(entry);
    }
  }

  /**
   * Forgets tasks with no revocation state whose tokens have all expired, expired token revocations, and the
   * longest-revoked tasks beyond `maxRevoked` (MAX_REVOKED_TASKS) whose known tokens have all expired and whose
   * newest revoke is older than a token's lifetime: a token issued before it (elsewhere, never seen here) can no
   * longer verify, so forgetting it revives none.
   */
  sweep(nowMs: number, maxRevoked = MAX_REVOKED_TASKS): void {
    const forgettable: [string, TaskEntry][] = [];
    for (const [id, entry] of this.tasks) {
      if (entry.expiresMs >= nowMs) continue;
      if (entry.lastRevokeMs === 0 && !entry.revoked) this.tasks.delete(id);
      else if (entry.lastRevokeMs + this.#tokenLifetimeMs < nowMs) forgettable.push([id, entry]);
    }
    if (forgettable.length > maxRevoked) {
      forgettable.sort((a, b) => a[1].lastRevokeMs - b[1].lastRevokeMs);
      for (const [id, entry] of forgettable.slice(0, forgettable.length - maxRevoked)) {
        this.tasks.delete(id);
        entry.revoked = false;
        this.#index(entry);
        this.#forgottenRevocations += 1;
      }
    }
    for (const [jti, expiresMs] of this.revokedTokens) if (expiresMs < nowMs) this.revokedTokens.delete(jti);
  }
}
