/**
 * The single-pass protobuf decoder of OTLP trace requests. Requests are the hot path (every span of every
 * agent), so they are not decoded through protobufjs messages: this decoder, written against the schema
 * (services/otlp/schema.ts), reads the wire format straight into the final objects (no intermediate message
 * objects, `Long`s or id buffers; ~2x the throughput of protobufjs's generated `Type.decode` alone, ~4x with
 * the `toObject` conversion it would need, see test/bench/otlp-decode.bench.ts), and it rejects a known field
 * with the wrong wire type, which protobufjs skips as if it were unknown.
 *
 * The input and the read position live in services/otlp/protobuf-reader.ts; this module decodes each message
 * from them.
 */
import type {
  OtlpAnyValue,
  OtlpKeyValue,
  OtlpResource,
  OtlpResourceSpans,
  OtlpScope,
  OtlpScopeSpans,
  OtlpSpan,
  OtlpSpanEvent,
  OtlpSpanLink,
  OtlpStatus,
  OtlpTraceRequest,
} from '../../schemas/otlp.ts';
import { TriplineError } from '../shared/errors.ts';
import { fail } from './decode-error.ts';
import { MAX_ANY_VALUE_DEPTH, OBJECT_COST, objectBudgetFor } from './decode-limits.ts';
import {
  ANY_VALUE_FIELDS,
  EVENT_FIELDS,
  KEY_VALUE_FIELDS,
  LINK_FIELDS,
  LIST_FIELDS,
  REQUEST_FIELDS,
  RESOURCE_FIELDS,
  RESOURCE_SPANS_FIELDS,
  SCOPE_FIELDS,
  SCOPE_SPANS_FIELDS,
  SPAN_FIELDS,
  STATUS_FIELDS,
} from './protobuf-fields.ts';
import {
  closeInput,
  openInput,
  otherField,
  pos,
  readBool,
  readBytes,
  readDouble,
  readFixed32,
  readId,
  readInt64,
  readLength,
  readNanos,
  readString,
  readTag,
  readVarint32,
  readVarint64,
  skipLengthDelimited,
} from './protobuf-reader.ts';
import { TAG_LEN_1 } from './wire.ts';

/** What is left of the request's object budget (see OBJECT_COST). */
let objectBudget = 0;

function spendObject(cost: number): void {
  objectBudget -= cost;
  if (objectBudget < 0) {
    throw new TriplineError(
      'OTLP_PAYLOAD_TOO_LARGE',
      'the request holds more spans, events, links and attributes than its size can encode sensibly; send fewer per request',
    );
  }
}

export function decodeProtobufRequest(body: Uint8Array): OtlpTraceRequest {
  objectBudget = objectBudgetFor(body);
  const end = openInput(body);
  try {
    const resourceSpans: OtlpResourceSpans[] = [];
    while (pos < end) {
      const t = readTag(end);
      if (t === TAG_LEN_1) resourceSpans.push(decodeResourceSpans(readLength(end)));
      else otherField(t, end, REQUEST_FIELDS, 'ExportTraceServiceRequest');
    }
    return { resourceSpans };
  } finally {
    closeInput(); // do not keep the request body alive
  }
}

function decodeResourceSpans(end: number): OtlpResourceSpans {
  let resource: OtlpResource | undefined;
  const scopeSpans: OtlpScopeSpans[] = [];
  let schemaUrl = '';
  while (pos < end) {
    const t = readTag(end);
    switch (t) {
      case 10 /* 1:len */:
        resource = decodeResource(readLength(end), resource);
        break;
      case 18 /* 2:len */:
        scopeSpans.push(decodeScopeSpans(readLength(end)));
        break;
      case 26 /* 3:len */:
        schemaUrl = readString(end);
        break;
      default:
        otherField(t, end, RESOURCE_SPANS_FIELDS, 'ResourceSpans');
    }
  }
  const out: OtlpResourceSpans = { scopeSpans };
  if (resource !== undefined) out.resource = resource;
  if (schemaUrl !== '') out.schemaUrl = schemaUrl;
  return out;
}

/** Decodes a Resource; a repeated occurrence merges into the previous one, as protobuf requires. */
function decodeResource(end: number, into: OtlpResource | undefined): OtlpResource {
  const attributes = into?.attributes ?? [];
  let dropped = into?.droppedAttributesCount ?? 0;
  while (pos < end) {
    const t = readTag(end);
    switch (t) {
      case 10 /* 1:len */:
        attributes.push(decodeKeyValue(readLength(end), 0));
        break;
      case 16 /* 2:varint */:
        dropped = readVarint32(end);
        break;
      case 26 /* 3:len */: // entity_refs [Development]: not part of Tripline's model
        skipLengthDelimited(end);
        break;
      default:
        otherField(t, end, RESOURCE_FIELDS, 'Resource');
    }
  }
  const out: OtlpResource = { attributes };
  if (dropped !== 0) out.droppedAttributesCount = dropped;
  return out;
}

function decodeScopeSpans(end: number): OtlpScopeSpans {
  let scope: OtlpScope | undefined;
  const spans: OtlpSpan[] = [];
  let schemaUrl = '';
  while (pos < end) {
    const t = readTag(end);
    switch (t) {
      case 18 /* 2:len */:
        spans.push(decodeSpan(readLength(end)));
        break;
      case 10 /* 1:len */:
        scope = decodeScope(readLength(end), scope);
        break;
      case 26 /* 3:len */:
        schemaUrl = readString(end);
        break;
      default:
        otherField(t, end, SCOPE_SPANS_FIELDS, 'ScopeSpans');
    }
  }
  const out: OtlpScopeSpans = { spans };
  if (scope !== undefined) out.scope = scope;
  if (schemaUrl !== '') out.schemaUrl = schemaUrl;
  return out;
}

function decodeScope(end: number, into: OtlpScope | undefined): OtlpScope {
  let name = into?.name ?? '';
  let version = into?.version ?? '';
  const attributes = into?.attributes ?? [];
  let dropped = into?.droppedAttributesCount ?? 0;
  while (pos < end) {
    const t = readTag(end);
    switch (t) {
      case 10 /* 1:len */:
        name = readString(end);
        break;
      case 18 /* 2:len */:
        version = readString(end);
        break;
      case 26 /* 3:len */:
        attributes.push(decodeKeyValue(readLength(end), 0));
        break;
      case 32 /* 4:varint */:
        dropped = readVarint32(end);
        break;
      default:
        otherField(t, end, SCOPE_FIELDS, 'InstrumentationScope');
    }
  }
  const out: OtlpScope = { name, attributes };
  if (version !== '') out.version = version;
  if (dropped !== 0) out.droppedAttributesCount = dropped;
  return out;
}

function decodeSpan(end: number): OtlpSpan {
  spendObject(OBJECT_COST.span);
  let traceId = '';
  let spanId = '';
  let traceState = '';
  let parentSpanId = '';
  let flags = 0;
  let name = '';
  let kind = 0;
  let startTimeUnixNano = '0';
  let endTimeUnixNano = '0';
  const attributes: OtlpKeyValue[] = [];
  let droppedAttributes = 0;
  const events: OtlpSpanEvent[] = [];
  let droppedEvents = 0;
  const links: OtlpSpanLink[] = [];
  let droppedLinks = 0;
  let status: OtlpStatus | undefined;
  while (pos < end) {
    const t = readTag(end);
    switch (t) {
      case 74 /* 9:len */:
        attributes.push(decodeKeyValue(readLength(end), 0));
        break;
      case 10 /* 1:len */:
        traceId = readId(end, 16, 'Span.trace_id');
        break;
      case 18 /* 2:len */:
        spanId = readId(end, 8, 'Span.span_id');
        break;
      case 26 /* 3:len */:
        traceState = readString(end);
        break;
      case 34 /* 4:len */:
        parentSpanId = readId(end, 8, 'Span.parent_span_id');
        break;
      case 133 /* 16:i32 */:
        flags = readFixed32(end);
        break;
      case 42 /* 5:len */:
        name = readString(end);
        break;
      case 48 /* 6:varint */:
        kind = readVarint32(end) | 0;
        break;
      case 57 /* 7:i64 */:
        startTimeUnixNano = readNanos(end);
        break;
      case 65 /* 8:i64 */:
        endTimeUnixNano = readNanos(end);
        break;
      case 80 /* 10:varint */:
        droppedAttributes = readVarint32(end);
        break;
      case 90 /* 11:len */:
        events.push(decodeEvent(readLength(end)));
        break;
      case 96 /* 12:varint */:
        droppedEvents = readVarint32(end);
        break;
      case 106 /* 13:len */:
        links.push(decodeLink(readLength(end)));
        break;
      case 112 /* 14:varint */:
        droppedLinks = readVarint32(end);
        break;
      case 122 /* 15:len */:
        status = decodeStatus(readLength(end), status);
        break;
      default:
        otherField(t, end, SPAN_FIELDS, 'Span');
    }
  }
  const span: OtlpSpan = {
    traceId,
    spanId,
    parentSpanId,
    name,
    kind,
    startTimeUnixNano,
    endTimeUnixNano,
    attributes,
    events,
    links,
  };
  if (traceState !== '') span.traceState = traceState;
  if (flags !== 0) span.flags = flags;
  if (droppedAttributes !== 0) span.droppedAttributesCount = droppedAttributes;
  if (droppedEvents !== 0) span.droppedEventsCount = droppedEvents;
  if (droppedLinks !== 0) span.droppedLinksCount = droppedLinks;
  if (status !== undefined) span.status = status;
  return span;
}

function decodeEvent(end: number): OtlpSpanEvent {
  spendObject(OBJECT_COST.event);
  let timeUnixNano = '0';
  let name = '';
  const attributes: OtlpKeyValue[] = [];
  let dropped = 0;
  while (pos < end) {
    const t = readTag(end);
    switch (t) {
      case 9 /* 1:i64 */:
        timeUnixNano = readNanos(end);
        break;
      case 18 /* 2:len */:
        name = readString(end);
        break;
      case 26 /* 3:len */:
        attributes.push(decodeKeyValue(readLength(end), 0));
        break;
      case 32 /* 4:varint */:
        dropped = readVarint32(end);
        break;
      default:
        otherField(t, end, EVENT_FIELDS, 'Span.Event');
    }
  }
  const event: OtlpSpanEvent = { timeUnixNano, name, attributes };
  if (dropped !== 0) event.droppedAttributesCount = dropped;
  return event;
}

function decodeLink(end: number): OtlpSpanLink {
  spendObject(OBJECT_COST.link);
  let traceId = '';
  let spanId = '';
  let traceState = '';
  const attributes: OtlpKeyValue[] = [];
  let dropped = 0;
  let flags = 0;
  while (pos < end) {
    const t = readTag(end);
    switch (t) {
      case 10 /* 1:len */:
        traceId = readId(end, 16, 'Span.Link.trace_id');
        break;
      case 18 /* 2:len */:
        spanId = readId(end, 8, 'Span.Link.span_id');
        break;
      case 26 /* 3:len */:
        traceState = readString(end);
        break;
      case 34 /* 4:len */:
        attributes.push(decodeKeyValue(readLength(end), 0));
        break;
      case 40 /* 5:varint */:
        dropped = readVarint32(end);
        break;
      case 53 /* 6:i32 */:
        flags = readFixed32(end);
        break;
      default:
        otherField(t, end, LINK_FIELDS, 'Span.Link');
    }
  }
  const link: OtlpSpanLink = { traceId, spanId, attributes };
  if (traceState !== '') link.traceState = traceState;
  if (dropped !== 0) link.droppedAttributesCount = dropped;
  if (flags !== 0) link.flags = flags;
  return link;
}

function decodeStatus(end: number, into: OtlpStatus | undefined): OtlpStatus {
  let code = into?.code ?? 0;
  let message = into?.message ?? '';
  while (pos < end) {
    const t = readTag(end);
    switch (t) {
      case 24 /* 3:varint */:
        code = readVarint32(end) | 0;
        break;
      case 18 /* 2:len */:
        message = readString(end);
        break;
      default:
        otherField(t, end, STATUS_FIELDS, 'Status');
    }
  }
  const status: OtlpStatus = { code };
  if (message !== '') status.message = message;
  return status;
}

/** `depth` is the depth of the AnyValue that holds this pair (0 for attributes). */
function decodeKeyValue(end: number, depth: number): OtlpKeyValue {
  spendObject(OBJECT_COST.keyValue);
  let key = '';
  let value: OtlpAnyValue | undefined;
  while (pos < end) {
    const t = readTag(end);
    switch (t) {
      case 10 /* 1:len */:
        key = readString(end);
        break;
      case 18 /* 2:len */:
        value = decodeAnyValue(readLength(end), depth + 1, value);
        break;
      case 24 /* 3:varint */: // key_strindex: Profiling only; ignored for traces
        readVarint64(end);
        break;
      default:
        otherField(t, end, KEY_VALUE_FIELDS, 'KeyValue');
    }
  }
  return value === undefined ? { key } : { key, value };
}

function decodeAnyValue(end: number, depth: number, into: OtlpAnyValue | undefined): OtlpAnyValue {
  if (depth > 0) spendObject(OBJECT_COST.nestedValue);
  if (depth > MAX_ANY_VALUE_DEPTH) fail(`AnyValue nested deeper than ${MAX_ANY_VALUE_DEPTH} levels at byte ${pos}`);
  let value = into;
  while (pos < end) {
    const t = readTag(end);
    switch (t) {
      case 10 /* 1:len */:
        value = { stringValue: readString(end) };
        break;
      case 24 /* 3:varint */:
        value = { intValue: readInt64(end) };
        break;
      case 16 /* 2:varint */:
        value = { boolValue: readBool(end) };
        break;
      case 33 /* 4:i64 */:
        value = { doubleValue: readDouble(end) };
        break;
      case 42 /* 5:len */: {
        const stop = readLength(end);
        // A repeated array_value merges into the previous one (protobuf semantics for a message field).
        const values = value?.arrayValue?.values ?? [];
        while (pos < stop) {
          const u = readTag(stop);
          if (u === 10 /* 1:len */) values.push(decodeAnyValue(readLength(stop), depth + 1, undefined));
          else otherField(u, stop, LIST_FIELDS, 'ArrayValue');
        }
        value = { arrayValue: { values } };
        break;
      }
      case 50 /* 6:len */: {
        const stop = readLength(end);
        const values = value?.kvlistValue?.values ?? [];
        while (pos < stop) {
          const u = readTag(stop);
          if (u === 10 /* 1:len */) values.push(decodeKeyValue(readLength(stop), depth));
          else otherField(u, stop, LIST_FIELDS, 'KeyValueList');
        }
        value = { kvlistValue: { values } };
        break;
      }
      case 58 /* 7:len */:
        value = { bytesValue: readBytes(end) };
        break;
      case 64 /* 8:varint */: // string_value_strindex: Profiling only; the value counts as empty for traces
        readVarint64(end);
        value = {};
        break;
      default:
        otherField(t, end, ANY_VALUE_FIELDS, 'AnyValue');
    }
  }
  return value ?? {};
}
