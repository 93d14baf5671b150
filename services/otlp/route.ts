/**
 * The gateway's fast path to Kafka: routes an OTLP protobuf `ExportTraceServiceRequest` straight from its
 * bytes to the span-topic records, without decoding spans into objects or encoding them again.
 *
 * It gives the same records as `decodeTraceRequest` → `classifyRequest` → `buildSpanRecords` (the span kind
 * and task id of services/core/classify.ts; one record per (topic, task id) holding that group's spans in
 * request order inside their resource and scope wrappers; task-boundary spans to the tool_calls topic; spans
 * of none of the three kinds left out; a group over `maxRecordBytes` halved until it fits), except that each
 * span, resource and scope is copied byte for byte as the agent sent it instead of being re-encoded, and only
 * the fields `buildSpanRecords` keeps are kept (ResourceSpans: resource, schema_url; ScopeSpans: scope,
 * schema_url). Decoding a record gives the same objects either way.
 *
 * Only the attributes classification reads are looked at (matched on their key bytes), so the cost is one pass
 * over the bytes plus the copy, with a handful of small allocations per request. The input is checked as it is
 * walked (lengths, wire types, id sizes), and a malformed request throws `TriplineError('OTLP_BAD_REQUEST')`,
 * like the decoder; unlike the decoder it does not look inside the attributes, events and links it does not need.
 */
import { ATTR, EVENT_KINDS } from '../../schemas/conventions.ts';
import type { EventKind } from '../../schemas/conventions.ts';
import { TriplineError } from '../shared/errors.ts';
import { SPAN_FLAGS_PARENT_IS_REMOTE, keepBoundary, taskMark } from '../core/classify.ts';

export interface RoutedRecord {
  topic: string;
  /** Task id (or the trace id of a span without one). */
  key: string;
  value: Uint8Array;
  /** Spans in the record. */
  spans: number;
}

export interface RoutedRequest {
  records: RoutedRecord[];
  /** Spans of the three kinds. */
  events: number;
  /** Task-boundary spans (sent to the tool_calls topic). */
  boundaries: number;
  /** Spans of none of the three kinds and no task boundary (not forwarded). */
  dropped: number;
}

export interface RouteTopics {
  tool_call: string;
  data_access: string;
  privilege_change: string;
}

// ---------------------------------------------------------------------------------------------------------
// The attributes classification reads.

const KEYS = [
  ATTR.eventKind, // 0
  ATTR.privilegeAction, // 1
  ATTR.genAiOperation, // 2
  ATTR.mcpMethod, // 3
  ATTR.rpcMethod, // 4
  ATTR.openInferenceKind, // 5
  ATTR.traceloopKind, // 6
  ATTR.dbSystem, // 7
  ATTR.dbSystemLegacy, // 8
  ATTR.dbCollection, // 9
  ATTR.dataResource, // 10
  ATTR.dataBytes, // 11
  ATTR.taskId, // 12
  ATTR.taskRoot, // 13
  ATTR.taskType, // 14
] as const;
const K_EVENT_KIND = 0;
const K_PRIVILEGE = 1;
const K_GENAI_OPERATION = 2;
const K_MCP_METHOD = 3;
const K_RPC_METHOD = 4;
const K_OPENINFERENCE = 5;
const K_TRACELOOP = 6;
const K_DATA_FIRST = 7;
const K_DATA_LAST = 11;
const K_TASK_ID = 12;
const K_TASK_ROOT = 13;
const K_TASK_TYPE = 14;
const KEY_COUNT = KEYS.length;

const encoder = new TextEncoder();
const KEY_BYTES = KEYS.map((key) => encoder.encode(key));
/** Keys by byte length: [id, bytes] pairs. */
const KEYS_BY_LENGTH: [number, Uint8Array][][] = [];
KEY_BYTES.forEach((bytes, id) => {
  (KEYS_BY_LENGTH[bytes.length] ??= []).push([id, bytes]);
});
const MAX_KEY_LENGTH = KEYS_BY_LENGTH.length - 1;

const ascii = (text: string): Uint8Array => encoder.encode(text);
const EXECUTE_TOOL = ascii('execute_tool');
const TOOLS_CALL = ascii('tools/call');
const TRUE = ascii('true');
const EXECUTE_TOOL_PREFIX = ascii('execute_tool ');
const TOOLS_CALL_PREFIX = ascii('tools/call ');
const RESOURCES_READ = ascii('resources/read');
const RESOURCES_READ_PREFIX = ascii('resources/read ');
const RETRIEVAL = ascii('retrieval');
const KIND_BYTES = EVENT_KINDS.map((kind) => ascii(kind));

/** Value types as classification sees them (services/core/classify.ts `scalarOrList`). */
const T_NONE = 0;
const T_STRING = 1;
const T_BOOL = 2;
const T_INT = 3;
const T_DOUBLE = 4;
const T_LIST = 5;

// Per span and per resource: type, and [start, end) of a string (or the scalar in `a`) for each key.
const spanType = new Uint8Array(KEY_COUNT);
const spanA = new Float64Array(KEY_COUNT);
const spanB = new Float64Array(KEY_COUNT);

// ---------------------------------------------------------------------------------------------------------
// Reading

let buf: Uint8Array = new Uint8Array(0);
let pos = 0;

function bad(message: string): never {
  throw new TriplineError('OTLP_BAD_REQUEST', `the OTLP protobuf request could not be decoded: ${message}`);
}

function varint(end: number): number {
  let value = 0;
  let multiplier = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) bad(`truncated varint at byte ${String(pos)}`);
    const byte = buf[pos++] as number;
    if (i < 7) value += (byte & 0x7f) * multiplier;
    if (byte < 0x80) return value;
    multiplier *= 128;
  }
  return bad(`varint longer than 10 bytes at byte ${String(pos)}`);
}

/** Reads a length prefix; returns the end of the field's content (pos is at its start). */
function len(end: number): number {
  const length = varint(end);
  const stop = pos + length;
  if (stop > end) bad(`a length of ${String(length)} bytes runs past its message at byte ${String(pos)}`);
  return stop;
}

function skip(wire: number, end: number): void {
  switch (wire) {
    case 0:
      varint(end);
      return;
    case 1:
      if (end - pos < 8) bad(`truncated fixed64 at byte ${String(pos)}`);
      pos += 8;
      return;
    case 2:
      pos = len(end);
      return;
    case 5:
      if (end - pos < 4) bad(`truncated fixed32 at byte ${String(pos)}`);
      pos += 4;
      return;
    default:
      bad(`unsupported wire type ${String(wire)} at byte ${String(pos)}`);
  }
}

function expectWire(tag: number, wire: number, what: string): void {
  if ((tag & 7) !== wire) bad(`wrong wire type ${String(tag & 7)} for ${what} at byte ${String(pos)}`);
}

function equalBytes(start: number, end: number, bytes: Uint8Array): boolean {
  if (end - start !== bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (buf[start + i] !== bytes[i]) return false;
  return true;
}

function startsWithBytes(start: number, end: number, bytes: Uint8Array): boolean {
  if (end - start < bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (buf[start + i] !== bytes[i]) return false;
  return true;
}

/** Which classification key the bytes are, or -1. */
function keyId(start: number, end: number): number {
  const length = end - start;
  if (length > MAX_KEY_LENGTH) return -1;
  const candidates = KEYS_BY_LENGTH[length];
  if (candidates === undefined) return -1;
  for (const [id, bytes] of candidates) {
    let i = 0;
    while (i < length && buf[start + i] === bytes[i]) i++;
    if (i === length) return id;
  }
  return -1;
}

/**
 * Reads a KeyValue in [pos, end); when its key is one classification reads and its value is one it sees
 * (string, bool, int, double or array), stores it into (types, a, b).
 */
function readKeyValue(end: number, types: Uint8Array, a: Float64Array, b: Float64Array): void {
  let id = -1;
  let type = T_NONE;
  let va = 0;
  let vb = 0;
  let keySeen = false;
  while (pos < end) {
    const tag = varint(end);
    if (tag === 10 /* 1:len key */) {
      const stop = len(end);
      id = keyId(pos, stop);
      keySeen = true;
      pos = stop;
    } else if (tag === 18 /* 2:len value */) {
      const stop = len(end);
      // A later value field replaces an earlier one (protobuf merge of the last oneof member seen).
      type = T_NONE;
      while (pos < stop) {
        const vtag = varint(stop);
        switch (vtag) {
          case 10 /* string_value */: {
            const s = len(stop);
            type = T_STRING;
            va = pos;
            vb = s;
            pos = s;
            break;
          }
          case 16 /* bool_value */:
            type = T_BOOL;
            va = varint(stop) === 0 ? 0 : 1;
            break;
          case 24 /* int_value */:
            type = T_INT;
            va = pos;
            varint(stop);
            vb = pos;
            break;
          case 33 /* double_value */:
            if (stop - pos < 8) bad(`truncated double at byte ${String(pos)}`);
            type = T_DOUBLE;
            va = pos;
            pos += 8;
            break;
          case 42 /* array_value */:
            type = T_LIST;
            pos = len(stop);
            break;
          case 50 /* kvlist_value */:
          case 58 /* bytes_value */:
            type = T_NONE;
            pos = len(stop);
            break;
          default:
            skip(vtag & 7, stop);
        }
      }
      pos = stop;
    } else {
      skip(tag & 7, end);
    }
  }
  if (!keySeen || id < 0 || type === T_NONE) return;
  types[id] = type;
  a[id] = va;
  b[id] = vb;
}

const decoder = new TextDecoder('utf-8');

/** The last string decoded, and its bytes: attribute values repeat from span to span within a request. */
let lastText = '';
let lastTextBytes = new Uint8Array(0);

/** UTF-8 text of buf[start, end) (no Buffer view is made: that costs more than the decoding). */
function text(start: number, end: number): string {
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

// ---------------------------------------------------------------------------------------------------------
// Walking the request

/** Resource-level values of the classification keys, per resource. */
interface ResourceInfo {
  /** [start, end) of the whole `resource` field (tag included), or -1. */
  resourceStart: number;
  resourceEnd: number;
  schemaStart: number;
  schemaEnd: number;
  types: Uint8Array;
  a: Float64Array;
  b: Float64Array;
}

interface ScopeInfo {
  resource: number;
  scopeStart: number;
  scopeEnd: number;
  schemaStart: number;
  schemaEnd: number;
}

/** The spans of one group, as (scope index, span field start, span field end) triples. */
interface Group {
  topic: string;
  key: string;
  spans: number[];
}

function readResource(end: number, info: ResourceInfo): void {
  while (pos < end) {
    const tag = varint(end);
    if (tag === 10 /* attributes */) {
      const stop = len(end);
      readKeyValue(stop, info.types, info.a, info.b);
      pos = stop;
    } else {
      skip(tag & 7, end);
    }
  }
}

/** True when the id field at [start, end) is absent or all zero bytes (the decoder's ''). */
function emptyId(start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] !== 0) return false;
  return true;
}

function hexOf(start: number, end: number): string {
  let out = '';
  for (let i = start; i < end; i++) out += HEX_BYTES[buf[i] as number] as string;
  return out;
}

const HEX_BYTES = Array.from({ length: 256 }, (_, byte) => (byte + 0x100).toString(16).slice(1));

/** The last trace id turned into hex, and its bytes: a request's spans come trace by trace. */
let lastTraceHex = '';
const lastTraceBytes = new Uint8Array(16);

/** The record key of a span: its trace id in hex ('' for none). */
function traceKey(start: number, end: number): string {
  if (emptyId(start, end)) return '';
  if (lastTraceHex !== '' && equalBytes(start, end, lastTraceBytes)) return lastTraceHex;
  lastTraceBytes.set(buf.subarray(start, end));
  lastTraceHex = hexOf(start, end);
  return lastTraceHex;
}

/**
 * Routes one request. `body` is the protobuf `ExportTraceServiceRequest`.
 *
 * @throws TriplineError OTLP_BAD_REQUEST for malformed protobuf; OTLP_PAYLOAD_TOO_LARGE when one span does not fit
 *   `maxRecordBytes` on its own.
 */
export function routeTraceRequest(body: Uint8Array, topics: RouteTopics, maxRecordBytes: number): RoutedRequest {
  buf = body;
  pos = 0;
  const end = body.length;
  const resources: ResourceInfo[] = [];
  const scopes: ScopeInfo[] = [];
  const groups: Groups = { byTopic: new Map(), inOrder: [], declaredTraces: new Set() };
  const result: RoutedRequest = { records: [], events: 0, boundaries: 0, dropped: 0 };
  const kindTopics = [topics.tool_call, topics.data_access, topics.privilege_change];
  try {
    while (pos < end) {
      const tag = varint(end);
      if (tag !== 10) {
        if (tag >>> 3 === 1) expectWire(tag, 2, 'ExportTraceServiceRequest.resource_spans');
        skip(tag & 7, end);
        continue;
      }
      const rsEnd = len(end);
      const info: ResourceInfo = { resourceStart: -1, resourceEnd: -1, schemaStart: -1, schemaEnd: -1, types: new Uint8Array(KEY_COUNT), a: new Float64Array(KEY_COUNT), b: new Float64Array(KEY_COUNT) };
      const resourceIndex = resources.length;
      resources.push(info);
      // Pass 1: the resource and the schema url (they may come after the scope spans).
      const rsStart = pos;
      while (pos < rsEnd) {
        const fieldStart = pos;
        const t = varint(rsEnd);
        if (t === 10) {
          const stop = len(rsEnd);
          info.resourceStart = fieldStart;
          info.resourceEnd = stop;
          readResource(stop, info);
          pos = stop;
        } else if (t === 26) {
          pos = len(rsEnd);
          info.schemaStart = fieldStart;
          info.schemaEnd = pos;
        } else {
          if (t >>> 3 === 1 || t >>> 3 === 2 || t >>> 3 === 3) expectWire(t, 2, 'ResourceSpans field');
          skip(t & 7, rsEnd);
        }
      }
      // Pass 2: the scope spans.
      pos = rsStart;
      while (pos < rsEnd) {
        const t = varint(rsEnd);
        if (t !== 18) {
          skip(t & 7, rsEnd);
          continue;
        }
        const ssEnd = len(rsEnd);
        const scope: ScopeInfo = { resource: resourceIndex, scopeStart: -1, scopeEnd: -1, schemaStart: -1, schemaEnd: -1 };
        const scopeIndex = scopes.length;
        scopes.push(scope);
        const ssStart = pos;
        while (pos < ssEnd) {
          const fieldStart = pos;
          const st = varint(ssEnd);
          if (st === 10) {
            pos = len(ssEnd);
            scope.scopeStart = fieldStart;
            scope.scopeEnd = pos;
          } else if (st === 26) {
            pos = len(ssEnd);
            scope.schemaStart = fieldStart;
            scope.schemaEnd = pos;
          } else {
            if (st >>> 3 === 1 || st >>> 3 === 2 || st >>> 3 === 3) expectWire(st, 2, 'ScopeSpans field');
            skip(st & 7, ssEnd);
          }
        }
        pos = ssStart;
        while (pos < ssEnd) {
          const fieldStart = pos;
          const st = varint(ssEnd);
          if (st !== 18) {
            skip(st & 7, ssEnd);
            continue;
          }
          const spanEnd = len(ssEnd);
          routeSpan(spanEnd, info, kindTopics, topics.tool_call, groups, scopeIndex, fieldStart, result);
          pos = spanEnd;
        }
        pos = ssEnd;
      }
      pos = rsEnd;
    }
    for (const group of groups.inOrder) writeGroup(group, group.spans, resources, scopes, maxRecordBytes, result.records);
  } finally {
    buf = new Uint8Array(0);
  }
  return result;
}

// The merged view of a span's classification keys: the span's value, else its resource's.
const mergedType = new Uint8Array(KEY_COUNT);
const mergedA = new Float64Array(KEY_COUNT);
const mergedB = new Float64Array(KEY_COUNT);

function mergeWithResource(resource: ResourceInfo): void {
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

function stringIs(k: number, bytes: Uint8Array): boolean {
  return mergedType[k] === T_STRING && equalBytes(mergedA[k] as number, mergedB[k] as number, bytes);
}

/** Spans grouped by topic, then by key; `inOrder` lists the groups as they were first seen. */
interface Groups {
  byTopic: Map<string, Map<string, Group>>;
  inOrder: Group[];
  /** Traces a span of this request already declared a task for (see `keepBoundary`). */
  declaredTraces: Set<string>;
}

function routeSpan(spanEnd: number, resource: ResourceInfo, kindTopics: string[], boundaryTopic: string, groups: Groups, scopeIndex: number, fieldStart: number, result: RoutedRequest): void {
  spanType.fill(0);
  let traceStart = 0;
  let traceEnd = 0;
  let parentStart = 0;
  let parentEnd = 0;
  let nameStart = 0;
  let nameEnd = 0;
  let flags = 0;
  while (pos < spanEnd) {
    const tag = varint(spanEnd);
    switch (tag) {
      case 133 /* 16 flags, fixed32 */: {
        if (pos + 4 > spanEnd) bad('truncated Span.flags');
        flags = ((buf[pos] as number) | ((buf[pos + 1] as number) << 8) | ((buf[pos + 2] as number) << 16) | ((buf[pos + 3] as number) << 24)) >>> 0;
        pos += 4;
        break;
      }
      case 74 /* 9 attributes */: {
        const stop = len(spanEnd);
        readKeyValue(stop, spanType, spanA, spanB);
        pos = stop;
        break;
      }
      case 10 /* 1 trace_id */: {
        const stop = len(spanEnd);
        if (stop - pos !== 16 && stop !== pos) bad(`Span.trace_id must be 16 bytes, got ${String(stop - pos)}`);
        traceStart = pos;
        traceEnd = stop;
        pos = stop;
        break;
      }
      case 18 /* 2 span_id */: {
        const stop = len(spanEnd);
        if (stop - pos !== 8 && stop !== pos) bad(`Span.span_id must be 8 bytes, got ${String(stop - pos)}`);
        pos = stop;
        break;
      }
      case 34 /* 4 parent_span_id */: {
        const stop = len(spanEnd);
        if (stop - pos !== 8 && stop !== pos) bad(`Span.parent_span_id must be 8 bytes, got ${String(stop - pos)}`);
        parentStart = pos;
        parentEnd = stop;
        pos = stop;
        break;
      }
      case 42 /* 5 name */: {
        const stop = len(spanEnd);
        nameStart = pos;
        nameEnd = stop;
        pos = stop;
        break;
      }
      default: {
        const field = tag >>> 3;
        if (field === 1 || field === 2 || field === 4 || field === 5 || field === 9) expectWire(tag, 2, `Span field ${String(field)}`);
        skip(tag & 7, spanEnd);
      }
    }
  }

  mergeWithResource(resource);

  let kind = -1;
  // 1. an explicit tripline.event.kind
  if (typeOf(K_EVENT_KIND) === T_STRING) {
    for (let i = 0; i < KIND_BYTES.length; i++) {
      if (equalBytes(aOf(K_EVENT_KIND), bOf(K_EVENT_KIND), KIND_BYTES[i] as Uint8Array)) {
        kind = EVENT_KINDS.indexOf(EVENT_KINDS[i] as EventKind);
        break;
      }
    }
  }
  // 2. privilege change
  if (kind < 0 && typeOf(K_PRIVILEGE) !== T_NONE) kind = 2;
  // 3. tool call
  if (kind < 0) {
    const method = typeOf(K_MCP_METHOD) !== T_NONE ? K_MCP_METHOD : K_RPC_METHOD;
    if (
      stringIs(K_GENAI_OPERATION, EXECUTE_TOOL) ||
      stringIs(method, TOOLS_CALL) ||
      (typeOf(K_OPENINFERENCE) === T_STRING && text(aOf(K_OPENINFERENCE), bOf(K_OPENINFERENCE)).toUpperCase() === 'TOOL') ||
      (typeOf(K_TRACELOOP) === T_STRING && text(aOf(K_TRACELOOP), bOf(K_TRACELOOP)).toLowerCase() === 'tool') ||
      startsWithBytes(nameStart, nameEnd, EXECUTE_TOOL_PREFIX) ||
      startsWithBytes(nameStart, nameEnd, TOOLS_CALL_PREFIX)
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
      stringIs(K_GENAI_OPERATION, RETRIEVAL) ||
      stringIs(method, RESOURCES_READ) ||
      (typeOf(K_OPENINFERENCE) === T_STRING && text(aOf(K_OPENINFERENCE), bOf(K_OPENINFERENCE)).toUpperCase() === 'RETRIEVER') ||
      startsWithBytes(nameStart, nameEnd, RESOURCES_READ_PREFIX)
    ) {
      kind = 1;
    }
  }

  const rootType = typeOf(K_TASK_ROOT);
  const flagged = (rootType === T_BOOL && aOf(K_TASK_ROOT) === 1) || (rootType === T_STRING && equalBytes(aOf(K_TASK_ROOT), bOf(K_TASK_ROOT), TRUE));
  const root = flagged || emptyId(parentStart, parentEnd) || (flags & SPAN_FLAGS_PARENT_IS_REMOTE) === SPAN_FLAGS_PARENT_IS_REMOTE;
  const mark = taskMark(kind >= 0, root, holdsScalar(spanType, spanA, spanB, K_TASK_ID) || holdsScalar(spanType, spanA, spanB, K_TASK_TYPE));
  if (mark === 'drop' || (mark === 'boundary' && !keepBoundary(root, traceKey(traceStart, traceEnd), holdsScalar(mergedType, mergedA, mergedB, K_TASK_ID), groups.declaredTraces))) {
    result.dropped += 1;
    return;
  }
  let topic: string;
  if (mark === 'event') {
    topic = kindTopics[kind] as string;
    result.events += 1;
  } else {
    topic = boundaryTopic;
    result.boundaries += 1;
  }
  // Every span of a trace goes to one partition, so one processor sees the whole trace: its task may be declared
  // by a span that arrives after the others (a wrapper around an agent run ends last).
  const key = traceKey(traceStart, traceEnd);
  let byKey = groups.byTopic.get(topic);
  if (byKey === undefined) {
    byKey = new Map();
    groups.byTopic.set(topic, byKey);
  }
  let group = byKey.get(key);
  if (group === undefined) {
    group = { topic, key, spans: [] };
    byKey.set(key, group);
    groups.inOrder.push(group);
  }
  group.spans.push(scopeIndex, fieldStart, spanEnd);
}

// ---------------------------------------------------------------------------------------------------------
// Writing records

function varintSize(value: number): number {
  let size = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

function fieldSize(contentSize: number): number {
  return 1 + varintSize(contentSize) + contentSize;
}

/** Content sizes of the ResourceSpans and ScopeSpans runs of a group's spans (from index `from` to `to`, in triples). */
function layout(spans: readonly number[], from: number, to: number, resources: readonly ResourceInfo[], scopes: readonly ScopeInfo[]): { total: number; sizes: number[] } {
  // sizes: for each resource run, its content size, followed by its scope runs' content sizes.
  const sizes: number[] = [];
  let total = 0;
  let i = from;
  while (i < to) {
    const resourceIndex = (scopes[spans[i] as number] as ScopeInfo).resource;
    const resource = resources[resourceIndex] as ResourceInfo;
    const rsAt = sizes.length;
    sizes.push(0);
    let rsSize = (resource.resourceStart >= 0 ? resource.resourceEnd - resource.resourceStart : 0) + (resource.schemaStart >= 0 ? resource.schemaEnd - resource.schemaStart : 0);
    while (i < to && (scopes[spans[i] as number] as ScopeInfo).resource === resourceIndex) {
      const scopeIndex = spans[i] as number;
      const scope = scopes[scopeIndex] as ScopeInfo;
      let ssSize = (scope.scopeStart >= 0 ? scope.scopeEnd - scope.scopeStart : 0) + (scope.schemaStart >= 0 ? scope.schemaEnd - scope.schemaStart : 0);
      while (i < to && spans[i] === scopeIndex) {
        ssSize += (spans[i + 2] as number) - (spans[i + 1] as number);
        i += 3;
      }
      sizes.push(ssSize);
      rsSize += fieldSize(ssSize);
    }
    sizes[rsAt] = rsSize;
    total += fieldSize(rsSize);
  }
  return { total, sizes };
}

function writeVarint(out: Uint8Array, at: number, value: number): number {
  while (value >= 128) {
    out[at++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  out[at++] = value;
  return at;
}

function copy(out: Uint8Array, at: number, start: number, end: number): number {
  out.set(buf.subarray(start, end), at);
  return at + (end - start);
}

function writeGroup(group: Group, spans: readonly number[], resources: readonly ResourceInfo[], scopes: readonly ScopeInfo[], maxBytes: number, records: RoutedRecord[]): void {
  const { total, sizes } = layout(spans, 0, spans.length, resources, scopes);
  const count = spans.length / 3;
  if (total > maxBytes) {
    if (count === 1) {
      throw new TriplineError('OTLP_PAYLOAD_TOO_LARGE', `a span encodes to ${String(total)} bytes, more than the Kafka record limit of ${String(maxBytes)} bytes (TRIPLINE_KAFKA_MAX_RECORD_BYTES)`);
    }
    const half = Math.ceil(count / 2) * 3;
    writeGroup(group, spans.slice(0, half), resources, scopes, maxBytes, records);
    writeGroup(group, spans.slice(half), resources, scopes, maxBytes, records);
    return;
  }
  const out = new Uint8Array(total);
  let at = 0;
  let s = 0;
  let i = 0;
  while (i < spans.length) {
    const resourceIndex = (scopes[spans[i] as number] as ScopeInfo).resource;
    const resource = resources[resourceIndex] as ResourceInfo;
    out[at++] = 10; // ExportTraceServiceRequest.resource_spans
    at = writeVarint(out, at, sizes[s++] as number);
    if (resource.resourceStart >= 0) at = copy(out, at, resource.resourceStart, resource.resourceEnd);
    while (i < spans.length && (scopes[spans[i] as number] as ScopeInfo).resource === resourceIndex) {
      const scopeIndex = spans[i] as number;
      const scope = scopes[scopeIndex] as ScopeInfo;
      out[at++] = 18; // ResourceSpans.scope_spans
      at = writeVarint(out, at, sizes[s++] as number);
      if (scope.scopeStart >= 0) at = copy(out, at, scope.scopeStart, scope.scopeEnd);
      while (i < spans.length && spans[i] === scopeIndex) {
        at = copy(out, at, spans[i + 1] as number, spans[i + 2] as number);
        i += 3;
      }
      if (scope.schemaStart >= 0) at = copy(out, at, scope.schemaStart, scope.schemaEnd);
    }
    if (resource.schemaStart >= 0) at = copy(out, at, resource.schemaStart, resource.schemaEnd);
  }
  records.push({ topic: group.topic, key: group.key, value: out, spans: count });
}
