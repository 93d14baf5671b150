/**
 * Shared pieces of the Kafka integration tests and the Kafka benchmark: fresh topic names per test, a
 * distributed-mode config on free ports, synthetic OTLP requests, and reading a topic back.
 */
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import type { KafkaMessage } from 'kafkajs';
import type { OtlpKeyValue, OtlpSpan, OtlpTraceRequest } from '../../../schemas/otlp.ts';
import { loadKafkaSettings } from '../../../services/bus/kafka/config.ts';
import type { KafkaSettings } from '../../../services/bus/kafka/config.ts';
import { loadConfig } from '../../../services/app/config.ts';
import type { LogLevel, TriplineConfig } from '../../../services/app/config.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import type { Logger } from '../../../services/shared/logger.ts';
import { TEST_AUTH_ENV } from '../../helpers/auth.ts';

export function runId(): string {
  return randomBytes(4).toString('hex');
}

/** Kafka settings with topic names and a group id of their own (so tests never see each other's records). */
export function freshKafkaSettings(
  brokers: string[],
  options: { partitions?: number; env?: Record<string, string> } = {},
): KafkaSettings {
  const run = runId();
  const env: Record<string, string> = {
    TRIPLINE_TOPIC_TOOL_CALLS: `test-${run}.tool_calls`,
    TRIPLINE_TOPIC_DATA_ACCESS: `test-${run}.data_access`,
    TRIPLINE_TOPIC_PRIVILEGE_CHANGES: `test-${run}.privilege_changes`,
    TRIPLINE_TOPIC_ALERTS: `test-${run}.alerts`,
    TRIPLINE_TOPIC_REVOCATIONS: `test-${run}.revocations`,
    TRIPLINE_TOPIC_DEAD_LETTER: `test-${run}.dead_letter`,
    // Fast failure detection, so a test that loses a processor does not wait 30 s.
    TRIPLINE_KAFKA_SESSION_TIMEOUT_MS: '6000',
    TRIPLINE_KAFKA_HEARTBEAT_INTERVAL_MS: '500',
    TRIPLINE_KAFKA_REBALANCE_TIMEOUT_MS: '15000',
    ...options.env,
  };
  return loadKafkaSettings(
    { brokers, clientId: `test-${run}`, partitions: options.partitions ?? 6, groupId: `test-${run}-processors` },
    env,
  );
}

/** A distributed-mode config on 127.0.0.1 and free ports. */
export function distributedConfig(
  brokers: string[],
  dataDir: string,
  env: Record<string, string> = {},
): Readonly<TriplineConfig> {
  return loadConfig({
    KAFKA_BROKERS: brokers.join(','),
    TRIPLINE_OTLP_HOST: '127.0.0.1',
    TRIPLINE_OTLP_PORT: '0',
    TRIPLINE_API_HOST: '127.0.0.1',
    TRIPLINE_API_PORT: '0',
    TRIPLINE_DATA_DIR: dataDir,
    LOG_LEVEL: testLogLevel(),
    ...TEST_AUTH_ENV,
    ...env,
  });
}

export function testLogLevel(): LogLevel {
  const level = process.env.TEST_LOG_LEVEL;
  return level === 'debug' || level === 'info' || level === 'warn' || level === 'error' || level === 'trace'
    ? level
    : 'error';
}

export function testLogger(): Logger {
  return createLogger(testLogLevel(), 'tripline-test');
}

export function plainKafka(brokers: string[]): Kafka {
  return new Kafka({ clientId: `tripline-test-${runId()}`, brokers, logLevel: logLevel.NOTHING });
}

/** Reads a topic from the beginning until `count` records arrived (or fails after `timeoutMs`). */
export async function readTopic(
  brokers: string[],
  topic: string,
  count: number,
  timeoutMs = 30_000,
): Promise<KafkaMessage[]> {
  const consumer = plainKafka(brokers).consumer({ groupId: `tripline-test-reader-${runId()}`, maxWaitTimeInMs: 200 });
  const messages: KafkaMessage[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`read ${messages.length} of ${count} records from ${topic} in ${timeoutMs} ms`)),
        timeoutMs,
      );
      consumer
        .run({
          eachMessage: ({ message }) => {
            messages.push(message);
            if (messages.length >= count) {
              clearTimeout(timer);
              resolve();
            }
            return Promise.resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const str = (key: string, value: string): OtlpKeyValue => ({ key, value: { stringValue: value } });
const int = (key: string, value: number): OtlpKeyValue => ({ key, value: { intValue: value } });

export interface SyntheticRequestOptions {
  taskId: string;
  taskType?: string;
  agentId?: string;
  /** Spans per request (a third of each kind). @default 100 */
  spans?: number;
  /** Start time of the first span (epoch ms). @default now */
  startMs?: number;
  /** Add a task-boundary (root) span at the end. */
  withBoundary?: boolean;
  /** Realistic span sizes (~450 bytes of protobuf each: call ids, arguments, URLs, user ids), as agents send. */
  rich?: boolean;
  /** The trace (32 hex): one task's requests share it, as one agent run exported in several requests does. @default random */
  traceId?: string;
}

/** One OTLP request of an agent: tool calls, data accesses and privilege changes of one task. */
export function syntheticRequest(options: SyntheticRequestOptions): OtlpTraceRequest {
  const traceId = options.traceId ?? hex(16);
  const rootId = hex(8);
  const start = BigInt(options.startMs ?? Date.now()) * 1_000_000n;
  const count = options.spans ?? 100;
  const spans: OtlpSpan[] = [];
  for (let i = 0; i < count; i += 1) {
    const kind = i % 3;
    const attributes =
      kind === 0
        ? [
            str('gen_ai.operation.name', 'execute_tool'),
            str('gen_ai.tool.name', `tool_${i % 7}`),
            str('tripline.tool.side_effect', 'read'),
          ]
        : kind === 1
          ? [
              str('db.system.name', 'postgresql'),
              str('db.namespace', 'crm'),
              str('db.collection.name', 'customers'),
              str('db.operation.name', 'SELECT'),
              int('db.response.returned_rows', 10),
            ]
          : [
              str('tripline.privilege.action', 'token_issue'),
              str('tripline.privilege.scopes_before', 'tickets:read'),
              str('tripline.privilege.scopes_after', 'tickets:read'),
            ];
    if (options.rich === true) {
      attributes.push(
        str('gen_ai.tool.call.id', `call_${hex(12)}`),
        str(
          'gen_ai.tool.call.arguments',
          JSON.stringify({ query: `customer ${hex(4)} open tickets`, limit: 20, include: ['history', 'notes'] }),
        ),
        str('enduser.id', `user-${hex(3)}`),
        str('server.address', 'crm.internal.example.com'),
        str('url.full', `https://crm.internal.example.com/api/v2/customers/${hex(4)}/tickets?state=open`),
        str('code.function', 'agent.tools.dispatch'),
        int('tripline.data.bytes', 2048 + i),
        str('tripline.data.classification', 'internal'),
      );
    }
    const t = start + BigInt(i) * 1_000_000n;
    spans.push({
      traceId,
      spanId: hex(8),
      parentSpanId: rootId,
      name: kind === 0 ? `execute_tool tool_${i % 7}` : kind === 1 ? 'SELECT crm.customers' : 'token_issue',
      kind: 1,
      startTimeUnixNano: t.toString(),
      endTimeUnixNano: (t + 500_000n).toString(),
      attributes,
      events: [],
      links: [],
      status: { code: 1 },
    });
  }
  if (options.withBoundary === true) {
    spans.push({
      traceId,
      spanId: rootId,
      parentSpanId: '',
      name: `task ${options.taskType ?? 'bench_task'}`,
      kind: 1,
      startTimeUnixNano: start.toString(),
      endTimeUnixNano: (start + BigInt(count + 1) * 1_000_000n).toString(),
      attributes: [str('tripline.task.root', 'true')],
      events: [],
      links: [],
    });
  }
  return {
    resourceSpans: [
      {
        resource: {
          attributes: [
            str('service.name', options.agentId ?? 'bench-agent'),
            str('gen_ai.agent.id', options.agentId ?? 'bench-agent'),
            str('tripline.task.id', options.taskId),
            str('tripline.task.type', options.taskType ?? 'bench_task'),
          ],
        },
        scopeSpans: [{ scope: { name: 'tripline-agent', version: '0.1.0', attributes: [] }, spans }],
      },
    ],
  };
}
