/** Limits that keep hostile OTLP input from exhausting the stack, the CPU or the memory of a decoder. */

/**
 * Deepest nesting of `AnyValue`s accepted: an attribute's value is depth 1, an element of an array (or a
 * value of a key-value list) held in it is depth 2, and so on. Deeper input is rejected with 400 so that
 * hostile input cannot exhaust the stack or the CPU.
 */
export const MAX_ANY_VALUE_DEPTH = 32;

/**
 * Decoded objects cost hundreds of bytes each, so a body made of tiny spans or attributes would decode to
 * hundreds of times its size (a 4 MiB request could take a process's memory). Each decoded object spends
 * the fewest bytes a sensible encoding of it takes (a span with its ids and times takes more than 48); a
 * request that spends more than its own size (plus a small allowance) is refused with 413.
 */
export const OBJECT_COST = { span: 48, event: 16, link: 32, keyValue: 8, nestedValue: 4 } as const;
const OBJECT_ALLOWANCE_BYTES = 64 * 1024;

export function objectBudgetFor(body: Uint8Array): number {
  return body.length + OBJECT_ALLOWANCE_BYTES;
}
