/**
 * Task trees in the distributed mode: the gateway and a processor in one service, the API in another (each with
 * its own kill switch bridged over `tripline.revocations`). A person's kill of a parent through the API reaches its
 * descendants: the processor revokes them on the API's kill it reads from Kafka, and the API applies the
 * processor's revocations back; a kill of a child through the API raises its parent (held by the processor), which
 * alerts without being revoked.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OtlpTraceRequest } from '../../../schemas/otlp.ts';
import { startApiService, startDistributed } from '../../../services/app/distributed.ts';
import type { RunningApiService, RunningDistributed } from '../../../services/app/distributed.ts';
import { encodeTraceRequest } from '../../../services/otlp/codec.ts';
import { openClickHouseStore } from '../../../services/store/clickhouse/store.ts';
import type { Store } from '../../../services/store/store.ts';
import { adminHeaders, agentHeaders } from '../../helpers/auth.ts';
import { kafkaBrokers } from '../../helpers/kafka-broker.ts';
import { waitFor } from '../../helpers/wait.ts';
import { distributedConfig, freshKafkaSettings, syntheticRequest, testLogger } from './fixtures.ts';

const TENANT = 'default';

/** A task's spans, declaring `parent` as its parent on the resource (as baggage or a kit would on every span). */
function request(taskId: string, parent?: string): OtlpTraceRequest {
  const built = syntheticRequest({ taskId, spans: 6, agentId: `agent-${taskId}` });
  const resource = built.resourceSpans[0]?.resource;
  if (parent !== undefined && resource !== undefined)
    resource.attributes.push({ key: 'tripline.task.parent_id', value: { stringValue: parent } });
  return built;
}

describe('task trees across the distributed roles', () => {
  const brokers = kafkaBrokers();
  const settings = freshKafkaSettings(brokers, { partitions: 2 });
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-kafka-trees-'));
  const config = distributedConfig(brokers, dataDir, { CLICKHOUSE_DATABASE: 'trees' });
  const logger = testLogger();
  let store: Store;
  let ingest: RunningDistributed;
  let api: RunningApiService;

  beforeAll(async () => {
    store = await openClickHouseStore({ dataDir, database: config.store.database });
    await store.migrate();
    ingest = await startDistributed(config, ['gateway', 'processor'], { kafka: settings, store, logger });
    api = await startApiService(config, { kafka: settings, store, logger });
  }, 120_000);

  afterAll(async () => {
    await api.stop();
    await ingest.stop();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function send(taskId: string, parent?: string): Promise<void> {
    const gateway = ingest.gateway;
    if (gateway === undefined) throw new Error('no gateway');
    const response = await fetch(`${gateway.otlpUrl}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', ...agentHeaders },
      body: encodeTraceRequest(request(taskId, parent)),
    });
    expect(response.status).toBe(200);
  }

  const post = (path: string, body: object): Promise<Response> =>
    fetch(`${api.apiUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...adminHeaders },
      body: JSON.stringify(body),
    });

  it("a person's kill of a parent through the API revokes its descendants, not its parent's other children", async () => {
    await send('d-root');
    await send('d-orch', 'd-root');
    await send('d-sibling', 'd-root');
    await send('d-child', 'd-orch');
    await send('d-grandchild', 'd-child');
    await waitFor(
      'the tasks and their links in the store',
      async () => (await store.getTask(TENANT, 'd-grandchild'))?.parentTaskId === 'd-child',
      60_000,
      200,
    );
    expect((await post('/v1/tasks/d-orch/revoke', { reason: 'went wrong', actor: 'alice' })).status).toBe(201);
    for (const taskId of ['d-child', 'd-grandchild']) {
      await waitFor(
        `${taskId} revoked in the API's kill switch`,
        () => api.killSwitch.isRevoked(TENANT, taskId),
        60_000,
      );
      await waitFor(
        `${taskId} revoked in the store`,
        async () => (await store.getTask(TENANT, taskId))?.status === 'revoked',
        30_000,
        200,
      );
    }
    const [revocation] = (await store.listRevocations({ tenant: TENANT, taskId: 'd-grandchild', limit: 5 })).items;
    expect(revocation).toMatchObject({ actor: 'tripline/task-tree', source: 'manual' });
    expect(revocation?.reason).toMatch(/^its ancestor task d-orch was revoked by alice/);
    for (const taskId of ['d-root', 'd-sibling']) {
      expect(api.killSwitch.isRevoked(TENANT, taskId)).toBe(false);
      expect((await store.getTask(TENANT, taskId))?.status).toBe('active');
    }
  }, 120_000);

  it("a person's kill of a child through the API raises its parent in the processor, which alerts and goes on", async () => {
    await send('r-parent');
    await send('r-child', 'r-parent');
    await waitFor(
      'the child in the store',
      async () => (await store.getTask(TENANT, 'r-child'))?.parentTaskId === 'r-parent',
      60_000,
      200,
    );
    expect((await post('/v1/tasks/r-child/revoke', { reason: 'leaked a key', actor: 'alice' })).status).toBe(201);
    const parent = await waitFor(
      'the parent to alert',
      async () => {
        const record = await store.getTask(TENANT, 'r-parent');
        return record?.decision === 'alert' ? record : undefined;
      },
      60_000,
      200,
    );
    expect(parent.status).toBe('active');
    expect(parent.reasons[0]).toMatch(
      /^its child task r-child \(bench_task, agent agent-r-child\) was revoked by alice/,
    );
    const alerts = await store.listAlerts({ tenant: TENANT, taskId: 'r-parent', limit: 5 });
    expect(alerts.items).toHaveLength(1);
  }, 120_000);
});
