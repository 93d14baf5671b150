/**
 * The distributed mode: gateway, processor and API as separate services with Kafka between them (the bus) and
 * ClickHouse behind them (the store). Each `start*Service(config)` returns the running service with an
 * idempotent `stop()` that drains in-flight work; `startDistributed(config, roles)` runs several roles in one
 * process (sharing one store, one kill switch and one Kafka bridge). The code that classifies, scores and
 * decides is the embedded mode's; only the adapters differ (see services/app/embedded.ts).
 *
 *   gateway    OTLP/HTTP in → classify → span topics (bus/kafka/publisher.ts); answers 200 after Kafka's ack,
 *              503/429 with Retry-After when Kafka is unavailable, slow or the in-flight cap is reached.
 *   processor  consumer group over the span topics (bus/kafka/source.ts, co-partitioned) → processor → ClickHouse;
 *              offsets committed after the results are durable and the alerts/revocations published.
 *   api        the HTTP API over the store; manual kills and restores are written to the store and published
 *              on the revocations topic, where processors and other API instances apply them. It is also the
 *              learner of record: it rebuilds the baselines from the store and publishes versioned books
 *              (services/learner/publish.ts) that every processor polls and swaps in (docs/detection.md).
 */
import { RefusalBook } from '../killswitch/refusals.ts';
import { describeGeneratedTokens, startAuth } from './auth.ts';
import { announcingRebuiltRevocations } from '../processor/rebuilt-revocations.ts';
import { bindingStoredCredentials } from '../processor/stored-credentials.ts';
import { createKafka, ensureTopics } from '../bus/kafka/client.ts';
import { restartingConsumers } from '../bus/kafka/consumer-restart.ts';
import { createKafkaSource } from '../bus/kafka/source.ts';
import type { KafkaEventSource } from '../bus/kafka/source.ts';
import { detectorConfigOf } from './config.ts';
import type { TriplineConfig } from './config.ts';
import type { KillSwitch } from '../killswitch/kill-switch.ts';
import type { Revocation } from '../../schemas/events.ts';
import { publishedBaselines } from '../processor/published-baselines.ts';
import type { PublishedBaselines } from '../processor/published-baselines.ts';
import { createBaselineBooks } from '../store/clickhouse/baseline-books.ts';
import { openDetectionClient } from '../store/clickhouse/detection-queries.ts';
import { createProcessor } from '../processor/processor.ts';
import type { Processor } from '../processor/processor.ts';
import { TriplineError, messageOf } from '../shared/errors.ts';
import { readList, type Env } from '../shared/env.ts';
import { createLogger } from '../shared/logger.ts';
import type { Store } from '../store/store.ts';
import { distributedApiDeps } from './distributed-api-deps.ts';
import { startGatewayService } from './distributed-gateway.ts';
import type { RunningGateway } from './distributed-gateway.ts';
import { bridgedKillSwitch, openStore, settingsOf, stopper } from './distributed-shared.ts';
import type { ServiceDeps } from './distributed-shared.ts';
import { startHealthServer } from './health-server.ts';
import { startIdleSweeper } from './idle-sweeper.ts';
import { startLearner } from './distributed-learner.ts';
import type { RunningLearner } from './distributed-learner.ts';
import type { Logger } from '../shared/logger.ts';
import type { BaselineBook } from '../processor/baseline-book.ts';
import { closeHttpServer } from '../api/http.ts';
import { drainEmbeddedEngine } from '../store/clickhouse/chdb.ts';
import { readTls } from './tls.ts';

/** Kept here for the tests, drills and benchmarks that import them from this module. */
export { startGatewayService } from './distributed-gateway.ts';
export type { RunningGateway } from './distributed-gateway.ts';
export type { ServiceDeps } from './distributed-shared.ts';

/** Kept here for the benchmarks that import it from this module. */

export const ROLES = ['gateway', 'processor', 'api'] as const;
export type Role = (typeof ROLES)[number];

/** TRIPLINE_ROLES, for the README's configuration table. */
export const ROLE_VARIABLE = [
  'TRIPLINE_ROLES',
  'gateway,processor,api',
  'comma-separated roles this process runs in the distributed mode',
] as const;

/** TRIPLINE_ROLES: comma-separated roles this process runs (default all three). */
export function readRoles(env: Env = process.env): Role[] {
  const roles = readList(env, 'TRIPLINE_ROLES', ROLES);
  for (const role of roles) {
    if (!(ROLES as readonly string[]).includes(role)) {
      throw new TriplineError(
        'CONFIG_INVALID',
        `TRIPLINE_ROLES=${JSON.stringify(env.TRIPLINE_ROLES)} is invalid: expected a comma-separated list of ${ROLES.join(', ')}`,
        {
          details: { variable: 'TRIPLINE_ROLES' },
        },
      );
    }
  }
  return [...new Set(roles as Role[])];
}

export interface RunningProcessorService {
  processor: Processor;
  source: KafkaEventSource;
  store: Store;
  killSwitch: KillSwitch;
  stop(): Promise<void>;
}

export interface RunningApiService {
  apiUrl: string;
  store: Store;
  killSwitch: KillSwitch;
  /** The published baseline book this API answers from. */
  baselines: PublishedBaselines;
  /** The learner of record, unless TRIPLINE_LEARNER_INTERVAL_MS=0. */
  learner?: RunningLearner;
  stop(): Promise<void>;
}

export interface RunningDistributed {
  gateway?: RunningGateway;
  processor?: RunningProcessorService;
  api?: RunningApiService;
  stop(): Promise<void>;
}

/** A processor: one member of the consumer group over the span topics. */
export async function startProcessorService(
  config: Readonly<TriplineConfig>,
  deps: ServiceDeps = {},
): Promise<RunningProcessorService> {
  const logger = (deps.logger ?? createLogger(config.logLevel)).child({ service: 'processor' });
  const settings = settingsOf(config, deps);
  const lifecycle = stopper(logger);
  try {
    const kafka = restartingConsumers(createKafka(settings, logger, { role: 'processor' }), logger);
    await ensureTopics(kafka, settings, logger);
    let store = deps.store;
    if (store === undefined) {
      const opened = await openStore(config, logger);
      lifecycle.add(() => opened.close());
      store = opened;
    }
    // Kills and restores decided elsewhere (the API service) update this processor's task status.
    const remote: { apply?: (revocation: Revocation) => void } = {};
    let switched = deps.killSwitch;
    if (switched === undefined) {
      const own = await bridgedKillSwitch(settings, logger, 'processor', (revocation) => remote.apply?.(revocation));
      lifecycle.add(() => own.bridge.stop());
      switched = own;
    }
    const { killSwitch, bridge } = switched;
    // The baselines: the newest book the learner of record published, never learned here (docs/detection.md).
    const published = await followPublishedBooks(config, logger, lifecycle);
    const processor = await createProcessor({
      store,
      killSwitch,
      detector: detectorConfigOf(config),
      loops: config.loops,
      logger,
      taskIdleTimeoutMs: config.processor.taskIdleTimeoutMs,
      writeLingerMs: config.processor.writeLingerMs,
      spend: config.spend,
      learnOnline: false,
      baselines: published.current(),
    });
    lifecycle.add(() => processor.stop());
    published.onChange((book, version) => processor.useBaselines(book, version));
    remote.apply = (revocation) => {
      processor
        .applyRevocation(revocation)
        .catch((error: unknown) =>
          logger.error({ err: messageOf(error), taskId: revocation.taskId }, 'applying a remote revocation failed'),
        );
    };

    const source = createKafkaSource({
      kafka,
      settings,
      logger,
      // Alerts and revocations reach Kafka before the offsets of the batch that decided them are committed.
      beforeCommit: () => bridge.flush(),
      maxEventsPerBatch: config.processor.batchSize,
      classify: config.classify,
      // Partitions gained may carry tasks another processor began: the processor rebuilds them from the store.
      onAssignment: ({ gained }) => {
        if (gained.length > 0) processor.ownershipChanged();
      },
      onTasksReleased: (tasks) => {
        logger.info({ tasks: tasks.length }, 'partitions moved to another processor');
        processor
          .forget(tasks)
          .catch((error: unknown) => logger.error({ err: messageOf(error) }, 'forgetting released tasks failed'));
      },
    });
    // Task tokens are issued by the API: their credentials are read from the store to compare spans with.
    await source.start(
      bindingStoredCredentials(
        announcingRebuiltRevocations(processor, store, killSwitch, logger),
        processor,
        store,
        logger,
      ),
    );
    lifecycle.add(async () => {
      // Drain: the batch in hand is written and committed. If the store does not take it in time, the
      // processor gives up writing (the batch stays uncommitted and is replayed by the next owner).
      const drained = source.stop();
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([
        drained.then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), deps.drainTimeoutMs ?? 30_000))),
      ]);
      clearTimeout(timer);
      if (late) {
        logger.warn('the batch in hand was not written in time; stopping without committing it');
        await processor.stop();
      }
      await drained;
    });

    lifecycle.add(startIdleSweeper(processor, config.processor.taskIdleTimeoutMs, logger));
    // Healthy from here (the source consumes) until stop begins.
    let running = true;
    if (config.health.port !== undefined) {
      const health = await startHealthServer({
        host: config.health.host,
        port: config.health.port,
        healthy: () => running,
        logger,
      });
      lifecycle.add(async () => {
        running = false;
        await health.stop();
      });
      logger.info({ health: `${health.url}/healthz` }, 'processor health endpoint listening');
    }
    logger.info({ group: settings.groupId, brokers: settings.brokers }, 'processor started');
    return { processor, source, store, killSwitch, stop: () => lifecycle.stop() };
  } catch (error) {
    await lifecycle.stop();
    throw error;
  }
}

/**
 * Follows the baseline books the learner publishes: the newest is loaded now and looked for every
 * TRIPLINE_BASELINE_POLL_MS (one small query; the book is loaded and parsed only when a newer version exists).
 */
async function followPublishedBooks(
  config: Readonly<TriplineConfig>,
  logger: Logger,
  lifecycle: ReturnType<typeof stopper>,
  client?: ReturnType<typeof openDetectionClient>,
): Promise<PublishedBaselines> {
  let own = client;
  if (own === undefined) {
    const opened = openDetectionClient(config.store);
    lifecycle.add(() => opened.close());
    own = opened;
  }
  const published = publishedBaselines(createBaselineBooks(own, config.store.database), logger);
  await published.refresh();
  const timer = setInterval(() => {
    published
      .refresh()
      .catch((error: unknown) => logger.warn({ err: messageOf(error) }, 'looking for a newer baseline book failed'));
  }, config.learner.pollMs);
  timer.unref();
  lifecycle.add(() => {
    clearInterval(timer);
    return Promise.resolve();
  });
  return published;
}

/** The HTTP API over the store, with manual kill/restore published to the other processes. */
export async function startApiService(
  config: Readonly<TriplineConfig>,
  deps: ServiceDeps = {},
): Promise<RunningApiService> {
  const logger = (deps.logger ?? createLogger(config.logLevel)).child({ service: 'api' });
  const settings = settingsOf(config, deps);
  const lifecycle = stopper(logger);
  // The API's own parts (routes, console, kill-switch enforcement, detection queries) are loaded here, not on
  // import: a process that runs only the gateway or a processor never needs them.
  const [
    { buildApiApp },
    { registerConsole },
    { openConsoleQueries },
    { createFeedback },
    { startKillSwitchRuntime },
    { createDetectionQueries, openDetectionClient },
  ] = await Promise.all([
    import('../api/app.ts'),
    import('../api/console.ts'),
    import('../store/clickhouse/console-queries.ts'),
    import('../detection/feedback.ts'),
    import('./killswitch.ts'),
    import('../store/clickhouse/detection-queries.ts'),
  ]);
  try {
    let store = deps.store;
    if (store === undefined) {
      const opened = await openStore(config, logger);
      lifecycle.add(() => opened.close());
      store = opened;
    }
    let switched = deps.killSwitch;
    if (switched === undefined) {
      const kafka = createKafka(settings, logger, { role: 'api' });
      await ensureTopics(kafka, settings, logger);
      const own = await bridgedKillSwitch(settings, logger, 'api', undefined, true);
      lifecycle.add(() => own.bridge.stop());
      switched = own;
    }
    const { killSwitch, bridge } = switched;
    const apiStore = store;
    // Refusals (a loop or rate limit's refuse step) decided by processors reach this process as alerts (the bridge
    // applies those published elsewhere): /v1/check answers from them, as the embedded mode from the processor.
    const refusals = new RefusalBook();
    const unsubscribeRefusals = killSwitch.subscribe((message) => {
      if (message.type === 'alert') refusals.note(message.alert);
    });
    lifecycle.add(() => {
      unsubscribeRefusals();
      return Promise.resolve();
    });
    // Credentials, introspection, leases, verification and notifiers: the API process owns the kill switch's
    // enforcement side; processors reach it through the revocations topic.
    const enforcement = await startKillSwitchRuntime({
      config: config.killSwitch,
      storage: {
        url: config.store.url,
        username: config.store.username,
        password: config.store.password,
        dataDir: config.store.dataDir,
        database: config.store.database,
      },
      killSwitch,
      insertAlerts: (alerts) => apiStore.insertAlerts(alerts),
      async taskState(tenant, taskId) {
        const record = await apiStore.getTask(tenant, taskId);
        const refusing = refusals.of(tenant, taskId, Date.now());
        return record === null
          ? undefined
          : {
              status: record.status,
              score: record.score,
              taskType: record.taskType,
              agentId: record.agentId,
              events: record.counts.tool_call + record.counts.data_access + record.counts.privilege_change,
              ...(refusing === undefined ? {} : { refusing }),
            };
      },
      logger,
    });
    lifecycle.add(() => enforcement.stop());
    const detectionClient = openDetectionClient(config.store);
    lifecycle.add(() => detectionClient.close());
    const detectionQueries = createDetectionQueries(detectionClient, config.store.database);
    await detectionQueries.ensureSchema();
    const detector = detectorConfigOf(config);
    // The API answers from the published book (as the processors score), and learns it when it is the learner.
    const published = await followPublishedBooks(config, logger, lifecycle, detectionClient);
    const baselines = (): BaselineBook => published.current().book;
    const learner =
      config.learner.intervalMs === 0
        ? undefined
        : await startLearner({
            config,
            logger,
            queries: detectionQueries,
            books: createBaselineBooks(detectionClient, config.store.database),
            saveBaselines: (records) => apiStore.saveBaselines(records),
            published,
          });
    if (learner !== undefined) lifecycle.add(() => learner.stop());
    const auth = await startAuth({
      config: config.auth,
      clickhouse: { ...config.store },
      logger,
      bootstrap: 'first-start',
    });
    lifecycle.add(() => auth.stop());
    // Shown once, on the terminal only (never through the logger).
    process.stderr.write(describeGeneratedTokens(auth.generated));
    const app = buildApiApp({
      tls: readTls(config.tls),
      ...distributedApiDeps(store, killSwitch, bridge, config, logger, baselines, async (tenant, taskId) => {
        // Tokens this process issued are in memory; another API process's are in the credentials table.
        const [newest] = (await enforcement.store.listCredentials(tenant, taskId)).sort(
          (a, b) => b.issuedMs - a.issuedMs,
        );
        const grants = enforcement.authority.grants(tenant, taskId);
        if (grants !== undefined)
          return { taskType: grants.taskType, agentId: grants.agentId, issuedMs: newest?.issuedMs ?? Date.now() };
        return newest === undefined
          ? undefined
          : { taskType: newest.taskType, agentId: newest.agentId, issuedMs: newest.issuedMs };
      }),
      access: auth.api,
      admin: auth.admin,
      killSwitch: enforcement,
      detection: {
        feedback: createFeedback({
          store,
          queries: detectionQueries,
          baselines,
          learnedByLearner: true,
          ...(learner === undefined ? {} : { onMarked: () => learner.nudge() }),
        }),
        queries: detectionQueries,
        baselines,
        warmupTasks: detector.warmupTasks,
        agentWarmupTasks: detector.agentWarmupTasks,
      },
    });
    await registerConsole(app, { openQueries: () => openConsoleQueries(config.store), logger });
    const apiUrl = await app.listen({ host: config.api.host, port: config.api.port });
    lifecycle.add(() => closeHttpServer(app));
    logger.info({ api: apiUrl }, 'API started');
    return {
      apiUrl,
      store,
      killSwitch,
      baselines: published,
      ...(learner === undefined ? {} : { learner }),
      stop: () => lifecycle.stop(),
    };
  } catch (error) {
    await lifecycle.stop();
    throw error;
  }
}

/** Several roles in one process: one store, one kill switch and one Kafka bridge shared between them. */
export async function startDistributed(
  config: Readonly<TriplineConfig>,
  roles: readonly Role[],
  deps: ServiceDeps = {},
): Promise<RunningDistributed> {
  const logger = deps.logger ?? createLogger(config.logLevel);
  const settings = settingsOf(config, deps);
  const lifecycle = stopper(logger);
  const running: RunningDistributed = { stop: () => lifecycle.stop() };
  // Last: nothing exits while an embedded engine (no CLICKHOUSE_URL) still runs a query (see drainEmbeddedEngine).
  lifecycle.add(() => drainEmbeddedEngine());
  try {
    const shared: ServiceDeps = { ...deps, logger, kafka: settings };
    const needsStore = roles.includes('processor') || roles.includes('api');
    if (needsStore) {
      if (shared.store === undefined) {
        const store = await openStore(config, logger);
        lifecycle.add(() => store.close());
        shared.store = store;
      }
      if (shared.killSwitch === undefined) {
        await ensureTopics(createKafka(settings, logger, { role: 'admin' }), settings, logger);
        const own = await bridgedKillSwitch(settings, logger, roles.join('+'), undefined, roles.includes('api'));
        lifecycle.add(() => own.bridge.stop());
        shared.killSwitch = own;
      }
    }
    // Start order: the processor before the gateway (spans accepted are consumed), the API last; stop order
    // is the reverse, so ingest stops first and the processor drains what is in hand.
    if (roles.includes('processor')) {
      running.processor = await startProcessorService(config, shared);
      lifecycle.add(() => running.processor?.stop() ?? Promise.resolve());
    }
    if (roles.includes('gateway')) {
      running.gateway = await startGatewayService(config, shared);
      lifecycle.add(() => running.gateway?.stop() ?? Promise.resolve());
    }
    if (roles.includes('api')) {
      running.api = await startApiService(config, shared);
      lifecycle.add(() => running.api?.stop() ?? Promise.resolve());
    }
    return running;
  } catch (error) {
    await lifecycle.stop();
    throw error;
  }
}
