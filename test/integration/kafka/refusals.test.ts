/**
 * Refusals across processes (docs/loops.md, distributed mode): a refusal alert a processor's kill switch raises is
 * published on the alerts topic once; another process's bridge with `applyRemoteRefusals` raises it on its own kill
 * switch (so its API's /v1/check and stream refuse the task) and does not publish it again; other alerts are not
 * applied there; a bridge without the option applies none.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../../schemas/events.ts';
import { createKafka, ensureTopics } from '../../../services/bus/kafka/client.ts';
import { bridgeKillSwitchToKafka } from '../../../services/bus/kafka/kill-switch.ts';
import type { KillSwitchBridge } from '../../../services/bus/kafka/kill-switch.ts';
import { createLocalKillSwitch } from '../../../services/killswitch/kill-switch.ts';
import type { KillSwitch } from '../../../services/killswitch/kill-switch.ts';
import { RefusalBook } from '../../../services/killswitch/refusals.ts';
import { kafkaBrokers } from '../../helpers/kafka-broker.ts';
import { waitFor } from '../../helpers/wait.ts';
import { freshKafkaSettings, plainKafka, readTopic, testLogger } from './fixtures.ts';

const NOW = Date.now();

function alert(id: string, taskId: string, refuseUntilMs?: number): Alert {
  return {
    id,
    tenant: 'default',
    taskId,
    taskType: 'customer_refund',
    agentId: 'refund-agent',
    eventId: `${taskId}:span`,
    timeMs: NOW,
    score: 50,
    decision: 'alert',
    regime: 'rules',
    reasons: [
      refuseUntilMs === undefined
        ? 'data.rows_per_task: read 9 rows'
        : 'loop.repeat: tool get_order was called 10 times with the same arguments in this task (its next calls are refused)',
    ],
    shadow: false,
    ...(refuseUntilMs === undefined ? {} : { refuseUntilMs }),
  };
}

describe('refusal alerts across processes', () => {
  const brokers = kafkaBrokers();
  const settings = freshKafkaSettings(brokers, { partitions: 1 });
  const logger = testLogger();
  const processorSide: { killSwitch?: KillSwitch; bridge?: KillSwitchBridge } = {};
  const apiSide: { killSwitch?: KillSwitch; bridge?: KillSwitchBridge } = {};
  const plainSide: { killSwitch?: KillSwitch; bridge?: KillSwitchBridge } = {};
  const apiAlerts: Alert[] = [];
  const plainAlerts: Alert[] = [];
  const processorPublished: Alert[] = [];
  const book = new RefusalBook();

  function bridged(target: typeof processorSide, applyRemoteRefusals: boolean, sink?: Alert[]): Promise<void> {
    const killSwitch = createLocalKillSwitch();
    killSwitch.subscribe((message) => {
      if (message.type === 'alert') sink?.push(message.alert);
    });
    const bridge = bridgeKillSwitchToKafka({
      kafka: createKafka(settings, logger, { role: 'test' }),
      killSwitch,
      topics: settings.topics,
      logger,
      applyRemoteRefusals,
    });
    target.killSwitch = killSwitch;
    target.bridge = bridge;
    return bridge.start();
  }

  beforeAll(async () => {
    await ensureTopics(plainKafka(brokers), settings, logger);
    await Promise.all([
      bridged(processorSide, false, processorPublished),
      bridged(apiSide, true, apiAlerts),
      bridged(plainSide, false, plainAlerts),
    ]);
    apiSide.killSwitch?.subscribe((message) => {
      if (message.type === 'alert') book.note(message.alert);
    });
    // The consumers join their groups before anything is published (they read from the end).
    await waitFor(
      'the API side to receive a first refusal',
      async () => {
        processorSide.killSwitch?.alert(alert(`warmup-${String(apiAlerts.length)}`, 'warmup-task', NOW + 60_000));
        await processorSide.bridge?.flush();
        return apiAlerts.some((received) => received.taskId === 'warmup-task');
      },
      150_000,
      1000,
    );
  }, 180_000);

  afterAll(async () => {
    await Promise.all([processorSide.bridge?.stop(), apiSide.bridge?.stop(), plainSide.bridge?.stop()]);
  });

  it('applies a refusal on the API side once, and no other alert', async () => {
    const untilMs = NOW + 60_000;
    processorSide.killSwitch?.alert(alert('plain-1', 'task-a'));
    processorSide.killSwitch?.alert(alert('refusal-1', 'task-a', untilMs));
    await processorSide.bridge?.flush();
    const received = await waitFor('the refusal on the API side', () =>
      apiAlerts.find((candidate) => candidate.id === 'refusal-1'),
    );
    expect(received.refuseUntilMs).toBe(untilMs);
    expect(book.of('default', 'task-a', NOW)).toEqual({ reason: received.reasons[0], untilMs });
    const withTime = {
      ...alert('refusal-2', 'task-b', untilMs),
      reasons: [`loop.cycle: x until ${new Date(untilMs).toISOString()}`],
    };
    book.note(withTime);
    expect(book.of('default', 'task-b', NOW)).toEqual({ reason: 'loop.cycle: x', untilMs });
    expect(book.of('default', 'task-a', untilMs)).toBeUndefined();
    expect(apiAlerts.filter((candidate) => candidate.id === 'plain-1')).toEqual([]);
    // Published once (by the processor side): the API side did not publish it again. Anything it published came
    // before its flush resolved, so before a sentinel published after it (one partition keeps the order): the
    // records up to the sentinel are exactly the processor side's.
    await apiSide.bridge?.flush();
    processorSide.killSwitch?.alert(alert('sentinel', 'task-z'));
    await processorSide.bridge?.flush();
    const records = await readTopic(brokers, settings.topics.alerts, processorPublished.length);
    const ids = records.map((record) => (JSON.parse(record.value?.toString('utf8') ?? '{}') as { id: string }).id);
    expect(ids).toEqual(processorPublished.map((published) => published.id));
    expect(ids.filter((id) => id === 'refusal-1')).toHaveLength(1);
    // A bridge without the option applies no refusal.
    expect(plainAlerts).toEqual([]);
  });
});
