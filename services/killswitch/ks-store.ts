/**
 * The kill switch's store port: credentials, policy decisions, leases, secrets and verification outcomes, plus
 * the reads it needs of the spine's tables (revocations, events). `services/store/clickhouse/kill-switch-store.ts` implements it over
 * the same ClickHouse (server or in-process engine) as the spine's store; `createInMemoryKillSwitchStore()` is
 * the in-memory twin for unit tests.
 * Writes are idempotent by id (and by version for rows with state): a repeated write changes nothing.
 */
import type { Revocation } from '../../schemas/events.ts';

export interface CredentialRecord {
  tenant: string;
  jti: string;
  taskId: string;
  taskType: string;
  agentId: string;
  scopes: string[];
  tools: string[];
  resources: string[];
  issuedMs: number;
  expiresMs: number;
  decisionId: string;
  kid: string;
}

export interface TokenRevocationRecord {
  tenant: string;
  jti: string;
  taskId: string;
  agentId: string;
  timeMs: number;
  expiresMs: number;
  actor: string;
  reason: string;
}

export interface PolicyDecisionRecord {
  id: string;
  tenant: string;
  timeMs: number;
  action: string;
  agentId: string;
  taskId: string;
  taskType: string;
  resource: string;
  /** `pending`: a call_tool that waits for a person's approval (docs/approvals.md). */
  decision: 'allow' | 'deny' | 'pending';
  policies: string[];
  reasons: string[];
  errors: string[];
  /** The request context as JSON. */
  context: string;
}

/**
 * `revoked_at_tripline_only`: revoked by a provider that cannot stop a value already handed out (the built-in
 * store): Tripline no longer hands it out, but the value works at the system it unlocks until rotated there.
 */
export const LEASE_STATUSES = [
  'active',
  'released',
  'expired',
  'revoked',
  'revoked_at_tripline_only',
  'revoke_failed',
] as const;
export type LeaseStatus = (typeof LEASE_STATUSES)[number];

export interface LeaseRecord {
  id: string;
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  secret: string;
  provider: string;
  providerRef: string;
  status: LeaseStatus;
  issuedMs: number;
  expiresMs: number;
  endedMs: number | null;
  endReason: string;
  version: number;
}

export interface SecretRecord {
  tenant: string;
  name: string;
  version: number;
  ciphertext: string;
  iv: string;
  tag: string;
  keyId: string;
  deleted: boolean;
  updatedMs: number;
}

export const OUTCOMES = ['pending', 'verified', 'failed'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface CheckResult {
  ok: boolean;
  /** What was found, for people. */
  detail: string;
  /** When the check was made (epoch ms). */
  atMs: number;
}

export interface VerificationChecks {
  /** Introspection answers inactive for every token of the task, and the task is refused new ones. */
  introspection?: CheckResult;
  /**
   * Every lease of the task was revoked at its provider. `atTriplineOnly`: the leases among them whose provider
   * cannot stop a value already handed out (the built-in store): Tripline stops handing it out, and the value
   * keeps working at the system it unlocks until it is rotated there.
   */
  leases?: CheckResult & { revoked: number; failed: string[]; atTriplineOnly?: string[] };
  /** No tool call, data access or privilege change started after the revocation (plus the clock-skew allowance). */
  agentStopped?: CheckResult & {
    violations: number;
    /** `receivedMs`: when Tripline received it, when that made it a violation (a backdated span). */
    firstViolation?: { eventId: string; name: string; kind: string; startMs: number; receivedMs?: number };
  };
  /** The agent helper acknowledged the revocation (required only when TRIPLINE_VERIFY_REQUIRE_ACK is true). */
  acknowledged?: CheckResult & { required: boolean };
}

export interface VerificationRecord {
  revocationId: string;
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  outcome: Outcome;
  revokedMs: number;
  decidedMs: number | null;
  acknowledgedMs: number | null;
  checks: VerificationChecks;
  failures: string[];
  version: number;
}

/** The last revocation state of a task, from the revocations table. */
export interface TaskRevocationState {
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  /** The newest action: a task whose last action is `revoke` is revoked now. */
  lastAction: 'revoke' | 'restore';
  /** The newest revoke (tokens issued at or before it are dead for good). */
  lastRevokeMs: number;
  /** The revocation (or restore) with the newest time. */
  last: Revocation;
}

export interface EventsAfter {
  count: number;
  first?: { eventId: string; name: string; kind: string; startMs: number; receivedMs?: number };
}

export interface DecisionFilter {
  tenant: string;
  taskId?: string;
  agentId?: string;
  limit: number;
}

export interface KillSwitchStore {
  /**
   * Writes revocations to the spine's `revocations` table (the same rows as Store.insertRevocations) over a
   * connection of their own: on one connection queries run one after another, and the audit row of a kill must
   * not wait behind a large insert of events.
   */
  insertRevocations(rows: readonly Revocation[]): Promise<void>;
  insertCredentials(rows: readonly CredentialRecord[]): Promise<void>;
  insertTokenRevocations(rows: readonly TokenRevocationRecord[]): Promise<void>;
  insertDecisions(rows: readonly PolicyDecisionRecord[]): Promise<void>;
  upsertLeases(rows: readonly LeaseRecord[]): Promise<void>;
  upsertSecrets(rows: readonly SecretRecord[]): Promise<void>;
  upsertVerifications(rows: readonly VerificationRecord[]): Promise<void>;

  /**
   * The last revocation state of every task that was ever revoked (to rebuild the revoked set at start), or of
   * one task (none: never revoked).
   */
  loadTaskRevocations(task?: { tenant: string; taskId: string }): Promise<TaskRevocationState[]>;
  /** Revocations at or after `sinceMs`, oldest first (to rebuild escalation windows at start). */
  loadRevocationsSince(sinceMs: number): Promise<Revocation[]>;
  /** Token revocations whose token has not expired at `nowMs`. */
  loadTokenRevocations(nowMs: number): Promise<TokenRevocationRecord[]>;
  /** The tokens of one task revoked on their own, oldest first (the task's timeline). */
  listTokenRevocations(tenant: string, taskId: string): Promise<TokenRevocationRecord[]>;
  listCredentials(tenant: string, taskId: string): Promise<CredentialRecord[]>;
  getRevocation(tenant: string, id: string): Promise<Revocation | null>;

  getVerification(tenant: string, revocationId: string): Promise<VerificationRecord | null>;
  getVerifications(tenant: string, revocationIds: readonly string[]): Promise<VerificationRecord[]>;
  listPendingVerifications(): Promise<VerificationRecord[]>;

  getLease(tenant: string, id: string): Promise<LeaseRecord | null>;
  listLeases(tenant: string, taskId: string): Promise<LeaseRecord[]>;
  listActiveLeases(): Promise<LeaseRecord[]>;

  getSecret(tenant: string, name: string): Promise<SecretRecord | null>;
  listSecrets(tenant: string): Promise<SecretRecord[]>;

  listDecisions(filter: DecisionFilter): Promise<PolicyDecisionRecord[]>;

  /** Events of the task that started after `afterMs` (the evidence an agent kept acting after a revocation). */
  /**
   * Events of the task that started after `afterMs` (agent clock), or that were stored more than `allowanceMs`
   * after both `revokedMs` and their own claimed end (Tripline's clock: `ingested_at`), the earliest first.
   */
  eventsAfter(
    tenant: string,
    taskId: string,
    afterMs: number,
    receipt: { revokedMs: number; allowanceMs: number },
  ): Promise<EventsAfter>;

  close(): Promise<void>;
}

/** What the in-memory store is seeded with, standing in for the spine's tables. */
export interface InMemorySeed {
  revocations?: Revocation[];
  events?: {
    tenant: string;
    taskId: string;
    eventId: string;
    name: string;
    kind: string;
    startMs: number;
    endMs?: number;
    /** When the event was stored (Tripline's clock). */
    ingestedMs?: number;
  }[];
}

/** The in-memory twin: the same semantics (newest version wins, idempotent by id), nothing persisted. */
export function createInMemoryKillSwitchStore(
  seed: InMemorySeed = {},
): KillSwitchStore & { seed: Required<InMemorySeed> } {
  const all: Required<InMemorySeed> = { revocations: seed.revocations ?? [], events: seed.events ?? [] };
  const credentials = new Map<string, CredentialRecord>();
  const tokenRevocations = new Map<string, TokenRevocationRecord>();
  const decisions = new Map<string, PolicyDecisionRecord>();
  const leases = new Map<string, LeaseRecord>();
  const secrets = new Map<string, SecretRecord>();
  const verifications = new Map<string, VerificationRecord>();
  const key = (...parts: string[]): string => parts.join('\u0000');
  const newer = <T extends { version: number }>(map: Map<string, T>, id: string, row: T): void => {
    const current = map.get(id);
    if (current === undefined || row.version >= current.version) map.set(id, structuredClone(row));
  };

  return {
    seed: all,
    insertRevocations(rows) {
      for (const row of rows)
        if (!all.revocations.some((r) => r.tenant === row.tenant && r.id === row.id))
          all.revocations.push(structuredClone(row));
      return Promise.resolve();
    },
    insertCredentials(rows) {
      for (const row of rows) credentials.set(key(row.tenant, row.jti), structuredClone(row));
      return Promise.resolve();
    },
    insertTokenRevocations(rows) {
      for (const row of rows) tokenRevocations.set(key(row.tenant, row.jti), structuredClone(row));
      return Promise.resolve();
    },
    insertDecisions(rows) {
      for (const row of rows) decisions.set(key(row.tenant, row.id), structuredClone(row));
      return Promise.resolve();
    },
    upsertLeases(rows) {
      for (const row of rows) newer(leases, key(row.tenant, row.id), row);
      return Promise.resolve();
    },
    upsertSecrets(rows) {
      for (const row of rows) newer(secrets, key(row.tenant, row.name), row);
      return Promise.resolve();
    },
    upsertVerifications(rows) {
      for (const row of rows) newer(verifications, key(row.tenant, row.revocationId), row);
      return Promise.resolve();
    },
    loadTaskRevocations(task) {
      const byTask = new Map<string, TaskRevocationState>();
      const ofTask = all.revocations.filter(
        (r) => task === undefined || (r.tenant === task.tenant && r.taskId === task.taskId),
      );
      for (const revocation of ofTask.sort((a, b) => a.timeMs - b.timeMs)) {
        const id = key(revocation.tenant, revocation.taskId);
        const previous = byTask.get(id);
        byTask.set(id, {
          tenant: revocation.tenant,
          taskId: revocation.taskId,
          taskType: revocation.taskType,
          agentId: revocation.agentId,
          lastAction: revocation.action,
          lastRevokeMs: revocation.action === 'revoke' ? revocation.timeMs : (previous?.lastRevokeMs ?? 0),
          last: revocation,
        });
      }
      return Promise.resolve([...byTask.values()]);
    },
    loadRevocationsSince(sinceMs) {
      return Promise.resolve(all.revocations.filter((r) => r.timeMs >= sinceMs).sort((a, b) => a.timeMs - b.timeMs));
    },
    loadTokenRevocations(nowMs) {
      return Promise.resolve([...tokenRevocations.values()].filter((row) => row.expiresMs > nowMs));
    },
    listTokenRevocations(tenant, taskId) {
      return Promise.resolve(
        [...tokenRevocations.values()]
          .filter((row) => row.tenant === tenant && row.taskId === taskId)
          .sort((a, b) => a.timeMs - b.timeMs)
          .map((row) => structuredClone(row)),
      );
    },
    listCredentials(tenant, taskId) {
      return Promise.resolve(
        [...credentials.values()]
          .filter((row) => row.tenant === tenant && row.taskId === taskId)
          .sort((a, b) => a.issuedMs - b.issuedMs),
      );
    },
    getRevocation(tenant, id) {
      return Promise.resolve(all.revocations.find((r) => r.tenant === tenant && r.id === id) ?? null);
    },
    getVerification(tenant, revocationId) {
      return Promise.resolve(structuredClone(verifications.get(key(tenant, revocationId)) ?? null));
    },
    getVerifications(tenant, revocationIds) {
      return Promise.resolve(
        revocationIds.flatMap((id) => {
          const row = verifications.get(key(tenant, id));
          return row === undefined ? [] : [structuredClone(row)];
        }),
      );
    },
    listPendingVerifications() {
      return Promise.resolve(
        [...verifications.values()].filter((row) => row.outcome === 'pending').map((row) => structuredClone(row)),
      );
    },
    getLease(tenant, id) {
      return Promise.resolve(structuredClone(leases.get(key(tenant, id)) ?? null));
    },
    listLeases(tenant, taskId) {
      return Promise.resolve(
        [...leases.values()]
          .filter((row) => row.tenant === tenant && row.taskId === taskId)
          .map((row) => structuredClone(row)),
      );
    },
    listActiveLeases() {
      return Promise.resolve(
        [...leases.values()].filter((row) => row.status === 'active').map((row) => structuredClone(row)),
      );
    },
    getSecret(tenant, name) {
      return Promise.resolve(structuredClone(secrets.get(key(tenant, name)) ?? null));
    },
    listSecrets(tenant) {
      return Promise.resolve(
        [...secrets.values()].filter((row) => row.tenant === tenant).map((row) => structuredClone(row)),
      );
    },
    listDecisions(filter) {
      return Promise.resolve(
        [...decisions.values()]
          .filter(
            (row) =>
              row.tenant === filter.tenant &&
              (filter.taskId === undefined || row.taskId === filter.taskId) &&
              (filter.agentId === undefined || row.agentId === filter.agentId),
          )
          .sort((a, b) => b.timeMs - a.timeMs)
          .slice(0, filter.limit),
      );
    },
    eventsAfter(tenant, taskId, afterMs, receipt) {
      const late = (event: (typeof all.events)[number]): boolean =>
        event.ingestedMs !== undefined &&
        event.ingestedMs > Math.max(event.endMs ?? event.startMs, receipt.revokedMs) + receipt.allowanceMs;
      const after = all.events
        .filter(
          (event) => event.tenant === tenant && event.taskId === taskId && (event.startMs > afterMs || late(event)),
        )
        .sort((a, b) => a.startMs - b.startMs);
      const first = after[0];
      return Promise.resolve({
        count: after.length,
        ...(first === undefined
          ? {}
          : {
              first: {
                eventId: first.eventId,
                name: first.name,
                kind: first.kind,
                startMs: first.startMs,
                ...(first.ingestedMs === undefined ? {} : { receivedMs: first.ingestedMs }),
              },
            }),
      });
    },
    close: () => Promise.resolve(),
  };
}
