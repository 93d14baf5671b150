/**
 * Kafka settings from the environment: defaults, topic names, and bad values named with what is accepted.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_TOPICS } from '../../../schemas/conventions.ts';
import { KAFKA_CONFIG_VARIABLES, allTopics, loadKafkaSettings } from '../../../services/bus/kafka/config.ts';
import { readRoles } from '../../../services/app/distributed.ts';
import { isTriplineError } from '../../../services/shared/errors.ts';

const base = { brokers: ['kafka:9092'], clientId: 'tripline', partitions: 6, groupId: 'tripline-processor' };

function errorOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (isTriplineError(error, 'CONFIG_INVALID')) return error.message;
    throw error;
  }
  throw new Error('no error');
}

describe('Kafka settings', () => {
  it('has defaults for everything but the brokers', () => {
    const settings = loadKafkaSettings(base, {});
    expect(settings.topics).toEqual(DEFAULT_TOPICS);
    expect(settings.producer).toEqual({
      compression: 'gzip',
      publishTimeoutMs: 5000,
      retryAfterSeconds: 2,
      maxInFlightBytes: 64 * 1024 * 1024,
      lingerMs: 100,
      maxBatchBytes: 900_000,
      maxRecordBytes: 900_000,
    });
    expect(settings.consumer).toEqual({
      sessionTimeoutMs: 30_000,
      heartbeatIntervalMs: 3000,
      rebalanceTimeoutMs: 60_000,
      maxBytes: 4 * 1024 * 1024,
      maxPollIntervalMs: 300_000,
    });
    expect(settings.replicationFactor).toBe(-1);
    expect(Object.isFrozen(settings.topics)).toBe(true);
    // Every variable read is listed for the README.
    expect(KAFKA_CONFIG_VARIABLES.map(([name]) => name)).toContain('TRIPLINE_TOPIC_DEAD_LETTER');
  });

  it('reads topic names and knobs', () => {
    const settings = loadKafkaSettings(base, {
      TRIPLINE_TOPIC_TOOL_CALLS: 'acme.tools',
      TRIPLINE_KAFKA_COMPRESSION: 'zstd',
      TRIPLINE_KAFKA_PUBLISH_TIMEOUT_MS: '2500',
    });
    expect(settings.topics.tool_call).toBe('acme.tools');
    expect(allTopics(settings.topics)).toHaveLength(6);
    expect(settings.producer.compression).toBe('zstd');
    expect(settings.producer.publishTimeoutMs).toBe(2500);
  });

  it('refuses bad values with the variable and what it accepts', () => {
    expect(errorOf(() => loadKafkaSettings({ ...base, brokers: undefined }, {}))).toMatch(/KAFKA_BROKERS is not set/);
    expect(errorOf(() => loadKafkaSettings(base, { TRIPLINE_TOPIC_ALERTS: 'bad topic!' }))).toMatch(
      /TRIPLINE_TOPIC_ALERTS="bad topic!" is invalid: expected a Kafka topic name/,
    );
    expect(errorOf(() => loadKafkaSettings(base, { TRIPLINE_TOPIC_ALERTS: 'tripline.tool_calls' }))).toMatch(
      /must differ/,
    );
    expect(errorOf(() => loadKafkaSettings(base, { TRIPLINE_KAFKA_COMPRESSION: 'lz4' }))).toMatch(
      /one of gzip, zstd, none/,
    );
    expect(errorOf(() => loadKafkaSettings(base, { TRIPLINE_KAFKA_MAX_RECORD_BYTES: '2000000' }))).toMatch(
      /TRIPLINE_KAFKA_MAX_RECORD_BYTES/,
    );
    expect(errorOf(() => loadKafkaSettings(base, { TRIPLINE_KAFKA_HEARTBEAT_INTERVAL_MS: '30000' }))).toMatch(
      /below|29999/,
    );
    expect(errorOf(() => loadKafkaSettings(base, { TRIPLINE_KAFKA_REPLICATION_FACTOR: '0' }))).toMatch(
      /-1 \(broker default\) or 1 to 32/,
    );
  });

  it('reads the roles of a process', () => {
    expect(readRoles({})).toEqual(['gateway', 'processor', 'api']);
    expect(readRoles({ TRIPLINE_ROLES: 'processor, api' })).toEqual(['processor', 'api']);
    expect(errorOf(() => readRoles({ TRIPLINE_ROLES: 'gateway,learner' }))).toMatch(/TRIPLINE_ROLES/);
  });
});
