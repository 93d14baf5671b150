/**
 * One tool call, however many instrumentations record it. Two instrumentations wrapping one call (OpenInference and
 * a framework's own GenAI spans, OpenInference and OpenLLMetry) give two tool-call spans, one the direct parent of
 * the other. A tool-call span whose direct parent in the task is a tool-call span of the same call is that call
 * again: counted once, its facts (arguments, counterparties, result, target, error) folded into the call.
 *
 * Same call: the same tool call id when both spans carry one, else the same tool name. A span takes at most one
 * same-call child (one call has one record per instrumentation), so the count does not depend on which span arrives
 * first, and a tool that calls itself n times without call ids counts n calls, not one: only its first inner call
 * is taken for its own second record (without call ids the two cannot be told apart). Spans arrive in any order: a
 * child waits (bounded) for its parent.
 *
 * Pure: the index lives in the task's detector state (state.ts) and is bounded by MAX_SAME_CALL_SPANS.
 */
import type { AgentEvent } from '../../../schemas/events.ts';
import { toolName } from './signals.ts';

/**
 * Tool-call spans remembered per task, and as many children waiting for their parent: the oldest are forgotten
 * first (a span whose other record arrives after this many tool calls of its task counts twice).
 */
export const MAX_SAME_CALL_SPANS = 256;

/** A call as counted: the event that counted it, and what of the call the task state holds already. */
export interface CountedCall {
  eventId: string;
  error: boolean;
  resultRecorded: boolean;
  argumentsHashed: boolean;
  resultHashed: boolean;
}

export interface CallSpanLike {
  name: string;
  callId: string | undefined;
}

export interface CallSpan extends CallSpanLike {
  call: CountedCall;
  /** A same-call child is merged into it already (a span records one call: a second such child is another call). */
  childTaken: boolean;
  /** Its keys in `waiting` while it waits for its parent. */
  waitingKeys: string[];
}

export interface SameCallIndex {
  /** Tool-call spans by `traceId/spanId`, oldest first. */
  spans: Map<string, CallSpan>;
  /**
   * Spans whose parent span was not seen yet, by the parent's key and the child's tool name (`n` + name) or call id
   * (`i` + id): the first such child of a parent, which the parent merges with when it comes.
   */
  waiting: Map<string, string>;
}

/** What a span that records a call already counted brings to it. */
export interface SameCallSpan {
  /** The id of the event that counted the call. */
  of: string;
  /** The call's first arguments hash (the spans before it recorded none). */
  firstArguments: boolean;
  /** The call's first result hash. */
  firstResult: boolean;
}

/** The outcome of matching a tool-call span: a call of its own, or another record of `call`. */
export type SameCallMatch = { same: false; call: CountedCall } | { same: true; call: CountedCall; span: SameCallSpan };

export function newSameCallIndex(): SameCallIndex {
  return { spans: new Map(), waiting: new Map() };
}

function spanKey(traceId: string, spanId: string): string {
  return `${traceId}/${spanId}`;
}

function waitingKey(parentKey: string, by: 'name' | 'id', value: string): string {
  return `${parentKey}\u0000${by === 'name' ? 'n' : 'i'}${value}`;
}

function callIdOf(event: AgentEvent): string | undefined {
  const id = event.tool?.callId;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

/** The rule: the same call id when both have one, else the same tool name. */
export function isSameCall(a: CallSpanLike, b: CallSpanLike): boolean {
  if (a.callId !== undefined && b.callId !== undefined) return a.callId === b.callId;
  return a.name === b.name;
}

function remember(index: SameCallIndex, key: string, span: CallSpan): void {
  index.spans.set(key, span);
  if (index.spans.size > MAX_SAME_CALL_SPANS) {
    const oldest = index.spans.keys().next().value;
    if (oldest !== undefined) index.spans.delete(oldest);
  }
}

/** `span` (under `spanKey`) waits for its parent under `key`, unless an earlier child of that parent waits there. */
function wait(index: SameCallIndex, key: string, spanKey: string, span: CallSpan): void {
  if (index.waiting.has(key)) return;
  index.waiting.set(key, spanKey);
  span.waitingKeys.push(key);
  if (index.waiting.size > MAX_SAME_CALL_SPANS) {
    const oldest = index.waiting.keys().next().value;
    if (oldest !== undefined) index.waiting.delete(oldest);
  }
}

/** The first child of the span `parentKey` that waits for it and records the same call, taken off the waiting list. */
function takeWaitingChild(index: SameCallIndex, parentKey: string, self: CallSpanLike): CallSpan | undefined {
  const byName = waitingKey(parentKey, 'name', self.name);
  const keys = self.callId === undefined ? [byName] : [waitingKey(parentKey, 'id', self.callId), byName];
  for (const key of keys) {
    const childKey = index.waiting.get(key);
    if (childKey === undefined) continue;
    const child = index.spans.get(childKey);
    if (child === undefined || !isSameCall(child, self)) continue;
    for (const waitingKey of child.waitingKeys)
      if (index.waiting.get(waitingKey) === childKey) index.waiting.delete(waitingKey);
    child.waitingKeys = [];
    return child;
  }
  return undefined;
}

function newCall(event: AgentEvent): CountedCall {
  return {
    eventId: event.id,
    error: event.error,
    resultRecorded: event.tool?.resultRecorded === true,
    argumentsHashed: event.tool?.argumentsHash !== undefined,
    resultHashed: event.tool?.resultHash !== undefined,
  };
}

/** Another record of `call`: what it brings first (the counted call takes it: the caller folds it in once). */
function sameAs(call: CountedCall, event: AgentEvent): SameCallMatch {
  const firstArguments = !call.argumentsHashed && event.tool?.argumentsHash !== undefined;
  const firstResult = !call.resultHashed && event.tool?.resultHash !== undefined;
  if (firstArguments) call.argumentsHashed = true;
  if (firstResult) call.resultHashed = true;
  return { same: true, call, span: { of: call.eventId, firstArguments, firstResult } };
}

/**
 * Matches a tool-call event of the task against the tool-call spans before it, and remembers it. Never throws; an
 * event without a span id is a call of its own.
 */
export function matchSameCall(index: SameCallIndex, event: AgentEvent): SameCallMatch {
  const self: CallSpanLike = { name: toolName(event), callId: callIdOf(event) };
  if (event.spanId === '') return { same: false, call: newCall(event) };
  const key = spanKey(event.traceId, event.spanId);
  const known = index.spans.get(key);
  // The same span again (a replay past the processor's de-duplication): counted as before, or the record it was.
  if (known !== undefined)
    return known.call.eventId === event.id ? { same: false, call: known.call } : sameAs(known.call, event);
  const parentKey = event.parentSpanId === '' ? undefined : spanKey(event.traceId, event.parentSpanId);
  const parent = parentKey === undefined ? undefined : index.spans.get(parentKey);
  if (parent !== undefined && !parent.childTaken && isSameCall(self, parent)) {
    parent.childTaken = true;
    remember(index, key, { ...self, call: parent.call, childTaken: false, waitingKeys: [] });
    return sameAs(parent.call, event);
  }
  const child = takeWaitingChild(index, key, self);
  const call = child?.call ?? newCall(event);
  const span: CallSpan = { ...self, call, childTaken: child !== undefined, waitingKeys: [] };
  remember(index, key, span);
  // Its own parent may still come, and be a third record of the call (or this one's first).
  if (parentKey !== undefined && parent === undefined) {
    wait(index, waitingKey(parentKey, 'name', self.name), key, span);
    if (self.callId !== undefined) wait(index, waitingKey(parentKey, 'id', self.callId), key, span);
  }
  return child === undefined ? { same: false, call } : sameAs(call, event);
}

/** The event marked as another record of the call `of` counted (`ToolCallDetail.sameCallOf`), as it is stored. */
export function markedSameCall(event: AgentEvent, of: string): AgentEvent {
  if (event.tool === undefined || event.tool.sameCallOf === of) return event;
  return { ...event, tool: { ...event.tool, sameCallOf: of } };
}
