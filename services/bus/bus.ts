/**
 * The bus port between the gateway and the processors: the in-process queue in embedded mode, Kafka in
 * distributed mode. Both carry the same classified batches.
 */
import type { ClassifiedBatch } from '../core/classify.ts';
import type { OtlpTraceRequest } from '../../schemas/otlp.ts';

/** `usages`: the model calls (absent: none), folded into their tasks' spend (services/core/spend/). */
export type EventBatch = Pick<ClassifiedBatch, 'events' | 'boundaries'> & Partial<Pick<ClassifiedBatch, 'usages'>>;

/** The gateway's side. */
export interface EventPublisher {
  /**
   * Resolves once the batch is accepted durably enough to answer the agent 200 (enqueued in process, or
   * acknowledged by Kafka). Rejects with TriplineError PIPELINE_BUSY (→ 429) or PIPELINE_UNAVAILABLE (→ 503).
   * `request` is the decoded OTLP request the batch came from: the Kafka publisher forwards its spans as OTLP.
   */
  publish(batch: ClassifiedBatch, request: OtlpTraceRequest): Promise<void>;
  close(): Promise<void>;
}

/** The processor's side: `handler` resolves once the batch's results are durable; only then is it acknowledged. */
export interface EventSource {
  start(handler: (batch: EventBatch) => Promise<void>): Promise<void>;
  /** Stops taking new batches and waits for the batch in hand. Idempotent. */
  stop(): Promise<void>;
}
