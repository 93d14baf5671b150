/**
 * The gateway's decisions, whatever the upstream's transport: who a request acts for (its credential), whether a
 * guarded call may go to the upstream (the authority's check, before forwarding), the refusal the client gets
 * when not, and the span of each call that went. Also what the gateway learns of tools from `tools/list`
 * results: each tool's side effect, from its annotations, for the checks' policies.
 */
import { createHash } from 'node:crypto';
import { messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { InvalidCredential, TaskStartRefused } from './authority.ts';
import type { McpAuthority, TaskIdentity, Verdict } from './authority.ts';
import type { ClientBinding } from './config.ts';
import { looksLikeJwt } from './config.ts';
import { CALL_REFUSED, errorResponse, isObject } from './messages.ts';
import type { CallOutcome, GuardedCall, JsonRpcError } from './messages.ts';
import type { BoundSessions, SessionEnd } from './sessions.ts';
import type { SpanSink } from './span-sink.ts';
import { callSpan, taskEndSpan } from './spans.ts';

/** Who a request acts for. `owner` is what an MCP session is bound to (another owner cannot use it). */
export type Principal =
  { kind: 'task'; identity: TaskIdentity; owner: string } | { kind: 'bound'; binding: ClientBinding; owner: string };

export type Credential = { ok: true; principal: Principal } | { ok: false; missing: boolean; reason: string };

export type Admission =
  | { ok: true; identity: TaskIdentity; sideEffect: string | undefined }
  | { ok: false; error: JsonRpcError; code: string; taskId: string | undefined };

export interface CallContext {
  upstream: string;
  sessionId: string | undefined;
  protocolVersion: string | undefined;
}

export class CallGuard {
  readonly #authority: McpAuthority;
  readonly #sessions: BoundSessions;
  readonly #sink: SpanSink;
  readonly #logger: Logger;
  readonly #now: () => number;
  /** Binding by the SHA-256 of its token. */
  readonly #bindings: Map<string, ClientBinding>;
  /** Per upstream: tool name → side effect, from `tools/list` results. */
  readonly #sideEffects = new Map<string, Map<string, string>>();

  constructor(options: {
    authority: McpAuthority;
    sessions: BoundSessions;
    sink: SpanSink;
    bindings: readonly ClientBinding[];
    logger: Logger;
    now?: () => number;
  }) {
    this.#authority = options.authority;
    this.#sessions = options.sessions;
    this.#sink = options.sink;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#bindings = new Map(options.bindings.map((binding) => [digest(binding.token), binding]));
  }

  /** The credential of `Authorization: Bearer …`: a bound client's token, else a task token. */
  async credential(authorization: string | null): Promise<Credential> {
    const match = authorization === null ? null : /^Bearer[ \t]+(\S{1,8192})[ \t]*$/i.exec(authorization);
    const token = match?.[1];
    if (token === undefined)
      return { ok: false, missing: true, reason: 'send a Tripline task token or client token as the bearer token' };
    // Looked up by the token's hash: how long the lookup takes says nothing about how much of a guess was right.
    const binding = this.#bindings.get(digest(token));
    if (binding !== undefined)
      return { ok: true, principal: { kind: 'bound', binding, owner: `client:${binding.name}` } };
    if (!looksLikeJwt(token)) return { ok: false, missing: false, reason: 'the token is not a known client token' };
    try {
      const identity = await this.#authority.verify(token);
      return { ok: true, principal: { kind: 'task', identity, owner: `task:${identity.tenant}/${identity.taskId}` } };
    } catch (error) {
      if (error instanceof InvalidCredential) return { ok: false, missing: false, reason: error.message };
      throw error;
    }
  }

  /** Whether a guarded call may go on; asked before the upstream sees it. */
  async admit(principal: Principal, call: GuardedCall, context: CallContext): Promise<Admission> {
    let identity: TaskIdentity;
    if (principal.kind === 'task') identity = principal.identity;
    else {
      try {
        identity = await this.#sessions.task(principal.binding, context.upstream, context.sessionId);
      } catch (error) {
        if (!(error instanceof TaskStartRefused)) throw error;
        return refusal(call, error.code, [error.message], undefined, undefined);
      }
    }
    const sideEffect = call.method === 'tools/call' ? this.sideEffectOf(context.upstream, call.name) : undefined;
    let verdict: Verdict;
    try {
      verdict =
        call.method === 'tools/call'
          ? await this.#authority.checkTool(identity, call.name, sideEffect ?? 'write', argumentsOf(call))
          : await this.#authority.checkRead(identity);
    } catch (error) {
      // The authority cannot be asked: the call does not go (fail closed), and the client is told why.
      this.#logger.error({ err: messageOf(error), taskId: identity.taskId }, 'the MCP gateway could not check a call');
      return refusal(
        call,
        'CHECK_UNAVAILABLE',
        ['Tripline could not be asked whether the call may go; try again'],
        identity.taskId,
        undefined,
      );
    }
    if (!verdict.allowed) {
      this.#logger.info(
        {
          taskId: identity.taskId,
          agentId: identity.agentId,
          method: call.method,
          name: call.name,
          code: verdict.code,
        },
        'the MCP gateway refused a call',
      );
      return refusal(call, verdict.code, verdict.reasons, identity.taskId, verdict.decisionId);
    }
    return { ok: true, identity, sideEffect };
  }

  /** The span of a call that went to the upstream. */
  record(
    identity: TaskIdentity,
    call: GuardedCall,
    sideEffect: string | undefined,
    context: CallContext,
    startMs: number,
    outcome: CallOutcome | undefined,
  ): void {
    this.#sink.emit(
      identity.tenant,
      callSpan({
        identity,
        upstream: context.upstream,
        call,
        outcome,
        sideEffect,
        sessionId: context.sessionId,
        protocolVersion: context.protocolVersion,
        startMs,
        endMs: this.#now(),
      }),
    );
  }

  /** Bound sessions that ended: their tasks end (a root span each). */
  ended(ends: readonly SessionEnd[]): void {
    const now = this.#now();
    for (const end of ends)
      this.#sink.emit(end.identity.tenant, taskEndSpan(end.identity, end.upstream, end.startedMs, now));
  }

  /** Learns the tools' side effects from a `tools/list` result. */
  learnTools(upstream: string, result: unknown): void {
    if (!isObject(result) || !Array.isArray(result.tools)) return;
    let known = this.#sideEffects.get(upstream);
    if (known === undefined) {
      known = new Map();
      this.#sideEffects.set(upstream, known);
    }
    for (const tool of result.tools) {
      if (!isObject(tool) || typeof tool.name !== 'string') continue;
      known.set(tool.name, sideEffectOfAnnotations(tool.annotations));
      if (known.size > 10_000) break;
    }
  }

  /** A tool's side effect from its annotations; a tool never listed is taken as `write`. */
  sideEffectOf(upstream: string, tool: string): string | undefined {
    return this.#sideEffects.get(upstream)?.get(tool);
  }
}

/**
 * MCP's tool annotations, with the specification's defaults: `readOnlyHint` (false) → read; otherwise
 * `destructiveHint` (true unless said) → destructive, else write. They are the server's hints, not a promise;
 * they only decide which of Tripline's policies apply (a suspicious task may only read).
 */
export function sideEffectOfAnnotations(annotations: unknown): string {
  const hints = isObject(annotations) ? annotations : {};
  if (hints.readOnlyHint === true) return 'read';
  return hints.destructiveHint === false ? 'write' : 'destructive';
}

/**
 * The refusal a client gets: a JSON-RPC error (not a tool result with `isError`), because the call never ran —
 * it is not the tool's answer for the model to retry around but Tripline stopping the agent, which the client
 * shows the person. `data` says why, in Tripline's codes.
 */
/** A tool call's arguments when they are a JSON object (what approval points bind to, docs/approvals.md). */
function argumentsOf(call: GuardedCall): Record<string, unknown> | undefined {
  const args = call.arguments;
  return typeof args === 'object' && args !== null && !Array.isArray(args)
    ? (args as Record<string, unknown>)
    : undefined;
}

function refusal(
  call: GuardedCall,
  code: string,
  reasons: string[],
  taskId: string | undefined,
  decisionId: string | undefined,
): Admission {
  const what = call.method === 'tools/call' ? `the call of ${call.name}` : `the read of ${call.name}`;
  const message = `Tripline refused ${what}: ${reasons.join('; ')}`;
  return {
    ok: false,
    code,
    taskId,
    error: errorResponse(call.id, CALL_REFUSED, message, {
      code,
      reasons,
      ...(taskId === undefined ? {} : { taskId }),
      ...(decisionId === undefined ? {} : { decisionId }),
    }),
  };
}

function digest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
