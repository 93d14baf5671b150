/**
 * Approval points, the pure part: what an approval is bound to, and the states it goes through.
 *
 * A call a policy marks as needing a person (services/killswitch/policy.ts, `@approval("required")`) is bound
 * to a hash of the exact call: tenant, task, tool, resource and the canonical JSON of its arguments (keys
 * sorted at every depth, no whitespace). The same call made again hashes the same; a changed argument hashes
 * differently and needs an approval of its own.
 *
 * States (`transition`):
 *
 *   pending ──approve──▶ approved ──use──▶ used        (the approved call ran, once)
 *      │                    │
 *      ├──deny──▶ denied    └──expire──▶ expired        (not used before it expired)
 *      └──expire──▶ expired
 *
 * An approval allows its call once: the check that lets it through marks it used, and the same call after
 * that needs a new approval. Every state but pending and approved is final.
 */
import { sha256Hex } from './sha256.ts';

export const APPROVAL_STATUSES = ['pending', 'approved', 'denied', 'expired', 'used'] as const;
export type ApprovalStatus = (typeof APPROVAL_STATUSES)[number];

/** The steps of an approval, as they are recorded (`requested` creates it; the others are transitions). */
export const APPROVAL_STEPS = ['requested', 'approved', 'denied', 'expired', 'used'] as const;
export type ApprovalStep = (typeof APPROVAL_STEPS)[number];

export type ApprovalEvent = 'approve' | 'deny' | 'expire' | 'use';

/** Deepest nesting and most values of arguments that are bound (a hostile call cannot make hashing costly). */
export const MAX_ARGUMENT_DEPTH = 8;
export const MAX_ARGUMENT_VALUES = 1000;

export interface ApprovalBinding {
  tenant: string;
  taskId: string;
  tool: string;
  resource: string;
  /** The call's arguments (JSON values). */
  arguments: Readonly<Record<string, unknown>>;
}

/** Arguments that cannot be bound (too deep, too many values, not JSON). */
export class ArgumentsNotBindable extends Error {
  override readonly name = 'ArgumentsNotBindable';
}

/**
 * The canonical JSON text of a value: object keys sorted (by UTF-16 code units) at every depth, no whitespace,
 * numbers as JSON writes them (`1` and `1.0` are the same number). `undefined` members are left out, as
 * JSON.stringify does; a value JSON cannot represent (a non-finite number, a function, a bigint) throws.
 */
export function canonicalJson(value: unknown): string {
  let budget = MAX_ARGUMENT_VALUES;
  const write = (item: unknown, depth: number): string => {
    budget -= 1;
    if (budget < 0) throw new ArgumentsNotBindable(`arguments hold more than ${MAX_ARGUMENT_VALUES} values`);
    if (item === null) return 'null';
    switch (typeof item) {
      case 'string':
      case 'boolean':
        return JSON.stringify(item);
      case 'number':
        if (!Number.isFinite(item)) throw new ArgumentsNotBindable('arguments hold a number JSON cannot represent');
        return JSON.stringify(item);
      case 'object': {
        if (depth >= MAX_ARGUMENT_DEPTH)
          throw new ArgumentsNotBindable(`arguments are nested deeper than ${MAX_ARGUMENT_DEPTH}`);
        if (Array.isArray(item)) return `[${item.map((element) => write(element ?? null, depth + 1)).join(',')}]`;
        const entries = Object.entries(item as Record<string, unknown>)
          .filter(([, member]) => member !== undefined)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        return `{${entries.map(([key, member]) => `${JSON.stringify(key)}:${write(member, depth + 1)}`).join(',')}}`;
      }
      default:
        throw new ArgumentsNotBindable(`arguments hold a ${typeof item}, which JSON cannot represent`);
    }
  };
  return write(value, 0);
}

/** The hash an approval is bound to: SHA-256 (hex) of the canonical JSON of the whole binding. */
export function bindingHash(binding: ApprovalBinding): string {
  return sha256Hex(
    canonicalJson({
      tenant: binding.tenant,
      task_id: binding.taskId,
      tool: binding.tool,
      resource: binding.resource,
      arguments: binding.arguments,
    }),
  );
}

/**
 * The arguments a policy sees (`context.arguments` of call_tool): the top-level members that are numbers
 * (rounded to whole numbers: Cedar has no floats), strings and booleans. Nested values are bound by the hash
 * but not given to the policy.
 */
export function policyArguments(args: Readonly<Record<string, unknown>>): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(args)) {
    if (typeof value === 'number' && Number.isFinite(value)) out[key] = Math.round(value);
    else if (typeof value === 'string' || typeof value === 'boolean') out[key] = value;
  }
  return out;
}

/** What an approval is, as far as its state goes. */
export interface ApprovalState {
  status: ApprovalStatus;
  expiresMs: number;
}

export type TransitionResult =
  { ok: true; status: ApprovalStatus; step: ApprovalStep } | { ok: false; status: ApprovalStatus; reason: string };

const NEXT: Record<ApprovalEvent, { from: readonly ApprovalStatus[]; to: ApprovalStatus; step: ApprovalStep }> = {
  approve: { from: ['pending'], to: 'approved', step: 'approved' },
  deny: { from: ['pending'], to: 'denied', step: 'denied' },
  use: { from: ['approved'], to: 'used', step: 'used' },
  expire: { from: ['pending', 'approved'], to: 'expired', step: 'expired' },
};

/** The state an approval is in at `nowMs`: a pending or approved one past its expiry is expired. */
export function effectiveStatus(state: ApprovalState, nowMs: number): ApprovalStatus {
  return isOpen(state.status) && nowMs >= state.expiresMs ? 'expired' : state.status;
}

/** Pending or approved: not final yet. */
export function isOpen(status: ApprovalStatus): boolean {
  return status === 'pending' || status === 'approved';
}

/**
 * The state after `event` at `nowMs`. An approval past its expiry cannot be approved, denied or used (its
 * state is `expired`, and the answer says so); `expire` before the expiry is refused.
 */
export function transition(state: ApprovalState, event: ApprovalEvent, nowMs: number): TransitionResult {
  const current = effectiveStatus(state, nowMs);
  if (event === 'expire') {
    if (current === 'expired' && state.status !== 'expired') return { ok: true, status: 'expired', step: 'expired' };
    return { ok: false, status: current, reason: `the approval is ${current}, not past its expiry while open` };
  }
  const rule = NEXT[event];
  if (!rule.from.includes(current))
    return {
      ok: false,
      status: current,
      reason: `an approval that is ${current} cannot be ${event === 'use' ? 'used' : `${event}d`}`,
    };
  return { ok: true, status: rule.to, step: rule.step };
}
