/**
 * Just-in-time secrets: the built-in store encrypts with AES-256-GCM (the plaintext never reaches ClickHouse;
 * a tampered or moved ciphertext does not decrypt; the key is generated once, mode 0600, or taken from the
 * environment); the webhook provider leases from and revokes at an external vault (a local HTTP receiver),
 * with signed requests; leases obey the policy, end when the task ends, and are revoked at the vault on a kill.
 */
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifySignature } from '../../../services/killswitch/http-client.ts';
import { loadSecretsKey } from '../../../services/killswitch/keys.ts';
import { createInMemoryKillSwitchStore } from '../../../services/killswitch/ks-store.ts';
import { createBuiltinSecretStore } from '../../../services/killswitch/secrets.ts';
import { TriplineError } from '../../../services/shared/errors.ts';
import { waitFor } from '../../helpers/wait.ts';
import { getJson, postJson, startReceiver, startTripline } from './helpers.ts';
import type { Receiver, TestTripline } from './helpers.ts';
import { adminHeaders } from '../../helpers/auth.ts';

describe('the built-in encrypted store', () => {
  it('generates its key once (0600) and keeps it; refuses a key of the wrong size', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tripline-keys-'));
    const first = loadSecretsKey({ keysDir: dir });
    expect(first.origin).toBe('generated');
    expect(statSync(join(dir, 'secrets.key')).mode & 0o777).toBe(0o600);
    const second = loadSecretsKey({ keysDir: dir });
    expect(second.origin).toBe('file');
    expect(second.key.equals(first.key)).toBe(true);
    const configured = Buffer.alloc(32, 7).toString('base64');
    expect(loadSecretsKey({ keysDir: dir, configured }).key.equals(Buffer.alloc(32, 7))).toBe(true);
    expect(() => loadSecretsKey({ keysDir: dir, configured: Buffer.alloc(16).toString('base64') })).toThrow(
      TriplineError,
    );
  });

  it('stores only ciphertext, authenticates name and version, and needs the same key', async () => {
    const store = createInMemoryKillSwitchStore();
    const key = Buffer.alloc(32, 1);
    const secrets = createBuiltinSecretStore({ store, key });
    await secrets.put('default', 'payments-api-key', 'pk_live_plaintext');
    const record = await store.getSecret('default', 'payments-api-key');
    expect(record).not.toBeNull();
    expect(JSON.stringify(record)).not.toContain('pk_live_plaintext');
    expect(Buffer.from(record?.iv ?? '', 'base64')).toHaveLength(12);
    const lease = {
      leaseId: 'l',
      tenant: 'default',
      taskId: 't',
      taskType: 'customer_refund',
      agentId: 'a',
      secret: 'payments-api-key',
      ttlSeconds: 60,
      expiresMs: Date.now() + 60_000,
    };
    expect((await secrets.provider.lease(lease)).value).toBe('pk_live_plaintext');

    // A ciphertext moved to another name does not decrypt.
    if (record === null) throw new Error('no record');
    await store.upsertSecrets([{ ...record, name: 'moved' }]);
    await expect(secrets.provider.lease({ ...lease, secret: 'moved' })).rejects.toThrow(/does not decrypt/);
    // Tampering is detected (same version, one bit of the ciphertext flipped).
    const flipped = Buffer.from(record.ciphertext, 'base64');
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    await store.upsertSecrets([{ ...record, ciphertext: flipped.toString('base64') }]);
    await expect(secrets.provider.lease(lease)).rejects.toThrow(/does not decrypt/);
    // Another key cannot read it.
    await secrets.put('default', 'payments-api-key', 'v2');
    const other = createBuiltinSecretStore({ store, key: Buffer.alloc(32, 2) });
    await expect(other.provider.lease(lease)).rejects.toThrow(/another key/);
    expect((await secrets.list('default')).map((s) => s.name).sort()).toEqual(['moved', 'payments-api-key']);
    expect(await secrets.remove('default', 'moved')).toBe(true);
    expect(await secrets.provider.has('default', 'moved')).toBe(false);
  });
});

describe('leases through the API', () => {
  let tripline: TestTripline;
  let vault: Receiver;

  beforeAll(async () => {
    vault = await startReceiver((request) => {
      const body = request.json as { type: string; leaseId: string };
      if (body.type === 'lease')
        return { status: 200, body: { value: `dyn-${body.leaseId.slice(0, 8)}`, ref: `vault-lease-${body.leaseId}` } };
      return { status: 204 };
    });
    tripline = await startTripline({
      TRIPLINE_SECRET_WEBHOOK_URL: `${vault.url}/lease`,
      TRIPLINE_SECRET_WEBHOOK_SECRET: 'vault-hmac',
      TRIPLINE_SECRET_WEBHOOK_NAMES: 'warehouse-*,git-readonly-token',
    });
    await fetch(`${tripline.api}/v1/secrets/helpdesk-api-token`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...adminHeaders },
      body: JSON.stringify({ value: 'hd_static' }),
    });
  });

  afterAll(async () => {
    await tripline.stop();
    await vault.close();
  });

  async function task(agentId: string, taskType: string, taskId: string): Promise<string> {
    const { status, body } = await postJson(`${tripline.api}/v1/tasks`, { agentId, taskType, taskId });
    expect(status).toBe(201);
    return body.token as string;
  }

  it('never returns a secret value except in the lease answer, and lists names only', async () => {
    const token = await task('support-1', 'summarize_ticket', 'lease-static');
    const lease = await postJson(
      `${tripline.api}/v1/leases`,
      { secret: 'helpdesk-api-token' },
      { authorization: `Bearer ${token}` },
    );
    expect(lease.status).toBe(201);
    expect(lease.body).toMatchObject({
      value: 'hd_static',
      provider: 'builtin',
      status: 'active',
      taskId: 'lease-static',
    });
    const view = await getJson(`${tripline.api}/v1/leases/${lease.body.leaseId as string}`);
    expect(view.body.value).toBeUndefined();
    const list = await getJson(`${tripline.api}/v1/secrets`);
    expect(JSON.stringify(list.body)).not.toContain('hd_static');
    expect(list.body.items).toEqual([expect.objectContaining({ name: 'helpdesk-api-token' })]);
    expect(readFileSync(join(tripline.keysDir, 'secrets.key'), 'utf8').trim()).toHaveLength(44);
  });

  it('refuses leases the policy does not permit, and leases without a valid token', async () => {
    const token = await task('support-2', 'summarize_ticket', 'lease-denied');
    const denied = await postJson(
      `${tripline.api}/v1/leases`,
      { secret: 'payments-api-key' },
      { authorization: `Bearer ${token}` },
    );
    expect(denied.status).toBe(403);
    expect(denied.body.error).toMatchObject({ code: 'POLICY_DENIED' });
    const anonymous = await postJson(`${tripline.api}/v1/leases`, { secret: 'helpdesk-api-token' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error).toMatchObject({ code: 'TOKEN_INVALID' });
  });

  it('leases from the vault with signed requests, and revokes at the vault when the task is killed', async () => {
    const token = await task('report-1', 'generate_report', 'lease-vault');
    const lease = await postJson(
      `${tripline.api}/v1/leases`,
      { secret: 'warehouse-readonly', ttlSeconds: 120 },
      { authorization: `Bearer ${token}` },
    );
    expect(lease.status, JSON.stringify(lease.body)).toBe(201);
    expect(lease.body).toMatchObject({ provider: 'webhook', status: 'active' });
    expect(lease.body.value).toMatch(/^dyn-/);
    const [leaseRequest] = await vault.received(1);
    expect(
      verifySignature('vault-hmac', leaseRequest?.headers['x-tripline-signature'] as string, leaseRequest?.body ?? ''),
    ).toBe(true);
    expect(leaseRequest?.json).toMatchObject({
      type: 'lease',
      secret: 'warehouse-readonly',
      taskId: 'lease-vault',
      taskType: 'generate_report',
      agentId: 'report-1',
      ttlSeconds: 120,
    });

    const kill = await postJson(`${tripline.api}/v1/tasks/lease-vault/revoke`, {
      reason: 'test kill',
      actor: 'tester',
    });
    expect(kill.status).toBe(201);
    const [, revokeRequest] = await vault.received(2);
    expect(revokeRequest?.json).toMatchObject({
      type: 'revoke',
      leaseId: lease.body.leaseId,
      ref: `vault-lease-${lease.body.leaseId as string}`,
    });
    expect(
      verifySignature(
        'vault-hmac',
        revokeRequest?.headers['x-tripline-signature'] as string,
        revokeRequest?.body ?? '',
      ),
    ).toBe(true);
    await waitFor(
      'the lease to be revoked',
      async () =>
        (await getJson(`${tripline.api}/v1/leases/${lease.body.leaseId as string}`)).body.status === 'revoked',
    );
  });

  it('ends a task’s leases when the task ends', async () => {
    const token = await task('support-3', 'summarize_ticket', 'lease-ends');
    const lease = await postJson(
      `${tripline.api}/v1/leases`,
      { secret: 'helpdesk-api-token' },
      { authorization: `Bearer ${token}` },
    );
    const now = Date.now();
    await tripline.running.processor.handle({
      events: [],
      boundaries: [
        {
          tenant: 'default',
          taskId: 'lease-ends',
          taskType: 'summarize_ticket',
          agentId: 'support-3',
          traceId: 't',
          spanId: 's',
          startMs: now - 1000,
          endMs: now,
          error: false,
          ends: true,
        },
      ],
    });
    const ended = await waitFor('the lease to end with the task', async () => {
      const { body } = await getJson(`${tripline.api}/v1/leases/${lease.body.leaseId as string}`);
      return body.status === 'released' ? body : undefined;
    });
    expect(ended.endReason).toBe('the task ended');
  });

  it('refuses a task’s token for checks and new leases once the task ended', async () => {
    const token = await task('support-4', 'summarize_ticket', 'token-after-end');
    const auth = { authorization: `Bearer ${token}` };
    const checkBody = { token, tool: 'get_ticket' };
    const before = await postJson(`${tripline.api}/v1/check`, checkBody);
    expect(before.body, JSON.stringify(before.body)).toMatchObject({ allowed: true });
    expect((await postJson(`${tripline.api}/v1/leases`, { secret: 'helpdesk-api-token' }, auth)).status).toBe(201);

    const now = Date.now();
    await tripline.running.processor.handle({
      events: [],
      boundaries: [
        {
          tenant: 'default',
          taskId: 'token-after-end',
          taskType: 'summarize_ticket',
          agentId: 'support-4',
          traceId: 't-end',
          spanId: 's-end',
          startMs: now - 1000,
          endMs: now,
          error: false,
          ends: true,
        },
      ],
    });
    const after = await postJson(`${tripline.api}/v1/check`, checkBody);
    expect(after.body).toMatchObject({ allowed: false, decision: 'deny', task: { status: 'completed' } });
    expect((after.body.reasons as string[]).join(' ')).toContain('task token-after-end ended');
    const byId = await postJson(`${tripline.api}/v1/check`, { taskId: 'token-after-end', tool: 'get_ticket' });
    expect(byId.body).toMatchObject({ allowed: false });
    const lease = await postJson(`${tripline.api}/v1/leases`, { secret: 'helpdesk-api-token' }, auth);
    expect(lease.status).toBe(401);
    expect(lease.body.error).toMatchObject({ code: 'TOKEN_INVALID' });
    expect(JSON.stringify(lease.body)).toContain('ended');
  });
});
