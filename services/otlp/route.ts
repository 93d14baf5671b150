/**
 * The gateway's fast path to Kafka: routes an OTLP protobuf `ExportTraceServiceRequest` straight from its
 * bytes to the span-topic records, without decoding spans into objects or encoding them again.
 *
 * It gives the same records as `decodeTraceRequest` → `classifyRequest` → `buildSpanRecords` (the span kind
 * and task id of services/core/classify.ts; one record per (topic, task id) holding that group's spans in
 * request order inside their resource and scope wrappers; task-boundary and model-call spans to the tool_calls topic; spans
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
import { TriplineError } from '../shared/errors.ts';
import { keepBoundary, taskMark } from '../core/classify.ts';
import {
  declaresTask,
  holdsTaskId,
  isModelCall,
  isTaskRoot,
  mergeWithResource,
  spanA,
  spanB,
  spanKind,
  spanType,
  traceKey,
} from './route-classify.ts';
import { KEY_COUNT, T_BOOL, T_DOUBLE, T_INT, T_LIST, T_NONE, T_STRING, keyId } from './route-keys.ts';
import { writeGroup } from './route-records.ts';
import type { Group, ResourceInfo, RoutedRecord, ScopeInfo } from './route-records.ts';

export type { RoutedRecord } from './route-records.ts';

export interface RoutedRequest {
  records: RoutedRecord[];
  /** Spans of the three kinds. */
  events: number;
  /** Task-boundary spans (sent to the tool_calls topic). */
  boundaries: number;
  /** Model-call spans that are no task boundary (sent to the tool_calls topic, like boundaries). */
  usageOnly: number;
  /** Spans of none of the three kinds, no task boundary and no model call (not forwarded). */
  dropped: number;
}

export interface RouteTopics {
  tool_call: string;
  data_access: string;
  privilege_change: string;
}

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
      id = keyId(buf, pos, stop);
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

// ---------------------------------------------------------------------------------------------------------
// Walking the request

/** Spans grouped by topic, then by key; `inOrder` lists the groups as they were first seen. */
interface Groups {
  byTopic: Map<string, Map<string, Group>>;
  inOrder: Group[];
  /** Traces a span of this request already declared a task for (see `keepBoundary`). */
  declaredTraces: Set<string>;
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
  const result: RoutedRequest = { records: [], events: 0, boundaries: 0, usageOnly: 0, dropped: 0 };
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
      const info: ResourceInfo = {
        resourceStart: -1,
        resourceEnd: -1,
        schemaStart: -1,
        schemaEnd: -1,
        types: new Uint8Array(KEY_COUNT),
        a: new Float64Array(KEY_COUNT),
        b: new Float64Array(KEY_COUNT),
      };
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
        const scope: ScopeInfo = {
          resource: resourceIndex,
          scopeStart: -1,
          scopeEnd: -1,
          schemaStart: -1,
          schemaEnd: -1,
        };
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
    for (const group of groups.inOrder)
      writeGroup(buf, group, group.spans, resources, scopes, maxRecordBytes, result.records);
  } finally {
    buf = new Uint8Array(0);
  }
  return result;
}

function routeSpan(
  spanEnd: number,
  resource: ResourceInfo,
  kindTopics: string[],
  boundaryTopic: string,
  groups: Groups,
  scopeIndex: number,
  fieldStart: number,
  result: RoutedRequest,
): void {
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
        flags =
          ((buf[pos] as number) |
            ((buf[pos + 1] as number) << 8) |
            ((buf[pos + 2] as number) << 16) |
            ((buf[pos + 3] as number) << 24)) >>>
          0;
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
        if (field === 1 || field === 2 || field === 4 || field === 5 || field === 9)
          expectWire(tag, 2, `Span field ${String(field)}`);
        skip(tag & 7, spanEnd);
      }
    }
  }

  mergeWithResource(resource);
  const kind = spanKind(buf, nameStart, nameEnd);
  const root = isTaskRoot(buf, parentStart, parentEnd, flags);
  const mark = taskMark(kind >= 0, root, declaresTask());
  const modelCall = kind < 0 && isModelCall(buf, nameStart, nameEnd);
  if (
    mark === 'drop' ||
    (mark === 'boundary' &&
      !keepBoundary(root, traceKey(buf, traceStart, traceEnd), holdsTaskId(), groups.declaredTraces))
  ) {
    if (!modelCall) {
      result.dropped += 1;
      return;
    }
    result.usageOnly += 1;
  } else if (mark === 'boundary') {
    result.boundaries += 1;
  }
  let topic: string;
  if (mark === 'event') {
    topic = kindTopics[kind] as string;
    result.events += 1;
  } else {
    // Task boundaries and model calls: the processor classifies them again (a model call may be both).
    topic = boundaryTopic;
  }
  // Every span of a trace goes to one partition, so one processor sees the whole trace: its task may be declared
  // by a span that arrives after the others (a wrapper around an agent run ends last).
  const key = traceKey(buf, traceStart, traceEnd);
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
