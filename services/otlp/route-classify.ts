/**
 * The classification of services/core/classify.ts, mirrored on a span's bytes for the gateway's byte router
 * (services/otlp/route.ts): the span kind (tool call, data access, privilege change or none) from the
 * classification attributes of the span merged with its resource's, whether the span starts a task, and the
 * record key (trace id). `buf` is always the request body being routed.
 */
import { EVENT_KINDS } from '../../schemas/conventions.ts';
import type { EventKind } from '../../schemas/conventions.ts';
import { SPAN_FLAGS_PARENT_IS_REMOTE } from '../core/classify.ts';
import { OPENINFERENCE_MODEL_KINDS } from '../core/model-usage.ts';
import {
  EXECUTE_TOOL,
  EXECUTE_TOOL_PREFIX,
  KEY_COUNT,
  KIND_BYTES,
  K_DATA_FIRST,
  K_DATA_LAST,
  K_EVENT_KIND,
  K_GENAI_OPERATION,
  K_LLM_REQUEST_TYPE,
  K_MCP_METHOD,
  K_OPENINFERENCE,
  K_PRIVILEGE,
  K_RPC_METHOD,
  K_TASK_ID,
  K_TASK_ROOT,
  K_TASK_TYPE,
  K_TOOL_NAME,
  K_TRACELOOP,
  K_USAGE_LEGACY_FIRST,
  K_USAGE_LEGACY_LAST,
  LLM_REQUEST_TYPE_BYTES,
  MERGED_TOOL_CALLS,
  MERGED_TOOL_CALLS_SPAN_NAME,
  MODEL_OPERATION_BYTES,
  NOT_A_MODEL_CALL_SUFFIX_BYTES,
  RESOURCES_READ,
  RESOURCES_READ_PREFIX,
  RETRIEVAL,
  TOOLS_CALL,
  TOOLS_CALL_PREFIX,
  TRUE,
  T_BOOL,
  T_LIST,
  T_NONE,
  T_STRING,
} from './route-keys.ts';
import type { ResourceInfo } from './route-records.ts';

// Per span and per resource: type, and [start, end) of a string (or the scalar in `a`) for each key.
export const spanType = new Uint8Array(KEY_COUNT);
export const spanA = new Float64Array(KEY_COUNT);
export const spanB = new Float64Array(KEY_COUNT);

// The merged view of a span's classification keys: the span's value, else its resource's.
const mergedType = new Uint8Array(KEY_COUNT);
const mergedA = new Float64Array(KEY_COUNT);
const mergedB = new Float64Array(KEY_COUNT);

export function mergeWithResource(resource: ResourceInfo): void {
  for (let k = 0; k < KEY_COUNT; k++) {
    const own = spanType[k] !== T_NONE;
    mergedType[k] = own ? (spanType[k] as number) : (resource.types[k] as number);
    mergedA[k] = own ? (spanA[k] as number) : (resource.a[k] as number);
    mergedB[k] = own ? (spanB[k] as number) : (resource.b[k] as number);
  }
}

function typeOf(k: number): number {
  return mergedType[k] as number;
}
function aOf(k: number): number {
  return mergedA[k] as number;
}
function bOf(k: number): number {
  return mergedB[k] as number;
}
/** Whether the values read (a span's own, or merged with its resource's) hold a non-empty scalar under key k. */
function holdsScalar(types: Uint8Array, a: Float64Array, b: Float64Array, k: number): boolean {
  const type = types[k] as number;
  if (type === T_NONE || type === T_LIST) return false;
  return type !== T_STRING || (b[k] as number) > (a[k] as number);
}

function stringIs(buf: Uint8Array, k: number, bytes: Uint8Array): boolean {
  return mergedType[k] === T_STRING && equalBytes(buf, mergedA[k] as number, mergedB[k] as number, bytes);
}

function equalBytes(buf: Uint8Array, start: number, end: number, bytes: Uint8Array): boolean {
  if (end - start !== bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (buf[start + i] !== bytes[i]) return false;
  return true;
}

function startsWithBytes(buf: Uint8Array, start: number, end: number, bytes: Uint8Array): boolean {
  if (end - start < bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (buf[start + i] !== bytes[i]) return false;
  return true;
}

function endsWithBytes(buf: Uint8Array, start: number, end: number, bytes: Uint8Array): boolean {
  if (end - start < bytes.length) return false;
  const from = end - bytes.length;
  for (let i = 0; i < bytes.length; i++) if (buf[from + i] !== bytes[i]) return false;
  return true;
}

const decoder = new TextDecoder('utf-8');

/** The last string decoded, and its bytes: attribute values repeat from span to span within a request. */
let lastText = '';
let lastTextBytes = new Uint8Array(0);

/** UTF-8 text of buf[start, end) (no Buffer view is made: that costs more than the decoding). */
function text(buf: Uint8Array, start: number, end: number): string {
  const length = end - start;
  if (length === lastTextBytes.length) {
    let i = 0;
    while (i < length && buf[start + i] === lastTextBytes[i]) i++;
    if (i === length) return lastText;
  }
  let ascii = length <= 64;
  for (let i = start; ascii && i < end; i++) if ((buf[i] as number) >= 0x80) ascii = false;
  let decoded: string;
  if (ascii) {
    decoded = '';
    for (let i = start; i < end; i++) decoded += String.fromCharCode(buf[i] as number);
  } else {
    decoded = decoder.decode(buf.subarray(start, end));
  }
  lastText = decoded;
  lastTextBytes = Uint8Array.prototype.slice.call(buf, start, end); // a copy (Buffer#slice would be a view)
  return decoded;
}

/** True when the id field at [start, end) is absent or all zero bytes (the decoder's ''). */
function emptyId(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] !== 0) return false;
  return true;
}

function hexOf(buf: Uint8Array, start: number, end: number): string {
  let out = '';
  for (let i = start; i < end; i++) out += HEX_BYTES[buf[i] as number] as string;
  return out;
}

const HEX_BYTES = Array.from({ length: 256 }, (_, byte) => (byte + 0x100).toString(16).slice(1));

/** The last trace id turned into hex, and its bytes: a request's spans come trace by trace. */
let lastTraceHex = '';
const lastTraceBytes = new Uint8Array(16);

/** The record key of a span: its trace id in hex ('' for none). */
export function traceKey(buf: Uint8Array, start: number, end: number): string {
  if (emptyId(buf, start, end)) return '';
  if (lastTraceHex !== '' && equalBytes(buf, start, end, lastTraceBytes)) return lastTraceHex;
  lastTraceBytes.set(buf.subarray(start, end));
  lastTraceHex = hexOf(buf, start, end);
  return lastTraceHex;
}

/**
 * The span's kind as an index into EVENT_KINDS (0 tool call, 1 data access, 2 privilege change), or -1 for
 * none, from the values merged by `mergeWithResource` and the span's name at buf[nameStart, nameEnd).
 */
export function spanKind(buf: Uint8Array, nameStart: number, nameEnd: number): number {
  let kind = -1;
  // 1. an explicit tripline.event.kind
  if (typeOf(K_EVENT_KIND) === T_STRING) {
    for (let i = 0; i < KIND_BYTES.length; i++) {
      if (equalBytes(buf, aOf(K_EVENT_KIND), bOf(K_EVENT_KIND), KIND_BYTES[i] as Uint8Array)) {
        kind = EVENT_KINDS.indexOf(EVENT_KINDS[i] as EventKind);
        break;
      }
    }
  }
  // 2. privilege change
  if (kind < 0 && typeOf(K_PRIVILEGE) !== T_NONE) kind = 2;
  // 3. tool call (not Google ADK's summary of parallel calls)
  const mergedSummary =
    equalBytes(buf, nameStart, nameEnd, MERGED_TOOL_CALLS_SPAN_NAME) && stringIs(buf, K_TOOL_NAME, MERGED_TOOL_CALLS);
  if (kind < 0 && !mergedSummary) {
    const method = typeOf(K_MCP_METHOD) !== T_NONE ? K_MCP_METHOD : K_RPC_METHOD;
    if (
      stringIs(buf, K_GENAI_OPERATION, EXECUTE_TOOL) ||
      stringIs(buf, method, TOOLS_CALL) ||
      (typeOf(K_OPENINFERENCE) === T_STRING &&
        text(buf, aOf(K_OPENINFERENCE), bOf(K_OPENINFERENCE)).toUpperCase() === 'TOOL') ||
      (typeOf(K_TRACELOOP) === T_STRING && text(buf, aOf(K_TRACELOOP), bOf(K_TRACELOOP)).toLowerCase() === 'tool') ||
      startsWithBytes(buf, nameStart, nameEnd, EXECUTE_TOOL_PREFIX) ||
      startsWithBytes(buf, nameStart, nameEnd, TOOLS_CALL_PREFIX)
    ) {
      kind = 0;
    }
  }
  // 4. data access
  if (kind < 0) {
    for (let k = K_DATA_FIRST; k <= K_DATA_LAST; k++) {
      if (typeOf(k) !== T_NONE) {
        kind = 1;
        break;
      }
    }
  }
  if (kind < 0) {
    const method = typeOf(K_MCP_METHOD) !== T_NONE ? K_MCP_METHOD : K_RPC_METHOD;
    if (
      stringIs(buf, K_GENAI_OPERATION, RETRIEVAL) ||
      stringIs(buf, method, RESOURCES_READ) ||
      (typeOf(K_OPENINFERENCE) === T_STRING &&
        text(buf, aOf(K_OPENINFERENCE), bOf(K_OPENINFERENCE)).toUpperCase() === 'RETRIEVER') ||
      startsWithBytes(buf, nameStart, nameEnd, RESOURCES_READ_PREFIX)
    ) {
      kind = 1;
    }
  }
  return kind;
}

/**
 * Whether the span is a task root: flagged by tripline.task.root (merged values), without a parent
 * (buf[parentStart, parentEnd) empty or zero), or with a remote parent (`flags`).
 */
export function isTaskRoot(buf: Uint8Array, parentStart: number, parentEnd: number, flags: number): boolean {
  const rootType = typeOf(K_TASK_ROOT);
  const flagged =
    (rootType === T_BOOL && aOf(K_TASK_ROOT) === 1) ||
    (rootType === T_STRING && equalBytes(buf, aOf(K_TASK_ROOT), bOf(K_TASK_ROOT), TRUE));
  return (
    flagged ||
    emptyId(buf, parentStart, parentEnd) ||
    (flags & SPAN_FLAGS_PARENT_IS_REMOTE) === SPAN_FLAGS_PARENT_IS_REMOTE
  );
}

/** Whether the span itself (not its resource) holds a task id or a task type. */
export function declaresTask(): boolean {
  return holdsScalar(spanType, spanA, spanB, K_TASK_ID) || holdsScalar(spanType, spanA, spanB, K_TASK_TYPE);
}

/** Whether the span or its resource holds a task id (merged values). */
export function holdsTaskId(): boolean {
  return holdsScalar(mergedType, mergedA, mergedB, K_TASK_ID);
}

function stringIsOneOf(buf: Uint8Array, k: number, list: readonly Uint8Array[]): boolean {
  for (const bytes of list) if (stringIs(buf, k, bytes)) return true;
  return false;
}

/**
 * Whether a span of none of the three kinds is a model call (services/core/model-usage.ts `modelOperation`, on
 * the merged values and the span's name at buf[nameStart, nameEnd)).
 */
export function isModelCall(buf: Uint8Array, nameStart: number, nameEnd: number): boolean {
  if (typeOf(K_GENAI_OPERATION) === T_STRING) return stringIsOneOf(buf, K_GENAI_OPERATION, MODEL_OPERATION_BYTES);
  if (typeOf(K_OPENINFERENCE) === T_STRING)
    return (
      !endsWithBytes(buf, nameStart, nameEnd, NOT_A_MODEL_CALL_SUFFIX_BYTES) &&
      Object.hasOwn(OPENINFERENCE_MODEL_KINDS, text(buf, aOf(K_OPENINFERENCE), bOf(K_OPENINFERENCE)).toUpperCase())
    );
  if (typeOf(K_LLM_REQUEST_TYPE) === T_STRING) return stringIsOneOf(buf, K_LLM_REQUEST_TYPE, LLM_REQUEST_TYPE_BYTES);
  for (let k = K_USAGE_LEGACY_FIRST; k <= K_USAGE_LEGACY_LAST; k++) if (typeOf(k) !== T_NONE) return true;
  return false;
}
