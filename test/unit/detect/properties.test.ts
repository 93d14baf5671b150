/** Properties that hold for any input (fast-check). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DataClassification } from '../../../schemas/conventions.ts';
import type { AgentEvent, Verdict } from '../../../schemas/events.ts';
import {
  DEFAULT_DETECTOR_CONFIG,
  type TaskSummary,
  combineFamilies,
  emptyBaseline,
  learn,
  parseBaseline,
  rebuildBaseline,
  serializeBaseline,
  summarize,
} from '../../../services/core/detect/index.ts';
import { excessScore } from '../../../services/core/detect/stats.ts';
import { T0, TENANT, run, stateOf, train } from './fixtures.ts';

const TYPE = 'summarize_ticket';
const trained = train(TYPE, 30, 41, 30);

const VOLUME = new Set([
  'data.rows_per_access',
  'data.bytes_per_access',
  'data.rows_per_task',
  'data.bytes_per_task',
  'data.sensitive_rows_per_task',
  'data.resource_rows_per_task',
  'data.resource_bytes_per_task',
]);

function volumeScore(v: Verdict): number {
  let m = 0;
  for (const c of v.contributions) if (VOLUME.has(c.feature) && c.score > m) m = c.score;
  return m;
}

const resources = fc.constantFrom(
  'crm.customers',
  'kb.articles',
  'tickets/17',
  'hr.salaries',
  'https://api.acme.io/v1/x',
  '__proto__',
  'constructor',
);
const classification = fc.option(fc.constantFrom('public', 'internal', 'confidential', 'restricted' as const), {
  nil: undefined,
});
const access = fc.record({
  resource: resources,
  rows: fc.nat({ max: 100_000 }),
  bytes: fc.nat({ max: 50_000_000 }),
  classification,
  gapMs: fc.nat({ max: 120_000 }),
});

function dataEvents(
  taskId: string,
  accesses: readonly {
    resource: string;
    rows: number;
    bytes: number;
    classification: DataClassification | undefined;
    gapMs: number;
  }[],
): AgentEvent[] {
  let t = T0;
  return accesses.map((a, i) => {
    t += a.gapMs;
    const e: AgentEvent = {
      id: `${taskId}:${String(i)}`,
      tenant: TENANT,
      kind: 'data_access',
      taskId,
      taskType: TYPE,
      agentId: 'agent-1',
      traceId: taskId,
      spanId: String(i),
      parentSpanId: '',
      name: 'read',
      startMs: t,
      endMs: t + 10,
      error: false,
      data: {
        resource: a.resource,
        rows: a.rows,
        bytes: a.bytes,
        ...(a.classification === undefined ? {} : { classification: a.classification }),
      },
      attributes: {},
    };
    return e;
  });
}

const toolNames = fc.constantFrom(
  'get_ticket',
  'search_kb',
  'summarize',
  'post_comment',
  'shell_exec',
  'http_request',
  'toString',
  '__proto__',
);
const anyEvent = fc.oneof(
  fc.record({
    kind: fc.constant('tool_call' as const),
    name: toolNames,
    target: fc.option(fc.constantFrom('https://x.example.com/a', 'helpdesk.acme.io/api', 'crm.customers', ''), {
      nil: undefined,
    }),
    error: fc.boolean(),
    gapMs: fc.nat({ max: 90_000 }),
  }),
  fc.record({
    kind: fc.constant('data_access' as const),
    resource: resources,
    rows: fc.double({ min: -10, max: 1e9, noNaN: false }),
    bytes: fc.double({ min: -10, max: 1e12 }),
    classification,
    error: fc.boolean(),
    gapMs: fc.nat({ max: 90_000 }),
  }),
  fc.record({
    kind: fc.constant('privilege_change' as const),
    action: fc.constantFrom('grant', 'elevate', 'token_issue', 'assume_role'),
    before: fc.subarray(['a:read', 'b:write', 'helpdesk:read']),
    after: fc.subarray(['a:read', 'b:write', 'iam:admin', '*', 'helpdesk:comment']),
    error: fc.boolean(),
    gapMs: fc.nat({ max: 90_000 }),
  }),
);

type AnySpec = typeof anyEvent extends fc.Arbitrary<infer T> ? T : never;

function anyEvents(taskId: string, specs: readonly AnySpec[]): AgentEvent[] {
  let t = T0;
  return specs.map((s, i) => {
    t += s.gapMs;
    const e: AgentEvent = {
      id: `${taskId}:${String(i)}`,
      tenant: TENANT,
      kind: s.kind,
      taskId,
      taskType: TYPE,
      agentId: 'agent-1',
      traceId: taskId,
      spanId: String(i),
      parentSpanId: '',
      name: s.kind,
      startMs: t,
      endMs: t + 5,
      error: s.error,
      attributes: {},
    };
    if (s.kind === 'tool_call') e.tool = { name: s.name, ...(s.target === undefined ? {} : { target: s.target }) };
    else if (s.kind === 'data_access')
      e.data = {
        resource: s.resource,
        rows: s.rows,
        bytes: s.bytes,
        ...(s.classification === undefined ? {} : { classification: s.classification }),
      };
    else e.privilege = { action: s.action, scopesBefore: s.before, scopesAfter: s.after };
    return e;
  });
}

describe('properties', () => {
  it('more data read never lowers the data score or the total score (type and rules regimes)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(access, fc.nat({ max: 1_000_000 }), fc.nat({ max: 10_000_000 })), {
          minLength: 1,
          maxLength: 25,
        }),
        fc.boolean(),
        (rows, rules) => {
          const small = dataEvents(
            'small',
            rows.map(([a]) => a),
          );
          const big = dataEvents(
            'big',
            rows.map(([a, dr, db]) => ({ ...a, rows: a.rows + dr, bytes: a.bytes + db })),
          );
          const lookup = rules ? { fleet: trained.fleet } : trained.lookup;
          const vs = run(small, lookup).verdicts;
          const vb = run(big, lookup).verdicts;
          vs.forEach((v, i) => {
            const w = vb[i];
            if (w === undefined) throw new Error('missing verdict');
            expect(volumeScore(w)).toBeGreaterThanOrEqual(volumeScore(v));
            expect(w.score).toBeGreaterThanOrEqual(v.score);
          });
        },
      ),
      { numRuns: 150 },
    );
  });

  it('every score is in [0, 100], every contribution too, for arbitrary event sequences', () => {
    fc.assert(
      fc.property(
        fc.array(anyEvent, { minLength: 1, maxLength: 30 }),
        fc.constantFrom('type', 'rules', 'none'),
        (specs, which) => {
          const lookup = which === 'type' ? trained.lookup : which === 'rules' ? { fleet: trained.fleet } : {};
          for (const v of run(anyEvents('any', specs), lookup, DEFAULT_DETECTOR_CONFIG).verdicts) {
            expect(v.score).toBeGreaterThanOrEqual(0);
            expect(v.score).toBeLessThanOrEqual(100);
            expect(Number.isFinite(v.score)).toBe(true);
            for (const c of v.contributions) {
              expect(c.score).toBeGreaterThan(0);
              expect(c.score).toBeLessThanOrEqual(100);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  const summariesArb = fc
    .array(fc.array(anyEvent, { minLength: 1, maxLength: 15 }), { minLength: 0, maxLength: 12 })
    .map((tasks) => tasks.map((specs, i): TaskSummary => summarize(stateOf(anyEvents(`task-${String(i)}`, specs)))));

  it('serialize → parse round-trips any learned baseline', () => {
    fc.assert(
      fc.property(summariesArb, (summaries) => {
        const b = rebuildBaseline(TYPE, summaries);
        const back = parseBaseline(serializeBaseline(b));
        expect(back).toEqual(b);
        expect(serializeBaseline(back)).toBe(serializeBaseline(b));
      }),
      { numRuns: 100 },
    );
  });

  it('rebuildBaseline equals folding learn, also when the online baseline is persisted and reloaded between tasks', () => {
    fc.assert(
      fc.property(summariesArb, fc.nat({ max: 12 }), (summaries, cut) => {
        let folded = emptyBaseline(TYPE);
        for (const s of summaries) folded = learn(folded, s);
        let resumed = emptyBaseline(TYPE);
        summaries.forEach((s, i) => {
          if (i === cut) resumed = parseBaseline(serializeBaseline(resumed));
          resumed = learn(resumed, s);
        });
        const rebuilt = rebuildBaseline(TYPE, summaries);
        expect(serializeBaseline(rebuilt)).toBe(serializeBaseline(folded));
        expect(rebuilt).toEqual(folded);
        expect(resumed).toEqual(rebuilt);
      }),
      { numRuns: 100 },
    );
  });

  it('combining is bounded, at least the strongest family, and monotone in each family', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { maxLength: 8 }),
        fc.nat({ max: 7 }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        (scores, i, bump) => {
          const c = combineFamilies(scores);
          expect(c).toBeGreaterThanOrEqual(0);
          expect(c).toBeLessThanOrEqual(100);
          expect(c).toBeGreaterThanOrEqual(Math.max(0, ...scores) - 1e-9);
          if (i < scores.length) {
            const raised = [...scores];
            raised[i] = Math.max(scores[i] ?? 0, bump);
            expect(combineFamilies(raised)).toBeGreaterThanOrEqual(c - 1e-9);
          }
        },
      ),
    );
  });

  it('excessScore is monotone in the value', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1e12, noNaN: true }),
        fc.double({ min: 0, max: 1e12, noNaN: true }),
        fc.double({ min: 1e-3, max: 1e9, noNaN: true }),
        (a, b, upper) => {
          const [lo, hi] = a <= b ? [a, b] : [b, a];
          expect(excessScore(hi, upper, 6)).toBeGreaterThanOrEqual(excessScore(lo, upper, 6));
        },
      ),
    );
  });
});
