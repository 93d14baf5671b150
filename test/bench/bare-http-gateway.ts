/**
 * Tripline's gateway WITHOUT fastify, for the benchmark's "what does the framework cost" row: the same OTLP
 * decoder (services/otlp/codec.ts), the same classification and Kafka publisher
 * (services/gateway/gateway.ts + services/bus/kafka/publisher.ts, set up as services/app/distributed.ts does),
 * behind a bare `node:http` server that answers like services/api/otlp-receiver.ts on the paths the benchmark
 * takes (200 with an empty ExportTraceServiceResponse; 400 undecodable; 413 too large; 429/503 + Retry-After
 * when Kafka is busy or down). Not a product entry point: the real gateway is `node services/app/gateway-main.ts`.
 *
 *   KAFKA_BROKERS=… TRIPLINE_OTLP_PORT=4318 node test/bench/bare-http-gateway.ts
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { createGateway, tuneHeapForIngest } from '../../services/gateway/gateway.ts';
import {
  RPC_CODE,
  countSpans,
  decodeTraceRequest,
  encodeRpcStatus,
  encodeTraceResponse,
} from '../../services/otlp/codec.ts';
import { routeTraceRequest } from '../../services/otlp/route.ts';
import type { RoutedRecord } from '../../services/otlp/route.ts';
import { createKafka, ensureTopics } from '../../services/bus/kafka/client.ts';
import { loadKafkaSettings } from '../../services/bus/kafka/config.ts';
import { createKafkaPublisher } from '../../services/bus/kafka/publisher.ts';
import { loadConfig } from '../../services/app/config.ts';
import { isTriplineError, messageOf } from '../../services/shared/errors.ts';
import { createLogger } from '../../services/shared/logger.ts';

const config = loadConfig();
const logger = createLogger(config.logLevel).child({ service: 'bare-http-gateway' });
const settings = loadKafkaSettings(config.kafka);
const kafka = createKafka(settings, logger, { role: 'gateway' });
await ensureTopics(kafka, settings, logger);
const publisher = createKafkaPublisher({ kafka, topics: settings.topics, producer: settings.producer, logger });
await publisher.start();
const gateway = createGateway(publisher);
// As the real gateway (createGateway with records) does.
tuneHeapForIngest();
/**
 * The byte-level fast path (services/otlp/route.ts), used when the publisher takes ready-made records
 * (`publishRecords`, the change proposed in docs/otelcol.md); else decode → classify → publish as the gateway does.
 */
const recordPublisher = (
  publisher as Partial<{
    publishRecords(records: readonly (RoutedRecord & { headers: Record<string, string> })[]): Promise<void>;
  }>
).publishRecords?.bind(publisher);
const FAST = recordPublisher !== undefined && process.env.BENCH_SLOW_PATH !== '1';
const maxBodyBytes = config.otlp.maxBodyBytes;
const EMPTY_RESPONSE = Buffer.from(encodeTraceResponse(0, undefined, 'protobuf'));

function answer(res: ServerResponse, status: number, body: Uint8Array, retryAfter?: number): void {
  const headers: Record<string, string | number> = {
    'content-type': 'application/x-protobuf',
    'content-length': body.byteLength,
  };
  if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
  res.writeHead(status, headers);
  res.end(body);
}

function fail(res: ServerResponse, status: number, message: string, retryAfter?: number): void {
  const code =
    status === 429 ? RPC_CODE.RESOURCE_EXHAUSTED : status >= 500 ? RPC_CODE.UNAVAILABLE : RPC_CODE.INVALID_ARGUMENT;
  answer(res, status, encodeRpcStatus(code, message, 'protobuf'), retryAfter);
}

async function handle(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
  const raw = req.headers['content-encoding'] === 'gzip' ? gunzipSync(body, { maxOutputLength: maxBodyBytes }) : body;
  if (FAST) {
    let routed;
    try {
      routed = routeTraceRequest(raw, settings.topics, settings.producer.maxRecordBytes);
    } catch (error) {
      fail(res, 400, messageOf(error));
      return;
    }
    const headers = { 'tripline-tenant': 'default' };
    if (routed.records.length > 0) await recordPublisher(routed.records.map((record) => ({ ...record, headers })));
    answer(res, 200, EMPTY_RESPONSE);
    return;
  }
  let decoded;
  try {
    decoded = decodeTraceRequest(raw, 'protobuf');
  } catch (error) {
    fail(res, 400, messageOf(error));
    return;
  }
  if (countSpans(decoded) > 0) await gateway.ingest(decoded, { tenant: 'default' });
  answer(res, 200, EMPTY_RESPONSE);
}

const server = createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/v1/traces') {
    fail(res, req.url === '/v1/traces' ? 405 : 404, 'POST protobuf to /v1/traces');
    req.resume();
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= maxBodyBytes) chunks.push(chunk);
  });
  req.on('end', () => {
    if (size > maxBodyBytes) {
      fail(res, 413, `the request body is larger than ${String(maxBodyBytes)} bytes`);
      return;
    }
    handle(req, res, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)).catch(
      (error: unknown) => {
        if (isTriplineError(error) && error.code === 'PIPELINE_BUSY') fail(res, 429, error.message, 1);
        else fail(res, 503, messageOf(error), 1);
      },
    );
  });
});
server.keepAliveTimeout = 65_000;
server.listen(config.otlp.port, config.otlp.host, () => {
  logger.info({ port: config.otlp.port, fastPath: FAST }, 'bare node:http gateway listening');
});
const stop = (): void => {
  server.close();
  publisher.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
