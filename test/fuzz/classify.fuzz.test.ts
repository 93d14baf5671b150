/**
 * Fuzzing span classification (services/core/classify.ts) on decoded random requests, run mode `classify`:
 * classifyRequest never throws, every event has a kind and the detail of that kind, its id is trace id +
 * span id, every span is counted once (events + boundaries + dropped = spans), kept attributes stay within
 * their limits; and the cost grows with the size of the request, not with spans × resource attributes.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { countSpans } from '../../services/otlp/codec.ts';
import { ATTR, EVENT_KINDS } from '../../schemas/conventions.ts';
import type { OtlpKeyValue, OtlpSpan, OtlpTraceRequest } from '../../schemas/otlp.ts';
import { classifyRequest } from '../../services/core/classify.ts';
import {
  SMALL_SHAPE,
  anyValueArbitraries,
  attributeKey,
  fuzz,
  otlpRequest,
  reportMemory,
  runsFor,
  settledHeapMb,
  timeoutFor,
} from './arbitraries.ts';

const mode = 'classify';
const TENANT = 'tenant-fuzz';

/** Requests whose spans and resources carry the attributes the classifier reads, with values of any type. */
const classifiable: fc.Arbitrary<OtlpTraceRequest> = fc
  .tuple(
    otlpRequest({ ...SMALL_SHAPE, attributes: 8 }),
    fc.array(fc.tuple(fc.constantFrom(...Object.values(ATTR)), anyValueArbitraries(2).anyValue), { maxLength: 6 }),
    fc.array(fc.tuple(fc.constantFrom(...Object.values(ATTR)), anyValueArbitraries(2).anyValue), { maxLength: 6 }),
  )
  .map(([request, resourceExtra, spanExtra]) => {
    for (const rs of request.resourceSpans) {
      rs.resource = {
        attributes: [...(rs.resource?.attributes ?? []), ...resourceExtra.map(([key, value]) => ({ key, value }))],
      };
      for (const ss of rs.scopeSpans) {
        for (const span of ss.spans) span.attributes.push(...spanExtra.map(([key, value]) => ({ key, value })));
      }
    }
    return request;
  });

function checkBatch(request: OtlpTraceRequest): void {
  const batch = classifyRequest(request, TENANT);
  const spans = countSpans(request);
  if (batch.events.length + batch.boundaries.length + batch.dropped !== spans) {
    throw new Error(
      `${batch.events.length} events + ${batch.boundaries.length} boundaries + ${batch.dropped} dropped != ${spans} spans`,
    );
  }
  for (const event of batch.events) {
    expect(EVENT_KINDS).toContain(event.kind);
    expect(event.id).toBe(`${event.traceId}${event.spanId}`);
    expect(event.tenant).toBe(TENANT);
    expect(typeof event.taskId).toBe('string');
    expect(typeof event.taskType === 'string' && event.taskType !== '').toBe(true);
    expect(typeof event.agentId === 'string' && event.agentId !== '').toBe(true);
    expect(Number.isFinite(event.startMs) && Number.isFinite(event.endMs)).toBe(true);
    if (event.kind === 'tool_call') expect(typeof event.tool?.name).toBe('string');
    if (event.kind === 'data_access') expect(typeof event.data?.resource).toBe('string');
    if (event.kind === 'privilege_change') {
      expect(typeof event.privilege?.action).toBe('string');
      expect(Array.isArray(event.privilege?.scopesBefore) && Array.isArray(event.privilege.scopesAfter)).toBe(true);
    }
    const kept = Object.entries(event.attributes);
    expect(kept.length).toBeLessThanOrEqual(64);
    for (const [, value] of kept) {
      expect(['string', 'number', 'boolean']).toContain(typeof value);
      if (typeof value === 'string') expect(value.length).toBeLessThanOrEqual(512);
    }
    for (const n of [event.data?.rows, event.data?.bytes])
      if (n !== undefined) expect(Number.isFinite(n) && n >= 0).toBe(true);
  }
  for (const boundary of batch.boundaries) {
    expect(boundary.tenant).toBe(TENANT);
    expect(boundary.taskId).not.toBe('');
    expect(Number.isFinite(boundary.startMs) && Number.isFinite(boundary.endMs)).toBe(true);
  }
}

function spanWith(attributes: OtlpKeyValue[], i: number): OtlpSpan {
  const id = (i + 1).toString(16).padStart(16, '0');
  return {
    traceId: `${id}${id}`,
    spanId: id,
    parentSpanId: '',
    name: 'execute_tool x',
    kind: 1,
    startTimeUnixNano: '1700000000000000000',
    endTimeUnixNano: '1700000000100000000',
    attributes,
    events: [],
    links: [],
  };
}

/** A request of `spans` spans (one attribute each) under a resource with `resourceAttributes` attributes. */
function wideRequest(resourceAttributes: number, spans: number, key: string): OtlpTraceRequest {
  const resource = Array.from({ length: resourceAttributes }, (_, i): OtlpKeyValue => ({
    key: `resource.attribute.${i}`,
    value: { stringValue: 'v' },
  }));
  resource.push({ key: ATTR.eventKind, value: { stringValue: 'tool_call' } });
  return {
    resourceSpans: [
      {
        resource: { attributes: resource },
        scopeSpans: [
          { spans: Array.from({ length: spans }, (_, i) => spanWith([{ key, value: { intValue: i } }], i)) },
        ],
      },
    ],
  };
}

/** Sizes up to 20 000 × 20 000 (about 1 MB on the wire), and the corners. */
const wide: fc.Arbitrary<{ resourceAttributes: number; spans: number; key: string }> = fc
  .tuple(
    fc.oneof(
      fc.tuple(fc.integer({ min: 0, max: 20_000 }), fc.integer({ min: 0, max: 20_000 })),
      fc.constantFrom<[number, number]>([20_000, 20_000], [5_000, 5_000], [1, 20_000], [20_000, 1]),
    ),
    attributeKey,
  )
  .map(([[resourceAttributes, spans], key]) => ({ resourceAttributes, spans, key }));

function timed(request: OtlpTraceRequest): number {
  const started = performance.now();
  const batch = classifyRequest(request, TENANT);
  const took = performance.now() - started;
  expect(batch.events.length).toBe(countSpans(request));
  return took;
}

describe('fuzz: classification', () => {
  let heapBefore = 0;

  it(
    'never throws; every span is an event, a boundary or dropped, exactly once; events are well-formed',
    () => {
      heapBefore = settledHeapMb();
      fuzz(mode, 'random requests', classifiable, checkBatch, { runs: runsFor(0.998), caseBudgetMs: 1000 });
    },
    timeoutFor(runsFor(0.998), 2),
  );

  it(
    'costs time in proportion to the request: spans × resource attributes is not a multiplier',
    () => {
      fuzz(
        mode,
        'wide requests',
        wide,
        ({ resourceAttributes, spans, key }) => {
          // Events keep at most 64 attributes, so resource attributes past 64 should cost one pass over them,
          // not one per span: compare with the same spans under a 64-attribute resource (machine-independent).
          const small = timed(wideRequest(Math.min(resourceAttributes, 64), spans, key));
          const large = timed(wideRequest(resourceAttributes, spans, key));
          const budget = 3 * small + 200 + resourceAttributes * 0.01;
          if (large > budget) {
            throw new Error(
              `${resourceAttributes} resource attributes × ${spans} spans: ${large.toFixed(0)} ms, against ${small.toFixed(0)} ms under 64 resource attributes (budget ${budget.toFixed(0)} ms)`,
            );
          }
        },
        { runs: runsFor(0.002), caseBudgetMs: 60_000, shrink: false },
      );
      const { heapGrowthMb } = reportMemory(mode, heapBefore);
      expect(heapGrowthMb).toBeLessThan(64);
    },
    timeoutFor(runsFor(0.002), 30_000),
  );
});
