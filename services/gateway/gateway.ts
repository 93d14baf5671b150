/**
 * The gateway: OTLP in, classified events onto the bus. It answers the agent only after the bus accepted
 * the batch, so a 200 means the spans will be scored.
 */
import v8 from 'node:v8';
import type { EventPublisher } from '../bus/bus.ts';
import { recordHeaders } from '../bus/kafka/publisher.ts';
import type { SpanRecord } from '../bus/kafka/publisher.ts';
import { routeTraceRequest } from '../otlp/route.ts';
import type { RouteTopics } from '../otlp/route.ts';
import { classifyRequest } from '../core/classify.ts';
import { bindBatch } from '../core/agent-binding.ts';
import type { AgentBinding } from '../core/agent-binding.ts';
import type { ClassifyOptions } from '../core/classify.ts';
import type { OtlpTraceRequest } from '../../schemas/otlp.ts';

export interface GatewayStats {
  requests: number;
  spans: number;
  events: number;
  taskBoundaries: number;
  /** Model-call spans that are no task boundary: forwarded for their tokens (services/core/model-usage.ts). */
  modelCalls: number;
  /** Spans that are none of the three kinds, no boundary and no model call: counted and dropped. */
  dropped: number;
}

/** A publisher that takes ready-made span records (the Kafka publisher). */
export interface RecordPublisher {
  publishRecords(records: readonly SpanRecord[]): Promise<void>;
}

/** Who sent a request: its token's tenant and the agents it may speak for (absent or empty: any of its tenant). */
export interface IngestContext {
  tenant: string;
  agents?: AgentBinding;
}

export interface Gateway {
  ingest(request: OtlpTraceRequest, context: IngestContext): Promise<{ rejectedSpans: number }>;
  /**
   * The fast path of the Kafka gateway: a protobuf request routed from its bytes to the span topics
   * (services/otlp/route.ts), no span decoded into objects. Only when created with `records`.
   */
  ingestProtobuf?(body: Uint8Array, context: IngestContext): Promise<{ rejectedSpans: number; spans: number }>;
  stats(): Readonly<GatewayStats>;
}

/**
 * Old-generation growth factor of a process that runs the Kafka gateway: 4 (V8's `--heap-growing-percent=300`)
 * instead of V8's own ~1.1–1.5 for a small heap. Each OTLP request allocates a few hundred KB that dies young
 * (request body, records, kafkajs' encoders). With a ~20 MB live heap, V8 kept its old-generation limit within
 * about one young generation of the live size and so ran a full mark-compact every ~5 MB allocated: 12 in 8 s at
 * 2,000 spans/s, ~40% of the gateway's CPU in its profile (test/bench/gateway-vs-collector.bench.ts,
 * BENCH_PROFILE_RATES=2000). With factor 4 they are ~4× rarer and the gateway's peak RSS is ~50 MB higher; V8's
 * maximum heap size still applies. V8 reads the flag whenever it sets a new limit, so setting it at run time works
 * from the next collection. It applies to the whole process (also the processor and API when TRIPLINE_ROLES
 * runs them beside the gateway).
 */
const HEAP_GROWING_PERCENT = 300;

let heapTuned = false;

/** Applies HEAP_GROWING_PERCENT to this process (once; idempotent). */
export function tuneHeapForIngest(): void {
  if (heapTuned) return;
  heapTuned = true;
  v8.setFlagsFromString(`--heap-growing-percent=${String(HEAP_GROWING_PERCENT)}`);
}

/**
 * `classify`: the counterparties' hashing key and whether tool content is stored (TRIPLINE_COUNTERPARTY_KEY,
 * TRIPLINE_STORE_TOOL_CONTENT). With `records`, the processors classify the records again with theirs.
 */
export function createGateway(
  publisher: EventPublisher,
  records?: { publisher: RecordPublisher; topics: RouteTopics; maxRecordBytes: number },
  classify: ClassifyOptions = {},
): Gateway {
  // The Kafka gateway has its own process (services/app/gateway-main.ts); the embedded one shares it with the processor.
  if (records !== undefined) tuneHeapForIngest();
  const stats: GatewayStats = { requests: 0, spans: 0, events: 0, taskBoundaries: 0, modelCalls: 0, dropped: 0 };
  const fast =
    records === undefined
      ? {}
      : {
          async ingestProtobuf(
            body: Uint8Array,
            context: IngestContext,
          ): Promise<{ rejectedSpans: number; spans: number }> {
            const routed = routeTraceRequest(body, records.topics, records.maxRecordBytes);
            if (routed.records.length > 0) {
              // The processors classify the records again and hold their agents to the token's binding.
              const headers = recordHeaders(context.tenant, context.agents);
              await records.publisher.publishRecords(routed.records.map((record) => ({ ...record, headers })));
            }
            stats.requests += 1;
            stats.events += routed.events;
            stats.taskBoundaries += routed.boundaries;
            stats.dropped += routed.dropped;
            stats.modelCalls += routed.usageOnly;
            const spans = routed.events + routed.boundaries + routed.usageOnly + routed.dropped;
            stats.spans += spans;
            return { rejectedSpans: 0, spans };
          },
        };
  return {
    ...fast,
    async ingest(request, context) {
      const agents = context.agents ?? [];
      const batch = { ...bindBatch(classifyRequest(request, context.tenant, classify), agents), agents };
      await publisher.publish(batch, request);
      stats.requests += 1;
      stats.events += batch.events.length;
      stats.taskBoundaries += batch.boundaries.length;
      stats.dropped += batch.dropped;
      stats.modelCalls += batch.usageOnly;
      stats.spans += batch.events.length + batch.boundaries.length + batch.usageOnly + batch.dropped;
      return { rejectedSpans: 0 };
    },
    stats: () => stats,
  };
}
