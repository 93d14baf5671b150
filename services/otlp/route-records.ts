/**
 * Writing the Kafka records of the gateway's byte router (services/otlp/route.ts): each group's spans, copied
 * byte for byte from the request, inside copies of their resource and scope wrappers, as one
 * `ExportTraceServiceRequest` per record; a group over the record limit is halved until it fits. `buf` is
 * always the request body being routed.
 */
import { TriplineError } from '../shared/errors.ts';

export interface RoutedRecord {
  topic: string;
  /** Task id (or the trace id of a span without one). */
  key: string;
  value: Uint8Array;
  /** Spans in the record. */
  spans: number;
}

/** Resource-level values of the classification keys, per resource. */
export interface ResourceInfo {
  /** [start, end) of the whole `resource` field (tag included), or -1. */
  resourceStart: number;
  resourceEnd: number;
  schemaStart: number;
  schemaEnd: number;
  types: Uint8Array;
  a: Float64Array;
  b: Float64Array;
}

export interface ScopeInfo {
  resource: number;
  scopeStart: number;
  scopeEnd: number;
  schemaStart: number;
  schemaEnd: number;
}

/** The spans of one group, as (scope index, span field start, span field end) triples. */
export interface Group {
  topic: string;
  key: string;
  spans: number[];
}

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
function layout(
  spans: readonly number[],
  from: number,
  to: number,
  resources: readonly ResourceInfo[],
  scopes: readonly ScopeInfo[],
): { total: number; sizes: number[] } {
  // sizes: for each resource run, its content size, followed by its scope runs' content sizes.
  const sizes: number[] = [];
  let total = 0;
  let i = from;
  while (i < to) {
    const resourceIndex = (scopes[spans[i] as number] as ScopeInfo).resource;
    const resource = resources[resourceIndex] as ResourceInfo;
    const rsAt = sizes.length;
    sizes.push(0);
    let rsSize =
      (resource.resourceStart >= 0 ? resource.resourceEnd - resource.resourceStart : 0) +
      (resource.schemaStart >= 0 ? resource.schemaEnd - resource.schemaStart : 0);
    while (i < to && (scopes[spans[i] as number] as ScopeInfo).resource === resourceIndex) {
      const scopeIndex = spans[i] as number;
      const scope = scopes[scopeIndex] as ScopeInfo;
      let ssSize =
        (scope.scopeStart >= 0 ? scope.scopeEnd - scope.scopeStart : 0) +
        (scope.schemaStart >= 0 ? scope.schemaEnd - scope.schemaStart : 0);
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

function copy(buf: Uint8Array, out: Uint8Array, at: number, start: number, end: number): number {
  out.set(buf.subarray(start, end), at);
  return at + (end - start);
}

export function writeGroup(
  buf: Uint8Array,
  group: Group,
  spans: readonly number[],
  resources: readonly ResourceInfo[],
  scopes: readonly ScopeInfo[],
  maxBytes: number,
  records: RoutedRecord[],
): void {
  const { total, sizes } = layout(spans, 0, spans.length, resources, scopes);
  const count = spans.length / 3;
  if (total > maxBytes) {
    if (count === 1) {
      throw new TriplineError(
        'OTLP_PAYLOAD_TOO_LARGE',
        `a span encodes to ${String(total)} bytes, more than the Kafka record limit of ${String(maxBytes)} bytes (TRIPLINE_KAFKA_MAX_RECORD_BYTES)`,
      );
    }
    const half = Math.ceil(count / 2) * 3;
    writeGroup(buf, group, spans.slice(0, half), resources, scopes, maxBytes, records);
    writeGroup(buf, group, spans.slice(half), resources, scopes, maxBytes, records);
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
    if (resource.resourceStart >= 0) at = copy(buf, out, at, resource.resourceStart, resource.resourceEnd);
    while (i < spans.length && (scopes[spans[i] as number] as ScopeInfo).resource === resourceIndex) {
      const scopeIndex = spans[i] as number;
      const scope = scopes[scopeIndex] as ScopeInfo;
      out[at++] = 18; // ResourceSpans.scope_spans
      at = writeVarint(out, at, sizes[s++] as number);
      if (scope.scopeStart >= 0) at = copy(buf, out, at, scope.scopeStart, scope.scopeEnd);
      while (i < spans.length && spans[i] === scopeIndex) {
        at = copy(buf, out, at, spans[i + 1] as number, spans[i + 2] as number);
        i += 3;
      }
      if (scope.schemaStart >= 0) at = copy(buf, out, at, scope.schemaStart, scope.schemaEnd);
    }
    if (resource.schemaStart >= 0) at = copy(buf, out, at, resource.schemaStart, resource.schemaEnd);
  }
  records.push({ topic: group.topic, key: group.key, value: out, spans: count });
}
