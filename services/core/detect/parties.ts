/**
 * Counterparties within one task: who the task's tool calls dealt with (mail addresses and their domains,
 * accounts, web hosts, handles, phone numbers, as the classifier's keyed hashes), where each was first met — in the
 * arguments of a call (the request, the agent's own plan) or in the recorded result of a call (content the agent
 * read) — and whether it then received something through a sink call (sent, paid, shared, posted, invited).
 *
 * Bounded: at most MAX_TASK_PARTIES counterparties per task (more are not tracked) and MAX_PARTIES_PER_CALL read per
 * call and list; a counterparty with an unknown kind or a key that is not a short string is ignored, never thrown on.
 */
import type { Counterparty, CounterpartyKind, InstructionCue, ToolCallDetail } from '../../../schemas/events.ts';
import { knownCues } from '../instruction-cues.ts';
import { sinkKind } from './signals.ts';

/** Counterparties tracked per task (first met first); later ones are not tracked. */
export const MAX_TASK_PARTIES = 256;
/** Entries read from one call's `counterparties` or `resultCounterparties`. */
export const MAX_PARTIES_PER_CALL = 64;
/** Longest tool target kept to name where a counterparty came from. */
const MAX_SOURCE_TARGET = 80;

const KINDS: ReadonlySet<string> = new Set<CounterpartyKind>([
  'email',
  'domain',
  'account',
  'url_host',
  'handle',
  'phone',
]);

export interface PartyUse {
  kind: CounterpartyKind;
  /** First met in a call's recorded result, before any call's arguments named it. */
  fromResult: boolean;
  /** The call that first named it: tool name, and its target in parentheses when known. */
  source: string;
  /** Named in the arguments of some call (what the task dealt with). */
  inArgs: boolean;
  /** Named in some call's recorded result (what the task read about). */
  inResult: boolean;
  /** Named in the arguments of a sink call. */
  atSink: boolean;
  /** Reached a sink call after first appearing in a result (a source → sink flow). */
  flowed: boolean;
  /** The first result naming it that carried instruction cues (instruction-cues.ts), and those cues. */
  instructed?: { source: string; cues: InstructionCue[] };
}

/** `kind:key`, the identity of a counterparty in task states and baselines. */
export function partyKey(c: Counterparty): string {
  return `${c.kind}:${c.key}`;
}

/** The kind of a `kind:key`. */
export function partyKind(key: string): string {
  const cut = key.indexOf(':');
  return cut < 0 ? '' : key.slice(0, cut);
}

/** The well-formed entries of a counterparty list from an event (at most MAX_PARTIES_PER_CALL). */
export function validParties(list: unknown): Counterparty[] {
  if (!Array.isArray(list)) return [];
  const out: Counterparty[] = [];
  for (let i = 0; i < list.length && i < MAX_PARTIES_PER_CALL; i++) {
    const c: unknown = list[i];
    if (typeof c !== 'object' || c === null) continue;
    const { kind, key } = c as { kind?: unknown; key?: unknown };
    if (typeof kind !== 'string' || !KINDS.has(kind)) continue;
    if (typeof key !== 'string' || key === '' || key.length > 64) continue;
    out.push({ kind: kind as CounterpartyKind, key });
  }
  return out;
}

/** A finite positive amount from an event, else undefined. */
export function validAmount(amount: unknown): number | undefined {
  return typeof amount === 'number' && Number.isFinite(amount) && amount > 0 ? amount : undefined;
}

function sourceOf(tool: ToolCallDetail): string {
  const target = typeof tool.target === 'string' && tool.target !== '' ? tool.target : undefined;
  return target === undefined ? tool.name : `${tool.name}(${target.slice(0, MAX_SOURCE_TARGET)})`;
}

/** What `observeParties` updates on a task state. */
export interface PartyState {
  parties: Map<string, PartyUse>;
  /** Largest amount-like argument of a sink call in the task (0 none). */
  maxAmount: number;
  /** Tool calls whose result was recorded / was not (or said nothing about it). */
  resultsRecorded: number;
  resultsUnrecorded: number;
}

/**
 * Fold one tool call's counterparties into the task: its arguments first (a party the call itself names is the
 * call's, not its result's), then its result.
 */
export function observeParties(state: PartyState, tool: ToolCallDetail): void {
  countResult(state, tool);
  observePartyFacts(state, tool);
}

/** One more tool call whose result was recorded, or not. */
export function countResult(state: PartyState, tool: ToolCallDetail): void {
  if (tool.resultRecorded === true) state.resultsRecorded++;
  else state.resultsUnrecorded++;
}

/**
 * A call's counterparties and amount (what `observeParties` folds in besides counting the call), also for another
 * record of a call already counted (same-call.ts).
 */
export function observePartyFacts(state: PartyState, tool: ToolCallDetail): void {
  // Most tool calls name nobody: no name parsing for them (this runs on every tool call).
  if (tool.counterparties === undefined && tool.resultCounterparties === undefined && tool.amount === undefined) return;
  const sink = sinkKind(tool) !== undefined;
  const source = sourceOf(tool);
  const parties = state.parties;
  for (const c of validParties(tool.counterparties)) {
    const k = partyKey(c);
    let use = parties.get(k);
    if (use === undefined) {
      if (parties.size >= MAX_TASK_PARTIES) continue;
      use = { kind: c.kind, fromResult: false, source, inArgs: false, inResult: false, atSink: false, flowed: false };
      parties.set(k, use);
    }
    use.inArgs = true;
    if (sink) {
      use.atSink = true;
      if (use.fromResult) use.flowed = true;
    }
  }
  const cues = tool.resultCounterparties === undefined ? undefined : knownCues(tool.resultInstructions);
  for (const c of validParties(tool.resultCounterparties)) {
    const k = partyKey(c);
    let use = parties.get(k);
    if (use !== undefined) use.inResult = true;
    else if (parties.size < MAX_TASK_PARTIES) {
      use = { kind: c.kind, fromResult: true, source, inArgs: false, inResult: true, atSink: false, flowed: false };
      parties.set(k, use);
    }
    if (use !== undefined && cues !== undefined && use.instructed === undefined) use.instructed = { source, cues };
  }
  const amount = validAmount(tool.amount);
  if (sink && amount !== undefined && amount > state.maxAmount) state.maxAmount = amount;
}
