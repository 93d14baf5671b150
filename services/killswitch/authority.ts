/**
 * The credentials authority: issues task tokens after a policy decision, and answers — from memory, at once —
 * whether a token is still active. It learns revocations from the kill switch port (so a revocation decided
 * in this process, or carried here from another one over Kafka, takes effect the moment it is applied) and
 * rebuilds what it knows from ClickHouse at start, so a restart does not bring a revoked token back.
 *
 * A token is active when its signature, issuer, audience and expiry verify, and none of these holds:
 * - its task is revoked now;
 * - its task was revoked at or after the token was issued (a restore re-issues nothing and revives nothing:
 *   the task may get *new* tokens through POST /v1/tasks, the old ones stay dead);
 * - it was revoked on its own (RFC 7009);
 * - its agent was escalated at or after the token was issued (a scoped escalation: when the task was started
 *   for that end user / conversation).
 * Tokens carry `iat` in whole seconds; a token this process issued is compared at millisecond precision, any
 * other at the start of its second (so a token is never taken as newer than it is).
 */
import type { Revocation } from '../../schemas/events.ts';
import { describeScope } from '../core/escalation-policy.ts';
import { messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { startTask } from './authority-issuance.ts';
import type { StartTaskRequest, StartTaskResult } from './authority-issuance.ts';
import { activeResponse } from './authority-introspection.ts';
import type { IntrospectionResponse } from './authority-introspection.ts';
import { AuthorityState } from './authority-state.ts';
import type { BatchWriter } from './batch-writer.ts';
import { KillSwitchError } from './errors.ts';
import type { Escalation, EscalationPolicy } from './escalation.ts';
import type { KillSwitch } from './kill-switch.ts';
import type { CredentialRecord, KillSwitchStore, PolicyDecisionRecord, TokenRevocationRecord } from './ks-store.ts';
import type { PolicyEngine } from './policy.ts';
import { CLOCK_TOLERANCE_SECONDS } from './tokens.ts';
import type { TaskClaims, TokenService } from './tokens.ts';

export type { StartTaskRequest, StartTaskResult } from './authority-issuance.ts';
export type { IntrospectionResponse } from './authority-introspection.ts';

export interface TaskRevocationView {
  revoked: boolean;
  /** The revocation in force (when revoked), or the last one seen. */
  revocation?: Revocation;
  /** Time of the newest revoke of this task (0 if never). */
  lastRevokeMs: number;
}

export type AuthorityEvent = { type: 'escalation'; escalation: Escalation };

export interface Authority {
  startTask(request: StartTaskRequest): Promise<StartTaskResult>;
  /** Verifies and checks a token; never throws for a bad token (it is simply inactive). */
  introspect(token: string): Promise<IntrospectionResponse>;
  /** Verifies a token and returns its claims only if active; throws TOKEN_INVALID or TASK_REVOKED otherwise. */
  authenticate(token: string): Promise<TaskClaims>;
  /** RFC 7009: revoke one token. Unknown or invalid tokens are ignored (the RFC's 200 either way). */
  revokeToken(token: string, actor: string, reason: string): Promise<{ revoked: boolean }>;
  task(tenant: string, taskId: string): TaskRevocationView;
  /** What a task's tokens were issued for (from tokens issued or verified here), if known. */
  grants(
    tenant: string,
    taskId: string,
  ): { agentId: string; taskType: string; tools: string[]; resources: string[]; scopes: string[] } | undefined;
  /** jtis of the task's tokens known to this process (issued here or seen by introspection). */
  knownTokens(tenant: string, taskId: string): string[];
  /** Is a token with these claims active now? (The check introspection makes after verifying.) */
  isActive(claims: TaskClaims): boolean;
  /** Tasks of the agent revoked now (for a subscriber that connects late). */
  revokedTasksOfAgent(tenant: string, agentId: string): Revocation[];
  /**
   * The escalation in force that reaches the task (the whole agent's, or one of the end user / conversation the
   * task was started with); without a task, only a whole-agent one.
   */
  blocked(tenant: string, agentId: string, taskId?: string): Escalation | undefined;
  /** The agent's escalations in force, whatever their scope. */
  escalationsOf(tenant: string, agentId: string): Escalation[];
  activeEscalations(): Escalation[];
  subscribe(listener: (event: AuthorityEvent) => void): () => void;
  /** Loads revoked tasks, revoked tokens and recent escalations from the store. */
  load(): Promise<void>;
  stop(): void;
}

export interface AuthorityOptions {
  tokens: TokenService;
  policy: PolicyEngine;
  store: KillSwitchStore;
  killSwitch: KillSwitch;
  decisions: BatchWriter<PolicyDecisionRecord>;
  credentials: BatchWriter<CredentialRecord>;
  escalation: EscalationPolicy;
  kid: string;
  logger: Logger;
  /** Called after a token was issued (the processor holds the task from then on). `isNew`: Tripline chose the task id. */
  onTaskStarted?: (claims: TaskClaims, isNew: boolean) => void;
  /** Revoked tasks kept in memory once their tokens expired (beyond it the store is read). @default MAX_REVOKED_TASKS */
  maxRevokedTasks?: number;
  now?: () => number;
}

/** The stored row of a token revoked on its own (RFC 7009). */
function tokenRevocationRecord(
  claims: TaskClaims,
  timeMs: number,
  actor: string,
  reason: string,
): TokenRevocationRecord {
  return {
    tenant: claims.tenant,
    jti: claims.jti,
    taskId: claims.taskId,
    agentId: claims.agentId,
    timeMs,
    expiresMs: claims.expiresAtMs,
    actor,
    reason,
  };
}

/**
 * The revocations in force for the agent's tasks, oldest first (the newest 1000), from the state's per-agent index:
 * the cost follows the agent's revoked tasks, not every task the authority knows.
 */
export function revokedTasksOfAgent(state: AuthorityState, tenant: string, agentId: string): Revocation[] {
  const out: Revocation[] = [];
  for (const entry of state.revokedOf(tenant, agentId)) {
    if (entry.revoked && entry.revocation !== undefined) out.push(entry.revocation);
  }
  return out.sort((a, b) => a.timeMs - b.timeMs).slice(-1000);
}

export function createAuthority(options: AuthorityOptions): Authority {
  const { tokens, store, killSwitch, logger } = options;
  const now = options.now ?? Date.now;
  const state = new AuthorityState(
    options.escalation,
    killSwitch,
    (tokens.ttlSeconds + CLOCK_TOLERANCE_SECONDS) * 1000,
  );
  const { escalations, revokedTokens } = state;
  const listeners = new Set<(event: AuthorityEvent) => void>();
  const issuance = { ...options, state, now };

  function emit(event: AuthorityEvent): void {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        logger.error({ err: messageOf(error) }, 'an authority subscriber failed');
      }
    }
  }

  /** Applies a revocation or restore to the in-memory state. Synchronous: introspection sees it at once. */
  function apply(revocation: Revocation, replay: boolean): void {
    const escalation = state.apply(revocation);
    if (escalation !== undefined && !replay) {
      logger.warn(
        {
          agentId: escalation.agentId,
          scope: describeScope(escalation.scope),
          tasks: escalation.taskIds,
          until: new Date(escalation.untilMs).toISOString(),
        },
        'agent escalated after repeated revocations: its tokens in scope are revoked and it may not start tasks there',
      );
      emit({ type: 'escalation', escalation });
    }
  }

  const unsubscribe = killSwitch.subscribe((message) => {
    if (message.type === 'revocation') apply(message.revocation, false);
  });

  const isActive = (claims: TaskClaims): boolean => state.isActive(claims, now());

  // Forget tasks with no revocation state whose tokens have all expired, and expired token revocations.
  const sweep = (): void => state.sweep(now(), options.maxRevokedTasks);
  const sweeper = setInterval(sweep, 60_000);
  sweeper.unref();

  return {
    startTask: (request) => startTask(issuance, request),

    async introspect(token) {
      let claims: TaskClaims;
      try {
        claims = await tokens.verify(token);
      } catch {
        return { active: false };
      }
      state.remember(claims);
      if (!isActive(claims)) return { active: false };
      return activeResponse(claims);
    },

    async authenticate(token) {
      const claims = await tokens.verify(token);
      state.remember(claims);
      if (isActive(claims)) return claims;
      const entry = state.task(claims.tenant, claims.taskId);
      if (entry?.revoked === true || killSwitch.isRevoked(claims.tenant, claims.taskId)) {
        throw new KillSwitchError('TASK_REVOKED', `task ${claims.taskId} is revoked`, {
          details: { taskId: claims.taskId, revocationId: entry?.revocation?.id },
        });
      }
      throw new KillSwitchError('TOKEN_INVALID', 'the token is no longer active (revoked or superseded)');
    },

    async revokeToken(token, actor, reason) {
      let claims: TaskClaims;
      try {
        claims = await tokens.verify(token);
      } catch {
        return { revoked: false };
      }
      if (revokedTokens.has(claims.jti)) return { revoked: false };
      revokedTokens.set(claims.jti, claims.expiresAtMs);
      await store.insertTokenRevocations([tokenRevocationRecord(claims, now(), actor, reason)]);
      return { revoked: true };
    },

    task(tenant, taskId) {
      const entry = state.task(tenant, taskId);
      const revoked = entry?.revoked === true || killSwitch.isRevoked(tenant, taskId);
      return {
        revoked,
        lastRevokeMs: entry?.lastRevokeMs ?? 0,
        ...(entry?.revocation === undefined ? {} : { revocation: entry.revocation }),
      };
    },

    grants(tenant, taskId) {
      const entry = state.task(tenant, taskId);
      if (entry?.grants === undefined) return undefined;
      return { agentId: entry.agentId, taskType: entry.taskType, ...entry.grants };
    },

    knownTokens(tenant, taskId) {
      return [...(state.task(tenant, taskId)?.tokens.keys() ?? [])];
    },

    isActive,

    revokedTasksOfAgent: (tenant, agentId) => revokedTasksOfAgent(state, tenant, agentId),

    blocked: (tenant, agentId, taskId) => state.blocking(tenant, agentId, taskId, now()),
    escalationsOf: (tenant, agentId) => escalations.blocks(tenant, agentId, now()),
    activeEscalations: () => escalations.active(now()),

    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async load() {
      const nowMs = now();
      const states = await store.loadTaskRevocations();
      state.loadTaskStates(states);
      sweep();
      for (const row of await store.loadTokenRevocations(nowMs)) revokedTokens.set(row.jti, row.expiresMs);
      const horizon = Math.max(options.escalation.windowMs + options.escalation.blockMs, 0);
      if (escalations.enabled)
        for (const revocation of await store.loadRevocationsSince(nowMs - horizon)) apply(revocation, true);
      logger.info(
        {
          revokedTasks: states.filter((s) => s.lastAction === 'revoke').length,
          forgottenUntilAsked: state.forgottenRevocations,
          revokedTokens: revokedTokens.size,
          escalatedAgents: escalations.active(nowMs).length,
        },
        'kill switch state loaded',
      );
    },

    stop() {
      unsubscribe();
      clearInterval(sweeper);
    },
  };
}
