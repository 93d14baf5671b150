/**
 * Records written the way the upstream OpenTelemetry Collector's kafka exporter writes them (`otlp_proto`:
 * a `TracesData` per record, several resources in one record; key = the trace id as 32 hex characters with
 * `partition_traces_by_id: true`, else null; no Tripline headers), encoded here with protobufjs' reflection
 * codec from the .proto files (not Tripline's encoder), plus an `otlp_json` record and garbage. A processor
 * scores the spans into ClickHouse; the garbage lands in the dead-letter topic with its reason and source,
 * and does not block its partition (everything is committed).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Partitioners } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { otlpSchema } from '../../../services/otlp/codec.ts';
import { createKafka, ensureTopics } from '../../../services/bus/kafka/client.ts';
import { spanTopics } from '../../../services/bus/kafka/config.ts';
import { DEAD_LETTER_HEADERS } from '../../../services/bus/kafka/source.ts';
import { startProcessorService } from '../../../services/app/distributed.ts';
import type { RunningProcessorService } from '../../../services/app/distributed.ts';
import { openClickHouseStore } from '../../../services/store/clickhouse/store.ts';
import type { Store } from '../../../services/store/store.ts';
import { kafkaBrokers } from '../../helpers/kafka-broker.ts';
import { waitFor } from '../../helpers/wait.ts';
import { distributedConfig, freshKafkaSettings, plainKafka, readTopic, testLogger } from './fixtures.ts';

const TracesData = otlpSchema.lookupType('opentelemetry.proto.trace.v1.TracesData');

const hexId = (bytes: number): string => randomBytes(bytes).toString('hex');
const attr = (key: string, value: string | number | boolean): Record<string, unknown> => ({
  key,
  value:
    typeof value === 'string'
      ? { stringValue: value }
      : typeof value === 'boolean'
        ? { boolValue: value }
        : { intValue: value },
});

interface SpanSpec {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: Record<string, unknown>[];
  startMs: number;
}

/** A span as protobufjs' fromObject wants it (ids as bytes, times as 64-bit numbers). */
function span(spec: SpanSpec): Record<string, unknown> {
  const start = BigInt(Math.round(spec.startMs)) * 1_000_000n;
  return {
    traceId: Buffer.from(spec.traceId, 'hex'),
    spanId: Buffer.from(spec.spanId, 'hex'),
    ...(spec.parentSpanId === undefined ? {} : { parentSpanId: Buffer.from(spec.parentSpanId, 'hex') }),
    name: spec.name,
    kind: 3,
    startTimeUnixNano: start.toString(),
    endTimeUnixNano: (start + 2_000_000n).toString(),
    attributes: spec.attributes,
    status: { code: 1 },
  };
}

function resourceSpans(
  service: string,
  spans: Record<string, unknown>[],
  scope = 'opentelemetry.instrumentation.genai',
): Record<string, unknown> {
  return {
    resource: { attributes: [attr('service.name', service), attr('telemetry.sdk.language', 'python')] },
    scopeSpans: [{ scope: { name: scope, version: '1.2.3' }, spans }],
    schemaUrl: 'https://opentelemetry.io/schemas/1.37.0',
  };
}

function tracesData(resources: Record<string, unknown>[]): Buffer {
  const message = TracesData.fromObject({ resourceSpans: resources });
  return Buffer.from(TracesData.encode(message).finish());
}

describe('records from the upstream collector', () => {
  const brokers = kafkaBrokers();
  const settings = freshKafkaSettings(brokers, { partitions: 3 });
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-kafka-upstream-'));
  let store: Store;
  let processor: RunningProcessorService;
  const now = Date.now() - 60_000;

  // Trace 1: an agent with a task id (GenAI execute_tool + a database read + the task's root span), its MCP
  // server as a second resource in the same record (MCP tools/call), keyed by the trace id.
  const trace1 = hexId(16);
  const root1 = hexId(8);
  const task1 = `upstream-task-${hexId(3)}`;
  const t1 = (
    name: string,
    attributes: Record<string, unknown>[],
    offset: number,
    parent: string = root1,
  ): SpanSpec => ({ traceId: trace1, spanId: hexId(8), parentSpanId: parent, name, attributes, startMs: now + offset });
  const agent1 = [
    span(
      t1(
        'execute_tool search_tickets',
        [
          attr('gen_ai.operation.name', 'execute_tool'),
          attr('gen_ai.tool.name', 'search_tickets'),
          attr('tripline.task.id', task1),
          attr('tripline.task.type', 'support'),
          attr('gen_ai.agent.id', 'py-agent-1'),
        ],
        10,
      ),
    ),
    span(
      t1(
        'SELECT helpdesk.tickets',
        [
          attr('db.system.name', 'postgresql'),
          attr('db.namespace', 'helpdesk'),
          attr('db.collection.name', 'tickets'),
          attr('db.response.returned_rows', 7),
          attr('tripline.task.id', task1),
          attr('tripline.task.type', 'support'),
        ],
        20,
      ),
    ),
    span({
      traceId: trace1,
      spanId: root1,
      name: 'invoke_agent support',
      attributes: [
        attr('tripline.task.id', task1),
        attr('tripline.task.type', 'support'),
        attr('tripline.task.root', true),
        attr('gen_ai.agent.id', 'py-agent-1'),
      ],
      startMs: now,
    }),
  ];
  const mcp1 = [
    span(
      t1(
        'tools/call fetch_url',
        [attr('mcp.method.name', 'tools/call'), attr('mcp.tool.name', 'fetch_url'), attr('tripline.task.id', task1)],
        30,
      ),
    ),
  ];
  const record1 = tracesData([resourceSpans('support-agent', agent1), resourceSpans('mcp-fetch', mcp1, 'mcp')]);

  // Trace 2: a plain GenAI agent without Tripline attributes (the task is the trace); OpenInference and
  // OpenLLMetry tool spans and a privilege change; key null (partition_traces_by_id off), three resources.
  const trace2 = hexId(16);
  const t2 = (name: string, attributes: Record<string, unknown>[], offset: number): Record<string, unknown> =>
    span({ traceId: trace2, spanId: hexId(8), parentSpanId: hexId(8), name, attributes, startMs: now + offset });
  const record2 = tracesData([
    resourceSpans(
      'oi-agent',
      [t2('lookup', [attr('openinference.span.kind', 'TOOL'), attr('tool.name', 'lookup')], 5)],
      'openinference',
    ),
    resourceSpans(
      'traceloop-agent',
      [t2('weather.tool', [attr('traceloop.span.kind', 'tool'), attr('traceloop.entity.name', 'weather')], 6)],
      'traceloop',
    ),
    resourceSpans('iam-helper', [
      t2(
        'assume_role',
        [attr('tripline.privilege.action', 'assume_role'), attr('tripline.privilege.scopes_after', 'reports:read')],
        7,
      ),
    ]),
  ]);

  // The same trace-2 data as OTLP/JSON (`encoding: otlp_json`), with a span of its own.
  const jsonSpanId = hexId(8);
  const record3 = Buffer.from(
    JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'json-agent' } }] },
          scopeSpans: [
            {
              scope: { name: 'json' },
              spans: [
                {
                  traceId: trace2,
                  spanId: jsonSpanId,
                  parentSpanId: hexId(8),
                  name: 'execute_tool send_email',
                  kind: 3,
                  startTimeUnixNano: String(BigInt(now + 8) * 1_000_000n),
                  endTimeUnixNano: String(BigInt(now + 9) * 1_000_000n),
                  attributes: [
                    { key: 'gen_ai.operation.name', value: { stringValue: 'execute_tool' } },
                    { key: 'gen_ai.tool.name', value: { stringValue: 'send_email' } },
                  ],
                },
              ],
            },
          ],
        },
      ],
    }),
  );
  const garbage = Buffer.from('this is not an OTLP record');

  beforeAll(async () => {
    store = await openClickHouseStore({ dataDir, database: 'upstream' });
    await store.migrate();
    const logger = testLogger();
    await ensureTopics(createKafka(settings, logger, { role: 'test' }), settings, logger);
    processor = await startProcessorService(distributedConfig(brokers, dataDir, { CLICKHOUSE_DATABASE: 'upstream' }), {
      kafka: settings,
      store,
      logger,
    });

    const producer = plainKafka(brokers).producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
    });
    await producer.connect();
    try {
      // Garbage first on data_access partition 0, then valid records behind it on the same partition.
      await producer.send({
        topic: settings.topics.data_access,
        acks: -1,
        messages: [{ key: null, value: garbage, partition: 0, headers: { origin: 'test' } }],
      });
      await producer.send({
        topic: settings.topics.data_access,
        acks: -1,
        messages: [{ key: trace1, value: record1, partition: 0 }],
      });
      await producer.send({ topic: settings.topics.tool_call, acks: -1, messages: [{ key: trace1, value: record1 }] });
      await producer.send({
        topic: settings.topics.privilege_change,
        acks: -1,
        messages: [{ key: null, value: record2 }],
      });
      await producer.send({ topic: settings.topics.tool_call, acks: -1, messages: [{ key: null, value: record3 }] });
    } finally {
      await producer.disconnect();
    }
  }, 120_000);

  afterAll(async () => {
    await processor.stop();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('scores the spans of every resource, keyed by trace id or not', async () => {
    // record1 twice (two topics: the replayed spans deduplicate by id) = 3 events + 1 boundary; record2 = 3
    // events; record3 = 1 event.
    await waitFor('the spans to be scored', async () => (await store.counts()).events === 7, 60_000);
    const task = await waitFor('the task of trace 1 to complete', async () => {
      const record = await store.getTask('default', task1);
      return record?.status === 'completed' ? record : undefined;
    });
    expect(task).toMatchObject({ taskType: 'support', agentId: 'py-agent-1' });
    const scored1 = await store.eventsForTask('default', task1);
    expect(scored1.map((entry) => entry.event.kind).sort()).toEqual(['data_access', 'tool_call', 'tool_call']);
    for (const { verdict } of scored1) {
      expect(verdict.decision).toMatch(/^(allow|alert|revoke)$/);
      expect(verdict.score).toBeGreaterThanOrEqual(0);
    }
    expect(scored1.find((entry) => entry.event.tool?.name === 'fetch_url')).toBeDefined();

    // Without a task id the trace is the task.
    const scored2 = await store.eventsForTask('default', trace2);
    expect(scored2.map((entry) => entry.event.kind).sort()).toEqual([
      'privilege_change',
      'tool_call',
      'tool_call',
      'tool_call',
    ]);
    expect(
      scored2
        .map((entry) => entry.event.tool?.name)
        .filter((name) => name !== undefined)
        .sort(),
    ).toEqual(['lookup', 'send_email', 'weather']);
    expect(scored2.some((entry) => entry.event.spanId === jsonSpanId)).toBe(true);
  }, 120_000);

  it('moves the garbage to the dead-letter topic with its reason and source, and commits past it', async () => {
    const [dead] = await readTopic(brokers, settings.topics.deadLetter, 1);
    expect(dead?.value?.equals(garbage)).toBe(true);
    const header = (name: string): string | undefined => dead?.headers?.[name]?.toString();
    expect(header(DEAD_LETTER_HEADERS.reason)).toMatch(/not an OTLP trace record/);
    expect(header(DEAD_LETTER_HEADERS.topic)).toBe(settings.topics.data_access);
    expect(header(DEAD_LETTER_HEADERS.partition)).toBe('0');
    expect(header(DEAD_LETTER_HEADERS.offset)).toBe('0');
    expect(header('origin')).toBe('test');
    expect(processor.source.stats().deadLetters).toBe(1);

    const admin = plainKafka(brokers).admin();
    await admin.connect();
    try {
      await waitFor('every record, garbage included, to be committed', async () => {
        const committed = await admin.fetchOffsets({ groupId: settings.groupId, topics: spanTopics(settings.topics) });
        for (const topic of committed) {
          const high = await admin.fetchTopicOffsets(topic.topic);
          for (const partition of topic.partitions) {
            const end = high.find((entry) => entry.partition === partition.partition)?.high ?? '0';
            if (Number(end) > 0 && partition.offset !== end) return false;
          }
        }
        return true;
      });
    } finally {
      await admin.disconnect();
    }
  }, 120_000);
});
