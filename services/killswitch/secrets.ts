/**
 * Secret providers for just-in-time leases.
 *
 * - The built-in store keeps named secrets in ClickHouse encrypted with AES-256-GCM (a random 96-bit IV per
 *   write; the tenant, name and version are authenticated as associated data, so a ciphertext moved to another
 *   name or version does not decrypt). The key is TRIPLINE_SECRETS_KEY or `<data dir>/keys/secrets.key`.
 *   Its secrets are static values: ending a lease stops Tripline handing the secret to that task and marks the
 *   lease dead for every enforcement point that checks it, but a value already handed out keeps working at the
 *   system it unlocks, so a kill records the lease `revoked_at_tripline_only` (rotate the value there); a secret
 *   that must stop working at its source belongs in a vault behind the webhook provider.
 * - The webhook provider asks an external vault over HTTPS (signed like the webhook notifier) to issue and to
 *   revoke a lease, so a vault that mints dynamic credentials kills them at the source:
 *     POST <url> {"type":"lease","leaseId","tenant","taskId","taskType","agentId","secret","ttlSeconds","expiresAt"}
 *       → 200 {"value": "...", "ref": "<vault lease id>", "expiresAt"?: ISO}   (404: no such secret)
 *     POST <url> {"type":"revoke","leaseId","ref","secret","reason"} → 2xx (404 counts as already gone)
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { TriplineError } from '../shared/errors.ts';
import { KillSwitchError } from './errors.ts';
import { postWithRetries, signBody, SIGNATURE_HEADER, TIMESTAMP_HEADER, IDEMPOTENCY_HEADER } from './http-client.ts';
import type { KillSwitchStore, LeaseRecord, SecretRecord } from './ks-store.ts';

export interface SecretLeaseRequest {
  leaseId: string;
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  secret: string;
  ttlSeconds: number;
  expiresMs: number;
}

export interface ProvidedSecret {
  value: string;
  /** The provider's own id for the lease (empty when it has none). */
  providerRef: string;
  /** Earlier than asked, if the provider says so. */
  expiresMs?: number;
}

export interface SecretProvider {
  readonly name: string;
  /** Whether this provider serves the secret (providers are asked in order). */
  has(tenant: string, secret: string): Promise<boolean>;
  /** Throws KillSwitchError SECRET_NOT_FOUND or SECRET_PROVIDER_FAILED. */
  lease(request: SecretLeaseRequest): Promise<ProvidedSecret>;
  /** Ends the lease at the source. Throws on failure (the lease manager records revoke_failed and retries). */
  revoke(lease: LeaseRecord, reason: string): Promise<void>;
  /**
   * False when ending a lease cannot stop a value already handed out (the built-in store's static secrets):
   * the lease is recorded revoked at Tripline only, and the verification says so. @default true
   */
  readonly revokesAtSource?: boolean;
}

export interface BuiltinSecretStore {
  readonly provider: SecretProvider;
  put(tenant: string, name: string, value: string): Promise<{ name: string; version: number }>;
  remove(tenant: string, name: string): Promise<boolean>;
  list(tenant: string): Promise<{ name: string; version: number; updatedMs: number }[]>;
}

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;

export function checkSecretName(name: string): void {
  if (!NAME_PATTERN.test(name))
    throw new TriplineError(
      'VALIDATION_FAILED',
      `${JSON.stringify(name)} is not a secret name (letters, digits and . _ : / -, at most 200)`,
    );
}

export function createBuiltinSecretStore(options: {
  store: KillSwitchStore;
  key: Buffer;
  now?: () => number;
}): BuiltinSecretStore {
  if (options.key.length !== 32) throw new Error('the secrets key must be 32 bytes');
  const { store, key } = options;
  const now = options.now ?? Date.now;
  const keyId = createHash('sha256').update(key).digest('hex').slice(0, 16);
  const aad = (tenant: string, name: string, version: number): Buffer =>
    Buffer.from(`${tenant}\u0000${name}\u0000${version}`, 'utf8');

  function encrypt(
    tenant: string,
    name: string,
    version: number,
    value: string,
  ): Pick<SecretRecord, 'ciphertext' | 'iv' | 'tag'> {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(aad(tenant, name, version));
    const ciphertext = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    return {
      ciphertext: ciphertext.toString('base64'),
      iv: iv.toString('base64'),
      tag: cipher.getAuthTag().toString('base64'),
    };
  }

  function decrypt(record: SecretRecord): string {
    if (record.keyId !== keyId) {
      throw new KillSwitchError(
        'SECRET_PROVIDER_FAILED',
        `secret ${record.name} was encrypted with another key (${record.keyId}); set TRIPLINE_SECRETS_KEY to that key`,
      );
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(record.iv, 'base64'));
      decipher.setAAD(aad(record.tenant, record.name, record.version));
      decipher.setAuthTag(Buffer.from(record.tag, 'base64'));
      return Buffer.concat([decipher.update(Buffer.from(record.ciphertext, 'base64')), decipher.final()]).toString(
        'utf8',
      );
    } catch (error) {
      throw new KillSwitchError(
        'SECRET_PROVIDER_FAILED',
        `secret ${record.name} does not decrypt (tampered with, or another key)`,
        { cause: error },
      );
    }
  }

  async function current(tenant: string, name: string): Promise<SecretRecord | undefined> {
    const record = await store.getSecret(tenant, name);
    return record === null || record.deleted ? undefined : record;
  }

  const provider: SecretProvider = {
    name: 'builtin',
    async has(tenant, secret) {
      return (await current(tenant, secret)) !== undefined;
    },
    async lease(request) {
      const record = await current(request.tenant, request.secret);
      if (record === undefined) throw new KillSwitchError('SECRET_NOT_FOUND', `no secret named ${request.secret}`);
      return { value: decrypt(record), providerRef: '' };
    },
    // A static value: nothing to end at its source; the value handed out works until it is rotated there.
    revoke: () => Promise.resolve(),
    revokesAtSource: false,
  };

  return {
    provider,
    async put(tenant, name, value) {
      checkSecretName(name);
      const previous = await store.getSecret(tenant, name);
      const version = Math.max((previous?.version ?? 0) + 1, now() * 1000);
      await store.upsertSecrets([
        { tenant, name, version, ...encrypt(tenant, name, version, value), keyId, deleted: false, updatedMs: now() },
      ]);
      return { name, version };
    },
    async remove(tenant, name) {
      const previous = await current(tenant, name);
      if (previous === undefined) return false;
      const version = Math.max(previous.version + 1, now() * 1000);
      await store.upsertSecrets([
        { tenant, name, version, ciphertext: '', iv: '', tag: '', keyId, deleted: true, updatedMs: now() },
      ]);
      return true;
    },
    async list(tenant) {
      return (await store.listSecrets(tenant))
        .filter((record) => !record.deleted)
        .map((record) => ({ name: record.name, version: record.version, updatedMs: record.updatedMs }));
    },
  };
}

export interface WebhookSecretProviderOptions {
  url: string;
  /** HMAC-SHA256 signing key of the requests. */
  secret: string;
  /** Secret names it serves; `*` at the end of an entry matches any suffix. @default ['*'] */
  names?: readonly string[];
  /** @default 5000 */
  timeoutMs?: number;
}

export function createWebhookSecretProvider(options: WebhookSecretProviderOptions): SecretProvider {
  const patterns = options.names ?? ['*'];
  const timeoutMs = options.timeoutMs ?? 5000;
  const serves = (secret: string): boolean =>
    patterns.some((pattern) => (pattern.endsWith('*') ? secret.startsWith(pattern.slice(0, -1)) : secret === pattern));

  async function call(
    body: Record<string, unknown>,
    idempotencyKey: string,
    attempts: number,
  ): Promise<{ status: number | undefined; json: unknown; error: string | undefined }> {
    const text = JSON.stringify(body);
    const result = await postWithRetries(
      options.url,
      text,
      () => {
        const timestamp = Math.floor(Date.now() / 1000);
        return {
          [SIGNATURE_HEADER]: signBody(options.secret, timestamp, text),
          [TIMESTAMP_HEADER]: String(timestamp),
          [IDEMPOTENCY_HEADER]: idempotencyKey,
        };
      },
      { timeoutMs, retry: { maxAttempts: attempts, initialBackoffMs: 200, maxBackoffMs: 2000 } },
    );
    let json: unknown;
    try {
      json = result.body === undefined || result.body === '' ? undefined : JSON.parse(result.body);
    } catch {
      json = undefined;
    }
    return { status: result.status, json, error: result.ok ? undefined : result.error };
  }

  return {
    name: 'webhook',
    has: (_tenant, secret) => Promise.resolve(serves(secret)),
    async lease(request) {
      const answer = await call(
        {
          type: 'lease',
          leaseId: request.leaseId,
          tenant: request.tenant,
          taskId: request.taskId,
          taskType: request.taskType,
          agentId: request.agentId,
          secret: request.secret,
          ttlSeconds: request.ttlSeconds,
          expiresAt: new Date(request.expiresMs).toISOString(),
        },
        `lease:${request.leaseId}`,
        2,
      );
      if (answer.status === 404)
        throw new KillSwitchError('SECRET_NOT_FOUND', `the secret provider has no secret named ${request.secret}`);
      const body = answer.json as { value?: unknown; ref?: unknown; expiresAt?: unknown } | undefined;
      if (answer.error !== undefined || typeof body?.value !== 'string') {
        throw new KillSwitchError(
          'SECRET_PROVIDER_FAILED',
          `the secret provider did not lease ${request.secret}: ${answer.error ?? 'its answer has no "value"'}`,
        );
      }
      const expiresMs = typeof body.expiresAt === 'string' ? Date.parse(body.expiresAt) : Number.NaN;
      return {
        value: body.value,
        providerRef: typeof body.ref === 'string' ? body.ref : '',
        ...(Number.isFinite(expiresMs) && expiresMs < request.expiresMs ? { expiresMs } : {}),
      };
    },
    async revoke(lease, reason) {
      const answer = await call(
        { type: 'revoke', leaseId: lease.id, ref: lease.providerRef, secret: lease.secret, reason },
        `revoke:${lease.id}`,
        4,
      );
      if (answer.error !== undefined && answer.status !== 404)
        throw new Error(`the secret provider did not revoke lease ${lease.id}: ${answer.error}`);
    },
  };
}
