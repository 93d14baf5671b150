/**
 * A tool call's arguments and result where instrumentations record them outside the tool attributes
 * (TOOL_ARGUMENT_ATTRIBUTES, TOOL_RESULT_ATTRIBUTES): in span events, or in the GenAI structured message lists.
 * Pure and bounded: at most MAX_TOOL_SPAN_EVENTS events are looked at, message lists longer than
 * MAX_MESSAGES_LENGTH are not parsed (their text is read as it is), and odd input gives no content, never an
 * exception.
 *
 * - The older GenAI event conventions (Strands Agents by default): on a tool span, the event `gen_ai.tool.message`
 *   holds the arguments in its attribute `content`, and the event `gen_ai.choice` the result in `message`;
 * - the GenAI structured messages, `gen_ai.input.messages` / `gen_ai.output.messages` (JSON lists of
 *   `{role, parts}`), as span attributes or as attributes of any span event (Strands with
 *   `OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`: the event
 *   `gen_ai.client.inference.operation.details`): a `tool_call` part's `arguments`, a `tool_call_response` part's
 *   `response` (the part whose `id` is the span's `gen_ai.tool.call.id`, else the first).
 *
 * The span attributes win over the events; in the events, the structured messages over the older events.
 */
import { ATTR, TOOL_CONTENT_EVENTS } from '../../schemas/conventions.ts';
import type { OtlpKeyValue, OtlpSpanEvent } from '../../schemas/otlp.ts';
import { MAX_ARGUMENTS_LENGTH } from './arguments.ts';
import { stringAttr } from './attribute-values.ts';
import type { Attributes } from './attribute-values.ts';
import { MAX_RESULT_LENGTH } from './counterparties.ts';

/** Most span events looked at per tool span (a tool span has a handful). */
export const MAX_TOOL_SPAN_EVENTS = 64;
/** Longest message list parsed; a longer one is read as text, as a long tool attribute is. */
export const MAX_MESSAGES_LENGTH = MAX_ARGUMENTS_LENGTH + MAX_RESULT_LENGTH;
/** Most messages, and parts per message, looked at in one list. */
const MAX_MESSAGES = 64;

/**
 * Tool content read from outside the tool attributes, with where it was read: the key under which a stored event
 * keeps it (`gen_ai.tool.message.content`, `gen_ai.choice.message`, `gen_ai.input.messages`,
 * `gen_ai.output.messages`) and whether that key is one of the span's own attributes.
 */
export interface FoundContent {
  text: string;
  key: string;
  onSpan: boolean;
}

export interface OutsideToolContent {
  arguments?: FoundContent;
  result?: FoundContent;
}

type Part = 'tool_call' | 'tool_call_response';

/** The arguments and the result of a tool span from its message attributes and events (see the module's comment). */
export function toolContentOutsideAttributes(
  attributes: Attributes,
  events: readonly OtlpSpanEvent[] | undefined,
  want: { arguments: boolean; result: boolean },
): OutsideToolContent {
  const content: OutsideToolContent = {};
  if (!want.arguments && !want.result) return content;
  const callId = stringAttr(attributes, ATTR.toolCallId);
  if (want.arguments) {
    const messages = stringAttr(attributes, ATTR.genAiInputMessages);
    const text = messages === undefined ? undefined : partContent(messages, 'tool_call', callId);
    if (text !== undefined) content.arguments = { text, key: ATTR.genAiInputMessages, onSpan: true };
  }
  if (want.result) {
    const messages = stringAttr(attributes, ATTR.genAiOutputMessages);
    const text = messages === undefined ? undefined : partContent(messages, 'tool_call_response', callId);
    if (text !== undefined) content.result = { text, key: ATTR.genAiOutputMessages, onSpan: true };
  }
  return Array.isArray(events) ? fromEvents(content, events, want, callId) : content;
}

function fromEvents(
  content: OutsideToolContent,
  events: readonly OtlpSpanEvent[],
  want: { arguments: boolean; result: boolean },
  callId: string | undefined,
): OutsideToolContent {
  let legacyArguments: FoundContent | undefined;
  let legacyResult: FoundContent | undefined;
  const count = Math.min(events.length, MAX_TOOL_SPAN_EVENTS);
  for (let index = 0; index < count; index += 1) {
    const event = events[index];
    const attributes = event?.attributes;
    if (!Array.isArray(attributes)) continue;
    const needArguments = want.arguments && content.arguments === undefined;
    const needResult = want.result && content.result === undefined;
    if (!needArguments && !needResult) break;
    if (needArguments) {
      const messages = eventString(attributes, ATTR.genAiInputMessages);
      const text = messages === undefined ? undefined : partContent(messages, 'tool_call', callId);
      if (text !== undefined) content.arguments = { text, key: ATTR.genAiInputMessages, onSpan: false };
      else if (legacyArguments === undefined && event?.name === TOOL_CONTENT_EVENTS.arguments.event) {
        const legacy = eventString(attributes, TOOL_CONTENT_EVENTS.arguments.attribute);
        if (legacy !== undefined)
          legacyArguments = { text: legacy, key: TOOL_CONTENT_EVENTS.arguments.key, onSpan: false };
      }
    }
    if (needResult) {
      const messages = eventString(attributes, ATTR.genAiOutputMessages);
      const text = messages === undefined ? undefined : partContent(messages, 'tool_call_response', callId);
      if (text !== undefined) content.result = { text, key: ATTR.genAiOutputMessages, onSpan: false };
      else if (legacyResult === undefined && event?.name === TOOL_CONTENT_EVENTS.result.event) {
        const legacy = eventString(attributes, TOOL_CONTENT_EVENTS.result.attribute);
        if (legacy !== undefined) legacyResult = { text: legacy, key: TOOL_CONTENT_EVENTS.result.key, onSpan: false };
      }
    }
  }
  if (want.arguments && content.arguments === undefined && legacyArguments !== undefined)
    content.arguments = legacyArguments;
  if (want.result && content.result === undefined && legacyResult !== undefined) content.result = legacyResult;
  return content;
}

/** An event attribute's string value (the last one of a repeated key, as for span attributes), or undefined. */
function eventString(attributes: readonly OtlpKeyValue[], key: string): string | undefined {
  let found: string | undefined;
  for (const attribute of attributes) {
    if (attribute.key !== key) continue;
    const text = attribute.value?.stringValue;
    if (typeof text === 'string' && text !== '') found = text;
  }
  return found;
}

/**
 * The content of the `kind` part of a message list (the one whose `id` is `callId`, else the first), as text (JSON
 * unless the part held a string); the list's own text when it is too long to parse; undefined when the list holds
 * no such part or is no JSON list.
 */
function partContent(messages: string, kind: Part, callId: string | undefined): string | undefined {
  if (messages.length > MAX_MESSAGES_LENGTH) return messages;
  if (!/^\s*\[/.test(messages)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(messages);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  const field = kind === 'tool_call' ? 'arguments' : 'response';
  let first: unknown;
  let found = false;
  for (const message of parsed.slice(0, MAX_MESSAGES)) {
    const parts = isRecord(message) ? message.parts : undefined;
    if (!Array.isArray(parts)) continue;
    for (const part of parts.slice(0, MAX_MESSAGES)) {
      if (!isRecord(part) || part.type !== kind || !(field in part)) continue;
      if (callId !== undefined && part.id === callId) return asText(part[field]);
      if (!found) {
        first = part[field];
        found = true;
      }
    }
  }
  return found ? asText(first) : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  // Parsed JSON: JSON.stringify gives text for anything but undefined, which parsed JSON never holds.
  return value === null ? undefined : JSON.stringify(value);
}
