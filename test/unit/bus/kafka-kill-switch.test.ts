/**
 * The kill switch's Kafka bridge, over a recording producer: a kill's alert and revocation, emitted in one
 * synchronous pass, go out in one produce request (the revocation does not wait for the alert's acknowledgement).
 */
import type { Kafka, ProducerBatch } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import type { Alert, Revocation } from '../../../schemas/events.ts';
import { bridgeKillSwitchToKafka, revocationOf } from '../../../services/bus/kafka/kill-switch.ts';
import { createLocalKillSwitch } from '../../../services/killswitch/kill-switch.ts';
import { createLogger } from '../../../services/shared/logger.ts';

const revocation: Revocation = {
  id: 'r-1',
  tenant: 't',
  taskId: 'task-1',
  taskType: 'x',
  agentId: 'a',
  action: 'revoke',
  source: 'detector',
  actor: 'tripline',
  reason: 'r',
  reasons: [],
  score: 100,
  eventId: 'e',
  timeMs: 1,
};
const alert: Alert = {
  id: 'a-1',
  tenant: 't',
  taskId: 'task-1',
  taskType: 'x',
  agentId: 'a',
  eventId: 'e',
  timeMs: 1,
  score: 100,
  decision: 'revoke',
  regime: 'rules',
  reasons: [],
  shadow: false,
};

function recordingKafka(requests: { topic: string; messages: number }[][]): Kafka {
  const producer = {
    connect: () => Promise.resolve(),
    disconnect: () => Promise.resolve(),
    sendBatch: (batch: ProducerBatch) => {
      requests.push(
        (batch.topicMessages ?? []).map((topic) => ({ topic: topic.topic, messages: topic.messages.length })),
      );
      return Promise.resolve([]);
    },
  };
  return { producer: () => producer } as unknown as Kafka;
}

describe('bridgeKillSwitchToKafka', () => {
  it('publishes the alert and the revocation of one kill in one produce request', async () => {
    const requests: { topic: string; messages: number }[][] = [];
    const killSwitch = createLocalKillSwitch();
    const bridge = bridgeKillSwitchToKafka({
      kafka: recordingKafka(requests),
      killSwitch,
      topics: { alerts: 'alerts', revocations: 'revocations' },
      logger: createLogger('silent'),
      subscribe: false,
    });
    await bridge.start();
    killSwitch.alert(alert);
    killSwitch.apply(revocation);
    await bridge.flush();
    expect(requests).toEqual([
      [
        { topic: 'alerts', messages: 1 },
        { topic: 'revocations', messages: 1 },
      ],
    ]);
    await bridge.stop();
  });

  it("reads a revocation's escalation basis, drops a malformed one and keeps the kill", () => {
    const scoped = { ...revocation, escalation: { counts: true, basis: 'hard_rule', endUser: 'u-1' } };
    expect(revocationOf(JSON.parse(JSON.stringify(scoped)))).toEqual(scoped);
    expect(revocationOf({ ...revocation, escalation: { counts: 'yes', basis: 'hard_rule' } })).toEqual(revocation);
    expect(revocationOf({ ...revocation, escalation: { counts: true, basis: 'made_up' } })).toEqual(revocation);
    const long = revocationOf({
      ...revocation,
      escalation: { counts: true, basis: 'manual', endUser: 'x'.repeat(999) },
    });
    expect(long?.escalation?.endUser).toHaveLength(128);
    expect(revocationOf({ ...revocation, taskId: '' })).toBeUndefined();
  });
});
