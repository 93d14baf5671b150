/**
 * The `events.tool_facts` column (schemas/clickhouse/013_event_tool_facts.sql): what classification read from a
 * tool call's arguments and result, and `sameCallOf` (the processor's mark on another record of a call already
 * counted), as JSON text, and back. A row that does not parse, or a field of the wrong
 * shape, is left out (the event still stands).
 */
import type { Counterparty, CounterpartyKind, ToolCallDetail } from '../../../schemas/events.ts';
import { knownCues } from '../../core/instruction-cues.ts';

type ToolFacts = Pick<
  ToolCallDetail,
  | 'counterparties'
  | 'resultCounterparties'
  | 'resultRecorded'
  | 'resultInstructions'
  | 'amount'
  | 'argumentKeys'
  | 'argumentsHash'
  | 'resultHash'
  | 'sameCallOf'
>;

const KINDS: ReadonlySet<string> = new Set<CounterpartyKind>([
  'email',
  'domain',
  'account',
  'url_host',
  'handle',
  'phone',
]);

export function toolFactsText(tool: ToolCallDetail | undefined): string {
  if (tool === undefined) return '';
  const facts: ToolFacts = {};
  if (tool.counterparties !== undefined) facts.counterparties = tool.counterparties;
  if (tool.resultCounterparties !== undefined) facts.resultCounterparties = tool.resultCounterparties;
  if (tool.resultRecorded !== undefined) facts.resultRecorded = tool.resultRecorded;
  if (tool.resultInstructions !== undefined) facts.resultInstructions = tool.resultInstructions;
  if (tool.amount !== undefined) facts.amount = tool.amount;
  if (tool.argumentKeys !== undefined) facts.argumentKeys = tool.argumentKeys;
  if (tool.argumentsHash !== undefined) facts.argumentsHash = tool.argumentsHash;
  if (tool.resultHash !== undefined) facts.resultHash = tool.resultHash;
  if (tool.sameCallOf !== undefined) facts.sameCallOf = tool.sameCallOf;
  return Object.keys(facts).length === 0 ? '' : JSON.stringify(facts);
}

function counterpartiesOf(value: unknown): Counterparty[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const list: Counterparty[] = [];
  for (const item of value as unknown[]) {
    const { kind, key } = (item ?? {}) as Partial<Record<string, unknown>>;
    if (typeof kind === 'string' && KINDS.has(kind) && typeof key === 'string')
      list.push({ kind: kind as CounterpartyKind, key });
  }
  return list;
}

export function toolFactsOfRow(text: string | undefined): ToolFacts {
  if (text === undefined || text === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null) return {};
  const stored = parsed as Partial<Record<string, unknown>>;
  const facts: ToolFacts = {};
  const counterparties = counterpartiesOf(stored.counterparties);
  if (counterparties !== undefined) facts.counterparties = counterparties;
  const resultCounterparties = counterpartiesOf(stored.resultCounterparties);
  if (resultCounterparties !== undefined) facts.resultCounterparties = resultCounterparties;
  if (typeof stored.resultRecorded === 'boolean') facts.resultRecorded = stored.resultRecorded;
  const cues = knownCues(stored.resultInstructions);
  if (cues !== undefined) facts.resultInstructions = cues;
  if (typeof stored.amount === 'number') facts.amount = stored.amount;
  if (Array.isArray(stored.argumentKeys))
    facts.argumentKeys = (stored.argumentKeys as unknown[]).filter((key): key is string => typeof key === 'string');
  if (typeof stored.argumentsHash === 'string') facts.argumentsHash = stored.argumentsHash;
  if (typeof stored.resultHash === 'string') facts.resultHash = stored.resultHash;
  if (typeof stored.sameCallOf === 'string') facts.sameCallOf = stored.sameCallOf;
  return facts;
}
