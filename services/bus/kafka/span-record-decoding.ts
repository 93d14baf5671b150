/**
 * What the processor's source reads from a fetched batch of span records (see source.ts, Records): each record
 * decoded and classified into events and task boundaries, or, when it cannot be, its copy for the dead-letter
 * topic; and the tasks the batch holds.
 */
import type { Buffer } from 'node:buffer';
import type { Batch, IHeaders, KafkaMessage, Message } from 'kafkajs';
import type { AgentEvent } from '../../../schemas/events.ts';
import type { OtlpFormat } from '../../../schemas/otlp.ts';
import { decodeTraceRequest } from '../../otlp/codec.ts';
import { classifyRequest } from '../../core/classify.ts';
import type { ClassifyOptions } from '../../core/classify.ts';
import { messageOf } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { EventBatch } from '../bus.ts';
import { bindBatch, parseBinding } from '../../core/agent-binding.ts';
import { AGENTS_HEADER, TENANT_HEADER } from './span-record-encoding.ts';

export const DEFAULT_TENANT = 'default';

/** Headers a dead-letter record carries besides the original record's own. */
export const DEAD_LETTER_HEADERS = {
  reason: 'tripline-dlq-reason',
  topic: 'tripline-dlq-topic',
  partition: 'tripline-dlq-partition',
  offset: 'tripline-dlq-offset',
} as const;

export interface TaskRef {
  tenant: string;
  taskId: string;
}

/** One partition's records of a fetch, decoded. */
export interface FetchedPart {
  topic: string;
  partition: number;
  firstOffset: string;
  lastOffset: string;
  /** Highest offset handed to the handler from this part (null when the part held none to hand). */
  handledUpTo: bigint | null;
  events: EventBatch;
  deadLetters: { topic: string; messages: Message[] };
  tasks: TaskRef[];
}

export interface DecodeContext {
  /** The highest offset of this partition this process handed to its handler already (those are skipped). */
  handledUpTo: bigint | undefined;
  deadLetterTopic: string;
  stats: { records: number; skippedReplays: number };
  logger: Logger;
  /** How spans are classified (the counterparties' hashing key, whether tool content is stored). */
  classify?: ClassifyOptions | undefined;
}

type Decoded = { ok: true; events: EventBatch } | { ok: false; reason: string };

/** Decodes and classifies one span record (exported for tests). */
export function decodeSpanRecord(
  value: Buffer | null,
  headers: IHeaders | undefined,
  options: ClassifyOptions = {},
): Decoded {
  if (value === null || value.byteLength === 0) return { ok: false, reason: 'empty record' };
  const format: OtlpFormat = value[0] === 0x7b ? 'json' : 'protobuf';
  let tenant = DEFAULT_TENANT;
  const header = headerString(headers, TENANT_HEADER);
  if (header !== undefined && header !== '' && header.length <= 256) tenant = header;
  const agentsHeader = headerString(headers, AGENTS_HEADER);
  const agents = agentsHeader === undefined ? [] : parseBinding(agentsHeader);
  if (agents === undefined) return { ok: false, reason: `an unreadable ${AGENTS_HEADER} header` };
  try {
    const request = decodeTraceRequest(value, format);
    let spans = 0;
    for (const resourceSpans of request.resourceSpans)
      for (const scopeSpans of resourceSpans.scopeSpans) spans += scopeSpans.spans.length;
    if (spans === 0)
      return { ok: false, reason: `no spans in the ${format === 'json' ? 'OTLP/JSON' : 'OTLP protobuf'} record` };
    const classified = bindBatch(classifyRequest(request, tenant, options), agents);
    return {
      ok: true,
      events: { events: classified.events, boundaries: classified.boundaries, usages: classified.usages },
    };
  } catch (error) {
    return { ok: false, reason: `not an OTLP trace record (${format}): ${messageOf(error)}` };
  }
}

function headerString(headers: IHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  const first = Array.isArray(value) ? value[0] : value;
  if (first === undefined) return undefined;
  return typeof first === 'string' ? first : first.toString('utf8');
}

/** Decodes the records of a fetched batch that were not handed over before. */
export function decodeFetchedBatch(batch: Batch, context: DecodeContext): FetchedPart {
  const { handledUpTo: already, stats, logger } = context;
  const part: FetchedPart = {
    topic: batch.topic,
    partition: batch.partition,
    firstOffset: batch.messages[0]?.offset ?? batch.lastOffset(),
    lastOffset: batch.lastOffset(),
    handledUpTo: null,
    events: { events: [], boundaries: [], usages: [] },
    deadLetters: { topic: context.deadLetterTopic, messages: [] },
    tasks: [],
  };
  const tasks = new Map<string, TaskRef>();
  for (const message of batch.messages) {
    const offset = BigInt(message.offset);
    if (already !== undefined && offset <= already) {
      stats.skippedReplays += 1;
      continue;
    }
    stats.records += 1;
    part.handledUpTo = offset;
    const decoded = decodeSpanRecord(message.value, message.headers, context.classify);
    if (!decoded.ok) {
      part.deadLetters.messages.push(deadLetterOf(message, decoded.reason, batch));
      logger.warn(
        { topic: batch.topic, partition: batch.partition, offset: message.offset, reason: decoded.reason },
        'moving an undecodable record to the dead-letter topic',
      );
      continue;
    }
    // A record's events mostly share their task: its key is made once per run of them, not once per event.
    let last: AgentEvent | undefined;
    for (const event of decoded.events.events) {
      part.events.events.push(event);
      if (last?.tenant === event.tenant && last.taskId === event.taskId) continue;
      last = event;
      tasks.set(`${event.tenant}\u0000${event.taskId}`, { tenant: event.tenant, taskId: event.taskId });
    }
    for (const boundary of decoded.events.boundaries) part.events.boundaries.push(boundary);
    for (const usage of decoded.events.usages ?? []) part.events.usages?.push(usage);
  }
  part.tasks = [...tasks.values()];
  return part;
}

function deadLetterOf(message: KafkaMessage, reason: string, batch: Batch): Message {
  const headers: IHeaders = { ...message.headers };
  headers[DEAD_LETTER_HEADERS.reason] = reason.slice(0, 1000);
  headers[DEAD_LETTER_HEADERS.topic] = batch.topic;
  headers[DEAD_LETTER_HEADERS.partition] = String(batch.partition);
  headers[DEAD_LETTER_HEADERS.offset] = message.offset;
  return { key: message.key, value: message.value, headers };
}
