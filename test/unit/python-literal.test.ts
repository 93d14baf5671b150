import { describe, expect, it } from 'vitest';
import { MAX_LITERAL_DEPTH, parsePythonLiteral } from '../../services/core/python-literal.ts';

describe('Python literals (repr)', () => {
  it('reads dicts, lists, tuples, strings, numbers, True, False and None', () => {
    expect(
      parsePythonLiteral(
        "{'order_id': 'ord-3', 'amount': 42.5, 'n': -7, 'e': 1e3, 'ok': True, 'no': False, 'x': None, 'rows': [1, (2,), ()], 3: 'k'}",
      ),
    ).toEqual({
      order_id: 'ord-3',
      amount: 42.5,
      n: -7,
      e: 1000,
      ok: true,
      no: false,
      x: null,
      rows: [1, [2], []],
      3: 'k',
    });
    expect(parsePythonLiteral(' [ ] ')).toEqual([]);
    expect(parsePythonLiteral('{}')).toEqual({});
    expect(parsePythonLiteral('[1, 2,]')).toEqual([1, 2]);
  });

  it('reads the escapes repr writes, in either quote', () => {
    expect(
      parsePythonLiteral(String.raw`["it's", 'say "hi"', 'a\'b', 'tab\there', '\x41\u00e9\U0001F600', 'back\\slash']`),
    ).toEqual(["it's", 'say "hi"', "a'b", 'tab\there', 'Aé😀', 'back\\slash']);
  });

  it('keeps a key named __proto__ as a key, not the prototype', () => {
    const value = parsePythonLiteral("{'__proto__': {'polluted': 1}}") as Record<string, unknown>;
    expect(Object.keys(value)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('gives undefined for anything else', () => {
    for (const text of [
      '',
      "'just a string'",
      '42',
      'None',
      "{'a': 1",
      "{'a' 1}",
      "{'a': 1}}",
      "{'a': 1} trailing",
      "{'a': datetime.date(2026, 1, 1)}",
      "{'a': {1, 2}}",
      "{'a': 'line\nbreak'}",
      "{'a': '\\x4'}",
      "{'a': '\\q'}",
      "{('t',): 1}",
      "{'a': nan}",
      `${'['.repeat(MAX_LITERAL_DEPTH + 2)}${']'.repeat(MAX_LITERAL_DEPTH + 2)}`,
    ])
      expect(parsePythonLiteral(text), text).toBeUndefined();
    expect(parsePythonLiteral(`${'['.repeat(MAX_LITERAL_DEPTH)}${']'.repeat(MAX_LITERAL_DEPTH)}`)).toBeDefined();
  });
});
