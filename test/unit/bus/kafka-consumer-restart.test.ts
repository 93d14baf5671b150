/**
 * Consumers that kafkajs stops for good (a CRASH with `restart: false`, e.g. KafkaJSGroupCoordinatorNotFound
 * while a restarted broker loads its coordinator) are started again (services/bus/kafka/consumer-restart.ts).
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Consumer, ConsumerConfig, ConsumerRunConfig, Kafka } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { restartingConsumers } from '../../../services/bus/kafka/consumer-restart.ts';
import { createLogger } from '../../../services/shared/logger.ts';

const CRASH = 'consumer.crash';

class FakeConsumer {
  readonly events = { CRASH };
  readonly emitter = new EventEmitter();
  readonly runs: (ConsumerRunConfig | undefined)[] = [];
  connects = 0;
  failNextConnects = 0;

  on(event: string, listener: (payload: unknown) => void): void {
    this.emitter.on(event, listener);
  }

  connect(): Promise<void> {
    this.connects += 1;
    if (this.failNextConnects > 0) {
      this.failNextConnects -= 1;
      return Promise.reject(new Error('broker still away'));
    }
    return Promise.resolve();
  }

  run(config?: ConsumerRunConfig): Promise<void> {
    this.runs.push(config);
    return Promise.resolve();
  }

  disconnect(): Promise<void> {
    return Promise.resolve();
  }

  crash(restart: boolean): void {
    this.emitter.emit(CRASH, {
      payload: { error: new Error('Failed to find group coordinator'), groupId: 'g', restart },
    });
  }
}

function setUp(): { fake: FakeConsumer; consumer: Consumer; kafka: Kafka; producers: () => number } {
  const fake = new FakeConsumer();
  let producers = 0;
  const original = {
    consumer: (_config: ConsumerConfig) => fake as unknown as Consumer,
    producer() {
      producers += 1;
      return {};
    },
  } as unknown as Kafka;
  const kafka = restartingConsumers(original, createLogger('silent'), { delayMs: 10 });
  return { fake, consumer: kafka.consumer({ groupId: 'g' }), kafka, producers: () => producers };
}

describe('restartingConsumers', () => {
  it('connects and runs a consumer again, with its last configuration, after kafkajs gave up on it', async () => {
    const { fake, consumer } = setUp();
    const config: ConsumerRunConfig = { autoCommit: false, eachBatch: () => Promise.resolve() };
    await consumer.connect();
    await consumer.run(config);
    fake.failNextConnects = 2;
    fake.crash(false);
    await sleep(200);
    expect(fake.connects).toBe(4);
    expect(fake.runs).toEqual([config, config]);
  });

  it('leaves the restarts kafkajs does itself, and a consumer that was disconnected, alone', async () => {
    const { fake, consumer } = setUp();
    await consumer.run({});
    fake.crash(true);
    await sleep(50);
    expect(fake.runs).toHaveLength(1);
    await consumer.disconnect();
    fake.crash(false);
    await sleep(50);
    expect(fake.runs).toHaveLength(1);
  });

  it('keeps the rest of the client', () => {
    const { kafka, producers } = setUp();
    kafka.producer();
    expect(producers()).toBe(1);
  });
});
