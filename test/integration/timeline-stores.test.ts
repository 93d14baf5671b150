/**
 * The timeline reads the same story through both implementations of each store port: ClickHouse (the engine in
 * process: the spine's store, the kill switch's store, the audit trail's store, on one database) and the in-memory
 * twins. The same records in, the same timeline out, entry for entry — including the reads added for it
 * (token revocations per task, audit rows naming a task).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTaskTimeline } from '../../services/api/timeline.ts';
import type { TimelineDeps } from '../../services/api/timeline.ts';
import { createMemoryAccessStore } from '../../services/auth/memory-access-store.ts';
import type { AccessStore } from '../../services/auth/access-store.ts';
import { mergeTimeline } from '../../services/core/timeline.ts';
import type { TimelineEntry } from '../../services/core/timeline.ts';
import { createInMemoryKillSwitchStore } from '../../services/killswitch/ks-store.ts';
import type { KillSwitchStore } from '../../services/killswitch/ks-store.ts';
import { createAccessStore } from '../../services/store/clickhouse/access-store.ts';
import { openDetectionClient } from '../../services/store/clickhouse/detection-queries.ts';
import { openClickHouseKillSwitchStore } from '../../services/store/clickhouse/kill-switch-store.ts';
import { openClickHouseStore } from '../../services/store/clickhouse/store.ts';
import { createMemoryStore } from '../../services/store/memory-store.ts';
import type { Store } from '../../services/store/store.ts';
import { T0, seedTimeline } from '../helpers/timeline-story.ts';

const DATABASE = 'timeline_stores';

async function timelineOf(deps: TimelineDeps, tenant: string, taskId: string): Promise<TimelineEntry[]> {
  const timeline = await readTaskTimeline(deps, tenant, taskId);
  return mergeTimeline(timeline.sources, { limit: 10_000 }).items;
}

describe('the timeline over ClickHouse and over the in-memory stores', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-timeline-stores-'));
  let store: Store;
  let ks: KillSwitchStore;
  let access: AccessStore;
  let client: ReturnType<typeof openDetectionClient>;
  const memory = {
    store: createMemoryStore(),
    ks: createInMemoryKillSwitchStore(),
    access: createMemoryAccessStore(),
  };

  beforeAll(async () => {
    store = await openClickHouseStore({ dataDir, database: DATABASE });
    await store.migrate();
    ks = await openClickHouseKillSwitchStore({ dataDir, database: DATABASE });
    client = openDetectionClient({ dataDir });
    access = createAccessStore(client, DATABASE);
    await access.ensureSchema();
    await seedTimeline({ store, ks, access }, false);
    await seedTimeline(memory, true);
    const tokenRevocation = {
      tenant: 'default',
      jti: 'jti-1',
      taskId: 'task-1',
      agentId: 'refund-agent',
      timeMs: T0 + 24,
      expiresMs: T0 + 900_000,
      actor: 'gateway-1',
      reason: 'token leaked in a log',
    };
    await ks.insertTokenRevocations([tokenRevocation, { ...tokenRevocation, jti: 'jti-9', taskId: 'task-2' }]);
    await memory.ks.insertTokenRevocations([tokenRevocation, { ...tokenRevocation, jti: 'jti-9', taskId: 'task-2' }]);
  }, 120_000);

  afterAll(async () => {
    await ks.close();
    await client.close();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('gives the same entries in the same order from both', async () => {
    const fromClickHouse = await timelineOf({ store, killSwitch: ks, audit: access }, 'default', 'task-1');
    const fromMemory = await timelineOf(
      { store: memory.store, killSwitch: memory.ks, audit: memory.access },
      'default',
      'task-1',
    );
    expect(fromClickHouse).toEqual(fromMemory);
    expect(fromClickHouse.map((entry) => entry.kind)).toEqual([
      'task_started',
      'credential_issued',
      'policy_decision',
      'lease_issued',
      'child_started',
      'tool_call',
      'model_call',
      'privilege_change',
      'alert',
      'credential_revoked',
      'revocation',
      'credential_revoked',
      'lease_ended',
      'acknowledged',
      'audit',
      'tool_call',
      'task_ended',
      'verification',
      'audit',
    ]);
    // The token revoked on its own is this task's; the other task's is not here.
    expect(fromClickHouse.find((entry) => entry.id === 'jti-1/revoked')?.summary).toBe(
      'Task token jti-1 revoked by gateway-1: token leaked in a log.',
    );
    expect(fromClickHouse.some((entry) => entry.id.startsWith('jti-9'))).toBe(false);
    // Audit rows: those whose route named task-1, its revocation (the acknowledgement) or its alert.
    expect(fromClickHouse.filter((entry) => entry.kind === 'audit').map((entry) => entry.detail.requestId)).toEqual([
      'r3',
      'r1',
    ]);
  });

  it('keeps tenants apart in both', async () => {
    const fromClickHouse = await timelineOf({ store, killSwitch: ks, audit: access }, 'other', 'task-1');
    const fromMemory = await timelineOf(
      { store: memory.store, killSwitch: memory.ks, audit: memory.access },
      'other',
      'task-1',
    );
    expect(fromClickHouse).toEqual(fromMemory);
    expect(fromClickHouse.map((entry) => entry.id)).toEqual(['foreign', 'foreign-call']);
  });
});
