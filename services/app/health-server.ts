/**
 * The health endpoint of a role that has no HTTP server of its own (a processor): `GET /healthz` answers 200
 * `{"status":"ok"}` while the role runs and 503 `{"status":"not_ready"}` otherwise, nothing more (it is public:
 * a container health check sends no token). Off unless TRIPLINE_HEALTH_PORT is set; it binds TRIPLINE_HEALTH_HOST
 * (127.0.0.1 by default: the health check runs beside the process).
 */
import { createHttpServer } from '../api/http.ts';
import type { Logger } from '../shared/logger.ts';

export interface HealthServer {
  url: string;
  stop(): Promise<void>;
}

export async function startHealthServer(options: {
  host: string;
  port: number;
  healthy: () => boolean;
  logger: Logger;
}): Promise<HealthServer> {
  const app = createHttpServer(options.logger.child({ component: 'health' }));
  app.get('/healthz', (_request, reply) => {
    const healthy = options.healthy();
    return reply.status(healthy ? 200 : 503).send({ status: healthy ? 'ok' : 'not_ready' });
  });
  const url = await app.listen({ host: options.host, port: options.port });
  return { url, stop: () => app.close() };
}
