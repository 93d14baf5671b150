/**
 * The stream's connect snapshot reads an agent's revocations from the authority's per-agent index: its cost follows
 * the agent's revoked tasks, never the number of tasks the authority knows (no walk over them all).
 */
import { describe, expect, it } from 'vitest';
import type { Revocation } from '../../schemas/events.ts';
import { revokedTasksOfAgent } from '../../services/killswitch/authority.ts';
import { AuthorityState } from '../../services/killswitch/authority-state.ts';
import { createLocalKillSwitch } from '../../services/killswitch/kill-switch.ts';

function revocation(taskId: string, agentId: string, action: 'revoke' | 'restore', timeMs: number): Revocation {
  return {
    id: `${action}-${taskId}-${timeMs}`,
    tenant: 't',
    taskId,
    taskType: 'summarize_ticket',
    agentId,
    action,
    source: 'manual',
    actor: 'ops',
    reason: 'test',
    reasons: [],
    score: 0,
    eventId: '',
    timeMs,
  };
}

describe("the authority's index of revoked tasks by agent", () => {
  it('answers from the index, in step with revokes, restores and stored states', () => {
    const state = new AuthorityState(
      { revocations: 0, windowMs: 60_000, blockMs: 60_000 },
      createLocalKillSwitch(),
      60_000,
    );
    for (let i = 0; i < 5000; i += 1) state.entryFor('t', `idle-${i}`, `agent-${i % 50}`, 'summarize_ticket');
    state.apply(revocation('a-1', 'agent-a', 'revoke', 1));
    state.apply(revocation('a-2', 'agent-a', 'revoke', 2));
    state.apply(revocation('b-1', 'agent-b', 'revoke', 3));
    state.apply(revocation('a-2', 'agent-a', 'restore', 4));
    const stored = revocation('a-3', 'agent-a', 'revoke', 5);
    state.loadTaskStates([
      {
        tenant: 't',
        taskId: 'a-3',
        taskType: 'summarize_ticket',
        agentId: 'agent-a',
        lastAction: 'revoke',
        lastRevokeMs: 5,
        last: stored,
      },
    ]);
    // Any walk over every task would throw: the snapshot must not depend on how many tasks there are.
    const walk = (): never => {
      throw new Error('walked every task');
    };
    Object.assign(state.tasks, { values: walk, entries: walk, keys: walk, forEach: walk, [Symbol.iterator]: walk });
    expect(revokedTasksOfAgent(state, 't', 'agent-a').map((r) => r.taskId)).toEqual(['a-1', 'a-3']);
    expect(revokedTasksOfAgent(state, 't', 'agent-b').map((r) => r.taskId)).toEqual(['b-1']);
    expect(revokedTasksOfAgent(state, 'other', 'agent-a')).toEqual([]);
    expect(revokedTasksOfAgent(state, 't', 'agent-7')).toEqual([]);
  });
});
