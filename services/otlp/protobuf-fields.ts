/**
 * Field names per OTLP message (by field number), for "wrong wire type" messages of the protobuf decoder; a
 * field listed here is known, others are skipped.
 */

export const REQUEST_FIELDS: readonly (string | undefined)[] = [undefined, 'resource_spans'];
export const RESOURCE_SPANS_FIELDS: readonly (string | undefined)[] = [
  undefined,
  'resource',
  'scope_spans',
  'schema_url',
];
export const RESOURCE_FIELDS: readonly (string | undefined)[] = [
  undefined,
  'attributes',
  'dropped_attributes_count',
  'entity_refs',
];
export const SCOPE_SPANS_FIELDS: readonly (string | undefined)[] = [undefined, 'scope', 'spans', 'schema_url'];
export const SCOPE_FIELDS: readonly (string | undefined)[] = [
  undefined,
  'name',
  'version',
  'attributes',
  'dropped_attributes_count',
];
export const SPAN_FIELDS: readonly (string | undefined)[] = [
  undefined,
  'trace_id',
  'span_id',
  'trace_state',
  'parent_span_id',
  'name',
  'kind',
  'start_time_unix_nano',
  'end_time_unix_nano',
  'attributes',
  'dropped_attributes_count',
  'events',
  'dropped_events_count',
  'links',
  'dropped_links_count',
  'status',
  'flags',
];
export const EVENT_FIELDS: readonly (string | undefined)[] = [
  undefined,
  'time_unix_nano',
  'name',
  'attributes',
  'dropped_attributes_count',
];
export const LINK_FIELDS: readonly (string | undefined)[] = [
  undefined,
  'trace_id',
  'span_id',
  'trace_state',
  'attributes',
  'dropped_attributes_count',
  'flags',
];
// Field 1 of Status is reserved (the old deprecated_code): skipped like an unknown field.
export const STATUS_FIELDS: readonly (string | undefined)[] = [undefined, undefined, 'message', 'code'];
export const KEY_VALUE_FIELDS: readonly (string | undefined)[] = [undefined, 'key', 'value', 'key_strindex'];
export const ANY_VALUE_FIELDS: readonly (string | undefined)[] = [
  undefined,
  'string_value',
  'bool_value',
  'int_value',
  'double_value',
  'array_value',
  'kvlist_value',
  'bytes_value',
  'string_value_strindex',
];
export const LIST_FIELDS: readonly (string | undefined)[] = [undefined, 'values'];
