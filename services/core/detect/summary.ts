/**
 * The JSON-serializable summary of a completed task: what `learn` needs, nothing more.
 * The learner rebuilds baselines from these (or from events replayed through `observe`).
 */
import type { TaskState } from './state.ts';
import { CLASSIFICATION_NAMES } from './signals.ts';

export interface ResourceSummary {
  rows: number;
  bytes: number;
  accesses: number;
}

export interface TaskSummary {
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  startMs: number;
  /** When the task ended (or its last event, if it was never marked ended). */
  endMs: number;
  durationMs: number;
  events: number;
  toolCalls: number;
  dataAccesses: number;
  privilegeChanges: number;
  errors: number;
  /** Calls per tool. */
  tools: Record<string, number>;
  /** Tool-to-tool transition counts, `from → to → count`; `^` is the task start. */
  transitions: Record<string, Record<string, number>>;
  /** Per resource key (normalised, see `resourceKey`). */
  resources: Record<string, ResourceSummary>;
  rows: number;
  bytes: number;
  /** Rows read from confidential or restricted data. */
  sensitiveRows: number;
  maxRowsPerAccess: number;
  maxBytesPerAccess: number;
  /** Classification levels the task's data accesses reached. */
  classifications: string[];
  hosts: string[];
  egressHosts: string[];
  secretRead: boolean;
  privilegeActions: Record<string, number>;
  /** Scopes the task held after a privilege change that it did not hold at its start. */
  scopesGained: string[];
  unapprovedChanges: number;
  maxEventsPerMinute: number;
  maxToolCallsPerMinute: number;
  maxErrorsPerMinute: number;
  /**
   * Counterparties (`kind:key`) the task's calls named in their arguments; those that received something through a
   * sink call; those of them that first appeared in a call's result; those named in a call's result. Absent when
   * the task met none.
   */
  counterparties?: string[];
  sinkCounterparties?: string[];
  flowCounterparties?: string[];
  readCounterparties?: string[];
  /** The largest amount a sink call of the task carried (absent: none). */
  maxAmount?: number;
  /** The highest verdict score the task got (callers learn only from tasks they consider benign). */
  maxScore: number;
  /**
   * Set when an operator marked the task's alert a false positive and it is learned as normal anyway;
   * the baseline counts these (`falsePositivesLearned`) so the feedback is visible.
   */
  markedFalsePositive?: boolean;
}

function record<V>(): Record<string, V> {
  return Object.create(null) as Record<string, V>;
}

export function summarize(state: TaskState): TaskSummary {
  const tools = record<number>();
  for (const [k, v] of state.tools) tools[k] = v;
  const transitions = record<Record<string, number>>();
  for (const [k, v] of state.transitions) {
    const cut = k.indexOf('\u0001');
    const from = k.slice(0, cut);
    const to = k.slice(cut + 1);
    const row = (transitions[from] ??= record<number>());
    row[to] = (row[to] ?? 0) + v;
  }
  const resources = record<ResourceSummary>();
  for (const [k, v] of state.resources) resources[k] = { rows: v.rows, bytes: v.bytes, accesses: v.accesses };
  const privilegeActions = record<number>();
  for (const [k, v] of state.privilegeActions) privilegeActions[k] = v;
  const classifications: string[] = [];
  for (let r = 0; r < CLASSIFICATION_NAMES.length; r++) {
    const name = CLASSIFICATION_NAMES[r];
    if (name !== undefined && (state.classBits & (1 << r)) !== 0) classifications.push(name);
  }
  const endMs = state.endedMs ?? state.lastEventMs;
  const summary: TaskSummary = {
    tenant: state.tenant,
    taskId: state.taskId,
    taskType: state.taskType,
    agentId: state.agentId,
    startMs: state.startedMs,
    endMs,
    durationMs: Math.max(0, endMs - state.startedMs),
    events: state.events,
    toolCalls: state.counts.tool_call,
    dataAccesses: state.counts.data_access,
    privilegeChanges: state.counts.privilege_change,
    errors: state.errors,
    tools,
    transitions,
    resources,
    rows: state.rows,
    bytes: state.bytes,
    sensitiveRows: state.sensitiveRows,
    maxRowsPerAccess: state.maxRowsPerAccess,
    maxBytesPerAccess: state.maxBytesPerAccess,
    classifications,
    hosts: [...state.hosts],
    egressHosts: [...state.egressHosts],
    secretRead: state.secretReadMs !== null,
    privilegeActions,
    scopesGained: [...state.gainedScopes],
    unapprovedChanges: state.unapprovedChanges,
    maxEventsPerMinute: state.maxEventsPerMinute,
    maxToolCallsPerMinute: state.maxToolCallsPerMinute,
    maxErrorsPerMinute: state.maxErrorsPerMinute,
    maxScore: state.maxScore,
  };
  addParties(summary, state);
  return summary;
}

function addParties(summary: TaskSummary, state: TaskState): void {
  const args: string[] = [];
  const sinks: string[] = [];
  const flows: string[] = [];
  const read: string[] = [];
  for (const [k, use] of state.parties) {
    if (use.inArgs) args.push(k);
    if (use.atSink) sinks.push(k);
    if (use.flowed) flows.push(k);
    if (use.inResult) read.push(k);
  }
  if (args.length > 0) summary.counterparties = args;
  if (sinks.length > 0) summary.sinkCounterparties = sinks;
  if (flows.length > 0) summary.flowCounterparties = flows;
  if (read.length > 0) summary.readCounterparties = read;
  if (state.maxAmount > 0) summary.maxAmount = state.maxAmount;
}
