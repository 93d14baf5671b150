/**
 * The kill switch's store over ClickHouse: the tables of schemas/clickhouse/006–008 (applied by the spine's
 * `store.migrate()` with the others), and reads of the spine's `revocations` and `events`.
 *
 * It opens its own client on the same ClickHouse as the spine's store: the server at `url`, or the in-process
 * engine at `dataDir` (libchdb binds one data directory per process and lets several connections share it, so
 * this is a second connection to the same engine, not a second engine). Close it before the spine's store.
 * Every read uses FINAL, like the spine's store (see services/store/clickhouse/store.ts for why).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Revocation } from '../../../schemas/events.ts';
import { TriplineError, messageOf } from '../../shared/errors.ts';
import { revocationToRow } from './rows.ts';
import { INSERT_SETTINGS, QUERY_SETTINGS, isDatabaseName, openClickHouseClient } from './client.ts';
import {
  CREDENTIAL_COLUMNS,
  LEASE_COLUMNS,
  REVOCATION_COLUMNS,
  VERIFICATION_COLUMNS,
  credentialToRow,
  decisionToRow,
  leaseToRow,
  rowToCredential,
  rowToDecision,
  rowToLease,
  rowToRevocation,
  rowToSecret,
  rowToTokenRevocation,
  rowToVerification,
  secretToRow,
  tokenRevocationToRow,
  verificationToRow,
} from './kill-switch-rows.ts';
import type {
  CredentialRowOut,
  DecisionRowOut,
  LeaseRowOut,
  RevocationRowOut,
  SecretRowOut,
  TokenRevocationRowOut,
  VerificationRowOut,
} from './kill-switch-rows.ts';
import { fromMicros, utcText, wellFormed } from './values.ts';
import type {
  CredentialRecord,
  DecisionFilter,
  EventsAfter,
  KillSwitchStore,
  LeaseRecord,
  PolicyDecisionRecord,
  SecretRecord,
  TaskRevocationState,
  TokenRevocationRecord,
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

export async function openClickHouseKillSwitchStore(
  options: ClickHouseKillSwitchStoreOptions,
): Promise<KillSwitchStore> {
  if (!isDatabaseName(options.database)) {
    throw new TriplineError(
      'CONFIG_INVALID',
      `database must be letters, digits and _ (got ${JSON.stringify(options.database)})`,
    );
  }
  const setup = {
    application: 'tripline-killswitch',
    settings: QUERY_SETTINGS,
    requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
  };
  // Two connections: one for the revocations of kills alone, one for everything else (see insertRevocations).
  const client = openClickHouseClient(options, setup);
  const urgent = openClickHouseClient(options, setup);
  try {
    await client.query({ query: 'SELECT 1', format: 'JSONEachRow' }).then((result) => result.json());
    await urgent.query({ query: 'SELECT 1', format: 'JSONEachRow' }).then((result) => result.json());
  } catch (error) {
    await client.close().catch(() => undefined);
    await urgent.close().catch(() => undefined);
    throw new TriplineError('STORE_UNAVAILABLE', `The kill switch cannot reach ClickHouse: ${messageOf(error)}`, {
      cause: error,
    });
  }
  return new ClickHouseKillSwitchStore(client, urgent, options.database);
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
      if (this.#closing !== undefined)
        throw new TriplineError('SHUTTING_DOWN', `The kill-switch store is closed; ${operation} was not run`);
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
      throw new TriplineError('STORE_UNAVAILABLE', `ClickHouse ${operation} failed: ${messageOf(error)}`, {
        cause: error,
        details: { operation },
      });
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
        await client.insert({
          table: `${this.#db}.${table}`,
          values: values.map(wellFormed),
          format: 'JSONEachRow',
          clickhouse_settings: INSERT_SETTINGS,
        });
      },
      urgent,
    );
  }

  insertRevocations(rows: readonly Revocation[]): Promise<void> {
    // The spine's row shape, written over this store's own connection so a kill never queues behind bulk writes.
    return this.#insert('revocations', rows.map(revocationToRow), true);
  }

  insertCredentials(rows: readonly CredentialRecord[]): Promise<void> {
    return this.#insert('credentials', rows.map(credentialToRow));
  }

  insertTokenRevocations(rows: readonly TokenRevocationRecord[]): Promise<void> {
    return this.#insert('token_revocations', rows.map(tokenRevocationToRow));
  }

  insertDecisions(rows: readonly PolicyDecisionRecord[]): Promise<void> {
    return this.#insert('policy_decisions', rows.map(decisionToRow));
  }

  upsertLeases(rows: readonly LeaseRecord[]): Promise<void> {
    return this.#insert('leases', rows.map(leaseToRow));
  }

  upsertSecrets(rows: readonly SecretRecord[]): Promise<void> {
    return this.#insert('secrets', rows.map(secretToRow));
  }

  upsertVerifications(rows: readonly VerificationRecord[]): Promise<void> {
    return this.#insert('verifications', rows.map(verificationToRow));
  }

  async loadTaskRevocations(task?: { tenant: string; taskId: string }): Promise<TaskRevocationState[]> {
    // The newest row per task decides (ties: a revoke wins over a restore at the same microsecond).
    const rows = await this.#select<RevocationRowOut & { last_revoke_us: number }>(
      'loadTaskRevocations',
      `SELECT ${REVOCATION_COLUMNS}, last_revoke_us FROM (
         SELECT *, max(if(action = 'revoke', toUnixTimestamp64Micro(time), 0)) OVER (PARTITION BY tenant, task_id) AS last_revoke_us
         FROM ${this.#db}.revocations FINAL
         ${task === undefined ? '' : 'WHERE tenant = {tenant:String} AND task_id = {taskId:String}'}
       )
       ORDER BY tenant, task_id, time DESC, action = 'revoke' DESC
       LIMIT 1 BY tenant, task_id`,
      task,
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
    return rows.map(rowToTokenRevocation);
  }

  async listTokenRevocations(tenant: string, taskId: string): Promise<TokenRevocationRecord[]> {
    const rows = await this.#select<TokenRevocationRowOut>(
      'listTokenRevocations',
      `SELECT tenant, jti, task_id, agent_id, toUnixTimestamp64Micro(time) AS time_us, toUnixTimestamp64Micro(expires_at) AS expires_us, actor, reason
       FROM ${this.#db}.token_revocations FINAL WHERE tenant = {tenant:String} AND task_id = {taskId:String} ORDER BY time`,
      { tenant, taskId },
    );
    return rows.map(rowToTokenRevocation);
  }

  async listCredentials(tenant: string, taskId: string): Promise<CredentialRecord[]> {
    const rows = await this.#select<CredentialRowOut>(
      'listCredentials',
      `SELECT ${CREDENTIAL_COLUMNS} FROM ${this.#db}.credentials FINAL WHERE tenant = {tenant:String} AND task_id = {taskId:String} ORDER BY issued_at`,
      { tenant, taskId },
    );
    return rows.map(rowToCredential);
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
    const rows = await this.#select<LeaseRowOut>(
      'getLease',
      `SELECT ${LEASE_COLUMNS} FROM ${this.#db}.leases FINAL WHERE tenant = {tenant:String} AND id = {id:String} LIMIT 1`,
      { tenant, id },
    );
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
    const rows = await this.#select<LeaseRowOut>(
      'listActiveLeases',
      `SELECT ${LEASE_COLUMNS} FROM ${this.#db}.leases FINAL WHERE status = 'active' ORDER BY issued_at LIMIT 100000`,
    );
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
    return rows.map(rowToSecret);
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
    return rows.map(rowToDecision);
  }

  async eventsAfter(
    tenant: string,
    taskId: string,
    afterMs: number,
    receipt: { revokedMs: number; allowanceMs: number },
  ): Promise<EventsAfter> {
    // `ingested_at` is the store's clock, not the agent's: a span stored long after both the revocation and its
    // own claimed end counts whatever its timestamps say (a backdated span).
    const rows = await this.#select<{
      id: string;
      name: string;
      kind: string;
      start_us: number;
      ingested_us: number;
      total: number;
    }>(
      'eventsAfter',
      `SELECT id, name, kind, toUnixTimestamp64Micro(start_time) AS start_us,
              toUnixTimestamp64Micro(ingested_at) AS ingested_us, count() OVER () AS total
       FROM ${this.#db}.events FINAL
       WHERE tenant = {tenant:String} AND task_id = {taskId:String}
         AND (start_time > {after:DateTime64(6, 'UTC')}
              OR toUnixTimestamp64Milli(ingested_at) >
                 greatest(toUnixTimestamp64Milli(end_time), {revokedMs:Int64}) + {allowanceMs:Int64})
       ORDER BY start_time LIMIT 1`,
      {
        tenant,
        taskId,
        after: utcText(afterMs),
        revokedMs: Math.floor(receipt.revokedMs),
        allowanceMs: Math.floor(receipt.allowanceMs),
      },
    );
    const first = rows[0];
    if (first === undefined) return { count: 0 };
    return {
      count: first.total,
      first: {
        eventId: first.id,
        name: first.name,
        kind: first.kind,
        startMs: fromMicros(first.start_us),
        receivedMs: fromMicros(first.ingested_us),
      },
    };
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
