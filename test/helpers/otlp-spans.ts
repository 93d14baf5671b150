/** Decoded OTLP requests for classification tests: one trace, spans numbered in order. */
import type { OtlpKeyValue, OtlpSpan, OtlpTraceRequest } from '../../schemas/otlp.ts';

export const TRACE = '0af7651916cd43dd8448eb211c80319c';
let spanCounter = 0;

export function kv(key: string, value: string | number | boolean | string[]): OtlpKeyValue {
  if (Array.isArray(value))
    return { key, value: { arrayValue: { values: value.map((item) => ({ stringValue: item })) } } };
  if (typeof value === 'string') return { key, value: { stringValue: value } };
  if (typeof value === 'boolean') return { key, value: { boolValue: value } };
  return Number.isInteger(value) ? { key, value: { intValue: value } } : { key, value: { doubleValue: value } };
}

export function span(
  name: string,
  attributes: Record<string, string | number | boolean | string[]>,
  extra: Partial<OtlpSpan> = {},
): OtlpSpan {
  spanCounter += 1;
  return {
    traceId: TRACE,
    spanId: spanCounter.toString(16).padStart(16, '0'),
    parentSpanId: 'b7ad6b7169203331',
    name,
    kind: 1,
    startTimeUnixNano: '1795900000123456789',
    endTimeUnixNano: '1795900000223456789',
    attributes: Object.entries(attributes).map(([key, value]) => kv(key, value)),
    events: [],
    links: [],
    ...extra,
  };
}

export function request(
  spans: OtlpSpan[],
  resource: Record<string, string> = { 'service.name': 'svc', 'gen_ai.agent.id': 'agent-7' },
): OtlpTraceRequest {
  return {
    resourceSpans: [
      {
        resource: { attributes: Object.entries(resource).map(([key, value]) => kv(key, value)) },
        scopeSpans: [{ spans }],
      },
    ],
  };
}
