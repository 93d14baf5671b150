/**
 * Consumers that run again after kafkajs gives up on them.
 *
 * kafkajs restarts a crashed consumer only when it deems the error retriable; after any other error the
 * consumer stays stopped for good (a CRASH event with `restart: false`) while the process goes on. One such
 * error comes with a broker restart: while the restarted broker still loads its group coordinator, kafkajs looks
 * for a coordinator, gets COORDINATOR_LOAD_IN_PROGRESS or NOT_COORDINATOR, does not retry them and throws
 * `KafkaJSGroupCoordinatorNotFound`. Found by the broker-restart drill (test/drills/kafka-broker-restart.test.ts):
 * the processor then consumed nothing more, so every span acknowledged afterwards was never scored, and a kill
 * switch bridge stopped hearing of other processes' kills.
 *
 * `restartingConsumers(kafka)` returns the same Kafka client whose consumers, after such a crash, are connected
 * and run again with the configuration of their last `run()` (their subscriptions are kept by kafkajs), after
 * `delayMs` and again after every failed attempt, until `disconnect()` is called. They then rejoin their group
 * and resume from the committed offsets, as after any restart.
 */
import type { Consumer, ConsumerConfig, ConsumerCrashEvent, ConsumerRunConfig, Kafka } from 'kafkajs';
import { messageOf } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';

export interface RestartOptions {
  /** Wait before each attempt to start a stopped consumer again. @default 1000 */
  delayMs?: number;
}

export function restartingConsumers(kafka: Kafka, logger: Logger, options: RestartOptions = {}): Kafka {
  const delayMs = options.delayMs ?? 1000;
  // The same client (producers, admins, its cluster) with one method replaced.
  const client = Object.create(kafka) as Kafka;
  client.consumer = (config: ConsumerConfig): Consumer =>
    keepRunning(kafka.consumer(config), config.groupId, logger, delayMs);
  return client;
}

function keepRunning(consumer: Consumer, groupId: string, logger: Logger, delayMs: number): Consumer {
  const run = consumer.run.bind(consumer);
  const disconnect = consumer.disconnect.bind(consumer);
  let lastRun: ConsumerRunConfig | undefined;
  let disconnected = false;
  let timer: NodeJS.Timeout | undefined;

  function schedule(): void {
    if (disconnected || timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      void startAgain();
    }, delayMs);
  }

  async function startAgain(): Promise<void> {
    if (disconnected || lastRun === undefined) return;
    try {
      await consumer.connect();
      await run(lastRun);
      logger.info({ groupId }, 'the Kafka consumer is running again');
    } catch (error) {
      logger.error(
        { groupId, err: messageOf(error), retryInMs: delayMs },
        'starting the Kafka consumer again failed; retrying',
      );
      schedule();
    }
  }

  consumer.run = (config?: ConsumerRunConfig) => {
    lastRun = config ?? {};
    return run(config);
  };
  consumer.disconnect = () => {
    disconnected = true;
    clearTimeout(timer);
    return disconnect();
  };
  consumer.on(consumer.events.CRASH, (event: ConsumerCrashEvent) => {
    if (event.payload.restart || disconnected || lastRun === undefined) return;
    logger.warn(
      { groupId, err: messageOf(event.payload.error), retryInMs: delayMs },
      'kafkajs stopped the Kafka consumer for good; starting it again',
    );
    schedule();
  });
  return consumer;
}
