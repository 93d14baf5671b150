/**
 * Distributed mode kills a task that holds a token but has sent no event yet (issue 14; docs/kill-switch.md): no
 * task record is stored, so the API takes who the task is from its credentials — the ones it issued itself (in
 * memory) and the ones another API process issued (the credentials table). The kill makes the token inactive in
 * both API processes (over the revocations topic of a real broker), and the task is stored as revoked. Spans a
 * bound agent token sends under another agent's id reach the processor as the token's agent, with an alert; spans
 * of a credentialed task that name another task type than its token are compared by the processor, which reads
 * the credentials the API stored.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Revocation } from '../../../schemas/events.ts';
import { startApiService, startDistributed } from '../../../services/app/distributed.ts';
import type { RunningApiService, RunningDistributed } from '../../../services/app/distributed.ts';
import { openClickHouseStore } from '../../../services/store/clickhouse/store.ts';
import type { Store } from '../../../services/store/store.ts';
import { adminHeaders, agentHeaders } from '../../helpers/auth.ts';
import { kafkaBrokers } from '../../helpers/kafka-broker.ts';
import { waitFor } from '../../helpers/wait.ts';
import { encodeTraceRequest } from '../../../services/otlp/codec.ts';
import { distributedConfig, freshKafkaSettings, syntheticRequest, testLogger } from './fixtures.ts';

describe('a distributed kill of a task known only by its token', () => {
  const brokers = kafkaBrokers();
  const settings = freshKafkaSettings(brokers, { partitions: 1 });
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-kafka-credentialed-'));
  const config = distributedConfig(brokers, dataDir, { CLICKHOUSE_DATABASE: 'credentialed' });
  const logger = testLogger();
  let store: Store;
  let running: RunningDistributed;
  let otherApi: RunningApiService;
  let api = '';

  async function startTask(url: string, taskId: string): Promise<string> {
    const response = await fetch(`${url}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...agentHeaders },
      body: JSON.stringify({ agentId: 'agent-k', taskType: 'summarize_ticket', taskId, tools: ['get_ticket'] }),
    });
    const body = (await response.json()) as Record<string, unknown>;
    expect(response.status, JSON.stringify(body)).toBe(201);
    return body.token as string;
  }

  async function active(url: string, token: string): Promise<boolean> {
    const response = await fetch(`${url}/oauth2/introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...adminHeaders },
      body: JSON.stringify({ token }),
    });
    return ((await response.json()) as { active: boolean }).active;
  }

  async function revoke(url: string, taskId: string): Promise<{ status: number; body: Revocation }> {
    const response = await fetch(`${url}/v1/tasks/${taskId}/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...adminHeaders },
      body: JSON.stringify({ reason: 'should not be running', actor: 'alice' }),
    });
    return { status: response.status, body: (await response.json()) as Revocation };
  }

  beforeAll(async () => {
    store = await openClickHouseStore({ dataDir, database: config.store.database });
    await store.migrate();
    running = await startDistributed(config, ['gateway', 'processor', 'api'], { kafka: settings, store, logger });
    otherApi = await startApiService(config, { kafka: settings, store, logger });
    api = running.api?.apiUrl ?? '';
  }, 120_000);

  afterAll(async () => {
    await otherApi.stop();
    await running.stop();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('kills a task this API process issued a token to', async () => {
    const token = await startTask(api, 'silent-1');
    expect(await store.getTask('default', 'silent-1')).toBeNull();
    const killed = await revoke(api, 'silent-1');
    expect(killed.status, JSON.stringify(killed.body)).toBe(201);
    expect(killed.body).toMatchObject({
      taskId: 'silent-1',
      taskType: 'summarize_ticket',
      agentId: 'agent-k',
      action: 'revoke',
      source: 'manual',
    });
    expect(await active(api, token)).toBe(false);
    await waitFor('the other API process to apply the kill', async () => !(await active(otherApi.apiUrl, token)));
    expect(await store.getTask('default', 'silent-1')).toMatchObject({ status: 'revoked', agentId: 'agent-k' });
    expect((await revoke(api, 'silent-1')).status).toBe(409);
  }, 60_000);

  it('kills a task another API process issued a token to, from its stored credentials', async () => {
    const token = await startTask(api, 'silent-2');
    await waitFor('the credentials to be stored', async () => {
      const response = await fetch(`${otherApi.apiUrl}/v1/tasks/silent-2/credentials`, { headers: adminHeaders });
      return ((await response.json()) as { items: unknown[] }).items.length > 0;
    });
    const killed = await revoke(otherApi.apiUrl, 'silent-2');
    expect(killed.status, JSON.stringify(killed.body)).toBe(201);
    expect(killed.body).toMatchObject({ taskId: 'silent-2', agentId: 'agent-k' });
    await waitFor('the issuing API process to apply the kill', async () => !(await active(api, token)));
  }, 60_000);

  it('holds spans to a bound agent token through the gateway, Kafka and the processor', async () => {
    const created = await fetch(`${api}/v1/admin/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...adminHeaders },
      body: JSON.stringify({ role: 'agent', name: 'attacker bot', agents: ['attacker'] }),
    });
    expect(created.status).toBe(201);
    const token = ((await created.json()) as { token: string }).token;
    const gateway = running.gateway?.otlpUrl ?? '';
    const sent = await fetch(`${gateway}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${token}` },
      body: encodeTraceRequest(
        syntheticRequest({ taskId: 'forged-task', taskType: 'summarize_ticket', agentId: 'victim', spans: 3 }),
      ),
    });
    expect(sent.status).toBe(200);
    const task = await waitFor('the forged task in the API', async () => {
      const response = await fetch(`${api}/v1/tasks/forged-task`, { headers: adminHeaders });
      return response.status === 200 ? ((await response.json()) as Record<string, unknown>) : undefined;
    });
    expect(task.agentId).toBe('attacker');
    const reasons = await waitFor('the identity alert', async () => {
      const response = await fetch(`${api}/v1/alerts?task_id=forged-task`, { headers: adminHeaders });
      const items = ((await response.json()) as { items: { reasons: string[] }[] }).items;
      const found = items.flatMap((alert) => alert.reasons).filter((reason) => reason.startsWith('identity.'));
      return found.length > 0 ? found : undefined;
    });
    expect(reasons[0]).toMatch(/^identity\.agent_refused: a span claimed agent "victim"/);
  }, 60_000);

  it('compares a credentialed task’s spans with its stored credentials in the processor', async () => {
    await startTask(api, 'mismatch-1');
    await waitFor('the credentials to be stored', async () => {
      const response = await fetch(`${api}/v1/tasks/mismatch-1/credentials`, { headers: adminHeaders });
      return ((await response.json()) as { items: unknown[] }).items.length > 0;
    });
    const gateway = running.gateway?.otlpUrl ?? '';
    const sent = await fetch(`${gateway}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', ...agentHeaders },
      body: encodeTraceRequest(
        syntheticRequest({ taskId: 'mismatch-1', taskType: 'wire_transfer', agentId: 'agent-k', spans: 3 }),
      ),
    });
    expect(sent.status).toBe(200);
    const reasons = await waitFor('the identity alert', async () => {
      const response = await fetch(`${api}/v1/alerts?task_id=mismatch-1`, { headers: adminHeaders });
      const items = ((await response.json()) as { items: { reasons: string[] }[] }).items;
      const found = items.flatMap((alert) => alert.reasons).filter((reason) => reason.startsWith('identity.'));
      return found.length > 0 ? found : undefined;
    });
    expect(reasons).toEqual([
      'identity.credential_mismatch: its spans claim task type "wire_transfer"; its task token was issued for "summarize_ticket"',
    ]);
  }, 60_000);

  it('still answers 404 for a task with neither events nor a token', async () => {
    expect((await revoke(api, 'never-heard-of')).status).toBe(404);
  });
});
