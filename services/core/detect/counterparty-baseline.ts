/**
 * What a baseline learns about counterparties: which ones its benign tasks dealt with (named in a call's
 * arguments), which ones received something (named by a sink call), which ones its tasks read about (named in a
 * call's recorded result), how often a counterparty first seen in a result then reached a sink (a legitimate reply to
 * a mail's sender does this), and the amounts its sink calls carry. Kept per task type, per agent and tenant-wide
 * (the fleet baseline), like everything else in baseline.ts.
 *
 * How often a task of the type hands something to a counterparty new to it is the Good–Turing estimate over the
 * counterparties that received something and are not familiar (READ_TASKS): (those that did in exactly one task + ½)
 * / (tasks + 1), for any kind and for the kinds other than a mail address (a new organisation, account, web host,
 * handle or phone). A type whose tasks keep meeting strangers is not surprised by one more; a type that pays the same
 * billers every month is.
 *
 * Bounded: at most MAX_COUNTERPARTIES keys per record; past it a record keeps the PRUNE_TO most frequent (ties: the
 * earlier learned), so a counterparty met once long ago may count as new again. Only keyed hashes are kept.
 */
import type { TaskSummary } from './summary.ts';
import { partyKind } from './parties.ts';
import { type Dist, distFromValues, emptyDist, pushValue, refreshFence } from './stats.ts';

/** Counterparties kept per record (three records per baseline: ~40 bytes a key stored). */
export const MAX_COUNTERPARTIES = 1024;
/** What a full record is cut down to (the most frequent). */
export const PRUNE_TO = 768;
/** Window of the per-task amount distribution. */
export const AMOUNT_WINDOW = 256;
/**
 * A counterparty named in the results of at least READ_TASKS learned tasks is familiar: part of what the work reads
 * (a colleague who writes in the team's channel, a payee on the bank's list), not one injected into one document.
 */
export const READ_TASKS = 2;

export interface CounterpartyStats {
  /** Learned tasks per counterparty (`kind:key`) named in a call's arguments. */
  known: Record<string, number>;
  /** Learned tasks per counterparty named by a sink call (it received something). */
  sinks: Record<string, number>;
  /** Learned tasks per counterparty named in a call's recorded result (what the tasks read about). */
  read: Record<string, number>;
  /** Learned tasks with a sink call naming a counterparty. */
  sinkTasks: number;
  /** Learned tasks in which a counterparty first seen in a call's result reached a sink. */
  flows: number;
  /** Largest amount of a sink call per task, over the tasks that had one. */
  amounts: Dist;
  /** Derived (recomputed on learn and parse, never stored): Good–Turing rates of a new recipient per task. */
  pNewAtSink: number;
  pNewOrgAtSink: number;
  /** Derived: how many recipients those rates rest on (any kind / other than a mail address). */
  newRecipients: number;
  newOrgRecipients: number;
  /**
   * Derived: the recipients behind those rates (received something in exactly one task, not familiar), at most
   * MAX_SINGLETONS, so scoring can leave out those the tenant's other task types deal with.
   */
  singletons: string[];
}

/** Recipients kept in `singletons` (past it the rates still count them all; only the tenant adjustment is partial). */
export const MAX_SINGLETONS = 256;

function emptyRecord(): Record<string, number> {
  return Object.create(null) as Record<string, number>;
}

export function emptyCounterpartyStats(): CounterpartyStats {
  return {
    known: emptyRecord(),
    sinks: emptyRecord(),
    read: emptyRecord(),
    sinkTasks: 0,
    flows: 0,
    amounts: emptyDist(),
    pNewAtSink: 0.5,
    pNewOrgAtSink: 0.5,
    newRecipients: 0,
    newOrgRecipients: 0,
    singletons: [],
  };
}

/** Keep the PRUNE_TO most frequent keys (ties: first learned first), in their learned order. */
function prune(record: Record<string, number>): Record<string, number> {
  const keys = Object.keys(record);
  const order = new Map(keys.map((k, i) => [k, i]));
  const keep = new Set(
    [...keys]
      .sort((a, b) => (record[b] ?? 0) - (record[a] ?? 0) || (order.get(a) ?? 0) - (order.get(b) ?? 0))
      .slice(0, PRUNE_TO),
  );
  const out = emptyRecord();
  for (const k of keys) if (keep.has(k)) out[k] = record[k] ?? 0;
  return out;
}

/** Count one more task for each key; returns the record (a new object when it had to be pruned). */
function bumpAll(record: Record<string, number>, keys: readonly string[]): Record<string, number> {
  if (keys.length === 0) return record;
  let out = record;
  let size = Object.keys(out).length;
  for (const k of keys) {
    const v = out[k];
    if (v !== undefined) {
      out[k] = v + 1;
      continue;
    }
    if (size >= MAX_COUNTERPARTIES) {
      out = prune(out);
      size = PRUNE_TO;
    }
    out[k] = 1;
    size++;
  }
  return out;
}

export function refreshCounterpartyRates(stats: CounterpartyStats, tasks: number): void {
  let any = 0;
  let org = 0;
  const singletons: string[] = [];
  for (const k in stats.sinks) {
    if (stats.sinks[k] !== 1 || (stats.read[k] ?? 0) >= READ_TASKS) continue;
    any++;
    if (partyKind(k) !== 'email') org++;
    if (singletons.length < MAX_SINGLETONS) singletons.push(k);
  }
  stats.singletons = singletons;
  stats.newRecipients = any;
  stats.newOrgRecipients = org;
  stats.pNewAtSink = Math.min(1, (any + 0.5) / (tasks + 1));
  stats.pNewOrgAtSink = Math.min(1, (org + 0.5) / (tasks + 1));
}

/** Learn one task's counterparties into a baseline that has learned `tasks` tasks, this one included. */
export function learnCounterparties(stats: CounterpartyStats, summary: TaskSummary, tasks: number): void {
  const sinks = summary.sinkCounterparties ?? [];
  if (sinks.length > 0) stats.sinkTasks++;
  if ((summary.flowCounterparties ?? []).length > 0) stats.flows++;
  stats.known = bumpAll(stats.known, summary.counterparties ?? []);
  stats.sinks = bumpAll(stats.sinks, sinks);
  stats.read = bumpAll(stats.read, summary.readCounterparties ?? []);
  const amount = summary.maxAmount;
  if (amount !== undefined && Number.isFinite(amount) && amount > 0) {
    pushValue(stats.amounts, amount, AMOUNT_WINDOW);
    refreshFence(stats.amounts);
  }
  refreshCounterpartyRates(stats, tasks);
}

export function counterpartyWire(stats: CounterpartyStats): Record<string, unknown> {
  return {
    known: stats.known,
    sinks: stats.sinks,
    read: stats.read,
    sinkTasks: stats.sinkTasks,
    flows: stats.flows,
    amounts: stats.amounts.values,
  };
}

/** Parsers the codec hands in (they throw naming the field). */
export interface FieldParsers {
  isObject(v: unknown): v is Record<string, unknown>;
  count(v: unknown, path: string): number;
  counts(v: unknown, path: string): Record<string, number>;
  values(v: unknown, path: string): number[];
  fail(path: string, what: string): never;
}

/** Parse the stored counterparty record; a baseline stored before counterparties existed has none (empty). */
export function parseCounterparties(raw: unknown, tasks: number, p: FieldParsers): CounterpartyStats {
  const stats = emptyCounterpartyStats();
  if (raw !== undefined) {
    if (!p.isObject(raw)) p.fail('counterparties', 'must be an object');
    const record = (name: 'known' | 'sinks' | 'read'): Record<string, number> => {
      const r = p.counts(raw[name], `counterparties.${name}`);
      if (Object.keys(r).length > MAX_COUNTERPARTIES)
        p.fail(`counterparties.${name}`, `must have at most ${MAX_COUNTERPARTIES} keys`);
      return r;
    };
    stats.known = record('known');
    stats.sinks = record('sinks');
    stats.read = record('read');
    stats.sinkTasks = p.count(raw.sinkTasks, 'counterparties.sinkTasks');
    stats.flows = p.count(raw.flows, 'counterparties.flows');
    stats.amounts = distFromValues(p.values(raw.amounts, 'counterparties.amounts'), AMOUNT_WINDOW);
  }
  refreshCounterpartyRates(stats, tasks);
  return stats;
}
