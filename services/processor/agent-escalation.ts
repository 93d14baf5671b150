/**
 * Escalation as the processor applies it: every revocation this process applies counts toward escalating its
 * agent (services/killswitch/escalation.ts); an escalated agent's active tasks here are revoked, and its tasks
 * that appear while the block lasts. Only that agent: never another agent's tasks.
 */
import type { Revocation } from '../../schemas/events.ts';
import { escalationRevocation } from '../core/decide.ts';
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
      { agentId: escalation.agentId, tasks: escalation.taskIds, until: new Date(escalation.untilMs).toISOString() },
      'escalating to the agent after repeated revocations',
    );
    this.#pending.push(escalation);
    return true;
  }

  /** The agent's escalation in force now, if any. */
  blocked(tenant: string, agentId: string): Escalation | undefined {
    return this.#window.blocked(tenant, agentId, this.#now());
  }

  /** Revokes one task of an escalated agent (applied to the kill switch now, stored with the output). */
  revokeTask(task: LiveTask, escalation: Escalation, eventId: string, output: BatchOutput): void {
    markRevoked(task);
    const revocation = escalationRevocation(
      task.state,
      escalation,
      this.#windowMs,
      task.peak?.score ?? 0,
      eventId,
      this.#now(),
    );
    this.#killSwitch.apply(revocation);
    output.revocations.push(revocation);
    output.tasks.set(taskKey(task.state.tenant, task.state.taskId), task);
  }

  /** Revokes every active task this processor holds of each agent that escalated (never another agent's). */
  applyPending(liveTasks: () => Iterable<LiveTask>, output: BatchOutput): void {
    for (const escalation of this.#pending.splice(0)) {
      for (const task of liveTasks()) {
        if (
          task.status !== 'active' ||
          task.state.tenant !== escalation.tenant ||
          task.state.agentId !== escalation.agentId
        )
          continue;
        this.revokeTask(task, escalation, '', output);
      }
    }
  }
}
