/**
 * How values cross into ClickHouse: times as DateTime64(6, 'UTC') (epoch milliseconds, whose fraction is the
 * microseconds), and strings as well-formed UTF-16 so that they encode as UTF-8.
 */

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

/** `YYYY-MM-DD hh:mm:ss.ffffff` in UTC; the columns are typed 'UTC', so this text means the same instant anywhere. */
export function utcText(ms: number): string {
  const us = toMicros(ms);
  const seconds = Math.floor(us / 1_000_000);
  const fraction = us - seconds * 1_000_000;
  const iso = new Date(seconds * 1000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${String(fraction).padStart(6, '0')}`;
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
