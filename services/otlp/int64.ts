/** 64-bit integers without BigInt on the common paths (OTLP timestamps are fixed64, `intValue` is int64). */

export const TWO_POW_32 = 4294967296;
export const INT64_MIN = -(2n ** 63n);
export const INT64_LIMIT = 2n ** 63n;

/** Decimal string of the unsigned 64-bit integer hi * 2^32 + lo (both halves unsigned 32-bit). */
export function uint64ToDecimal(low: number, high: number): string {
  if (high < 0x200000) return String(high * TWO_POW_32 + low); // < 2^53: exact as a double
  // 2^32 = 4294 * 10^6 + 967296, so the value is (high * 4294) * 10^6 + (high * 967296 + low), and both
  // products stay below 2^53.
  const bottom = high * 967296 + low;
  const top = high * 4294 + Math.floor(bottom / 1e6);
  const rest = bottom % 1e6;
  return String(top) + String(rest).padStart(6, '0');
}

/** An int64 (two's complement halves) as a number when it is a safe integer, else as a decimal string. */
export function int64Value(low: number, high: number): number | string {
  const signedHigh = high | 0;
  if (signedHigh >= -0x200000 && signedHigh < 0x200000) {
    const n = signedHigh * TWO_POW_32 + low;
    if (Number.isSafeInteger(n)) return n;
  }
  return BigInt.asIntN(64, (BigInt(high) << 32n) | BigInt(low)).toString();
}
