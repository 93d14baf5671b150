/**
 * Escalation as the processor applies it: every revocation this process applies is folded into the window
 * (services/killswitch/escalation.ts), which counts only the confident ones (services/core/escalation-policy.ts);
 * an escalated agent's active tasks here in the escalation's scope are revoked, and its tasks in that scope that
 * appear while the block lasts. Only that agent, only that scope: never another agent's tasks, never a task whose
 * spans name another end user or conversation than a scoped block's.
 */
import type { Revocation } from '../../schemas/events.ts';
import { escalationRevocation } from '../core/decide.ts';
import { covers, describeScope } from '../core/escalation-policy.ts';
import type { EscalationScope } from '../core/escalation-policy.ts';
import { EscalationWindow } from '../killswitch/escalation.ts';
import type { Escalation, EscalationPolicy } from '../killswitch/escalation.ts';
import type { KillSwitch } from '../killswitch/kill-switch.ts';
import type { Logger } from '../shared/logger.ts';
import type { BatchOutput } from './batch-output.ts';
import { markRevoked, taskKey } from './task-table.ts';
import type { LiveTask } from './task-table.ts';

export class AgentEscalation {
  readonly #window: EscalationWindow;
  readonly #windowMs: number;
  readonly #killSwitch: KillSwitch;
  readonly #logger: Logger;
  readonly #now: () => number;
  /** Escalations decided but not yet applied to the agent's other tasks. */
  readonly #pending: Escalation[] = [];

  constructor(policy: EscalationPolicy, deps: { killSwitch: KillSwitch; logger: Logger; now: () => number }) {
    this.#window = new EscalationWindow(policy);
    this.#windowMs = policy.windowMs;
    this.#killSwitch = deps.killSwitch;
    this.#logger = deps.logger;
    this.#now = deps.now;
  }

  /** Counts a revocation applied in this process; true when it escalated its agent (to apply with `applyPending`). */
  observe(revocation: Revocation): boolean {
    const escalation = this.#window.observe(revocation);
    if (escalation === undefined) return false;
    this.#logger.warn(
      {
        agentId: escalation.agentId,
        scope: describeScope(escalation.scope),
        tasks: escalation.taskIds,
        until: new Date(escalation.untilMs).toISOString(),
      },
      'escalating to the agent after repeated revocations',
    );
    this.#pending.push(escalation);
    return true;
  }

  /** The agent's escalation in force now that reaches a task of `scope`, if any. */
  blocking(tenant: string, agentId: string, scope: EscalationScope): Escalation | undefined {
    return this.#window.blocking(tenant, agentId, scope, this.#now());
  }

  /** Revokes one task in an escalation's scope (applied to the kill switch now, stored with the output). */
  revokeTask(task: LiveTask, escalation: Escalation, eventId: string, output: BatchOutput): void {
    markRevoked(task);
    const revocation = escalationRevocation(
      task.state,
      escalation,
      this.#windowMs,
      task.peak?.score ?? 0,
      eventId,
      this.#now(),
      task.scope,
    );
    this.#killSwitch.apply(revocation);
    output.revocations.push(revocation);
    output.tasks.set(taskKey(task.state.tenant, task.state.taskId), task);
  }

  /** Revokes every active task this processor holds in the scope of each escalation (never another agent's). */
  applyPending(liveTasks: () => Iterable<LiveTask>, output: BatchOutput): void {
    for (const escalation of this.#pending.splice(0)) {
      for (const task of liveTasks()) {
        if (
          task.status !== 'active' ||
          task.state.tenant !== escalation.tenant ||
          task.state.agentId !== escalation.agentId ||
          !covers(escalation.scope, task.scope)
        )
          continue;
        this.revokeTask(task, escalation, '', output);
      }
    }
  }
}
