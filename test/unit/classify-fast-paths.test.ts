/**
 * Classification's fast paths against the plain readings they replace: keptAttributes walking a span's layered
 * attributes directly against the same view walked through its iterator, and nanosToMs reading digits by hand
 * against Number's reading of the substring.
 */
import { describe, expect, it } from 'vitest';
import type { AttributeValue } from '../../schemas/events.ts';
import { LayeredAttributes } from '../../services/core/attribute-values.ts';
import type { Attributes } from '../../services/core/attribute-values.ts';
import { nanosToMs } from '../../services/core/classify.ts';
import { MAX_KEPT_ATTRIBUTES, keptAttributes } from '../../services/core/tool-detail.ts';

type Value = AttributeValue | readonly AttributeValue[];

/** A deterministic pseudo-random sequence (tests must not depend on a seed they cannot replay). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

const KEYS = [
  'service.name',
  'gen_ai.tool.call.arguments',
  'gen_ai.tool.call.result',
  'tripline.task.id',
  'url.full',
  'db.query.text',
  '7',
  '0',
  'x',
];

function someMap(next: () => number, size: number): Map<string, Value> {
  const map = new Map<string, Value>();
  for (let i = 0; i < size; i += 1) {
    const key = next() < 0.5 ? (KEYS[Math.floor(next() * KEYS.length)] ?? 'x') : `k${String(Math.floor(next() * 200))}`;
    const pick = next();
    const value: Value =
      pick < 0.3
        ? 'v'.repeat(Math.floor(next() * 700))
        : pick < 0.5
          ? Math.floor(next() * 1000) - 500
          : pick < 0.6
            ? next() < 0.5
            : pick < 0.8
              ? ['a', 2, true, 'x'.repeat(Math.floor(next() * 600))]
              : '';
    map.set(key, value);
  }
  return map;
}

/** The same view as LayeredAttributes, read only through get/has and its iterator (the generic path). */
function plainView(layered: LayeredAttributes): Attributes {
  return {
    get: (key) => layered.get(key),
    has: (key) => layered.has(key),
    [Symbol.iterator]: () => layered[Symbol.iterator](),
  };
}

describe('keptAttributes on layered attributes', () => {
  it('keeps what the generic walk keeps, in its order, up to the cap', () => {
    const next = random(16);
    for (let round = 0; round < 400; round += 1) {
      const resource = someMap(next, Math.floor(next() * 90));
      const own = someMap(next, Math.floor(next() * 90));
      const layered = new LayeredAttributes(resource, own);
      for (const storeToolContent of [false, true]) {
        const fast = keptAttributes(layered, storeToolContent);
        const plain = keptAttributes(plainView(layered), storeToolContent);
        expect(Object.entries(fast)).toEqual(Object.entries(plain));
        expect(Object.keys(fast).length).toBeLessThanOrEqual(MAX_KEPT_ATTRIBUTES);
      }
    }
  });

  it('stops at the cap with more than the cap in either layer', () => {
    const resource = new Map<string, Value>(Array.from({ length: 100 }, (_, i) => [`r${String(i)}`, i]));
    const own = new Map<string, Value>(Array.from({ length: 100 }, (_, i) => [`s${String(i)}`, i]));
    expect(Object.keys(keptAttributes(new LayeredAttributes(resource, own), false))).toHaveLength(MAX_KEPT_ATTRIBUTES);
    const few = new Map<string, Value>([['r1', 'span wins']]);
    const kept = keptAttributes(new LayeredAttributes(few, own), false);
    expect(Object.keys(kept)).toHaveLength(MAX_KEPT_ATTRIBUTES);
    expect(kept.r1).toBe('span wins');
  });
});

describe('nanosToMs', () => {
  const byNumber = (nanos: string): number =>
    nanos.length <= 6 ? Number(nanos) / 1e6 : Number(nanos.slice(0, -3)) / 1000;

  it('reads what Number reads, digit strings of every length and other text alike', () => {
    const next = random(7);
    const samples = [
      '0',
      '1',
      '999999',
      '1000000',
      '1765000000123456789',
      '9007199254740991000',
      '9007199254740992999',
      '9999999999999999999',
      '18446744073709551615',
      '00001765000000123456789',
      ' 1765000000123456789',
      '+1765000000123456',
      '-1765000000123456',
      '1e21',
      '0x1234567',
      '17650000001234.5678',
      '',
    ];
    for (let i = 0; i < 2000; i += 1) {
      const length = 1 + Math.floor(next() * 22);
      let digits = '';
      for (let d = 0; d < length; d += 1) digits += String(Math.floor(next() * 10));
      samples.push(digits);
    }
    for (const nanos of samples) expect(Object.is(nanosToMs(nanos), byNumber(nanos)), nanos).toBe(true);
  });
});
