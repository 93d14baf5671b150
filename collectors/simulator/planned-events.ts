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
