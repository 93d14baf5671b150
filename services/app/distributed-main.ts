/**
 * Command-line runner of the distributed mode, shared by the per-service entry scripts
 * (`node services/app/gateway-main.ts`, `processor-main.ts`, `api-main.ts`) and by `services/app/main.ts` when
 * KAFKA_BROKERS is set. Roles come from TRIPLINE_ROLES when it is set, else from the script. Stops cleanly
 * (draining) on SIGINT/SIGTERM.
 */
import { loadConfig } from './config.ts';
import type { TriplineConfig } from './config.ts';
import { readRoles, startDistributed } from './distributed.ts';
import type { Role } from './distributed.ts';
import { isTriplineError, messageOf } from '../shared/errors.ts';
import { createLogger } from '../shared/logger.ts';
import type { Logger } from '../shared/logger.ts';

/**
 * Stops `running` (draining) on SIGINT or SIGTERM, then exits: 0 when it stopped cleanly, 1 otherwise. The stop is
 * bounded by `graceMs` (TRIPLINE_SHUTDOWN_GRACE_MS): past it, or at a second signal, the steps still under way are
 * logged (SHUTDOWN_TIMEOUT, naming them) and the process exits with code 1 rather than hang.
 */
export function stopOnSignals(
  running: { stop(): Promise<void>; pendingStops?(): string[] },
  logger: Logger,
  graceMs: number,
): void {
  let startedMs: number | undefined;
  const giveUp = (why: string): void => {
    const pending = running.pendingStops?.() ?? [];
    logger.error(
      { code: 'SHUTDOWN_TIMEOUT', graceMs, pending },
      `${why}; exiting with steps still under way: ${pending.join(', ') || 'unknown'}`,
    );
    process.exit(1);
  };
  const shutdown = (signal: string): void => {
    if (startedMs !== undefined) {
      giveUp(`${signal} again after ${Date.now() - startedMs} ms of stopping`);
      return;
    }
    const started = Date.now();
    startedMs = started;
    logger.info({ signal, graceMs }, 'stopping');
    setTimeout(() => giveUp(`stopping took longer than ${graceMs} ms`), graceMs);
    running.stop().then(
      () => {
        logger.info({ ms: Date.now() - started }, 'stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: messageOf(error) }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

export async function runDistributedMain(
  defaultRoles: readonly Role[],
  preloaded?: { config: Readonly<TriplineConfig>; logger: Logger },
): Promise<void> {
  let config: Readonly<TriplineConfig>;
  let roles: Role[];
  try {
    config = preloaded?.config ?? loadConfig();
    roles =
      process.env.TRIPLINE_ROLES === undefined || process.env.TRIPLINE_ROLES.trim() === ''
        ? [...defaultRoles]
        : readRoles();
  } catch (error) {
    process.stderr.write(`tripline: ${messageOf(error)}\n`);
    process.exit(2);
  }
  const logger = preloaded?.logger ?? createLogger(config.logLevel);
  try {
    const running = await startDistributed(config, roles, { logger });
    logger.info(
      {
        roles,
        otlp: running.gateway === undefined ? undefined : `${running.gateway.otlpUrl}/v1/traces`,
        api: running.api?.apiUrl,
        brokers: config.kafka.brokers,
        store: config.store.url ?? config.store.dataDir,
      },
      `Tripline (distributed: ${roles.join(', ')}) is running`,
    );
    stopOnSignals(running, logger, config.shutdownGraceMs);
  } catch (error) {
    const code = isTriplineError(error) ? error.code : 'START_FAILED';
    logger.fatal({ code, err: messageOf(error) }, `Tripline could not start: ${messageOf(error)}`);
    process.exit(1);
  }
}
