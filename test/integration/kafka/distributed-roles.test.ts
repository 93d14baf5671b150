/**
 * The distributed mode's wiring: all three roles in one process (`startDistributed`), manual kill and restore
 * through the API reaching another API process's kill switch over the revocations topic, and a per-service
 * entry script (`node services/app/gateway-main.ts`) configured from the environment alone.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeTraceRequest, encodeTraceRequest } from '../../../services/otlp/codec.ts';
import type { Revocation } from '../../../schemas/events.ts';
import { startApiService, startDistributed } from '../../../services/app/distributed.ts';
import type { RunningApiService, RunningDistributed } from '../../../services/app/distributed.ts';
import { openClickHouseStore } from '../../../services/store/clickhouse/store.ts';
import type { Store } from '../../../services/store/store.ts';
import { kafkaBrokers } from '../../helpers/kafka-broker.ts';
import { freePort } from '../../helpers/tripline-process.ts';
import { waitFor } from '../../helpers/wait.ts';
import { distributedConfig, freshKafkaSettings, readTopic, syntheticRequest, testLogger } from './fixtures.ts';
import { TEST_AUTH_ENV, adminHeaders, agentHeaders } from '../../helpers/auth.ts';

async function postTraces(url: string, taskId: string, spans = 9): Promise<Response> {
  return fetch(`${url}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf', ...agentHeaders },
    body: encodeTraceRequest(syntheticRequest({ taskId, spans })),
  });
}

describe('all roles in one process, and a second API process', () => {
  const brokers = kafkaBrokers();
  const settings = freshKafkaSettings(brokers, { partitions: 2 });
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-kafka-roles-'));
  const config = distributedConfig(brokers, dataDir, { CLICKHOUSE_DATABASE: 'roles' });
  const logger = testLogger();
  let store: Store;
  let running: RunningDistributed;
  let otherApi: RunningApiService;

  beforeAll(async () => {
    store = await openClickHouseStore({ dataDir, database: config.store.database });
    await store.migrate();
    running = await startDistributed(config, ['gateway', 'processor', 'api'], { kafka: settings, store, logger });
    // Another API process (same store here; in production both talk to the same ClickHouse server).
    otherApi = await startApiService(config, { kafka: settings, store, logger });
  }, 120_000);

  afterAll(async () => {
    await otherApi.stop();
    await running.stop();
    await running.stop(); // idempotent
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('ingests, scores and serves a task', async () => {
    const gateway = running.gateway;
    const api = running.api;
    if (gateway === undefined || api === undefined) throw new Error('roles missing');
    expect((await postTraces(gateway.otlpUrl, 'roles-task-1')).status).toBe(200);
    const task = await waitFor('the task in the API', async () => {
      const response = await fetch(`${api.apiUrl}/v1/tasks/roles-task-1`, { headers: adminHeaders });
      return response.status === 200 ? ((await response.json()) as Record<string, unknown>) : undefined;
    });
    expect(task).toMatchObject({
      taskId: 'roles-task-1',
      status: 'active',
      counts: { tool_call: 3, data_access: 3, privilege_change: 3 },
    });
    const ready = await fetch(`${api.apiUrl}/readyz`);
    expect(ready.status).toBe(200);
  }, 90_000);

  it('publishes a manual kill and restore, which the other API process applies', async () => {
    const api = running.api;
    if (api === undefined) throw new Error('no api');
    const revoke = await fetch(`${api.apiUrl}/v1/tasks/roles-task-1/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...adminHeaders },
      body: JSON.stringify({ reason: 'looked wrong', actor: 'alice' }),
    });
    expect(revoke.status).toBe(201);
    const revocation = (await revoke.json()) as Revocation;
    expect(revocation).toMatchObject({ action: 'revoke', source: 'manual', actor: 'alice (via configured admin)' });
    expect(running.processor?.killSwitch.isRevoked('default', 'roles-task-1')).toBe(true);
    await waitFor('the other API process to apply the kill', () =>
      otherApi.killSwitch.isRevoked('default', 'roles-task-1'),
    );

    const again = await fetch(`${api.apiUrl}/v1/tasks/roles-task-1/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...adminHeaders },
      body: JSON.stringify({ reason: 'twice' }),
    });
    expect(again.status).toBe(409);

    // Restored from the other process this time.
    const restore = await fetch(`${otherApi.apiUrl}/v1/tasks/roles-task-1/restore`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...adminHeaders },
      body: JSON.stringify({ reason: 'false alarm', actor: 'bob' }),
    });
    expect(restore.status).toBe(201);
    await waitFor(
      'the first process to apply the restore',
      () => running.api?.killSwitch.isRevoked('default', 'roles-task-1') === false,
    );
    const task = (await (
      await fetch(`${api.apiUrl}/v1/tasks/roles-task-1`, { headers: adminHeaders })
    ).json()) as Record<string, unknown>;
    expect(task.status).toBe('active');

    const records = await readTopic(brokers, settings.topics.revocations, 2);
    const documents = records.map((record) => JSON.parse(record.value?.toString() ?? '{}') as Revocation);
    expect(documents.map((doc) => [doc.action, doc.actor])).toEqual([
      ['revoke', 'alice (via configured admin)'],
      ['restore', 'bob (via configured admin)'],
    ]);
    expect(
      records.every(
        (record) =>
          record.key?.toString() === 'roles-task-1' && record.headers?.['tripline-tenant']?.toString() === 'default',
      ),
    ).toBe(true);
  }, 90_000);
});

describe('per-service entry scripts', () => {
  it('runs the gateway from `node services/app/gateway-main.ts` and stops it on SIGTERM', async () => {
    const brokers = kafkaBrokers();
    const settings = freshKafkaSettings(brokers, { partitions: 1 });
    const port = await freePort();
    const script = fileURLToPath(new URL('../../../services/app/gateway-main.ts', import.meta.url));
    const child = spawn(process.execPath, [script], {
      env: {
        ...process.env,
        KAFKA_BROKERS: brokers.join(','),
        TRIPLINE_OTLP_HOST: '127.0.0.1',
        TRIPLINE_OTLP_PORT: String(port),
        LOG_LEVEL: 'info',
        TRIPLINE_DATA_DIR: mkdtempSync(join(tmpdir(), 'tripline-gateway-main-')),
        ...TEST_AUTH_ENV,
        TRIPLINE_TOPIC_TOOL_CALLS: settings.topics.tool_call,
        TRIPLINE_TOPIC_DATA_ACCESS: settings.topics.data_access,
        TRIPLINE_TOPIC_PRIVILEGE_CHANGES: settings.topics.privilege_change,
        TRIPLINE_TOPIC_ALERTS: settings.topics.alerts,
        TRIPLINE_TOPIC_REVOCATIONS: settings.topics.revocations,
        TRIPLINE_TOPIC_DEAD_LETTER: settings.topics.deadLetter,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await waitFor(
        'the gateway to answer',
        async () => {
          if (child.exitCode !== null) throw new Error(`exited ${String(child.exitCode)}: ${output}`);
          return (await postTraces(`http://127.0.0.1:${port}`, 'script-task')).status === 200;
        },
        60_000,
        250,
      );
      expect(output).toMatch(/Tripline \(distributed: gateway\) is running/);
      const [record] = await readTopic(brokers, settings.topics.tool_call, 1);
      // Keyed by trace: the record's spans are of the trace its key names.
      const span = decodeTraceRequest(new Uint8Array(record?.value ?? Buffer.alloc(0)), 'protobuf').resourceSpans[0]
        ?.scopeSpans[0]?.spans[0];
      expect(record?.key?.toString()).toMatch(/^[0-9a-f]{32}$/);
      expect(record?.key?.toString()).toBe(span?.traceId);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 90_000);
});
