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
 */
import { TaskRevokedError } from './errors.ts';
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
  /** Mark a task as run by this process (its revocations are acknowledged). */
  track(taskId: string): void;
  /** Throws TaskRevokedError when the task is revoked (or the agent escalated). Synchronous: no I/O. */
  check(taskId: string, operation: string): void;
  /** `check`, plus a request to Tripline when the stream is down (see `whileDisconnected`). */
  enforce(taskId: string, operation: string, tool: string): Promise<void>;
  revocation(taskId: string): RevocationNotice | undefined;
  close(): void;
}

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

export function startGuard(options: GuardOptions): Guard {
  const base = options.apiUrl.replace(/\/$/, '');
  const headers = options.headers ?? {};
  const whileDisconnected = options.whileDisconnected ?? 'check';
  const revoked = new Map<string, RevocationNotice>();
  const tracked = new Set<string>();
  const acked = new Set<string>();
  let escalatedUntilMs = 0;
  let escalationReason = '';
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
      const until = typeof data.untilMs === 'number' ? data.untilMs : 0;
      escalatedUntilMs = Math.max(escalatedUntilMs, until);
      escalationReason = `agent ${options.agentId} was escalated after repeated revocations, until ${new Date(until).toISOString()}`;
    }
  }

  async function connect(): Promise<void> {
    while (!isClosed()) {
      controller = new AbortController();
      try {
        const response = await fetch(
          `${base}/v1/stream?agent_id=${encodeURIComponent(options.agentId)}&types=revocation,escalation`,
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
    track(taskId) {
      tracked.add(taskId);
      const notice = revoked.get(taskId);
      if (notice !== undefined) acknowledge(notice);
    },
    check(taskId, operation) {
      const error = refusal(revoked.get(taskId), escalatedUntilMs, escalationReason, taskId, operation);
      if (error !== undefined) throw error;
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

/** The error refusing `operation` of a task: its revocation, else the agent's escalation while in force. */
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
    const answer = (await response.json()) as { task?: { revoked?: boolean }; reasons?: string[] };
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
    if (error instanceof TaskRevokedError) throw error;
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
