/**
 * Fuzzing the OTLP decoders (services/otlp/codec.ts) with fast-check, in two run modes:
 * `decoder-protobuf` and `decoder-json`. Each mode spends FUZZ_RUNS generated inputs (see arbitraries.ts):
 *
 * - valid requests with random attributes of every AnyValue type decode to exactly what was encoded (JSON in
 *   every spelling the mapping allows decodes to what its protobuf form decodes to);
 * - broken input (truncated, mutated, grammar-aware garbage, wrong wire types, lying length prefixes, invalid
 *   UTF-8, JSON with wrong types, nulls, extra fields, huge numbers, ids of the wrong length, int64 edges)
 *   either decodes to a request that keeps the decoded shape's contract or throws
 *   `TriplineError('OTLP_BAD_REQUEST')`, never anything else;
 * - resource-exhaustion shapes (nesting far past the limit, 50 000 attributes, 4 MB strings, 100 000 spans,
 *   16 MB numbers) are answered within a time budget, and nesting is accepted up to 32 levels exactly.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MAX_ANY_VALUE_DEPTH, decodeTraceRequest, encodeTraceRequest } from '../../services/otlp/codec.ts';
import type { OtlpFormat, OtlpTraceRequest } from '../../schemas/otlp.ts';
import { TriplineError } from '../../services/shared/errors.ts';
import {
  brokenJson,
  brokenProtobuf,
  contractProblems,
  deepAnyValueJson,
  deepIgnoredJson,
  FUZZ_RUNS,
  fuzz,
  heavyProtobuf,
  reportMemory,
  runsFor,
  settledHeapMb,
  timeoutFor,
  validJson,
  validProtobuf,
} from './arbitraries.ts';

/**
 * Decodes, and checks that the only ways to fail are OTLP_BAD_REQUEST (400) and, for a request that would
 * decode to far more objects than its size justifies, OTLP_PAYLOAD_TOO_LARGE (413); returns the request or the error.
 */
function decodeOrBadRequest(body: Uint8Array, format: OtlpFormat): OtlpTraceRequest | TriplineError {
  try {
    return decodeTraceRequest(body, format);
  } catch (error) {
    if (error instanceof TriplineError && error.code === 'OTLP_PAYLOAD_TOO_LARGE' && error.status === 413) return error;
    if (!(error instanceof TriplineError) || error.code !== 'OTLP_BAD_REQUEST' || error.status !== 400) {
      throw new Error(`decoding threw something other than OTLP_BAD_REQUEST: ${String(error)}`, { cause: error });
    }
    if (!error.message.startsWith(`invalid OTLP/${format === 'json' ? 'JSON' : 'protobuf'} trace request`)) {
      throw new Error(`unhelpful error message: ${error.message}`, { cause: error });
    }
    return error;
  }
}

function expectKeepsContract(result: OtlpTraceRequest | TriplineError): void {
  if (result instanceof TriplineError) return;
  const problems = contractProblems(result, MAX_ANY_VALUE_DEPTH);
  if (problems.length > 0) throw new Error(`decoded request breaks the contract: ${problems.slice(0, 5).join('; ')}`);
}

const SHARE = { valid: 0.25, broken: 0.74, heavy: 0.01 };

describe('fuzz: OTLP protobuf decoder', () => {
  const mode = 'decoder-protobuf';
  let heapBefore = 0;

  it(
    'decodes every valid request to exactly what was encoded',
    () => {
      heapBefore = settledHeapMb();
      fuzz(
        mode,
        'valid round trip',
        validProtobuf(),
        ({ request, bytes }) => {
          const decoded = decodeTraceRequest(bytes, 'protobuf');
          expect(decoded).toEqual(request);
          expect(contractProblems(decoded)).toEqual([]);
          expect(Buffer.from(encodeTraceRequest(decoded)).equals(bytes)).toBe(true);
        },
        { runs: runsFor(SHARE.valid), caseBudgetMs: 1000 },
      );
    },
    timeoutFor(runsFor(SHARE.valid), 2),
  );

  it(
    'answers broken protobuf with a decoded request that keeps the contract or OTLP_BAD_REQUEST, nothing else',
    () => {
      fuzz(
        mode,
        'broken input',
        brokenProtobuf,
        (bytes) => expectKeepsContract(decodeOrBadRequest(bytes, 'protobuf')),
        {
          runs: runsFor(SHARE.broken),
          caseBudgetMs: 1000,
        },
      );
    },
    timeoutFor(runsFor(SHARE.broken), 2),
  );

  it(
    'handles deep nesting, huge attribute counts, long strings and many spans within the budget',
    () => {
      fuzz(
        mode,
        'resource exhaustion',
        heavyProtobuf,
        ({ bytes, expectValid, what }) => {
          const result = decodeOrBadRequest(bytes, 'protobuf');
          if (expectValid === true && result instanceof TriplineError)
            throw new Error(`${what}: rejected (${result.message})`);
          if (expectValid === false && !(result instanceof TriplineError)) throw new Error(`${what}: accepted`);
          expectKeepsContract(result);
        },
        { runs: runsFor(SHARE.heavy), caseBudgetMs: 3000, shrink: false },
      );
      const { heapGrowthMb } = reportMemory(mode, heapBefore);
      expect(heapGrowthMb).toBeLessThan(64);
    },
    timeoutFor(runsFor(SHARE.heavy), 100),
  );
});

/** A 16 MiB number (the receiver's default body limit) and smaller ones, built once. */
const longNumbers = new Map<number, Buffer>();
function longIntValueJson(digits: number): Buffer {
  let body = longNumbers.get(digits);
  if (body === undefined) {
    body = Buffer.from(
      `{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"k","value":{"intValue":"${'9'.repeat(digits)}"}}]}]}]}]}`,
    );
    longNumbers.set(digits, body);
  }
  return body;
}

const heavyJson: fc.Arbitrary<{ bytes: Buffer; expectValid: boolean | undefined; what: string }> = fc.oneof(
  fc
    .tuple(
      fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 30, max: 34 }), fc.constantFrom(100, 1000, 10_000)),
      fc.constantFrom('array' as const, 'kvlist' as const, 'mixed' as const),
    )
    .map(([depth, via]) => ({
      bytes: deepAnyValueJson(depth, via),
      expectValid: depth <= MAX_ANY_VALUE_DEPTH,
      what: `AnyValue nested ${depth} deep via ${via}`,
    })),
  fc.constantFrom(1000, 100_000, 1_000_000).map((depth) => ({
    bytes: deepIgnoredJson(depth),
    expectValid: undefined,
    what: `arrays nested ${depth} deep in an ignored field`,
  })),
  fc.constantFrom(21, 1000, 1_000_000, 16 * 1024 * 1024 - 120).map((digits) => ({
    bytes: longIntValueJson(digits),
    expectValid: false,
    what: `an intValue of ${digits} digits`,
  })),
);

describe('fuzz: OTLP/JSON decoder', () => {
  const mode = 'decoder-json';
  let heapBefore = 0;

  it(
    'decodes every valid request in any spelling to what its protobuf form decodes to',
    () => {
      heapBefore = settledHeapMb();
      fuzz(
        mode,
        'valid round trip',
        validJson(),
        ({ request, bytes }) => {
          const decoded = decodeTraceRequest(bytes, 'json');
          expect(decoded).toEqual(request);
          expect(decoded).toEqual(decodeTraceRequest(encodeTraceRequest(request), 'protobuf'));
        },
        { runs: runsFor(SHARE.valid), caseBudgetMs: 1000 },
      );
    },
    timeoutFor(runsFor(SHARE.valid), 2),
  );

  it(
    'answers broken JSON with a decoded request that keeps the contract or OTLP_BAD_REQUEST, nothing else',
    () => {
      fuzz(mode, 'broken input', brokenJson, (bytes) => expectKeepsContract(decodeOrBadRequest(bytes, 'json')), {
        runs: runsFor(SHARE.broken),
        caseBudgetMs: 1000,
      });
    },
    timeoutFor(runsFor(SHARE.broken), 3),
  );

  it(
    'handles deep nesting and 16 MB numbers within the budget',
    () => {
      fuzz(
        mode,
        'resource exhaustion',
        heavyJson,
        ({ bytes, expectValid, what }) => {
          const result = decodeOrBadRequest(bytes, 'json');
          if (expectValid === true && result instanceof TriplineError)
            throw new Error(`${what}: rejected (${result.message})`);
          if (expectValid === false && !(result instanceof TriplineError)) throw new Error(`${what}: accepted`);
          expectKeepsContract(result);
        },
        { runs: runsFor(SHARE.heavy), caseBudgetMs: 3000, shrink: false },
      );
      longNumbers.clear();
      const { heapGrowthMb } = reportMemory(mode, heapBefore);
      expect(heapGrowthMb).toBeLessThan(64);
    },
    timeoutFor(runsFor(SHARE.heavy), 2000),
  );

  it('runs FUZZ_RUNS inputs in this mode', () => {
    expect(runsFor(SHARE.valid) + runsFor(SHARE.broken) + runsFor(SHARE.heavy)).toBeGreaterThanOrEqual(FUZZ_RUNS);
  });
});
