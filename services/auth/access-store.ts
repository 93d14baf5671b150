/** The tokens' and the audit trail's store port; ClickHouse implements it in services/store/clickhouse/access-store.ts. */
import type { Role } from './roles.ts';

export interface TokenRecord {
  id: string;
  tenant: string;
  role: Role;
  name: string;
  tokenHash: string;
  superuser: boolean;
  createdMs: number;
  createdBy: string;
  revokedMs: number | null;
  revokedBy: string;
}

export interface AuditRecord {
  timeMs: number;
  tenant: string;
  actor: string;
  tokenId: string;
  role: string;
  method: string;
  route: string;
  target: string;
  reason: string;
  status: number;
  requestId: string;
}

export interface AccessStore {
  /** Creates the tables when missing (a gateway may start on a store no migration has run on yet). */
  ensureSchema(): Promise<void>;
  listTokens(): Promise<TokenRecord[]>;
  /** Writes the token row (a new token, or a newer version of one: its revocation). */
  saveToken(record: TokenRecord): Promise<void>;
  insertAudit(records: readonly AuditRecord[]): Promise<void>;
  /** Newest first; `taskId`: only requests whose route named that task (`/v1/tasks/:taskId/…`). */
  listAudit(filter: { tenant: string; limit: number; beforeMs?: number; taskId?: string }): Promise<AuditRecord[]>;
}
