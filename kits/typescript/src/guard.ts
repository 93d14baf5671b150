/**
 * The revocation guard of the agent helpers: one server-sent-events connection to Tripline
 * (`GET /v1/stream?agent_id=<agent>`) over which revocations are *pushed*; a tool call then checks a local
 * set (no request per call). When Tripline revokes one of the agent's tasks, the next tool call of that task
 * throws `TaskRevokedError`, and the guard acknowledges the revocation (`POST /v1/revocations/{id}/ack`) so
 * Tripline can verify the kill took effect.
 *
 * On connect Tripline sends the revocations already in force for the agent, then `ready`. While the stream is
 * down (Tripline restarting, a network cut) the guard reconnects with backoff and, until it is back, asks
 * `POST /v1/check` before each operation (`whileDisconnected: 'check'`, the default), refuses everything
 * (`'refuse'`), or lets calls through (`'allow'`).
 *
 * A loop or rate limit's `refuse` step (an `alert` event with `refuseUntilMs`) refuses the task's operations until
 * then with `TaskRefusedError` (the task is not revoked); so does a `POST /v1/check` answer that says so.
 */
import { TaskRefusedError, TaskRevokedError } from './errors.ts';
import type { RevocationNotice } from './errors.ts';

export interface GuardOptions {
  /** Tripline's API base URL, e.g. `http://localhost:8080`. */
  apiUrl: string;
  agentId: string;
  headers?: Record<string, string>;
  /** What to do while the stream is disconnected. @default 'check' */
  whileDisconnected?: 'check' | 'refuse' | 'allow';
  /** Called with errors the guard handles itself (reconnects, failed acks), for the agent's own logs. */
  onError?: (error: Error) => void;
  /** Called for every revocation or restore received. */
  onRevocation?: (notice: RevocationNotice) => void;
}

export interface Guard {
  /** Resolves true once the stream delivered its snapshot (`ready`), false after `timeoutMs`. */
  ready(timeoutMs?: number): Promise<boolean>;
  connected(): boolean;
  /**
   * Mark a task as run by this process (its revocations are acknowledged), with the end user / conversation it
   * acts for if known: an escalation scoped to them refuses it too (without, only a whole-agent one does, and the
   * task's own revocation when Tripline revokes it in scope).
   */
  track(taskId: string, scope?: GuardScope): void;
  /**
   * Throws TaskRevokedError when the task is revoked (or an escalation reaches it), TaskRefusedError while a loop
   * or rate limit refuses its calls. Synchronous: no I/O.
   */
  check(taskId: string, operation: string): void;
  /** `check`, plus a request to Tripline when the stream is down (see `whileDisconnected`). */
  enforce(taskId: string, operation: string, tool: string): Promise<void>;
  revocation(taskId: string): RevocationNotice | undefined;
  close(): void;
}

/** The end user and conversation a task acts for (`enduser.id`, `gen_ai.conversation.id`). */
export interface GuardScope {
  endUser?: string;
  conversation?: string;
}

interface ScopedBlock {
  scope: GuardScope;
  untilMs: number;
  reason: string;
}

/** Most scoped escalations and task scopes the guard keeps (the oldest dropped first). */
const MAX_SCOPED_BLOCKS = 64;
const MAX_TASK_SCOPES = 10_000;
/** Most refused tasks the guard keeps (the oldest dropped first). */
const MAX_REFUSALS = 10_000;

interface SseEvent {
  event: string;
  id?: string;
  data: string;
}

/** Parses a server-sent-events byte stream into events (the WHATWG rules Tripline's stream needs). */
export async function* readEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let event = 'message';
  let id: string | undefined;
  let data: string[] = [];
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline = buffer.indexOf('\n');
    while (newline >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, '');
      buffer = buffer.slice(newline + 1);
      newline = buffer.indexOf('\n');
      if (line === '') {
        if (data.length > 0) yield { event, ...(id === undefined ? {} : { id }), data: data.join('\n') };
        event = 'message';
        id = undefined;
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
    }
  }
}

/** The escalations this agent heard of: the whole agent's block, and blocks scoped to an end user or conversation. */
class EscalationBlocks {
  readonly #agentId: string;
  #agentUntilMs = 0;
  #agentReason = '';
  #scoped: ScopedBlock[] = [];
  readonly #taskScopes = new Map<string, GuardScope>();

  constructor(agentId: string) {
    this.#agentId = agentId;
  }

  apply(data: Record<string, unknown>): void {
    const until = typeof data.untilMs === 'number' ? data.untilMs : 0;
    const scope = scopeOf(data.scope);
    if (scope === undefined) {
      // No scope (or an older Tripline's escalation): the whole agent.
      this.#agentUntilMs = Math.max(this.#agentUntilMs, until);
      this.#agentReason = `agent ${this.#agentId} was escalated after repeated revocations, until ${new Date(until).toISOString()}`;
      return;
    }
    const reason = `agent ${this.#agentId} was escalated for ${describe(scope)} after repeated revocations, until ${new Date(until).toISOString()}`;
    this.#scoped = [...this.#scoped.filter((block) => block.untilMs > Date.now()), { scope, untilMs: until, reason }];
    this.#scoped = this.#scoped.slice(-MAX_SCOPED_BLOCKS);
  }

  track(taskId: string, scope: GuardScope | undefined): void {
    if (scope === undefined || (scope.endUser === undefined && scope.conversation === undefined)) return;
    this.#taskScopes.delete(taskId);
    this.#taskScopes.set(taskId, scope);
    if (this.#taskScopes.size > MAX_TASK_SCOPES) this.#taskScopes.delete(this.#taskScopes.keys().next().value ?? '');
  }

  /** Until when the task may not proceed (0 or past: it may), and why. */
  blockOf(taskId: string): { until: number; reason: string } {
    const scoped = this.#scoped.find(
      (block) => block.untilMs > Date.now() && reaches(block.scope, this.#taskScopes.get(taskId)),
    );
    const until = Math.max(this.#agentUntilMs, scoped?.untilMs ?? 0);
    const reason = this.#agentUntilMs > Date.now() || scoped === undefined ? this.#agentReason : scoped.reason;
    return { until, reason };
  }
}

export function startGuard(options: GuardOptions): Guard {
  const base = options.apiUrl.replace(/\/$/, '');
  const headers = options.headers ?? {};
  const whileDisconnected = options.whileDisconnected ?? 'check';
  const revoked = new Map<string, RevocationNotice>();
  const tracked = new Set<string>();
  const acked = new Set<string>();
  const blocks = new EscalationBlocks(options.agentId);
  const refusals = new Map<string, { untilMs: number; reason: string }>();
  let isConnected = false;
  let closed = false;
  /** Read through a function: `closed` changes while the connect loop awaits. */
  const isClosed = (): boolean => closed;
  let readyResolvers: ((ready: boolean) => void)[] = [];
  let everReady = false;
  let controller: AbortController | undefined;
  let failures = 0;

  const report = (error: unknown): void => options.onError?.(error instanceof Error ? error : new Error(String(error)));

  /** `receivedAtMs`: when the notice arrived, on the clock spans use (epoch ms with sub-ms precision). */
  function acknowledge(notice: RevocationNotice, receivedAtMs?: number): void {
    if (acked.has(notice.id) || !tracked.has(notice.taskId)) return;
    acked.add(notice.id);
    // An acknowledgement that could not be sent is forgotten, so a later `track` or notice sends it again.
    postAck(base, headers, options.agentId, notice, receivedAtMs ?? Date.now(), report, () => acked.delete(notice.id));
  }

  function onEvent(event: SseEvent): void {
    if (event.event === 'ready') {
      isConnected = true;
      everReady = true;
      failures = 0;
      const resolvers = readyResolvers;
      readyResolvers = [];
      for (const resolve of resolvers) resolve(true);
      return;
    }
    let data: Record<string, unknown>;
    try {
      data = JSON.parse(event.data) as Record<string, unknown>;
    } catch {
      return;
    }
    if (event.event === 'revocation') {
      const notice = noticeOf(data);
      if (notice === undefined) return;
      if (notice.action === 'revoke') {
        revoked.set(notice.taskId, notice);
        acknowledge(notice, performance.timeOrigin + performance.now());
      } else {
        const current = revoked.get(notice.taskId);
        if (current !== undefined && current.timeMs <= notice.timeMs) revoked.delete(notice.taskId);
      }
      options.onRevocation?.(notice);
    } else if (event.event === 'escalation') {
      blocks.apply(data);
    } else if (event.event === 'alert') {
      const taskId = typeof data.taskId === 'string' ? data.taskId : '';
      const untilMs = typeof data.refuseUntilMs === 'number' ? data.refuseUntilMs : 0;
      if (taskId === '' || !(untilMs > Date.now())) return;
      const reasons = Array.isArray(data.reasons) ? data.reasons : [];
      const reason = typeof reasons[0] === 'string' ? reasons[0] : 'a loop or rate limit refuses its calls';
      refusals.delete(taskId);
      refusals.set(taskId, { untilMs, reason });
      if (refusals.size > MAX_REFUSALS) {
        const oldest = refusals.keys().next().value;
        if (oldest !== undefined) refusals.delete(oldest);
      }
    }
  }

  async function connect(): Promise<void> {
    while (!isClosed()) {
      controller = new AbortController();
      try {
        const response = await fetch(
          `${base}/v1/stream?agent_id=${encodeURIComponent(options.agentId)}&types=revocation,escalation,alert`,
          {
            headers: { accept: 'text/event-stream', ...headers },
            signal: controller.signal,
          },
        );
        if (!response.ok || response.body === null) throw new Error(`GET /v1/stream answered HTTP ${response.status}`);
        for await (const event of readEvents(response.body)) onEvent(event);
        if (!isClosed()) throw new Error('the revocation stream ended');
      } catch (error) {
        if (isClosed()) return;
        isConnected = false;
        failures += 1;
        if (failures === 1 || failures % 10 === 0) report(error);
      }
      isConnected = false;
      if (isClosed()) return;
      await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * 2 ** Math.min(failures, 6))).unref());
    }
  }

  void connect();

  return {
    ready(timeoutMs = 3000) {
      if (everReady) return Promise.resolve(true);
      return new Promise((resolve) => {
        readyResolvers.push(resolve);
        setTimeout(() => resolve(false), timeoutMs).unref();
      });
    },
    connected: () => isConnected,
    track(taskId, scope) {
      tracked.add(taskId);
      blocks.track(taskId, scope);
      const notice = revoked.get(taskId);
      if (notice !== undefined) acknowledge(notice);
    },
    check(taskId, operation) {
      const { until, reason } = blocks.blockOf(taskId);
      const error = refusal(revoked.get(taskId), until, reason, taskId, operation);
      if (error !== undefined) throw error;
      const refused = refusals.get(taskId);
      if (refused === undefined) return;
      if (refused.untilMs <= Date.now()) refusals.delete(taskId);
      else throw new TaskRefusedError({ taskId, reason: refused.reason, operation, refusedUntilMs: refused.untilMs });
    },
    async enforce(taskId, operation, tool) {
      this.check(taskId, operation);
      if (isConnected || whileDisconnected === 'allow') return;
      if (whileDisconnected === 'refuse') {
        throw new TaskRevokedError({
          taskId,
          revocationId: '',
          reason: 'the revocation stream to Tripline is down and the guard refuses while it is',
          operation,
          revokedAtMs: Date.now(),
        });
      }
      await checkRemotely(base, headers, taskId, operation, tool, report);
    },
    revocation: (taskId) => revoked.get(taskId),
    close() {
      closed = true;
      controller?.abort();
      for (const resolve of readyResolvers) resolve(false);
      readyResolvers = [];
    },
  };
}

/**
 * Acknowledges a revocation (`POST /v1/revocations/{id}/ack`) without waiting for the answer. An HTTP error
 * other than 404 is reported; a request that failed outright is reported after `onUnsent`.
 */
function postAck(
  base: string,
  headers: Record<string, string>,
  agentId: string,
  notice: RevocationNotice,
  receivedAtMs: number,
  report: (error: unknown) => void,
  onUnsent: () => void,
): void {
  fetch(`${base}/v1/revocations/${encodeURIComponent(notice.id)}/ack`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ agentId, taskId: notice.taskId, receivedAtMs }),
  })
    .then(
      (response) => {
        if (!response.ok && response.status !== 404)
          report(new Error(`acknowledging revocation ${notice.id} failed: HTTP ${response.status}`));
        return response.body?.cancel();
      },
      (error: unknown) => {
        onUnsent();
        report(error);
      },
    )
    .catch(report);
}

/** The scope of an escalation event; undefined when it names none (the whole agent). */
function scopeOf(value: unknown): GuardScope | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const { endUser, conversation } = value as Record<string, unknown>;
  const scope: GuardScope = {};
  if (typeof endUser === 'string' && endUser !== '') scope.endUser = endUser;
  if (typeof conversation === 'string' && conversation !== '') scope.conversation = conversation;
  return scope.endUser === undefined && scope.conversation === undefined ? undefined : scope;
}

/** Whether a scoped escalation reaches a task: the task named every field the escalation sets, with its value. */
function reaches(block: GuardScope, task: GuardScope | undefined): boolean {
  if (task === undefined) return false;
  if (block.endUser !== undefined && task.endUser !== block.endUser) return false;
  return block.conversation === undefined || task.conversation === block.conversation;
}

function describe(scope: GuardScope): string {
  return [
    ...(scope.endUser === undefined ? [] : [`end user ${scope.endUser}`]),
    ...(scope.conversation === undefined ? [] : [`conversation ${scope.conversation}`]),
  ].join(', ');
}

/** The error refusing `operation` of a task: its revocation, else an escalation that reaches it while in force. */
function refusal(
  notice: RevocationNotice | undefined,
  escalatedUntilMs: number,
  escalationReason: string,
  taskId: string,
  operation: string,
): TaskRevokedError | undefined {
  if (notice !== undefined) {
    return new TaskRevokedError({
      taskId,
      revocationId: notice.id,
      reason: notice.reason,
      reasons: notice.reasons,
      operation,
      revokedAtMs: notice.timeMs,
    });
  }
  if (escalatedUntilMs > Date.now())
    return new TaskRevokedError({
      taskId,
      revocationId: '',
      reason: escalationReason,
      operation,
      revokedAtMs: Date.now(),
    });
  return undefined;
}

/**
 * While the stream is down: asks Tripline (`POST /v1/check`) whether the task is revoked; throws
 * TaskRevokedError when it is. A check that cannot be made is reported and lets the call through.
 */
async function checkRemotely(
  base: string,
  headers: Record<string, string>,
  taskId: string,
  operation: string,
  tool: string,
  report: (error: unknown) => void,
): Promise<void> {
  try {
    const response = await fetch(`${base}/v1/check`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ taskId, tool }),
      signal: AbortSignal.timeout(2000),
    });
    const answer = (await response.json()) as {
      task?: { revoked?: boolean; refusing?: { reason?: string; untilMs?: number } };
      reasons?: string[];
    };
    const refusing = answer.task?.refusing;
    if (answer.task?.revoked !== true && typeof refusing?.untilMs === 'number')
      throw new TaskRefusedError({
        taskId,
        reason: refusing.reason ?? answer.reasons?.[0] ?? 'refused',
        operation,
        refusedUntilMs: refusing.untilMs,
      });
    if (answer.task?.revoked === true) {
      throw new TaskRevokedError({
        taskId,
        revocationId: '',
        reason: answer.reasons?.[0] ?? 'revoked',
        operation,
        revokedAtMs: Date.now(),
      });
    }
  } catch (error) {
    if (error instanceof TaskRevokedError || error instanceof TaskRefusedError) throw error;
    report(error);
  }
}

function noticeOf(data: Record<string, unknown>): RevocationNotice | undefined {
  const text = (key: string): string => (typeof data[key] === 'string' ? data[key] : '');
  if (text('id') === '' || text('taskId') === '') return undefined;
  const time = typeof data.timeMs === 'number' ? data.timeMs : Date.parse(text('time'));
  return {
    id: text('id'),
    taskId: text('taskId'),
    taskType: text('taskType'),
    agentId: text('agentId'),
    action: data.action === 'restore' ? 'restore' : 'revoke',
    source: data.source === 'manual' ? 'manual' : 'detector',
    actor: text('actor'),
    reason: text('reason'),
    reasons: Array.isArray(data.reasons)
      ? data.reasons.filter((reason): reason is string => typeof reason === 'string')
      : [],
    score: typeof data.score === 'number' ? data.score : 0,
    timeMs: Number.isFinite(time) ? time : Date.now(),
  };
}
