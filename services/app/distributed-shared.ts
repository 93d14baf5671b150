/**
 * What the distributed mode's services share: what a service may be given instead of building it itself, the
 * lifecycle that stops its parts in reverse order, and the store and Kafka-bridged kill switch a service opens
 * when it is not given them. See services/app/distributed.ts.
 */
import type { Revocation } from '../../schemas/events.ts';
import { createKafka } from '../bus/kafka/client.ts';
import { loadKafkaSettings } from '../bus/kafka/config.ts';
import type { KafkaSettings } from '../bus/kafka/config.ts';
import { restartingConsumers } from '../bus/kafka/consumer-restart.ts';
import { bridgeKillSwitchToKafka } from '../bus/kafka/kill-switch.ts';
import type { KillSwitchBridge } from '../bus/kafka/kill-switch.ts';
import type { TriplineConfig } from './config.ts';
import { createLocalKillSwitch } from '../killswitch/kill-switch.ts';
import type { KillSwitch } from '../killswitch/kill-switch.ts';
import { messageOf } from '../shared/errors.ts';
import type { Env } from '../shared/env.ts';
import type { Logger } from '../shared/logger.ts';
import { openClickHouseStore } from '../store/clickhouse/store.ts';
import type { Store } from '../store/store.ts';

/** What a service may be given instead of building it itself (tests; several roles in one process). */
export interface ServiceDeps {
  logger?: Logger;
  /** Kafka settings; default `loadKafkaSettings(config.kafka, env)`. */
  kafka?: KafkaSettings;
  env?: Env;
  /** A store opened (and migrated) by the caller, who also closes it. */
  store?: Store;
  /** A kill switch already bridged to Kafka by the caller, who also stops the bridge. */
  killSwitch?: { killSwitch: KillSwitch; bridge: KillSwitchBridge };
  /** How long a stopping processor waits for the batch in hand to be written. @default 30000 */
  drainTimeoutMs?: number;
}

/** Runs cleanups in reverse order once, logging failures; returns the idempotent stop. */
export function stopper(logger: Logger): { add(cleanup: () => Promise<void>): void; stop(): Promise<void> } {
  const cleanups: (() => Promise<void>)[] = [];
  let stopping: Promise<void> | undefined;
  return {
    add: (cleanup) => cleanups.push(cleanup),
    stop() {
      stopping ??= (async () => {
        for (const cleanup of cleanups.splice(0).reverse()) {
          try {
            await cleanup();
          } catch (error) {
            logger.error({ err: messageOf(error) }, 'error while stopping');
          }
        }
      })();
      return stopping;
    },
  };
}

export function settingsOf(config: Readonly<TriplineConfig>, deps: ServiceDeps): KafkaSettings {
  return deps.kafka ?? loadKafkaSettings(config.kafka, deps.env);
}

export async function openStore(config: Readonly<TriplineConfig>, logger: Logger): Promise<Store> {
  const store = await openClickHouseStore({
    url: config.store.url,
    username: config.store.username,
    password: config.store.password,
    dataDir: config.store.dataDir,
    database: config.store.database,
    logger,
  });
  try {
    await store.migrate();
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

export async function bridgedKillSwitch(
  settings: KafkaSettings,
  logger: Logger,
  role: string,
  onRemoteRevocation?: (revocation: Revocation) => void,
  applyRemoteRefusals = false,
): Promise<{ killSwitch: KillSwitch; bridge: KillSwitchBridge }> {
  const killSwitch = createLocalKillSwitch((error) =>
    logger.error({ err: messageOf(error) }, 'a kill-switch subscriber failed'),
  );
  const bridge = bridgeKillSwitchToKafka({
    kafka: restartingConsumers(createKafka(settings, logger, { role: `${role}-killswitch` }), logger),
    killSwitch,
    topics: settings.topics,
    logger,
    ...(onRemoteRevocation === undefined ? {} : { onRemoteRevocation }),
    applyRemoteRefusals,
  });
  await bridge.start();
  return { killSwitch, bridge };
}
