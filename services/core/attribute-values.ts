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

type AttributeEntryValue = AttributeValue | readonly AttributeValue[];

/**
 * A span's attributes over its resource's, iterated in the order a merged Map would have (resource keys first,
 * holding the span's value where it has one, then the span's other keys), without copying either. Its layers are
 * open so that a hot reader (keptAttributes) walks them without a generator.
 */
export class LayeredAttributes implements Attributes {
  readonly resource: ReadonlyMap<string, AttributeEntryValue>;
  readonly own: ReadonlyMap<string, AttributeEntryValue>;

  constructor(resource: ReadonlyMap<string, AttributeEntryValue>, own: ReadonlyMap<string, AttributeEntryValue>) {
    this.resource = resource;
    this.own = own;
  }

  get(key: string): AttributeEntryValue | undefined {
    return this.own.get(key) ?? this.resource.get(key);
  }

  has(key: string): boolean {
    return this.own.has(key) || this.resource.has(key);
  }

  *[Symbol.iterator](): Generator<[string, AttributeEntryValue]> {
    for (const [key, value] of this.resource) yield [key, this.own.get(key) ?? value];
    for (const entry of this.own) if (!this.resource.has(entry[0])) yield entry;
  }
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
