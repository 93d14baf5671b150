/**
 * The gateway: OTLP in, classified events onto the bus. It answers the agent only after the bus accepted
 * the batch, so a 200 means the spans will be scored.
 */
import type { EventPublisher } from '../../services/bus/bus.ts';
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

export interface Gateway {
  ingest(request: OtlpTraceRequest, context: { tenant: string }): Promise<{ rejectedSpans: number }>;
  stats(): Readonly<GatewayStats>;
}

export function createGateway(publisher: EventPublisher): Gateway {
  const stats: GatewayStats = { requests: 0, spans: 0, events: 0, taskBoundaries: 0, dropped: 0 };
  return {
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
