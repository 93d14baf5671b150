/**
 * API and ingest tokens: 256 random bits, shown once when created, stored only as their SHA-256. A fast hash
 * is enough because the tokens are random (nothing to guess from a dictionary); lookups compare hashes, so
 * the time a lookup takes says nothing about how much of a guessed token was right.
 */
import { createHash, randomBytes } from 'node:crypto';

const TOKEN_PREFIX = 'tl_';
/** Shortest token accepted from configuration (TRIPLINE_ADMIN_TOKEN, TRIPLINE_AGENT_TOKEN). */
export const MIN_TOKEN_LENGTH = 24;
const TOKEN_SHAPE = /^[A-Za-z0-9._~+/=-]+$/;

export function generateToken(): string {
  return `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
}

export function generateTokenId(): string {
  return `tok_${randomBytes(9).toString('base64url')}`;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Whether a configured token is long enough and made of header-safe characters. */
export function isAcceptableToken(token: string): boolean {
  return token.length >= MIN_TOKEN_LENGTH && token.length <= 512 && TOKEN_SHAPE.test(token);
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer[ \t]+(\S{1,8192})[ \t]*$/i.exec(header);
  return match?.[1];
}
