/**
 * The span records the gateway writes to Kafka (pure): a classified OTLP request's spans grouped by (kind, trace)
 * into OTLP protobuf `ExportTraceServiceRequest` records, each inside the same resource and scope wrappers as the
 * original, split when larger than the record limit. See publisher.ts for where they go and how.
 */
import type { OtlpResourceSpans, OtlpScopeSpans, OtlpSpan, OtlpTraceRequest } from '../../../schemas/otlp.ts';
import { encodeTraceRequest } from '../../otlp/codec.ts';
import type { ClassifiedBatch } from '../../core/classify.ts';
import { TriplineError } from '../../shared/errors.ts';
import type { KafkaTopics } from './config.ts';

/** Record header carrying the tenant of the spans (set by the gateway from the ingest credential). */
export const TENANT_HEADER = 'tripline-tenant';
/**
 * Record header carrying the agent binding of the ingest credential (JSON array of patterns; absent for a
 * fleet-wide token): the processor holds the spans' agents to it (services/core/agent-binding.ts).
 */
export const AGENTS_HEADER = 'tripline-agents';

/** The headers of the records of one request: its tenant and, for a bound token, its agent binding. */
export function recordHeaders(tenant: string, agents: readonly string[] | undefined): Record<string, string> {
  return agents === undefined || agents.length === 0
    ? { [TENANT_HEADER]: tenant }
    : { [TENANT_HEADER]: tenant, [AGENTS_HEADER]: JSON.stringify(agents) };
}

export interface SpanRecord {
  topic: string;
  /** Task id. */
  key: string;
  value: Uint8Array;
  headers: Record<string, string>;
  /** Spans in the record. */
  spans: number;
}

interface Entry {
  resourceSpans: OtlpResourceSpans;
  scopeSpans: OtlpScopeSpans;
  span: OtlpSpan;
}

/**
 * The records for one classified request (pure; exported for tests and the benchmark).
 *
 * @throws TriplineError OTLP_PAYLOAD_TOO_LARGE when a single span encodes larger than `maxRecordBytes`.
 */
export function buildSpanRecords(
  batch: Pick<ClassifiedBatch, 'events' | 'boundaries' | 'agents'> & Partial<Pick<ClassifiedBatch, 'usages'>>,
  request: OtlpTraceRequest,
  topics: KafkaTopics,
  maxRecordBytes: number,
): SpanRecord[] {
  const tenant = batch.events[0]?.tenant ?? batch.boundaries[0]?.tenant ?? batch.usages?.[0]?.tenant;
  if (tenant === undefined) return [];
  // Keyed by trace: every span of a trace reaches one processor, which resolves the trace's task (a task may be
  // declared by a span that arrives after the others).
  const routes = new Map<string, { topic: string; key: string }>();
  for (const event of batch.events)
    routes.set(event.traceId + event.spanId, { topic: topics[event.kind], key: event.traceId });
  for (const boundary of batch.boundaries)
    routes.set(boundary.traceId + boundary.spanId, { topic: topics.tool_call, key: boundary.traceId });
  // Model calls travel with the task boundaries (the processor classifies them again).
  for (const usage of batch.usages ?? [])
    routes.set(usage.traceId + usage.spanId, { topic: topics.tool_call, key: usage.traceId });

  const groups = new Map<string, { topic: string; key: string; entries: Entry[] }>();
  for (const resourceSpans of request.resourceSpans) {
    for (const scopeSpans of resourceSpans.scopeSpans) {
      for (const span of scopeSpans.spans) {
        const route = routes.get(span.traceId + span.spanId);
        if (route === undefined) continue;
        const groupKey = `${route.topic}\u0000${route.key}`;
        let group = groups.get(groupKey);
        if (group === undefined) {
          group = { ...route, entries: [] };
          groups.set(groupKey, group);
        }
        group.entries.push({ resourceSpans, scopeSpans, span });
      }
    }
  }

  const records: SpanRecord[] = [];
  const headers = recordHeaders(tenant, batch.agents);
  for (const group of groups.values()) {
    for (const { value, spans } of encodeSplit(group.entries, maxRecordBytes)) {
      records.push({ topic: group.topic, key: group.key, value, headers, spans });
    }
  }
  return records;
}

/** Encodes entries as one request, halving until each part fits `maxBytes`. */
function encodeSplit(entries: readonly Entry[], maxBytes: number): { value: Uint8Array; spans: number }[] {
  const value = encodeTraceRequest(wrap(entries));
  if (value.byteLength <= maxBytes) return [{ value, spans: entries.length }];
  if (entries.length === 1) {
    const span = entries[0]?.span;
    throw new TriplineError(
      'OTLP_PAYLOAD_TOO_LARGE',
      `span ${span?.spanId ?? '?'} (${span?.name ?? '?'}) encodes to ${value.byteLength} bytes, more than the Kafka record limit of ${maxBytes} bytes (TRIPLINE_KAFKA_MAX_RECORD_BYTES)`,
    );
  }
  const half = Math.ceil(entries.length / 2);
  return [...encodeSplit(entries.slice(0, half), maxBytes), ...encodeSplit(entries.slice(half), maxBytes)];
}

/** Rebuilds the resource and scope wrappers around a run of spans (consecutive spans share wrappers). */
function wrap(entries: readonly Entry[]): OtlpTraceRequest {
  const resourceSpans: OtlpResourceSpans[] = [];
  let lastResource: OtlpResourceSpans | undefined;
  let lastScope: OtlpScopeSpans | undefined;
  let currentResource: OtlpResourceSpans | undefined;
  let currentScope: OtlpScopeSpans | undefined;
  for (const entry of entries) {
    if (entry.resourceSpans !== lastResource || currentResource === undefined) {
      lastResource = entry.resourceSpans;
      lastScope = undefined;
      currentResource = { scopeSpans: [] };
      if (entry.resourceSpans.resource !== undefined) currentResource.resource = entry.resourceSpans.resource;
      if (entry.resourceSpans.schemaUrl !== undefined) currentResource.schemaUrl = entry.resourceSpans.schemaUrl;
      resourceSpans.push(currentResource);
    }
    if (entry.scopeSpans !== lastScope || currentScope === undefined) {
      lastScope = entry.scopeSpans;
      currentScope = { spans: [] };
      if (entry.scopeSpans.scope !== undefined) currentScope.scope = entry.scopeSpans.scope;
      if (entry.scopeSpans.schemaUrl !== undefined) currentScope.schemaUrl = entry.scopeSpans.schemaUrl;
      currentResource.scopeSpans.push(currentScope);
    }
    currentScope.spans.push(entry.span);
  }
  return { resourceSpans };
}
