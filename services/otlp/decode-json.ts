/**
 * OTLP/JSON decoding: the protobuf JSON mapping with OTLP's exceptions (hex ids, integer enums, int64 as
 * strings or numbers). Field names are accepted in lowerCamelCase and in the proto's snake_case; unknown
 * fields are ignored; `null` means "absent". The values of single fields are read by
 * services/otlp/json-values.ts.
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
import { TriplineError, messageOf } from '../shared/errors.ts';
import { fail } from './decode-error.ts';
import { MAX_ANY_VALUE_DEPTH, OBJECT_COST, objectBudgetFor } from './decode-limits.ts';
import {
  jsonArray,
  jsonBool,
  jsonBytes,
  jsonDouble,
  jsonEnum,
  jsonId,
  jsonInt64,
  jsonMessage,
  jsonNanos,
  jsonObject,
  jsonString,
  jsonUint32,
  within,
} from './json-values.ts';
import type { JsonObject } from './json-values.ts';

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

export function decodeJsonRequest(body: Uint8Array): OtlpTraceRequest {
  let text: string;
  try {
    text = utf8Strict.decode(body);
  } catch {
    return fail('the body is not valid UTF-8');
  }
  if (text.trim() === '') return { resourceSpans: [] };
  // Every span, event, link and attribute is a JSON object: count them before JSON.parse builds them. An
  // attribute takes at least ~20 bytes of JSON ({"key":"k","value":{…}}), so one object per 8 bytes is generous.
  let objects = 0;
  for (let i = 0; i < body.length; i += 1) if (body[i] === 0x7b /* { */) objects += 1;
  if (objects * OBJECT_COST.keyValue > objectBudgetFor(body)) {
    throw new TriplineError(
      'OTLP_PAYLOAD_TOO_LARGE',
      'the request holds more JSON objects than its size can encode sensibly; send fewer spans per request',
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return fail(`the body is not valid JSON (${messageOf(error)})`);
  }
  const root = jsonObject(parsed, 'the request');
  let resourceSpans: OtlpResourceSpans[] = [];
  for (const key in root) {
    if (key === 'resourceSpans' || key === 'resource_spans')
      resourceSpans = jsonArray(root[key], key, jsonResourceSpans);
  }
  return { resourceSpans };
}

const SPAN_KIND_NAMES: Readonly<Record<string, number>> = {
  SPAN_KIND_UNSPECIFIED: 0,
  SPAN_KIND_INTERNAL: 1,
  SPAN_KIND_SERVER: 2,
  SPAN_KIND_CLIENT: 3,
  SPAN_KIND_PRODUCER: 4,
  SPAN_KIND_CONSUMER: 5,
};
const STATUS_CODE_NAMES: Readonly<Record<string, number>> = {
  STATUS_CODE_UNSET: 0,
  STATUS_CODE_OK: 1,
  STATUS_CODE_ERROR: 2,
};

function jsonResourceSpans(element: unknown): OtlpResourceSpans {
  const o = jsonObject(element, 'a ResourceSpans');
  let resource: OtlpResource | undefined;
  let scopeSpans: OtlpScopeSpans[] = [];
  let schemaUrl = '';
  for (const key in o) {
    const v = o[key];
    switch (key) {
      case 'resource': {
        const r = jsonMessage(v, key);
        if (r !== undefined) resource = within(key, () => jsonResource(r));
        break;
      }
      case 'scopeSpans':
      case 'scope_spans':
        scopeSpans = jsonArray(v, key, jsonScopeSpans);
        break;
      case 'schemaUrl':
      case 'schema_url':
        schemaUrl = jsonString(v, key);
        break;
    }
  }
  const out: OtlpResourceSpans = { scopeSpans };
  if (resource !== undefined) out.resource = resource;
  if (schemaUrl !== '') out.schemaUrl = schemaUrl;
  return out;
}

function jsonResource(o: JsonObject): OtlpResource {
  let attributes: OtlpKeyValue[] = [];
  let dropped = 0;
  for (const key in o) {
    const v = o[key];
    switch (key) {
      case 'attributes':
        attributes = jsonArray(v, key, jsonAttribute);
        break;
      case 'droppedAttributesCount':
      case 'dropped_attributes_count':
        dropped = jsonUint32(v, key);
        break;
    }
  }
  const out: OtlpResource = { attributes };
  if (dropped !== 0) out.droppedAttributesCount = dropped;
  return out;
}

function jsonScopeSpans(element: unknown): OtlpScopeSpans {
  const o = jsonObject(element, 'a ScopeSpans');
  let scope: OtlpScope | undefined;
  let spans: OtlpSpan[] = [];
  let schemaUrl = '';
  for (const key in o) {
    const v = o[key];
    switch (key) {
      case 'scope': {
        const s = jsonMessage(v, key);
        if (s !== undefined) scope = within(key, () => jsonScope(s));
        break;
      }
      case 'spans':
        spans = jsonArray(v, key, jsonSpan);
        break;
      case 'schemaUrl':
      case 'schema_url':
        schemaUrl = jsonString(v, key);
        break;
    }
  }
  const out: OtlpScopeSpans = { spans };
  if (scope !== undefined) out.scope = scope;
  if (schemaUrl !== '') out.schemaUrl = schemaUrl;
  return out;
}

function jsonScope(o: JsonObject): OtlpScope {
  let name = '';
  let version = '';
  let attributes: OtlpKeyValue[] = [];
  let dropped = 0;
  for (const key in o) {
    const v = o[key];
    switch (key) {
      case 'name':
        name = jsonString(v, key);
        break;
      case 'version':
        version = jsonString(v, key);
        break;
      case 'attributes':
        attributes = jsonArray(v, key, jsonAttribute);
        break;
      case 'droppedAttributesCount':
      case 'dropped_attributes_count':
        dropped = jsonUint32(v, key);
        break;
    }
  }
  const out: OtlpScope = { name, attributes };
  if (version !== '') out.version = version;
  if (dropped !== 0) out.droppedAttributesCount = dropped;
  return out;
}

function jsonSpan(element: unknown): OtlpSpan {
  const o = jsonObject(element, 'a Span');
  let traceId = '';
  let spanId = '';
  let traceState = '';
  let parentSpanId = '';
  let flags = 0;
  let name = '';
  let kind = 0;
  let startTimeUnixNano = '0';
  let endTimeUnixNano = '0';
  let attributes: OtlpKeyValue[] = [];
  let droppedAttributes = 0;
  let events: OtlpSpanEvent[] = [];
  let droppedEvents = 0;
  let links: OtlpSpanLink[] = [];
  let droppedLinks = 0;
  let status: OtlpStatus | undefined;
  for (const key in o) {
    const v = o[key];
    switch (key) {
      case 'traceId':
      case 'trace_id':
        traceId = jsonId(v, key, 16);
        break;
      case 'spanId':
      case 'span_id':
        spanId = jsonId(v, key, 8);
        break;
      case 'traceState':
      case 'trace_state':
        traceState = jsonString(v, key);
        break;
      case 'parentSpanId':
      case 'parent_span_id':
        parentSpanId = jsonId(v, key, 8);
        break;
      case 'flags':
        flags = jsonUint32(v, key);
        break;
      case 'name':
        name = jsonString(v, key);
        break;
      case 'kind':
        kind = jsonEnum(v, key, SPAN_KIND_NAMES);
        break;
      case 'startTimeUnixNano':
      case 'start_time_unix_nano':
        startTimeUnixNano = jsonNanos(v, key);
        break;
      case 'endTimeUnixNano':
      case 'end_time_unix_nano':
        endTimeUnixNano = jsonNanos(v, key);
        break;
      case 'attributes':
        attributes = jsonArray(v, key, jsonAttribute);
        break;
      case 'droppedAttributesCount':
      case 'dropped_attributes_count':
        droppedAttributes = jsonUint32(v, key);
        break;
      case 'events':
        events = jsonArray(v, key, jsonEvent);
        break;
      case 'droppedEventsCount':
      case 'dropped_events_count':
        droppedEvents = jsonUint32(v, key);
        break;
      case 'links':
        links = jsonArray(v, key, jsonLink);
        break;
      case 'droppedLinksCount':
      case 'dropped_links_count':
        droppedLinks = jsonUint32(v, key);
        break;
      case 'status': {
        const s = jsonMessage(v, key);
        if (s !== undefined) status = within(key, () => jsonStatus(s));
        break;
      }
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

function jsonEvent(element: unknown): OtlpSpanEvent {
  const o = jsonObject(element, 'a Span.Event');
  let timeUnixNano = '0';
  let name = '';
  let attributes: OtlpKeyValue[] = [];
  let dropped = 0;
  for (const key in o) {
    const v = o[key];
    switch (key) {
      case 'timeUnixNano':
      case 'time_unix_nano':
        timeUnixNano = jsonNanos(v, key);
        break;
      case 'name':
        name = jsonString(v, key);
        break;
      case 'attributes':
        attributes = jsonArray(v, key, jsonAttribute);
        break;
      case 'droppedAttributesCount':
      case 'dropped_attributes_count':
        dropped = jsonUint32(v, key);
        break;
    }
  }
  const event: OtlpSpanEvent = { timeUnixNano, name, attributes };
  if (dropped !== 0) event.droppedAttributesCount = dropped;
  return event;
}

function jsonLink(element: unknown): OtlpSpanLink {
  const o = jsonObject(element, 'a Span.Link');
  let traceId = '';
  let spanId = '';
  let traceState = '';
  let attributes: OtlpKeyValue[] = [];
  let dropped = 0;
  let flags = 0;
  for (const key in o) {
    const v = o[key];
    switch (key) {
      case 'traceId':
      case 'trace_id':
        traceId = jsonId(v, key, 16);
        break;
      case 'spanId':
      case 'span_id':
        spanId = jsonId(v, key, 8);
        break;
      case 'traceState':
      case 'trace_state':
        traceState = jsonString(v, key);
        break;
      case 'attributes':
        attributes = jsonArray(v, key, jsonAttribute);
        break;
      case 'droppedAttributesCount':
      case 'dropped_attributes_count':
        dropped = jsonUint32(v, key);
        break;
      case 'flags':
        flags = jsonUint32(v, key);
        break;
    }
  }
  const link: OtlpSpanLink = { traceId, spanId, attributes };
  if (traceState !== '') link.traceState = traceState;
  if (dropped !== 0) link.droppedAttributesCount = dropped;
  if (flags !== 0) link.flags = flags;
  return link;
}

function jsonStatus(o: JsonObject): OtlpStatus {
  let code = 0;
  let message = '';
  for (const key in o) {
    const v = o[key];
    if (key === 'code') code = jsonEnum(v, key, STATUS_CODE_NAMES);
    else if (key === 'message') message = jsonString(v, key);
  }
  const status: OtlpStatus = { code };
  if (message !== '') status.message = message;
  return status;
}

function jsonAttribute(element: unknown): OtlpKeyValue {
  return jsonKeyValue(element, 0);
}

/** `depth` is the depth of the AnyValue that holds this pair (0 for attributes). */
function jsonKeyValue(element: unknown, depth: number): OtlpKeyValue {
  const o = jsonObject(element, 'a KeyValue');
  let key = '';
  let value: OtlpAnyValue | undefined;
  for (const k in o) {
    const v = o[k];
    if (k === 'key') key = jsonString(v, k);
    else if (k === 'value') {
      const m = jsonMessage(v, k);
      value = m === undefined ? undefined : within(k, () => jsonAnyValue(m, depth + 1));
    }
  }
  return value === undefined ? { key } : { key, value };
}

function jsonAnyValue(o: JsonObject, depth: number): OtlpAnyValue {
  if (depth > MAX_ANY_VALUE_DEPTH) return fail(`AnyValue nested deeper than ${MAX_ANY_VALUE_DEPTH} levels`);
  let value: OtlpAnyValue = {};
  for (const key in o) {
    const v = o[key];
    if (v === null) continue;
    switch (key) {
      case 'stringValue':
      case 'string_value':
        value = { stringValue: jsonString(v, key) };
        break;
      case 'boolValue':
      case 'bool_value':
        value = { boolValue: jsonBool(v, key) };
        break;
      case 'intValue':
      case 'int_value':
        value = { intValue: jsonInt64(v, key) };
        break;
      case 'doubleValue':
      case 'double_value':
        value = { doubleValue: jsonDouble(v, key) };
        break;
      case 'arrayValue':
      case 'array_value': {
        const list = jsonMessage(v, key);
        const values =
          list === undefined
            ? []
            : within(key, () =>
                jsonListValues(list, (item) => jsonAnyValue(jsonObject(item, 'an AnyValue'), depth + 1)),
              );
        value = { arrayValue: { values } };
        break;
      }
      case 'kvlistValue':
      case 'kvlist_value': {
        const list = jsonMessage(v, key);
        const values =
          list === undefined ? [] : within(key, () => jsonListValues(list, (item) => jsonKeyValue(item, depth)));
        value = { kvlistValue: { values } };
        break;
      }
      case 'bytesValue':
      case 'bytes_value':
        value = { bytesValue: jsonBytes(v, key) };
        break;
    }
  }
  return value;
}

function jsonListValues<T>(o: JsonObject, item: (element: unknown) => T): T[] {
  let values: T[] = [];
  for (const key in o) {
    if (key === 'values') values = jsonArray(o[key], key, item);
  }
  return values;
}
