/**
 * The evaluation's escalation replay (services/evaluation/escalation-replay.ts) on hand-made tasks: under the
 * rule before issue 20 three false positives of one agent escalate it and take its next tasks down; under
 * today's rule they count for nothing, and confident kills for one end user block only that end user's tasks.
 */
import { describe, expect, it } from 'vitest';
import type { AttributeValue } from '../../schemas/events.ts';
import { DEFAULT_DETECTOR_CONFIG } from '../../services/core/detect/index.ts';
import { replayEscalation } from '../../services/evaluation/escalation-replay.ts';
import type { LabelledTask } from '../../services/evaluation/plan-events.ts';
import type { EventDecision, TaskOutcome } from '../../services/evaluation/replay.ts';
import { taskCtx, toolCall } from './detect/fixtures.ts';

const T0 = Date.UTC(2026, 0, 1);
const allow: EventDecision = { score: 0, decision: 'allow', regime: 'type_baseline', reasons: [] };
/** A benign task revoked on one strong novelty (a payment to an account first read in an invoice). */
const falsePositive: EventDecision = {
  score: 97,
  decision: 'revoke',
  regime: 'type_baseline',
  reasons: [],
  contributions: [{ feature: 'tool.counterparty_flow', score: 97 }],
};
const hardRule: EventDecision = { ...falsePositive, score: 100, hardRule: 'privilege_admin_unseen', contributions: [] };

/** One task of one event a minute after the previous task's start, and what the detector decided on it. */
function task(
  index: number,
  label: LabelledTask['label'],
  decision: EventDecision,
  attributes: Record<string, AttributeValue> = {},
): { task: LabelledTask; outcome: TaskOutcome } {
  const taskId = `t-${String(index)}`;
  const ctx = taskCtx('summarize_ticket', taskId, 'shared', T0 + index * 60_000);
  const event = toolCall(ctx, 'get_ticket', { sideEffect: 'read', durMs: 30_000 });
  event.attributes = attributes;
  return {
    task: {
      taskId,
      taskType: 'summarize_ticket',
      agentId: 'shared',
      label,
      events: [event],
      afterEnd: [],
      attackStart: label === 'benign' ? undefined : 0,
      boundary: {
        tenant: event.tenant,
        taskId,
        taskType: 'summarize_ticket',
        agentId: 'shared',
        ends: true,
        traceId: event.traceId,
        spanId: `root-${taskId}`,
        startMs: event.startMs,
        endMs: event.endMs + 1,
        error: false,
      },
    },
    outcome: {
      taskId,
      taskType: 'summarize_ticket',
      agentId: 'shared',
      label,
      attackStart: undefined,
      decisions: [decision],
      times: [{ startMs: event.startMs, endMs: event.endMs }],
    },
  };
}

function replay(items: { task: LabelledTask; outcome: TaskOutcome }[]): ReturnType<typeof replayEscalation> {
  return replayEscalation(
    items.map((item) => item.task),
    items.map((item) => item.outcome),
    DEFAULT_DETECTOR_CONFIG,
  );
}

describe('the escalation replay', () => {
  it('shows the cascade the old rule caused and that false positives no longer escalate', () => {
    const items = [
      task(0, 'benign', falsePositive),
      task(1, 'benign', falsePositive),
      task(2, 'benign', falsePositive),
      task(3, 'benign', allow),
      task(4, 'benign', allow),
    ];
    const report = replay(items);
    expect(report.before).toMatchObject({ escalations: 1, causedByFalsePositives: 1, benignRevoked: 2 });
    expect(report.after).toMatchObject({ escalations: 0, causedByFalsePositives: 0, benignRevoked: 0 });
  });

  it("blocks only the end user that confident kills share, and another user's tasks go on", () => {
    const u1 = { 'enduser.id': 'u1' };
    const u2 = { 'enduser.id': 'u2' };
    const items = [
      task(0, 'exfiltration_burst', hardRule, u1),
      task(1, 'exfiltration_burst', hardRule, u1),
      task(2, 'exfiltration_burst', hardRule, u1),
      task(3, 'benign', allow, u2),
      task(4, 'benign', allow, u1),
      task(5, 'benign', allow),
    ];
    const report = replay(items);
    expect(report.after).toMatchObject({ escalations: 1, scoped: 1, benignRevoked: 1, mostBenignPerBlock: 1 });
    expect(report.before).toMatchObject({ escalations: 1, scoped: 0, benignRevoked: 3 });
  });
});
