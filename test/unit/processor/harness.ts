/**
 * A processor on the in-memory store (services/store/memory-store.ts) with a local kill switch: no Kafka broker,
 * no ClickHouse. Builders for the events and OTLP spans the tests feed it.
 */
import type { AgentEvent, TaskBoundary } from '../../../schemas/events.ts';
import type { OtlpSpan, OtlpTraceRequest } from '../../../schemas/otlp.ts';
import { DEFAULT_DETECTOR_CONFIG } from '../../../services/core/detect/index.ts';
import { createLocalKillSwitch } from '../../../services/killswitch/kill-switch.ts';
import type { KillSwitchMessage } from '../../../services/killswitch/kill-switch.ts';
import { createProcessor } from '../../../services/processor/processor.ts';
import type { Processor, ProcessorOptions } from '../../../services/processor/processor.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import type { Logger } from '../../../services/shared/logger.ts';
import type { Revocation } from '../../../schemas/events.ts';
import { createMemoryStore } from '../../../services/store/memory-store.ts';
import type { MemoryStore } from '../../../services/store/memory-store.ts';
import { benignTask, dataAccess, rng, taskCtx, toolCall } from '../detect/fixtures.ts';

export { TENANT } from '../detect/fixtures.ts';

export const WARMUP = 10;

export interface Harness {
  store: MemoryStore;
  processor: Processor;
  /** Everything the kill switch published, in order. */
  messages: KillSwitchMessage[];
  /** The log lines the processor wrote at level error and above, parsed. */
  errors: { msg: string; [key: string]: unknown }[];
}

/** A logger that keeps its lines (warn and above) instead of printing them. */
export function capturingLogger(lines: { msg: string; [key: string]: unknown }[]): Logger {
  return createLogger('warn', 'test', {
    write(line: string) {
      lines.push(JSON.parse(line) as { msg: string });
    },
  });
}

/** Starts a processor over `store` (a fresh memory store by default). */
export async function startProcessor(
  options: Partial<ProcessorOptions> & { store?: MemoryStore } = {},
): Promise<Harness> {
  const store = options.store ?? createMemoryStore();
  await store.migrate();
  const messages: KillSwitchMessage[] = [];
  const errors: Harness['errors'] = [];
  const killSwitch = options.killSwitch ?? createLocalKillSwitch();
  killSwitch.subscribe((message) => messages.push(message));
  const processor = await createProcessor({
    logger: capturingLogger(errors),
    taskIdleTimeoutMs: 600_000,
    detector: { ...DEFAULT_DETECTOR_CONFIG, warmupTasks: WARMUP },
    ...options,
    store,
    killSwitch,
  });
  return { store, processor, messages, errors };
}

export function revocationsOf(messages: readonly KillSwitchMessage[]): Revocation[] {
  return messages.flatMap((message) => (message.type === 'revocation' ? [message.revocation] : []));
}

/** The root span that ends the task of `events` just after its last event. */
export function rootOf(events: readonly AgentEvent[], endMs?: number): TaskBoundary {
  const first = events[0];
  const last = events[events.length - 1];
  if (first === undefined || last === undefined) throw new Error('empty task');
  return {
    tenant: first.tenant,
    taskId: first.taskId,
    taskType: first.taskType,
    agentId: first.agentId,
    traceId: first.traceId,
    spanId: `root-${first.taskId}`,
    startMs: first.startMs,
    endMs: endMs ?? last.endMs + 5,
    error: false,
    ends: true,
  };
}

/** Completes `count` benign summarize_ticket tasks (warm-up and then some), one batch each, from `startMs`. */
export async function warmUp(processor: Processor, startMs: number, count = WARMUP + 5): Promise<string[]> {
  const r = rng(42);
  const ids: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const task = benignTask('summarize_ticket', `warm-${String(i)}`, r, { start: startMs + i * 60_000 });
    await processor.handle({ events: task.events, boundaries: [rootOf(task.events)] });
    ids.push(`warm-${String(i)}`);
  }
  return ids;
}

/** A summarize_ticket task that reads a restricted table in bulk and posts it to a paste site. */
export function exfiltration(taskId: string, startMs: number, agentId = 'agent-rogue'): AgentEvent[] {
  const ctx = taskCtx('summarize_ticket', taskId, agentId, startMs);
  toolCall(ctx, 'search_tickets');
  dataAccess(ctx, 'crm.customers', { rows: 50_000, bytes: 40_000_000, classification: 'restricted' });
  toolCall(ctx, 'http_request', { target: 'paste.example.net', sideEffect: 'write' });
  return ctx.events;
}

// ------------------------------------------------------------------------------------------------------------
// OTLP spans, shaped as agent frameworks export them (for tests that go through classification).

let ids = 0;
const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');
export const newTraceId = (): string => hex((ids += 1), 32);
export const newSpanId = (): string => hex((ids += 1), 16);
const nanos = (ms: number): string => `${String(Math.round(ms * 1000))}000`;

export type Attrs = Record<string, string | number | boolean>;

export function span(spec: {
  traceId: string;
  spanId?: string;
  parentSpanId?: string;
  name: string;
  startMs: number;
  endMs: number;
  attributes?: Attrs;
}): OtlpSpan {
  return {
    traceId: spec.traceId,
    spanId: spec.spanId ?? newSpanId(),
    parentSpanId: spec.parentSpanId ?? '',
    name: spec.name,
    kind: 1,
    startTimeUnixNano: nanos(spec.startMs),
    endTimeUnixNano: nanos(spec.endMs),
    attributes: Object.entries(spec.attributes ?? {}).map(([key, value]) =>
      typeof value === 'string'
        ? { key, value: { stringValue: value } }
        : typeof value === 'boolean'
          ? { key, value: { boolValue: value } }
          : { key, value: { intValue: value } },
    ),
    events: [],
    links: [],
  };
}

/** A framework's tool span (GenAI conventions): no Tripline attribute. */
export function toolSpan(
  traceId: string,
  parentSpanId: string,
  tool: string,
  startMs: number,
  agent = 'refund-agent',
): OtlpSpan {
  return span({
    traceId,
    parentSpanId,
    name: `execute_tool ${tool}`,
    startMs,
    endMs: startMs + 20,
    attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': tool, 'gen_ai.agent.name': agent },
  });
}

export function request(resource: Attrs, spans: OtlpSpan[]): OtlpTraceRequest {
  return {
    resourceSpans: [
      {
        resource: {
          attributes: Object.entries(resource).map(([key, value]) => ({ key, value: { stringValue: String(value) } })),
        },
        scopeSpans: [{ spans }],
      },
    ],
  };
}
