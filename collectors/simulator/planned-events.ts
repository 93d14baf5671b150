/**
 * The vocabulary of the SYNTHETIC workloads (see ./scenarios.ts): the planned events of a task, the seeded
 * PRNG, and the small builders the benign task types and the attack patterns compose their events from.
 */

import { ATTR } from '../../schemas/conventions.ts';

/**
 * The span attributes a tool call's recorded arguments and result go in (OpenTelemetry GenAI conventions;
 * `gen_ai.tool.call.result` is opt-in there: frameworks that do not record results leave it out).
 */
export const TOOL_CALL_ARGUMENTS_ATTR = ATTR.toolCallArguments;
export const TOOL_CALL_RESULT_ATTR = ATTR.toolCallResult;

/** The attributes recording a planned tool call's arguments and result (none when the plan has neither). */
export function recordedCall(event: { arguments?: string; result?: string }): Record<string, string> {
  return {
    ...(event.arguments === undefined ? {} : { [TOOL_CALL_ARGUMENTS_ATTR]: event.arguments }),
    ...(event.result === undefined ? {} : { [TOOL_CALL_RESULT_ATTR]: event.result }),
  };
}

export interface PlannedToolCall {
  kind: 'tool_call';
  tool: string;
  sideEffect?: 'read' | 'write' | 'destructive';
  target?: string;
  error?: boolean;
  /** The call's arguments as JSON text, as frameworks record them (`gen_ai.tool.call.arguments`). */
  arguments?: string;
  /** The call's result as text (`gen_ai.tool.call.result`); absent when the framework does not record results. */
  result?: string;
}
export interface PlannedDataAccess {
  kind: 'data_access';
  system?: string;
  namespace?: string;
  collection?: string;
  url?: string;
  file?: string;
  operation?: string;
  rows?: number;
  bytes?: number;
  classification?: 'public' | 'internal' | 'confidential' | 'restricted';
  serverAddress?: string;
  error?: boolean;
}
export interface PlannedPrivilegeChange {
  kind: 'privilege_change';
  action: string;
  scopesBefore: string[];
  scopesAfter: string[];
  resource?: string;
  approved?: boolean;
  error?: boolean;
}
/**
 * A model call (a GenAI `chat` span with its usage): not one of the three event kinds, so it rides beside a task's
 * events (`TaskPlan.modelCalls`), made right after the event at `afterEvent` (-1: before the first).
 */
export interface PlannedModelCall {
  afterEvent: number;
  model: string;
  inputTokens: number;
  outputTokens: number;
}

/** Models the benign simulated agents call, cheapest most often. */
const BENIGN_MODELS = ['gpt-4o-mini', 'gpt-4o-mini', 'gpt-4o-mini', 'gpt-4o', 'claude-3-5-haiku'] as const;

/**
 * A benign task's model calls: one before its first event and about one per two events after, each a few thousand
 * tokens (heavy tail): varied spend, a few cents a task. From its own PRNG (seeded by `seed`), so the events of a
 * scenario stay what they were.
 */
export function benignModelCalls(seed: number, events: number): PlannedModelCall[] {
  const r = rng(seed);
  const calls: PlannedModelCall[] = [];
  for (let afterEvent = -1; afterEvent < events; afterEvent += 1) {
    if (afterEvent >= 0 && r() < 0.5) continue;
    calls.push({
      afterEvent,
      model: pick(r, BENIGN_MODELS),
      inputTokens: heavy(r, 3000, 1.2),
      outputTokens: heavy(r, 400, 1.2),
    });
  }
  return calls;
}

/**
 * A runaway model loop (attack `runaway_spend`): after the event at `afterEvent`, the agent calls gpt-4o again and
 * again with a context that keeps growing, 160 to 240 times: tens of dollars in one task.
 */
export function runawayModelCalls(r: Rand, afterEvent: number): PlannedModelCall[] {
  const calls: PlannedModelCall[] = [];
  const count = int(r, 160, 240);
  for (let i = 0; i < count; i += 1)
    calls.push({ afterEvent, model: 'gpt-4o', inputTokens: 40_000 + i * 600, outputTokens: int(r, 300, 1500) });
  return calls;
}

export type PlannedEvent = (PlannedToolCall | PlannedDataAccess | PlannedPrivilegeChange) & {
  /** Simulated time since the previous event, ms. */
  gapMs: number;
  durationMs: number;
};

/** A deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Rand = () => number;
export const int = (r: Rand, min: number, max: number): number => min + Math.floor(r() * (max - min + 1));
export const pick = <T>(r: Rand, items: readonly T[]): T => items[Math.floor(r() * items.length)] as T;
/** Log-normal-ish heavy tail: mostly near `median`, sometimes several times it. */
export const heavy = (r: Rand, median: number, spread: number): number =>
  Math.max(1, Math.round(median * Math.exp((r() + r() + r() - 1.5) * spread)));

const ev = <T extends PlannedEvent>(
  event: Omit<T, 'gapMs' | 'durationMs'> & Partial<Pick<T, 'gapMs' | 'durationMs'>>,
  r: Rand,
): PlannedEvent => ({ gapMs: int(r, 200, 3000), durationMs: int(r, 20, 800), ...event }) as PlannedEvent;

export const tool = (
  r: Rand,
  name: string,
  sideEffect: PlannedToolCall['sideEffect'] = 'read',
  extra: Partial<PlannedToolCall> = {},
): PlannedEvent =>
  ev<PlannedToolCall & { gapMs: number; durationMs: number }>(
    { kind: 'tool_call', tool: name, sideEffect, ...extra },
    r,
  );

export const data = (r: Rand, fields: Omit<PlannedDataAccess, 'kind'>): PlannedEvent =>
  ev<PlannedDataAccess & { gapMs: number; durationMs: number }>(
    { kind: 'data_access', system: 'postgresql', operation: 'SELECT', ...fields },
    r,
  );

export const priv = (r: Rand, fields: Omit<PlannedPrivilegeChange, 'kind'>): PlannedEvent =>
  ev<PlannedPrivilegeChange & { gapMs: number; durationMs: number }>({ kind: 'privilege_change', ...fields }, r);
