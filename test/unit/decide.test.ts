/**
 * The decision builders of the pure core (services/core/decide.ts): ids equal to the ones stored before they moved
 * there (`services/shared/ids.ts` stableId), so replays and stored rows keep matching; one builder per kind of kill.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Verdict } from '../../schemas/events.ts';
import {
  ESCALATION_ACTOR,
  alertOf,
  decisionId,
  detectorRevocation,
  escalationRevocation,
  manualRevocation,
} from '../../services/core/decide.ts';
import { stableId } from '../../services/shared/ids.ts';

const task = { tenant: 'acme', taskId: 'task-1', taskType: 'refund', agentId: 'agent-7' };
const verdict: Verdict = {
  score: 91.5,
  decision: 'revoke',
  regime: 'type_baseline',
  contributions: [{ feature: 'tool.unseen', score: 91.5, reason: 'called tool http_post' }],
  shadow: false,
};

describe('decision builders', () => {
  it('make the same ids as stableId for any parts', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.string({ unit: 'binary' }), fc.integer(), fc.double({ noNaN: true })), { maxLength: 6 }),
        (parts) => decisionId(...parts) === stableId(...parts),
      ),
      { numRuns: 300 },
    );
  });

  it('build the alert, the detector kill, a person kill or restore and an escalation kill with stable ids', () => {
    expect(alertOf(task, { id: 'e1', endMs: 5 }, verdict)).toMatchObject({
      id: stableId('acme', 'task-1', 'alert', 'revoke', 'live'),
      eventId: 'e1',
      timeMs: 5,
      reasons: ['called tool http_post'],
    });
    expect(
      detectorRevocation(task, verdict, 'e1', 9, { revokeThreshold: 80, scope: { endUser: 'u-1' } }),
    ).toMatchObject({
      id: stableId('acme', 'task-1', 'revoke', 'e1'),
      source: 'detector',
      actor: 'tripline',
      score: 91.5,
      timeMs: 9,
      // 91.5 is below 80 + the margin: the kill stands, it does not count toward escalation.
      escalation: { counts: false, basis: 'below_confidence', endUser: 'u-1' },
    });
    expect(manualRevocation(task, 'revoke', 'alice', 'bad', 12, 10, { conversation: 'c-1' }).escalation).toEqual({
      counts: true,
      basis: 'manual',
      conversation: 'c-1',
    });
    expect(manualRevocation(task, 'restore', 'alice', 'checked', 12, 10)).toMatchObject({
      id: stableId('acme', 'task-1', 'restore', 'alice', 10, 'checked'),
      source: 'manual',
      reasons: [],
      eventId: '',
    });
    const escalated = escalationRevocation(
      task,
      { atMs: 3, untilMs: Date.UTC(2026, 0, 1), taskIds: ['a', 'b', 'c'] },
      600_000,
      40,
      '',
      11,
    );
    expect(escalated).toMatchObject({
      id: stableId('acme', 'task-1', 'revoke', ESCALATION_ACTOR, 3),
      actor: ESCALATION_ACTOR,
      reasons: ['task a was revoked', 'task b was revoked', 'task c was revoked'],
    });
    expect(escalated.reason).toBe(
      'escalated to agent agent-7: 3 of its tasks were revoked within 10 min; its tasks are revoked until 2026-01-01T00:00:00.000Z',
    );
    expect(escalated.escalation).toEqual({ counts: false, basis: 'escalation' });
    const scoped = escalationRevocation(
      task,
      { atMs: 3, untilMs: Date.UTC(2026, 0, 1), taskIds: ['a', 'b'], scope: { endUser: 'u-1' } },
      600_000,
      40,
      'e9',
      11,
      { endUser: 'u-1', conversation: 'c-2' },
    );
    expect(scoped.reason).toBe(
      'escalated to agent agent-7 for end user u-1: 2 of its tasks were revoked within 10 min; its tasks for end user u-1 are revoked until 2026-01-01T00:00:00.000Z',
    );
    expect(scoped.escalation).toEqual({ counts: false, basis: 'escalation', endUser: 'u-1', conversation: 'c-2' });
  });
});
