/**
 * Kafka client authentication and per-role ACLs on a real broker (test/kafka/broker.sh with KAFKA_SASL_USERS:
 * SASL/SCRAM-SHA-256, StandardAuthorizer, nothing allowed without an ACL), with Tripline's own clients
 * (KAFKA_SASL_* → services/bus/kafka/client.ts) and the ACLs of services/bus/kafka/acls.ts:
 * - a client without credentials, or with a wrong password, gets nothing;
 * - each role starts with its own principal (the gateway creates the topics) and writes what it needs;
 * - a forged `{"action":"restore"}` on the revocations topic from the gateway's or an agent's credentials is
 *   refused by the broker, while the API's and a processor's kill switches publish and apply revocations: a task
 *   the API revoked stays revoked on the processor.
 */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Revocation } from '../../../schemas/events.ts';
import { loadConfig } from '../../../services/app/config.ts';
import { bridgedKillSwitch } from '../../../services/app/distributed-shared.ts';
import { applyAcls, triplineAcls } from '../../../services/bus/kafka/acls.ts';
import { createKafka, ensureTopics } from '../../../services/bus/kafka/client.ts';
import type { KafkaSettings } from '../../../services/bus/kafka/config.ts';
import type { KillSwitchBridge } from '../../../services/bus/kafka/kill-switch.ts';
import type { KillSwitch } from '../../../services/killswitch/kill-switch.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import { startOwnBroker } from '../../helpers/kafka-broker.ts';
import type { OwnBroker } from '../../helpers/kafka-broker.ts';
import { waitFor } from '../../helpers/wait.ts';
import { freshKafkaSettings } from './fixtures.ts';

const USERS = {
  admin: 'admin-secret-0123',
  gateway: 'gateway-secret-0123',
  processor: 'processor-secret-0123',
  api: 'api-secret-0123',
  agent: 'agent-secret-0123',
} as const;
type User = keyof typeof USERS;

const logger = createLogger('silent');

function revocation(action: 'revoke' | 'restore', taskId: string): Revocation {
  return {
    id: randomUUID(),
    tenant: 'default',
    taskId,
    taskType: 'acl_task',
    agentId: 'acl-agent',
    action,
    source: 'manual',
    actor: 'someone',
    reason: action === 'revoke' ? 'killed by an operator' : 'restored',
    reasons: [],
    score: 0,
    eventId: '',
    timeMs: Date.now(),
  };
}

describe('Kafka: SASL/SCRAM clients and per-role ACLs on a real broker', () => {
  let broker: OwnBroker | undefined;
  let settings: KafkaSettings;
  const as = (user: User): KafkaSettings => {
    // The role's settings as a process gets them from its environment (KAFKA_SASL_*).
    const config = loadConfig({
      KAFKA_BROKERS: settings.brokers.join(','),
      KAFKA_SASL_MECHANISM: 'scram-sha-256',
      KAFKA_SASL_USERNAME: user,
      KAFKA_SASL_PASSWORD: USERS[user],
    });
    return { ...settings, sasl: config.kafka.sasl };
  };
  const bridges: KillSwitchBridge[] = [];
  let processorSwitch: KillSwitch;
  let apiSwitch: KillSwitch;

  beforeAll(async () => {
    const own = await startOwnBroker({ saslUsers: USERS });
    broker = own;
    settings = freshKafkaSettings(own.brokers, { partitions: 2 });
    const admin = createKafka(as('admin'), logger, { role: 'acl-admin' }).admin();
    await admin.connect();
    await applyAcls(admin, triplineAcls(settings, { gateway: 'gateway', processor: 'processor', api: 'api' }));
    await admin.disconnect();
    // The gateway, first to start, creates the topics with its own principal.
    await ensureTopics(createKafka(as('gateway'), logger, { role: 'gateway' }), as('gateway'), logger);
    const processor = await bridgedKillSwitch(as('processor'), logger, 'processor');
    const api = await bridgedKillSwitch(as('api'), logger, 'api');
    bridges.push(processor.bridge, api.bridge);
    processorSwitch = processor.killSwitch;
    apiSwitch = api.killSwitch;
  }, 240_000);

  afterAll(async () => {
    for (const bridge of bridges) await bridge.stop().catch(() => undefined);
    await broker?.destroy();
  }, 60_000);

  it('refuses clients without credentials or with a wrong password', async () => {
    const anonymous = new Kafka({
      brokers: settings.brokers,
      logLevel: logLevel.NOTHING,
      connectionTimeout: 2000,
      retry: { retries: 0 },
    }).admin();
    await expect(anonymous.connect().then(() => anonymous.listTopics())).rejects.toThrow();
    await anonymous.disconnect().catch(() => undefined);
    const wrong = createKafka(
      { ...settings, sasl: { mechanism: 'scram-sha-256', username: 'api', password: 'not-the-password' } },
      logger,
      { role: 'wrong', connectionTimeoutMs: 2000 },
    ).admin({ retry: { retries: 0 } });
    await expect(wrong.connect()).rejects.toThrow(/SASL|authentication/i);
    await wrong.disconnect().catch(() => undefined);
  });

  it('lets the gateway write spans, and nothing else', async () => {
    const producer = createKafka(as('gateway'), logger, { role: 'gateway' }).producer({ retry: { retries: 0 } });
    await producer.connect();
    try {
      await producer.send({ topic: settings.topics.tool_call, messages: [{ key: 't', value: 'span bytes' }] });
      await expect(
        producer.send({ topic: settings.topics.alerts, messages: [{ key: 't', value: '{}' }] }),
      ).rejects.toThrow(/authoriz/i);
    } finally {
      await producer.disconnect();
    }
  });

  it('refuses a forged restore from the gateway and from an agent; the API and the processors revoke and restore', async () => {
    const taskId = `acl-${randomUUID()}`;
    // The API revokes the task: the processor's kill switch applies it.
    apiSwitch.apply(revocation('revoke', taskId));
    await waitFor('the processor to apply the API kill', () => processorSwitch.isRevoked('default', taskId), 30_000);

    for (const user of ['gateway', 'agent'] as const) {
      const producer = createKafka(as(user), logger, { role: `forger-${user}` }).producer({ retry: { retries: 0 } });
      await producer.connect().catch(() => undefined);
      const forged = revocation('restore', taskId);
      await expect(
        producer.send({
          topic: settings.topics.revocations,
          messages: [{ key: taskId, value: JSON.stringify(forged) }],
        }),
        `${user} may not write ${settings.topics.revocations}`,
      ).rejects.toThrow(/authoriz/i);
      await producer.disconnect().catch(() => undefined);
    }
    // A processor's own publication (the detector's decision) reaches the API, and the task is still revoked
    // everywhere: nothing forged arrived.
    const other = `acl-${randomUUID()}`;
    processorSwitch.apply(revocation('revoke', other));
    await waitFor('the API to apply the processor kill', () => apiSwitch.isRevoked('default', other), 30_000);
    expect(processorSwitch.isRevoked('default', taskId)).toBe(true);
    expect(apiSwitch.isRevoked('default', taskId)).toBe(true);

    // A person's restore through the API is the one that un-revokes it.
    apiSwitch.apply(revocation('restore', taskId));
    await waitFor(
      'the processor to apply the API restore',
      () => !processorSwitch.isRevoked('default', taskId),
      30_000,
    );
  });
});
