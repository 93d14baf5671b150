/**
 * The gateway's byte-level router (services/otlp/route.ts) must give the same Kafka records as the
 * object path it replaces: decodeTraceRequest → classifyRequest → buildSpanRecords (same topics, keys, span
 * counts, and records that decode to the same objects), on realistic SDK payloads and on generated requests
 * that mix every attribute classification reads, at span and resource level.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeTraceRequest, encodeTraceRequest } from '../../services/otlp/codec.ts';
import { routeTraceRequest } from '../../services/otlp/route.ts';
import type { OtlpAnyValue, OtlpKeyValue, OtlpSpan, OtlpTraceRequest } from '../../schemas/otlp.ts';
import { buildSpanRecords } from '../../services/bus/kafka/publisher.ts';
import { classifyRequest } from '../../services/core/classify.ts';
import { TriplineError } from '../../services/shared/errors.ts';
import { generatePayloads } from '../bench/payloads/generate.ts';
import { adkRequest } from '../helpers/adk-run.ts';
import { langgraphJsRequest } from '../helpers/langgraph-js-run.ts';

const TOPICS = {
  tool_call: 'tools',
  data_access: 'data',
  privilege_change: 'privileges',
  alerts: 'alerts',
  revocations: 'revocations',
  deadLetter: 'dlq',
};

interface Comparable {
  topic: string;
  key: string;
  spans: number;
  value: OtlpTraceRequest;
}

const sorted = (records: Comparable[]): Comparable[] =>
  [...records].sort((a, b) => `${a.topic}\u0000${a.key}`.localeCompare(`${b.topic}\u0000${b.key}`));

function viaObjects(
  body: Uint8Array,
  maxRecordBytes = 900_000,
): { records: Comparable[]; events: number; boundaries: number; usageOnly: number; dropped: number } {
  const request = decodeTraceRequest(body, 'protobuf');
  const batch = classifyRequest(request, 'default');
  const records = buildSpanRecords(batch, request, TOPICS, maxRecordBytes).map((record) => ({
    topic: record.topic,
    key: record.key,
    spans: record.spans,
    value: decodeTraceRequest(record.value, 'protobuf'),
  }));
  return {
    records: sorted(records),
    events: batch.events.length,
    boundaries: batch.boundaries.length,
    usageOnly: batch.usageOnly,
    dropped: batch.dropped,
  };
}

function viaBytes(
  body: Uint8Array,
  maxRecordBytes = 900_000,
): { records: Comparable[]; events: number; boundaries: number; usageOnly: number; dropped: number } {
  const routed = routeTraceRequest(body, TOPICS, maxRecordBytes);
  const records = routed.records.map((record) => ({
    topic: record.topic,
    key: record.key,
    spans: record.spans,
    value: decodeTraceRequest(record.value, 'protobuf'),
  }));
  return {
    records: sorted(records),
    events: routed.events,
    boundaries: routed.boundaries,
    usageOnly: routed.usageOnly,
    dropped: routed.dropped,
  };
}

const str = (key: string, value: string): OtlpKeyValue => ({ key, value: { stringValue: value } });

function span(overrides: Partial<OtlpSpan>): OtlpSpan {
  return {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    parentSpanId: '00f067aa0ba902b7',
    name: 'span',
    kind: 1,
    startTimeUnixNano: '1764000000000000000',
    endTimeUnixNano: '1764000000005000000',
    attributes: [],
    events: [],
    links: [],
    ...overrides,
  };
}

describe('routeTraceRequest', () => {
  it('gives the same records as decode → classify → buildSpanRecords on SDK payloads of the four agent shapes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tripline-route-'));
    try {
      const set = await generatePayloads(dir, { requests: 12, spansPerRequest: 100, seed: 3 });
      for (const file of set.files) {
        const body = readFileSync(file);
        expect(viaBytes(body)).toEqual(viaObjects(body));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('routes boundaries to tool_calls, drops other spans, falls back to the trace id, reads the resource', () => {
    const request: OtlpTraceRequest = {
      resourceSpans: [
        {
          resource: { attributes: [str('tripline.task.id', 'task-r'), str('service.name', 'agent')] },
          schemaUrl: 'https://opentelemetry.io/schemas/1.30.0',
          scopeSpans: [
            {
              scope: { name: 'a', version: '1', attributes: [] },
              schemaUrl: 'https://opentelemetry.io/schemas/1.29.0',
              spans: [
                span({ spanId: '0000000000000001', attributes: [str('gen_ai.operation.name', 'execute_tool')] }),
                span({ spanId: '0000000000000002', parentSpanId: '', name: 'task root' }),
                span({ spanId: '0000000000000003', attributes: [str('http.method', 'GET')] }),
                span({
                  spanId: '0000000000000004',
                  attributes: [{ key: 'tripline.task.id', value: { intValue: 42 } }, str('db.system', 'mysql')],
                }),
              ],
            },
            {
              scope: { name: 'b', attributes: [] },
              spans: [span({ spanId: '0000000000000005', name: 'tools/call x' })],
            },
          ],
        },
        {
          scopeSpans: [
            {
              spans: [
                span({ spanId: '0000000000000006', attributes: [str('rpc.method', 'tools/call')] }),
                span({
                  spanId: '0000000000000007',
                  attributes: [str('mcp.method.name', 'initialize'), str('rpc.method', 'tools/call')],
                }),
                span({
                  spanId: '0000000000000008',
                  attributes: [str('tripline.event.kind', 'privilege_change'), str('db.system.name', 'x')],
                }),
                span({
                  spanId: '0000000000000009',
                  attributes: [{ key: 'tripline.data.bytes', value: { arrayValue: { values: [] } } }],
                }),
                span({
                  spanId: '000000000000000a',
                  attributes: [{ key: 'tripline.privilege.action', value: { kvlistValue: { values: [] } } }],
                }),
              ],
            },
          ],
        },
      ],
    };
    const body = encodeTraceRequest(request);
    const objects = viaObjects(body);
    expect(viaBytes(body)).toEqual(objects);
    expect(objects).toMatchObject({ events: 6, boundaries: 1, usageOnly: 0, dropped: 3 });
  });

  it("forwards the model call of a LlamaIndex agent's turn and drops its request preparation, as classification does", () => {
    // The two OpenInference LLM spans of a LlamaIndex FunctionAgent's turn (services/core/model-usage.ts).
    const llm = str('openinference.span.kind', 'LLM');
    const body = encodeTraceRequest({
      resourceSpans: [
        {
          resource: { attributes: [str('service.name', 'support-agent')] },
          scopeSpans: [
            {
              scope: { name: 'openinference.instrumentation.llama_index', attributes: [] },
              spans: [
                span({ spanId: '0000000000000001', name: 'OpenAI._prepare_chat_with_tools', attributes: [llm] }),
                span({
                  spanId: '0000000000000002',
                  name: 'OpenAI.astream_chat',
                  attributes: [llm, { key: 'llm.token_count.prompt', value: { intValue: 120 } }],
                }),
              ],
            },
          ],
        },
      ],
    });
    const objects = viaObjects(body);
    expect(viaBytes(body)).toEqual(objects);
    expect(objects).toMatchObject({ events: 0, boundaries: 0, usageOnly: 1, dropped: 1 });
  });

  it('routes a LangGraph.js run (OpenInference LangChain.js) as classification does', () => {
    const body = encodeTraceRequest(langgraphJsRequest());
    const objects = viaObjects(body);
    expect(viaBytes(body)).toEqual(objects);
    expect(objects).toMatchObject({ events: 2, boundaries: 1, usageOnly: 3, dropped: 9 });
  });

  it.each(['semconv', 'legacy'] as const)(
    'routes a Google ADK run (%s schema; the merged summary of parallel calls no tool call) as classification does',
    (schema) => {
      const body = encodeTraceRequest(adkRequest(schema));
      const objects = viaObjects(body);
      expect(viaBytes(body)).toEqual(objects);
      expect(objects).toMatchObject({ events: 3, boundaries: 1, usageOnly: 3 });
    },
  );

  it('halves a group over maxRecordBytes the same way, and refuses a span larger than the limit', () => {
    const spans = Array.from({ length: 40 }, (_, i) =>
      span({
        spanId: (i + 1).toString(16).padStart(16, '0'),
        attributes: [
          str('tripline.task.id', 't'),
          str('gen_ai.operation.name', 'execute_tool'),
          str('payload', 'x'.repeat(200)),
        ],
      }),
    );
    const body = encodeTraceRequest({
      resourceSpans: [{ scopeSpans: [{ scope: { name: 's', attributes: [] }, spans }] }],
    });
    const objects = viaObjects(body, 2000);
    expect(objects.records.length).toBeGreaterThan(4);
    expect(viaBytes(body, 2000)).toEqual(objects);
    const error = ((): unknown => {
      try {
        routeTraceRequest(body, TOPICS, 100);
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(TriplineError);
    expect((error as TriplineError).code).toBe('OTLP_PAYLOAD_TOO_LARGE');
  });

  it('keys every span by its trace, whatever task it declares, and reads attributes afresh when a reused buffer changes', () => {
    const body = Buffer.from(
      encodeTraceRequest({
        resourceSpans: [
          {
            scopeSpans: [
              { spans: [span({ attributes: [str('tripline.task.id', 'task-aaaa'), str('db.system.name', 'x')] })] },
            ],
          },
        ],
      }),
    );
    const trace = span({}).traceId;
    expect(routeTraceRequest(body, TOPICS, 900_000).records.map((record) => [record.topic, record.key])).toEqual([
      [TOPICS.data_access, trace],
    ]);
    // The same bytes with the data attribute renamed: the span is no event now, only a declaration of its task.
    body.write('db.systex', body.indexOf('db.system'), 'latin1');
    expect(routeTraceRequest(body, TOPICS, 900_000).records.map((record) => [record.topic, record.key])).toEqual([
      [TOPICS.tool_call, trace],
    ]);
  });

  it('answers OTLP_BAD_REQUEST for malformed protobuf, and nothing for an empty body', () => {
    expect(routeTraceRequest(new Uint8Array(0), TOPICS, 900_000)).toEqual({
      records: [],
      events: 0,
      boundaries: 0,
      usageOnly: 0,
      dropped: 0,
    });
    for (const garbage of [
      Uint8Array.of(0x0a, 0x05, 0x12),
      Uint8Array.of(0x0a, 0x02, 0x12, 0x7f),
      Uint8Array.of(0x0f),
      Buffer.from('{"resourceSpans":[]}'),
    ]) {
      let caught: unknown;
      try {
        routeTraceRequest(garbage, TOPICS, 900_000);
      } catch (error) {
        caught = error;
      }
      expect(caught, Buffer.from(garbage).toString('hex')).toBeInstanceOf(TriplineError);
      expect((caught as TriplineError).code).toBe('OTLP_BAD_REQUEST');
    }
  });

  it('agrees with the object path on generated requests (every classification attribute, span and resource level)', () => {
    const keys = [
      'tripline.event.kind',
      'tripline.privilege.action',
      'gen_ai.operation.name',
      'mcp.method.name',
      'rpc.method',
      'openinference.span.kind',
      'traceloop.span.kind',
      'db.system.name',
      'db.system',
      'db.collection.name',
      'tripline.data.resource',
      'tripline.data.bytes',
      'tripline.task.id',
      'tripline.task.root',
      'llm.request.type',
      'gen_ai.usage.prompt_tokens',
      'gen_ai.usage.completion_tokens',
      'gen_ai.tool.name',
      'service.name',
      'other.key',
    ];
    const strings = [
      'tool_call',
      'data_access',
      'privilege_change',
      'execute_tool',
      'tools/call',
      'TOOL',
      'tool',
      'Tool',
      'chat',
      'embeddings',
      'text_completion',
      'invoke_agent',
      'completion',
      'embedding',
      'LLM',
      'Embedding',
      'true',
      'false',
      '',
      'task-1',
      'task-2',
      '(merged tools)',
      'x',
    ];
    const value: fc.Arbitrary<OtlpAnyValue> = fc.oneof(
      fc.constantFrom(...strings).map((stringValue): OtlpAnyValue => ({ stringValue })),
      fc.boolean().map((boolValue): OtlpAnyValue => ({ boolValue })),
      fc.integer({ min: -5, max: 5 }).map((intValue): OtlpAnyValue => ({ intValue })),
      fc.constantFrom(0.5, 2, -1).map((doubleValue): OtlpAnyValue => ({ doubleValue })),
      fc.constant<OtlpAnyValue>({ arrayValue: { values: [{ stringValue: 'a' }] } }),
      fc.constant<OtlpAnyValue>({ kvlistValue: { values: [] } }),
    );
    const attributes = fc.array(fc.record({ key: fc.constantFrom(...keys), value }), { maxLength: 5 });
    const id = (bytes: number): fc.Arbitrary<string> =>
      fc.constantFrom('', '0'.repeat(bytes * 2), 'ab'.repeat(bytes), 'cd'.repeat(bytes));
    const spanArb = fc.record({
      traceId: id(16),
      spanId: fc.constantFrom(
        '0000000000000001',
        '0000000000000002',
        '0000000000000003',
        '0000000000000004',
        '0000000000000005',
        '0000000000000006',
      ),
      parentSpanId: id(8),
      name: fc.constantFrom(
        'execute_tool x',
        'tools/call y',
        'execute_tool',
        'execute_tool (merged)',
        'plain',
        '',
        'OpenAI._prepare_chat_with_tools',
        '._prepare_chat_with_tools',
        '_prepare_chat_with_tools',
      ),
      attributes,
    });
    const requestArb = fc.array(
      fc.record({
        resource: attributes,
        scopes: fc.array(fc.array(spanArb, { maxLength: 4 }), { minLength: 1, maxLength: 2 }),
      }),
      { minLength: 1, maxLength: 3 },
    );
    fc.assert(
      fc.property(requestArb, (generated) => {
        let counter = 0;
        const request: OtlpTraceRequest = {
          resourceSpans: generated.map((resource) => ({
            resource: { attributes: resource.resource },
            scopeSpans: resource.scopes.map((spans) => ({
              scope: { name: 'scope', attributes: [] },
              // Unique span ids: the object path routes by trace id + span id.
              spans: spans.map((generatedSpan) =>
                span({ ...generatedSpan, spanId: (++counter).toString(16).padStart(16, '0') }),
              ),
            })),
          })),
        };
        const body = encodeTraceRequest(request);
        expect(viaBytes(body)).toEqual(viaObjects(body));
      }),
      { numRuns: 400 },
    );
  });
});
