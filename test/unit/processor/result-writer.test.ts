/**
 * The processor's result writer: a round waits (up to the linger) for more results to join it, so a steady
 * stream of small batches becomes few large inserts; a round holding a kill, a drain and a stop do not wait.
 */
import { describe, expect, it } from 'vitest';
import type { Revocation } from '../../../schemas/events.ts';
import { createResultWriter } from '../../../services/processor/result-writer.ts';
import type { Results } from '../../../services/processor/result-writer.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import { createMemoryStore } from '../../../services/store/memory-store.ts';
import type { ScoredEvent } from '../../../services/store/store.ts';
import { TENANT, taskCtx, toolCall } from '../detect/fixtures.ts';

const logger = createLogger('silent', 'test');

function scored(i: number): ScoredEvent {
  return {
    event: toolCall(taskCtx('lookup', `task-${String(i)}`), 'search'),
    verdict: { score: 0, decision: 'allow', regime: 'rules', contributions: [], shadow: false },
  };
}

function results(events: ScoredEvent[], revocations: Revocation[] = []): Results {
  return { events, alerts: [], revocations, tasks: [], baselines: [] };
}

/** A memory store that records the size of every insert of events. */
async function countingStore(): Promise<{ store: ReturnType<typeof createMemoryStore>; inserts: number[] }> {
  const store = createMemoryStore();
  await store.migrate();
  const inserts: number[] = [];
  const insertEvents = store.insertEvents.bind(store);
  store.insertEvents = (rows) => {
    inserts.push(rows.length);
    return insertEvents(rows);
  };
  return { store, inserts };
}

describe('result writer', () => {
  it('without a linger, writes the first result at once and merges what queues meanwhile', async () => {
    const { store, inserts } = await countingStore();
    const writer = createResultWriter({ store, logger });
    await Promise.all([
      writer.write(results([scored(1)])),
      writer.write(results([scored(2)])),
      writer.write(results([scored(3)])),
    ]);
    expect(inserts).toEqual([1, 2]);
    expect((await store.counts()).events).toBe(3);
  });

  it('with a linger, waits for more results and writes them in one insert', async () => {
    const { store, inserts } = await countingStore();
    const writer = createResultWriter({ store, logger, lingerMs: 200 });
    const writes = [1, 2, 3].map((i) => writer.write(results([scored(i)])));
    await Promise.all(writes);
    expect(inserts).toEqual([3]);
  });

  it('starts a round as soon as enough events queue', async () => {
    const { store, inserts } = await countingStore();
    // A linger no test would wait out: only the size threshold can start the round.
    const writer = createResultWriter({ store, logger, lingerMs: 5000, minEvents: 4 });
    await Promise.all([writer.write(results([scored(1), scored(2)])), writer.write(results([scored(3), scored(4)]))]);
    expect(inserts).toEqual([4]);
  });

  it('does not hold back a round that carries a kill', async () => {
    const { store, inserts } = await countingStore();
    const writer = createResultWriter({ store, logger, lingerMs: 5000 });
    const revocation: Revocation = {
      id: 'rev-1',
      tenant: TENANT,
      taskId: 'task-9',
      taskType: 'lookup',
      agentId: 'agent-1',
      action: 'revoke',
      source: 'detector',
      actor: 'detector',
      reason: 'test',
      reasons: ['test'],
      score: 90,
      eventId: '',
      timeMs: Date.now(),
    };
    await writer.write(results([scored(9)], [revocation]));
    expect(inserts).toEqual([1]);
  });

  it("does not hold back a task's first record", async () => {
    const { store, inserts } = await countingStore();
    const writer = createResultWriter({ store, logger, lingerMs: 5000 });
    await writer.write({ ...results([scored(7)]), firstRecords: true });
    expect(inserts).toEqual([1]);
  });

  it('a drain and a stop write what lingers at once', async () => {
    const { store, inserts } = await countingStore();
    const writer = createResultWriter({ store, logger, lingerMs: 5000 });
    const pending = writer.write(results([scored(1)]));
    await writer.drain();
    await pending;
    expect(inserts).toEqual([1]);
    const later = writer.write(results([scored(2)]));
    writer.stopping();
    await later;
    expect(inserts).toEqual([1, 1]);
  });
});
