/**
 * What the verifier keeps for each kill it verifies (the record, the evidence seen, the window's timer), and
 * what its parts share: the settings, the clock, the record writer and the alerts it raised.
 */
import type { AgentEvent, Alert, Revocation } from '../../schemas/events.ts';
import type { Logger } from '../shared/logger.ts';
import type { Authority } from './authority.ts';
import type { KillSwitch } from './kill-switch.ts';
import type { KillSwitchStore, VerificationRecord } from './ks-store.ts';
import type { EndResult, LeaseManager } from './leases.ts';

export interface VerifierOptions {
  store: KillSwitchStore;
  authority: Authority;
  leases: LeaseManager;
  killSwitch: KillSwitch;
  /** Where the alert of a failed verification is stored (the spine's alerts table). */
  insertAlerts(alerts: Alert[]): Promise<void>;
  /** Called for each decided outcome (the runtime notifies and streams failures). */
  onOutcome?(verification: VerificationRecord, revocation: Revocation, alert: Alert | undefined): void;
  windowMs: number;
  clockSkewMs: number;
  requireAck: boolean;
  logger: Logger;
  /** How long after the decision late evidence can still fail a verified kill. @default 600000 */
  lateEvidenceMs?: number;
  now?: () => number;
}

export interface Acknowledgement {
  agentId?: string;
  /** The acknowledging token's binding: the revocation must be about an agent it speaks for (empty: any). */
  agents?: readonly string[];
  /** When the agent helper received the revocation (agent clock, epoch ms). */
  receivedAtMs?: number;
}

export interface Tracked {
  revocation: Revocation;
  record: VerificationRecord;
  leases: Promise<EndResult>;
  leaseResult?: EndResult;
  timer: NodeJS.Timeout | undefined;
  restoredMs?: number;
  /** When the agent helper received the revocation (agent clock), from its acknowledgement. */
  agentReceivedMs?: number;
  /** Events that started after the revocation but possibly before it reached the agent. */
  suspects: Violation[];
  /** Events that started after any grace: the agent acted on a dead task. */
  violations: Violation[];
  violationCount: number;
  deciding?: Promise<void>;
  decided: boolean;
  forgetAtMs: number;
  done: Promise<void>;
  resolveDone: () => void;
}

export interface Violation {
  eventId: string;
  name: string;
  kind: string;
  startMs: number;
  /** When Tripline received it, when that is what makes it a violation (see RECEIPT_ALLOWANCE_MS). */
  receivedMs?: number;
}

/** What the verifier's parts share. */
export interface VerifierContext {
  options: VerifierOptions;
  now: () => number;
  lateEvidenceMs: number;
  /** Ids of the alerts raised for failed verifications. */
  ownAlerts: Set<string>;
  /** Alert inserts under way (waited for by `settled` and `stop`). */
  writes: Set<Promise<unknown>>;
  /** Queues a copy of the record, with the next version, for the background writer. */
  write(record: VerificationRecord): void;
}

export const key = (tenant: string, id: string): string => `${tenant}\u0000${id}`;
/** Read through a function: `decided` changes while a decision awaits. */
export const isDecided = (item: Tracked): boolean => item.decided;

export function pendingRecord(revocation: Revocation): VerificationRecord {
  return {
    revocationId: revocation.id,
    tenant: revocation.tenant,
    taskId: revocation.taskId,
    taskType: revocation.taskType,
    agentId: revocation.agentId,
    outcome: 'pending',
    revokedMs: revocation.timeMs,
    decidedMs: null,
    acknowledgedMs: null,
    checks: {},
    failures: [],
    version: 0,
  };
}

export function newTracked(revocation: Revocation, record: VerificationRecord, leases: Promise<EndResult>): Tracked {
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  return {
    revocation,
    record,
    suspects: [],
    violations: [],
    violationCount: 0,
    leases,
    timer: undefined,
    decided: false,
    forgetAtMs: Number.POSITIVE_INFINITY,
    done,
    resolveDone,
  };
}

/** The event as evidence. */
export const violationOf = (event: AgentEvent): Violation => ({
  eventId: event.id,
  name: event.name,
  kind: event.kind,
  startMs: event.startMs,
});
