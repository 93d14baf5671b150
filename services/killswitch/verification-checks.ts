/**
 * The checks of a kill's verification — the task's tokens introspect inactive, its leases ended, the agent
 * stopped acting, the agent helper acknowledged — and the failures they add up to.
 */
import type { Revocation } from '../../schemas/events.ts';
import type { Authority } from './authority.ts';
import type { CheckResult, LeaseRecord, VerificationChecks } from './ks-store.ts';
import { AT_TRIPLINE_ONLY } from './lease-ending.ts';
import type { EndResult } from './leases.ts';
import type { Tracked } from './verification-state.ts';

/** The longest an acknowledged revocation may take to reach the agent and still excuse operations under way. */
export const IN_FLIGHT_MAX_MS = 1000;

/**
 * The longest Tripline may take to receive a span after the span ended (an exporter's batching delay plus the
 * pipeline's lag). A span's start and end times are the agent's word; when Tripline receives it is not. A span
 * received more than this after both the revocation and its own claimed end cannot have been an operation that
 * finished before the kill: it counts as acting after it, whatever its timestamps say (a backdated span).
 */
export const RECEIPT_ALLOWANCE_MS = 10_000;

/** Was the event received (Tripline's clock) too long after the revocation and its own claimed end? */
export function receivedTooLate(endMs: number, receivedMs: number, revokedMs: number): boolean {
  return receivedMs > Math.max(endMs, revokedMs) + RECEIPT_ALLOWANCE_MS;
}

export function introspectionCheck(authority: Authority, revocation: Revocation, at: number): CheckResult {
  const view = authority.task(revocation.tenant, revocation.taskId);
  const jtis = authority.knownTokens(revocation.tenant, revocation.taskId);
  if (!view.revoked)
    return { ok: false, detail: 'the task is not marked revoked: its tokens would still introspect active', atMs: at };
  return {
    ok: true,
    detail:
      jtis.length === 0
        ? 'task refused; no tokens issued or seen by this process'
        : `task refused; ${jtis.length} token(s) introspect inactive`,
    atMs: at,
  };
}

/** `stillOpen`: the task's leases still active after the providers answered. */
export function leasesCheck(
  result: EndResult,
  stillOpen: readonly LeaseRecord[],
  at: number,
): NonNullable<VerificationChecks['leases']> {
  const leaseFailures = [
    ...result.failed,
    ...stillOpen.map((lease) => `lease ${lease.id} (${lease.secret}) is still active`),
  ];
  const onlyHere = result.atTriplineOnly ?? [];
  const atSource = result.ended - onlyHere.length;
  const ended =
    result.ended === 0
      ? 'no leases held'
      : [
          ...(atSource > 0 ? [`${atSource} lease(s) revoked at their provider`] : []),
          ...(onlyHere.length > 0 ? [`${onlyHere.length} lease(s) ${AT_TRIPLINE_ONLY} (${onlyHere.join(', ')})`] : []),
        ].join('; ');
  return {
    ok: leaseFailures.length === 0,
    detail: leaseFailures.length === 0 ? ended : leaseFailures.join('; '),
    atMs: at,
    revoked: result.ended,
    failed: leaseFailures,
    ...(onlyHere.length > 0 ? { atTriplineOnly: onlyHere } : {}),
  };
}

export function failuresOf(checks: VerificationChecks): string[] {
  const failures: string[] = [];
  if (checks.introspection !== undefined && !checks.introspection.ok)
    failures.push(`introspection: ${checks.introspection.detail}`);
  if (checks.leases !== undefined && !checks.leases.ok) failures.push(`leases: ${checks.leases.detail}`);
  if (checks.agentStopped !== undefined && !checks.agentStopped.ok)
    failures.push(`agent: ${checks.agentStopped.detail}`);
  if (checks.acknowledged !== undefined && !checks.acknowledged.ok && checks.acknowledged.required)
    failures.push(`acknowledgement: ${checks.acknowledged.detail}`);
  return failures;
}

export function ackDetail(item: Tracked, acknowledgedMs: number): string {
  const received =
    item.agentReceivedMs === undefined
      ? ''
      : `; the agent received it ${Math.round(item.agentReceivedMs - item.revocation.timeMs)} ms after it (agent clock)`;
  return `acknowledged ${Math.round(acknowledgedMs - item.revocation.timeMs)} ms after the revocation${received}`;
}

const relative = (ms: number): string => (ms < 0 ? `${Math.round(-ms)} ms before` : `${Math.round(ms)} ms after`);

export function violationDetail(
  count: number,
  first: { name: string; kind: string; startMs: number; receivedMs?: number },
  revokedMs: number,
): string {
  const what = `the first "${first.name}" (${first.kind.replace('_', ' ')})`;
  if (first.receivedMs !== undefined && first.startMs <= revokedMs + RECEIPT_ALLOWANCE_MS)
    return `the agent kept acting: ${count} event(s) after the revocation, ${what} received ${Math.round(first.receivedMs - revokedMs)} ms after it though it claims to have started ${relative(first.startMs - revokedMs)} it (agent clock: backdated)`;
  return `the agent kept acting: ${count} event(s) started after the revocation, ${what} ${Math.round(first.startMs - revokedMs)} ms after it`;
}

/** Operations that started before this (agent clock) were under way when the kill reached the agent. */
export function graceEnd(item: Tracked, clockSkewMs: number): number {
  const base = item.revocation.timeMs + clockSkewMs;
  const received = item.agentReceivedMs;
  if (received === undefined) return base;
  return Math.max(base, Math.min(received, item.revocation.timeMs + clockSkewMs + IN_FLIGHT_MAX_MS));
}

/** Records the agent-stopped check from the violations known so far (the suspects past the grace count too). */
export function judgeAgent(item: Tracked, clockSkewMs: number, now: () => number): void {
  const end = graceEnd(item, clockSkewMs);
  const late = item.suspects.filter((event) => event.startMs > end);
  const count = item.violationCount + late.length;
  if (count === 0) return;
  const first = [...late, ...item.violations].sort((a, b) => a.startMs - b.startMs)[0];
  if (first === undefined) return;
  item.record.checks.agentStopped = {
    ok: false,
    detail: violationDetail(count, first, item.revocation.timeMs),
    atMs: now(),
    violations: count,
    firstViolation: first,
  };
}
