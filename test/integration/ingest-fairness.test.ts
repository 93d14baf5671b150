/**
 * Per-tenant shares of the embedded bus, through the real OTLP/HTTP endpoint: the receiver, the gateway's
 * classification and the in-process bus as embedded mode wires them, with no processor taking from the bus (so it
 * fills). A tenant that fills its share gets 429 with Retry-After while another tenant's spans are still accepted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { registerOtlpReceiver } from '../../services/api/otlp-receiver.ts';
import { createHttpServer } from '../../services/api/http.ts';
import { createInProcessBus } from '../../services/bus/in-process-bus.ts';
import type { InProcessBus } from '../../services/bus/in-process-bus.ts';
import { createGateway } from '../../services/gateway/gateway.ts';
import { TriplineError } from '../../services/shared/errors.ts';
import { createLogger } from '../../services/shared/logger.ts';
import { newSpanId, newTraceId, request, toolSpan } from '../unit/processor/harness.ts';

const TOKENS: Record<string, string> = { 'Bearer noisy-token': 'noisy', 'Bearer quiet-token': 'quiet' };
const SPANS_PER_REQUEST = 10;

let app: FastifyInstance;
let url: string;
let bus: InProcessBus;

beforeAll(async () => {
  const logger = createLogger('silent');
  // Never started: nothing takes from the bus, as when the processor is behind.
  bus = createInProcessBus({ capacity: 100, tenantCapacity: 30, batchSize: 100, flushIntervalMs: 0, logger });
  const gateway = createGateway(bus);
  app = createHttpServer(logger);
  registerOtlpReceiver(app, {
    maxBodyBytes: 1024 * 1024,
    handler: (decoded, context) => gateway.ingest(decoded, context),
    authenticate: (authorization) => {
      const tenant = authorization === undefined ? undefined : TOKENS[authorization];
      if (tenant === undefined) return Promise.reject(new TriplineError('UNAUTHENTICATED', 'unknown token'));
      return Promise.resolve(tenant);
    },
  });
  url = `${await app.listen({ host: '127.0.0.1', port: 0 })}/v1/traces`;
});

afterAll(async () => {
  await app.close();
  await bus.stop();
});

function post(token: string): Promise<Response> {
  const traceId = newTraceId();
  const parent = newSpanId();
  const spans = Array.from({ length: SPANS_PER_REQUEST }, (_, i) =>
    toolSpan(traceId, parent, 'search_tickets', Date.now() + i),
  );
  return fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(request({ 'service.name': 'svc', 'gen_ai.agent.id': 'agent-1' }, spans)),
  });
}

describe('ingest: per-tenant shares of the embedded bus', () => {
  it("one tenant's burst gets 429 with Retry-After; another tenant's spans are still accepted", async () => {
    const answers: number[] = [];
    let refused: Response | undefined;
    while (refused === undefined && answers.length < 20) {
      const answer = await post('noisy-token');
      answers.push(answer.status);
      if (answer.status !== 200) refused = answer;
    }
    // Its share (30 events) held three requests of ten; the fourth is refused, the bus being far from full.
    expect(answers).toEqual([200, 200, 200, 429]);
    expect(refused?.headers.get('retry-after')).toBe('1');
    expect(bus.depth()).toBe(30);

    const quiet = [await post('quiet-token'), await post('quiet-token')];
    expect(quiet.map((answer) => answer.status)).toEqual([200, 200]);
    expect(bus.depth()).toBe(50);
    // The noisy tenant is still refused while its share is full.
    expect((await post('noisy-token')).status).toBe(429);
  });
});
