import { LogController, fastify } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from './logger.ts';

/**
 * A fastify instance on Tripline's logger, without per-request log lines (the hot OTLP path would log
 * thousands a second); errors are still logged by the handlers.
 */
export function createHttpServer(logger: Logger, options: { bodyLimit?: number; maxParamLength?: number } = {}): FastifyInstance {
  const loggerInstance: FastifyBaseLogger = logger;
  return fastify({
    loggerInstance,
    logController: new LogController({ disableRequestLogging: true }),
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
