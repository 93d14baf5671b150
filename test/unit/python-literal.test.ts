import fc from 'fast-check';
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

/** Python's repr of a JSON value (as `str()` of a dict or a list writes it). */
function repr(value: unknown): string {
  if (value === null) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') {
    const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
    let out = '';
    for (const char of value) {
      const code = char.codePointAt(0) ?? 0;
      if (char === '\\' || char === quote) out += `\\${char}`;
      else if (char === '\n') out += '\\n';
      else if (char === '\t') out += '\\t';
      else if (char === '\r') out += '\\r';
      else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
      else out += char;
    }
    return `${quote}${out}${quote}`;
  }
  if (Array.isArray(value)) return `[${value.map(repr).join(', ')}]`;
  const entries = Object.entries(value as Record<string, unknown>);
  return `{${entries.map(([key, item]) => `${repr(key)}: ${repr(item)}`).join(', ')}}`;
}

describe('Python literals (property)', () => {
  const json = fc
    .jsonValue({ maxDepth: 4, stringUnit: 'grapheme' })
    .map((value) => JSON.parse(JSON.stringify(value)) as unknown);

  it('reads the repr of any JSON dict or list back as that value', () => {
    fc.assert(
      fc.property(fc.oneof(fc.array(json), fc.dictionary(fc.string(), json)), (value) => {
        expect(parsePythonLiteral(repr(value))).toEqual(value);
      }),
    );
  });

  it('never throws on any text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        parsePythonLiteral(`{${text}`);
        parsePythonLiteral(`[${text}`);
      }),
    );
  });
});
