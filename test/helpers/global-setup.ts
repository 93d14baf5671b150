/**
 * vitest globalSetup: a real Kafka broker for the tests that need one.
 *
 * KAFKA_BROKERS set → that cluster is used and nothing is started. Otherwise test/kafka/broker.sh starts a
 * single-node KRaft broker (Java 17+ and Maven needed; jars cached in ~/.cache/tripline) and stops it at the end,
 * unless it was already running before the tests (then it is left running). Without Java/Maven the run FAILS
 * with a message saying what to install or to set KAFKA_BROKERS; it never skips.
 *
 * Tests read the brokers with `kafkaBrokers()` from test/helpers/kafka-broker.ts (`inject('kafkaBrokers')`).
 */
import type { TestProject } from 'vitest/node';
import { startBroker, stopBroker } from './kafka-broker.ts';

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const configured = process.env.KAFKA_BROKERS?.trim();
  if (configured !== undefined && configured !== '') {
    project.provide('kafkaBrokers', configured);
    return undefined;
  }
  const started = Date.now();
  const { brokers, startedHere } = await startBroker();
  console.log(
    `global-setup: Kafka broker ${brokers} ${startedHere ? `started in ${Date.now() - started} ms` : 'already running (left running)'}`,
  );
  project.provide('kafkaBrokers', brokers);
  if (!startedHere) return undefined;
  return async () => {
    await stopBroker();
  };
}
