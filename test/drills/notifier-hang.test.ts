/**
 * Drill: a notifier endpoint that hangs; kills and the other notifiers are unaffected. The distributed mode on
 * the real broker: the processor decides kills, the API service (its own kill switch, reached over the
 * revocations topic) owns the notifiers: a webhook whose endpoint hangs (accepts connections, never answers),
 * a healthy webhook and a healthy Slack webhook. Agents export benign tasks and, one after another, rogue ones.
 *
 * While the endpoint hangs: every rogue task is revoked exactly once, the API's kill switch (introspection,
 * checks, the event stream) knows at once, and both healthy destinations get exactly one notification per kill.
 * Then the endpoint answers again: its notifier's retries deliver every kill, once per idempotency key. Time to
 * recover: from the endpoint answering again until it has every notification.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiService, startGatewayService, startProcessorService } from '../../services/app/distributed.ts';
import type { RunningApiService, RunningGateway, RunningProcessorService } from '../../services/app/distributed.ts';
import { openClickHouseStore } from '../../services/store/clickhouse/store.ts';
import type { Store } from '../../services/store/store.ts';
import { kafkaBrokers } from '../helpers/kafka-broker.ts';
import { waitFor } from '../helpers/wait.ts';
import {
  api,
  concludeDrill,
  drillConfig,
  drillEnv,
  drillLogger,
  drillRunId,
  openAuditClient,
  revocationsByTask,
  seconds,
  startAgents,
  startReceiver,
  storedEvents,
  taskExport,
  waitUntilStored,
} from './helpers.ts';
import type { Receiver } from './helpers.ts';

const DATABASE = 'drill_notifier';
const PREFIX = 'notify';
const ROGUES = 3;
/** How long the endpoint hangs: several of its notifier's 2 s timeouts, so that attempts time out and retry. */
const HANG_MS = 8000;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

describe('drill: a notifier endpoint that hangs', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-drill-notifier-'));
  const logger = drillLogger();
  let hanging: Receiver;
  let webhook: Receiver;
  let slack: Receiver;
  let store: Store;
  let processor: RunningProcessorService;
  let gateway: RunningGateway;
  let apiService: RunningApiService;
  let audit: ClickHouseClient;

  beforeAll(async () => {
    [hanging, webhook, slack] = await Promise.all([startReceiver(), startReceiver(), startReceiver()]);
    const kinds = ['revocation'];
    const notifiers = [
      {
        type: 'webhook',
        name: 'hanging-webhook',
        url: hanging.url,
        secret: 'drill-secret',
        kinds,
        timeoutMs: 2000,
        maxAttempts: 20,
        initialBackoffMs: 200,
        maxBackoffMs: 1000,
      },
      { type: 'webhook', name: 'webhook', url: webhook.url, secret: 'drill-secret', kinds },
      { type: 'slack', name: 'slack', url: slack.url, kinds },
    ];
    const env = drillEnv({
      brokers: kafkaBrokers(),
      run: drillRunId(),
      dataDir,
      database: DATABASE,
      extra: { TRIPLINE_NOTIFIERS: JSON.stringify(notifiers), TRIPLINE_KEYS_DIR: join(dataDir, 'keys') },
    });
    const { config, kafka } = drillConfig(env);
    store = await openClickHouseStore({ dataDir, database: DATABASE });
    await store.migrate();
    processor = await startProcessorService(config, { kafka, store, logger });
    apiService = await startApiService(config, { kafka, store, logger });
    gateway = await startGatewayService(config, { kafka, logger });
    audit = openAuditClient({ dataDir });
  }, 180_000);

  afterAll(async () => {
    hanging.recover();
    await gateway.stop();
    await apiService.stop();
    await processor.stop();
    await store.close();
    await audit.close();
    await Promise.all([hanging.close(), webhook.close(), slack.close()]);
    rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it('kills and the other notifiers go on while one endpoint hangs; it gets every kill once it answers', async () => {
    const agents = startAgents({
      target: () => gateway.otlpUrl,
      count: 3,
      eventsPerTask: 9,
      pauseMs: 40,
      prefix: PREFIX,
    });
    await waitFor(
      'the first events in ClickHouse',
      async () => (await storedEvents(audit, DATABASE, PREFIX)) > 0,
      60_000,
    );
    hanging.hang();
    const hangingSince = Date.now();

    // When the API process's kill switch (introspection, checks, the event stream) learns of each kill.
    const knownAt = new Map<string, number>();
    apiService.killSwitch.subscribe((message) => {
      if (message.type === 'revocation' && message.revocation.action === 'revoke')
        knownAt.set(message.revocation.taskId, Date.now());
    });
    const rogues: string[] = [];
    const killLatencies: number[] = [];
    const notifyLatencies: number[] = [];
    for (let i = 0; i < ROGUES; i += 1) {
      const rogue = `${PREFIX}-rogue-${i}`;
      rogues.push(rogue);
      // Each rogue task of its own agent: a third revocation of one agent would escalate to the agent.
      await agents.send(taskExport({ taskId: rogue, agentId: `${PREFIX}-rogue-agent-${i}`, events: 2, rogue: true }));
      const sentAt = Date.now();
      const known = await waitFor(
        `the API's kill switch to know ${rogue} is revoked`,
        () => knownAt.get(rogue),
        60_000,
        10,
      );
      killLatencies.push(known - sentAt);
      await waitFor(
        'the healthy notifiers to deliver the kill',
        () => webhook.delivered().size > i && slack.requests.length > i,
        60_000,
        10,
      );
      notifyLatencies.push(Date.now() - sentAt);
    }
    await agents.stop();

    // While the endpoint still hangs: the healthy destinations have each kill exactly once.
    expect(webhook.requests.length).toBe(ROGUES);
    expect(webhook.delivered().size).toBe(ROGUES);
    expect(slack.requests.length).toBe(ROGUES);
    expect(hanging.requests.length).toBeGreaterThan(0);
    expect(hanging.delivered().size).toBe(0);
    // The kill reaches other processes as soon as it is decided; its row is written beside that: wait for it.
    const revoked = await waitFor(
      'every kill to be stored',
      async () => {
        const rows = await revocationsByTask(audit, DATABASE);
        return rogues.every((rogue) => rows.has(rogue)) ? rows : undefined;
      },
      60_000,
    );
    for (const rogue of rogues) {
      expect(revoked.get(rogue)).toBe(1);
      const listed = (await (
        await api(apiService.apiUrl, `/v1/revocations?task_id=${encodeURIComponent(rogue)}`)
      ).json()) as { items: unknown[] };
      expect(listed.items, `revocations of ${rogue} in the API`).toHaveLength(1);
    }

    await sleep(Math.max(0, hangingSince + HANG_MS - Date.now()));
    const recoveredFrom = Date.now();
    hanging.recover();
    await waitFor(
      'the hanging endpoint to get every kill once it answers',
      () => hanging.delivered().size === ROGUES,
      90_000,
      20,
    );
    const recoveredAt = Date.now();
    const attempts = hanging.requests.length;
    expect(new Set(hanging.requests.map((entry) => entry.idempotencyKey))).toEqual(webhook.delivered());

    await waitUntilStored(audit, DATABASE, agents.ledger.acked, { prefix: PREFIX });
    await concludeDrill({
      drill: 'Notifier endpoint hangs',
      client: audit,
      database: DATABASE,
      ledger: agents.ledger,
      prefix: PREFIX,
      rogueTaskIds: rogues,
      recoverMs: recoveredAt - recoveredFrom,
      details: `${ROGUES} kills while one webhook hung: kill known to the API process after ${median(killLatencies)} ms (median), healthy webhook and Slack notified after ${median(notifyLatencies)} ms, once each; the webhook hung for ${seconds(recoveredFrom - hangingSince)} (${attempts} attempts, each timed out after 2 s) and had every kill ${seconds(recoveredAt - recoveredFrom)} after it answered again`,
    });
  }, 240_000);
});
