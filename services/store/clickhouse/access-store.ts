/**
 * Tokens and the audit trail in ClickHouse (schemas/clickhouse/010_access.sql), over a client of their own.
 * Reads use FINAL like every other table (the newest version of a token row wins).
 */
import { readFileSync } from 'node:fs';
import type { ClickHouseClient } from '@clickhouse/client';
import type { AccessStore } from '../../auth/access-store.ts';
import type { Role } from '../../auth/roles.ts';

interface TokenRow {
  id: string;
  tenant: string;
  role: Role;
  name: string;
  token_hash: string;
  superuser: boolean;
  agents: string[];
  created_ms: number;
  created_by: string;
  revoked_ms: number | null;
  revoked_by: string;
}

interface AuditRow {
  time_ms: number;
  tenant: string;
  actor: string;
  token_id: string;
  role: string;
  method: string;
  route: string;
  target: string;
  reason: string;
  status: number;
  request_id: string;
}

/** The statements of the tables' migrations, so that ensureSchema and the migrations never differ. */
const SCHEMA_STATEMENTS = ['010_access.sql', '019_token_agents.sql'].flatMap((file) =>
  readFileSync(new URL(`../../../schemas/clickhouse/${file}`, import.meta.url), 'utf8')
    .replace(/^--.*$/gm, '')
    .split(/;\s*$/m)
    .map((statement) => statement.trim())
    .filter((statement) => statement !== ''),
);

const INSERT_SETTINGS = { date_time_input_format: 'best_effort' } as const;
const iso = (ms: number): string => new Date(ms).toISOString();

/** Over a client whose settings return 64-bit integers as JSON numbers (output_format_json_quote_64bit_integers=0). */
/** The rows whose route parameters name the subject (AccessStore.listAudit's `about`; the same test as auditNames). */
const ABOUT_CONDITION = `AND (
    (JSONHas(target, 'taskId') AND JSONExtractString(target, 'taskId') IN {taskIds:Array(String)})
    OR (JSONHas(target, 'revocationId') AND JSONExtractString(target, 'revocationId') IN {revocationIds:Array(String)})
    OR (JSONHas(target, 'id') AND JSONExtractString(target, 'id') IN {alertIds:Array(String)}))`;

export function createAccessStore(client: ClickHouseClient, database: string): AccessStore {
  return {
    async ensureSchema() {
      await client.command({
        query: 'CREATE DATABASE IF NOT EXISTS {database:Identifier}',
        query_params: { database },
      });
      for (const query of SCHEMA_STATEMENTS) await client.command({ query, query_params: { database } });
    },

    async listTokens() {
      const result = await client.query({
        query: `SELECT id, tenant, role, name, token_hash, superuser, agents, toUnixTimestamp64Milli(created_at) AS created_ms, created_by,
                       if(revoked_at IS NULL, NULL, toUnixTimestamp64Milli(assumeNotNull(revoked_at))) AS revoked_ms, revoked_by
                FROM {database:Identifier}.access_tokens FINAL`,
        query_params: { database },
        format: 'JSONEachRow',
      });
      return (await result.json<TokenRow>()).map((row) => ({
        id: row.id,
        tenant: row.tenant,
        role: row.role,
        name: row.name,
        tokenHash: row.token_hash,
        superuser: row.superuser,
        agents: row.agents,
        createdMs: row.created_ms,
        createdBy: row.created_by,
        revokedMs: row.revoked_ms,
        revokedBy: row.revoked_by,
      }));
    },

    async saveToken(record) {
      await client.insert({
        table: `${database}.access_tokens`,
        format: 'JSONEachRow',
        clickhouse_settings: INSERT_SETTINGS,
        values: [
          {
            id: record.id,
            tenant: record.tenant,
            role: record.role,
            name: record.name,
            token_hash: record.tokenHash,
            superuser: record.superuser,
            agents: record.agents,
            created_at: iso(record.createdMs),
            created_by: record.createdBy,
            revoked_at: record.revokedMs === null ? null : iso(record.revokedMs),
            revoked_by: record.revokedBy,
            // Later versions win; a revocation is always later than the creation it ends.
            version: record.revokedMs ?? record.createdMs,
          },
        ],
      });
    },

    async insertAudit(records) {
      if (records.length === 0) return;
      await client.insert({
        table: `${database}.audit_log`,
        format: 'JSONEachRow',
        clickhouse_settings: INSERT_SETTINGS,
        values: records.map((record) => ({
          time: iso(record.timeMs),
          tenant: record.tenant,
          actor: record.actor.toWellFormed(),
          token_id: record.tokenId,
          role: record.role,
          method: record.method,
          route: record.route,
          target: record.target.toWellFormed(),
          reason: record.reason.toWellFormed(),
          status: record.status,
          request_id: record.requestId,
        })),
      });
    },

    async listAudit(filter) {
      const result = await client.query({
        query: `SELECT toUnixTimestamp64Milli(time) AS time_ms, tenant, actor, token_id, role, method, route, target, reason, status, request_id
                FROM {database:Identifier}.audit_log
                WHERE tenant = {tenant:String} ${filter.beforeMs === undefined ? '' : 'AND time < fromUnixTimestamp64Milli({before:Int64})'}
                  ${filter.about === undefined ? '' : ABOUT_CONDITION}
                ORDER BY time DESC
                LIMIT {limit:UInt32}`,
        query_params: {
          database,
          tenant: filter.tenant,
          limit: filter.limit,
          ...(filter.beforeMs === undefined ? {} : { before: filter.beforeMs }),
          ...(filter.about === undefined
            ? {}
            : {
                taskIds: filter.about.taskIds,
                revocationIds: filter.about.revocationIds,
                alertIds: filter.about.alertIds,
              }),
        },
        format: 'JSONEachRow',
      });
      return (await result.json<AuditRow>()).map((row) => ({
        timeMs: row.time_ms,
        tenant: row.tenant,
        actor: row.actor,
        tokenId: row.token_id,
        role: row.role,
        method: row.method,
        route: row.route,
        target: row.target,
        reason: row.reason,
        status: row.status,
        requestId: row.request_id,
      }));
    },
  };
}
