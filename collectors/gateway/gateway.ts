/**
 * The gateway: OTLP in, classified events onto the bus. It answers the agent only after the bus accepted
 * the batch, so a 200 means the spans will be scored.
 */
import type { EventPublisher } from '../../services/bus/bus.ts';
import { TENANT_HEADER } from '../../services/bus/kafka-publisher.ts';
import type { SpanRecord } from '../../services/bus/kafka-publisher.ts';
import { routeTraceRequest } from './otlp-route.ts';
import type { RouteTopics } from './otlp-route.ts';
import { classifyRequest } from '../../services/core/classify.ts';
import type { OtlpTraceRequest } from '../../schemas/otlp.ts';

export interface GatewayStats {
  requests: number;
  spans: number;
  events: number;
  taskBoundaries: number;
  /** Spans that are none of the three kinds: counted and dropped. */
  dropped: number;
}

/** A publisher that takes ready-made span records (the Kafka publisher). */
export interface RecordPublisher {
  publishRecords(records: readonly SpanRecord[]): Promise<void>;
}

export interface Gateway {
  ingest(request: OtlpTraceRequest, context: { tenant: string }): Promise<{ rejectedSpans: number }>;
  /**
   * The fast path of the Kafka gateway: a protobuf request routed from its bytes to the span topics
   * (collectors/gateway/otlp-route.ts), no span decoded into objects. Only when created with `records`.
   */
  ingestProtobuf?(body: Uint8Array, context: { tenant: string }): Promise<{ rejectedSpans: number; spans: number }>;
  stats(): Readonly<GatewayStats>;
}

export function createGateway(publisher: EventPublisher, records?: { publisher: RecordPublisher; topics: RouteTopics; maxRecordBytes: number }): Gateway {
  const stats: GatewayStats = { requests: 0, spans: 0, events: 0, taskBoundaries: 0, dropped: 0 };
  const fast =
    records === undefined
      ? {}
      : {
          async ingestProtobuf(body: Uint8Array, context: { tenant: string }): Promise<{ rejectedSpans: number; spans: number }> {
            const routed = routeTraceRequest(body, records.topics, records.maxRecordBytes);
            if (routed.records.length > 0) {
              const headers = { [TENANT_HEADER]: context.tenant };
              await records.publisher.publishRecords(routed.records.map((record) => ({ ...record, headers })));
            }
            stats.requests += 1;
            stats.events += routed.events;
            stats.taskBoundaries += routed.boundaries;
            stats.dropped += routed.dropped;
            const spans = routed.events + routed.boundaries + routed.dropped;
            stats.spans += spans;
            return { rejectedSpans: 0, spans };
          },
        };
  return {
    ...fast,
    async ingest(request, context) {
      const batch = classifyRequest(request, context.tenant);
      await publisher.publish(batch, request);
      stats.requests += 1;
      stats.events += batch.events.length;
      stats.taskBoundaries += batch.boundaries.length;
      stats.dropped += batch.dropped;
      stats.spans += batch.events.length + batch.boundaries.length + batch.dropped;
      return { rejectedSpans: 0 };
    },
    stats: () => stats,
  };
}
