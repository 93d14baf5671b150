/**
 * Which agent ids an agent token may speak for, and what becomes of a span that claims another. Pure: values in,
 * values out.
 *
 * A binding is a list of patterns: an exact agent id (`billing-bot`), or a prefix ending in `*` (`fleet-a/*`
 * speaks for every agent id that starts with `fleet-a/`). The empty binding is a fleet-wide token: it may speak
 * for every agent id of its tenant (the first-start and configured agent tokens, and tokens made before bindings
 * existed; docs/security.md).
 *
 * A span whose agent is outside its token's binding is not believed: its event is put under the token's identity
 * (the first pattern, its `*` dropped), and, when the span claimed that agent itself, the claim is kept aside
 * (`claims.refusedAgentId`) so the processor alerts on it (IDENTITY_AGENT_REFUSED).
 */
import type { AgentEvent, Alert, TaskBoundary, Verdict } from '../../schemas/events.ts';
import { decisionId } from './decide.ts';
import type { TaskIdentity } from './decide.ts';

export type AgentBinding = readonly string[];

/** The fleet-wide binding. */
export const UNBOUND: AgentBinding = [];

/** Patterns per token, and the characters of one (an agent id, optionally followed by `*`). */
export const MAX_BINDING_PATTERNS = 64;
export const AGENT_PATTERN_SOURCE = '^[^*\\s]{1,128}\\*?$';
const AGENT_PATTERN = new RegExp(AGENT_PATTERN_SOURCE);

/** The stable feature name of the alert on a span that claimed an agent its token may not speak for. */
export const IDENTITY_AGENT_REFUSED = 'identity.agent_refused';
/** … on a credentialed task whose spans name another task type or agent than its task token. */
export const IDENTITY_CREDENTIAL_MISMATCH = 'identity.credential_mismatch';
/** … on a credentialed task that checks or leases without having sent telemetry (services/killswitch/silent-tasks.ts). */
export const IDENTITY_NO_TELEMETRY = 'identity.no_telemetry';

export function isAgentPattern(value: unknown): value is string {
  return typeof value === 'string' && AGENT_PATTERN.test(value);
}

/** A binding as stored or carried (JSON text of an array of patterns); undefined for anything else. */
export function parseBinding(text: string): AgentBinding | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (Array.isArray(value) && value.length <= MAX_BINDING_PATTERNS && value.every(isAgentPattern)) return value;
  } catch {
    // not a binding
  }
  return undefined;
}

export function isBound(binding: AgentBinding): boolean {
  return binding.length > 0;
}

/** Whether a token of `binding` may speak for `agentId`. */
export function speaksFor(binding: AgentBinding, agentId: string): boolean {
  if (binding.length === 0) return true;
  return binding.some((pattern) =>
    pattern.endsWith('*') ? agentId.startsWith(pattern.slice(0, -1)) : agentId === pattern,
  );
}

/** The agent a bound token's spans are put under when they name another: its first pattern without the `*`. */
export function identityOf(binding: AgentBinding): string | undefined {
  const first = binding[0];
  return first === undefined ? undefined : first.endsWith('*') ? first.slice(0, -1) : first;
}

/** An event or boundary with its agent held to the binding; the same object when it already is. */
function bindItem<T extends AgentEvent | TaskBoundary>(item: T, binding: AgentBinding, identity: string): T {
  const claimed = item.claims?.agentId;
  const claimRefused = claimed !== undefined && !speaksFor(binding, claimed);
  if (!claimRefused && speaksFor(binding, item.agentId)) return item;
  const bound: T = { ...item, agentId: identity };
  if (item.claims !== undefined) {
    bound.claims = { ...item.claims };
    if (claimRefused) {
      bound.claims.agentId = identity;
      bound.claims.refusedAgentId = claimed;
    }
  }
  return bound;
}

/** A batch's events and boundaries held to the token's binding (unchanged for a fleet-wide token). */
export function bindBatch<B extends { events: AgentEvent[]; boundaries: TaskBoundary[] }>(
  batch: B,
  binding: AgentBinding,
): B {
  const identity = identityOf(binding);
  if (identity === undefined) return batch;
  return {
    ...batch,
    events: batch.events.map((event) => bindItem(event, binding, identity)),
    boundaries: batch.boundaries.map((boundary) => bindItem(boundary, binding, identity)),
  };
}

/**
 * The alert on a task whose telemetry says something its credentials do not (`feature` names what:
 * IDENTITY_AGENT_REFUSED, …); one per task, feature and subject however often it is replayed. Its reason starts
 * with the feature, so a reader (or a rule) can tell it from a detector's.
 */
export function identityAlert(
  task: TaskIdentity,
  at: { eventId: string; timeMs: number },
  finding: { feature: string; subject: string; reason: string },
  peak: Pick<Verdict, 'score' | 'regime'> | undefined,
): Alert {
  return {
    id: decisionId(task.tenant, task.taskId, 'alert', finding.feature, finding.subject),
    tenant: task.tenant,
    taskId: task.taskId,
    taskType: task.taskType,
    agentId: task.agentId,
    eventId: at.eventId,
    timeMs: at.timeMs,
    score: peak?.score ?? 0,
    decision: 'alert',
    regime: peak?.regime ?? 'rules',
    reasons: [`${finding.feature}: ${finding.reason}`],
    shadow: false,
  };
}

/**
 * What a credentialed task's span claims against its task token: another task type or another agent (each at most
 * once per task and claimed value).
 */
export function credentialFindings(
  credential: { taskType: string; agentId: string },
  event: Pick<AgentEvent, 'claims'>,
): { feature: string; subject: string; reason: string }[] {
  const findings: { feature: string; subject: string; reason: string }[] = [];
  const claims = event.claims;
  if (claims?.taskType !== undefined && claims.taskType !== credential.taskType)
    findings.push({
      feature: IDENTITY_CREDENTIAL_MISMATCH,
      subject: `type:${claims.taskType}`,
      reason: `its spans claim task type ${JSON.stringify(claims.taskType)}; its task token was issued for ${JSON.stringify(credential.taskType)}`,
    });
  const agent = claims?.refusedAgentId ?? claims?.agentId;
  if (agent !== undefined && agent !== credential.agentId)
    findings.push({
      feature: IDENTITY_CREDENTIAL_MISMATCH,
      subject: `agent:${agent}`,
      reason: `its spans claim agent ${JSON.stringify(agent)}; its task token was issued to ${JSON.stringify(credential.agentId)}`,
    });
  return findings;
}

/** The finding on an event whose span claimed an agent its token may not speak for (undefined for any other). */
export function refusedAgentFinding(
  event: Pick<AgentEvent, 'agentId' | 'claims'>,
): { feature: string; subject: string; reason: string } | undefined {
  const refused = event.claims?.refusedAgentId;
  if (refused === undefined) return undefined;
  return {
    feature: IDENTITY_AGENT_REFUSED,
    subject: refused,
    reason: `a span claimed agent ${JSON.stringify(refused)}, which its agent token may not speak for; its events count as agent ${JSON.stringify(event.agentId)}`,
  };
}
