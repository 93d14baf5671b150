/** The pure core's SHA-256 (services/core/sha256.ts) against node:crypto, on any string, lone surrogates included. */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../services/core/sha256.ts';

describe('sha256Hex', () => {
  it('equals node:crypto on block boundaries and on any string', () => {
    for (const text of [
      '',
      'abc',
      'x'.repeat(55),
      'x'.repeat(56),
      'x'.repeat(64),
      'y'.repeat(1000),
      '\ud800 lone',
      'é€😀',
    ]) {
      expect(sha256Hex(text), JSON.stringify(text.slice(0, 20))).toBe(
        createHash('sha256').update(text, 'utf8').digest('hex'),
      );
    }
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 300 }),
        (text) => sha256Hex(text) === createHash('sha256').update(text, 'utf8').digest('hex'),
      ),
      { numRuns: 500 },
    );
  });
});
