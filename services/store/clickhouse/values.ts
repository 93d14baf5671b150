/**
 * How values cross into ClickHouse: times as DateTime64(6, 'UTC') (epoch milliseconds, whose fraction is the
 * microseconds), and strings as well-formed UTF-16 so that they encode as UTF-8.
 */
import { TriplineError } from '../../shared/errors.ts';

/** Latest time accepted (2200-01-01): DateTime64(6) ends in 2299, and microseconds stay below 2^53. */
export const MAX_TIME_MS = 7_258_118_400_000;

/** Microseconds since the epoch; sub-microsecond digits are rounded away. */
export function toMicros(ms: number): number {
  return Math.round(ms * 1000);
}

/** Epoch milliseconds: the written value itself whenever it had at most microsecond precision. */
export function fromMicros(us: number): number {
  return us / 1000;
}

let lastSecond = Number.NaN;
let lastSecondText = '';

/** `YYYY-MM-DD hh:mm:ss.ffffff` in UTC; the columns are typed 'UTC', so this text means the same instant anywhere. */
export function utcText(ms: number): string {
  const us = toMicros(ms);
  const seconds = Math.floor(us / 1_000_000);
  const fraction = us - seconds * 1_000_000;
  // A batch's times mostly share their second: the date text is made once per second, not once per value.
  if (seconds !== lastSecond) {
    const iso = new Date(seconds * 1000).toISOString();
    lastSecondText = `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
    lastSecond = seconds;
  }
  return `${lastSecondText}.${String(fraction).padStart(6, '0')}`;
}

/** Rows for a `JSONCompactEachRow` insert: the column names once, each row's values in that order. */
export interface CompactRows {
  columns: readonly string[];
  values: unknown[][];
}

/** Rows made positional by their own function (its values already as compactRows would leave them). */
export interface PositionalRows<T> {
  columns: readonly string[];
  values: (row: T) => unknown[];
}

/**
 * Object rows (all made by one row function, so all with the same keys in the same order) as compact rows with
 * well-formed strings. The engine parses a positional row about twice as fast as one keyed by column name, and an
 * array serialises faster than an object.
 */
export function compactRows(rows: readonly object[]): CompactRows {
  const first = rows[0];
  if (first === undefined) return { columns: [], values: [] };
  const columns = Object.keys(first);
  const values = rows.map((row) => {
    const items = Object.values(row) as unknown[];
    if (items.length !== columns.length) {
      // A row function that leaves a key out sometimes: a bug, and a write no retry would fix.
      throw new TriplineError(
        'VALIDATION_FAILED',
        `a row has ${String(items.length)} columns where the first of its insert has ${String(columns.length)}`,
        { details: { columns } },
      );
    }
    for (let i = 0; i < items.length; i += 1) {
      const item = items[i];
      if (typeof item === 'string') {
        if (!item.isWellFormed()) items[i] = item.toWellFormed();
      } else if (typeof item === 'object' && item !== null) {
        items[i] = wellFormed(item);
      }
    }
    return items;
  });
  return { columns, values };
}

/**
 * The row with every string (values and keys, at any depth) free of lone UTF-16 surrogates, which JS strings
 * and JSON escapes allow but UTF-8 cannot hold: ClickHouse refuses the whole JSONEachRow insert over one
 * ("Cannot parse escape sequence"), a failure no retry fixes. They become U+FFFD. Copies only what changes.
 */
export function wellFormed<T>(value: T): T {
  if (typeof value === 'string') return (value.isWellFormed() ? value : value.toWellFormed()) as T;
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((item: unknown, i) => {
      const fixed = wellFormed(item);
      if (fixed !== item) (copy ??= [...(value as unknown[])])[i] = fixed;
    });
    return (copy ?? value) as T;
  }
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return value;
  let copy: Record<string, unknown> | undefined;
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    const fixed = wellFormed(item);
    const fixedKey = key.isWellFormed() ? key : key.toWellFormed();
    if (fixed !== item || fixedKey !== key) {
      copy ??= { ...(value as Record<string, unknown>) };
      if (fixedKey !== key) Reflect.deleteProperty(copy, key);
      copy[fixedKey] = fixed;
    }
  }
  return (copy ?? value) as T;
}
