/**
 * The approvals' store port: one current record per approval (the highest version wins) and an append-only list
 * of its steps (requested, approved, denied, expired, used) with who and when.
 * `services/store/clickhouse/approval-store.ts` implements it over ClickHouse (schemas/clickhouse/017_approvals.sql);
 * `createInMemoryApprovalStore()` is the in-memory twin (tests, a runtime given an in-memory kill-switch store).
 * Writes are idempotent by id (and version): a repeated write changes nothing.
 */
import { APPROVAL_STEPS } from '../core/approvals.ts';
import type { ApprovalStatus, ApprovalStep } from '../core/approvals.ts';

export interface ApprovalRecord {
  id: string;
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  tool: string;
  resource: string;
  /** The canonical JSON of the call's arguments (services/core/approvals.ts). */
  arguments: string;
  /** SHA-256 of tenant, task, tool, resource and arguments: what the approval is bound to. */
  bindingHash: string;
  status: ApprovalStatus;
  /** The policies that asked for a person. */
  policies: string[];
  reasons: string[];
  /** The decision (policy_decisions.id) that asked for it. */
  decisionId: string;
  requestedMs: number;
  expiresMs: number;
  decidedMs: number | null;
  /** Who approved or denied it (the token's name, and the person the request named). */
  decidedBy: string;
  decisionReason: string;
  usedMs: number | null;
  version: number;
}

export interface ApprovalStepRecord {
  tenant: string;
  approvalId: string;
  taskId: string;
  step: ApprovalStep;
  timeMs: number;
  /** Who: the agent for `requested` and `used`, the approver for `approved`/`denied`, `tripline` for `expired`. */
  actor: string;
  reason: string;
}

export interface ApprovalFilter {
  tenant: string;
  status?: ApprovalStatus;
  taskId?: string;
  limit: number;
}

export interface ApprovalStore {
  upsertApprovals(rows: readonly ApprovalRecord[]): Promise<void>;
  insertApprovalSteps(rows: readonly ApprovalStepRecord[]): Promise<void>;
  getApproval(tenant: string, id: string): Promise<ApprovalRecord | null>;
  /** Newest first. */
  listApprovals(filter: ApprovalFilter): Promise<ApprovalRecord[]>;
  /** Pending and approved approvals of every tenant, and denied ones not expired at `nowMs` (to rebuild at start). */
  listOpenApprovals(nowMs: number): Promise<ApprovalRecord[]>;
  /** A task's approval steps in time order (the task's timeline reads them). */
  listTaskApprovalSteps(tenant: string, taskId: string): Promise<ApprovalStepRecord[]>;
  close(): Promise<void>;
}

export function createInMemoryApprovalStore(): ApprovalStore {
  const approvals = new Map<string, ApprovalRecord>();
  const steps = new Map<string, ApprovalStepRecord>();
  const key = (...parts: (string | number)[]): string => parts.join('\u0000');
  return {
    upsertApprovals(rows) {
      for (const row of rows) {
        const id = key(row.tenant, row.id);
        const current = approvals.get(id);
        if (current === undefined || row.version >= current.version) approvals.set(id, structuredClone(row));
      }
      return Promise.resolve();
    },
    insertApprovalSteps(rows) {
      for (const row of rows) steps.set(key(row.tenant, row.approvalId, row.step), structuredClone(row));
      return Promise.resolve();
    },
    getApproval(tenant, id) {
      return Promise.resolve(structuredClone(approvals.get(key(tenant, id)) ?? null));
    },
    listApprovals(filter) {
      return Promise.resolve(
        [...approvals.values()]
          .filter(
            (row) =>
              row.tenant === filter.tenant &&
              (filter.status === undefined || row.status === filter.status) &&
              (filter.taskId === undefined || row.taskId === filter.taskId),
          )
          .sort((a, b) => b.requestedMs - a.requestedMs || (a.id < b.id ? 1 : -1))
          .slice(0, filter.limit)
          .map((row) => structuredClone(row)),
      );
    },
    listOpenApprovals(nowMs) {
      return Promise.resolve(
        [...approvals.values()]
          .filter(
            (row) =>
              row.status === 'pending' ||
              row.status === 'approved' ||
              (row.status === 'denied' && row.expiresMs > nowMs),
          )
          .map((row) => structuredClone(row)),
      );
    },
    listTaskApprovalSteps(tenant, taskId) {
      return Promise.resolve(
        [...steps.values()]
          .filter((row) => row.tenant === tenant && row.taskId === taskId)
          .sort((a, b) => a.timeMs - b.timeMs || APPROVAL_STEPS.indexOf(a.step) - APPROVAL_STEPS.indexOf(b.step))
          .map((row) => structuredClone(row)),
      );
    },
    close: () => Promise.resolve(),
  };
}
