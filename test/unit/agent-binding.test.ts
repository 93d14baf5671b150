/**
 * Agent bindings (services/core/agent-binding.ts): which agent ids a bound agent token speaks for, and that both
 * places spans are classified hold them to it — the gateway (embedded mode, OTLP/JSON in distributed mode) and the
 * Kafka processor, which reads the binding from the record the gateway wrote (protobuf fast path and JSON path).
 */
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import type { OtlpTraceRequest } from '../../schemas/otlp.ts';
import type { AgentEvent } from '../../schemas/events.ts';
import { bindBatch, identityOf, parseBinding, speaksFor } from '../../services/core/agent-binding.ts';
import { classifyRequest } from '../../services/core/classify.ts';
import type { ClassifiedBatch } from '../../services/core/classify.ts';
import { createGateway } from '../../services/gateway/gateway.ts';
import type { SpanRecord } from '../../services/bus/kafka/publisher.ts';
import { decodeSpanRecord } from '../../services/bus/kafka/span-record-decoding.ts';
import { AGENTS_HEADER, TENANT_HEADER, buildSpanRecords } from '../../services/bus/kafka/span-record-encoding.ts';
import { encodeTraceRequest } from '../../services/otlp/codec.ts';

const TOPICS = {
  tool_call: 't.tool',
  data_access: 't.data',
  privilege_change: 't.priv',
  alerts: 't.alerts',
  revocations: 't.revocations',
  deadLetter: 't.dlq',
} as const;

/** One tool call claiming `agentId` (or no agent, only a service name). */
function request(agentId: string | undefined): OtlpTraceRequest {
  return {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] },
        scopeSpans: [
          {
            spans: [
              {
                traceId: '0af7651916cd43dd8448eb211c80319c',
                spanId: 'b7ad6b7169203331',
                parentSpanId: '00f067aa0ba902b7',
                name: 'execute_tool get_order',
                kind: 1,
                startTimeUnixNano: '1795900000000000000',
                endTimeUnixNano: '1795900000100000000',
                attributes: [
                  { key: 'gen_ai.operation.name', value: { stringValue: 'execute_tool' } },
                  { key: 'gen_ai.tool.name', value: { stringValue: 'get_order' } },
                  { key: 'tripline.task.id', value: { stringValue: 'task-1' } },
                  ...(agentId === undefined ? [] : [{ key: 'gen_ai.agent.id', value: { stringValue: agentId } }]),
                ],
                events: [],
                links: [],
              },
            ],
          },
        ],
      },
    ],
  };
}

const agentOf = (event: AgentEvent | undefined): unknown => ({
  agentId: event?.agentId,
  claimed: event?.claims?.agentId,
  refused: event?.claims?.refusedAgentId,
});

describe('agent bindings', () => {
  it('speak for exact ids and prefixes; the empty binding for every agent', () => {
    expect(speaksFor([], 'anyone')).toBe(true);
    expect(speaksFor(['billing'], 'billing')).toBe(true);
    expect(speaksFor(['billing'], 'billing-2')).toBe(false);
    expect(speaksFor(['fleet-a/*'], 'fleet-a/7')).toBe(true);
    expect(speaksFor(['fleet-a/*'], 'fleet-b/7')).toBe(false);
    expect(identityOf(['fleet-a/*', 'x'])).toBe('fleet-a/');
    expect(identityOf([])).toBeUndefined();
    expect(parseBinding('["a","b*"]')).toEqual(['a', 'b*']);
    expect(parseBinding('["a*b"]')).toBeUndefined();
    expect(parseBinding('{')).toBeUndefined();
  });

  it('put a span claiming another agent under the token’s identity and keep the refused claim', () => {
    const batch = classifyRequest(request('victim'), 'default');
    const bound = bindBatch(batch, ['attacker']);
    expect(agentOf(bound.events[0])).toEqual({ agentId: 'attacker', claimed: 'attacker', refused: 'victim' });
    // Its own agent, or a fleet-wide token: unchanged.
    expect(bindBatch(classifyRequest(request('attacker'), 'default'), ['attacker']).events[0]?.claims).toEqual({
      taskId: 'task-1',
      agentId: 'attacker',
    });
    expect(bindBatch(batch, [])).toBe(batch);
    // No claim at all: the stand-in (service.name) is not the token's to use either, but nothing was claimed.
    expect(agentOf(bindBatch(classifyRequest(request(undefined), 'default'), ['attacker']).events[0])).toEqual({
      agentId: 'attacker',
      claimed: undefined,
      refused: undefined,
    });
  });

  it('reach the gateway and, through the records it writes, the Kafka processor', async () => {
    const published: ClassifiedBatch[] = [];
    const records: SpanRecord[] = [];
    const gateway = createGateway(
      {
        publish: (batch: ClassifiedBatch) => {
          published.push(batch);
          return Promise.resolve();
        },
        close: () => Promise.resolve(),
      },
      {
        publisher: {
          publishRecords: (written) => {
            records.push(...written);
            return Promise.resolve();
          },
        },
        topics: TOPICS,
        maxRecordBytes: 1_000_000,
      },
    );
    // OTLP/JSON (and embedded mode): bound at the gateway, and the binding goes with the batch to its records.
    await gateway.ingest(request('victim'), { tenant: 'acme', agents: ['attacker'] });
    expect(agentOf(published[0]?.events[0])).toEqual({ agentId: 'attacker', claimed: 'attacker', refused: 'victim' });
    const jsonRecords = buildSpanRecords(published[0] as ClassifiedBatch, request('victim'), TOPICS, 1_000_000);
    expect(jsonRecords[0]?.headers).toEqual({ [TENANT_HEADER]: 'acme', [AGENTS_HEADER]: '["attacker"]' });

    // Protobuf fast path: bytes routed as they are; the processor binds them from the header.
    await gateway.ingestProtobuf?.(encodeTraceRequest(request('victim')), { tenant: 'acme', agents: ['attacker'] });
    for (const record of [records[0], jsonRecords[0]]) {
      expect(record?.headers).toEqual({ [TENANT_HEADER]: 'acme', [AGENTS_HEADER]: '["attacker"]' });
      const decoded = decodeSpanRecord(Buffer.from(record?.value ?? []), record?.headers);
      expect(decoded.ok).toBe(true);
      const event = decoded.ok ? decoded.events.events[0] : undefined;
      expect(agentOf(event)).toEqual({ agentId: 'attacker', claimed: 'attacker', refused: 'victim' });
    }
    // A fleet-wide token's records carry no binding; a record with an unreadable one is dead-lettered.
    await gateway.ingestProtobuf?.(encodeTraceRequest(request('victim')), { tenant: 'acme', agents: [] });
    expect(records[1]?.headers).toEqual({ [TENANT_HEADER]: 'acme' });
    const unreadable = decodeSpanRecord(Buffer.from(encodeTraceRequest(request('victim'))), {
      [TENANT_HEADER]: 'acme',
      [AGENTS_HEADER]: 'not json',
    });
    expect(unreadable).toEqual({ ok: false, reason: `an unreadable ${AGENTS_HEADER} header` });
  });
});
