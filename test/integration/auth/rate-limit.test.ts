/**
 * Per-tenant ingest limits on a running embedded Tripline: past its rate a tenant gets 429 with Retry-After
 * (which OTLP clients honour), another tenant is not held back, and the tenant is let in again once its
 * bucket refills. Nothing it sent before the limit is lost.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTraceRequest } from '../../../services/otlp/codec.ts';
import { loadConfig } from '../../../services/app/config.ts';
import { startEmbedded } from '../../../services/app/embedded.ts';
import type { RunningTripline } from '../../../services/app/embedded.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import { TEST_AGENT_TOKEN, loopbackTestEnv } from '../../helpers/auth.ts';
import { waitFor } from '../../helpers/wait.ts';
import { syntheticRequest } from '../kafka/fixtures.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'tripline-rate-limit-'));
let running: RunningTripline;
let otherTenantToken = '';
let bulkyTenantToken = '';

async function send(token: string, taskId: string): Promise<Response> {
  return fetch(`${running.otlpUrl}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${token}` },
    body: encodeTraceRequest(syntheticRequest({ taskId, spans: 9 })),
  });
}

beforeAll(async () => {
  const config = loadConfig({
    ...loopbackTestEnv(dataDir),
    LOG_LEVEL: 'silent',
    TRIPLINE_TENANT_SPANS_PER_SECOND: '10',
    TRIPLINE_TENANT_BURST_SPANS: '20',
    TRIPLINE_TENANT_BYTES_PER_SECOND: String(64 * 1024),
    TRIPLINE_TENANT_BURST_BYTES: String(256 * 1024),
  });
  running = await startEmbedded(config, createLogger('silent'));
  otherTenantToken = (
    await running.auth.control.createToken({ tenant: 'other', role: 'agent', name: 'other agents', createdBy: 'test' })
  ).token;
  bulkyTenantToken = (
    await running.auth.control.createToken({ tenant: 'bulky', role: 'agent', name: 'bulky agents', createdBy: 'test' })
  ).token;
});

afterAll(async () => {
  await running.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('per-tenant ingest limits', () => {
  it("answers 429 with Retry-After past the tenant's burst, lets other tenants in, and recovers", async () => {
    // A burst of 20 spans: 9 + 9 fit, the third request overdraws the bucket, the fourth waits.
    const accepted: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const response = await send(TEST_AGENT_TOKEN, `limited-${i}`);
      expect(response.status).toBe(200);
      accepted.push(`limited-${i}`);
    }
    const refused = await send(TEST_AGENT_TOKEN, 'limited-refused');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // google.rpc.Status with code 8 (RESOURCE_EXHAUSTED): field 1, varint 8.
    expect([...new Uint8Array(await refused.arrayBuffer()).subarray(0, 2)]).toEqual([0x08, 0x08]);

    expect((await send(otherTenantToken, 'other-1')).status).toBe(200);

    const retried = await waitFor(
      'the tenant to be let in again',
      async () => ((await send(TEST_AGENT_TOKEN, 'limited-after')).status === 200 ? true : undefined),
      15_000,
      250,
    );
    expect(retried).toBe(true);
    accepted.push('limited-after');

    await waitFor(
      'the accepted tasks to be stored',
      async () => (await running.store.getTasks('default', accepted)).length === accepted.length,
    );
    expect(await running.store.getTask('default', 'limited-refused')).toBeNull();
    expect(await running.store.getTask('other', 'other-1')).not.toBeNull();
  });

  it('charges bytes too: one span with a 300 kB attribute overdraws the byte bucket, and the next request waits', async () => {
    const huge = syntheticRequest({ taskId: 'bulky-1', spans: 1 });
    huge.resourceSpans[0]?.scopeSpans[0]?.spans[0]?.attributes.push({
      key: 'gen_ai.tool.name',
      value: { stringValue: 'x'.repeat(300_000) },
    });
    const post = (request: typeof huge): Promise<Response> =>
      fetch(`${running.otlpUrl}/v1/traces`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${bulkyTenantToken}` },
        body: encodeTraceRequest(request),
      });
    expect((await post(huge)).status).toBe(200);
    // Two spans in all: far under the span rate, over the byte burst.
    const refused = await post(syntheticRequest({ taskId: 'bulky-2', spans: 1 }));
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const retried = await waitFor(
      'the bulky tenant to be let in again',
      async () => ((await post(syntheticRequest({ taskId: 'bulky-3', spans: 1 }))).status === 200 ? true : undefined),
      15_000,
      250,
    );
    expect(retried).toBe(true);
  });
});
