/**
 * The distributed mode's gateway service: OTLP/HTTP in → classify → span topics (bus/kafka/publisher.ts). Answers
 * 200 after Kafka's ack, 503/429 with Retry-After when Kafka is unavailable, slow or the in-flight cap is
 * reached. See services/app/distributed.ts.
 */
import { startAuth } from './auth.ts';
import { createMemoryAccessStore } from '../auth/memory-access-store.ts';
import { createGateway } from '../gateway/gateway.ts';
import type { Gateway } from '../gateway/gateway.ts';
import { registerOtlpReceiver } from '../api/otlp-receiver.ts';
import { createKafka, ensureTopics } from '../bus/kafka/client.ts';
import { createKafkaPublisher } from '../bus/kafka/publisher.ts';
import type { KafkaEventPublisher } from '../bus/kafka/publisher.ts';
import type { TriplineConfig } from './config.ts';
import { closeHttpServer, createHttpServer, retryAfterWhileClosing } from '../api/http.ts';
import { createLogger } from '../shared/logger.ts';
import { settingsOf, stopper } from './distributed-shared.ts';
import type { ServiceDeps } from './distributed-shared.ts';
import { readTls } from './tls.ts';

export interface RunningGateway {
  otlpUrl: string;
  gateway: Gateway;
  publisher: KafkaEventPublisher;
  stop(): Promise<void>;
}

/** The gateway: OTLP/HTTP receiver → classification → Kafka. */
export async function startGatewayService(
  config: Readonly<TriplineConfig>,
  deps: ServiceDeps = {},
): Promise<RunningGateway> {
  const logger = (deps.logger ?? createLogger(config.logLevel)).child({ service: 'gateway' });
  const settings = settingsOf(config, deps);
  const lifecycle = stopper(logger);
  try {
    const kafka = createKafka(settings, logger, { role: 'gateway' });
    await ensureTopics(kafka, settings, logger);
    const publisher = createKafkaPublisher({ kafka, topics: settings.topics, producer: settings.producer, logger });
    await publisher.start();
    lifecycle.add(() => publisher.close());
    const gateway = createGateway(
      publisher,
      {
        publisher,
        topics: settings.topics,
        maxRecordBytes: settings.producer.maxRecordBytes,
      },
      config.classify,
    );
    // Tokens come from the ClickHouse the API writes them to. A gateway on its own, without a ClickHouse server,
    // could only open an engine of its own that no API writes to: it accepts the configured agent token alone.
    const sharesStore = config.store.url !== undefined || deps.store !== undefined;
    if (!sharesStore && config.auth.agentToken === undefined) {
      logger.warn(
        'the gateway has no ClickHouse server (CLICKHOUSE_URL) to read tokens from and no TRIPLINE_AGENT_TOKEN: it will refuse every request',
      );
    }
    const auth = await startAuth({
      config: config.auth,
      clickhouse: { ...config.store },
      logger,
      bootstrap: 'configured',
      ...(sharesStore ? {} : { store: createMemoryAccessStore() }),
    });
    lifecycle.add(() => auth.stop());
    const app = createHttpServer(logger.child({ component: 'otlp' }), { tls: readTls(config.tls) });
    registerOtlpReceiver(app, {
      maxBodyBytes: config.otlp.maxBodyBytes,
      authenticate: (authorization) => auth.authenticateIngest(authorization),
      rateLimiter: auth.rateLimiter,
      maxInFlightBytes: config.otlp.maxInFlightBytes,
      handler: (request, context) => gateway.ingest(request, context),
      // Protobuf goes from its bytes to the topics (services/otlp/route.ts); OTLP/JSON is decoded.
      protobufHandler: (body, context) => {
        if (gateway.ingestProtobuf === undefined) throw new Error('the gateway has no protobuf fast path');
        return gateway.ingestProtobuf(body, context);
      },
    });
    // Public (a container health check sends no token) and cheap: up once the receiver listens, which is after
    // the producer connected; nothing about the parts behind it.
    app.get('/healthz', () => ({ status: 'ok' }));
    const closing = retryAfterWhileClosing(app, CLOSING_RETRY_AFTER_SECONDS);
    const otlpUrl = await app.listen({ host: config.otlp.host, port: config.otlp.port });
    // Closing the listener first lets requests in flight finish; then the publisher drains.
    lifecycle.add(() => {
      closing.begin();
      return closeHttpServer(app);
    });
    logger.info(
      { otlp: `${otlpUrl}/v1/traces`, brokers: settings.brokers, topics: settings.topics },
      'gateway started',
    );
    return { otlpUrl, gateway, publisher, stop: () => lifecycle.stop() };
  } catch (error) {
    await lifecycle.stop();
    throw error;
  }
}

/** Retry-After of the 503s a stopping gateway answers (as the publisher's SHUTTING_DOWN). */
const CLOSING_RETRY_AFTER_SECONDS = 5;
