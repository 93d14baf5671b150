/**
 * Reading typed values from a span's flat attributes (services/core/classify.ts builds the view): strings,
 * non-negative counts, scope lists, a URL's host.
 */
import type { AttributeValue } from '../../schemas/events.ts';

/**
 * Flat attribute lookup: the span's own attributes win over its resource's. A Map is one; the view that
 * classification builds per span layers the span's attributes over its resource's without copying them
 * (copying made a request cost spans × resource attributes: 20 000 × 20 000 in a 1 MB request took minutes).
 */
export interface Attributes extends Iterable<[string, AttributeValue | readonly AttributeValue[]]> {
  get(key: string): AttributeValue | readonly AttributeValue[] | undefined;
  has(key: string): boolean;
}

export function stringAttr(attributes: Attributes, key: string): string | undefined {
  const value = attributes.get(key);
  if (value === undefined || Array.isArray(value)) return undefined;
  const text = String(value);
  return text === '' ? undefined : text;
}

export function numberAttr(attributes: Attributes, key: string): number | undefined {
  const value = attributes.get(key);
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value === 'string' && value.trim() !== '') {
    const parsed = Number(value);
    return Number.isFinite(parsed) && parsed >= 0 ? parsed : undefined;
  }
  return undefined;
}

/** Scopes may come as a string array or as one comma/space separated string. */
export function stringListAttr(attributes: Attributes, key: string): string[] {
  const value = attributes.get(key);
  if (value === undefined) return [];
  const items = Array.isArray(value) ? value.map(String) : String(value).split(/[,\s]+/);
  return items.map((item) => item.trim()).filter((item) => item !== '');
}

export function isOneOf<T extends string>(value: string | undefined, allowed: readonly T[]): value is T {
  return value !== undefined && (allowed as readonly string[]).includes(value);
}

export function hostOf(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const match = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/]*@)?([^:/?#]+)/i.exec(url);
  return match?.[1]?.toLowerCase();
}
