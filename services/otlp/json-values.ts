/**
 * OTLP/JSON field values: reads one JSON value as the protobuf JSON mapping (with OTLP's exceptions: hex ids,
 * integer enums, int64 as strings or numbers) says a field of that type is written, or throws a `DecodeError`
 * that names the field. `null` means "absent".
 */
import { Buffer } from 'node:buffer';
import { DecodeError, fail } from './decode-error.ts';
import { INT64_LIMIT, INT64_MIN } from './int64.ts';

export type JsonObject = Record<string, unknown>;

function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return typeof value === 'object' ? 'an object' : typeof value;
}

function fieldError(field: string, message: string): DecodeError {
  const error = new DecodeError(message);
  error.path.push(field);
  return error;
}

export function jsonObject(value: unknown, what: string): JsonObject {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as JsonObject;
  return fail(`${what} must be a JSON object, got ${describeJson(value)}`);
}

/** A nested message field: an object, or absent when null. */
export function jsonMessage(value: unknown, field: string): JsonObject | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'object' && !Array.isArray(value)) return value as JsonObject;
  throw fieldError(field, `expected an object, got ${describeJson(value)}`);
}

export function jsonArray<T>(value: unknown, field: string, item: (element: unknown) => T): T[] {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) throw fieldError(field, `expected an array, got ${describeJson(value)}`);
  const out: T[] = [];
  for (let i = 0; i < value.length; i++) {
    try {
      out.push(item(value[i]));
    } catch (error) {
      if (error instanceof DecodeError) error.path.unshift(`${field}[${i}]`);
      throw error;
    }
  }
  return out;
}

/** Runs `decode` for a nested message, prefixing the field to the path of any error. */
export function within<T>(field: string, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    if (error instanceof DecodeError) error.path.unshift(field);
    throw error;
  }
}

export function jsonString(value: unknown, field: string): string {
  // JSON escapes can spell lone UTF-16 surrogates ("\ud800") that no UTF-8 text holds; they become U+FFFD, as
  // invalid UTF-8 does in protobuf strings, so that every decoded string can be stored (ClickHouse refuses a
  // JSON insert holding one, and a write that can never succeed would block the writes after it).
  if (typeof value === 'string') return value.isWellFormed() ? value : value.toWellFormed();
  if (value === null) return '';
  throw fieldError(field, `expected a string, got ${describeJson(value)}`);
}

const DECIMAL = /^-?\d+$/;
const UNSIGNED_DECIMAL = /^\d+$/;

/** uint32 (counts, flags): a number or a decimal string. */
export function jsonUint32(value: unknown, field: string): number {
  if (value === null) return 0;
  const n = typeof value === 'string' && UNSIGNED_DECIMAL.test(value) ? Number(value) : value;
  if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff) return n;
  throw fieldError(field, `expected an unsigned 32-bit integer, got ${describeJson(value)}`);
}

const UINT64_MAX_DECIMAL = '18446744073709551615';

/** fixed64 nanoseconds: a decimal string (as OTLP/JSON writes them) or a number; returns a decimal string. */
export function jsonNanos(value: unknown, field: string): string {
  if (value === null) return '0';
  if (typeof value === 'string' && UNSIGNED_DECIMAL.test(value)) {
    const digits = value.length > 1 && value.charCodeAt(0) === 48 ? value.replace(/^0+(?=\d)/, '') : value;
    if (digits.length < 20 || (digits.length === 20 && digits <= UINT64_MAX_DECIMAL)) return digits;
  } else if (typeof value === 'number' && Number.isInteger(value) && value >= 0) {
    if (value <= Number.MAX_SAFE_INTEGER) return String(value);
    if (value < 2 ** 64) return BigInt(value).toString();
  }
  throw fieldError(field, `expected an unsigned 64-bit integer (decimal string), got ${describeJson(value)}`);
}

/** int64: a decimal string or a number; a number when safe, else a decimal string. */
export function jsonInt64(value: unknown, field: string): number | string {
  if (typeof value === 'string' && DECIMAL.test(value)) {
    if (value.length <= 15) return Number(value) + 0; // + 0 turns -0 into 0
    // No int64 has more than 19 digits: longer input (after leading zeros) is out of range without parsing it
    // (BigInt of a 16 MB digit string takes seconds).
    const digits = value.replace(/^(-?)0+(?=\d)/, '$1');
    const big = digits.length <= 20 ? BigInt(digits) : INT64_LIMIT;
    if (big >= INT64_MIN && big < INT64_LIMIT) {
      const n = Number(big);
      return Number.isSafeInteger(n) ? n : big.toString();
    }
  } else if (typeof value === 'number' && Number.isInteger(value)) {
    if (Number.isSafeInteger(value)) return value + 0;
    if (value >= -(2 ** 63) && value < 2 ** 63) return BigInt(value).toString();
  }
  throw fieldError(field, `expected a signed 64-bit integer, got ${describeJson(value)}`);
}

export function jsonDouble(value: unknown, field: string): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') {
    if (value === 'NaN') return Number.NaN;
    if (value === 'Infinity') return Number.POSITIVE_INFINITY;
    if (value === '-Infinity') return Number.NEGATIVE_INFINITY;
    const n = Number(value);
    if (value.trim() !== '' && Number.isFinite(n)) return n;
  }
  throw fieldError(field, `expected a number, got ${describeJson(value)}`);
}

export function jsonBool(value: unknown, field: string): boolean {
  if (typeof value === 'boolean') return value;
  throw fieldError(field, `expected true or false, got ${describeJson(value)}`);
}

/** An enum: its number, or its name from `names` (names are accepted as the protobuf JSON mapping allows). */
export function jsonEnum(value: unknown, field: string, names: Readonly<Record<string, number>>): number {
  if (value === null) return 0;
  if (typeof value === 'number' && Number.isInteger(value) && value >= -0x80000000 && value <= 0x7fffffff) return value;
  if (typeof value === 'string') {
    const named = names[value];
    if (named !== undefined && Object.hasOwn(names, value)) return named;
    if (DECIMAL.test(value)) return jsonEnum(Number(value), field, names);
  }
  throw fieldError(field, `expected an enum number, got ${describeJson(value)}`);
}

const HEX_CHARS = /^[0-9a-fA-F]*$/;
const ZERO_ID = /^0*$/;

/** A hex id of `size` bytes; '' when empty or all zeroes (as in protobuf). */
export function jsonId(value: unknown, field: string, size: number): string {
  if (value === null) return '';
  if (typeof value !== 'string') throw fieldError(field, `expected a hex string, got ${describeJson(value)}`);
  if (value === '') return '';
  if (value.length !== size * 2) {
    throw fieldError(field, `expected ${size * 2} hex characters (${size} bytes), got ${value.length} characters`);
  }
  if (!HEX_CHARS.test(value)) throw fieldError(field, `expected hex characters, got ${describeJson(value)}`);
  return ZERO_ID.test(value) ? '' : value.toLowerCase();
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;
const BASE64URL = /^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}(?:==)?|[A-Za-z0-9_-]{3}=?)?$/;

export function jsonBytes(value: unknown, field: string): Uint8Array {
  if (typeof value === 'string' && (BASE64.test(value) || BASE64URL.test(value))) {
    const decoded = Buffer.from(value, 'base64');
    return new Uint8Array(decoded.buffer.slice(decoded.byteOffset, decoded.byteOffset + decoded.byteLength));
  }
  throw fieldError(field, `expected base64, got ${describeJson(value)}`);
}
