/**
 * Fuzzing span classification (services/core/classify.ts) on decoded random requests, run mode `classify`:
 * classifyRequest never throws, every event has a kind and the detail of that kind, its id is trace id +
 * span id, every span is counted once (events + boundaries + dropped = spans), kept attributes stay within
 * their limits; tool calls whose arguments and results name counterparties (mail addresses, IBANs, phones,
 * handles, hosts, accounts) in JSON, free text or broken JSON never put one of those values into the event, only
 * keyed hashes; and the cost grows with the size of the request, not with spans × resource attributes.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { countSpans } from '../../services/otlp/codec.ts';
import { ATTR, EVENT_KINDS } from '../../schemas/conventions.ts';
import type { OtlpKeyValue, OtlpSpan, OtlpTraceRequest } from '../../schemas/otlp.ts';
import { classifyRequest } from '../../services/core/classify.ts';
import { MAX_ARGUMENT_KEYS, MAX_COUNTERPARTIES } from '../../services/core/counterparties.ts';
import {
  SMALL_SHAPE,
  anyValueArbitraries,
  anyText,
  attributeKey,
  chars,
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
  if (batch.events.length + batch.boundaries.length + batch.usageOnly + batch.dropped !== spans) {
    throw new Error(
      `${batch.events.length} events + ${batch.boundaries.length} boundaries + ${batch.usageOnly} model calls + ${batch.dropped} dropped != ${spans} spans`,
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

/** Letters that are no hex digit: a token of them can never show up inside a hash, an id or a number. */
const NON_HEX = chars('ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ');
const token = fc.string({ unit: fc.constantFrom(...NON_HEX), minLength: 8, maxLength: 12 });

/** A German IBAN with valid check digits for 18 random digits (the BBAN). */
function germanIban(bban: string): string {
  let remainder = 0;
  for (const char of `${bban}131400`) remainder = (remainder * 10 + Number(char)) % 97;
  return `DE${String(98 - remainder).padStart(2, '0')}${bban}`;
}

interface Planted {
  /** How the value is written in the span. */
  written: string;
  /** Parts that must not appear in the event, in any case. */
  secrets: string[];
  /** Found wherever it is written (a mail address), so the event must carry some counterparty. */
  alwaysFound?: boolean;
}

const planted: fc.Arbitrary<Planted> = fc.oneof(
  fc.tuple(token, token).map(([user, domain]) => ({
    written: `${user}@${domain}.example`,
    secrets: [user, domain],
    alwaysFound: true,
  })),
  fc.stringMatching(/^[1-9]\d{17}$/).map((bban) => {
    const iban = germanIban(bban);
    return { written: iban.replace(/(.{4})/g, '$1 ').trim(), secrets: [bban, iban.slice(4, 12)] };
  }),
  fc.stringMatching(/^[1-9]\d{9}$/).map((digits) => ({
    written: `+49 ${digits.slice(0, 3)} ${digits.slice(3)}`,
    secrets: [`49${digits}`, digits],
  })),
  token.map((name) => ({ written: `@${name}`, secrets: [name] })),
  token.map((name) => ({ written: `#${name}`, secrets: [name] })),
  token.map((name) => ({ written: `https://user:${name}x@www.${name}.example:8443/p?q=1`, secrets: [name] })),
  fc.tuple(token, fc.stringMatching(/^[1-9]\d{7}$/)).map(([prefix, digits]) => ({
    written: `${prefix}-${digits}`,
    secrets: [prefix, digits],
  })),
);

const ARGUMENT_KEYS = [
  'to',
  'cc',
  'user',
  'channel',
  'to_account',
  'iban',
  'phone',
  'amount',
  'body',
  'message',
  'host',
  'items',
];

/** Arguments: a JSON object of planted values and noise under telling keys (nested, in lists), or text, or broken JSON. */
const toolCall = fc
  .tuple(
    fc.array(fc.tuple(fc.constantFrom(...ARGUMENT_KEYS), planted, fc.nat(3), anyText), { minLength: 1, maxLength: 8 }),
    fc.array(planted, { maxLength: 6 }),
    fc.constantFrom<'json' | 'text' | 'truncated' | 'deep'>('json', 'text', 'truncated', 'deep'),
    fc.constantFrom('gen_ai', 'openinference', 'pydantic_v2', 'openllmetry'),
    fc.boolean(),
  )
  .map(([entries, resultValues, style, shape, resultJson]) => {
    const args: Record<string, unknown> = {};
    for (const [key, value, wrap, noise] of entries) {
      const item =
        wrap === 0
          ? value.written
          : wrap === 1
            ? [noise, value.written]
            : wrap === 2
              ? { [key]: value.written, note: noise }
              : `${noise} ${value.written} ${noise}`;
      // A key given twice keeps both values (a list), so that every planted value is in the arguments.
      args[key] = key in args ? [args[key], item] : item;
    }
    let argsText = JSON.stringify(style === 'deep' ? { a: { b: { c: { d: args } } } } : args);
    if (style === 'text') argsText = entries.map(([, value, , noise]) => `${noise} ${value.written}`).join(' ');
    if (style === 'truncated') argsText = argsText.slice(0, Math.max(1, argsText.length - 3));
    const result = resultJson
      ? JSON.stringify({ rows: resultValues.map((value) => ({ contact: value.written })) })
      : resultValues.map((value) => `sent to ${value.written}.`).join('\n');
    const all = [...entries.map(([, value]) => value), ...resultValues];
    const secrets = all.flatMap((value) => value.secrets);
    const findable = all.some((value) => value.alwaysFound === true);
    const names = {
      gen_ai: ['gen_ai.tool.call.arguments', 'gen_ai.tool.call.result'],
      openinference: ['input.value', 'output.value'],
      pydantic_v2: ['tool_arguments', 'tool_response'],
      openllmetry: ['traceloop.entity.input', 'traceloop.entity.output'],
    }[shape];
    const attributes: OtlpKeyValue[] = [
      { key: 'gen_ai.operation.name', value: { stringValue: 'execute_tool' } },
      { key: 'gen_ai.tool.name', value: { stringValue: 'send' } },
      { key: names[0] ?? '', value: { stringValue: argsText } },
      { key: names[1] ?? '', value: { stringValue: result } },
    ];
    return { request: { resourceSpans: [{ scopeSpans: [{ spans: [spanWith(attributes, 0)] }] }] }, secrets, findable };
  });

function checkNoRawValue({
  request,
  secrets,
  findable,
}: {
  request: OtlpTraceRequest;
  secrets: string[];
  findable: boolean;
}): void {
  const [event] = classifyRequest(request, TENANT, { counterpartyKey: 'fuzz-counterparty-key-0123' }).events;
  if (event?.tool === undefined) throw new Error('the tool span gave no tool call');
  // The target (where the call goes, from a URL-valued argument) is kept by design; ids and times come from the
  // span, not its content (and a planted `10000000` may well be part of one); everything else is checked.
  const { target: _target, ...tool } = event.tool;
  const { id: _id, traceId: _t, spanId: _s, parentSpanId: _p, taskId: _k, startMs: _a, endMs: _b, ...rest } = event;
  const stored = JSON.stringify({ ...rest, tool }).toLowerCase();
  for (const secret of secrets)
    if (stored.includes(secret.toLowerCase())) throw new Error(`the event holds the raw value ${secret}: ${stored}`);
  for (const list of [tool.counterparties, tool.resultCounterparties]) {
    expect((list ?? []).length).toBeLessThanOrEqual(MAX_COUNTERPARTIES);
    for (const party of list ?? []) expect(party.key).toMatch(/^[0-9a-f]{16}$/);
  }
  expect((tool.argumentKeys ?? []).length).toBeLessThanOrEqual(MAX_ARGUMENT_KEYS);
  if (tool.amount !== undefined) expect(Number.isFinite(tool.amount)).toBe(true);
  expect(tool.resultRecorded).toBe(true);
  if (findable)
    expect((tool.counterparties ?? []).length + (tool.resultCounterparties ?? []).length).toBeGreaterThan(0);
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
      fuzz(mode, 'random requests', classifiable, checkBatch, { runs: runsFor(0.798), caseBudgetMs: 1000 });
    },
    timeoutFor(runsFor(0.798), 2),
  );

  it(
    'never puts a raw counterparty of a tool call into the event, only keyed hashes',
    () => {
      fuzz(mode, 'counterparties', toolCall, checkNoRawValue, { runs: runsFor(0.2), caseBudgetMs: 1000 });
    },
    timeoutFor(runsFor(0.2), 2),
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
