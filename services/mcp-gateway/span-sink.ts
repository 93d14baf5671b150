/**
 * Where the gateway's spans go: into Tripline's ingest the way other spans arrive. Embedded: the in-process
 * gateway's `ingest` (classification, bus, processor). Distributed: OTLP/JSON to the OTLP receiver with an agent
 * token, in small batches. Either way the MCP call never waits for it; a failure is logged, not the client's.
 */
import type { OtlpSpan, OtlpTraceRequest } from '../../schemas/otlp.ts';
import { messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { traceRequest } from './spans.ts';

export interface SpanSink {
  emit(tenant: string, span: OtlpSpan): void;
  /** Sends what is buffered and waits for what is in flight. */
  flush(): Promise<void>;
}

/** The embedded mode: straight into the in-process gateway. */
export function ingestSink(
  ingest: (request: OtlpTraceRequest, context: { tenant: string }) => Promise<unknown>,
  logger: Logger,
): SpanSink {
  const inFlight = new Set<Promise<unknown>>();
  return {
    emit(tenant, span) {
      const sent = ingest(traceRequest([span]), { tenant }).catch((error: unknown) =>
        logger.error({ err: messageOf(error), span: span.name }, 'the MCP gateway could not ingest a span'),
      );
      inFlight.add(sent);
      void sent.finally(() => inFlight.delete(sent));
    },
    async flush() {
      await Promise.all(inFlight);
    },
  };
}

export interface OtlpSinkOptions {
  otlpUrl: string;
  token: string;
  logger: Logger;
  /** Longest a span waits in the buffer. @default 100 */
  intervalMs?: number;
  /** Spans per request. @default 256 */
  maxBatch?: number;
  /** Spans held while the receiver is unreachable; past it the oldest are dropped (and counted in the log). */
  maxBuffered?: number;
}

/**
 * The distributed mode: OTLP/JSON POSTs to `<otlpUrl>/v1/traces`. The receiver takes the tenant from the agent
 * token; the calls of another tenant's task never reach here (the API refuses its token to this tenant).
 */
export function otlpSink(options: OtlpSinkOptions): SpanSink {
  const intervalMs = options.intervalMs ?? 100;
  const maxBatch = options.maxBatch ?? 256;
  const maxBuffered = options.maxBuffered ?? 10_000;
  let buffer: OtlpSpan[] = [];
  let timer: NodeJS.Timeout | undefined;
  let sending: Promise<void> = Promise.resolve();

  async function post(spans: OtlpSpan[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await fetch(`${options.otlpUrl}/v1/traces`, {
          method: 'POST',
          headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/json' },
          body: JSON.stringify(traceRequest(spans)),
          signal: AbortSignal.timeout(10_000),
        });
        await response.arrayBuffer();
        if (response.ok) return;
        if (response.status < 500 && response.status !== 429)
          throw new Error(`the OTLP receiver answered ${String(response.status)}`);
        if (attempt >= 3)
          throw new Error(`the OTLP receiver answered ${String(response.status)} ${String(attempt)} times`);
      } catch (error) {
        if (attempt >= 3 || (error instanceof Error && error.message.startsWith('the OTLP receiver answered 4')))
          throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }

  function send(): Promise<void> {
    clearTimeout(timer);
    timer = undefined;
    if (buffer.length === 0) return sending;
    const batches: OtlpSpan[][] = [];
    for (let i = 0; i < buffer.length; i += maxBatch) batches.push(buffer.slice(i, i + maxBatch));
    buffer = [];
    sending = sending.then(async () => {
      for (const batch of batches) {
        try {
          await post(batch);
        } catch (error) {
          options.logger.error({ err: messageOf(error), spans: batch.length }, 'the MCP gateway dropped spans');
        }
      }
    });
    return sending;
  }

  return {
    emit(_tenant, span) {
      buffer.push(span);
      if (buffer.length > maxBuffered) {
        const dropped = buffer.length - maxBuffered;
        buffer = buffer.slice(dropped);
        options.logger.error({ dropped }, 'the MCP gateway dropped its oldest spans (the OTLP receiver is behind)');
      }
      if (buffer.length >= maxBatch) void send();
      else timer ??= setTimeout(() => void send(), intervalMs);
    },
    flush: send,
  };
}
