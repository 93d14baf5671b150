/**
 * The pure rules of task trees (services/core/task-tree.ts): which kills cascade and which raise the parent, the
 * descendant's revocation, and the parent's verdict on a child's kill — an alert below the revoke threshold
 * whatever the parent's own evidence and however many children were killed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Revocation, Verdict } from '../../schemas/events.ts';
import { escalationRevocation, manualRevocation } from '../../services/core/decide.ts';
import { countsTowardEscalation, parseEscalationBasis } from '../../services/core/escalation-policy.ts';
import {
  CHILD_REVOKED_FEATURE,
  TASK_TREE_ACTOR,
  cascades,
  childRevokedAlert,
  childRevokedVerdict,
  parentOf,
  raisesParent,
  treeRevocation,
} from '../../services/core/task-tree.ts';

const child = { tenant: 't', taskId: 'child', taskType: 'summarize', agentId: 'sub-agent' };
const parent = { tenant: 't', taskId: 'parent', taskType: 'orchestrate', agentId: 'orchestrator' };
const THRESHOLDS = { alert: 50, revoke: 80, shadow: false };

function childKill(extra: Partial<Revocation> = {}): Revocation {
  return { ...manualRevocation(child, 'revoke', 'alice', 'exfiltrating', 91, 1_000), parentTaskId: 'parent', ...extra };
}

describe('task tree rules', () => {
  it('cascades every kill but the ones a tree made, and never a restore', () => {
    const kill = childKill();
    expect(cascades(kill)).toBe(true);
    expect(cascades({ ...kill, action: 'restore' })).toBe(false);
    expect(cascades(treeRevocation(child, kill, 0, 2_000))).toBe(false);
  });

  it("raises the parent on the child's own kill only", () => {
    const kill = childKill();
    expect(raisesParent(kill)).toBe(true);
    expect(raisesParent({ ...kill, parentTaskId: undefined })).toBe(false);
    expect(raisesParent({ ...kill, parentTaskId: 'child' })).toBe(false);
    expect(raisesParent({ ...kill, action: 'restore' })).toBe(false);
    expect(raisesParent({ ...treeRevocation(child, kill, 0, 2_000), parentTaskId: 'parent' })).toBe(false);
    const escalated = escalationRevocation(child, { atMs: 1, untilMs: 2, taskIds: ['x'] }, 60_000, 0, '', 3);
    expect(raisesParent({ ...escalated, parentTaskId: 'parent' })).toBe(false);
  });

  it('takes no parent from an empty claim or the task itself', () => {
    expect(parentOf('a', undefined)).toBeUndefined();
    expect(parentOf('a', '')).toBeUndefined();
    expect(parentOf('a', 'a')).toBeUndefined();
    expect(parentOf('a', 'b')).toBe('b');
  });

  it("names the ancestor's kill, keeps the id fixed by descendant and kill, and never counts toward escalation", () => {
    const ancestor = manualRevocation(parent, 'revoke', 'alice', 'leaked a key', 10, 1_000);
    const one = treeRevocation(child, ancestor, 12, 2_000, { endUser: 'u-1' });
    expect(one).toMatchObject({
      taskId: 'child',
      agentId: 'sub-agent',
      action: 'revoke',
      source: 'manual',
      actor: TASK_TREE_ACTOR,
      reason: 'its ancestor task parent was revoked by alice: leaked a key',
      score: 12,
      escalation: { counts: false, basis: 'task_tree', endUser: 'u-1' },
    });
    expect(treeRevocation(child, ancestor, 40, 9_000).id).toBe(one.id);
    expect(treeRevocation(child, { ...ancestor, id: 'another-kill' }, 12, 2_000).id).not.toBe(one.id);
    expect(countsTowardEscalation(one)).toBe(false);
    expect(parseEscalationBasis(one.escalation)).toEqual(one.escalation);
  });

  it("alerts on the parent at the alert threshold, naming the child, with the parent's own evidence kept", () => {
    const peak: Verdict = {
      score: 30,
      decision: 'allow',
      regime: 'type_baseline',
      contributions: [{ feature: 'tool.unseen', score: 30, reason: 'a new tool' }],
      shadow: false,
    };
    const verdict = childRevokedVerdict(peak, childKill(), 1, THRESHOLDS);
    expect(verdict.decision).toBe('alert');
    expect(verdict.regime).toBe('type_baseline');
    expect(verdict.contributions.map((item) => item.feature)).toEqual([CHILD_REVOKED_FEATURE, 'tool.unseen']);
    expect(verdict.contributions[0]?.reason).toBe(
      'its child task child (summarize, agent sub-agent) was revoked by alice: exfiltrating',
    );
    expect(verdict.score).toBeGreaterThan(50);
    expect(childRevokedVerdict(undefined, childKill(), 1, THRESHOLDS).score).toBe(50);
    expect(childRevokedVerdict(undefined, childKill(), 3, THRESHOLDS).score).toBe(70);
    const alert = childRevokedAlert(parent, childKill(), verdict);
    expect(alert).toMatchObject({ taskId: 'parent', decision: 'alert', score: verdict.score, timeMs: 1_000 });
    expect(childRevokedAlert(parent, childKill(), verdict).id).toBe(alert.id);
  });

  it('never reaches the revoke threshold, whatever the parent showed and however many children were killed', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            family: fc.constantFrom('tool', 'data', 'egress', 'privilege'),
            score: fc.double({ min: 0, max: 79.9, noNaN: true }),
          }),
          { maxLength: 6 },
        ),
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 100 }),
        (own, children, a, b) => {
          const alert = Math.min(a, b);
          const revoke = Math.max(a, b);
          const peak: Verdict = {
            score: Math.min(revoke, Math.max(0, ...own.map((item) => item.score))),
            decision: 'allow',
            regime: 'rules',
            contributions: own.map((item, index) => ({
              feature: `${item.family}.f${String(index)}`,
              score: item.score,
              reason: 'r',
            })),
            shadow: false,
          };
          const verdict = childRevokedVerdict(peak, childKill(), children, { alert, revoke, shadow: false });
          return verdict.decision === 'alert' && verdict.score < revoke;
        },
      ),
    );
  });
});
