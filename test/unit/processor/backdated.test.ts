/**
 * Backdated spans (issue 14): scoring in order (as in embedded mode), a task whose spans claim a time far in the
 * past sets off a history lookup; that lookup must not hold other tasks' events, a kill among them. And a span far
 * older than its own task's newest sets off no lookup at all. The store's lookups are held open here (a slow or
 * failing store), so a kill that waited for them would never come.
 */
import { describe, expect, it } from 'vitest';
import { BACKDATE_BOUND_MS } from '../../../services/processor/task-history.ts';
import { createMemoryStore } from '../../../services/store/memory-store.ts';
import { benignTask, rng } from '../detect/fixtures.ts';
import { TENANT, exfiltration, revocationsOf, rootOf, startProcessor, warmUp } from './harness.ts';

const START = Date.now();

/** A memory store whose task lookups wait until released, recording which tasks were looked up. */
function heldStore(): { store: ReturnType<typeof createMemoryStore>; looked: string[][]; release(): void } {
  const store = createMemoryStore();
  const getTasks = store.getTasks.bind(store);
  let release = (): void => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const looked: string[][] = [];
  store.getTasks = async (tenant, taskIds) => {
    looked.push([...taskIds]);
    await gate;
    return getTasks(tenant, taskIds);
  };
  return { store, looked, release: () => release() };
}

describe('backdated spans', () => {
  it("a backdated task's history lookup holds no other task's kill (scoring in order)", async () => {
    const held = heldStore();
    // The processor has run two hours: tasks now starting were never anyone else's.
    let clock = START;
    const h = await startProcessor({ store: held.store, persistAhead: 10_000, scoreInOrder: true, now: () => clock });
    clock = START + 2 * 3_600_000;
    await warmUp(h.processor, clock);
    expect(held.looked).toEqual([]);

    // A task whose every span claims a day ago: unknown, older than the ownership change, so it is looked up.
    const old = benignTask('summarize_ticket', 'from-the-past', rng(9), { start: START - 86_400_000 });
    await h.processor.handle({ events: old.events, boundaries: [] });
    expect(held.looked).toEqual([['from-the-past']]);

    // The lookup is still open; another task's exfiltration is scored and revoked all the same.
    await h.processor.handle({ events: exfiltration('rogue-now', clock + 3_000_000), boundaries: [] });
    expect(revocationsOf(h.messages).map((revocation) => revocation.taskId)).toEqual(['rogue-now']);
    expect(h.processor.taskSnapshot(TENANT, 'from-the-past')).toBeUndefined();

    // Once the store answers, the backdated task is scored too (it waited alone).
    held.release();
    await h.processor.stop();
    expect((await h.store.getTask(TENANT, 'from-the-past'))?.taskId).toBe('from-the-past');
  });

  it("a span far older than its own task's newest sets off no lookup", async () => {
    const held = heldStore();
    let clock = START;
    const h = await startProcessor({ store: held.store, persistAhead: 10_000, scoreInOrder: true, now: () => clock });
    clock = START + 2 * 3_600_000;
    const live = benignTask('summarize_ticket', 'live-with-outlier', rng(4), { start: clock });
    const first = live.events[0];
    if (first === undefined) throw new Error('empty task');
    // One of its spans claims a time more than the bound before the task's newest (and before the processor began).
    const outlier = {
      ...first,
      id: `${first.id}-old`,
      startMs: START - BACKDATE_BOUND_MS - 1,
      endMs: START - BACKDATE_BOUND_MS,
    };
    await h.processor.handle({ events: [...live.events, outlier], boundaries: [rootOf(live.events)] });
    expect(held.looked).toEqual([]);
    held.release();
    await h.processor.stop();
    expect((await h.store.getTask(TENANT, 'live-with-outlier'))?.status).toBe('completed');
  });
});
