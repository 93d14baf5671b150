/**
 * The per-request logger of Tripline's HTTP servers (services/api/http.ts): a request that never logs makes
 * no pino child; one that logs writes its line with the request id, as fastify's own child would.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LazyChildLogger, createHttpServer } from '../../services/api/http.ts';
import { createLogger } from '../../services/shared/logger.ts';

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((line) => line !== ''),
      );
      done();
    },
  });
  return { lines, stream };
}

describe('per-request logger', () => {
  afterEach(() => vi.restoreAllMocks());

  it('makes a child only for a request that logs, and that line carries the request id', async () => {
    const { lines, stream } = capture();
    const logger = createLogger('info', 'http-test', stream);
    const app = createHttpServer(logger);
    app.get('/quiet', (_request, reply) => reply.send({ ok: true }));
    app.get('/loud', (request, reply) => {
      expect(request.log).toBeInstanceOf(LazyChildLogger);
      request.log.warn({ token: 'secret-value', detail: 42 }, 'something to say');
      return reply.send({ ok: true });
    });
    await app.ready();
    const child = vi.spyOn(Object.getPrototypeOf(logger) as { child: (...args: unknown[]) => unknown }, 'child');

    for (let i = 0; i < 5; i += 1) expect((await app.inject({ method: 'GET', url: '/quiet' })).statusCode).toBe(200);
    expect(child).not.toHaveBeenCalled();

    expect((await app.inject({ method: 'GET', url: '/loud' })).statusCode).toBe(200);
    expect(child).toHaveBeenCalledTimes(1);
    await new Promise((resolve) => setImmediate(resolve));
    const line = lines
      .map((text) => JSON.parse(text) as Record<string, unknown>)
      .find((entry) => entry.msg === 'something to say');
    expect(line).toMatchObject({ level: 40, detail: 42, token: '[redacted]', name: 'http-test' });
    expect(typeof line?.reqId).toBe('string');
    await app.close();
  });

  it('reads the level without making a child, and sets it on the child', () => {
    const logger = createLogger('warn', 'http-test', capture().stream);
    const lazy = new LazyChildLogger(logger, { reqId: 'r-1' }, {});
    expect(lazy.level).toBe('warn');
    lazy.level = 'debug';
    expect(lazy.level).toBe('debug');
    expect(logger.level).toBe('warn');
  });
});
