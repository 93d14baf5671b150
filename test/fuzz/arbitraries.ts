/**
 * fast-check arbitraries for fuzzing Tripline's edges (the OTLP decoders, the OTLP/HTTP receiver, span
 * classification, the JSON API), and the small harness the fuzz tests share (run counts, per-case time
 * budgets, memory figures, the report that `scripts/fuzz.ts` prints). See docs/fuzzing.md.
 *
 * Valid requests come in the canonical shape `decodeTraceRequest` produces (defaults left out, ids lowercase
 * hex, 64-bit values as the decoder writes them), so a round trip can be compared with `toEqual`. Broken
 * input is built at the wire level with an encoder written here, not with the codec under test.
 */
import { Buffer } from 'node:buffer';
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { ATTR, EVENT_KINDS } from '../../schemas/conventions.ts';
import type {
  OtlpAnyValue,
  OtlpFormat,
  OtlpKeyValue,
  OtlpResourceSpans,
  OtlpScopeSpans,
  OtlpSpan,
  OtlpSpanEvent,
  OtlpSpanLink,
  OtlpStatus,
  OtlpTraceRequest,
} from '../../schemas/otlp.ts';
import { encodeTraceRequest } from '../../services/otlp/codec.ts';

// ============================================================================================================
// Harness: run counts, budgets, reports
// ============================================================================================================

function positiveIntEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1)
    throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return value;
}

/**
 * Generated inputs per run mode (decoder protobuf, decoder JSON, HTTP edge, API, classification). A mode's
 * properties share this budget (see `runsFor`). Small by default so that `npm test` stays fast;
 * `scripts/fuzz.ts` sets 100 000.
 */
export const FUZZ_RUNS = positiveIntEnv('FUZZ_RUNS', 1000);

/** Requests sent through a real listening socket (the rest of the HTTP mode uses `app.inject()`). */
export const FUZZ_SOCKET_RUNS = positiveIntEnv('FUZZ_SOCKET_RUNS', 300);

/** The runs of one property: its share of the mode's budget (shares of a mode sum to 1), at least 1. */
export function runsFor(share: number, total: number = FUZZ_RUNS): number {
  return Math.max(1, Math.round(total * share));
}

/** A vitest timeout for a property of `runs` cases that each cost about `msPerCase`, plus set-up. */
export function timeoutFor(runs: number, msPerCase: number): number {
  return 60_000 + Math.ceil(runs * msPerCase);
}

/** What one property run did; `scripts/fuzz.ts` reads these from FUZZ_REPORT_DIR. */
export interface FuzzRecord {
  mode: string;
  property: string;
  runs: number;
  ms: number;
  maxCaseMs: number;
  failed: boolean;
  seed: number;
  path?: string;
  message?: string;
  /** Memory records only. */
  heapGrowthMb?: number;
  peakRssMb?: number;
}

export function report(record: FuzzRecord): void {
  const dir = process.env.FUZZ_REPORT_DIR;
  if (dir !== undefined && dir !== '') {
    mkdirSync(dir, { recursive: true });
    appendFileSync(join(dir, `${process.pid}.jsonl`), `${JSON.stringify(record)}\n`);
  }
  if (record.heapGrowthMb !== undefined) {
    console.log(
      `fuzz ${record.mode}: heap growth ${record.heapGrowthMb.toFixed(1)} MB, peak RSS ${String(record.peakRssMb)} MB`,
    );
  } else {
    const rate = record.ms > 0 ? Math.round((record.runs * 1000) / record.ms) : record.runs;
    console.log(
      `fuzz ${record.mode} / ${record.property}: ${record.runs} inputs in ${(record.ms / 1000).toFixed(1)} s (${rate}/s), slowest ${record.maxCaseMs.toFixed(1)} ms` +
        (record.failed
          ? ` — FAILED (seed ${record.seed}${record.path === undefined ? '' : `, path ${record.path}`})`
          : ''),
    );
  }
}

export interface FuzzOptions {
  runs: number;
  /** A case that takes longer fails the property (a hang, or work out of proportion to the input). */
  caseBudgetMs: number;
  /** Shrink a counterexample (default true; off for huge inputs, where shrinking costs minutes). */
  shrink?: boolean;
}

/** Seed and path to replay a failure: FUZZ_SEED and FUZZ_PATH (printed with every failure). */
function replayParams(): { seed?: number; path?: string } {
  const seed = process.env.FUZZ_SEED;
  const path = process.env.FUZZ_PATH;
  return {
    ...(seed === undefined || seed === '' ? {} : { seed: Number(seed) }),
    ...(path === undefined || path === '' ? {} : { path }),
  };
}

/** A short, readable rendering of a counterexample (bodies can be megabytes). */
export function summarize(value: unknown, depth = 0): string {
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    const printable = /^[\x20-\x7e\t\r\n]*$/.test(bytes.subarray(0, 400).toString('latin1'));
    const head = printable
      ? JSON.stringify(bytes.subarray(0, 400).toString('latin1'))
      : `hex ${bytes.subarray(0, 160).toString('hex')}`;
    return `<${bytes.length} bytes: ${head}${bytes.length > (printable ? 400 : 160) ? '…' : ''}>`;
  }
  if (typeof value === 'string')
    return value.length > 300
      ? `${JSON.stringify(value.slice(0, 300))}… (${value.length} chars)`
      : JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  if (depth > 6) return Array.isArray(value) ? '[…]' : '{…}';
  if (Array.isArray(value)) {
    const items = value.slice(0, 12).map((item) => summarize(item, depth + 1));
    return `[${items.join(', ')}${value.length > 12 ? `, … (${value.length} items)` : ''}]`;
  }
  const entries = Object.entries(value)
    .slice(0, 24)
    .map(([key, item]) => `${key}: ${summarize(item, depth + 1)}`);
  return `{${entries.join(', ')}}`;
}

function finish<T>(
  mode: string,
  property: string,
  details: fc.RunDetails<T>,
  started: number,
  maxCaseMs: number,
  runs = details.numRuns,
): void {
  const record: FuzzRecord = {
    mode,
    property,
    runs,
    ms: performance.now() - started,
    maxCaseMs,
    failed: details.failed,
    seed: details.seed,
  };
  let message = '';
  if (details.failed) {
    const error = details.errorInstance;
    const reason =
      error instanceof Error
        ? `${error.message}${error.cause instanceof Error ? ` (cause: ${error.cause.message})` : ''}`
        : String(error);
    message =
      `${mode} / ${property}: property failed after ${runs} input(s), shrunk ${details.numShrinks} time(s)\n` +
      `counterexample: ${summarize(details.counterexample).slice(0, 3000)}\n` +
      `error: ${reason.slice(0, 3000)}`;
    record.path = details.counterexamplePath ?? undefined;
    record.message = message;
  }
  report(record);
  if (details.failed) {
    const replay = `FUZZ_SEED=${details.seed}${details.counterexamplePath === null ? '' : ` FUZZ_PATH=${details.counterexamplePath}`}`;
    throw new Error(`${message}\nreplay: ${replay} npx vitest run test/fuzz -t ${JSON.stringify(property)}`);
  }
}

/** Longest time spent shrinking a counterexample (the run itself stops at the first failure). */
const SHRINK_MS = 20_000;

/** Replays a failure from its seed and path with shrinking on, for at most SHRINK_MS. */
function shrunk<T>(details: fc.RunDetails<T>, check: (params: fc.Parameters<T>) => fc.RunDetails<T>): fc.RunDetails<T> {
  if (!details.failed || details.counterexamplePath === null) return details;
  const again = check({
    seed: details.seed,
    path: details.counterexamplePath,
    endOnFailure: false,
    plugins: [fc.interruptAfterTimeLimit(SHRINK_MS)],
  });
  return again.failed ? again : details;
}

/** Runs a synchronous property, timing every case against the budget; records and throws on failure. */
export function fuzz<T>(
  mode: string,
  property: string,
  arbitrary: fc.Arbitrary<T>,
  predicate: (value: T) => void,
  options: FuzzOptions,
): void {
  let maxCaseMs = 0;
  const prop = fc.property(arbitrary, (value) => {
    const started = performance.now();
    try {
      predicate(value);
    } finally {
      maxCaseMs = Math.max(maxCaseMs, performance.now() - started);
    }
    const took = performance.now() - started;
    if (took > options.caseBudgetMs)
      throw new Error(`one input took ${took.toFixed(0)} ms (budget ${options.caseBudgetMs} ms)`);
  });
  const started = performance.now();
  const details = fc.check(prop, { numRuns: options.runs, endOnFailure: true, ...replayParams() });
  finish(
    mode,
    property,
    options.shrink === false ? details : shrunk(details, (params) => fc.check(prop, params)),
    started,
    maxCaseMs,
    details.numRuns,
  );
}

/** Async version: fast-check fails a case that does not settle within the budget (a hang). */
export async function fuzzAsync<T>(
  mode: string,
  property: string,
  arbitrary: fc.Arbitrary<T>,
  predicate: (value: T) => Promise<void>,
  options: FuzzOptions,
): Promise<void> {
  let maxCaseMs = 0;
  const prop = fc.asyncProperty(arbitrary, async (value) => {
    const started = performance.now();
    try {
      await predicate(value);
    } finally {
      maxCaseMs = Math.max(maxCaseMs, performance.now() - started);
    }
    const took = performance.now() - started;
    if (took > options.caseBudgetMs)
      throw new Error(`one input took ${took.toFixed(0)} ms (budget ${options.caseBudgetMs} ms)`);
  });
  const started = performance.now();
  const params = { numRuns: options.runs, endOnFailure: true, timeout: options.caseBudgetMs, ...replayParams() };
  const details = await fc.check(prop, params);
  if (details.failed && options.shrink !== false && details.counterexamplePath !== null) {
    const again = await fc.check(prop, {
      ...params,
      seed: details.seed,
      path: details.counterexamplePath,
      endOnFailure: false,
      plugins: [fc.interruptAfterTimeLimit(SHRINK_MS)],
    });
    if (again.failed) {
      finish(mode, property, again, started, maxCaseMs, details.numRuns);
      return;
    }
  }
  finish(mode, property, details, started, maxCaseMs);
}

let gcFunction: (() => void) | undefined;

/** A full garbage collection (exposes V8's `gc` for this process if needed). */
export function collectGarbage(): void {
  if (gcFunction === undefined) {
    setFlagsFromString('--expose-gc');
    gcFunction = runInNewContext('gc') as () => void;
  }
  gcFunction();
  gcFunction();
}

/** Heap in use after a full collection, in MB. */
export function settledHeapMb(): number {
  collectGarbage();
  return process.memoryUsage().heapUsed / 1e6;
}

/** Peak resident set size of this process so far, in MB. */
export function peakRssMb(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

/** Records the heap growth since `baselineMb` and the peak RSS of the mode; returns the growth in MB. */
export function reportMemory(mode: string, baselineMb: number): { heapGrowthMb: number; peakRssMb: number } {
  const heapGrowthMb = settledHeapMb() - baselineMb;
  const peak = peakRssMb();
  report({
    mode,
    property: 'memory',
    runs: 0,
    ms: 0,
    maxCaseMs: 0,
    failed: false,
    seed: 0,
    heapGrowthMb,
    peakRssMb: peak,
  });
  return { heapGrowthMb, peakRssMb: peak };
}

// ============================================================================================================
// Protobuf wire encoding (independent of the codec under test)
// ============================================================================================================

export const WIRE = { VARINT: 0, I64: 1, LEN: 2, SGROUP: 3, EGROUP: 4, I32: 5 } as const;

/** A varint of any non-negative value (a negative number is written as its 64-bit two's complement). */
export function varint(value: number | bigint): Buffer {
  let v = typeof value === 'bigint' ? value : BigInt(value);
  if (v < 0n) v = BigInt.asUintN(64, v);
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

export function tagOf(field: number, wire: number): Buffer {
  return varint((BigInt(field) << 3n) | BigInt(wire));
}

export function lenField(field: number, content: Uint8Array): Buffer {
  return Buffer.concat([tagOf(field, WIRE.LEN), varint(content.length), content]);
}

export function varintField(field: number, value: number | bigint): Buffer {
  return Buffer.concat([tagOf(field, WIRE.VARINT), varint(value)]);
}

export function stringField(field: number, text: string): Buffer {
  return lenField(field, Buffer.from(text, 'utf8'));
}

/** A request holding one span with the given encoded span body. */
export function requestWithSpan(spanBody: Uint8Array): Buffer {
  return lenField(1, lenField(2, lenField(2, spanBody)));
}

/** A request holding one span that carries one attribute with the given encoded AnyValue body. */
export function requestWithAttributeValue(anyValueBody: Uint8Array, key = 'k'): Buffer {
  return requestWithSpan(lenField(9, Buffer.concat([stringField(1, key), lenField(2, anyValueBody)])));
}

// ============================================================================================================
// Valid requests in canonical (decoded) form
// ============================================================================================================

const CONVENTION_KEYS: readonly string[] = Object.values(ATTR);

/** Values the classifier looks for, so that random spans become every kind of event. */
const CONVENTION_STRINGS = [
  ...EVENT_KINDS,
  'execute_tool',
  'tools/call',
  'TOOL',
  'tool',
  'true',
  'false',
  'read',
  'write',
  'destructive',
  'public',
  'restricted',
  'postgresql',
  'https://user@example.com:8443/a?b#c',
  'file:///etc/passwd',
  'grant',
  'a, b  c',
];

const hexOf = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** The characters of an ASCII alphabet, for `fc.constantFrom(...chars('abc'))`. */
export function chars(alphabet: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < alphabet.length; i += 1) out.push(alphabet.charAt(i));
  return out;
}

/** A trace (16) or span (8) id: lowercase hex, never all zeroes (an all-zero id decodes as ''). */
export function nonZeroId(size: 8 | 16): fc.Arbitrary<string> {
  return fc.uint8Array({ minLength: size, maxLength: size }).map((bytes) => {
    if (bytes.every((b) => b === 0)) bytes[size - 1] = 1;
    return hexOf(bytes);
  });
}

export function optionalId(size: 8 | 16): fc.Arbitrary<string> {
  return fc.oneof({ arbitrary: nonZeroId(size), weight: 4 }, { arbitrary: fc.constant(''), weight: 1 });
}

/** Any well-formed string: ASCII, full Unicode, grapheme clusters, convention values, the odd long one. */
export const anyText: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 16 }), weight: 4 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 16 }), weight: 3 },
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }), weight: 1 },
  { arbitrary: fc.constantFrom(...CONVENTION_STRINGS), weight: 2 },
  { arbitrary: fc.string({ unit: 'binary-ascii', minLength: 200, maxLength: 2000 }), weight: 1 },
);

const nonEmptyText = anyText.map((text) => (text === '' ? 'x' : text));

/** Attribute keys: mostly the conventions the classifier reads, so that spans classify every way. */
export const attributeKey: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.constantFrom(...CONVENTION_KEYS), weight: 3 },
  { arbitrary: anyText, weight: 2 },
  { arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', ''), weight: 1 },
);

const UINT64_MAX = 2n ** 64n - 1n;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** int64 edge values: the ends of the range, the ends of the safe integers and their neighbours. */
export const INT64_EDGES: readonly bigint[] = [
  0n,
  1n,
  -1n,
  INT64_MIN,
  INT64_MIN + 1n,
  INT64_MAX,
  INT64_MAX - 1n,
  2n ** 53n - 1n,
  2n ** 53n,
  2n ** 53n + 1n,
  -(2n ** 53n) + 1n,
  -(2n ** 53n),
  -(2n ** 53n) - 1n,
  2n ** 31n - 1n,
  -(2n ** 31n),
  2n ** 32n,
];

/** An int64 in decoded form: a number when it is a safe integer, else a decimal string. */
export const int64Value: fc.Arbitrary<number | string> = fc
  .oneof(fc.constantFrom(...INT64_EDGES), fc.bigInt({ min: INT64_MIN, max: INT64_MAX }), fc.integer().map(BigInt))
  .map((big) => {
    const n = Number(big);
    return Number.isSafeInteger(n) ? n : big.toString();
  });

/** fixed64 nanoseconds as the decoder writes them: canonical decimal strings, '0' when absent. */
export const nanos: fc.Arbitrary<string> = fc.oneof(
  fc.constant('0'),
  fc.constantFrom('1', String(UINT64_MAX), String(2n ** 63n), String(2n ** 53n + 1n)),
  fc.bigInt({ min: 0n, max: UINT64_MAX }).map(String),
  fc.bigInt({ min: 1_600_000_000_000_000_000n, max: 1_900_000_000_000_000_000n }).map(String),
);

const uint32NonZero = fc.oneof(
  fc.integer({ min: 1, max: 100 }),
  fc.constant(0xffffffff),
  fc.integer({ min: 1, max: 0xffffffff }),
);
const int32 = fc.oneof(
  fc.integer({ min: 0, max: 5 }),
  fc.constantFrom(-1, -0x80000000, 0x7fffffff),
  fc.integer({ min: -0x80000000, max: 0x7fffffff }),
);

/** Optional: the value or nothing (so that the canonical form leaves the field out). */
function maybe<T>(arbitrary: fc.Arbitrary<T>, weight = 1): fc.Arbitrary<T | undefined> {
  return fc.oneof({ arbitrary: fc.constant(undefined), weight: 2 }, { arbitrary, weight });
}

export interface ShapeLimits {
  /** Deepest AnyValue nesting (an attribute's value is depth 1). */
  anyValueDepth: number;
  attributes: number;
  spans: number;
  scopeSpans: number;
  resourceSpans: number;
  eventsAndLinks: number;
}

export const SMALL_SHAPE: ShapeLimits = {
  anyValueDepth: 3,
  attributes: 5,
  spans: 4,
  scopeSpans: 2,
  resourceSpans: 2,
  eventsAndLinks: 2,
};

/** AnyValues of every type (nested arrays and key-value lists up to `maxDepth` levels) and KeyValues. */
export function anyValueArbitraries(maxDepth: number): {
  anyValue: fc.Arbitrary<OtlpAnyValue>;
  keyValue: fc.Arbitrary<OtlpKeyValue>;
} {
  const scalar: fc.Arbitrary<OtlpAnyValue> = fc.oneof(
    { arbitrary: anyText.map((stringValue) => ({ stringValue })), weight: 6 },
    { arbitrary: fc.boolean().map((boolValue) => ({ boolValue })), weight: 2 },
    { arbitrary: int64Value.map((intValue) => ({ intValue })), weight: 3 },
    { arbitrary: fc.double().map((doubleValue) => ({ doubleValue })), weight: 2 },
    { arbitrary: fc.uint8Array({ maxLength: 24 }).map((bytesValue) => ({ bytesValue })), weight: 1 },
    { arbitrary: fc.constant({}), weight: 1 },
  );
  const levels: fc.Arbitrary<OtlpAnyValue>[] = [scalar];
  let keyValue: fc.Arbitrary<OtlpKeyValue> = fc.tuple(attributeKey, scalar).map(([key, value]) => ({ key, value }));
  for (let depth = 2; depth <= maxDepth; depth += 1) {
    const inner = levels[levels.length - 1] ?? scalar;
    const innerKeyValue = keyValue;
    const level = fc.oneof(
      { arbitrary: scalar, weight: 4 },
      { arbitrary: fc.array(inner, { maxLength: 4 }).map((values) => ({ arrayValue: { values } })), weight: 1 },
      {
        arbitrary: fc.array(innerKeyValue, { maxLength: 3 }).map((values) => ({ kvlistValue: { values } })),
        weight: 1,
      },
    );
    levels.push(level);
    keyValue = fc
      .tuple(attributeKey, maybe(level, 12))
      .map(([key, value]) => (value === undefined ? { key } : { key, value }));
  }
  return { anyValue: levels[levels.length - 1] ?? scalar, keyValue };
}

function spanArbitrary(limits: ShapeLimits): fc.Arbitrary<OtlpSpan> {
  const { keyValue } = anyValueArbitraries(limits.anyValueDepth);
  const attributes = fc.array(keyValue, { maxLength: limits.attributes });
  const event: fc.Arbitrary<OtlpSpanEvent> = fc
    .tuple(nanos, anyText, attributes, maybe(uint32NonZero))
    .map(([timeUnixNano, name, attrs, dropped]) => {
      const out: OtlpSpanEvent = { timeUnixNano, name, attributes: attrs };
      if (dropped !== undefined) out.droppedAttributesCount = dropped;
      return out;
    });
  const link: fc.Arbitrary<OtlpSpanLink> = fc
    .tuple(optionalId(16), optionalId(8), maybe(nonEmptyText), attributes, maybe(uint32NonZero), maybe(uint32NonZero))
    .map(([traceId, spanId, traceState, attrs, dropped, flags]) => {
      const out: OtlpSpanLink = { traceId, spanId, attributes: attrs };
      if (traceState !== undefined) out.traceState = traceState;
      if (dropped !== undefined) out.droppedAttributesCount = dropped;
      if (flags !== undefined) out.flags = flags;
      return out;
    });
  const status: fc.Arbitrary<OtlpStatus> = fc
    .tuple(fc.oneof(fc.integer({ min: 0, max: 2 }), int32), maybe(nonEmptyText))
    .map(([code, message]) => {
      const out: OtlpStatus = { code };
      if (message !== undefined) out.message = message;
      return out;
    });
  const ids = fc.tuple(optionalId(16), optionalId(8), optionalId(8), maybe(nonEmptyText), maybe(uint32NonZero));
  const body = fc.tuple(anyText, int32, nanos, nanos, attributes, maybe(uint32NonZero));
  const children = fc.tuple(
    fc.array(event, { maxLength: limits.eventsAndLinks }),
    maybe(uint32NonZero),
    fc.array(link, { maxLength: limits.eventsAndLinks }),
    maybe(uint32NonZero),
    maybe(status, 2),
  );
  return fc
    .tuple(ids, body, children)
    .map(
      ([
        [traceId, spanId, parentSpanId, traceState, flags],
        [name, kind, start, end, attrs, droppedAttributes],
        [events, droppedEvents, links, droppedLinks, st],
      ]) => {
        const span: OtlpSpan = {
          traceId,
          spanId,
          parentSpanId,
          name,
          kind,
          startTimeUnixNano: start,
          endTimeUnixNano: end,
          attributes: attrs,
          events,
          links,
        };
        if (traceState !== undefined) span.traceState = traceState;
        if (flags !== undefined) span.flags = flags;
        if (droppedAttributes !== undefined) span.droppedAttributesCount = droppedAttributes;
        if (droppedEvents !== undefined) span.droppedEventsCount = droppedEvents;
        if (droppedLinks !== undefined) span.droppedLinksCount = droppedLinks;
        if (st !== undefined) span.status = st;
        return span;
      },
    );
}

/** Valid requests in canonical form, with random attributes of every AnyValue type. */
export function otlpRequest(limits: ShapeLimits = SMALL_SHAPE): fc.Arbitrary<OtlpTraceRequest> {
  const { keyValue } = anyValueArbitraries(limits.anyValueDepth);
  const attributes = fc.array(keyValue, { maxLength: limits.attributes });
  const span = spanArbitrary(limits);
  const scopeSpans: fc.Arbitrary<OtlpScopeSpans> = fc
    .tuple(
      maybe(fc.tuple(anyText, maybe(nonEmptyText), attributes, maybe(uint32NonZero)), 3),
      fc.array(span, { maxLength: limits.spans }),
      maybe(nonEmptyText),
    )
    .map(([scope, spans, schemaUrl]) => {
      const out: OtlpScopeSpans = { spans };
      if (scope !== undefined) {
        const [name, version, attrs, dropped] = scope;
        out.scope = { name, attributes: attrs };
        if (version !== undefined) out.scope.version = version;
        if (dropped !== undefined) out.scope.droppedAttributesCount = dropped;
      }
      if (schemaUrl !== undefined) out.schemaUrl = schemaUrl;
      return out;
    });
  const resourceSpans: fc.Arbitrary<OtlpResourceSpans> = fc
    .tuple(
      maybe(fc.tuple(attributes, maybe(uint32NonZero)), 3),
      fc.array(scopeSpans, { maxLength: limits.scopeSpans }),
      maybe(nonEmptyText),
    )
    .map(([resource, scopes, schemaUrl]) => {
      const out: OtlpResourceSpans = { scopeSpans: scopes };
      if (resource !== undefined) {
        out.resource = { attributes: resource[0] };
        if (resource[1] !== undefined) out.resource.droppedAttributesCount = resource[1];
      }
      if (schemaUrl !== undefined) out.schemaUrl = schemaUrl;
      return out;
    });
  return fc.array(resourceSpans, { maxLength: limits.resourceSpans }).map((rs) => ({ resourceSpans: rs }));
}

/** A valid request with its protobuf encoding. */
export function validProtobuf(
  limits: ShapeLimits = SMALL_SHAPE,
): fc.Arbitrary<{ request: OtlpTraceRequest; bytes: Buffer }> {
  return otlpRequest(limits).map((request) => ({ request, bytes: Buffer.from(encodeTraceRequest(request)) }));
}

// ============================================================================================================
// OTLP/JSON (written here from the specification's JSON mapping, in every spelling the decoder accepts)
// ============================================================================================================

export interface JsonStyle {
  snakeCase: boolean;
  /** int64 and fixed64 as JSON numbers when they are safe integers (OTLP/JSON writes strings). */
  int64AsNumber: boolean;
  enumNames: boolean;
  upperCaseIds: boolean;
  /** Absent fields written as null (which means absent). */
  nulls: boolean;
  /** An unknown field added to every object (ignored by the decoder). */
  extra: unknown;
  /** Counts and flags as decimal strings. */
  uint32AsString: boolean;
  /** A byte order mark before the text (TextDecoder drops it). */
  bom: boolean;
}

export const jsonStyle: fc.Arbitrary<JsonStyle> = fc
  .tuple(
    fc.boolean(),
    fc.boolean(),
    fc.boolean(),
    fc.boolean(),
    fc.boolean(),
    fc.option(fc.jsonValue({ maxDepth: 2 }), { freq: 3 }),
    fc.boolean(),
    fc.boolean(),
  )
  .map(([snakeCase, int64AsNumber, enumNames, upperCaseIds, nulls, extra, uint32AsString, bom]) => ({
    snakeCase,
    int64AsNumber,
    enumNames,
    upperCaseIds,
    nulls,
    extra: extra ?? undefined,
    uint32AsString,
    bom: bom && snakeCase && nulls, // rare
  }));

const CAMEL_STYLE: JsonStyle = {
  snakeCase: false,
  int64AsNumber: false,
  enumNames: false,
  upperCaseIds: false,
  nulls: false,
  extra: undefined,
  uint32AsString: false,
  bom: false,
};

const SPAN_KINDS = [
  'SPAN_KIND_UNSPECIFIED',
  'SPAN_KIND_INTERNAL',
  'SPAN_KIND_SERVER',
  'SPAN_KIND_CLIENT',
  'SPAN_KIND_PRODUCER',
  'SPAN_KIND_CONSUMER',
];
const STATUS_CODES = ['STATUS_CODE_UNSET', 'STATUS_CODE_OK', 'STATUS_CODE_ERROR'];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The OTLP/JSON value of a canonical request in the given spelling (stringify it for the body). */
export function toOtlpJsonValue(request: OtlpTraceRequest, style: JsonStyle = CAMEL_STYLE): Json {
  const k = (camel: string): string =>
    style.snakeCase ? camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : camel;
  const obj = (entries: [string, Json | undefined][]): Json => {
    const out: Record<string, Json> = {};
    for (const [key, value] of entries) {
      if (value !== undefined) out[key] = value;
      else if (style.nulls) out[key] = null;
    }
    if (style.extra !== undefined) out.tripline_fuzz_extra = style.extra as Json;
    return out;
  };
  const id = (value: string): Json | undefined =>
    value === '' ? undefined : style.upperCaseIds ? value.toUpperCase() : value;
  const u64 = (value: string): Json | undefined =>
    value === '0' ? undefined : style.int64AsNumber && Number.isSafeInteger(Number(value)) ? Number(value) : value;
  const u32 = (value: number | undefined): Json | undefined =>
    value === undefined ? undefined : style.uint32AsString ? String(value) : value;
  const dbl = (value: number): Json =>
    Number.isNaN(value)
      ? 'NaN'
      : value === Infinity
        ? 'Infinity'
        : value === -Infinity
          ? '-Infinity'
          : Object.is(value, -0)
            ? '-0'
            : value;
  const enumOf = (value: number, names: readonly string[]): Json | undefined =>
    value === 0 && style.nulls ? undefined : style.enumNames ? (names[value] ?? value) : value;
  const str = (value: string | undefined): Json | undefined => (value === '' ? undefined : value);
  const anyValue = (v: OtlpAnyValue): Json => {
    if (v.stringValue !== undefined) return obj([[k('stringValue'), v.stringValue]]);
    if (v.boolValue !== undefined) return obj([[k('boolValue'), v.boolValue]]);
    if (v.intValue !== undefined)
      return obj([
        [k('intValue'), typeof v.intValue === 'number' && style.int64AsNumber ? v.intValue : String(v.intValue)],
      ]);
    if (v.doubleValue !== undefined) return obj([[k('doubleValue'), dbl(v.doubleValue)]]);
    if (v.arrayValue !== undefined)
      return obj([[k('arrayValue'), obj([['values', v.arrayValue.values.map(anyValue)]])]]);
    if (v.kvlistValue !== undefined)
      return obj([[k('kvlistValue'), obj([['values', v.kvlistValue.values.map(keyValue)]])]]);
    if (v.bytesValue !== undefined) return obj([[k('bytesValue'), Buffer.from(v.bytesValue).toString('base64')]]);
    return obj([]);
  };
  const keyValue = (kv: OtlpKeyValue): Json =>
    obj([
      ['key', kv.key],
      ['value', kv.value === undefined ? undefined : anyValue(kv.value)],
    ]);
  const attrs = (list: readonly OtlpKeyValue[]): Json | undefined =>
    list.length === 0 && style.nulls ? undefined : list.map(keyValue);
  const span = (s: OtlpSpan): Json =>
    obj([
      [k('traceId'), id(s.traceId)],
      [k('spanId'), id(s.spanId)],
      [k('traceState'), str(s.traceState)],
      [k('parentSpanId'), id(s.parentSpanId)],
      ['flags', u32(s.flags)],
      ['name', str(s.name)],
      ['kind', enumOf(s.kind, SPAN_KINDS)],
      [k('startTimeUnixNano'), u64(s.startTimeUnixNano)],
      [k('endTimeUnixNano'), u64(s.endTimeUnixNano)],
      ['attributes', attrs(s.attributes)],
      [k('droppedAttributesCount'), u32(s.droppedAttributesCount)],
      [
        'events',
        s.events.map((e) =>
          obj([
            [k('timeUnixNano'), u64(e.timeUnixNano)],
            ['name', str(e.name)],
            ['attributes', attrs(e.attributes)],
            [k('droppedAttributesCount'), u32(e.droppedAttributesCount)],
          ]),
        ),
      ],
      [k('droppedEventsCount'), u32(s.droppedEventsCount)],
      [
        'links',
        s.links.map((l) =>
          obj([
            [k('traceId'), id(l.traceId)],
            [k('spanId'), id(l.spanId)],
            [k('traceState'), str(l.traceState)],
            ['attributes', attrs(l.attributes)],
            [k('droppedAttributesCount'), u32(l.droppedAttributesCount)],
            ['flags', u32(l.flags)],
          ]),
        ),
      ],
      [k('droppedLinksCount'), u32(s.droppedLinksCount)],
      [
        'status',
        s.status === undefined
          ? undefined
          : obj([
              ['code', style.enumNames ? (STATUS_CODES[s.status.code] ?? s.status.code) : s.status.code],
              ['message', str(s.status.message)],
            ]),
      ],
    ]);
  return obj([
    [
      k('resourceSpans'),
      request.resourceSpans.map((rs) =>
        obj([
          [
            'resource',
            rs.resource === undefined
              ? undefined
              : obj([
                  ['attributes', rs.resource.attributes.map(keyValue)],
                  [k('droppedAttributesCount'), u32(rs.resource.droppedAttributesCount)],
                ]),
          ],
          [
            k('scopeSpans'),
            rs.scopeSpans.map((ss) =>
              obj([
                [
                  'scope',
                  ss.scope === undefined
                    ? undefined
                    : obj([
                        ['name', ss.scope.name],
                        ['version', str(ss.scope.version)],
                        ['attributes', ss.scope.attributes.map(keyValue)],
                        [k('droppedAttributesCount'), u32(ss.scope.droppedAttributesCount)],
                      ]),
                ],
                ['spans', ss.spans.map(span)],
                [k('schemaUrl'), str(ss.schemaUrl)],
              ]),
            ),
          ],
          [k('schemaUrl'), str(rs.schemaUrl)],
        ]),
      ),
    ],
  ]);
}

export function toOtlpJson(request: OtlpTraceRequest, style: JsonStyle = CAMEL_STYLE): Buffer {
  const text = JSON.stringify(toOtlpJsonValue(request, style));
  return Buffer.from(style.bom ? `\uFEFF${text}` : text, 'utf8');
}

/** A valid request with its OTLP/JSON encoding in a random spelling. */
export function validJson(
  limits: ShapeLimits = SMALL_SHAPE,
): fc.Arbitrary<{ request: OtlpTraceRequest; bytes: Buffer; style: JsonStyle }> {
  return fc
    .tuple(otlpRequest(limits), jsonStyle)
    .map(([request, style]) => ({ request, style, bytes: toOtlpJson(request, style) }));
}

// ============================================================================================================
// Broken protobuf
// ============================================================================================================

/** Byte-level mutations of an otherwise valid body. */
type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; count: number }
  | { op: 'duplicate'; at: number; count: number }
  | { op: 'varint'; at: number; bytes: Uint8Array };

/** Bytes that make trouble when they land in a length or a tag. */
const NASTY_VARINTS: readonly Buffer[] = [
  varint(0xffffffff),
  varint(0x7fffffff),
  varint(0x80000000),
  varint(2n ** 35n),
  varint(UINT64_MAX),
  Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // 11 bytes: overlong
  Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), // 10-byte zero
  Buffer.from([0xff]), // continuation without an end
];

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })).map(([at, bit]): Mutation => ({ op: 'flip', at, bit })),
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([at, value]): Mutation => ({ op: 'set', at, value })),
  fc
    .tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 }))
    .map(([at, bytes]): Mutation => ({ op: 'insert', at, bytes })),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 16 })).map(([at, count]): Mutation => ({ op: 'delete', at, count })),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 64 })).map(([at, count]): Mutation => ({ op: 'duplicate', at, count })),
  fc.tuple(fc.nat(), fc.constantFrom(...NASTY_VARINTS)).map(([at, bytes]): Mutation => ({ op: 'varint', at, bytes })),
);

export function applyMutations(input: Buffer, mutations: readonly Mutation[]): Buffer {
  let bytes = Buffer.from(input);
  for (const m of mutations) {
    const at = bytes.length === 0 ? 0 : m.at % (bytes.length + 1);
    switch (m.op) {
      case 'flip':
        if (at < bytes.length) bytes[at] = (bytes[at] ?? 0) ^ (1 << m.bit);
        break;
      case 'set':
        if (at < bytes.length) bytes[at] = m.value;
        break;
      case 'insert':
      case 'varint':
        bytes = Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
        break;
      case 'delete':
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.count)]);
        break;
      case 'duplicate':
        bytes = Buffer.concat([
          bytes.subarray(0, at + m.count),
          bytes.subarray(at, at + m.count),
          bytes.subarray(at + m.count),
        ]);
        break;
    }
  }
  return bytes;
}

/** A valid protobuf request cut short at a random byte. */
export const truncatedProtobuf: fc.Arbitrary<Buffer> = fc
  .tuple(validProtobuf(), fc.nat())
  .filter(([{ bytes }]) => bytes.length > 1)
  .map(([{ bytes }, cut]) => bytes.subarray(0, cut % bytes.length));

/** A valid protobuf request with a few byte-level mutations. */
export const mutatedProtobuf: fc.Arbitrary<Buffer> = fc
  .tuple(validProtobuf(), fc.array(mutation, { minLength: 1, maxLength: 4 }))
  .map(([{ bytes }, mutations]) => applyMutations(bytes, mutations));

// Grammar-aware garbage: messages built from the trace schema's field numbers, mostly with the right wire
// types and nested messages, sometimes with the wrong ones, unknown fields, groups and lying lengths.

type MessageName =
  | 'request'
  | 'resourceSpans'
  | 'resource'
  | 'scopeSpans'
  | 'scope'
  | 'span'
  | 'event'
  | 'link'
  | 'status'
  | 'keyValue'
  | 'anyValue'
  | 'arrayValue'
  | 'kvList';

type FieldSpec =
  | { wire: 0 }
  | { wire: 1 }
  | { wire: 5 }
  | { wire: 2; content: 'string' | 'bytes' | 'id8' | 'id16' }
  | { wire: 2; message: MessageName };

const V: FieldSpec = { wire: 0 };
const I64: FieldSpec = { wire: 1 };
const I32: FieldSpec = { wire: 5 };
const S: FieldSpec = { wire: 2, content: 'string' };
const B: FieldSpec = { wire: 2, content: 'bytes' };
const M = (message: MessageName): FieldSpec => ({ wire: 2, message });

const SCHEMA: Record<MessageName, Record<number, FieldSpec>> = {
  request: { 1: M('resourceSpans') },
  resourceSpans: { 1: M('resource'), 2: M('scopeSpans'), 3: S },
  resource: { 1: M('keyValue'), 2: V, 3: B },
  scopeSpans: { 1: M('scope'), 2: M('span'), 3: S },
  scope: { 1: S, 2: S, 3: M('keyValue'), 4: V },
  span: {
    1: { wire: 2, content: 'id16' },
    2: { wire: 2, content: 'id8' },
    3: S,
    4: { wire: 2, content: 'id8' },
    5: S,
    6: V,
    7: I64,
    8: I64,
    9: M('keyValue'),
    10: V,
    11: M('event'),
    12: V,
    13: M('link'),
    14: V,
    15: M('status'),
    16: I32,
  },
  event: { 1: I64, 2: S, 3: M('keyValue'), 4: V },
  link: { 1: { wire: 2, content: 'id16' }, 2: { wire: 2, content: 'id8' }, 3: S, 4: M('keyValue'), 5: V, 6: I32 },
  status: { 2: S, 3: V },
  keyValue: { 1: S, 2: M('anyValue'), 3: V },
  anyValue: { 1: S, 2: V, 3: V, 4: I64, 5: M('arrayValue'), 6: M('kvList'), 7: B, 8: V },
  arrayValue: { 1: M('anyValue') },
  kvList: { 1: M('keyValue') },
};

/** Invalid UTF-8: stray continuation bytes, overlong forms, surrogates, truncated sequences, 0xff. */
export const invalidUtf8: fc.Arbitrary<Buffer> = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        Buffer.from([0x80]),
        Buffer.from([0xbf]),
        Buffer.from([0xc0, 0x80]),
        Buffer.from([0xc1, 0xbf]),
        Buffer.from([0xe0, 0x80, 0x80]),
        Buffer.from([0xed, 0xa0, 0x80]), // UTF-16 surrogate D800 encoded
        Buffer.from([0xed, 0xbf, 0xbf]),
        Buffer.from([0xf4, 0x90, 0x80, 0x80]), // above U+10FFFF
        Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
        Buffer.from([0xe2, 0x82]), // truncated
        Buffer.from([0xff]),
        Buffer.from([0xfe]),
        Buffer.from([0x00]),
      ),
      fc.string({ unit: 'binary', maxLength: 4 }).map((s) => Buffer.from(s, 'utf8')),
    ),
    { minLength: 1, maxLength: 6 },
  )
  .map((parts) => Buffer.concat(parts));

const stringBytes: fc.Arbitrary<Buffer> = fc.oneof(
  { arbitrary: anyText.map((s) => Buffer.from(s, 'utf8')), weight: 4 },
  { arbitrary: invalidUtf8, weight: 2 },
  { arbitrary: fc.uint8Array({ maxLength: 32 }).map((b) => Buffer.from(b)), weight: 1 },
);

const idBytes = (size: number): fc.Arbitrary<Buffer> =>
  fc.oneof(
    { arbitrary: fc.uint8Array({ minLength: size, maxLength: size }).map((b) => Buffer.from(b)), weight: 6 },
    { arbitrary: fc.constant(Buffer.alloc(size)), weight: 1 },
    { arbitrary: fc.constant(Buffer.alloc(0)), weight: 1 },
    { arbitrary: fc.uint8Array({ maxLength: size * 2 + 1 }).map((b) => Buffer.from(b)), weight: 2 }, // wrong length, mostly
  );

const varintPayload: fc.Arbitrary<Buffer> = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: 300 }).map((n) => varint(n)), weight: 4 },
  { arbitrary: fc.bigInt({ min: 0n, max: UINT64_MAX }).map((n) => varint(n)), weight: 3 },
  { arbitrary: fc.constantFrom(...INT64_EDGES).map((n) => varint(n)), weight: 2 },
  { arbitrary: fc.constantFrom(...NASTY_VARINTS), weight: 1 },
);

/** How a length-delimited field's length prefix lies (or not). */
const lengthLie: fc.Arbitrary<'none' | 'plus1' | 'minus1' | 'huge' | 'u32max' | 'overlong'> = fc.oneof(
  { arbitrary: fc.constant('none' as const), weight: 40 },
  {
    arbitrary: fc.constantFrom(
      'plus1' as const,
      'minus1' as const,
      'huge' as const,
      'u32max' as const,
      'overlong' as const,
    ),
    weight: 1,
  },
);

function lengthPrefix(length: number, lie: 'none' | 'plus1' | 'minus1' | 'huge' | 'u32max' | 'overlong'): Buffer {
  switch (lie) {
    case 'none':
      return varint(length);
    case 'plus1':
      return varint(length + 1);
    case 'minus1':
      return varint(Math.max(0, length - 1));
    case 'huge':
      return varint(0x7fffffff);
    case 'u32max':
      return varint(0xffffffff);
    case 'overlong':
      return Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  }
}

function payloadFor(
  wire: number,
  lie: 'none' | 'plus1' | 'minus1' | 'huge' | 'u32max' | 'overlong',
): fc.Arbitrary<Buffer> {
  switch (wire) {
    case WIRE.VARINT:
      return varintPayload;
    case WIRE.I64:
      return fc.uint8Array({ minLength: 8, maxLength: 8 }).map((b) => Buffer.from(b));
    case WIRE.I32:
      return fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => Buffer.from(b));
    case WIRE.LEN:
      return stringBytes.map((b) => Buffer.concat([lengthPrefix(b.length, lie), b]));
    default:
      return fc.uint8Array({ maxLength: 4 }).map((b) => Buffer.from(b));
  }
}

const memo = new Map<string, fc.Arbitrary<Buffer>>();

/** Fields of a message at a nesting budget of `depth` more levels. */
export function wireMessage(name: MessageName, depth: number): fc.Arbitrary<Buffer> {
  const memoKey = `${name}:${depth}`;
  const cached = memo.get(memoKey);
  if (cached !== undefined) return cached;
  const known = Object.entries(SCHEMA[name]).map(([field, spec]) => ({ field: Number(field), spec }));
  const knownField: fc.Arbitrary<Buffer> = fc
    .tuple(fc.constantFrom(...known), lengthLie)
    .chain(({ 0: { field, spec }, 1: lie }) => {
      const t = tagOf(field, spec.wire);
      if (spec.wire !== WIRE.LEN) return payloadFor(spec.wire, lie).map((p) => Buffer.concat([t, p]));
      let content: fc.Arbitrary<Buffer>;
      if ('message' in spec) {
        content = depth <= 0 ? fc.constant(Buffer.alloc(0)) : wireMessage(spec.message, depth - 1);
      } else if (spec.content === 'id8' || spec.content === 'id16') {
        content = idBytes(spec.content === 'id8' ? 8 : 16);
      } else {
        content = stringBytes;
      }
      return content.map((c) => Buffer.concat([t, lengthPrefix(c.length, lie), c]));
    });
  const wrongWire: fc.Arbitrary<Buffer> = fc
    .tuple(fc.constantFrom(...known), fc.integer({ min: 0, max: 7 }))
    .filter(([{ spec }, wire]) => wire !== spec.wire)
    .chain(([{ field }, wire]) => payloadFor(wire, 'none').map((p) => Buffer.concat([tagOf(field, wire), p])));
  const unknownField: fc.Arbitrary<Buffer> = fc
    .tuple(
      fc.oneof(fc.integer({ min: 17, max: 1000 }), fc.constant(2 ** 29 - 1), fc.constant(0)),
      fc.constantFrom(0, 1, 2, 5, 3, 4, 6, 7),
      lengthLie,
    )
    .chain(([field, wire, lie]) => {
      if (wire === WIRE.SGROUP) {
        // A group holding a few scalar fields, closed by the right end tag (or, sometimes, another one).
        return fc
          .tuple(fc.array(fc.tuple(fc.integer({ min: 1, max: 50 }), varintPayload), { maxLength: 3 }), fc.boolean())
          .map(([inner, balanced]) =>
            Buffer.concat([
              tagOf(field, WIRE.SGROUP),
              ...inner.map(([f, p]) => Buffer.concat([tagOf(f, WIRE.VARINT), p])),
              tagOf(balanced ? field : field + 1, WIRE.EGROUP),
            ]),
          );
      }
      return payloadFor(wire, lie).map((p) => Buffer.concat([tagOf(field, wire), p]));
    });
  const arbitrary = fc
    .array(
      fc.oneof(
        { arbitrary: knownField, weight: 16 },
        { arbitrary: wrongWire, weight: 1 },
        { arbitrary: unknownField, weight: 1 },
      ),
      { maxLength: depth <= 0 ? 2 : 4 },
    )
    .map((fields) => Buffer.concat(fields));
  memo.set(memoKey, arbitrary);
  return arbitrary;
}

/** Grammar-aware protobuf garbage: mostly well-formed requests with the odd wrong field. */
export const structuredProtobuf: fc.Arbitrary<Buffer> = wireMessage('request', 6);

/**
 * An attribute whose value is an AnyValue nested `depth` levels (1 = a plain value), built from the inside
 * out so that depths of 100 000 cost linear time. `via` picks arrays, key-value lists or a mix.
 */
export function deepAnyValueProtobuf(depth: number, via: 'array' | 'kvlist' | 'mixed'): Buffer {
  const parts: Buffer[] = [];
  const inner = stringField(1, 'x'); // the innermost AnyValue { string_value: "x" }
  let innerLength = inner.length;
  parts.push(inner);
  for (let level = depth - 1; level >= 1; level -= 1) {
    const useArray = via === 'array' || (via === 'mixed' && level % 2 === 0);
    // AnyValue { array_value (5) { values (1): inner } } or AnyValue { kvlist_value (6) { values (1): KeyValue { key (1): "k", value (2): inner } } }
    let header: Buffer;
    if (useArray) {
      const list = Buffer.concat([tagOf(1, WIRE.LEN), varint(innerLength)]);
      header = Buffer.concat([tagOf(5, WIRE.LEN), varint(list.length + innerLength), list]);
    } else {
      const kvHeader = Buffer.concat([stringField(1, 'k'), tagOf(2, WIRE.LEN), varint(innerLength)]);
      const kvLength = kvHeader.length + innerLength;
      const list = Buffer.concat([tagOf(1, WIRE.LEN), varint(kvLength), kvHeader]);
      header = Buffer.concat([tagOf(6, WIRE.LEN), varint(list.length + innerLength), list]);
    }
    parts.push(header);
    innerLength += header.length;
  }
  parts.reverse();
  return requestWithAttributeValue(Buffer.concat(parts));
}

/** The same in OTLP/JSON. */
export function deepAnyValueJson(depth: number, via: 'array' | 'kvlist' | 'mixed'): Buffer {
  const open: string[] = [];
  const close: string[] = [];
  for (let level = 1; level < depth; level += 1) {
    const useArray = via === 'array' || (via === 'mixed' && level % 2 === 0);
    open.push(useArray ? '{"arrayValue":{"values":[' : '{"kvlistValue":{"values":[{"key":"k","value":');
    close.push(useArray ? ']}}' : '}]}}');
  }
  close.reverse();
  const value = `${open.join('')}{"stringValue":"x"}${close.join('')}`;
  return Buffer.from(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"k","value":${value}}]}]}]}]}`);
}

/** Unknown groups nested `depth` deep inside a span. */
export function deepGroupsProtobuf(depth: number): Buffer {
  const field = 100;
  return requestWithSpan(
    Buffer.concat([
      Buffer.concat(Array.from({ length: depth }, () => tagOf(field, WIRE.SGROUP))),
      Buffer.concat(Array.from({ length: depth }, () => tagOf(field, WIRE.EGROUP))),
    ]),
  );
}

/** A span with `count` attributes (keys k0…), each an int. */
export function manyAttributesProtobuf(count: number): Buffer {
  const attrs: Buffer[] = [];
  for (let i = 0; i < count; i += 1)
    attrs.push(lenField(9, Buffer.concat([stringField(1, `k${i}`), lenField(2, varintField(3, i))])));
  return requestWithSpan(Buffer.concat(attrs));
}

/** A span whose name is `length` bytes long. */
export function longStringProtobuf(length: number): Buffer {
  return requestWithSpan(lenField(5, Buffer.alloc(length, 0x61)));
}

/** `count` empty spans: the smallest possible span (two bytes each). */
export function emptySpansProtobuf(count: number): Buffer {
  const spans = Buffer.alloc(count * 2);
  for (let i = 0; i < count; i += 1) spans[2 * i] = 0x12;
  return lenField(1, lenField(2, spans));
}

/** Exactly `size` bytes: a valid one-span request padded with an unknown length-delimited field. */
export function paddedProtobuf(size: number): Buffer {
  const base = requestWithSpan(stringField(5, 'padded'));
  // Unknown field 1000 (tag 3 bytes) + length varint + content; solve for the content length.
  for (let lengthBytes = 1; lengthBytes <= 5; lengthBytes += 1) {
    const content = size - base.length - tagOf(1000, WIRE.LEN).length - lengthBytes;
    if (content >= 0 && varint(content).length === lengthBytes) {
      const out = Buffer.concat([base, tagOf(1000, WIRE.LEN), varint(content), Buffer.alloc(content)]);
      if (out.length === size) return out;
    }
  }
  throw new Error(`cannot pad a request to ${size} bytes`);
}

/** Resource-exhaustion shapes: deep nesting, many attributes, long strings, many tiny spans. */
export const heavyProtobuf: fc.Arbitrary<{ bytes: Buffer; expectValid: boolean | undefined; what: string }> = fc.oneof(
  fc
    .tuple(
      fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 30, max: 34 }), fc.constantFrom(100, 1000, 10_000)),
      fc.constantFrom('array' as const, 'kvlist' as const, 'mixed' as const),
    )
    .map(([depth, via]) => ({
      bytes: deepAnyValueProtobuf(depth, via),
      expectValid: depth <= 32,
      what: `AnyValue nested ${depth} deep via ${via}`,
    })),
  fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constantFrom(1000, 50_000)).map((depth) => ({
    bytes: deepGroupsProtobuf(depth),
    expectValid: depth <= 32,
    what: `groups nested ${depth} deep`,
  })),
  fc
    .constantFrom(1000, 10_000, 50_000)
    .map((count) => ({ bytes: manyAttributesProtobuf(count), expectValid: true, what: `${count} attributes` })),
  fc
    .constantFrom(100_000, 1_000_000, 4_000_000)
    .map((length) => ({ bytes: longStringProtobuf(length), expectValid: true, what: `a ${length}-byte string` })),
  // Two-byte spans decode to hundreds of times their size: up to the decoder's allowance they are accepted,
  // past it refused with 413 (either is a contract answer).
  fc.constantFrom(1_000, 10_000, 100_000).map((count) => ({
    bytes: emptySpansProtobuf(count),
    expectValid: count <= 1_000 ? true : undefined,
    what: `${count} empty spans`,
  })),
);

/** Any bytes at all. */
export const randomBytes: fc.Arbitrary<Buffer> = fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b));

/** Every kind of broken (or accidentally valid) protobuf body. */
export const brokenProtobuf: fc.Arbitrary<Buffer> = fc.oneof(
  { arbitrary: truncatedProtobuf, weight: 3 },
  { arbitrary: mutatedProtobuf, weight: 4 },
  { arbitrary: structuredProtobuf, weight: 6 },
  { arbitrary: randomBytes, weight: 1 },
  {
    arbitrary: fc
      .tuple(stringBytes, fc.constantFrom(1, 5))
      .map(([b, field]) => requestWithSpan(lenField(field === 1 ? 5 : 3, b))),
    weight: 1,
  },
);

// ============================================================================================================
// Broken OTLP/JSON
// ============================================================================================================

type Path = (string | number)[];

function pathsOf(value: Json, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((item, i) => pathsOf(item, [...prefix, i], out));
  else if (value !== null && typeof value === 'object')
    for (const [key, item] of Object.entries(value)) pathsOf(item, [...prefix, key], out);
  return out;
}

function replaceAt(root: Json, path: Path, replacement: Json): Json {
  if (path.length === 0) return replacement;
  const copy = structuredClone(root);
  let node: Json = copy;
  for (const step of path.slice(0, -1)) node = (node as Record<string | number, Json>)[step] ?? null;
  const last = path[path.length - 1];
  if (last !== undefined && node !== null && typeof node === 'object')
    (node as Record<string | number, Json>)[last] = replacement;
  return copy;
}

/** Tokens JSON.stringify cannot write; stand-in strings are swapped for them after stringifying. */
const RAW_TOKENS = [
  '1e309',
  '-1e309',
  '1e-400',
  '-0',
  '0.0',
  '1E2',
  '123456789012345678901234567890',
  '9007199254740993',
  '18446744073709551616',
  '-9223372036854775809',
  '9223372036854775808',
  '4294967296',
  '1.5',
];
const RAW_MARK = '\u0001raw';

/** Values of the wrong type, out of range, or just odd, for any position in a request. */
export const wrongJsonValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(null, true, false, 0, -1, 1.5, 1e308, -1e308, '', 'x', [], {}, [null], [[]], { '': null }),
  fc.constantFrom<Json>(
    '9223372036854775807',
    '9223372036854775808',
    '-9223372036854775808',
    '-9223372036854775809',
    '18446744073709551615',
    '18446744073709551616',
    '0x10',
    '1e3',
    ' 1',
    '+1',
    '01',
    '-0',
    '1.0',
    'NaN',
    'Infinity',
    '-Infinity',
    'SPAN_KIND_SERVER',
    'STATUS_CODE_ERROR',
    'toString',
    '__proto__',
  ),
  // hex ids of the wrong length or alphabet
  fc.oneof(
    fc.string({ unit: fc.constantFrom(...chars('0123456789abcdefABCDEF')), maxLength: 40 }),
    fc.constantFrom('zz'.repeat(8), 'g'.repeat(32), '0x' + 'a'.repeat(30), 'ä'.repeat(16)),
  ),
  // base64 that is not
  fc.constantFrom('@@@@', 'YQ', 'YQ=', 'Y', '====', 'a b c'),
  // lone surrogates (JSON.stringify writes them as \ud800 escapes)
  fc.constantFrom('\ud800', 'x\udfff', '\udc00\ud800', 'ok\ud83d'),
  fc.integer({ min: 0, max: RAW_TOKENS.length - 1 }).map((i) => `${RAW_MARK}${i}`),
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
  fc.integer({ min: 100, max: 100_000 }).map((n) => '9'.repeat(n)),
);

function stringifyWithRawTokens(value: Json): string {
  return JSON.stringify(value).replace(
    /"\\u0001raw(\d+)"/g,
    (_match, index: string) => RAW_TOKENS[Number(index)] ?? '0',
  );
}

/** A valid JSON request with values swapped for wrong ones at random positions (keys kept). */
export const wrongTypesJson: fc.Arbitrary<Buffer> = fc
  .tuple(otlpRequest(), jsonStyle, fc.array(fc.tuple(fc.nat(), wrongJsonValue), { minLength: 1, maxLength: 3 }))
  .map(([request, style, replacements]) => {
    let tree = toOtlpJsonValue(request, { ...style, bom: false });
    for (const [index, replacement] of replacements) {
      const paths = pathsOf(tree);
      const path = paths[index % paths.length] ?? [];
      tree = replaceAt(tree, path, replacement);
    }
    return Buffer.from(stringifyWithRawTokens(tree));
  });

/** Text-level damage: cut short, a character inserted or removed, invalid UTF-8 spliced in. */
export const damagedJsonText: fc.Arbitrary<Buffer> = fc
  .tuple(
    validJson(),
    fc.nat(),
    fc.oneof(
      fc.constant('cut' as const),
      fc.constant('drop' as const),
      fc.constantFrom('{', '}', '[', ']', ',', ':', '"', '\\', 'x', '\u0000'),
    ),
    invalidUtf8,
    fc.boolean(),
  )
  .map(([{ bytes }, at, edit, bad, useBad]) => {
    const i = at % (bytes.length + 1);
    if (edit === 'cut') return bytes.subarray(0, i);
    if (edit === 'drop') return Buffer.concat([bytes.subarray(0, i), bytes.subarray(i + 1)]);
    return Buffer.concat([bytes.subarray(0, i), useBad ? bad : Buffer.from(edit), bytes.subarray(i)]);
  });

/** Deep nesting where the decoder does not look: inside an ignored field. */
export function deepIgnoredJson(depth: number): Buffer {
  return Buffer.from(`{"resourceSpans":[],"ignored":${'['.repeat(depth)}${']'.repeat(depth)}}`);
}

/** Every kind of broken (or accidentally valid) JSON body. */
export const brokenJson: fc.Arbitrary<Buffer> = fc.oneof(
  { arbitrary: wrongTypesJson, weight: 8 },
  { arbitrary: damagedJsonText, weight: 4 },
  { arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v))), weight: 1 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 64 }).map((s) => Buffer.from(s)), weight: 1 },
  {
    arbitrary: fc
      .constantFrom(
        '',
        ' ',
        '\n\t',
        '\uFEFF',
        'null',
        '[]',
        '""',
        '{}',
        '{"resourceSpans":null}',
        '{"resourceSpans":{}}',
        '{"resourceSpans":[null]}',
        '{"resource_spans":[{"scope_spans":[{"spans":[{}]}]}]}',
        '{"__proto__":{"resourceSpans":[{}]}}',
      )
      .map((s) => Buffer.from(s)),
    weight: 1,
  },
  { arbitrary: fc.constantFrom(10, 1000, 100_000).map(deepIgnoredJson), weight: 1 },
);

// ============================================================================================================
// OTLP/HTTP requests
// ============================================================================================================

export interface OtlpHttpCase {
  contentType: string | undefined;
  contentEncoding: string | undefined;
  body: Buffer;
  /** What the body is, for failure messages. */
  what: string;
}

const PROTOBUF_TYPES = [
  'application/x-protobuf',
  'application/protobuf',
  'Application/X-Protobuf',
  'application/x-protobuf; charset=binary',
  ' application/protobuf ;proto=opentelemetry',
];
const JSON_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/json;charset=UTF-8',
  'application/json ; x=1',
];
const OTHER_TYPES = [
  'text/plain',
  'application/xml',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json-seq',
  'application/x-protobuf+json',
  'application/jsonx',
  '*/*',
  'application',
  ';',
  '',
];
const ENCODINGS = ['gzip', 'x-gzip', 'GZIP', 'identity', 'gzip, identity', 'identity, gzip'];
const BAD_ENCODINGS = ['deflate', 'br', 'zstd', 'gzip, gzip', 'compress', 'gzip, deflate', 'bogus'];

const gzipCache = new Map<string, Buffer>();

/** gzip of `size` zero bytes (cached: the big ones take a moment to build). */
export function gzipBomb(size: number): Buffer {
  const key = `zeros:${size}`;
  let bomb = gzipCache.get(key);
  if (bomb === undefined) {
    bomb = gzipSync(Buffer.alloc(size), { level: 9 });
    gzipCache.set(key, bomb);
  }
  return bomb;
}

/** gzip of a valid protobuf request of about `size` bytes (one span padded with an unknown field). */
export function gzipValidOfSize(size: number): Buffer {
  const key = `valid:${size}`;
  let bomb = gzipCache.get(key);
  if (bomb === undefined) {
    bomb = gzipSync(paddedProtobuf(size), { level: 9 });
    gzipCache.set(key, bomb);
  }
  return bomb;
}

/** Broken gzip: cut short, bad checksum, header then garbage, a bomb glued to a valid member. */
export const corruptGzip: fc.Arbitrary<Buffer> = fc
  .tuple(validProtobuf(), fc.nat(), fc.constantFrom('cut', 'crc', 'garbage', 'trailing', 'header-only', 'multi'))
  .map(([{ bytes }, at, how]) => {
    const gz = gzipSync(bytes);
    switch (how) {
      case 'cut':
        return gz.subarray(0, at % gz.length);
      case 'crc': {
        const copy = Buffer.from(gz);
        const i = copy.length - 8;
        copy[i] = (copy[i] ?? 0) ^ 0xff;
        return copy;
      }
      case 'garbage':
        return Buffer.concat([gz.subarray(0, 10), Buffer.from('not deflate at all')]);
      case 'trailing':
        return Buffer.concat([gz, Buffer.from([0x1f, 0x8b, 0x00])]);
      case 'header-only':
        return Buffer.from([0x1f, 0x8b]);
      default:
        return Buffer.concat([gz, gz]); // two members: valid gzip
    }
  });

/**
 * OTLP/HTTP requests of every kind for a receiver with `maxBodyBytes`: valid and broken bodies in both
 * formats, matching and mismatched content types, gzip, broken gzip, gzip bombs, bodies at and over the limit.
 */
export function otlpHttpCase(maxBodyBytes: number): fc.Arbitrary<OtlpHttpCase> {
  const format: fc.Arbitrary<OtlpFormat> = fc.constantFrom('protobuf', 'json');
  const body = (f: OtlpFormat): fc.Arbitrary<{ body: Buffer; what: string }> =>
    f === 'protobuf'
      ? fc.oneof(
          { arbitrary: validProtobuf().map(({ bytes }) => ({ body: bytes, what: 'valid protobuf' })), weight: 4 },
          { arbitrary: brokenProtobuf.map((b) => ({ body: b, what: 'broken protobuf' })), weight: 4 },
          { arbitrary: validJson().map(({ bytes }) => ({ body: bytes, what: 'JSON sent as protobuf' })), weight: 1 },
        )
      : fc.oneof(
          { arbitrary: validJson().map(({ bytes }) => ({ body: bytes, what: 'valid JSON' })), weight: 4 },
          { arbitrary: brokenJson.map((b) => ({ body: b, what: 'broken JSON' })), weight: 4 },
          {
            arbitrary: validProtobuf().map(({ bytes }) => ({ body: bytes, what: 'protobuf sent as JSON' })),
            weight: 1,
          },
        );
  const sized: fc.Arbitrary<{ body: Buffer; what: string; gzip: boolean }> = fc.oneof(
    fc.constantFrom(-1, 0, 1).map((delta) => ({
      body: paddedProtobuf(maxBodyBytes + delta),
      what: `protobuf of max${delta >= 0 ? '+' : ''}${delta} bytes`,
      gzip: false,
    })),
    fc.constantFrom(-1, 0, 1).map((delta) => ({
      body: gzipValidOfSize(maxBodyBytes + delta),
      what: `gzip of protobuf of max${delta >= 0 ? '+' : ''}${delta} bytes`,
      gzip: true,
    })),
    fc.constantFrom(2, 16, 64).map((factor) => ({
      body: gzipBomb(maxBodyBytes * factor),
      what: `gzip bomb: zeros ×${factor} the limit`,
      gzip: true,
    })),
  );
  const plain = fc.tuple(format, fc.boolean(), fc.nat()).chain(([f, gzip, pick]) =>
    body(f).map(({ body: b, what }) => ({
      contentType: (f === 'protobuf' ? PROTOBUF_TYPES : JSON_TYPES)[pick % 5],
      contentEncoding: gzip ? ENCODINGS[pick % 3] : pick % 7 === 0 ? 'identity' : undefined,
      body: gzip ? gzipSync(b) : b,
      what: gzip ? `gzip of ${what}` : what,
    })),
  );
  return fc.oneof(
    { arbitrary: plain, weight: 12 },
    {
      arbitrary: fc.tuple(format, sized, fc.nat()).map(([f, s, pick]) => ({
        contentType: (f === 'protobuf' ? PROTOBUF_TYPES : JSON_TYPES)[pick % 5],
        contentEncoding: s.gzip ? 'gzip' : undefined,
        body: s.body,
        what: s.what,
      })),
      weight: 1,
    },
    {
      arbitrary: fc.tuple(format, corruptGzip, fc.nat()).map(([f, b, pick]) => ({
        contentType: (f === 'protobuf' ? PROTOBUF_TYPES : JSON_TYPES)[pick % 5],
        contentEncoding: ENCODINGS[pick % 3],
        body: b,
        what: 'corrupt gzip',
      })),
      weight: 2,
    },
    {
      // Wrong or missing content type, unsupported content encoding.
      arbitrary: fc
        .tuple(
          fc.option(fc.constantFrom(...OTHER_TYPES)),
          fc.option(fc.constantFrom(...ENCODINGS, ...BAD_ENCODINGS)),
          validProtobuf(),
          fc.boolean(),
        )
        .map(([contentType, contentEncoding, { bytes }, empty]) => ({
          contentType: contentType ?? undefined,
          contentEncoding: contentEncoding ?? undefined,
          body: empty ? Buffer.alloc(0) : bytes,
          what: 'unsupported content type',
        })),
      weight: 2,
    },
    {
      arbitrary: fc
        .tuple(format, fc.constantFrom(...BAD_ENCODINGS), validProtobuf(), fc.nat())
        .map(([f, contentEncoding, { bytes }, pick]) => ({
          contentType: (f === 'protobuf' ? PROTOBUF_TYPES : JSON_TYPES)[pick % 5],
          contentEncoding,
          body: bytes,
          what: 'unsupported content encoding',
        })),
      weight: 1,
    },
  );
}

/** Requests that the pipeline turns into events (so they reach the processor and the store). */
export function agentRequest(): fc.Arbitrary<OtlpTraceRequest> {
  const kindAttribute = fc.constantFrom<OtlpKeyValue[]>(
    [{ key: ATTR.eventKind, value: { stringValue: 'tool_call' } }],
    [{ key: ATTR.genAiOperation, value: { stringValue: 'execute_tool' } }],
    [{ key: ATTR.dbSystem, value: { stringValue: 'postgresql' } }],
    [{ key: ATTR.privilegeAction, value: { stringValue: 'grant' } }],
    [{ key: ATTR.taskRoot, value: { boolValue: true } }],
  );
  return fc
    .tuple(
      otlpRequest({ ...SMALL_SHAPE, spans: 3 }),
      kindAttribute,
      fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 12 }),
    )
    .map(([request, kind, taskId]) => {
      for (const rs of request.resourceSpans) {
        rs.resource = {
          attributes: [
            ...kind,
            { key: ATTR.taskId, value: { stringValue: `fuzz-${taskId}` } },
            ...(rs.resource?.attributes ?? []),
          ],
        };
      }
      return request;
    });
}

// ============================================================================================================
// The JSON API
// ============================================================================================================

export interface ApiCase {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'HEAD' | 'OPTIONS';
  url: string;
  headers: Record<string, string>;
  payload: string | Buffer | undefined;
}

/** Path parameters: real task ids, random text (encoded or raw), bad percent-encoding, long ones. */
function pathParam(taskIds: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.constantFrom(...taskIds).map(encodeURIComponent), weight: 4 },
    { arbitrary: fc.string({ unit: 'binary', maxLength: 24 }).map(encodeURIComponent), weight: 3 },
    { arbitrary: fc.string({ unit: fc.constantFrom(...chars("abc-_.~!$&'()*+,;=:@%")), maxLength: 12 }), weight: 2 },
    {
      arbitrary: fc.constantFrom(
        '%ZZ',
        '%',
        '%0',
        '%00',
        '%c3%28',
        '%ed%a0%80',
        '%ff',
        '..',
        '.',
        '%2F',
        '%2e%2e',
        '%20',
        'a%2Fb',
        '%F0%9F%98%80',
      ),
      weight: 2,
    },
    { arbitrary: fc.integer({ min: 90, max: 400 }).map((n) => 'a'.repeat(n)), weight: 1 },
  );
}

const QUERY_KEYS = ['task_id', 'agent_id', 'since', 'limit', 'cursor'];

function cursorOf(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

const queryValue: fc.Arbitrary<string> = fc.oneof(
  fc.integer({ min: -5, max: 1100 }).map(String),
  fc.constantFrom(
    '1',
    '1000',
    '1001',
    '0',
    '-1',
    '1.5',
    '1e3',
    '0x10',
    '',
    ' ',
    'null',
    'true',
    '[]',
    '9'.repeat(30),
    'NaN',
    'Infinity',
  ),
  fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  fc.constantFrom(
    '2024-01-01',
    '2024-13-45T99:99:99Z',
    '+275760-09-13T00:00:00.000Z',
    '-271821-04-20T00:00:00.000Z',
    '1970-01-01T00:00:00Z',
    'yesterday',
  ),
  fc.oneof(
    fc.nat().map(String),
    fc.bigInt({ min: 0n, max: 10n ** 25n }).map(String),
    fc.constantFrom('8640000000000000', '8640000000000001', '9007199254740991', '9999999999999999'),
  ),
  fc
    .tuple(
      fc.oneof(
        fc.integer(),
        fc.double(),
        fc.constantFrom(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 60, 1.5e15, 2 ** 58),
      ),
      fc.oneof(fc.string(), fc.constant(null), fc.integer()),
    )
    .map(([time, id]) => cursorOf([time, id])),
  fc.jsonValue({ maxDepth: 2 }).map(cursorOf),
  fc.string({
    unit: fc.constantFrom(...chars('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_')),
    maxLength: 40,
  }),
  fc.string({ unit: 'binary', maxLength: 16 }),
  fc.integer({ min: 257, max: 600 }).map((n) => 'q'.repeat(n)),
  fc.constantFrom('\ud800', 'a\udfff'),
);

const queryString: fc.Arbitrary<string> = fc
  .tuple(
    fc.array(
      fc.tuple(
        fc.oneof(
          { arbitrary: fc.constantFrom(...QUERY_KEYS), weight: 5 },
          { arbitrary: fc.string({ maxLength: 8 }), weight: 1 },
        ),
        queryValue,
        fc.boolean(),
      ),
      { maxLength: 5 },
    ),
    fc.constantFrom('', '&', '&&', '#frag', '&=', '&limit', '&limit=', '&=x'),
  )
  .map(([pairs, tail]) => {
    if (pairs.length === 0 && tail === '') return '';
    const encode = (s: string): string => {
      try {
        return encodeURIComponent(s);
      } catch {
        return '%ED%A0%80'; // a lone surrogate cannot be URI-encoded; send its UTF-8-ish bytes instead
      }
    };
    return `?${pairs.map(([k, v, raw]) => `${raw ? k.replace(/[#&=%?\s]/g, '') : encode(k)}=${raw ? v.replace(/[#&?\s]/g, '').replace(/%(?![0-9a-fA-F]{2})/g, '%25') : encode(v)}`).join('&')}${tail}`;
  });

const API_PATHS = (p: string): string[] => [
  `/v1/tasks/${p}`,
  `/v1/tasks/${p}/revoke`,
  `/v1/tasks/${p}/restore`,
  '/v1/alerts',
  '/v1/revocations',
  '/v1/baselines',
  '/healthz',
  '/readyz',
  `/v1/${p}`,
  `/${p}`,
  '/',
  '/v1/tasks/',
  '/v1/tasks',
  `//v1/alerts`,
  '/v1/alerts/',
  `/v1/tasks/${p}/revoke/`,
  `/v1/tasks/${p}/${p}`,
];

/** A JSON body string with raw escapes (lone surrogates) that JSON.stringify would also write. */
const reasonText: fc.Arbitrary<Json> = fc.oneof(
  { arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }), weight: 6 },
  {
    arbitrary: fc.constantFrom<Json>('', 'x'.repeat(2000), 'x'.repeat(2001), '\ud800', 'stop\udfff', ' ', '\u0000'),
    weight: 2,
  },
  { arbitrary: wrongJsonValue, weight: 2 },
);

const apiBody: fc.Arbitrary<{ payload: string | Buffer | undefined; contentType: string | undefined }> = fc.oneof(
  {
    arbitrary: fc
      .tuple(
        reasonText,
        fc.option(reasonText),
        fc.option(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 })),
      )
      .map(([reason, actor, extra]) => ({
        payload: stringifyWithRawTokens({
          reason,
          ...(actor === null ? {} : { actor }),
          ...((extra ?? {}) as Record<string, Json>),
        }),
        contentType: 'application/json',
      })),
    weight: 8,
  },
  {
    arbitrary: fc
      .jsonValue({ maxDepth: 3 })
      .map((v) => ({ payload: JSON.stringify(v), contentType: 'application/json' })),
    weight: 2,
  },
  {
    arbitrary: fc
      .constantFrom(
        '{"reason":"x","__proto__":{"admin":true}}',
        '{"reason":"x","constructor":{"prototype":{"admin":true}}}',
        '{"reason":',
        '{reason:"x"}',
        '',
        '{"reason":"\\ud800"}',
        '{"reason":"x"}{"reason":"y"}',
        '\uFEFF{"reason":"x"}',
        '{"reason":"x","reason":"y"}',
      )
      .map((payload) => ({ payload, contentType: 'application/json' })),
    weight: 2,
  },
  {
    arbitrary: fc
      .tuple(
        fc.constantFrom(
          'text/plain',
          'application/x-www-form-urlencoded',
          'application/octet-stream',
          'application/json; charset=latin1',
          'multipart/form-data',
          'application/jsonx',
          '',
        ),
        fc.string({ maxLength: 40 }),
      )
      .map(([contentType, payload]) => ({ payload, contentType })),
    weight: 2,
  },
  {
    arbitrary: fc
      .integer({ min: 60_000, max: 200_000 })
      .map((n) => ({ payload: `{"reason":"${'r'.repeat(n)}"}`, contentType: 'application/json' })),
    weight: 1,
  },
  { arbitrary: fc.constant({ payload: undefined, contentType: undefined }), weight: 1 },
  {
    arbitrary: fc
      .uint8Array({ maxLength: 64 })
      .map((b) => ({ payload: Buffer.from(b), contentType: 'application/json' })),
    weight: 1,
  },
);

const extraHeaders: fc.Arbitrary<Record<string, string>> = fc
  .array(
    fc.tuple(
      fc.constantFrom(
        'accept',
        'accept-encoding',
        'content-encoding',
        'authorization',
        'x-forwarded-for',
        'origin',
        'x-tripline-tenant',
        'cookie',
        'if-none-match',
        'range',
        'x-http-method-override',
      ),
      fc.oneof(
        fc.string({ unit: fc.constantFrom(...chars('abcxyz019 ,;=/*-.')), maxLength: 24 }),
        fc.constantFrom(
          'gzip',
          'br',
          '*/*',
          'application/xml',
          'Bearer x',
          'DELETE',
          'bytes=0-1',
          'default',
          'other-tenant',
        ),
      ),
    ),
    { maxLength: 3 },
  )
  .map((entries) => Object.fromEntries(entries));

/** Requests of every kind for the JSON API, around `taskIds` that exist in the store. */
export function apiCase(taskIds: readonly string[]): fc.Arbitrary<ApiCase> {
  const method = fc.oneof(
    { arbitrary: fc.constant('GET' as const), weight: 6 },
    { arbitrary: fc.constant('POST' as const), weight: 5 },
    {
      arbitrary: fc.constantFrom(
        'PUT' as const,
        'DELETE' as const,
        'PATCH' as const,
        'HEAD' as const,
        'OPTIONS' as const,
      ),
      weight: 1,
    },
  );
  return fc
    .tuple(method, pathParam(taskIds), fc.nat(), queryString, apiBody, extraHeaders)
    .map(([m, param, pick, query, body, headers]) => {
      const paths = API_PATHS(param);
      const path = paths[pick % paths.length] ?? '/';
      const all: Record<string, string> = { ...headers };
      const sendsBody = m !== 'GET' && m !== 'HEAD' && body.payload !== undefined;
      if (sendsBody && body.contentType !== undefined && body.contentType !== '')
        all['content-type'] = body.contentType;
      return { method: m, url: `${path}${query}`, headers: all, payload: sendsBody ? body.payload : undefined };
    });
}

// ============================================================================================================
// The decoded shape's contract (schemas/otlp.ts), for checking whatever a decoder accepted
// ============================================================================================================

const HEX16 = /^(?:[0-9a-f]{32})?$/;
const HEX8 = /^(?:[0-9a-f]{16})?$/;
const DECIMAL_U64 = /^(?:0|[1-9]\d{0,19})$/;
const DECIMAL_I64 = /^-?(?:0|[1-9]\d{0,18})$/;

function isUint32(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffffffff;
}

/**
 * Ways in which a decoded request breaks the contract downstream code relies on (empty when it keeps it):
 * ids lowercase hex of the right length or '', timestamps canonical uint64 decimals, int64 as safe numbers or
 * in-range decimal strings, counts uint32, strings well-formed UTF-16 (no lone surrogates: the store's JSON
 * insert rejects them), AnyValue nesting within `maxDepth`.
 */
export function contractProblems(request: OtlpTraceRequest, maxDepth = 32): string[] {
  const problems: string[] = [];
  const text = (value: unknown, where: string): void => {
    if (typeof value !== 'string') problems.push(`${where}: not a string`);
    else if (!value.isWellFormed()) problems.push(`${where}: lone surrogate in ${JSON.stringify(value.slice(0, 40))}`);
  };
  const optionalText = (value: unknown, where: string): void => {
    if (value !== undefined) text(value, where);
  };
  const count = (value: unknown, where: string): void => {
    if (value !== undefined && !isUint32(value)) problems.push(`${where}: not a uint32 (${JSON.stringify(value)})`);
  };
  const u64 = (value: unknown, where: string): void => {
    if (typeof value !== 'string' || !DECIMAL_U64.test(value) || BigInt(value) > UINT64_MAX)
      problems.push(`${where}: not a uint64 decimal (${String(value)})`);
  };
  const anyValue = (v: OtlpAnyValue, where: string, depth: number): void => {
    if (depth > maxDepth) problems.push(`${where}: nested ${depth} deep`);
    const members = Object.keys(v).filter((key) => (v as Record<string, unknown>)[key] !== undefined);
    if (members.length > 1) problems.push(`${where}: several values ${members.join(',')}`);
    if (v.stringValue !== undefined) text(v.stringValue, `${where}.stringValue`);
    if (v.boolValue !== undefined && typeof v.boolValue !== 'boolean')
      problems.push(`${where}.boolValue: not a boolean`);
    if (v.intValue !== undefined) {
      const i = v.intValue;
      if (
        typeof i === 'number'
          ? !Number.isSafeInteger(i) || Object.is(i, -0)
          : !DECIMAL_I64.test(i) || BigInt(i) < INT64_MIN || BigInt(i) > INT64_MAX || Number.isSafeInteger(Number(i))
      ) {
        problems.push(`${where}.intValue: not canonical (${String(i)})`);
      }
    }
    if (v.doubleValue !== undefined && typeof v.doubleValue !== 'number')
      problems.push(`${where}.doubleValue: not a number`);
    if (v.bytesValue !== undefined && !(v.bytesValue instanceof Uint8Array))
      problems.push(`${where}.bytesValue: not bytes`);
    v.arrayValue?.values.forEach((item, i) => anyValue(item, `${where}.arrayValue[${i}]`, depth + 1));
    v.kvlistValue?.values.forEach((kv, i) => keyValue(kv, `${where}.kvlistValue[${i}]`, depth));
  };
  const keyValue = (kv: OtlpKeyValue, where: string, depth: number): void => {
    text(kv.key, `${where}.key`);
    if (kv.value !== undefined) anyValue(kv.value, `${where}.value`, depth + 1);
  };
  const attributes = (list: readonly OtlpKeyValue[], where: string): void =>
    list.forEach((kv, i) => keyValue(kv, `${where}[${i}]`, 0));
  request.resourceSpans.forEach((rs, r) => {
    const at = `resourceSpans[${r}]`;
    if (rs.resource !== undefined) {
      attributes(rs.resource.attributes, `${at}.resource.attributes`);
      count(rs.resource.droppedAttributesCount, `${at}.resource.droppedAttributesCount`);
    }
    optionalText(rs.schemaUrl, `${at}.schemaUrl`);
    rs.scopeSpans.forEach((ss, s) => {
      const sat = `${at}.scopeSpans[${s}]`;
      if (ss.scope !== undefined) {
        text(ss.scope.name, `${sat}.scope.name`);
        optionalText(ss.scope.version, `${sat}.scope.version`);
        attributes(ss.scope.attributes, `${sat}.scope.attributes`);
        count(ss.scope.droppedAttributesCount, `${sat}.scope.droppedAttributesCount`);
      }
      optionalText(ss.schemaUrl, `${sat}.schemaUrl`);
      ss.spans.forEach((span, i) => {
        const p = `${sat}.spans[${i}]`;
        if (!HEX16.test(span.traceId) || /^0+$/.test(span.traceId))
          problems.push(`${p}.traceId: ${JSON.stringify(span.traceId)}`);
        if (!HEX8.test(span.spanId) || /^0+$/.test(span.spanId))
          problems.push(`${p}.spanId: ${JSON.stringify(span.spanId)}`);
        if (!HEX8.test(span.parentSpanId) || /^0+$/.test(span.parentSpanId))
          problems.push(`${p}.parentSpanId: ${JSON.stringify(span.parentSpanId)}`);
        text(span.name, `${p}.name`);
        optionalText(span.traceState, `${p}.traceState`);
        if (!Number.isInteger(span.kind) || span.kind < -0x80000000 || span.kind > 0x7fffffff)
          problems.push(`${p}.kind: ${String(span.kind)}`);
        u64(span.startTimeUnixNano, `${p}.startTimeUnixNano`);
        u64(span.endTimeUnixNano, `${p}.endTimeUnixNano`);
        count(span.flags, `${p}.flags`);
        count(span.droppedAttributesCount, `${p}.droppedAttributesCount`);
        count(span.droppedEventsCount, `${p}.droppedEventsCount`);
        count(span.droppedLinksCount, `${p}.droppedLinksCount`);
        attributes(span.attributes, `${p}.attributes`);
        span.events.forEach((e, j) => {
          u64(e.timeUnixNano, `${p}.events[${j}].timeUnixNano`);
          text(e.name, `${p}.events[${j}].name`);
          attributes(e.attributes, `${p}.events[${j}].attributes`);
          count(e.droppedAttributesCount, `${p}.events[${j}].droppedAttributesCount`);
        });
        span.links.forEach((l, j) => {
          if (!HEX16.test(l.traceId)) problems.push(`${p}.links[${j}].traceId: ${JSON.stringify(l.traceId)}`);
          if (!HEX8.test(l.spanId)) problems.push(`${p}.links[${j}].spanId: ${JSON.stringify(l.spanId)}`);
          optionalText(l.traceState, `${p}.links[${j}].traceState`);
          attributes(l.attributes, `${p}.links[${j}].attributes`);
          count(l.droppedAttributesCount, `${p}.links[${j}].droppedAttributesCount`);
          count(l.flags, `${p}.links[${j}].flags`);
        });
        if (span.status !== undefined) {
          if (!Number.isInteger(span.status.code)) problems.push(`${p}.status.code: ${String(span.status.code)}`);
          optionalText(span.status.message, `${p}.status.message`);
        }
      });
    });
  });
  return problems;
}
