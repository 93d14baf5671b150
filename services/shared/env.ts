/**
 * Typed readers for environment variables. Each bad value throws CONFIG_INVALID naming the variable and
 * what it accepts, so start-up stops with a message a person can act on.
 */
import { TriplineError } from './errors.ts';

export type Env = Readonly<Record<string, string | undefined>>;

function raw(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

export function invalid(name: string, value: string, expected: string): TriplineError {
  return new TriplineError('CONFIG_INVALID', `${name}=${JSON.stringify(value)} is invalid: expected ${expected}`, {
    details: { variable: name },
  });
}

export function readString(env: Env, name: string, fallback: string): string {
  return raw(env, name) ?? fallback;
}

export function readOptionalString(env: Env, name: string): string | undefined {
  return raw(env, name);
}

export function readInt(env: Env, name: string, fallback: number, range: { min: number; max: number }): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(parsed) || parsed < range.min || parsed > range.max) {
    throw invalid(name, value, `a whole number from ${range.min} to ${range.max}`);
  }
  return parsed;
}

export function readNumber(env: Env, name: string, fallback: number, range: { min: number; max: number }): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < range.min || parsed > range.max) {
    throw invalid(name, value, `a number from ${range.min} to ${range.max}`);
  }
  return parsed;
}

export function readBool(env: Env, name: string, fallback: boolean): boolean {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  const lower = value.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(lower)) return true;
  if (['0', 'false', 'no', 'off'].includes(lower)) return false;
  throw invalid(name, value, 'true or false');
}

export function readPattern(env: Env, name: string, fallback: string, pattern: RegExp, expected: string): string {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!pattern.test(value)) throw invalid(name, value, expected);
  return value;
}

export function readEnum<T extends string>(env: Env, name: string, fallback: T, allowed: readonly T[]): T {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) throw invalid(name, value, `one of ${allowed.join(', ')}`);
  return value as T;
}

export function readList(env: Env, name: string, fallback: readonly string[]): string[] {
  const value = raw(env, name);
  if (value === undefined) return [...fallback];
  const items = value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
  if (items.length === 0) throw invalid(name, value, 'a comma-separated list');
  return items;
}

export function readUrl(env: Env, name: string): string | undefined {
  const value = raw(env, name);
  if (value === undefined) return undefined;
  try {
    const url = new URL(value);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
    return value;
  } catch {
    throw invalid(name, value, 'an http:// or https:// URL');
  }
}

export function readJson<T>(
  env: Env,
  name: string,
  fallback: T,
  check: (value: unknown) => value is T,
  expected: string,
): T {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw invalid(name, value, expected);
  }
  if (!check(parsed)) throw invalid(name, value, expected);
  return parsed;
}

/** Freeze a config object and everything below it. */
export function deepFreeze<T>(value: T): Readonly<T> {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
