/**
 * Kafka client credentials from the environment (KAFKA_SASL_*, KAFKA_SSL) and the ACLs of each role
 * (services/bus/kafka/acls.ts): only the API and the processors may write the revocations topic.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../services/app/config.ts';
import { triplineAcls } from '../../../services/bus/kafka/acls.ts';
import { allTopics, loadKafkaSettings, spanTopics } from '../../../services/bus/kafka/config.ts';
import { isTriplineError } from '../../../services/shared/errors.ts';

function errorOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (isTriplineError(error, 'CONFIG_INVALID')) return error.message;
    throw error;
  }
  throw new Error('no error');
}

describe('Kafka client credentials', () => {
  it('has none by default', () => {
    const config = loadConfig({ KAFKA_BROKERS: 'kafka:9092' });
    expect(config.kafka.sasl).toBeUndefined();
    expect(config.kafka.ssl).toBe(false);
    expect(loadKafkaSettings(config.kafka, {}).sasl).toBeUndefined();
  });

  it('reads a SASL mechanism, user and password, and TLS, into the Kafka settings', () => {
    const env = {
      KAFKA_BROKERS: 'kafka:9092',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'tripline-api',
      KAFKA_SASL_PASSWORD: 'a-password',
      KAFKA_SSL: 'true',
    };
    const settings = loadKafkaSettings(loadConfig(env).kafka, env);
    expect(settings.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'tripline-api', password: 'a-password' });
    expect(settings.ssl).toBe(true);
  });

  it('refuses a mechanism without a user or a password, without showing the password', () => {
    expect(errorOf(() => loadConfig({ KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_PASSWORD: 'p' }))).toMatch(
      /KAFKA_SASL_USERNAME/,
    );
    const missing = errorOf(() => loadConfig({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u' }));
    expect(missing).toMatch(/KAFKA_SASL_PASSWORD/);
    expect(errorOf(() => loadConfig({ KAFKA_SASL_MECHANISM: 'kerberos' }))).toMatch(/KAFKA_SASL_MECHANISM/);
  });
});

describe('Kafka ACLs of the roles', () => {
  const settings = loadKafkaSettings(loadConfig({ KAFKA_BROKERS: 'kafka:9092' }).kafka, {});
  const acls = triplineAcls(settings, { gateway: 'gw', collector: 'otel', processor: 'proc', api: 'api' });
  const writers = (topic: string): string[] =>
    [
      ...new Set(
        acls
          .filter((acl) => acl.resource === 'topic' && acl.name === topic && acl.operation === 'write')
          .map((acl) => acl.principal),
      ),
    ].sort();

  it('lets only the API and the processors write revocations and alerts', () => {
    expect(writers(settings.topics.revocations)).toEqual(['User:api', 'User:proc']);
    expect(writers(settings.topics.alerts)).toEqual(['User:api', 'User:proc']);
    expect(writers(settings.topics.deadLetter)).toEqual(['User:proc']);
  });

  it('lets the gateway and the collector write the span topics, which only the processors read', () => {
    for (const topic of spanTopics(settings.topics)) {
      expect(writers(topic)).toEqual(['User:gw', 'User:otel']);
      const readers = acls.filter((acl) => acl.name === topic && acl.operation === 'read').map((acl) => acl.principal);
      expect(readers).toEqual(['User:proc']);
    }
  });

  it('grants nothing beyond the Tripline topics and groups, and nothing to a role without a principal', () => {
    const names = new Set([...allTopics(settings.topics), settings.groupId, 'tripline-killswitch-']);
    for (const acl of acls) expect(names.has(acl.name), acl.name).toBe(true);
    const partial = triplineAcls(settings, { api: 'api' });
    expect(new Set(partial.map((acl) => acl.principal))).toEqual(new Set(['User:api']));
  });
});
