/**
 * The shutdown's parts: named steps (run latest first, each logged, a failed one not stopping the rest, the ones
 * under way listed for the grace's report) and the bounded close of an HTTP server whose client stalled mid-request.
 */
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { closeHttpServer, createHttpServer } from '../../services/api/http.ts';
import { createShutdownSteps } from '../../services/app/shutdown-steps.ts';
import { createLogger } from '../../services/shared/logger.ts';

function capturedLogger(): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = createLogger('debug', 'test', sink);
  return {
    logger,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe('shutdown steps', () => {
  it('run latest first, once, log each step, and go on past a failed one', async () => {
    const { logger, lines } = capturedLogger();
    const steps = createShutdownSteps(logger);
    const ran: string[] = [];
    steps.add('store', () => {
      ran.push('store');
    });
    steps.add('processor', () => Promise.reject(new Error('disk gone')));
    steps.add('api', () => {
      ran.push('api');
    });
    await Promise.all([steps.run(), steps.run()]);
    expect(ran).toEqual(['api', 'store']);
    const logged = lines().map((line) => [line.step, line.msg]);
    expect(logged).toEqual([
      ['api', 'shutdown step started'],
      ['api', 'shutdown step finished'],
      ['processor', 'shutdown step started'],
      ['processor', 'error while stopping'],
      ['store', 'shutdown step started'],
      ['store', 'shutdown step finished'],
    ]);
    expect(steps.pending()).toEqual([]);
  });

  it('name the steps under way, with a nested part’s own', async () => {
    const { logger } = capturedLogger();
    const steps = createShutdownSteps(logger);
    const inner = createShutdownSteps(logger);
    let release: () => void = () => undefined;
    inner.add('approvals store', () => new Promise<void>((resolve) => (release = resolve)));
    steps.add(
      'kill switch',
      () => inner.run(),
      () => inner.pending(),
    );
    steps.add('api', () => undefined);
    const stopping = steps.run();
    await new Promise((resolve) => setImmediate(resolve));
    expect(steps.pending()).toEqual(['kill switch > approvals store']);
    release();
    await stopping;
    expect(steps.pending()).toEqual([]);
  });
});

describe('closeHttpServer', () => {
  it('closes a server whose client stalled in the middle of a request body, closing that connection', async () => {
    const { logger, lines } = capturedLogger();
    const app = createHttpServer(logger);
    let arrived: () => void = () => undefined;
    const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
    // Runs once the request's headers are in, before its body is read.
    app.addHook('onRequest', (_request, _reply, done) => {
      arrived();
      done();
    });
    app.post('/upload', (request) => ({ got: request.body }));
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    const socket = connect(Number(new URL(address).port), '127.0.0.1');
    const closedByServer = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(
      'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":',
    );
    await requestArrived;

    await closeHttpServer(app, 200);
    await closedByServer;
    expect(lines().some((line) => line.msg === 'closing the connections still open after the drain')).toBe(true);
  });
});
