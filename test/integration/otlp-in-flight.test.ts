/**
 * The receiver's bound on request bytes held at once: past it a new request gets 429 with Retry-After before
 * its body is read, and the bytes are given back once answers are sent.
 */
import { describe, expect, it } from 'vitest';
import { encodeTraceRequest } from '../../services/otlp/codec.ts';
import { registerOtlpReceiver } from '../../services/api/otlp-receiver.ts';
import { createHttpServer } from '../../services/api/http.ts';
import { createLogger } from '../../services/shared/logger.ts';
import { syntheticRequest } from './kafka/fixtures.ts';

describe('OTLP requests in flight', () => {
  it('answers 429 with Retry-After past the in-flight bytes, and lets requests in again once answered', async () => {
    const body = Buffer.from(encodeTraceRequest(syntheticRequest({ taskId: 'in-flight', spans: 9 })));
    const gates: (() => void)[] = [];
    const app = createHttpServer(createLogger('silent'));
    registerOtlpReceiver(app, {
      maxBodyBytes: 1024 * 1024,
      maxInFlightBytes: Math.floor(body.length * 1.5),
      handler: () => new Promise((resolve) => gates.push(() => resolve({ rejectedSpans: 0 }))),
    });
    await app.ready();
    const post = () =>
      app.inject({
        method: 'POST',
        url: '/v1/traces',
        headers: { 'content-type': 'application/x-protobuf' },
        payload: body,
      });

    const first = post();
    await expect.poll(() => gates.length).toBe(1);
    const refused = await post();
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    gates.shift()?.();
    expect((await first).statusCode).toBe(200);

    const again = post();
    await expect.poll(() => gates.length).toBe(1);
    gates.shift()?.();
    expect((await again).statusCode).toBe(200);
    await app.close();
  });
});
