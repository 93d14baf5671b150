/**
 * The kill switch's store over ClickHouse: the tables of schemas/clickhouse/006–008 (applied by the spine's
 * `store.migrate()` with the others), and reads of the spine's `revocations` and `events`.
 *
 * It opens its own client on the same ClickHouse as the spine's store: the server at `url`, or the in-process
 * engine at `dataDir` (libchdb binds one data directory per process and lets several connections share it, so
 * this is a second connection to the same engine, not a second engine). Close it before the spine's store.
 * Every read uses FINAL, like the spine's store (see services/store/clickhouse/store.ts for why).
 */
import { createClient } from '@clickhouse/client';
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import { mkdirSync, realpathSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import type { Revocation } from '../../../schemas/events.ts';
import { TriplineError, messageOf } from '../../shared/errors.ts';
import { revocationToRow } from './store.ts';
import { chdbConnection } from './chdb.ts';
import type {
  CredentialRecord,
  DecisionFilter,
  EventsAfter,
  KillSwitchStore,
  LeaseRecord,
  LeaseStatus,
  Outcome,
  PolicyDecisionRecord,
  SecretRecord,
  TaskRevocationState,
  TokenRevocationRecord,
  VerificationChecks,
  VerificationRecord,
} from '../../killswitch/ks-store.ts';

export interface ClickHouseKillSwitchStoreOptions {
  /** A ClickHouse server's HTTP(S) endpoint; when set `dataDir` is ignored. */
  url?: string | undefined;
  username?: string;
  password?: string;
  /** The in-process engine's data directory (the spine's store must use the same one). */
  dataDir: string;
  database: string;
  /** @default 30000 */
  requestTimeoutMs?: number;
}

const QUERY_SETTINGS: ClickHouseSettings = { output_format_json_quote_64bit_integers: 0 };
const INSERT_SETTINGS: ClickHouseSettings = { precise_float_parsing: 1 };
const DATABASE_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

export async function openClickHouseKillSwitchStore(options: ClickHouseKillSwitchStoreOptions): Promise<KillSwitchStore> {
  if (!DATABASE_PATTERN.test(options.database)) {
    throw new TriplineError('CONFIG_INVALID', `database must be letters, digits and _ (got ${JSON.stringify(options.database)})`);
  }
  const open = (): ClickHouseClient => {
    if (options.url !== undefined && options.url !== '') {
      return createClient({
        url: options.url,
        ...(options.username === undefined ? {} : { username: options.username }),
        ...(options.password === undefined ? {} : { password: options.password }),
        request_timeout: options.requestTimeoutMs ?? 30_000,
        application: 'tripline-killswitch',
        clickhouse_settings: QUERY_SETTINGS,
      });
    }
    if (!isMainThread) throw new TriplineError('CONFIG_INVALID', 'The embedded store (chdb) must run on the main thread');
    mkdirSync(options.dataDir, { recursive: true });
    const connection = chdbConnection(realpathSync(options.dataDir));
    return createClient({ connection, clickhouse_settings: QUERY_SETTINGS });
  };
  // Two connections: one for the revocations of kills alone, one for everything else (see insertRevocations).
  const client = open();
  const urgent = open();
  try {
    await client.query({ query: 'SELECT 1', format: 'JSONEachRow' }).then((result) => result.json());
    await urgent.query({ query: 'SELECT 1', format: 'JSONEachRow' }).then((result) => result.json());
  } catch (error) {
    await client.close().catch(() => undefined);
    await urgent.close().catch(() => undefined);
    throw new TriplineError('STORE_UNAVAILABLE', `The kill switch cannot reach ClickHouse: ${messageOf(error)}`, { cause: error });
  }
  return new ClickHouseKillSwitchStore(client, urgent, options.database);
}

// ---------------------------------------------------------------------------------------------------------------
// Times: epoch ms <-> DateTime64(6, 'UTC') text / microseconds.

function utcText(ms: number): string {
  const us = Math.round(ms * 1000);
  const seconds = Math.floor(us / 1_000_000);
  const fraction = us - seconds * 1_000_000;
  const iso = new Date(seconds * 1000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${String(fraction).padStart(6, '0')}`;
}

const fromMicros = (us: number): number => us / 1000;
const fromNullableMicros = (us: number | null): number | null => (us === null ? null : us / 1000);

/**
 * The row's strings (values at any depth) without lone UTF-16 surrogates, which JSON allows and UTF-8 cannot
 * hold: ClickHouse refuses a whole JSONEachRow insert over one, and no retry would fix it. They become U+FFFD.
 */
function wellFormed<T>(value: T): T {
  if (typeof value === 'string') return (value.isWellFormed() ? value : value.toWellFormed()) as T;
  if (Array.isArray(value)) return value.map((item: unknown) => wellFormed(item)) as T;
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([key, item]) => [key, wellFormed(item)])) as T;
  }
  return value;
}

// ---------------------------------------------------------------------------------------------------------------
// Row shapes.

interface RevocationRowOut {
  id: string;
  tenant: string;
  task_id: string;
  task_type: string;
  agent_id: string;
  action: string;
  source: string;
  actor: string;
  reason: string;
  reasons: string[];
  score: number;
  event_id: string;
  time_us: number;
}
const REVOCATION_COLUMNS = `id, tenant, task_id, task_type, agent_id, action, source, actor, reason, reasons, score, event_id,
  toUnixTimestamp64Micro(time) AS time_us`;

function rowToRevocation(r: RevocationRowOut): Revocation {
  return {
    id: r.id,
    tenant: r.tenant,
    taskId: r.task_id,
    taskType: r.task_type,
    agentId: r.agent_id,
    action: r.action === 'restore' ? 'restore' : 'revoke',
    source: r.source === 'manual' ? 'manual' : 'detector',
    actor: r.actor,
    reason: r.reason,
    reasons: r.reasons,
    score: r.score,
    eventId: r.event_id,
    timeMs: fromMicros(r.time_us),
  };
}

interface CredentialRowOut {
  tenant: string;
  jti: string;
  task_id: string;
  task_type: string;
  agent_id: string;
  scopes: string[];
  tools: string[];
  resources: string[];
  issued_us: number;
  expires_us: number;
  decision_id: string;
  kid: string;
}
const CREDENTIAL_COLUMNS = `tenant, jti, task_id, task_type, agent_id, scopes, tools, resources, toUnixTimestamp64Micro(issued_at) AS issued_us,
  toUnixTimestamp64Micro(expires_at) AS expires_us, decision_id, kid`;

interface TokenRevocationRowOut {
  tenant: string;
  jti: string;
  task_id: string;
  agent_id: string;
  time_us: number;
  expires_us: number;
  actor: string;
  reason: string;
}

interface DecisionRowOut {
  id: string;
  tenant: string;
  time_us: number;
  action: string;
  agent_id: string;
  task_id: string;
  task_type: string;
  resource: string;
  decision: string;
  policies: string[];
  reasons: string[];
  errors: string[];
  context: string;
}

interface LeaseRowOut {
  id: string;
  tenant: string;
  task_id: string;
  task_type: string;
  agent_id: string;
  secret: string;
  provider: string;
  provider_ref: string;
  status: string;
  issued_us: number;
  expires_us: number;
  ended_us: number | null;
  end_reason: string;
  version: number;
}
const LEASE_COLUMNS = `id, tenant, task_id, task_type, agent_id, secret, provider, provider_ref, status, toUnixTimestamp64Micro(issued_at) AS issued_us,
  toUnixTimestamp64Micro(expires_at) AS expires_us, toUnixTimestamp64Micro(ended_at) AS ended_us, end_reason, version`;

function rowToLease(r: LeaseRowOut): LeaseRecord {
  return {
    id: r.id,
    tenant: r.tenant,
    taskId: r.task_id,
    taskType: r.task_type,
    agentId: r.agent_id,
    secret: r.secret,
    provider: r.provider,
    providerRef: r.provider_ref,
    status: r.status as LeaseStatus,
    issuedMs: fromMicros(r.issued_us),
    expiresMs: fromMicros(r.expires_us),
    endedMs: fromNullableMicros(r.ended_us),
    endReason: r.end_reason,
    version: r.version,
  };
}

interface SecretRowOut {
  tenant: string;
  name: string;
  version: number;
  ciphertext: string;
  iv: string;
  tag: string;
  key_id: string;
  deleted: boolean;
  updated_us: number;
}

interface VerificationRowOut {
  revocation_id: string;
  tenant: string;
  task_id: string;
  task_type: string;
  agent_id: string;
  outcome: string;
  revoked_us: number;
  decided_us: number | null;
  acknowledged_us: number | null;
  checks: string;
  failures: string[];
  version: number;
}
const VERIFICATION_COLUMNS = `revocation_id, tenant, task_id, task_type, agent_id, outcome, toUnixTimestamp64Micro(revoked_at) AS revoked_us,
  toUnixTimestamp64Micro(decided_at) AS decided_us, toUnixTimestamp64Micro(acknowledged_at) AS acknowledged_us, checks, failures, version`;

function rowToVerification(r: VerificationRowOut): VerificationRecord {
  let checks: VerificationChecks;
  try {
    checks = JSON.parse(r.checks) as VerificationChecks;
  } catch {
    checks = {};
  }
  return {
    revocationId: r.revocation_id,
    tenant: r.tenant,
    taskId: r.task_id,
    taskType: r.task_type,
    agentId: r.agent_id,
    outcome: r.outcome as Outcome,
    revokedMs: fromMicros(r.revoked_us),
    decidedMs: fromNullableMicros(r.decided_us),
    acknowledgedMs: fromNullableMicros(r.acknowledged_us),
    checks,
    failures: r.failures,
    version: r.version,
  };
}

class ClickHouseKillSwitchStore implements KillSwitchStore {
  readonly #client: ClickHouseClient;
  readonly #urgent: ClickHouseClient;
  readonly #db: string;
  readonly #inflight = new Set<Promise<unknown>>();
  /** Revocation inserts under way: the other operations wait for them to finish before they start. */
  readonly #revocations = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;

  constructor(client: ClickHouseClient, urgent: ClickHouseClient, database: string) {
    this.#client = client;
    this.#urgent = urgent;
    this.#db = database;
  }

  async #run<T>(operation: string, work: () => Promise<T>, urgent = false): Promise<T> {
    const refuseIfClosed = (): void => {
      if (this.#closing !== undefined) throw new TriplineError('SHUTTING_DOWN', `The kill-switch store is closed; ${operation} was not run`);
    };
    refuseIfClosed();
    // A kill's revocation is stored before the kill switch's bookkeeping of the same moment (its verification,
    // the next task's credentials) takes CPU from it. Each waits once, for the revocations under way when it came.
    if (!urgent && this.#revocations.size > 0) {
      await Promise.allSettled([...this.#revocations]);
      refuseIfClosed();
    }
    const promise = work();
    this.#inflight.add(promise);
    if (urgent) this.#revocations.add(promise);
    try {
      return await promise;
    } catch (error) {
      if (error instanceof TriplineError) throw error;
      throw new TriplineError('STORE_UNAVAILABLE', `ClickHouse ${operation} failed: ${messageOf(error)}`, { cause: error, details: { operation } });
    } finally {
      this.#inflight.delete(promise);
      this.#revocations.delete(promise);
    }
  }

  async #select<T>(operation: string, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
    return this.#run(operation, async () => {
      const result = await this.#client.query({ query, format: 'JSONEachRow', query_params: params });
      return result.json<T>();
    });
  }

  async #insert(table: string, values: object[], urgent = false): Promise<void> {
    if (values.length === 0) return;
    const client = urgent ? this.#urgent : this.#client;
    await this.#run(
      `insert into ${table}`,
      async () => {
        await client.insert({ table: `${this.#db}.${table}`, values: values.map(wellFormed), format: 'JSONEachRow', clickhouse_settings: INSERT_SETTINGS });
      },
      urgent,
    );
  }

  insertRevocations(rows: readonly Revocation[]): Promise<void> {
    // The spine's row shape, written over this store's own connection so a kill never queues behind bulk writes.
    return this.#insert('revocations', rows.map(revocationToRow), true);
  }

  insertCredentials(rows: readonly CredentialRecord[]): Promise<void> {
    return this.#insert(
      'credentials',
      rows.map((r) => ({
        tenant: r.tenant,
        jti: r.jti,
        task_id: r.taskId,
        task_type: r.taskType,
        agent_id: r.agentId,
        scopes: r.scopes,
        tools: r.tools,
        resources: r.resources,
        issued_at: utcText(r.issuedMs),
        expires_at: utcText(r.expiresMs),
        decision_id: r.decisionId,
        kid: r.kid,
      })),
    );
  }

  insertTokenRevocations(rows: readonly TokenRevocationRecord[]): Promise<void> {
    return this.#insert(
      'token_revocations',
      rows.map((r) => ({
        tenant: r.tenant,
        jti: r.jti,
        task_id: r.taskId,
        agent_id: r.agentId,
        time: utcText(r.timeMs),
        expires_at: utcText(r.expiresMs),
        actor: r.actor,
        reason: r.reason,
      })),
    );
  }

  insertDecisions(rows: readonly PolicyDecisionRecord[]): Promise<void> {
    return this.#insert(
      'policy_decisions',
      rows.map((r) => ({
        id: r.id,
        tenant: r.tenant,
        time: utcText(r.timeMs),
        action: r.action,
        agent_id: r.agentId,
        task_id: r.taskId,
        task_type: r.taskType,
        resource: r.resource,
        decision: r.decision,
        policies: r.policies,
        reasons: r.reasons,
        errors: r.errors,
        context: r.context,
      })),
    );
  }

  upsertLeases(rows: readonly LeaseRecord[]): Promise<void> {
    return this.#insert(
      'leases',
      rows.map((r) => ({
        id: r.id,
        tenant: r.tenant,
        task_id: r.taskId,
        task_type: r.taskType,
        agent_id: r.agentId,
        secret: r.secret,
        provider: r.provider,
        provider_ref: r.providerRef,
        status: r.status,
        issued_at: utcText(r.issuedMs),
        expires_at: utcText(r.expiresMs),
        ended_at: r.endedMs === null ? null : utcText(r.endedMs),
        end_reason: r.endReason,
        version: r.version,
      })),
    );
  }

  upsertSecrets(rows: readonly SecretRecord[]): Promise<void> {
    return this.#insert(
      'secrets',
      rows.map((r) => ({
        tenant: r.tenant,
        name: r.name,
        version: r.version,
        ciphertext: r.ciphertext,
        iv: r.iv,
        tag: r.tag,
        key_id: r.keyId,
        deleted: r.deleted,
        updated_at: utcText(r.updatedMs),
      })),
    );
  }

  upsertVerifications(rows: readonly VerificationRecord[]): Promise<void> {
    return this.#insert(
      'verifications',
      rows.map((r) => ({
        revocation_id: r.revocationId,
        tenant: r.tenant,
        task_id: r.taskId,
        task_type: r.taskType,
        agent_id: r.agentId,
        outcome: r.outcome,
        revoked_at: utcText(r.revokedMs),
        decided_at: r.decidedMs === null ? null : utcText(r.decidedMs),
        acknowledged_at: r.acknowledgedMs === null ? null : utcText(r.acknowledgedMs),
        checks: JSON.stringify(r.checks),
        failures: r.failures,
        version: r.version,
      })),
    );
  }

  async loadTaskRevocations(): Promise<TaskRevocationState[]> {
    // The newest row per task decides (ties: a revoke wins over a restore at the same microsecond).
    const rows = await this.#select<RevocationRowOut & { last_revoke_us: number }>(
      'loadTaskRevocations',
      `SELECT ${REVOCATION_COLUMNS}, last_revoke_us FROM (
         SELECT *, max(if(action = 'revoke', toUnixTimestamp64Micro(time), 0)) OVER (PARTITION BY tenant, task_id) AS last_revoke_us
         FROM ${this.#db}.revocations FINAL
       )
       ORDER BY tenant, task_id, time DESC, action = 'revoke' DESC
       LIMIT 1 BY tenant, task_id`,
    );
    return rows.map((row) => {
      const last = rowToRevocation(row);
      return {
        tenant: last.tenant,
        taskId: last.taskId,
        taskType: last.taskType,
        agentId: last.agentId,
        lastAction: last.action,
        lastRevokeMs: fromMicros(row.last_revoke_us),
        last,
      };
    });
  }

  async loadRevocationsSince(sinceMs: number): Promise<Revocation[]> {
    const rows = await this.#select<RevocationRowOut>(
      'loadRevocationsSince',
      `SELECT ${REVOCATION_COLUMNS} FROM ${this.#db}.revocations FINAL WHERE time >= {since:DateTime64(6, 'UTC')} ORDER BY time, id`,
      { since: utcText(sinceMs) },
    );
    return rows.map(rowToRevocation);
  }

  async loadTokenRevocations(nowMs: number): Promise<TokenRevocationRecord[]> {
    const rows = await this.#select<TokenRevocationRowOut>(
      'loadTokenRevocations',
      `SELECT tenant, jti, task_id, agent_id, toUnixTimestamp64Micro(time) AS time_us, toUnixTimestamp64Micro(expires_at) AS expires_us, actor, reason
       FROM ${this.#db}.token_revocations FINAL WHERE expires_at > {now:DateTime64(6, 'UTC')}`,
      { now: utcText(nowMs) },
    );
    return rows.map((r) => ({ tenant: r.tenant, jti: r.jti, taskId: r.task_id, agentId: r.agent_id, timeMs: fromMicros(r.time_us), expiresMs: fromMicros(r.expires_us), actor: r.actor, reason: r.reason }));
  }

  async listCredentials(tenant: string, taskId: string): Promise<CredentialRecord[]> {
    const rows = await this.#select<CredentialRowOut>(
      'listCredentials',
      `SELECT ${CREDENTIAL_COLUMNS} FROM ${this.#db}.credentials FINAL WHERE tenant = {tenant:String} AND task_id = {taskId:String} ORDER BY issued_at`,
      { tenant, taskId },
    );
    return rows.map((r) => ({
      tenant: r.tenant,
      jti: r.jti,
      taskId: r.task_id,
      taskType: r.task_type,
      agentId: r.agent_id,
      scopes: r.scopes,
      tools: r.tools,
      resources: r.resources,
      issuedMs: fromMicros(r.issued_us),
      expiresMs: fromMicros(r.expires_us),
      decisionId: r.decision_id,
      kid: r.kid,
    }));
  }

  async getRevocation(tenant: string, id: string): Promise<Revocation | null> {
    const rows = await this.#select<RevocationRowOut>(
      'getRevocation',
      `SELECT ${REVOCATION_COLUMNS} FROM ${this.#db}.revocations FINAL WHERE tenant = {tenant:String} AND id = {id:String} LIMIT 1`,
      { tenant, id },
    );
    const row = rows[0];
    return row === undefined ? null : rowToRevocation(row);
  }

  async getVerification(tenant: string, revocationId: string): Promise<VerificationRecord | null> {
    return (await this.getVerifications(tenant, [revocationId]))[0] ?? null;
  }

  async getVerifications(tenant: string, revocationIds: readonly string[]): Promise<VerificationRecord[]> {
    if (revocationIds.length === 0) return [];
    const rows = await this.#select<VerificationRowOut>(
      'getVerifications',
      `SELECT ${VERIFICATION_COLUMNS} FROM ${this.#db}.verifications FINAL WHERE tenant = {tenant:String} AND revocation_id IN {ids:Array(String)}`,
      { tenant, ids: [...revocationIds] },
    );
    return rows.map(rowToVerification);
  }

  async listPendingVerifications(): Promise<VerificationRecord[]> {
    const rows = await this.#select<VerificationRowOut>(
      'listPendingVerifications',
      `SELECT ${VERIFICATION_COLUMNS} FROM ${this.#db}.verifications FINAL WHERE outcome = 'pending' ORDER BY revoked_at LIMIT 10000`,
    );
    return rows.map(rowToVerification);
  }

  async getLease(tenant: string, id: string): Promise<LeaseRecord | null> {
    const rows = await this.#select<LeaseRowOut>('getLease', `SELECT ${LEASE_COLUMNS} FROM ${this.#db}.leases FINAL WHERE tenant = {tenant:String} AND id = {id:String} LIMIT 1`, { tenant, id });
    const row = rows[0];
    return row === undefined ? null : rowToLease(row);
  }

  async listLeases(tenant: string, taskId: string): Promise<LeaseRecord[]> {
    const rows = await this.#select<LeaseRowOut>(
      'listLeases',
      `SELECT ${LEASE_COLUMNS} FROM ${this.#db}.leases FINAL WHERE tenant = {tenant:String} AND task_id = {taskId:String} ORDER BY issued_at, id`,
      { tenant, taskId },
    );
    return rows.map(rowToLease);
  }

  async listActiveLeases(): Promise<LeaseRecord[]> {
    const rows = await this.#select<LeaseRowOut>('listActiveLeases', `SELECT ${LEASE_COLUMNS} FROM ${this.#db}.leases FINAL WHERE status = 'active' ORDER BY issued_at LIMIT 100000`);
    return rows.map(rowToLease);
  }

  async getSecret(tenant: string, name: string): Promise<SecretRecord | null> {
    return (await this.#secrets(tenant, name))[0] ?? null;
  }

  listSecrets(tenant: string): Promise<SecretRecord[]> {
    return this.#secrets(tenant, undefined);
  }

  async #secrets(tenant: string, name: string | undefined): Promise<SecretRecord[]> {
    const rows = await this.#select<SecretRowOut>(
      'secrets',
      `SELECT tenant, name, version, ciphertext, iv, tag, key_id, deleted, toUnixTimestamp64Micro(updated_at) AS updated_us
       FROM ${this.#db}.secrets FINAL WHERE tenant = {tenant:String} ${name === undefined ? '' : 'AND name = {name:String}'} ORDER BY name`,
      name === undefined ? { tenant } : { tenant, name },
    );
    return rows.map((r) => ({ tenant: r.tenant, name: r.name, version: r.version, ciphertext: r.ciphertext, iv: r.iv, tag: r.tag, keyId: r.key_id, deleted: r.deleted, updatedMs: fromMicros(r.updated_us) }));
  }

  async listDecisions(filter: DecisionFilter): Promise<PolicyDecisionRecord[]> {
    const where = ['tenant = {tenant:String}'];
    const params: Record<string, unknown> = { tenant: filter.tenant, limit: Math.max(1, Math.min(1000, filter.limit)) };
    if (filter.taskId !== undefined) {
      where.push('task_id = {taskId:String}');
      params.taskId = filter.taskId;
    }
    if (filter.agentId !== undefined) {
      where.push('agent_id = {agentId:String}');
      params.agentId = filter.agentId;
    }
    const rows = await this.#select<DecisionRowOut>(
      'listDecisions',
      `SELECT id, tenant, toUnixTimestamp64Micro(time) AS time_us, action, agent_id, task_id, task_type, resource, decision, policies, reasons, errors, context
       FROM ${this.#db}.policy_decisions FINAL WHERE ${where.join(' AND ')} ORDER BY time DESC, id DESC LIMIT {limit:UInt32}`,
      params,
    );
    return rows.map((r) => ({
      id: r.id,
      tenant: r.tenant,
      timeMs: fromMicros(r.time_us),
      action: r.action,
      agentId: r.agent_id,
      taskId: r.task_id,
      taskType: r.task_type,
      resource: r.resource,
      decision: r.decision === 'allow' ? 'allow' : 'deny',
      policies: r.policies,
      reasons: r.reasons,
      errors: r.errors,
      context: r.context,
    }));
  }

  async eventsAfter(tenant: string, taskId: string, afterMs: number): Promise<EventsAfter> {
    const rows = await this.#select<{ id: string; name: string; kind: string; start_us: number; total: number }>(
      'eventsAfter',
      `SELECT id, name, kind, toUnixTimestamp64Micro(start_time) AS start_us, count() OVER () AS total
       FROM ${this.#db}.events FINAL
       WHERE tenant = {tenant:String} AND task_id = {taskId:String} AND start_time > {after:DateTime64(6, 'UTC')}
       ORDER BY start_time LIMIT 1`,
      { tenant, taskId, after: utcText(afterMs) },
    );
    const first = rows[0];
    if (first === undefined) return { count: 0 };
    return { count: first.total, first: { eventId: first.id, name: first.name, kind: first.kind, startMs: fromMicros(first.start_us) } };
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#inflight]);
      await this.#client.close();
      await this.#urgent.close();
    })();
    return this.#closing;
  }
}
