/**
 * Kafka stopped during ingest. A broker of this test's own (free ports, own state; the shared test broker is
 * not touched) is stopped while a real `@opentelemetry/sdk-node` agent (NodeSDK + BatchSpanProcessor +
 * OTLPTraceExporter over HTTP/protobuf, in this test process so the outage can be timed against its exports)
 * works: the gateway answers 503 with Retry-After (never 200 for spans Kafka did not acknowledge), the SDK
 * retries, and once the broker is back (same data, restarted) every span is scored, none lost, none duplicated.
 *
 * The OTel SDK retries at most 5 times, honouring Retry-After, and only within its exporter timeout (10 s by
 * default) and the batch processor's export timeout (30 s): with Tripline's default Retry-After of 2 s an agent
 * on default settings rides out about 8-10 s of Kafka outage. This test's outage (stop and restart of a JVM,
 * slow on a busy machine) may take longer, so the gateway advertises Retry-After 10 s and the agent's timeouts
 * are 120 s.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, trace } from '@opentelemetry/api';
import type { Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTraceRequest } from '../../../collectors/gateway/otlp-codec.ts';
import { startGatewayService, startProcessorService } from '../../../services/distributed.ts';
import type { RunningGateway, RunningProcessorService } from '../../../services/distributed.ts';
import { openClickHouseStore } from '../../../services/store/clickhouse-store.ts';
import type { Store } from '../../../services/store/store.ts';
import { startOwnBroker } from '../../helpers/kafka-broker.ts';
import type { OwnBroker } from '../../helpers/kafka-broker.ts';
import { waitFor } from '../../helpers/wait.ts';
import { distributedConfig, freshKafkaSettings, syntheticRequest, testLogger } from './fixtures.ts';
import { agentHeaders } from '../../helpers/auth.ts';

const EVENTS_PER_TASK = 6;

/** One task as an instrumented agent emits it: a task span with tool calls, reads and a privilege change. */
function runTask(tracer: Tracer, taskId: string): void {
  const common = { 'tripline.task.id': taskId, 'tripline.task.type': 'summarize_ticket', 'gen_ai.agent.id': 'outage-agent' };
  const root = tracer.startSpan('task summarize_ticket', { root: true, attributes: { ...common, 'tripline.task.root': true } });
  const parent = trace.setSpan(context.active(), root);
  for (let i = 0; i < EVENTS_PER_TASK; i += 1) {
    const attributes =
      i % 3 === 0
        ? { ...common, 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'get_ticket' }
        : i % 3 === 1
          ? { ...common, 'db.system.name': 'postgresql', 'db.namespace': 'helpdesk', 'db.collection.name': 'tickets', 'db.response.returned_rows': 3 }
          : { ...common, 'tripline.privilege.action': 'token_issue', 'tripline.privilege.scopes_after': ['tickets:read'] };
    tracer.startSpan(i % 3 === 0 ? 'execute_tool get_ticket' : i % 3 === 1 ? 'SELECT helpdesk.tickets' : 'privilege token_issue', { attributes }, parent).end();
  }
  root.end();
}

describe('ingest while the Kafka broker is down', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-kafka-outage-'));
  const logger = testLogger();
  let broker: OwnBroker;
  let store: Store;
  let processor: RunningProcessorService;
  let gateway: RunningGateway;
  const outage: { status: number; retryAfter: string | null }[] = [];

  beforeAll(async () => {
    broker = await startOwnBroker();
    // Retry-After 10 s: the SDK retries at most 5 times, so the outage it survives is about 5 × Retry-After.
    const settings = freshKafkaSettings(broker.brokers, { partitions: 3, env: { TRIPLINE_KAFKA_PUBLISH_TIMEOUT_MS: '2000', TRIPLINE_KAFKA_RETRY_AFTER_SECONDS: '10' } });
    const config = distributedConfig(broker.brokers, dataDir);
    store = await openClickHouseStore({ dataDir, database: 'outage' });
    await store.migrate();
    processor = await startProcessorService(config, { kafka: settings, store, logger });
    gateway = await startGatewayService(config, { kafka: settings, logger });
  }, 180_000);

  afterAll(async () => {
    await gateway.stop();
    await processor.stop();
    await store.close();
    await broker.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it('answers 503 with Retry-After while the broker is down, and loses no span once it is back', async () => {
    const post = async (): Promise<{ status: number; retryAfter: string | null }> => {
      const response = await fetch(`${gateway.otlpUrl}/v1/traces`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf', ...agentHeaders },
        body: encodeTraceRequest(syntheticRequest({ taskId: `probe-${randomUUID()}`, spans: 3 })),
      });
      await response.arrayBuffer();
      return { status: response.status, retryAfter: response.headers.get('retry-after') };
    };
    const exporter = new OTLPTraceExporter({ url: `${gateway.otlpUrl}/v1/traces`, headers: agentHeaders, timeoutMillis: 120_000 });
    const spans = new BatchSpanProcessor({ exporter, scheduledDelayMillis: 100, exportTimeoutMillis: 120_000, maxQueueSize: 8192 });
    const sdk = new NodeSDK({ resource: resourceFromAttributes({ 'service.name': 'outage-agent' }), spanProcessors: [spans], instrumentations: [] });
    sdk.start();
    const tracer = trace.getTracer('outage-agent');
    const before = ['outage-before-1', 'outage-before-2'];
    const during = ['outage-during-1', 'outage-during-2', 'outage-during-3'];
    try {
      for (const taskId of before) runTask(tracer, taskId);
      await spans.forceFlush();
      await waitFor('the first tasks to be scored', async () => (await store.counts()).events === before.length * EVENTS_PER_TASK, 60_000);

      await broker.stop();
      // While it is down: 503 + Retry-After (the first after the publish timeout, later ones at once).
      for (let i = 0; i < 3; i += 1) outage.push(await post());
      expect(outage.map((answer) => answer.status)).toEqual([503, 503, 503]);
      expect(outage.every((answer) => answer.retryAfter === '10')).toBe(true);
      const refused = gateway.publisher.stats().unavailable;
      expect(refused).toBeGreaterThanOrEqual(3);

      // The agent keeps working; its exports are refused and retried by the SDK until the broker is back.
      for (const taskId of during) runTask(tracer, taskId);
      const flushed = spans.forceFlush();
      await waitFor("the agent's export to be refused", () => gateway.publisher.stats().unavailable > refused, 30_000);
      await broker.restart();
      await flushed;
    } finally {
      await sdk.shutdown();
    }

    // Every span of the agent scored once; the probes refused with 503 were not retried by this test (their
    // records may still have reached Kafka while in flight, and are not counted here).
    await waitFor("all the agent's events in ClickHouse", async () => {
      const stored = await Promise.all([...before, ...during].map((taskId) => store.eventsForTask('default', taskId)));
      return stored.every((events) => events.length >= EVENTS_PER_TASK);
    }, 90_000);
    for (const taskId of [...before, ...during]) {
      const events = await store.eventsForTask('default', taskId);
      expect(events.length, `events of ${taskId}`).toBe(EVENTS_PER_TASK);
      expect(new Set(events.map((entry) => entry.event.id)).size).toBe(EVENTS_PER_TASK);
      const task = await waitFor(`task ${taskId} to complete`, async () => {
        const record = await store.getTask('default', taskId);
        return record?.status === 'completed' ? record : undefined;
      });
      expect(task.counts).toEqual({ tool_call: 2, data_access: 2, privilege_change: 2 });
    }
    expect((await post()).status).toBe(200);
  }, 300_000);
});
