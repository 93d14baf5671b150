/**
 * Drill: the gateway restarted while agents keep exporting. The gateway runs as its own process
 * (`node services/app/gateway-main.ts` on a fixed port) in front of a processor on the real broker; agents export
 * the whole time and retry what is refused or lost, as OTLP clients do (a connection refused or reset, 503).
 *
 *   1. a rolling restart: SIGTERM (the gateway stops taking requests and drains what Kafka has not yet
 *      acknowledged), then a new gateway process on the same port;
 *   2. a crash: SIGKILL mid-traffic (requests in flight are cut; some of their spans may already be in Kafka,
 *      and the agents' retries send them again), then a new gateway process.
 *
 * A rogue task is exported while the gateway is down. After recovery every acknowledged event is stored once and
 * the rogue task revoked once. Time to recover: from the signal until the agents' exports are acknowledged again
 * (the new process started and took traffic).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProcessorService } from '../../services/app/distributed.ts';
import type { RunningProcessorService } from '../../services/app/distributed.ts';
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
import { freePort, startService } from './processes.ts';
import type { ServiceProcess } from './processes.ts';

const DATABASE = 'drill_gateway';

describe('drill: the gateway restarted while agents keep exporting', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-drill-gateway-'));
  const logger = drillLogger();
  let env: Record<string, string>;
  let otlpUrl: string;
  let gateway: ServiceProcess;
  let processor: RunningProcessorService;
  let audit: ClickHouseClient;

  beforeAll(async () => {
    const port = await freePort();
    otlpUrl = `http://127.0.0.1:${port}`;
    env = drillEnv({
      brokers: kafkaBrokers(),
      run: drillRunId(),
      dataDir,
      database: DATABASE,
      extra: { TRIPLINE_OTLP_PORT: String(port) },
    });
    const { config, kafka } = drillConfig(env);
    processor = await startProcessorService(config, { kafka, logger, drainTimeoutMs: 5000 });
    gateway = await startService('gateway', env);
    audit = openAuditClient({ dataDir });
  }, 180_000);

  afterAll(async () => {
    await gateway.signal('SIGKILL');
    await processor.stop();
    await audit.close();
    rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  async function restartDrill(name: string, prefix: string, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const agents = startAgents({ target: () => otlpUrl, count: 4, eventsPerTask: 9, pauseMs: 30, prefix });
    await waitFor('agents in full swing', async () => (await storedEvents(audit, DATABASE, prefix)) > 1000, 60_000);
    const downAt = Date.now();
    const exitCode = await gateway.signal(signal);
    if (signal === 'SIGTERM') expect(exitCode).toBe(0);
    const rogue = `${prefix}-rogue`;
    const rogueSent = agents.send(
      taskExport({ taskId: rogue, agentId: `${prefix}-rogue-agent`, events: 2, rogue: true }),
    );
    gateway = await startService('gateway', env);
    const upAt = Date.now();
    await waitFor(
      'an export acknowledged by the new gateway',
      () => agents.ledger.firstAckAfter(upAt) !== undefined,
      60_000,
      20,
    );
    const recoveredAt = agents.ledger.firstAckAfter(upAt) ?? Date.now();
    await rogueSent;
    await agents.stop();
    const { ledger } = agents;
    await waitUntilStored(audit, DATABASE, ledger.acked, { prefix });
    expect(ledger.refusedWithoutRetryAfter).toBe(0);
    await concludeDrill({
      drill: name,
      client: audit,
      database: DATABASE,
      ledger,
      prefix,
      rogueTaskIds: [rogue],
      recoverMs: recoveredAt - downAt,
      details: `gateway down ${seconds(upAt - downAt)} until the new process ran; agents saw ${ledger.networkErrors} connection errors and ${ledger.refusals()} 503 (all with Retry-After), and retried`,
    });
  }

  it('a rolling restart (SIGTERM, then a new process)', async () => {
    await restartDrill('Gateway restarted (SIGTERM)', 'gw-term', 'SIGTERM');
  }, 240_000);

  it('a crash (SIGKILL mid-traffic, then a new process)', async () => {
    await restartDrill('Gateway killed (SIGKILL) and restarted', 'gw-kill', 'SIGKILL');
  }, 240_000);
});
