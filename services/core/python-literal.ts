/**
 * A Python literal as `repr` writes it (`{'to': 'a@b.example', 'ok': True, 'rows': [1, 2.5, None]}`), read as the
 * value JSON would give: what some Python instrumentations record as a tool's result (AutoGen's `FunctionTool`
 * turns a returned dict into `str(value)`). Pure and bounded by the text: dicts, lists, tuples, strings (single or
 * double quotes, the escapes `repr` writes), numbers, `True`, `False` and `None`; anything else (an object's repr,
 * `datetime.datetime(…)`, a set, a trailing text) gives undefined.
 */

/** Deepest nesting read (deeper literals give undefined). */
export const MAX_LITERAL_DEPTH = 32;

class NotALiteral extends Error {}

const NUMBER_RE = /-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;
const WORD_RE = /True|False|None/y;
const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', '0': '\0' };

/** The value of `text` read as a Python dict or list literal, or undefined when it is none. */
export function parsePythonLiteral(text: string): unknown {
  let i = 0;

  const skipSpace = (): void => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\t' || text[i] === '\r')) i += 1;
  };

  const expect = (char: string): void => {
    skipSpace();
    if (text[i] !== char) throw new NotALiteral();
    i += 1;
  };

  const readString = (): string => {
    const quote = text[i];
    i += 1;
    let out = '';
    for (;;) {
      const char = text[i];
      if (char === undefined || char === '\n') throw new NotALiteral();
      i += 1;
      if (char === quote) return out;
      if (char !== '\\') {
        out += char;
        continue;
      }
      const escape = text[i];
      if (escape === undefined) throw new NotALiteral();
      i += 1;
      const simple = ESCAPES[escape];
      if (simple !== undefined) {
        out += simple;
        continue;
      }
      const width = escape === 'x' ? 2 : escape === 'u' ? 4 : escape === 'U' ? 8 : 0;
      const hex = text.slice(i, i + width);
      if (width === 0 || !/^[0-9a-fA-F]+$/.test(hex) || hex.length !== width) throw new NotALiteral();
      const code = Number.parseInt(hex, 16);
      if (code > 0x10ffff) throw new NotALiteral();
      out += String.fromCodePoint(code);
      i += width;
    }
  };

  /** Items up to `close`, a trailing comma allowed (a one-item tuple has one). */
  const readItems = (close: string, readItem: () => void): void => {
    skipSpace();
    if (text[i] === close) {
      i += 1;
      return;
    }
    for (;;) {
      readItem();
      skipSpace();
      if (text[i] === close) {
        i += 1;
        return;
      }
      expect(',');
      skipSpace();
      if (text[i] === close) {
        i += 1;
        return;
      }
    }
  };

  const readValue = (depth: number): unknown => {
    if (depth > MAX_LITERAL_DEPTH) throw new NotALiteral();
    skipSpace();
    const char = text[i];
    if (char === "'" || char === '"') return readString();
    if (char === '{') {
      i += 1;
      const object: Record<string, unknown> = {};
      readItems('}', () => {
        skipSpace();
        const key = readValue(depth + 1);
        // JSON keys are strings: Python's numbers and words as JSON writes them; no nested keys.
        if (typeof key === 'object' && key !== null) throw new NotALiteral();
        expect(':');
        Object.defineProperty(object, String(key), {
          value: readValue(depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      });
      return object;
    }
    if (char === '[' || char === '(') {
      i += 1;
      const list: unknown[] = [];
      readItems(char === '[' ? ']' : ')', () => list.push(readValue(depth + 1)));
      return list;
    }
    for (const [re, read] of [
      [WORD_RE, (word: string): unknown => (word === 'None' ? null : word === 'True')],
      [NUMBER_RE, Number],
    ] as const) {
      re.lastIndex = i;
      const match = re.exec(text);
      if (match !== null) {
        i = re.lastIndex;
        return read(match[0]);
      }
    }
    throw new NotALiteral();
  };

  skipSpace();
  if (text[i] !== '{' && text[i] !== '[') return undefined;
  try {
    const value = readValue(0);
    skipSpace();
    return i === text.length ? value : undefined;
  } catch (error) {
    if (error instanceof NotALiteral) return undefined;
    throw error;
  }
}
