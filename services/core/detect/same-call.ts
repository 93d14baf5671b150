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
 * first (a span whose other record arrives after this many tool calls of its task counts twice). Two records of a
 * call end within the same export or the next, so a few dozen are plenty.
 */
export const MAX_SAME_CALL_SPANS = 64;

/**
 * Records one call can have (one per instrumentation): a deeper chain of same-named tool spans is a tool calling
 * itself, not a fourth instrumentation, and each further span counts as a call (a chain must not hide calls).
 */
export const MAX_RECORDS_PER_CALL = 3;

/** A call as counted: the event that counted it, and what of the call the task state holds already. */
export interface CountedCall {
  eventId: string;
  /** Spans recorded as this call so far (at most MAX_RECORDS_PER_CALL). */
  records: number;
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
  traceId: string;
  call: CountedCall;
  /** A same-call child is merged into it already (a span records one call: a second such child is another call). */
  childTaken: boolean;
}

/**
 * Keyed by span ids, the event's own strings (a span id is 64 random bits: a task's spans of two traces do not
 * share one, and the trace id is compared anyway), so remembering a span allocates no key.
 */
export interface SameCallIndex {
  /** Tool-call spans by span id, oldest first. */
  spans: Map<string, CallSpan>;
  /** Spans whose parent span was not seen yet, by the parent's span id, in arrival order. */
  waiting: Map<string, CallSpan[]>;
  /** The spans in `waiting`, all lists together (at most MAX_SAME_CALL_SPANS). */
  waitingCount: number;
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
  return { spans: new Map(), waiting: new Map(), waitingCount: 0 };
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

function remember(index: SameCallIndex, spanId: string, span: CallSpan): void {
  index.spans.set(spanId, span);
  if (index.spans.size > MAX_SAME_CALL_SPANS) {
    const oldest = index.spans.keys().next().value;
    if (oldest !== undefined) index.spans.delete(oldest);
  }
}

/** `span` waits for its parent `parentSpanId`; past the bound, the oldest waiting span is forgotten. */
function wait(index: SameCallIndex, parentSpanId: string, span: CallSpan): void {
  const list = index.waiting.get(parentSpanId);
  if (list === undefined) index.waiting.set(parentSpanId, [span]);
  else list.push(span);
  index.waitingCount += 1;
  while (index.waitingCount > MAX_SAME_CALL_SPANS) {
    const first = index.waiting.entries().next().value;
    if (first === undefined) break;
    const [parent, oldest] = first;
    oldest.shift();
    if (oldest.length === 0) index.waiting.delete(parent);
    index.waitingCount -= 1;
  }
}

/**
 * The child of the span `spanId` that waits for it and records the same call (one with the same call id first, else
 * the first to arrive), taken off the waiting list.
 */
function takeWaitingChild(
  index: SameCallIndex,
  spanId: string,
  traceId: string,
  self: CallSpanLike,
): CallSpan | undefined {
  const list = index.waiting.get(spanId);
  if (list === undefined) return undefined;
  const candidate = (child: CallSpan): boolean =>
    child.traceId === traceId && child.call.records < MAX_RECORDS_PER_CALL && isSameCall(child, self);
  let at = self.callId === undefined ? -1 : list.findIndex((child) => child.callId === self.callId && candidate(child));
  if (at < 0) at = list.findIndex(candidate);
  if (at < 0) return undefined;
  const [child] = list.splice(at, 1);
  if (list.length === 0) index.waiting.delete(spanId);
  index.waitingCount -= 1;
  return child;
}

function newCall(event: AgentEvent): CountedCall {
  return {
    eventId: event.id,
    records: 1,
    error: event.error,
    resultRecorded: event.tool?.resultRecorded === true,
    argumentsHashed: event.tool?.argumentsHash !== undefined,
    resultHashed: event.tool?.resultHash !== undefined,
  };
}

/**
 * Another record of `call`: what it brings first (the counted call takes it: the caller folds it in once). `again`:
 * a record of the call seen before (a replay), not one more.
 */
function sameAs(call: CountedCall, event: AgentEvent, again = false): SameCallMatch {
  const firstArguments = !call.argumentsHashed && event.tool?.argumentsHash !== undefined;
  const firstResult = !call.resultHashed && event.tool?.resultHash !== undefined;
  if (firstArguments) call.argumentsHashed = true;
  if (firstResult) call.resultHashed = true;
  if (!again) call.records += 1;
  return { same: true, call, span: { of: call.eventId, firstArguments, firstResult } };
}

/**
 * Matches a tool-call event of the task against the tool-call spans before it, and remembers it. Never throws; an
 * event without a span id is a call of its own.
 */
export function matchSameCall(index: SameCallIndex, event: AgentEvent): SameCallMatch {
  const { spanId, parentSpanId, traceId } = event;
  if (spanId === '') return { same: false, call: newCall(event) };
  const self: CallSpanLike = { name: toolName(event), callId: callIdOf(event) };
  const known = index.spans.get(spanId);
  // The same span again (a replay past the processor's de-duplication): counted as before, or the record it was.
  if (known !== undefined && known.traceId === traceId)
    return known.call.eventId === event.id ? { same: false, call: known.call } : sameAs(known.call, event, true);
  const parent = parentSpanId === '' ? undefined : index.spans.get(parentSpanId);
  if (
    parent !== undefined &&
    parent.traceId === traceId &&
    !parent.childTaken &&
    parent.call.records < MAX_RECORDS_PER_CALL &&
    isSameCall(self, parent)
  ) {
    parent.childTaken = true;
    remember(index, spanId, { ...self, traceId, call: parent.call, childTaken: false });
    return sameAs(parent.call, event);
  }
  const child = takeWaitingChild(index, spanId, traceId, self);
  const call = child?.call ?? newCall(event);
  const span: CallSpan = { ...self, traceId, call, childTaken: child !== undefined };
  remember(index, spanId, span);
  // Its own parent may still come, and be a third record of the call (or this one's first).
  if (parentSpanId !== '' && parent === undefined) wait(index, parentSpanId, span);
  return child === undefined ? { same: false, call } : sameAs(call, event);
}

/** The event marked as another record of the call `of` counted (`ToolCallDetail.sameCallOf`), as it is stored. */
export function markedSameCall(event: AgentEvent, of: string): AgentEvent {
  if (event.tool === undefined || event.tool.sameCallOf === of) return event;
  return { ...event, tool: { ...event.tool, sameCallOf: of } };
}
