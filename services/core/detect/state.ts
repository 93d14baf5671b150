/**
 * Per-task state: everything the features need about one task so far, folded in event by event.
 * `observe` mutates the state it is given and returns the same object (no copy per event: it runs on the
 * hot path). Time comes only from the events.
 */
import type { AgentEvent, Verdict } from '../../../schemas/events.ts';
import { observeParties, observePartyFacts, type PartyUse } from './parties.ts';
import { matchSameCall, newSameCallIndex } from './same-call.ts';
import type { CountedCall, SameCallIndex, SameCallSpan } from './same-call.ts';
import { boundedKey, classificationRank, eventHost, isEgress, isSecretRead, resourceKey, toolName } from './signals.ts';

/** Tool-to-tool transitions start from this pseudo-tool. */
export const START_TOOL = '^';
/** Cap on distinct keys kept per task and collection (resources, hosts, tools…); more are counted, not kept. */
export const MAX_TASK_KEYS = 512;

/** Events per minute, approximated with six 10-second buckets. */
export interface RateWindow {
  /** Bucket number (startMs / 10 s) of the newest bucket. */
  head: number;
  buckets: [number, number, number, number, number, number];
}

const BUCKET_MS = 10_000;
const BUCKETS = 6;

function newRate(): RateWindow {
  return { head: Number.NEGATIVE_INFINITY, buckets: [0, 0, 0, 0, 0, 0] };
}

/** Count an event at `ms`; returns the count over the last minute (the six newest buckets). */
function addRate(w: RateWindow, ms: number): number {
  const b = Math.floor(ms / BUCKET_MS);
  const buckets = w.buckets;
  if (b > w.head) {
    const gap = b - w.head;
    if (gap >= BUCKETS) buckets.fill(0);
    else for (let i = 1; i <= gap; i++) buckets[(w.head + i) % BUCKETS] = 0;
    w.head = b;
  }
  if (b > w.head - BUCKETS) buckets[b % BUCKETS] = (buckets[b % BUCKETS] ?? 0) + 1;
  return buckets[0] + buckets[1] + buckets[2] + buckets[3] + buckets[4] + buckets[5];
}

export interface ResourceUse {
  rows: number;
  bytes: number;
  accesses: number;
  /** Highest classification rank seen on this resource (-1 unknown). */
  classRank: number;
  /** The resource as first seen (for reasons), before normalisation. */
  example: string;
}

export interface TaskState {
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  startedMs: number;
  lastEventMs: number;
  endedMs: number | null;
  /**
   * The trace whose root span ended the task: its spans belong to the task whatever their timestamps say
   * (children end before their root, but clocks and timestamp precision differ), so they never count as
   * activity after the end.
   */
  endedByTrace: string | null;
  counts: { tool_call: number; data_access: number; privilege_change: number };
  events: number;
  errors: number;

  /** Calls per tool name, in first-use order. */
  tools: Map<string, number>;
  /** Tool before the current one (`^` at the start), i.e. the transition `prevTool → lastTool`. */
  prevTool: string;
  lastTool: string;
  /** Transition counts, key `from\u0001to` (at most MAX_TASK_KEYS; new transitions beyond are not kept). */
  transitions: Map<string, number>;

  /** Per resource key. */
  resources: Map<string, ResourceUse>;
  rows: number;
  bytes: number;
  /** Rows read from confidential or restricted data. */
  sensitiveRows: number;
  maxRowsPerAccess: number;
  maxBytesPerAccess: number;
  /** Highest classification rank reached (-1 none). */
  classRank: number;
  /** Classification ranks reached, as a bit set (1 << rank). */
  classBits: number;

  /** Hosts contacted (any direction) and hosts data was sent to. */
  hosts: Set<string>;
  egressHosts: Set<string>;
  /** Time of the first secret read in the task, and what it was. */
  secretReadMs: number | null;
  secretWhat: string;

  privilegeActions: Map<string, number>;
  /** Scopes held before the first privilege change of the task. */
  initialScopes: Set<string> | null;
  /** Scopes that appeared during the task and were not held at its start. */
  gainedScopes: Set<string>;
  unapprovedChanges: number;

  /** Failing (tool or resource) targets, for probing storms. */
  failingTargets: Set<string>;

  /** Counterparties met in the task's tool calls, `kind:key` → where first met (bounded: parties.ts). */
  parties: Map<string, PartyUse>;
  /** Largest amount-like argument of a sink call (0 none). */
  maxAmount: number;
  /** Tool calls whose result was recorded, and those whose result was not (or that said nothing about it). */
  resultsRecorded: number;
  resultsUnrecorded: number;

  eventRate: RateWindow;
  toolRate: RateWindow;
  errorRate: RateWindow;
  /** Counts over the last minute, as of the latest event. */
  eventsLastMinute: number;
  toolCallsLastMinute: number;
  errorsLastMinute: number;
  maxEventsPerMinute: number;
  maxToolCallsPerMinute: number;
  maxErrorsPerMinute: number;

  /**
   * The task's recent tool-call spans, so another instrumentation's record of a call already counted is folded into
   * that call instead of counted again (same-call.ts; bounded).
   */
  sameCalls: SameCallIndex;
  /** The last event folded in as another record of a counted call ('' none), and what it brought. */
  lastSameCallEventId: string;
  lastSameCall: SameCallSpan | undefined;

  /** Highest verdict score so far (set with `recordVerdict`). */
  maxScore: number;
  /** Id and resource key of the last data access folded in (saves `score` normalising it again). */
  lastDataEventId: string;
  lastResourceKey: string;
}

export function newTaskState(init: {
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  startMs: number;
}): TaskState {
  return {
    tenant: init.tenant,
    taskId: init.taskId,
    taskType: init.taskType,
    agentId: init.agentId,
    startedMs: init.startMs,
    lastEventMs: init.startMs,
    endedMs: null,
    endedByTrace: null,
    counts: { tool_call: 0, data_access: 0, privilege_change: 0 },
    events: 0,
    errors: 0,
    tools: new Map(),
    prevTool: START_TOOL,
    lastTool: START_TOOL,
    transitions: new Map(),
    resources: new Map(),
    rows: 0,
    bytes: 0,
    sensitiveRows: 0,
    maxRowsPerAccess: 0,
    maxBytesPerAccess: 0,
    classRank: -1,
    classBits: 0,
    hosts: new Set(),
    egressHosts: new Set(),
    secretReadMs: null,
    secretWhat: '',
    privilegeActions: new Map(),
    initialScopes: null,
    gainedScopes: new Set(),
    unapprovedChanges: 0,
    failingTargets: new Set(),
    parties: new Map(),
    maxAmount: 0,
    resultsRecorded: 0,
    resultsUnrecorded: 0,
    eventRate: newRate(),
    toolRate: newRate(),
    errorRate: newRate(),
    eventsLastMinute: 0,
    toolCallsLastMinute: 0,
    errorsLastMinute: 0,
    maxEventsPerMinute: 0,
    maxToolCallsPerMinute: 0,
    maxErrorsPerMinute: 0,
    sameCalls: newSameCallIndex(),
    lastSameCallEventId: '',
    lastSameCall: undefined,
    maxScore: 0,
    lastDataEventId: '',
    lastResourceKey: '',
  };
}

/** A count or size from an event: finite and positive, else 0. */
export function nonNegative(n: number | undefined): number {
  return n !== undefined && Number.isFinite(n) && n > 0 ? n : 0;
}

function addToSet(set: Set<string>, key: string): void {
  if (set.size < MAX_TASK_KEYS) set.add(boundedKey(key));
}

/** Count one more under `key`; a key not held yet is kept only while the map has fewer than MAX_TASK_KEYS. */
function countKey(map: Map<string, number>, key: string): void {
  const n = map.get(key);
  if (n !== undefined) map.set(key, n + 1);
  else if (map.size < MAX_TASK_KEYS) map.set(key, 1);
}

/**
 * Fold one event into its task's state. Mutates `state` and returns it. Events after `markEnded` are folded
 * too (the after-end rule needs them counted). Events may arrive slightly out of order; rates count them in
 * their own 10-second bucket while it is within the last minute.
 */
export function observe(state: TaskState, event: AgentEvent): TaskState {
  if (event.kind === 'tool_call') {
    const match = matchSameCall(state.sameCalls, event);
    if (match.same) {
      state.lastSameCallEventId = event.id;
      state.lastSameCall = match.span;
      observeSameCall(state, event, match.call);
      return state;
    }
  }
  const t = event.startMs;
  state.events++;
  state.counts[event.kind]++;
  noteSpan(state, event);

  state.eventsLastMinute = addRate(state.eventRate, t);
  if (state.eventsLastMinute > state.maxEventsPerMinute) state.maxEventsPerMinute = state.eventsLastMinute;
  if (event.error) countError(state, t);
  observeReach(state, event);

  switch (event.kind) {
    case 'tool_call': {
      const name = toolName(event);
      countKey(state.tools, name);
      state.prevTool = state.lastTool;
      state.lastTool = name;
      countKey(state.transitions, state.prevTool + '\u0001' + name);
      state.toolCallsLastMinute = addRate(state.toolRate, t);
      if (state.toolCallsLastMinute > state.maxToolCallsPerMinute)
        state.maxToolCallsPerMinute = state.toolCallsLastMinute;
      if (event.error) addToSet(state.failingTargets, name + ' ' + (event.tool?.target ?? ''));
      if (event.tool !== undefined) observeParties(state, event.tool);
      break;
    }
    case 'data_access': {
      const d = event.data;
      const resource = d?.resource ?? event.name;
      const key = resourceKey(resource);
      state.lastDataEventId = event.id;
      state.lastResourceKey = key;
      const rows = nonNegative(d?.rows);
      const bytes = nonNegative(d?.bytes);
      const rank = classificationRank(d?.classification);
      let use = state.resources.get(key);
      if (use === undefined && state.resources.size < MAX_TASK_KEYS) {
        use = { rows: 0, bytes: 0, accesses: 0, classRank: -1, example: boundedKey(resource) };
        state.resources.set(key, use);
      }
      if (use !== undefined) {
        use.rows += rows;
        use.bytes += bytes;
        use.accesses++;
        if (rank > use.classRank) use.classRank = rank;
      }
      state.rows += rows;
      if (rank >= 2) state.sensitiveRows += rows;
      state.bytes += bytes;
      if (rows > state.maxRowsPerAccess) state.maxRowsPerAccess = rows;
      if (bytes > state.maxBytesPerAccess) state.maxBytesPerAccess = bytes;
      if (rank >= 0) {
        state.classBits |= 1 << rank;
        if (rank > state.classRank) state.classRank = rank;
      }
      if (event.error) addToSet(state.failingTargets, key);
      break;
    }
    case 'privilege_change': {
      const p = event.privilege;
      countKey(state.privilegeActions, boundedKey(p?.action ?? event.name));
      if (p !== undefined) {
        state.initialScopes ??= new Set(p.scopesBefore.slice(0, MAX_TASK_KEYS).map(boundedKey));
        const initial = state.initialScopes;
        for (const s of p.scopesBefore) if (!initial.has(boundedKey(s))) addToSet(state.gainedScopes, s);
        for (const s of p.scopesAfter) if (!initial.has(boundedKey(s))) addToSet(state.gainedScopes, s);
        if (p.approved === false) state.unapprovedChanges++;
      }
      break;
    }
  }
  return state;
}

/** The span's time joins the task's extent. */
function noteSpan(state: TaskState, event: AgentEvent): void {
  if (event.startMs < state.startedMs) state.startedMs = event.startMs;
  const last = Math.max(event.startMs, event.endMs);
  if (last > state.lastEventMs) state.lastEventMs = last;
}

function countError(state: TaskState, t: number): void {
  state.errors++;
  state.errorsLastMinute = addRate(state.errorRate, t);
  if (state.errorsLastMinute > state.maxErrorsPerMinute) state.maxErrorsPerMinute = state.errorsLastMinute;
}

/** Where the event reached: the hosts it contacted or sent to, and a secret it read. */
function observeReach(state: TaskState, event: AgentEvent): void {
  const host = eventHost(event);
  if (host !== undefined) {
    addToSet(state.hosts, host);
    if (isEgress(event, host)) addToSet(state.egressHosts, host);
  }
  if (state.secretReadMs === null && isSecretRead(event)) {
    state.secretReadMs = event.startMs;
    state.secretWhat = boundedKey(
      event.kind === 'data_access' ? (event.data?.resource ?? event.name) : toolName(event),
    );
  }
}

/**
 * Another record of a call already counted (same-call.ts): no second call, event or step, but what it says of the
 * call is the call's — its target and hosts, its counterparties and amount, a result or a failure the counted
 * record did not show.
 */
function observeSameCall(state: TaskState, event: AgentEvent, call: CountedCall): void {
  noteSpan(state, event);
  if (event.error && !call.error) {
    call.error = true;
    countError(state, event.startMs);
    addToSet(state.failingTargets, toolName(event) + ' ' + (event.tool?.target ?? ''));
  }
  observeReach(state, event);
  const tool = event.tool;
  if (tool === undefined) return;
  if (tool.resultRecorded === true && !call.resultRecorded) {
    call.resultRecorded = true;
    state.resultsRecorded++;
    if (state.resultsUnrecorded > 0) state.resultsUnrecorded--;
  }
  observePartyFacts(state, tool);
}

/**
 * The other record of a counted call that `event` was folded in as (its id, what it brought), or undefined when
 * `event` counted as a call, or is no tool call. Read right after `observe(state, event)`.
 */
export function sameCallOf(state: TaskState, event: Pick<AgentEvent, 'id'>): SameCallSpan | undefined {
  return state.lastSameCallEventId === event.id ? state.lastSameCall : undefined;
}

/**
 * Mark the task ended at `endMs` (the earliest end wins if called twice), by the root span of `traceId` when a
 * trace's root ended it. Mutates and returns `state`.
 */
export function markEnded(state: TaskState, endMs: number, traceId?: string): TaskState {
  if (state.endedMs === null || endMs < state.endedMs) state.endedMs = endMs;
  if (endMs > state.lastEventMs) state.lastEventMs = endMs;
  if (traceId !== undefined && traceId !== '') state.endedByTrace ??= traceId;
  return state;
}

/** Remember a verdict's score as the task's highest so far. Mutates and returns `state`. */
export function recordVerdict(state: TaskState, verdict: Pick<Verdict, 'score'>): TaskState {
  if (verdict.score > state.maxScore) state.maxScore = verdict.score;
  return state;
}
