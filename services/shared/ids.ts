import { createHash } from 'node:crypto';

/** A deterministic id from its parts: the same inputs give the same id in every process and on every replay. */
export function stableId(...parts: readonly (string | number)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(String(part)).update('\u0000');
  return hash.digest('hex').slice(0, 32);
}
