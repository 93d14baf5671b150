/**
 * Bound clients' tasks: a client presenting an operator-configured token (TRIPLINE_MCP_CLIENTS) gets one task
 * per MCP session, started at its first guarded call (a policy decision, as any task start) and ended when the
 * session ends (DELETE) or has been idle for TRIPLINE_MCP_SESSION_IDLE_MS. A session is the upstream's
 * `Mcp-Session-Id`; a client that has none (protocol 2026-07-28 is stateless, as are stateless servers) has one
 * rolling session per upstream. A revoked task stays in its session, refusing, until the session ends: a client
 * cannot shed a kill by retrying, only by starting a new session (which is a new task, and what escalation
 * counts). The token of a long session's task is renewed for the same task before it expires.
 */
import { TaskStartRefused } from './authority.ts';
import type { McpAuthority, TaskIdentity } from './authority.ts';
import type { ClientBinding } from './config.ts';

/** Renew a bound task's token this long before it expires. */
const RENEW_BEFORE_MS = 60_000;
/** Longest conversation id the authority records. */
const MAX_CONVERSATION_LENGTH = 128;

interface BoundSession {
  key: string;
  binding: ClientBinding;
  upstream: string;
  startedMs: number;
  lastUsedMs: number;
  task: Promise<TaskIdentity>;
}

export interface SessionEnd {
  identity: TaskIdentity;
  upstream: string;
  startedMs: number;
}

export class BoundSessions {
  readonly #sessions = new Map<string, BoundSession>();
  readonly #authority: McpAuthority;
  readonly #idleMs: number;
  readonly #now: () => number;

  constructor(authority: McpAuthority, idleMs: number, now: () => number = Date.now) {
    this.#authority = authority;
    this.#idleMs = idleMs;
    this.#now = now;
  }

  /** The session's task, started on first use (concurrent first calls share one start). */
  async task(binding: ClientBinding, upstream: string, sessionId: string | undefined): Promise<TaskIdentity> {
    const key = sessionKey(binding, upstream, sessionId);
    const now = this.#now();
    let session = this.#sessions.get(key);
    if (session === undefined) {
      const conversation = `mcp:${upstream}:${sessionId ?? binding.name}`.slice(0, MAX_CONVERSATION_LENGTH);
      const started = this.#authority.startTask(binding, { conversation });
      session = { key, binding, upstream, startedMs: now, lastUsedMs: now, task: started };
      this.#sessions.set(key, session);
      // A refused start is not kept: the next call asks again (the policy or a block may have changed).
      started.catch(() => {
        if (this.#sessions.get(key)?.task === started) this.#sessions.delete(key);
      });
    }
    session.lastUsedMs = now;
    const identity = await session.task;
    if (identity.expiresAtMs - now > RENEW_BEFORE_MS) return identity;
    const renewed = this.#authority.startTask(binding, {
      conversation: `mcp:${upstream}:${sessionId ?? binding.name}`.slice(0, MAX_CONVERSATION_LENGTH),
      taskId: identity.taskId,
    });
    const previous = session.task;
    session.task = renewed;
    // A refused renewal (the task was revoked, its agent blocked) is kept: the session refuses from then on. One
    // that could not be asked is not: the next call asks again.
    renewed.catch((error: unknown) => {
      if (error instanceof TaskStartRefused && error.code === 'TASK_START_FAILED' && session.task === renewed)
        session.task = previous;
    });
    return renewed;
  }

  /** Ends the session (DELETE): its task, if one was started. */
  async end(binding: ClientBinding, upstream: string, sessionId: string | undefined): Promise<SessionEnd | undefined> {
    const key = sessionKey(binding, upstream, sessionId);
    const session = this.#sessions.get(key);
    if (session === undefined) return undefined;
    this.#sessions.delete(key);
    return this.#ended(session);
  }

  /** Ends every session of `upstream` with this session id, whoever bound it (the upstream closed it). */
  async endSessionId(upstream: string, sessionId: string): Promise<SessionEnd[]> {
    const ended: SessionEnd[] = [];
    for (const session of [...this.#sessions.values()]) {
      if (session.upstream !== upstream || !session.key.endsWith(`\u0000${sessionId}`)) continue;
      this.#sessions.delete(session.key);
      const end = await this.#ended(session);
      if (end !== undefined) ended.push(end);
    }
    return ended;
  }

  /** Ends the sessions idle for longer than the idle time. */
  async sweep(): Promise<SessionEnd[]> {
    const cutoff = this.#now() - this.#idleMs;
    const ended: SessionEnd[] = [];
    for (const session of [...this.#sessions.values()]) {
      if (session.lastUsedMs > cutoff) continue;
      this.#sessions.delete(session.key);
      const end = await this.#ended(session);
      if (end !== undefined) ended.push(end);
    }
    return ended;
  }

  /** Ends every session (the gateway stops). */
  async endAll(): Promise<SessionEnd[]> {
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    const ended = await Promise.all(sessions.map((session) => this.#ended(session)));
    return ended.filter((end): end is SessionEnd => end !== undefined);
  }

  get size(): number {
    return this.#sessions.size;
  }

  async #ended(session: BoundSession): Promise<SessionEnd | undefined> {
    try {
      return { identity: await session.task, upstream: session.upstream, startedMs: session.startedMs };
    } catch {
      return undefined;
    }
  }
}

function sessionKey(binding: ClientBinding, upstream: string, sessionId: string | undefined): string {
  return `${binding.name}\u0000${upstream}\u0000${sessionId ?? ''}`;
}
