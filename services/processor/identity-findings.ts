/**
 * Telemetry that says something its credentials do not (services/core/agent-binding.ts): the task alerts, once per
 * finding, with a reason that names the finding, and never teaches the baseline.
 */
import type { AgentEvent } from '../../schemas/events.ts';
import { credentialFindings, identityAlert, refusedAgentFinding } from '../core/agent-binding.ts';
import { UNKNOWN_TASK_TYPE } from '../core/classify.ts';
import type { BatchOutput } from './batch-output.ts';
import type { ProcessorParts } from './processor-parts.ts';
import { noteLearningEffect, taskKey } from './task-table.ts';
import type { LiveTask } from './task-table.ts';

/** Findings remembered per task: a hostile agent naming a new victim on every span alerts this often at most. */
export const MAX_IDENTITY_FINDINGS = 16;

export interface IdentityFinding {
  feature: string;
  subject: string;
  reason: string;
}

/** Alerts on the task for `finding` unless it did already (or has alerted MAX_IDENTITY_FINDINGS times). */
export function raiseIdentityFinding(
  parts: Pick<ProcessorParts, 'killSwitch'>,
  task: LiveTask,
  at: { eventId: string; timeMs: number },
  finding: IdentityFinding,
  output: BatchOutput,
): void {
  const key = `${finding.feature}\u0000${finding.subject}`;
  if (task.identityFindings.has(key) || task.identityFindings.size >= MAX_IDENTITY_FINDINGS) return;
  task.identityFindings.add(key);
  noteLearningEffect(task, 'excluded');
  const alert = identityAlert(task.state, at, finding, task.peak);
  output.alerts.push(alert);
  parts.killSwitch.alert(alert);
  output.tasks.set(taskKey(task.state.tenant, task.state.taskId), task);
}

/**
 * The findings of one event of the task: a span that claimed an agent its token may not speak for; a credentialed
 * task's span that names another task type or agent than its task token.
 */
export function checkEventIdentity(
  parts: Pick<ProcessorParts, 'killSwitch'>,
  task: LiveTask,
  event: AgentEvent,
  output: BatchOutput,
): void {
  const at = { eventId: event.id, timeMs: event.endMs };
  const refused = refusedAgentFinding(event);
  if (refused !== undefined) raiseIdentityFinding(parts, task, at, refused, output);
  if (task.credential !== undefined)
    for (const finding of credentialFindings(task.credential, event))
      raiseIdentityFinding(parts, task, at, finding, output);
}

/**
 * A task whose credentials became known after its first spans (its token was issued later, or, in distributed mode,
 * its credentials were read from the store): what its spans claimed so far — its declared type, the agent they
 * named — against the credentials. A type taken from the agent's earlier tasks, or an agent taken from
 * `service.name`, was never claimed, and is not compared.
 */
export function checkClaimedIdentity(
  parts: Pick<ProcessorParts, 'killSwitch' | 'now'>,
  task: LiveTask,
  output: BatchOutput,
): void {
  if (task.credential === undefined) return;
  const { taskType, agentId } = task.state;
  const claims = {
    ...(task.typeInferred || taskType === UNKNOWN_TASK_TYPE ? {} : { taskType }),
    ...(task.agentSettled ? { agentId } : {}),
  };
  const at = { eventId: '', timeMs: parts.now() };
  for (const finding of credentialFindings(task.credential, { claims }))
    raiseIdentityFinding(parts, task, at, finding, output);
}
