/**
 * The processor service announces kills it rebuilt from the store (a processor that died after storing a
 * revocation and before publishing it leaves nobody else to publish it): found in the fault drills
 * (test/drills/processor-sigkill.test.ts).
 */
import { describe, expect, it } from 'vitest';
import type { AgentEvent, Revocation } from '../../schemas/events.ts';
import { announcingRebuiltRevocations } from '../../services/processor/rebuilt-revocations.ts';
import { createLocalKillSwitch } from '../../services/killswitch/kill-switch.ts';
import { createLogger } from '../../services/shared/logger.ts';
import type { Page } from '../../services/store/store.ts';

function revocation(taskId: string, action: Revocation['action']): Revocation {
  return {
    id: `${action}-${taskId}`,
    tenant: 't',
    taskId,
    taskType: 'x',
    agentId: 'a',
    action,
    source: 'detector',
    actor: 'tripline',
    reason: 'r',
    reasons: [],
    score: 100,
    eventId: 'e',
    timeMs: 1,
  };
}

describe('announcingRebuiltRevocations', () => {
  it('applies (and so publishes) the stored revocation of a task rebuilt as revoked that this process never heard of', async () => {
    const status: Record<string, 'active' | 'revoked'> = {
      rebuilt: 'revoked',
      decided: 'revoked',
      restored: 'revoked',
      benign: 'active',
    };
    const latest: Record<string, Revocation> = {
      rebuilt: revocation('rebuilt', 'revoke'),
      restored: revocation('restored', 'restore'),
      decided: revocation('decided', 'revoke'),
    };
    let lookups = 0;
    const killSwitch = createLocalKillSwitch();
    killSwitch.apply(revocation('decided', 'revoke'));
    const applied: string[] = [];
    killSwitch.subscribe((message) => {
      if (message.type === 'revocation') applied.push(message.revocation.id);
    });
    const handle = announcingRebuiltRevocations(
      {
        handle: () => Promise.resolve(),
        taskSnapshot: (_tenant, taskId) => ({
          status: status[taskId] ?? 'active',
          score: 0,
          taskType: 'x',
          agentId: 'a',
        }),
      },
      {
        listRevocations(filter): Promise<Page<Revocation>> {
          lookups += 1;
          const found = latest[filter.taskId ?? ''];
          return Promise.resolve({ items: found === undefined ? [] : [found] });
        },
      },
      killSwitch,
      createLogger('silent'),
    );
    const events = ['rebuilt', 'decided', 'restored', 'benign', 'rebuilt'].map(
      (taskId) => ({ tenant: 't', taskId }) as AgentEvent,
    );
    await handle({ events, boundaries: [] });
    expect(applied).toEqual(['revoke-rebuilt']);
    expect(killSwitch.isRevoked('t', 'rebuilt')).toBe(true);
    // Looked up only for the tasks revoked in the processor and unknown to the kill switch.
    expect(lookups).toBe(2);

    await handle({ events, boundaries: [] });
    expect(applied).toEqual(['revoke-rebuilt']);
  });
});
