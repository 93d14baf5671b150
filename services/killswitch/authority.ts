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
 * - its agent was escalated at or after the token was issued.
 * Tokens carry `iat` in whole seconds; a token this process issued is compared at millisecond precision, any
 * other at the start of its second (so a token is never taken as newer than it is).
 */
import { randomUUID } from 'node:crypto';
import type { Revocation } from '../../schemas/events.ts';
import { TriplineError, messageOf } from '../shared/errors.ts';
import { stableId } from '../shared/ids.ts';
import type { Logger } from '../shared/logger.ts';
import type { BatchWriter } from './batch-writer.ts';
import { KillSwitchError } from './errors.ts';
import { EscalationWindow } from './escalation.ts';
import type { Escalation, EscalationPolicy } from './escalation.ts';
import type { KillSwitch } from './kill-switch.ts';
import type { CredentialRecord, KillSwitchStore, PolicyDecisionRecord, TokenRevocationRecord } from './ks-store.ts';
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
}

export interface StartTaskResult {
  taskId: string;
  token: string;
  claims: TaskClaims;
  decision: PolicyDecision & { id: string };
}

/** RFC 7662 §2.2 introspection response (with Tripline's task claims as extensions). */
export type IntrospectionResponse =
  | { active: false }
  | {
      active: true;
      scope: string;
      client_id: string;
      token_type: 'Bearer';
      exp: number;
      iat: number;
      sub: string;
      aud: string;
      iss: string;
      jti: string;
      tenant: string;
      agent_id: string;
      task_id: string;
      task_type: string;
      tools: string[];
      resources: string[];
    };

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
  grants(tenant: string, taskId: string): { agentId: string; taskType: string; tools: string[]; resources: string[]; scopes: string[] } | undefined;
  /** jtis of the task's tokens known to this process (issued here or seen by introspection). */
  knownTokens(tenant: string, taskId: string): string[];
  /** Is a token with these claims active now? (The check introspection makes after verifying.) */
  isActive(claims: TaskClaims): boolean;
  /** Tasks of the agent revoked now (for a subscriber that connects late). */
  revokedTasksOfAgent(tenant: string, agentId: string): Revocation[];
  blocked(tenant: string, agentId: string): Escalation | undefined;
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
  now?: () => number;
}

interface TaskEntry {
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
}

const key = (tenant: string, id: string): string => `${tenant}\u0000${id}`;

export function createAuthority(options: AuthorityOptions): Authority {
  const { tokens, policy, store, killSwitch, logger } = options;
  const now = options.now ?? Date.now;
  const tasks = new Map<string, TaskEntry>();
  /** Tokens revoked one by one: jti → expiry (forgotten once expired). */
  const revokedTokens = new Map<string, number>();
  const escalations = new EscalationWindow(options.escalation);
  /** tenant+agent → time of the newest escalation (tokens issued at or before it are dead). */
  const agentRevokedBefore = new Map<string, number>();
  const listeners = new Set<(event: AuthorityEvent) => void>();

  function entryFor(tenant: string, taskId: string, agentId: string, taskType: string): TaskEntry {
    const existing = tasks.get(key(tenant, taskId));
    if (existing !== undefined) return existing;
    const entry: TaskEntry = { tenant, taskId, agentId, taskType, revoked: false, lastRevokeMs: 0, tokens: new Map(), expiresMs: 0 };
    tasks.set(key(tenant, taskId), entry);
    return entry;
  }

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
    const entry = entryFor(revocation.tenant, revocation.taskId, revocation.agentId, revocation.taskType);
    if (revocation.action === 'revoke') {
      entry.revoked = true;
      entry.lastRevokeMs = Math.max(entry.lastRevokeMs, revocation.timeMs);
      entry.revocation = revocation;
    } else if (revocation.timeMs >= entry.lastRevokeMs) {
      entry.revoked = false;
      entry.revocation = revocation;
    }
    const escalation = escalations.observe(revocation);
    if (escalation !== undefined) {
      const agent = key(escalation.tenant, escalation.agentId);
      agentRevokedBefore.set(agent, Math.max(agentRevokedBefore.get(agent) ?? 0, escalation.atMs));
      if (!replay) {
        logger.warn({ agentId: escalation.agentId, tasks: escalation.taskIds, until: new Date(escalation.untilMs).toISOString() }, 'agent escalated after repeated revocations: its tokens are revoked and it may not start tasks');
        emit({ type: 'escalation', escalation });
      }
    }
  }

  const unsubscribe = killSwitch.subscribe((message) => {
    if (message.type === 'revocation') apply(message.revocation, false);
  });

  function isActive(claims: TaskClaims): boolean {
    const nowMs = now();
    if (claims.expiresAtMs <= nowMs) return false;
    if (revokedTokens.has(claims.jti)) return false;
    const entry = tasks.get(key(claims.tenant, claims.taskId));
    const issuedMs = entry?.tokens.get(claims.jti) ?? claims.issuedAtMs;
    if (entry !== undefined && (entry.revoked || issuedMs <= entry.lastRevokeMs)) return false;
    if (killSwitch.isRevoked(claims.tenant, claims.taskId)) return false;
    const escalatedAt = agentRevokedBefore.get(key(claims.tenant, claims.agentId));
    return escalatedAt === undefined || issuedMs > escalatedAt;
  }

  function remember(claims: TaskClaims): void {
    const entry = entryFor(claims.tenant, claims.taskId, claims.agentId, claims.taskType);
    if (!entry.tokens.has(claims.jti)) entry.tokens.set(claims.jti, claims.issuedAtMs);
    entry.grants ??= { tools: claims.tools, resources: claims.resources, scopes: claims.scopes };
    entry.expiresMs = Math.max(entry.expiresMs, claims.expiresAtMs);
  }

  function recordDecision(request: StartTaskRequest, taskId: string, decision: PolicyDecision, reasons: string[], context: Record<string, unknown>): string {
    const timeMs = now();
    const id = stableId(request.tenant, 'decision', 'start_task', taskId, timeMs, randomUUID());
    options.decisions.add({
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

  // Forget tasks with no revocation state whose tokens have all expired, and expired token revocations.
  const sweeper = setInterval(() => {
    const nowMs = now();
    for (const [id, entry] of tasks) if (entry.lastRevokeMs === 0 && !entry.revoked && entry.expiresMs < nowMs) tasks.delete(id);
    for (const [jti, expiresMs] of revokedTokens) if (expiresMs < nowMs) revokedTokens.delete(jti);
  }, 60_000);
  sweeper.unref();

  return {
    async startTask(request) {
      const taskId = request.taskId ?? randomUUID();
      const tools = [...new Set(request.tools ?? [])].sort();
      const resources = [...new Set(request.resources ?? [])].sort();
      const scopes = [...new Set(request.scopes ?? [])].sort();
      const context = { task_id: taskId, tools, resources, scopes };
      const existing = tasks.get(key(request.tenant, taskId));
      if (existing !== undefined && existing.agentId !== request.agentId) {
        throw new TriplineError('CONFLICT', `task ${taskId} belongs to agent ${existing.agentId}`);
      }
      const refuse = (code: 'AGENT_BLOCKED' | 'TASK_REVOKED', reason: string, details: Record<string, unknown>): never => {
        const decisionId = recordDecision(request, taskId, { decision: 'deny', policies: [], errors: [] }, [reason], context);
        throw new KillSwitchError(code, reason, { details: { ...details, decisionId, taskId } });
      };
      const block = escalations.blocked(request.tenant, request.agentId, now());
      if (block !== undefined) {
        refuse('AGENT_BLOCKED', `agent ${request.agentId} was escalated after repeated revocations (${block.taskIds.length} tasks) and may not start tasks until ${new Date(block.untilMs).toISOString()}`, { until: new Date(block.untilMs).toISOString() });
      }
      if (existing?.revoked === true || killSwitch.isRevoked(request.tenant, taskId)) {
        refuse('TASK_REVOKED', `task ${taskId} is revoked; a person may restore it first`, { revocationId: existing?.revocation?.id });
      }
      const decision = policy.authorize({ agentId: request.agentId, action: 'start_task', resource: request.taskType, context });
      const decisionId = recordDecision(request, taskId, decision, [], context);
      if (decision.decision !== 'allow') {
        const by = decision.policies.length > 0 ? `forbidden by ${decision.policies.join(', ')}` : 'no policy permits it (default deny)';
        throw new KillSwitchError('POLICY_DENIED', `agent ${request.agentId} may not start a ${request.taskType} task with these tools, resources and scopes: ${by}`, {
          details: { decisionId, policies: decision.policies, taskId },
        });
      }
      const { token, claims } = await tokens.issue({
        tenant: request.tenant,
        agentId: request.agentId,
        taskId,
        taskType: request.taskType,
        scopes,
        tools,
        resources,
        ...(request.ttlSeconds === undefined ? {} : { ttlSeconds: request.ttlSeconds }),
      });
      remember(claims);
      if (options.onTaskStarted !== undefined) {
        try {
          options.onTaskStarted(claims, request.taskId === undefined);
        } catch (error) {
          logger.error({ err: messageOf(error) }, 'onTaskStarted failed');
        }
      }
      options.credentials.add({
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
        kid: options.kid,
      });
      return { taskId, token, claims, decision: { ...decision, id: decisionId } };
    },

    async introspect(token) {
      let claims: TaskClaims;
      try {
        claims = await tokens.verify(token);
      } catch {
        return { active: false };
      }
      remember(claims);
      if (!isActive(claims)) return { active: false };
      return {
        active: true,
        scope: claims.scopes.join(' '),
        client_id: claims.agentId,
        token_type: 'Bearer',
        exp: Math.floor(claims.expiresAtMs / 1000),
        iat: Math.floor(claims.issuedAtMs / 1000),
        sub: claims.agentId,
        aud: claims.audience,
        iss: claims.issuer,
        jti: claims.jti,
        tenant: claims.tenant,
        agent_id: claims.agentId,
        task_id: claims.taskId,
        task_type: claims.taskType,
        tools: claims.tools,
        resources: claims.resources,
      };
    },

    async authenticate(token) {
      const claims = await tokens.verify(token);
      remember(claims);
      if (isActive(claims)) return claims;
      const entry = tasks.get(key(claims.tenant, claims.taskId));
      if (entry?.revoked === true || killSwitch.isRevoked(claims.tenant, claims.taskId)) {
        throw new KillSwitchError('TASK_REVOKED', `task ${claims.taskId} is revoked`, { details: { taskId: claims.taskId, revocationId: entry?.revocation?.id } });
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
      const row: TokenRevocationRecord = { tenant: claims.tenant, jti: claims.jti, taskId: claims.taskId, agentId: claims.agentId, timeMs: now(), expiresMs: claims.expiresAtMs, actor, reason };
      await store.insertTokenRevocations([row]);
      return { revoked: true };
    },

    task(tenant, taskId) {
      const entry = tasks.get(key(tenant, taskId));
      const revoked = entry?.revoked === true || killSwitch.isRevoked(tenant, taskId);
      return { revoked, lastRevokeMs: entry?.lastRevokeMs ?? 0, ...(entry?.revocation === undefined ? {} : { revocation: entry.revocation }) };
    },

    grants(tenant, taskId) {
      const entry = tasks.get(key(tenant, taskId));
      if (entry?.grants === undefined) return undefined;
      return { agentId: entry.agentId, taskType: entry.taskType, ...entry.grants };
    },

    knownTokens(tenant, taskId) {
      return [...(tasks.get(key(tenant, taskId))?.tokens.keys() ?? [])];
    },

    isActive,

    revokedTasksOfAgent(tenant, agentId) {
      const out: Revocation[] = [];
      for (const entry of tasks.values()) {
        if (entry.tenant === tenant && entry.agentId === agentId && entry.revoked && entry.revocation !== undefined) out.push(entry.revocation);
      }
      return out.sort((a, b) => a.timeMs - b.timeMs).slice(-1000);
    },

    blocked: (tenant, agentId) => escalations.blocked(tenant, agentId, now()),
    activeEscalations: () => escalations.active(now()),

    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async load() {
      const nowMs = now();
      const states = await store.loadTaskRevocations();
      for (const state of states) {
        const entry = entryFor(state.tenant, state.taskId, state.agentId, state.taskType);
        entry.lastRevokeMs = Math.max(entry.lastRevokeMs, state.lastRevokeMs);
        if (state.last.timeMs >= (entry.revocation?.timeMs ?? 0)) {
          entry.revoked = state.lastAction === 'revoke';
          entry.revocation = state.last;
        }
      }
      for (const row of await store.loadTokenRevocations(nowMs)) revokedTokens.set(row.jti, row.expiresMs);
      const horizon = Math.max(options.escalation.windowMs + options.escalation.blockMs, 0);
      if (escalations.enabled) for (const revocation of await store.loadRevocationsSince(nowMs - horizon)) apply(revocation, true);
      logger.info({ revokedTasks: states.filter((s) => s.lastAction === 'revoke').length, revokedTokens: revokedTokens.size, escalatedAgents: escalations.active(nowMs).length }, 'kill switch state loaded');
    },

    stop() {
      unsubscribe();
      clearInterval(sweeper);
    },
  };
}
