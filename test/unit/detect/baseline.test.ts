import { describe, expect, it } from 'vitest';
import {
  FLEET_TASK_TYPE,
  cloneBaseline,
  describeBaseline,
  emptyBaseline,
  learn,
  parseBaseline,
  rebuildBaseline,
  serializeBaseline,
  summarize,
} from '../../../services/core/detect/index.ts';
import { benignTask, rng, stateOf } from './fixtures.ts';

function summaries(type: string, n: number, seed = 3): ReturnType<typeof summarize>[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, i) => summarize(stateOf(benignTask(type, `${type}-${String(i)}`, r).events)));
}

describe('learn', () => {
  it('counts tasks, tools, resources, hosts and precomputes fences', () => {
    const b = rebuildBaseline('summarize_ticket', summaries('summarize_ticket', 40));
    expect(b.tasks).toBe(40);
    expect(b.tools.get_ticket?.tasks).toBe(40);
    expect(b.resources['tickets/#']?.tasks).toBe(40);
    expect(b.resources['kb.articles']?.rows?.fence.n).toBe(40);
    expect(b.hosts['helpdesk.acme.io']).toBe(40);
    expect(b.dists.rows.fence.n).toBe(40);
    expect(b.dists.rows.fence.upper).toBeGreaterThan(b.dists.rows.fence.max);
    expect(b.derived.pNew.tools).toBeLessThan(0.05);
    expect(b.derived.transitionTotals['^']).toBe(40);
  });

  it('refuses a task of another type, except into the fleet baseline', () => {
    const [s] = summaries('deploy_service', 1);
    if (s === undefined) throw new Error('no summary');
    expect(() => learn(emptyBaseline('summarize_ticket'), s)).toThrow(/cannot learn a task of type "deploy_service"/);
    expect(learn(emptyBaseline(FLEET_TASK_TYPE), s).tasks).toBe(1);
  });

  it('counts tasks learned from operator feedback (false positives), visibly', () => {
    const [a, b2] = summaries('summarize_ticket', 2);
    if (a === undefined || b2 === undefined) throw new Error('no summary');
    const b = rebuildBaseline('summarize_ticket', [a, { ...b2, markedFalsePositive: true }]);
    expect(b.falsePositivesLearned).toBe(1);
    expect(describeBaseline(b).falsePositivesLearned).toBe(1);
    expect(parseBaseline(serializeBaseline(b)).falsePositivesLearned).toBe(1);
  });

  it('keeps a bounded window of values', () => {
    const b = emptyBaseline('summarize_ticket');
    b.window = 8;
    for (const s of summaries('summarize_ticket', 20)) learn(b, s);
    expect(b.dists.events.values).toHaveLength(8);
    expect(b.tasks).toBe(20);
  });

  it('is safe against keys like __proto__ in data', () => {
    const [s] = summaries('summarize_ticket', 1);
    if (s === undefined) throw new Error('no summary');
    const evil = JSON.parse(JSON.stringify(s).replace('"get_ticket"', '"__proto__"')) as typeof s;
    const b = learn(emptyBaseline('summarize_ticket'), evil);
    expect(Object.keys(b.tools)).toContain('__proto__');
    expect(Object.getPrototypeOf(b.tools)).toBeNull();
    expect(parseBaseline(serializeBaseline(b)).tools.__proto__?.tasks).toBe(1);
  });
});

describe('serialize / parse', () => {
  it('round-trips, recomputing derived fields', () => {
    const b = rebuildBaseline('deploy_service', summaries('deploy_service', 25));
    const json = serializeBaseline(b);
    expect(json).not.toContain('"sorted"');
    expect(json).not.toContain('"fence"');
    expect(parseBaseline(json)).toEqual(b);
    expect(cloneBaseline(b)).toEqual(b);
  });

  it.each([
    ['not json', /not JSON/],
    ['[]', /\(root\) must be an object/],
    ['{"format":2}', /format must be 1/],
  ])('rejects %s', (json, message) => {
    expect(() => parseBaseline(json)).toThrow(message);
  });

  it('names the bad field', () => {
    const good = JSON.parse(
      serializeBaseline(rebuildBaseline('summarize_ticket', summaries('summarize_ticket', 3))),
    ) as Record<string, unknown>;
    const bad = (patch: Record<string, unknown>): string => JSON.stringify({ ...good, ...patch });
    expect(() => parseBaseline(bad({ tasks: -1 }))).toThrow(/tasks must be a non-negative integer/);
    expect(() => parseBaseline(bad({ dists: { ...(good.dists as object), rows: [1, 'x'] } }))).toThrow(
      /dists.rows\[1\] must be a non-negative finite number/,
    );
    expect(() => parseBaseline(bad({ classifications: { secretish: 1 } }))).toThrow(
      /classifications.secretish is not one of/,
    );
    expect(() => parseBaseline(bad({ tools: { a: { tasks: 1, calls: 1, perTask: 'x' } } }))).toThrow(
      /tools.a.perTask must be an array/,
    );
  });
});

describe('describeBaseline', () => {
  it('says what is normal: per-task quantiles, tools with frequencies, privilege actions', () => {
    const d = describeBaseline(rebuildBaseline('summarize_ticket', summaries('summarize_ticket', 50)));
    expect(d).toMatchObject({ taskType: 'summarize_ticket', tasks: 50 });
    const perTask = d.perTask as Record<string, { p50: number; p99: number }>;
    expect(perTask.rows?.p99).toBeGreaterThanOrEqual(perTask.rows?.p50 ?? Infinity);
    const tools = d.tools as { tool: string; share: number }[];
    expect(tools[0]).toMatchObject({ share: 1 });
    expect(tools.map((t) => t.tool)).toEqual(
      expect.arrayContaining(['get_ticket', 'search_kb', 'summarize', 'post_comment']),
    );
    expect((d.privilegeActions as { key: string }[]).map((a) => a.key)).toEqual(['token_issue']);
    expect(JSON.parse(JSON.stringify(d))).toEqual(d);
  });
});
