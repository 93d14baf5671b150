/**
 * The verifier's look-up of a revoked task's stored events over the in-process engine: an event counts when it
 * started after the revocation (the agent's clock) or when the store received it long after both the
 * revocation and its own claimed end (`ingested_at`, Tripline's clock) — a backdated span.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KillSwitchStore } from '../../../services/killswitch/ks-store.ts';
import { RECEIPT_ALLOWANCE_MS } from '../../../services/killswitch/verification-checks.ts';
import { openClickHouseKillSwitchStore } from '../../../services/store/clickhouse/kill-switch-store.ts';
import { openClickHouseStore } from '../../../services/store/clickhouse/store.ts';
import type { Store } from '../../../services/store/store.ts';
import { ALLOW, event } from '../../helpers/timeline-story.ts';

const DATABASE = 'events_after';

describe('the events of a revoked task, as the verifier looks them up', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-events-after-'));
  let store: Store;
  let ks: KillSwitchStore;

  beforeAll(async () => {
    store = await openClickHouseStore({ dataDir, database: DATABASE });
    await store.migrate();
    ks = await openClickHouseKillSwitchStore({ dataDir, database: DATABASE });
  }, 120_000);

  afterAll(async () => {
    await ks.close();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('finds a span stored long after the kill however early it says it ran, and not one stored in time', async () => {
    const receipt = { revokedMs: 0, allowanceMs: RECEIPT_ALLOWANCE_MS };
    // Stored now: a span that ended a second ago was received in time for a kill two seconds ago.
    const killedMs = Date.now() - 2000;
    await store.insertEvents([{ event: event('in-time', killedMs - 1000, 'tool_call', 'kept'), verdict: ALLOW }]);
    expect(await ks.eventsAfter('default', 'kept', killedMs, { ...receipt, revokedMs: killedMs })).toEqual({
      count: 0,
    });

    // Stored now, for a kill a minute ago, claiming to have run before it: the agent set its clock back.
    const longAgo = Date.now() - 60_000;
    await store.insertEvents([
      { event: event('backdated', longAgo - 500, 'tool_call', 'liar'), verdict: ALLOW },
      { event: event('other-task', longAgo - 500, 'tool_call', 'someone-else'), verdict: ALLOW },
    ]);
    const found = await ks.eventsAfter('default', 'liar', longAgo, { ...receipt, revokedMs: longAgo });
    expect(found).toMatchObject({
      count: 1,
      first: { eventId: 'backdated', name: 'execute_tool get_order', kind: 'tool_call', startMs: longAgo - 500 },
    });
    expect(found.first?.receivedMs).toBeGreaterThan(longAgo + RECEIPT_ALLOWANCE_MS);

    // Started after the kill (its own clock): found as before.
    await store.insertEvents([{ event: event('after', killedMs + 500, 'tool_call', 'late'), verdict: ALLOW }]);
    expect(await ks.eventsAfter('default', 'late', killedMs, { ...receipt, revokedMs: killedMs })).toMatchObject({
      count: 1,
      first: { eventId: 'after' },
    });
  });
});
