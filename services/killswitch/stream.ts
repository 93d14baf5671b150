/**
 * Server-sent events of revocations, alerts, escalations and verification outcomes (`GET /v1/stream`), for
 * agent helpers and enforcement points: a revocation is pushed the moment the kill switch applies it.
 *
 * A subscriber filters by task ids and/or agent ids (none: everything of the tenant) and by event types. On
 * connect it first gets the current state that matches its filter — the revocations in force for those tasks
 * or agents and an agent's escalation — so a revocation decided before it connected is not missed; then a
 * `ready` event; then live events. Each event carries `id:` (the revocation or alert id). A comment line is
 * sent every `heartbeatMs` so proxies keep the connection open and clients notice a dead one. A subscriber
 * that does not read (more than 1 MiB buffered) is disconnected rather than buffered without limit.
 *
 * Bounded: at most `maxClientsPerTenant` connections per tenant (beyond: STREAM_TENANT_LIMIT, 429) and `maxClients`
 * in all (beyond: STREAM_FULL, 503), both with Retry-After; the connect snapshot reads the revocations of the
 * filter's tasks and agents from the authority's per-agent index, so its cost follows the caller's scope, not the
 * number of tasks the authority knows.
 */
import type { ServerResponse } from 'node:http';
import type { Alert, Revocation } from '../../schemas/events.ts';
import { speaksFor } from '../core/agent-binding.ts';
import type { AgentBinding } from '../core/agent-binding.ts';
import { TriplineError, messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { Authority } from './authority.ts';
import type { Escalation } from './escalation.ts';
import type { KillSwitch } from './kill-switch.ts';
import type { VerificationRecord } from './ks-store.ts';

export const STREAM_EVENT_TYPES = ['revocation', 'alert', 'escalation', 'verification'] as const;
export type StreamEventType = (typeof STREAM_EVENT_TYPES)[number];

export interface StreamFilter {
  tenant: string;
  taskIds: ReadonlySet<string>;
  agentIds: ReadonlySet<string>;
  types: ReadonlySet<StreamEventType>;
  /**
   * Set when an agent token subscribed: the agents it speaks for (services/core/agent-binding.ts; empty: every agent
   * of its tenant). It hears of those agents' tasks only, and of alerts and revocations without their reasons (the
   * evidence, baselines and percentiles are for people).
   */
  agentToken?: AgentBinding;
}

export interface StreamHub {
  /** Why a new subscriber of the tenant is refused now (too many connections), or undefined: it may attach. */
  refusal(tenant: string): TriplineError | undefined;
  /** Takes over the response: writes the headers, the snapshot, `ready`, then live events until it closes. */
  attach(response: ServerResponse, filter: StreamFilter): void;
  /** Publishes a verification outcome to subscribers of `verification`. */
  verification(record: VerificationRecord): void;
  clients(): number;
  stop(): void;
}

interface Client {
  response: ServerResponse;
  filter: StreamFilter;
}

const MAX_BUFFERED = 1024 * 1024;
/** What a refused subscriber is told to wait before connecting again. */
const REFUSED_RETRY_SECONDS = 5;

export function revocationEvent(revocation: Revocation): Record<string, unknown> {
  const { tenant: _tenant, ...rest } = revocation;
  return { ...rest, time: new Date(revocation.timeMs).toISOString() };
}

function alertEvent(alert: Alert): Record<string, unknown> {
  const { tenant: _tenant, ...rest } = alert;
  return { ...rest, time: new Date(alert.timeMs).toISOString() };
}

/**
 * What an agent token's subscriber gets of an alert or a revocation: no reasons (evidence is for people), except
 * the one sentence of a loop or rate limit's refusal (`refuseUntilMs`), which tells the agent what to stop doing.
 */
function forAgentToken(data: Record<string, unknown>): Record<string, unknown> {
  const { reasons, ...rest } = data;
  if (typeof data.refuseUntilMs === 'number' && Array.isArray(reasons) && typeof reasons[0] === 'string')
    return { ...rest, reasons: [reasons[0]] };
  return rest;
}

/** An escalation as streamed; `scope` (end user / conversation) only when it is not the whole agent. */
function escalationEvent(escalation: Escalation): Record<string, unknown> {
  return {
    agentId: escalation.agentId,
    taskIds: escalation.taskIds,
    at: new Date(escalation.atMs).toISOString(),
    until: new Date(escalation.untilMs).toISOString(),
    atMs: escalation.atMs,
    untilMs: escalation.untilMs,
    ...(escalation.scope === undefined ? {} : { scope: escalation.scope }),
  };
}

function verificationEvent(record: VerificationRecord): Record<string, unknown> {
  return {
    revocationId: record.revocationId,
    taskId: record.taskId,
    taskType: record.taskType,
    agentId: record.agentId,
    outcome: record.outcome,
    failures: record.failures,
    decidedAt: record.decidedMs === null ? null : new Date(record.decidedMs).toISOString(),
  };
}

/**
 * A field value safe on one SSE line: ids carry agent-chosen text (an escalation's id names its agent), and a CR or
 * LF there would end the field and start a forged one. Control characters and `%` are percent-encoded, so distinct
 * values stay distinct. The data line needs nothing: JSON escapes every control character.
 */
export function sseFieldValue(value: string): string {
  let safe = '';
  for (const character of value) {
    const code = character.charCodeAt(0);
    safe +=
      code < 0x20 || code === 0x7f || character === '%'
        ? `%${code.toString(16).toUpperCase().padStart(2, '0')}`
        : character;
  }
  return safe;
}

function frame(type: string, id: string | undefined, data: unknown): string {
  const idLine = id === undefined ? '' : `id: ${sseFieldValue(id)}\n`;
  return `event: ${sseFieldValue(type)}\n${idLine}data: ${JSON.stringify(data)}\n\n`;
}

function matches(filter: StreamFilter, tenant: string, taskId: string | undefined, agentId: string): boolean {
  if (filter.tenant !== tenant) return false;
  if (filter.agentToken !== undefined && !speaksFor(filter.agentToken, agentId)) return false;
  if (filter.taskIds.size === 0 && filter.agentIds.size === 0) return true;
  return (taskId !== undefined && filter.taskIds.has(taskId)) || filter.agentIds.has(agentId);
}

/** The revocations in force for the filter's tasks, then for its agents' tasks, each revocation once. */
function revocationSnapshot(authority: Authority, filter: StreamFilter): string[] {
  const frames: string[] = [];
  const seen = new Set<string>();
  const visible = (revocation: Revocation): boolean =>
    filter.agentToken === undefined || speaksFor(filter.agentToken, revocation.agentId);
  const data = (revocation: Revocation): Record<string, unknown> => {
    const event = { ...revocationEvent(revocation), snapshot: true };
    return filter.agentToken === undefined ? event : forAgentToken(event);
  };
  for (const taskId of filter.taskIds) {
    const view = authority.task(filter.tenant, taskId);
    if (view.revoked && view.revocation !== undefined && visible(view.revocation) && !seen.has(view.revocation.id)) {
      seen.add(view.revocation.id);
      frames.push(frame('revocation', view.revocation.id, data(view.revocation)));
    }
  }
  for (const agentId of filter.agentIds) {
    for (const revocation of authority.revokedTasksOfAgent(filter.tenant, agentId)) {
      if (seen.has(revocation.id) || !visible(revocation)) continue;
      seen.add(revocation.id);
      frames.push(frame('revocation', revocation.id, data(revocation)));
    }
  }
  return frames;
}

/** The escalations in force for the filter's agents (each scope of an agent its own event). */
function escalationSnapshot(authority: Authority, filter: StreamFilter): string[] {
  const frames: string[] = [];
  for (const agentId of filter.agentIds) {
    if (filter.agentToken !== undefined && !speaksFor(filter.agentToken, agentId)) continue;
    for (const escalation of authority.escalationsOf(filter.tenant, agentId)) {
      frames.push(
        frame('escalation', `escalation-${agentId}-${escalation.atMs}`, {
          ...escalationEvent(escalation),
          snapshot: true,
        }),
      );
    }
  }
  return frames;
}

/**
 * What a subscriber gets on connect, in one write: the retry hint, the current state matching its filter (so a
 * revocation decided before it connected is not missed), then `ready`.
 */
function connectSnapshot(authority: Authority, filter: StreamFilter): string {
  const frames = [
    ...(filter.types.has('revocation') ? revocationSnapshot(authority, filter) : []),
    ...(filter.types.has('escalation') ? escalationSnapshot(authority, filter) : []),
  ];
  const ready = frame('ready', undefined, {
    snapshot: frames.length,
    types: [...filter.types],
    taskIds: [...filter.taskIds],
    agentIds: [...filter.agentIds],
  });
  // Tell the client how long to wait before reconnecting.
  const retry = 'retry: 1000\n\n';
  return retry + frames.join('') + ready;
}

/** How long an ended stream may take to flush to its subscriber before its connection is closed anyway. */
const END_FLUSH_MS = 1000;

/**
 * Ends a stream and closes its connection (a stream's connection serves nothing after it): once the end is flushed,
 * or after END_FLUSH_MS when the subscriber does not read. Left to keep-alive, it would stay open, idle, after the
 * server began closing.
 */
function endStream(response: ServerResponse, last?: string): void {
  const socket = response.socket;
  const timer = setTimeout(() => socket?.destroy(), END_FLUSH_MS);
  timer.unref();
  response.end(last, () => {
    clearTimeout(timer);
    socket?.destroySoon();
  });
}

export function createStreamHub(options: {
  killSwitch: KillSwitch;
  authority: Authority;
  logger: Logger;
  heartbeatMs: number;
  /** @default 1000 */
  maxClients?: number;
  /** @default 100 */
  maxClientsPerTenant?: number;
}): StreamHub {
  const { authority, logger } = options;
  const maxClients = options.maxClients ?? 1000;
  const maxClientsPerTenant = options.maxClientsPerTenant ?? 100;
  const clients = new Set<Client>();
  /** Per tenant, its open connections (counted from attach to close, whatever ended them). */
  const perTenant = new Map<string, number>();
  let open = 0;
  /** Set by stop(): the server is closing, and no stream may outlive it. */
  let stopped = false;

  function closed(tenant: string): void {
    open -= 1;
    const left = (perTenant.get(tenant) ?? 0) - 1;
    if (left > 0) perTenant.set(tenant, left);
    else perTenant.delete(tenant);
  }

  function send(client: Client, text: string): void {
    if (client.response.writableEnded || client.response.destroyed) {
      clients.delete(client);
      return;
    }
    if (client.response.writableLength > MAX_BUFFERED) {
      logger.warn({ buffered: client.response.writableLength }, 'disconnecting a stream subscriber that does not read');
      clients.delete(client);
      client.response.destroy();
      return;
    }
    client.response.write(text);
    // Node's ServerResponse corks the socket and flushes on the next tick; a kill is decided inside longer
    // synchronous work (the processor's batch), so flush now rather than when that work yields.
    client.response.socket?.uncork();
  }

  function broadcast(
    type: StreamEventType,
    tenant: string,
    taskId: string | undefined,
    agentId: string,
    id: string | undefined,
    data: Record<string, unknown>,
  ): void {
    let text: string | undefined;
    let agentText: string | undefined;
    for (const client of clients) {
      if (!client.filter.types.has(type) || !matches(client.filter, tenant, taskId, agentId)) continue;
      if (client.filter.agentToken === undefined) send(client, (text ??= frame(type, id, data)));
      else send(client, (agentText ??= frame(type, id, forAgentToken(data))));
    }
  }

  const unsubscribeKillSwitch = options.killSwitch.subscribe((message) => {
    if (clients.size === 0) return;
    if (message.type === 'revocation') {
      const r = message.revocation;
      broadcast('revocation', r.tenant, r.taskId, r.agentId, r.id, revocationEvent(r));
    } else {
      const a = message.alert;
      broadcast('alert', a.tenant, a.taskId, a.agentId, a.id, alertEvent(a));
    }
  });
  const unsubscribeAuthority = authority.subscribe((event) => {
    const e = event.escalation;
    broadcast('escalation', e.tenant, undefined, e.agentId, `escalation-${e.agentId}-${e.atMs}`, escalationEvent(e));
  });

  const heartbeat = setInterval(() => {
    const text = `: ping ${Date.now()}\n\n`;
    for (const client of clients) send(client, text);
  }, options.heartbeatMs);
  heartbeat.unref();

  return {
    refusal(tenant) {
      const details = { retryAfterSeconds: REFUSED_RETRY_SECONDS };
      if (stopped) return new TriplineError('SHUTTING_DOWN', 'Tripline is stopping; connect again later', { details });
      if ((perTenant.get(tenant) ?? 0) >= maxClientsPerTenant)
        return new TriplineError(
          'STREAM_TENANT_LIMIT',
          `the tenant holds ${maxClientsPerTenant} open streams, as many as it may; close one or retry later`,
          { details },
        );
      if (open >= maxClients)
        return new TriplineError('STREAM_FULL', `${maxClients} streams are open, as many as this API holds`, {
          details,
        });
      return undefined;
    },
    attach(response, filter) {
      response.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      response.socket?.setNoDelay(true);
      response.socket?.setKeepAlive(true);
      if (stopped) {
        // A subscriber let in before stop() (its request was on its way) would otherwise be held open by nothing
        // and keep the server from closing: it is ended at once, and reconnects (after the retry hint) elsewhere.
        endStream(response, 'retry: 1000\n\n');
        return;
      }
      const client: Client = { response, filter };
      open += 1;
      perTenant.set(filter.tenant, (perTenant.get(filter.tenant) ?? 0) + 1);
      response.once('close', () => {
        clients.delete(client);
        closed(filter.tenant);
      });
      response.on('error', (error) => {
        logger.debug({ err: messageOf(error) }, 'stream subscriber went away');
        clients.delete(client);
      });
      response.write(connectSnapshot(authority, filter));
      clients.add(client);
    },
    verification(record) {
      broadcast(
        'verification',
        record.tenant,
        record.taskId,
        record.agentId,
        `verification-${record.revocationId}-${record.version}`,
        verificationEvent(record),
      );
    },
    clients: () => clients.size,
    stop() {
      unsubscribeKillSwitch();
      unsubscribeAuthority();
      clearInterval(heartbeat);
      stopped = true;
      for (const client of clients) endStream(client.response);
      clients.clear();
    },
  };
}
