/**
 * A tool call's detail (name, type, side effect, target, call id, and what its arguments and recorded result
 * say: services/core/counterparties.ts), and the attributes kept with a stored event, where the content of tool
 * calls (arguments and results) is replaced by a marker unless the deployment asks to store it. The content is
 * read from the tool attributes, else from the span's message attributes and events
 * (services/core/tool-event-content.ts).
 */
import {
  ATTR,
  TOOL_ARGUMENT_ATTRIBUTES,
  TOOL_RESULT_ATTRIBUTES,
  TOOL_CONTENT_EVENTS,
  TOOL_SIDE_EFFECTS,
} from '../../schemas/conventions.ts';
import type { ToolSideEffect } from '../../schemas/conventions.ts';
import type { AttributeValue, ToolCallDetail } from '../../schemas/events.ts';
import type { OtlpSpanEvent } from '../../schemas/otlp.ts';
import { targetFromArguments } from './arguments.ts';
import { LayeredAttributes, hostOf, isOneOf, stringAttr } from './attribute-values.ts';
import type { Attributes } from './attribute-values.ts';
import { toolContentFacts } from './counterparties.ts';
import type { CounterpartyHashing } from './counterparties.ts';
import { sha256Hex } from './sha256.ts';
import { unwrapToolArguments, unwrapToolResult } from './tool-envelopes.ts';
import { toolContentOutsideAttributes } from './tool-event-content.ts';
import type { OutsideToolContent } from './tool-event-content.ts';

/** A tool call's arguments and result as text (out of their envelopes), and what was read outside the tool attributes. */
export interface RecordedToolContent {
  arguments?: string;
  result?: string;
  outside: OutsideToolContent;
}

/** The content of a tool span: its tool attributes first, else its message attributes and span events. */
export function recordedToolContent(
  attributes: Attributes,
  events: readonly OtlpSpanEvent[] | undefined,
): RecordedToolContent {
  const args = toolArguments(attributes);
  const result = toolResult(attributes);
  const outside = toolContentOutsideAttributes(attributes, events, {
    arguments: args === undefined,
    result: result === undefined,
  });
  const content: RecordedToolContent = { outside };
  const readArguments =
    args ?? (outside.arguments === undefined ? undefined : unwrapToolArguments(outside.arguments.text));
  const readResult = result ?? (outside.result === undefined ? undefined : unwrapToolResult(outside.result.text));
  if (readArguments !== undefined) content.arguments = readArguments;
  if (readResult !== undefined) content.result = readResult;
  return content;
}

export function toolDetail(
  spanName: string,
  attributes: Attributes,
  hashing: CounterpartyHashing,
  content: RecordedToolContent = recordedToolContent(attributes, undefined),
): ToolCallDetail {
  const name =
    stringAttr(attributes, ATTR.toolName) ??
    stringAttr(attributes, ATTR.mcpToolName) ??
    stringAttr(attributes, ATTR.openInferenceToolName) ??
    stringAttr(attributes, ATTR.traceloopEntityName) ??
    toolNameFromSpanName(spanName);
  const detail: ToolCallDetail = { name };
  const type = stringAttr(attributes, ATTR.toolType);
  if (type !== undefined) detail.type = type;
  const sideEffect = stringAttr(attributes, ATTR.toolSideEffect);
  if (isOneOf<ToolSideEffect>(sideEffect, TOOL_SIDE_EFFECTS)) detail.sideEffect = sideEffect;
  const args = content.arguments;
  const target =
    stringAttr(attributes, ATTR.toolTarget) ??
    hostOf(stringAttr(attributes, ATTR.urlFull)) ??
    stringAttr(attributes, ATTR.serverAddress) ??
    targetFromArguments(args);
  if (target !== undefined) detail.target = target;
  const callId = stringAttr(attributes, ATTR.toolCallId);
  if (callId !== undefined) detail.callId = callId;
  const { result } = content;
  if (args !== undefined) detail.argumentsHash = contentHash(hashing, 'arguments', args);
  if (result !== undefined) detail.resultHash = contentHash(hashing, 'result', result);
  return { ...detail, ...toolContentFacts(args, result, hashing) };
}

/** Longest content hashed whole; a longer one is hashed by its first part and its length. */
export const MAX_HASHED_CONTENT = 64 * 1024;

/**
 * The keyed hash of a tool call's arguments or result (the secret, the tenant, what it is and the trimmed text,
 * newline-separated; 16 hex digits): equal content of one tenant compares equal, the content itself is not kept.
 */
export function contentHash(hashing: CounterpartyHashing, what: 'arguments' | 'result', text: string): string {
  const trimmed = text.trim();
  const bounded =
    trimmed.length > MAX_HASHED_CONTENT ? `${trimmed.slice(0, MAX_HASHED_CONTENT)}\n${trimmed.length}` : trimmed;
  return sha256Hex(`${hashing.secret}\n${hashing.tenant}\n${what}\n${bounded}`).slice(0, 16);
}

/**
 * The arguments a framework recorded for a tool call, as text (JSON where the framework wrote JSON), out of the
 * envelope of the framework's own call where it recorded one (services/core/tool-envelopes.ts).
 */
function toolArguments(attributes: Attributes): string | undefined {
  for (const key of TOOL_ARGUMENT_ATTRIBUTES) {
    const text = stringAttr(attributes, key);
    if (text !== undefined) return unwrapToolArguments(text);
  }
  return undefined;
}

/** The result a framework recorded for a tool call, as text (out of its envelope), or undefined when it recorded none. */
function toolResult(attributes: Attributes): string | undefined {
  for (const key of TOOL_RESULT_ATTRIBUTES) {
    const value = attributes.get(key);
    if (value !== undefined) return unwrapToolResult(Array.isArray(value) ? value.join('\n') : String(value));
  }
  return undefined;
}

function toolNameFromSpanName(spanName: string): string {
  const space = spanName.indexOf(' ');
  return space > 0 ? spanName.slice(space + 1) : spanName;
}

/** Attributes worth keeping with the stored event: scalars only, long values cut. */
export const MAX_KEPT_ATTRIBUTES = 64;
export const MAX_VALUE_LENGTH = 512;

const TOOL_CONTENT = new Set<string>([
  ...TOOL_ARGUMENT_ATTRIBUTES,
  ...TOOL_RESULT_ATTRIBUTES,
  ATTR.genAiInputMessages,
  ATTR.genAiOutputMessages,
  TOOL_CONTENT_EVENTS.arguments.key,
  TOOL_CONTENT_EVENTS.result.key,
]);

/** What stands for a tool's arguments or result in a stored event: `[not stored: 1,234 chars]`. */
export function notStoredMarker(length: number): string {
  const digits = String(length);
  let grouped = '';
  for (let i = 0; i < digits.length; i++)
    grouped += (i > 0 && (digits.length - i) % 3 === 0 ? ',' : '') + digits.charAt(i);
  return `[not stored: ${grouped} chars]`;
}

export function keptAttributes(attributes: Attributes, storeToolContent: boolean): Record<string, AttributeValue> {
  const kept: Record<string, AttributeValue> = {};
  let count = 0;
  if (attributes instanceof LayeredAttributes) {
    // The layers walked directly, in the view's order (a generator per span cost more than the copying it saves).
    const { resource, own } = attributes;
    for (const [key, value] of resource) {
      if (count >= MAX_KEPT_ATTRIBUTES) return kept;
      keepAttribute(kept, key, own.get(key) ?? value, storeToolContent);
      count += 1;
    }
    for (const [key, value] of own) {
      if (count >= MAX_KEPT_ATTRIBUTES) return kept;
      if (resource.has(key)) continue;
      keepAttribute(kept, key, value, storeToolContent);
      count += 1;
    }
    return kept;
  }
  for (const [key, value] of attributes) {
    if (count >= MAX_KEPT_ATTRIBUTES) break;
    keepAttribute(kept, key, value, storeToolContent);
    count += 1;
  }
  return kept;
}

function keepAttribute(
  kept: Record<string, AttributeValue>,
  key: string,
  value: AttributeValue | readonly AttributeValue[],
  storeToolContent: boolean,
): void {
  const text = Array.isArray(value) ? value.join(',') : (value as AttributeValue);
  if (!storeToolContent && TOOL_CONTENT.has(key)) kept[key] = notStoredMarker(String(text).length);
  else kept[key] = typeof text === 'string' && text.length > MAX_VALUE_LENGTH ? text.slice(0, MAX_VALUE_LENGTH) : text;
}

/**
 * Keeps with a stored event the tool content read from its span events (`gen_ai.tool.message.content`,
 * `gen_ai.choice.message`, `gen_ai.input.messages`, `gen_ai.output.messages`), as the content of tool attributes is
 * kept: the marker with the read content's length, or the content cut at MAX_VALUE_LENGTH when tool content is
 * stored; never over MAX_KEPT_ATTRIBUTES, never over an attribute of the span's own.
 */
export function keepOutsideContent(
  kept: Record<string, AttributeValue>,
  outside: OutsideToolContent,
  storeToolContent: boolean,
): void {
  for (const found of [outside.arguments, outside.result]) {
    if (found === undefined || found.onSpan || Object.hasOwn(kept, found.key)) continue;
    if (Object.keys(kept).length >= MAX_KEPT_ATTRIBUTES) return;
    keepAttribute(kept, found.key, found.text, storeToolContent);
  }
}
