/**
 * Writes refused for want of a valid token are in the audit trail under no tenant: the superuser admin lists them
 * (`GET /v1/audit?unauthenticated=true`), a tenant's admin may not, and the table lets them expire after 7 days
 * (migration 015) while it keeps every other row. An embedded Tripline in this process, on the real engine.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../services/app/config.ts';
import { startEmbedded } from '../../../services/app/embedded.ts';
import type { RunningTripline } from '../../../services/app/embedded.ts';
import { QUERY_SETTINGS, embeddedClient, embeddedDataDir } from '../../../services/store/clickhouse/client.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import { TEST_AUTH_ENV, adminHeaders } from '../../helpers/auth.ts';
import { waitFor } from '../../helpers/wait.ts';

const DATABASE = 'audit_failed_auth';
let running: RunningTripline;
let client: ClickHouseClient;

beforeAll(async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-audit-'));
  const config = loadConfig({
    TRIPLINE_DATA_DIR: dataDir,
    CLICKHOUSE_DATABASE: DATABASE,
    TRIPLINE_KEYS_DIR: join(dataDir, 'keys'),
    TRIPLINE_API_HOST: '127.0.0.1',
    TRIPLINE_OTLP_HOST: '127.0.0.1',
    TRIPLINE_API_PORT: '0',
    TRIPLINE_OTLP_PORT: '0',
    ...TEST_AUTH_ENV,
  });
  running = await startEmbedded(config, createLogger('silent'));
  client = embeddedClient(embeddedDataDir(dataDir), { application: 'test', settings: QUERY_SETTINGS });
});

afterAll(async () => {
  await client.close();
  await running.stop();
});

interface AuditItem {
  route: string;
  status: number;
  target: unknown;
  actor: string;
}

async function audit(query: string, headers: Record<string, string>): Promise<{ status: number; items: AuditItem[] }> {
  const response = await fetch(`${running.apiUrl}/v1/audit${query}`, { headers });
  const body = (await response.json()) as { items?: AuditItem[] };
  return { status: response.status, items: body.items ?? [] };
}

describe('failed authentication in the audit trail', () => {
  it('shows writes without a valid token to the superuser admin, and not to a tenant admin', async () => {
    const refused = await fetch(`${running.apiUrl}/v1/tasks/victim-task/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer tl_not-a-real-token-0000000000000000' },
      body: JSON.stringify({ reason: 'probing' }),
    });
    expect(refused.status).toBe(401);

    const listed = await waitFor('the refused write in the audit trail', async () => {
      const answer = await audit('?unauthenticated=true', adminHeaders);
      expect(answer.status).toBe(200);
      return answer.items.find((item) => item.route === '/v1/tasks/:taskId/revoke');
    });
    expect(listed).toMatchObject({ status: 401, actor: '', target: { taskId: 'victim-task' } });
    // The tenant's own trail does not mix them in.
    expect((await audit('', adminHeaders)).items.some((item) => item.status === 401)).toBe(false);

    const created = await fetch(`${running.apiUrl}/v1/admin/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...adminHeaders },
      body: JSON.stringify({ role: 'admin', name: 'acme admin', tenant: 'acme' }),
    });
    expect(created.status).toBe(201);
    const { token } = (await created.json()) as { token: string };
    expect((await audit('?unauthenticated=true', { authorization: `Bearer ${token}` })).status).toBe(403);
  });

  it('lets rows of failed authentication expire after 7 days, and keeps every other row', async () => {
    const old = new Date(Date.now() - 8 * 24 * 3600 * 1000).toISOString();
    const row = (tenant: string, requestId: string): Record<string, unknown> => ({
      time: old,
      tenant,
      actor: tenant === '' ? '' : 'ops',
      token_id: tenant === '' ? '' : 'tok_ops',
      role: tenant === '' ? '' : 'operator',
      method: 'POST',
      route: '/v1/tasks/:taskId/revoke',
      target: '{}',
      reason: '',
      status: tenant === '' ? 401 : 200,
      request_id: requestId,
    });
    await client.insert({
      table: `${DATABASE}.audit_log`,
      format: 'JSONEachRow',
      values: [row('', 'old-unauthenticated'), row('default', 'old-authenticated')],
      clickhouse_settings: { date_time_input_format: 'best_effort' },
    });
    await client.command({ query: `OPTIMIZE TABLE ${DATABASE}.audit_log FINAL` });
    const result = await client.query({
      query: `SELECT request_id FROM ${DATABASE}.audit_log WHERE request_id LIKE 'old-%' ORDER BY request_id`,
      format: 'JSONEachRow',
    });
    expect(await result.json<{ request_id: string }>()).toEqual([{ request_id: 'old-authenticated' }]);
  });
});
