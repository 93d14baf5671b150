/** The tokens' and the audit trail's store port; ClickHouse implements it in services/store/clickhouse/access-store.ts. */
import type { Role } from './roles.ts';

export interface TokenRecord {
  id: string;
  tenant: string;
  role: Role;
  name: string;
  tokenHash: string;
  superuser: boolean;
  /** Agent tokens: the agent ids (and `prefix*`) it may speak for; empty for fleet-wide (services/core/agent-binding.ts). */
  agents: string[];
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

/**
 * What an audit row is about, by its route parameters (`target`): a task (`:taskId`, kills and restores), one of its
 * revocations (`:revocationId`, acknowledgements) or one of its alerts (`:id`, false positives).
 */
export interface AuditSubject {
  taskIds: readonly string[];
  revocationIds: readonly string[];
  alertIds: readonly string[];
}

/** Whether a row's route parameters (`target`, JSON) name the subject. */
export function auditNames(target: string, about: AuditSubject): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(target);
  } catch {
    return false;
  }
  if (typeof parsed !== 'object' || parsed === null) return false;
  const { taskId, revocationId, id } = parsed as { taskId?: unknown; revocationId?: unknown; id?: unknown };
  return (
    (typeof taskId === 'string' && about.taskIds.includes(taskId)) ||
    (typeof revocationId === 'string' && about.revocationIds.includes(revocationId)) ||
    (typeof id === 'string' && about.alertIds.includes(id))
  );
}

export interface AccessStore {
  /** Creates the tables when missing (a gateway may start on a store no migration has run on yet). */
  ensureSchema(): Promise<void>;
  listTokens(): Promise<TokenRecord[]>;
  /** Writes the token row (a new token, or a newer version of one: its revocation). */
  saveToken(record: TokenRecord): Promise<void>;
  insertAudit(records: readonly AuditRecord[]): Promise<void>;
  /** Newest first; with `about`, only the requests whose route parameters named one of its ids. */
  listAudit(filter: { tenant: string; limit: number; beforeMs?: number; about?: AuditSubject }): Promise<AuditRecord[]>;
}
