/**
 * Drill: ClickHouse writes failing for a while, then recovering. The processor writes to a ClickHouse server
 * (test/drills/clickhouse-server.ts, over CLICKHOUSE_URL) while agents keep exporting through the gateway:
 *
 *   1. the events table goes missing (renamed away) for a while: every write of a batch fails with
 *      UNKNOWN_TABLE, then the table is back;
 *   2. the server itself goes away (SIGKILL) for a while, then is started again on the same port and data.
 *
 * A rogue task arrives during each fault. Ingest is not affected (Kafka holds the spans); the processor retries
 * the batch in hand and commits nothing until it is written. After recovery every acknowledged event is stored
 * once and the rogue task is revoked once. Time to recover: from the fault's end until every event is stored.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayService, startProcessorService } from '../../services/app/distributed.ts';
import type { RunningGateway, RunningProcessorService } from '../../services/app/distributed.ts';
import { kafkaBrokers } from '../helpers/kafka-broker.ts';
import { waitFor } from '../helpers/wait.ts';
import {
  concludeDrill,
  drillConfig,
  drillEnv,
  drillLogger,
  drillRunId,
  openAuditClient,
  seconds,
  startAgents,
  storedEvents,
  taskExport,
  waitUntilStored,
} from './helpers.ts';
import { startClickHouseServer } from './processes.ts';
import type { ClickHouseServer } from './processes.ts';

/** How long each fault lasts. */
const FAULT_MS = 6000;
const DATABASE = 'drill_clickhouse';

describe('drill: ClickHouse writes failing, then recovering', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-drill-clickhouse-'));
  const logger = drillLogger();
  let server: ClickHouseServer;
  let audit: ClickHouseClient;
  let processor: RunningProcessorService;
  let gateway: RunningGateway;

  beforeAll(async () => {
    server = await startClickHouseServer(dataDir);
    const env = drillEnv({
      brokers: kafkaBrokers(),
      run: drillRunId(),
      dataDir,
      database: DATABASE,
      extra: { CLICKHOUSE_URL: server.url, CLICKHOUSE_USER: 'processor' },
    });
    const { config, kafka } = drillConfig(env);
    processor = await startProcessorService(config, { kafka, logger, drainTimeoutMs: 5000 });
    gateway = await startGatewayService(config, { kafka, logger });
    audit = openAuditClient({ url: server.url });
  }, 180_000);

  afterAll(async () => {
    await gateway.stop();
    await processor.stop();
    await audit.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  /** Agents export while `fault` is in force for FAULT_MS; `repair` ends it. Returns the drill's figures. */
  async function drill(
    name: string,
    prefix: string,
    fault: () => Promise<void>,
    repair: () => Promise<void>,
  ): Promise<void> {
    const agents = startAgents({ target: () => gateway.otlpUrl, count: 3, eventsPerTask: 9, pauseMs: 40, prefix });
    await waitFor(
      'the first events in ClickHouse',
      async () => (await storedEvents(audit, DATABASE, prefix)) > 0,
      60_000,
    );
    await fault();
    const rogue = `${prefix}-rogue`;
    await agents.send(taskExport({ taskId: rogue, agentId: `${prefix}-rogue-agent`, events: 2, rogue: true }));
    const acknowledgedBefore = agents.ledger.acked.size;
    await sleep(FAULT_MS);
    const acknowledgedDuring = agents.ledger.acked.size - acknowledgedBefore;
    await repair();
    const repairedAt = Date.now();
    await agents.stop();
    const recoveredAt = await waitUntilStored(audit, DATABASE, agents.ledger.acked, { prefix });
    const { ledger } = agents;
    // Ingest never noticed: Kafka took every span while ClickHouse was failing.
    expect(ledger.refusals()).toBe(0);
    await concludeDrill({
      drill: name,
      client: audit,
      database: DATABASE,
      ledger,
      prefix,
      rogueTaskIds: [rogue],
      recoverMs: recoveredAt - repairedAt,
      details: `writes failing for ${seconds(FAULT_MS)}, while ingest acknowledged ${acknowledgedDuring} more events (0 refused)`,
    });
  }

  it('the events table goes missing for a while, then is back', async () => {
    await drill(
      'ClickHouse: events table missing',
      'ch-table',
      () =>
        audit.command({ query: `RENAME TABLE ${DATABASE}.events TO ${DATABASE}.events_away` }).then(() => undefined),
      () =>
        audit.command({ query: `RENAME TABLE ${DATABASE}.events_away TO ${DATABASE}.events` }).then(() => undefined),
    );
  }, 240_000);

  it('the ClickHouse server goes away (killed), then is started again', async () => {
    await drill(
      'ClickHouse: server killed and restarted',
      'ch-server',
      () => server.kill(),
      () => server.restart(),
    );
  }, 240_000);
});
