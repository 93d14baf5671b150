/**
 * Rows as the store sends them to ClickHouse (JSONCompactEachRow): column names once, values in that order, every
 * string well-formed; and timestamps as UTC text, also across second boundaries (the date text is reused within one).
 */
import { describe, expect, it } from 'vitest';
import { isTriplineError } from '../../../services/shared/errors.ts';
import { compactRows, utcText } from '../../../services/store/clickhouse/values.ts';

describe('compactRows', () => {
  it('gives the columns of the first row and each row in that order', () => {
    const rows = [
      { id: 'a', score: 1.5, tags: ['x'], shadow: false, note: null },
      { id: 'b', score: 2, tags: [], shadow: true, note: 'n' },
    ];
    expect(compactRows(rows)).toEqual({
      columns: ['id', 'score', 'tags', 'shadow', 'note'],
      values: [
        ['a', 1.5, ['x'], false, null],
        ['b', 2, [], true, 'n'],
      ],
    });
    expect(compactRows([])).toEqual({ columns: [], values: [] });
  });

  it('replaces lone surrogates in strings and in nested strings, and leaves the input rows as they were', () => {
    const lone = 'a \ud800 b';
    const rows = [{ name: lone, scopes: ['ok', lone] }];
    const { values } = compactRows(rows);
    expect(values).toEqual([['a \ufffd b', ['ok', 'a \ufffd b']]]);
    expect(rows[0]?.scopes[1]).toBe(lone);
  });

  it('refuses a row with another number of columns with a typed error', () => {
    let caught: unknown;
    try {
      compactRows([{ a: 1, b: 2 }, { a: 1 }]);
    } catch (error) {
      caught = error;
    }
    expect(isTriplineError(caught, 'VALIDATION_FAILED')).toBe(true);
  });
});

describe('utcText', () => {
  it('writes microseconds in UTC, also when consecutive values cross a second', () => {
    const second = Date.UTC(2026, 11, 7, 23, 59, 59);
    expect(utcText(second + 999.999)).toBe('2026-12-07 23:59:59.999999');
    expect(utcText(second + 1000)).toBe('2026-12-08 00:00:00.000000');
    expect(utcText(second + 0.001)).toBe('2026-12-07 23:59:59.000001');
    expect(utcText(0)).toBe('1970-01-01 00:00:00.000000');
  });
});
