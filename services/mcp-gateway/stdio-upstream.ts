/**
 * A local MCP server behind the gateway: one process per MCP session, spawned at the client's `initialize`
 * (a stdio server serves one client), spoken to over stdio; the client side is the MCP SDK's Streamable HTTP
 * server transport (sessions, SSE, GET stream, DELETE, as protocol 2025-11-25 has them). Messages pass through
 * as they are, both ways; the guard sees each client request first (a refused `tools/call` is answered by
 * the gateway and never written to the process) and each response to a guarded call, for its span.
 *
 * A client of protocol 2026-07-28 (stateless, no `initialize`) is answered 400 here and falls back to
 * `initialize`, as that revision's clients do with a server of the earlier one.
 */
import { randomUUID } from 'node:crypto';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { StdioUpstream } from './config.ts';
import type { CallGuard, Principal } from './guard.ts';
import { errorResponse, guardedCallOf, INVALID_REQUEST, isObject, outcomeOf } from './messages.ts';
import type { GuardedCall, JsonRpcId } from './messages.ts';
import type { TaskIdentity } from './authority.ts';

interface Pending {
  identity: TaskIdentity;
  call: GuardedCall;
  sideEffect: string | undefined;
  startMs: number;
}

interface StdioSession {
  id: string | undefined;
  owner: string;
  http: WebStandardStreamableHTTPServerTransport;
  process: StdioClientTransport;
  /** Guarded calls and `tools/list` requests waiting for the process's response, by request id. */
  pending: Map<JsonRpcId, Pending | 'tools/list'>;
  protocolVersion: string | undefined;
  lastUsedMs: number;
}

export interface StdioBridgeRequest {
  request: Request;
  body: unknown;
  principal: Principal;
}

/** Lets the caller end bound sessions when a session closes. */
export type SessionClosed = (principal: Principal, sessionId: string) => void;

export interface StdioBridgeOptions {
  name: string;
  upstream: StdioUpstream;
  guard: CallGuard;
  logger: Logger;
  /** A session without a request for this long is closed (its process stopped), as a DELETE would. */
  idleMs: number;
  onClosed: SessionClosed;
}

export class StdioBridge {
  readonly #name: string;
  readonly #upstream: StdioUpstream;
  readonly #guard: CallGuard;
  readonly #logger: Logger;
  readonly #idleMs: number;
  readonly #onClosed: SessionClosed;
  readonly #sessions = new Map<string, StdioSession>();
  readonly #principals = new Map<string, Principal>();

  constructor(options: StdioBridgeOptions) {
    this.#name = options.name;
    this.#upstream = options.upstream;
    this.#guard = options.guard;
    this.#logger = options.logger.child({ mcpServer: options.name });
    this.#idleMs = options.idleMs;
    this.#onClosed = options.onClosed;
  }

  async handle({ request, body, principal }: StdioBridgeRequest): Promise<Response> {
    const sessionId = request.headers.get('mcp-session-id');
    if (sessionId === null) {
      if (request.method === 'POST' && isObject(body) && body.method === 'initialize')
        return this.#open(request, body, principal);
      return Response.json(
        errorResponse(null, INVALID_REQUEST, 'Bad Request: no MCP session; start one with initialize'),
        { status: 400 },
      );
    }
    const session = this.#sessions.get(sessionId);
    if (session === undefined || session.owner !== principal.owner)
      return Response.json(errorResponse(null, -32001, 'Session not found'), { status: 404 });
    this.#principals.set(sessionId, principal);
    session.lastUsedMs = Date.now();
    return session.http.handleRequest(request, { parsedBody: body });
  }

  /** Closes the sessions idle for longer than the idle time (a client that went away without a DELETE). */
  sweep(nowMs: number): void {
    for (const session of this.#sessions.values())
      if (nowMs - session.lastUsedMs > this.#idleMs) void this.#close(session);
  }

  /** Stops every session's process. */
  async stop(): Promise<void> {
    await Promise.all([...this.#sessions.values()].map((session) => this.#close(session)));
  }

  get sessions(): number {
    return this.#sessions.size;
  }

  async #open(request: Request, body: unknown, principal: Principal): Promise<Response> {
    const processTransport = new StdioClientTransport({
      command: this.#upstream.command,
      args: this.#upstream.args,
      env: { ...getDefaultEnvironment(), ...this.#upstream.env },
      ...(this.#upstream.cwd === undefined ? {} : { cwd: this.#upstream.cwd }),
      stderr: 'pipe',
    });
    const session: StdioSession = {
      id: undefined,
      owner: principal.owner,
      process: processTransport,
      pending: new Map(),
      protocolVersion: undefined,
      lastUsedMs: Date.now(),
      http: new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          session.id = id;
          this.#sessions.set(id, session);
          this.#principals.set(id, principal);
        },
        onsessionclosed: () => void this.#close(session),
      }),
    };
    processTransport.stderr?.on('data', (chunk: Buffer) =>
      this.#logger.debug({ stderr: chunk.toString('utf8').slice(0, 2000) }, 'MCP server stderr'),
    );
    session.http.onmessage = (message) => void this.#fromClient(session, message);
    processTransport.onmessage = (message) => void this.#fromServer(session, message);
    processTransport.onclose = () => void this.#close(session);
    processTransport.onerror = (error) => this.#logger.warn({ err: messageOf(error) }, 'MCP server process error');
    try {
      await processTransport.start();
    } catch (error) {
      this.#logger.error({ err: messageOf(error) }, 'the MCP server could not be started');
      return Response.json(errorResponse(null, -32603, `the MCP server ${this.#name} could not be started`), {
        status: 502,
      });
    }
    const response = await session.http.handleRequest(request, { parsedBody: body });
    if (session.id === undefined) await processTransport.close();
    return response;
  }

  async #fromClient(session: StdioSession, message: JSONRPCMessage): Promise<void> {
    const raw: Record<string, unknown> = message;
    try {
      const call = guardedCallOf(message);
      const principal = session.id === undefined ? undefined : this.#principals.get(session.id);
      if (raw.method === 'initialize' && isObject(raw.params))
        session.protocolVersion =
          typeof raw.params.protocolVersion === 'string' ? raw.params.protocolVersion : undefined;
      if (call === undefined || principal === undefined) {
        if (raw.method === 'tools/list' && (typeof raw.id === 'string' || typeof raw.id === 'number'))
          session.pending.set(raw.id, 'tools/list');
        await session.process.send(message);
        return;
      }
      const context = { upstream: this.#name, sessionId: session.id, protocolVersion: session.protocolVersion };
      const admission = await this.#guard.admit(principal, call, context);
      if (!admission.ok) {
        await session.http.send(admission.error as JSONRPCMessage);
        return;
      }
      session.pending.set(call.id, {
        identity: admission.identity,
        call,
        sideEffect: admission.sideEffect,
        startMs: Date.now(),
      });
      await session.process.send(message);
    } catch (error) {
      this.#logger.error({ err: messageOf(error) }, 'forwarding a message to the MCP server failed');
      if (isObject(message) && 'id' in message && 'method' in message)
        await session.http
          .send(errorResponse(message.id, -32603, 'the gateway could not forward the request') as JSONRPCMessage)
          .catch(() => undefined);
    }
  }

  async #fromServer(session: StdioSession, message: JSONRPCMessage): Promise<void> {
    const id = isObject(message) && ('result' in message || 'error' in message) ? (message.id as JsonRpcId) : undefined;
    const pending = id === undefined ? undefined : session.pending.get(id);
    if (id !== undefined && pending !== undefined) {
      session.pending.delete(id);
      if (pending === 'tools/list') this.#guard.learnTools(this.#name, (message as { result?: unknown }).result);
      else
        this.#guard.record(
          pending.identity,
          pending.call,
          pending.sideEffect,
          { upstream: this.#name, sessionId: session.id, protocolVersion: session.protocolVersion },
          pending.startMs,
          outcomeOf(message, pending.call.id),
        );
    }
    try {
      await session.http.send(message);
    } catch (error) {
      this.#logger.warn({ err: messageOf(error) }, 'a message of the MCP server could not be delivered');
    }
  }

  async #close(session: StdioSession): Promise<void> {
    if (session.id !== undefined) {
      if (!this.#sessions.delete(session.id)) return;
      const principal = this.#principals.get(session.id);
      this.#principals.delete(session.id);
      if (principal !== undefined) this.#onClosed(principal, session.id);
    }
    await Promise.allSettled([session.process.close(), session.http.close()]);
  }
}
