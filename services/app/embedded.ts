/**
 * The embedded mode: gateway, processor and API in one process over the in-process bus and the
 * ClickHouse engine in-process. `startEmbedded(config)` returns the running parts and an idempotent `stop()`
 * that drains in-flight work before closing the store.
 */
import { createGateway } from '../gateway/gateway.ts';
import type { Gateway } from '../gateway/gateway.ts';
import { registerOtlpReceiver } from '../api/otlp-receiver.ts';
import { buildApiApp } from '../api/app.ts';
import { startAuth } from './auth.ts';
import type { RunningAuth } from './auth.ts';
import { registerConsole } from '../api/console.ts';
import { createFeedback } from '../detection/feedback.ts';
import { createDetectionQueries, openDetectionClient } from '../store/clickhouse/detection-queries.ts';
import { openConsoleQueries } from '../store/clickhouse/console-queries.ts';
import type { BaselineBook } from '../processor/baseline-book.ts';
import type { ApiDeps } from '../api/app.ts';
import { createInProcessBus } from '../bus/in-process-bus.ts';
import type { InProcessBus } from '../bus/in-process-bus.ts';
import { detectorConfigOf } from './config.ts';
import type { TriplineConfig } from './config.ts';
import { describeBaseline } from '../core/detect/index.ts';
import type { DetectorConfig } from '../core/detect/index.ts';
import { createLocalKillSwitch } from '../killswitch/kill-switch.ts';
import type { KillSwitch } from '../killswitch/kill-switch.ts';
import { startKillSwitchRuntime } from './killswitch.ts';
import type { KillSwitchRuntime, KillSwitchRuntimeOptions } from './killswitch.ts';
import { createProcessor } from '../processor/processor.ts';
import { startIdleSweeper } from './idle-sweeper.ts';
import { startEmbeddedMcpGateway } from './mcp-gateway.ts';
import { readTls } from './tls.ts';
import type { TlsMaterial } from './tls.ts';
import type { Processor } from '../processor/processor.ts';
import { FLEET_TASK_TYPE } from '../processor/baseline-book.ts';
import { messageOf } from '../shared/errors.ts';
import { createShutdownSteps } from './shutdown-steps.ts';
import { closeHttpServer, createHttpServer } from '../api/http.ts';
import { createLogger } from '../shared/logger.ts';
import type { Logger } from '../shared/logger.ts';
import { openClickHouseStore } from '../store/clickhouse/store.ts';
import { drainEmbeddedEngine } from '../store/clickhouse/chdb.ts';
import type { Store } from '../store/store.ts';

export interface RunningTripline {
  /** Where the OTLP receiver and the API listen, e.g. `http://127.0.0.1:4318`. */
  otlpUrl: string;
  apiUrl: string;
  store: Store;
  processor: Processor;
  gateway: Gateway;
  bus: InProcessBus;
  killSwitch: KillSwitch;
  /** Credentials, policy, leases, verification, notifiers, the event stream. */
  enforcement: KillSwitchRuntime;
  /** API and ingest tokens (with those generated at first start), the audit trail, ingest limits. */
  auth: RunningAuth;
  /** Where the MCP gateway listens (its servers at `<url>/mcp/<name>`); undefined when none is configured. */
  mcpGatewayUrl: string | undefined;
  logger: Logger;
  stop(): Promise<void>;
  /** The shutdown steps under way (logged when a shutdown outlasts its grace). */
  pendingStops(): string[];
}

/** What tests may replace in the embedded composition. */
export interface EmbeddedOverrides {
  /** Notifier targets instead of real HTTP ones. */
  notifierTargets?: KillSwitchRuntimeOptions['notifierTargets'];
}

/** Events the embedded processor may score ahead of their writes (see ProcessorOptions.persistAhead). */
const EMBEDDED_PERSIST_AHEAD = 50_000;

/** Registers a named cleanup; cleanups run in reverse order when the embedded mode stops (or fails to start). */
type AddCleanup = (name: string, cleanup: () => Promise<void>) => void;

export async function startEmbedded(
  config: Readonly<TriplineConfig>,
  logger: Logger = createLogger(config.logLevel),
  overrides: EmbeddedOverrides = {},
): Promise<RunningTripline> {
  // Read and checked once, before anything starts: the OTLP receiver, the API and the MCP gateway share it.
  const tls = readTls(config.tls);
  const store = await openClickHouseStore({
    url: config.store.url,
    username: config.store.username,
    password: config.store.password,
    dataDir: config.store.dataDir,
    database: config.store.database,
    logger,
  });
  const steps = createShutdownSteps(logger);
  // Last: nothing exits while the embedded engine still runs a query of a connection closed before.
  steps.add('embedded engine', () => drainEmbeddedEngine());
  steps.add('store', () => store.close());
  const addCleanup: AddCleanup = (name, cleanup) => steps.add(name, cleanup);
  const stopAll = (): Promise<void> => steps.run();

  // A span's path is receiver → gateway → bus → processor → kill switch → store. The parts are started from
  // the store outwards, so each exists before anything sends to it, and stopped from the receiver inwards.
  try {
    await store.migrate();
    const auth = await startAuth({
      config: config.auth,
      clickhouse: { ...config.store },
      logger,
      bootstrap: 'first-start',
    });
    addCleanup('auth', () => auth.stop());
    const detector = detectorConfigOf(config);
    const killSwitch = createLocalKillSwitch((error) =>
      logger.error({ err: messageOf(error) }, 'a kill-switch subscriber failed'),
    );
    // The processor is created after the kill switch's runtime (which must subscribe first), so task state is
    // looked up through this late-bound reference.
    const late: { processor?: Processor } = {};
    const enforcement = await startEmbeddedEnforcement(config, { store, killSwitch, late, logger, overrides });
    steps.add(
      'kill switch',
      () => enforcement.stop(),
      () => enforcement.pendingStops(),
    );
    const running = await createProcessor({
      store,
      killSwitch,
      detector,
      loops: config.loops,
      logger,
      taskIdleTimeoutMs: config.processor.taskIdleTimeoutMs,
      writeLingerMs: config.processor.writeLingerMs,
      escalation: config.killSwitch.escalation,
      hooks: enforcement.processorHooks,
      // The in-process bus keeps nothing durably: score the next batch (and decide its kills) while the
      // previous one is written.
      persistAhead: EMBEDDED_PERSIST_AHEAD,
      scoreInOrder: true,
      writeRevocations: (rows) => enforcement.writeRevocations(rows),
      spend: config.spend,
    });
    late.processor = running;
    addCleanup('processor', () => running.stop());

    const bus = createInProcessBus({
      capacity: config.bus.capacity,
      tenantCapacity: config.bus.tenantCapacity,
      batchSize: config.processor.batchSize,
      flushIntervalMs: config.processor.flushIntervalMs,
      logger,
    });
    await bus.start((batch) => running.handle(batch));
    addCleanup('bus', () => bus.stop());
    addCleanup('idle sweeper', startIdleSweeper(running, config.processor.taskIdleTimeoutMs, logger));

    const gateway = createGateway(bus, undefined, config.classify);
    const otlpAddress = await startOtlpReceiver(config, { gateway, auth, logger, tls }, addCleanup);
    const apiAddress = await startEmbeddedApi(
      config,
      { store, processor: running, detector, bus, auth, enforcement, logger, tls },
      addCleanup,
    );
    const mcp = await startEmbeddedMcpGateway(config, { enforcement, gateway, logger, tls });
    if (mcp !== undefined) addCleanup('mcp gateway', () => mcp.stop());

    return {
      otlpUrl: otlpAddress,
      apiUrl: apiAddress,
      store,
      processor: running,
      gateway,
      bus,
      killSwitch,
      enforcement,
      auth,
      mcpGatewayUrl: mcp?.url,
      logger,
      stop: stopAll,
      pendingStops: () => steps.pending(),
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/**
 * The kill switch's runtime over its own connection to the store. Task state comes from the processor's memory
 * (through `late`, set once the processor exists), else from the store; tasks given a token are registered
 * with the processor.
 */
function startEmbeddedEnforcement(
  config: Readonly<TriplineConfig>,
  parts: {
    store: Store;
    killSwitch: KillSwitch;
    late: { processor?: Processor };
    logger: Logger;
    overrides: EmbeddedOverrides;
  },
): Promise<KillSwitchRuntime> {
  const { store, killSwitch, late, logger, overrides } = parts;
  return startKillSwitchRuntime({
    config: config.killSwitch,
    storage: {
      url: config.store.url,
      username: config.store.username,
      password: config.store.password,
      dataDir: config.store.dataDir,
      database: config.store.database,
    },
    killSwitch,
    insertAlerts: (alerts) => store.insertAlerts(alerts),
    async taskState(tenant, taskId) {
      const known = late.processor?.taskSnapshot(tenant, taskId);
      if (known !== undefined) return known;
      const record = await store.getTask(tenant, taskId);
      return record === null
        ? undefined
        : {
            status: record.status,
            score: record.score,
            taskType: record.taskType,
            agentId: record.agentId,
            events: record.counts.tool_call + record.counts.data_access + record.counts.privilege_change,
          };
    },
    logger,
    onTaskStarted(claims, isNew) {
      late.processor
        ?.registerTask({
          tenant: claims.tenant,
          taskId: claims.taskId,
          taskType: claims.taskType,
          agentId: claims.agentId,
          startMs: claims.issuedAtMs,
          isNew,
        })
        .catch((error: unknown) =>
          logger.error({ err: messageOf(error), taskId: claims.taskId }, 'registering a credentialed task failed'),
        );
    },
    ...(overrides.notifierTargets === undefined ? {} : { notifierTargets: overrides.notifierTargets }),
  });
}

/** The OTLP/HTTP receiver in front of the gateway; returns where it listens. */
async function startOtlpReceiver(
  config: Readonly<TriplineConfig>,
  parts: { gateway: Gateway; auth: RunningAuth; logger: Logger; tls: TlsMaterial | undefined },
  addCleanup: AddCleanup,
): Promise<string> {
  const { gateway, auth, logger, tls } = parts;
  const otlpApp = createHttpServer(logger.child({ component: 'otlp' }), { tls });
  registerOtlpReceiver(otlpApp, {
    maxBodyBytes: config.otlp.maxBodyBytes,
    handler: (request, context) => gateway.ingest(request, context),
    authenticate: (authorization) => auth.authenticateIngest(authorization),
    rateLimiter: auth.rateLimiter,
    maxInFlightBytes: config.otlp.maxInFlightBytes,
  });
  const otlpAddress = await otlpApp.listen({ host: config.otlp.host, port: config.otlp.port });
  addCleanup('otlp receiver', () => closeHttpServer(otlpApp));
  return otlpAddress;
}

/** The HTTP API (with the kill switch's routes, detection and the console); returns where it listens. */
async function startEmbeddedApi(
  config: Readonly<TriplineConfig>,
  parts: {
    store: Store;
    processor: Processor;
    detector: DetectorConfig;
    bus: InProcessBus;
    auth: RunningAuth;
    enforcement: KillSwitchRuntime;
    logger: Logger;
    tls: TlsMaterial | undefined;
  },
  addCleanup: AddCleanup,
): Promise<string> {
  const { store, processor, detector, bus, auth, enforcement, logger, tls } = parts;
  // Detection queries and the console read over connections of their own (one chdb connection runs one
  // query at a time, and the processor's writes must not wait behind a person's dashboard).
  const detectionClient = openDetectionClient(config.store);
  addCleanup('detection client', () => detectionClient.close());
  const detectionQueries = createDetectionQueries(detectionClient, config.store.database);
  await detectionQueries.ensureSchema();
  const baselines = (): BaselineBook => processor.baselines();
  const apiApp = buildApiApp({
    ...apiDeps(store, processor, detector, bus, logger),
    tls,
    access: auth.api,
    admin: auth.admin,
    killSwitch: enforcement,
    detection: {
      feedback: createFeedback({
        store,
        queries: detectionQueries,
        baselines,
        ...(detector.afterEndGraceMs === undefined ? {} : { afterEndGraceMs: detector.afterEndGraceMs }),
      }),
      queries: detectionQueries,
      baselines,
      warmupTasks: detector.warmupTasks,
      agentWarmupTasks: detector.agentWarmupTasks,
    },
  });
  await registerConsole(apiApp, { openQueries: () => openConsoleQueries(config.store), logger });
  const apiAddress = await apiApp.listen({ host: config.api.host, port: config.api.port });
  addCleanup('api', () => closeHttpServer(apiApp));
  return apiAddress;
}

function apiDeps(
  store: Store,
  processor: Processor,
  detector: DetectorConfig,
  bus: InProcessBus,
  logger: Logger,
): Omit<ApiDeps, 'access'> {
  const book = processor.baselines();
  const regimeOf = (tasks: number): 'rules' | 'type_baseline' =>
    tasks >= detector.warmupTasks ? 'type_baseline' : 'rules';
  return {
    store,
    commands: processor,
    logger,
    detectorStatus(tenant, taskType) {
      const tasks = book.get(tenant, taskType)?.tasks ?? 0;
      return Promise.resolve({ regime: regimeOf(tasks), baselineTasks: tasks, warmupTasks: detector.warmupTasks });
    },
    baselines(tenant) {
      return Promise.resolve(
        book
          .list(tenant)
          .filter((entry) => entry.agentId === '' && entry.taskType !== FLEET_TASK_TYPE)
          .map((entry) => ({
            taskType: entry.taskType,
            tasks: entry.baseline.tasks,
            regime: regimeOf(entry.baseline.tasks),
            normal: describeBaseline(entry.baseline),
          })),
      );
    },
    async ready() {
      try {
        await store.ping();
        return { ready: true, checks: { store: 'ok', bus: `${bus.depth()} events queued` } };
      } catch (error) {
        return { ready: false, checks: { store: messageOf(error), bus: `${bus.depth()} events queued` } };
      }
    },
  };
}
