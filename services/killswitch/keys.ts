/**
 * Key material of the kill switch, kept so that it survives restarts:
 *
 * - the token signing key (Ed25519, JWS `EdDSA`): from `TRIPLINE_SIGNING_KEY` (a private JWK as JSON, or a
 *   PKCS#8 PEM) when set — what the distributed mode uses, so every API instance signs with the same key — else
 *   generated at first start into `<data dir>/keys/signing-key.jwk` (mode 0600) and read from there afterwards;
 * - the secrets key (AES-256-GCM, 32 bytes) of the built-in secret store: from `TRIPLINE_SECRETS_KEY` (base64)
 *   when set, else generated into `<data dir>/keys/secrets.key` (mode 0600).
 *
 * The key id (`kid`) is the RFC 7638 thumbprint of the public key, so the same key always has the same id.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, importPKCS8 } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { TriplineError, messageOf } from '../shared/errors.ts';

export interface SigningKey {
  kid: string;
  alg: 'EdDSA';
  privateKey: CryptoKey;
  /** The public JWK as published in the JWKS (`kid`, `alg`, `use` set). */
  publicJwk: JWK;
  /** Where the key came from, for the start-up log line: 'env', 'file' or 'generated'. */
  origin: 'env' | 'file' | 'generated';
}

export interface SigningKeyOptions {
  /** The configured key (private JWK JSON or PKCS#8 PEM), or undefined to use/generate the file. */
  configured?: string | undefined;
  /** Directory holding `signing-key.jwk`. */
  keysDir: string;
}

export const SIGNING_KEY_FILE = 'signing-key.jwk';
export const SECRETS_KEY_FILE = 'secrets.key';

/** Loads the configured signing key, or the one persisted in `keysDir`, or generates and persists a new one. */
export async function loadSigningKey(options: SigningKeyOptions): Promise<SigningKey> {
  if (options.configured !== undefined && options.configured.trim() !== '') {
    return { ...(await importConfigured(options.configured.trim())), origin: 'env' };
  }
  const file = join(options.keysDir, SIGNING_KEY_FILE);
  const existing = readOptional(file);
  if (existing !== undefined) {
    try {
      return { ...(await fromPrivateJwk(JSON.parse(existing) as JWK)), origin: 'file' };
    } catch (error) {
      throw new TriplineError(
        'CONFIG_INVALID',
        `The signing key in ${file} cannot be read (${messageOf(error)}); restore it from a backup or remove it to issue a new key (tokens signed with the old key then stop verifying)`,
        { cause: error },
      );
    }
  }
  const { privateKey } = await generateKeyPair('Ed25519', { extractable: true });
  const jwk = await exportJWK(privateKey);
  writePrivate(file, `${JSON.stringify(jwk)}\n`);
  return { ...(await fromPrivateJwk(jwk)), origin: 'generated' };
}

async function importConfigured(text: string): Promise<Omit<SigningKey, 'origin'>> {
  try {
    if (text.startsWith('{')) return await fromPrivateJwk(JSON.parse(text) as JWK);
    const privateKey = await importPKCS8(text, 'EdDSA', { extractable: true });
    return await fromPrivateJwk(await exportJWK(privateKey));
  } catch (error) {
    throw new TriplineError(
      'CONFIG_INVALID',
      `TRIPLINE_SIGNING_KEY is invalid: expected an Ed25519 private key as a JWK (JSON with kty "OKP", crv "Ed25519", d, x) or a PKCS#8 PEM (${messageOf(error)})`,
      {
        cause: error,
        details: { variable: 'TRIPLINE_SIGNING_KEY' },
      },
    );
  }
}

async function fromPrivateJwk(jwk: JWK): Promise<Omit<SigningKey, 'origin'>> {
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string' || typeof jwk.x !== 'string') {
    throw new Error('not an Ed25519 private JWK (kty OKP, crv Ed25519, with d and x)');
  }
  const privateKey = await importJWK({ kty: 'OKP', crv: 'Ed25519', d: jwk.d, x: jwk.x }, 'EdDSA');
  if (!isCryptoKey(privateKey)) throw new Error('the JWK did not import as a key');
  const publicJwk: JWK = { kty: 'OKP', crv: 'Ed25519', x: jwk.x };
  const kid = await calculateJwkThumbprint(publicJwk);
  return { kid, alg: 'EdDSA', privateKey, publicJwk: { ...publicJwk, kid, alg: 'EdDSA', use: 'sig' } };
}

function isCryptoKey(value: unknown): value is CryptoKey {
  return typeof value === 'object' && value !== null && 'type' in value && 'algorithm' in value;
}

/** The 32-byte AES-256-GCM key of the built-in secret store (configured base64, or the persisted/generated file). */
export function loadSecretsKey(options: { configured?: string | undefined; keysDir: string }): {
  key: Buffer;
  origin: 'env' | 'file' | 'generated';
} {
  if (options.configured !== undefined && options.configured.trim() !== '') {
    const key = Buffer.from(options.configured.trim(), 'base64');
    if (key.length !== 32) {
      throw new TriplineError(
        'CONFIG_INVALID',
        `TRIPLINE_SECRETS_KEY is invalid: expected 32 bytes in base64 (e.g. \`openssl rand -base64 32\`), got ${key.length} bytes`,
        {
          details: { variable: 'TRIPLINE_SECRETS_KEY' },
        },
      );
    }
    return { key, origin: 'env' };
  }
  const file = join(options.keysDir, SECRETS_KEY_FILE);
  const existing = readOptional(file);
  if (existing !== undefined) {
    const key = Buffer.from(existing.trim(), 'base64');
    if (key.length !== 32)
      throw new TriplineError(
        'CONFIG_INVALID',
        `The secrets key in ${file} is not 32 bytes of base64; restore it from a backup (secrets encrypted with it cannot be read otherwise)`,
      );
    return { key, origin: 'file' };
  }
  const key = randomBytes(32);
  writePrivate(file, `${key.toString('base64')}\n`);
  return { key, origin: 'generated' };
}

function readOptional(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TriplineError('CONFIG_INVALID', `Cannot read ${file}: ${messageOf(error)}`, { cause: error });
  }
}

/** Writes a file only its owner can read, atomically (a crash never leaves half a key). */
function writePrivate(file: string, content: string): void {
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const temporary = `${file}.${process.pid}.tmp`;
    writeFileSync(temporary, content, { mode: 0o600, flag: 'wx' });
    chmodSync(temporary, 0o600);
    renameSync(temporary, file);
  } catch (error) {
    throw new TriplineError('CONFIG_INVALID', `Cannot write the key file ${file}: ${messageOf(error)}`, {
      cause: error,
    });
  }
}
