/** An AccessStore in memory: for an API embedded in another program's process, and for tests. */
import { auditNames } from './access-store.ts';
import type { AccessStore, AuditRecord, TokenRecord } from './access-store.ts';

export function createMemoryAccessStore(): AccessStore & { audit: AuditRecord[] } {
  const tokens = new Map<string, TokenRecord>();
  const audit: AuditRecord[] = [];
  return {
    audit,
    ensureSchema: () => Promise.resolve(),
    listTokens: () => Promise.resolve([...tokens.values()]),
    saveToken(record) {
      tokens.set(record.id, { ...record });
      return Promise.resolve();
    },
    insertAudit(records) {
      audit.push(...records);
      return Promise.resolve();
    },
    listAudit(filter) {
      return Promise.resolve(
        audit
          .filter(
            (row) =>
              row.tenant === filter.tenant &&
              (filter.beforeMs === undefined || row.timeMs < filter.beforeMs) &&
              (filter.about === undefined || auditNames(row.target, filter.about)),
          )
          .sort((a, b) => b.timeMs - a.timeMs)
          .slice(0, filter.limit),
      );
    },
  };
}
