import { LogController, fastify } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Bindings, ChildLoggerOptions, LogFn } from 'pino';
import type { Logger } from '../shared/logger.ts';

const LOG_METHODS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * A request's logger, made when the request first logs something. Most requests never log, and the pino child
 * fastify makes for every request (bindings serialized through the redaction setup) cost ~2% of the OTLP path's
 * CPU at 2,000 spans/s.
 */
export class LazyChildLogger implements FastifyBaseLogger {
  declare fatal: LogFn;
  declare error: LogFn;
  declare warn: LogFn;
  declare info: LogFn;
  declare debug: LogFn;
  declare trace: LogFn;
  declare silent: LogFn;
  readonly #parent: FastifyBaseLogger;
  readonly #bindings: Bindings;
  readonly #options: ChildLoggerOptions;
  #child: FastifyBaseLogger | undefined;

  constructor(parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }

  /** The pino child, made on first use. */
  get logger(): FastifyBaseLogger {
    this.#child ??= this.#parent.child(this.#bindings, this.#options);
    return this.#child;
  }

  get level(): string {
    return (this.#child ?? this.#parent).level;
  }

  set level(level: string) {
    this.logger.level = level;
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.logger.child(bindings, options);
  }
}
for (const method of LOG_METHODS) {
  Object.defineProperty(LazyChildLogger.prototype, method, {
    value(this: LazyChildLogger, ...args: unknown[]): void {
      Reflect.apply(this.logger[method], this.logger, args);
    },
  });
}

/** A certificate chain (leaf first) and its private key, PEM (services/app/tls.ts reads and checks them). */
export interface TlsOptions {
  cert: Buffer;
  key: Buffer;
}

/**
 * A fastify instance on Tripline's logger, without per-request log lines (the hot OTLP path would log
 * thousands a second); errors are still logged by the handlers.
 */
export function createHttpServer(
  logger: Logger,
  options: { bodyLimit?: number; maxParamLength?: number; tls?: TlsOptions | undefined } = {},
): FastifyInstance {
  const loggerInstance: FastifyBaseLogger = logger;
  // An HTTPS server is an HTTP server to every route, hook and close step here (Node's https.Server extends it
  // with TLS); only fastify's generic parameter differs.
  const https = options.tls === undefined ? {} : { https: { cert: options.tls.cert, key: options.tls.key } };
  return fastify({
    ...(https as object),
    loggerInstance,
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: (logger, bindings, options) => new LazyChildLogger(logger, bindings, options),
    ...(options.bodyLimit === undefined ? {} : { bodyLimit: options.bodyLimit }),
    ...(options.maxParamLength === undefined ? {} : { routerOptions: { maxParamLength: options.maxParamLength } }),
    // Errors raised before a route runs (a malformed URL, a bad content type) get the same body as the rest.
    frameworkErrors(error, _request, reply) {
      // The handler is generic over route types this server-wide hook cannot know; the body is plain JSON.
      const plain = reply as unknown as FastifyReply;
      void plain.status(error.statusCode ?? 400).send({ error: { code: error.code, message: error.message } });
    },
  });
}

/**
 * While the server closes, Fastify answers the requests that still arrive on open keep-alive connections with a
 * 503 of its own, before any hook runs and without the Retry-After promised to OTLP clients with every 503 (found
 * by the gateway-restart drill). The header is set on the raw response before Fastify sees the request.
 */
export function retryAfterWhileClosing(app: FastifyInstance, seconds: number): { begin(): void } {
  let closing = false;
  app.server.prependListener('request', (_request: IncomingMessage, response: ServerResponse) => {
    if (closing) response.setHeader('retry-after', String(seconds));
  });
  return {
    begin() {
      closing = true;
    },
  };
}

/** How long a closing server lets the requests in flight finish before it closes every connection still open. */
export const CLOSE_DRAIN_MS = 10_000;
/** How often a closing server closes the connections that went idle since it began closing. */
const IDLE_SWEEP_MS = 100;

/**
 * Closes `app` (stops listening, runs its close hooks, which end the event streams) within a bound. Fastify closes
 * the connections idle when it begins, and then waits for every other one, which can be forever:
 * - a request in flight then is answered with `Connection: keep-alive`, so its connection stays open, idle, for the
 *   keep-alive timeout (72 s) after its response;
 * - a request whose body never completes (an exporter stalled mid-upload, a subscriber that sent a body it did not
 *   finish) holds its connection as long as the client does (Fastify sets no request timeout);
 * - a response that cannot be flushed to a client that does not read never finishes.
 * So while closing, connections that went idle are closed as they do, and after `drainMs` every connection still
 * open is closed.
 */
export async function closeHttpServer(app: FastifyInstance, drainMs = CLOSE_DRAIN_MS): Promise<void> {
  const closed = app.close();
  const server = app.server;
  const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
  const force = setTimeout(() => {
    app.log.warn({ drainMs }, 'closing the connections still open after the drain');
    server.closeAllConnections();
  }, drainMs);
  try {
    await closed;
  } finally {
    clearInterval(sweep);
    clearTimeout(force);
  }
}
