/**
 * Turns the scenario generator's task plans into the events Tripline scores, without running agents: each
 * planned event becomes the OTLP span the agent helpers (`kits/typescript/src/index.ts`) would export for it (same
 * span names, same attributes, same task span), and the spans go through the real classifier
 * (`classifyRequest`), so the events are those the pipeline would see. Timing follows the simulated agents
 * (`collectors/simulator/run-plan.ts`): one clock per agent; each event waits its planned gap and lasts its
 * planned duration, both times `timeScale` (rounded to whole milliseconds, as the agents sleep); the task span
 * ends with its last event; events sent after the task (credentials used after the task ended) start 1.5 s
 * after its end (not scaled).
 *
 * `timeScale` 1 (the default) is the scenario's own time; the simulated agents run at 1/100 so a run takes
 * seconds, not hours. Deterministic: ids come from the task id and the event's position, times from `startMs`.
 * The data is SYNTHETIC (see collectors/simulator/scenarios.ts).
 */
import { recordedCall } from '../../collectors/simulator/planned-events.ts';
import type { PlannedEvent, PlannedModelCall, TaskLabel, TaskPlan } from '../../collectors/simulator/scenarios.ts';
import { ATTR } from '../../schemas/conventions.ts';
import type { AgentEvent, ModelUsage, TaskBoundary } from '../../schemas/events.ts';
import type { OtlpAnyValue, OtlpKeyValue, OtlpSpan, OtlpTraceRequest } from '../../schemas/otlp.ts';
import { classifyRequest } from '../core/classify.ts';
import { stableId } from '../shared/ids.ts';

/** One labelled task as the detector sees it. */
export interface LabelledTask {
  taskId: string;
  taskType: string;
  agentId: string;
  label: TaskLabel;
  /** The task's events while it ran, in time order. */
  events: AgentEvent[];
  /** The task span's end (the boundary the processor completes the task on). */
  boundary: TaskBoundary;
  /** Events with the task's id after the task ended (attack `post_task_credentials`). */
  afterEnd: AgentEvent[];
  /** The task's model calls as classified, each after the event at `afterEvent` of `events` (-1: before the first). */
  usages?: { afterEvent: number; usage: ModelUsage }[];
  /**
   * Index in `[...events, ...afterEnd]` of the first malicious event; undefined for benign tasks.
   * For `post_task_credentials` it is the first event after the end.
   */
  attackStart: number | undefined;
}

export interface PlanEventsOptions {
  tenant: string;
  /** The first task of every agent starts here (epoch ms). */
  startMs: number;
  /** Real time per planned time. @default 1 */
  timeScale?: number;
}

/** Pause between an agent's task end and its events after the end, not scaled (run-plan.ts). */
export const AFTER_END_PAUSE_MS = 1500;

export function planEvents(plans: readonly TaskPlan[], options: PlanEventsOptions): LabelledTask[] {
  const clocks = new Map<string, number>();
  return plans.map((plan) => {
    const clock = { now: clocks.get(plan.agentId) ?? options.startMs };
    const task = planTask(plan, clock, options.tenant, options.timeScale ?? 1);
    clocks.set(plan.agentId, clock.now);
    return task;
  });
}

function planTask(plan: TaskPlan, clock: { now: number }, tenant: string, scale: number): LabelledTask {
  const traceId = stableId('trace', plan.taskId).slice(0, 32);
  const rootSpanId = stableId('span', plan.taskId, 'root').slice(0, 16);
  const taskStart = clock.now;
  const spans: OtlpSpan[] = [];
  const scaled = (plannedMs: number): number => Math.max(0, Math.round(plannedMs * scale));
  const step = (event: PlannedEvent): { start: number; end: number } => {
    clock.now += scaled(event.gapMs);
    const timing = { start: clock.now, end: clock.now + scaled(event.durationMs) };
    clock.now = timing.end;
    return timing;
  };
  // Model calls take no planned time: the events keep the timing they had without them.
  const calls = [...(plan.modelCalls ?? [])].sort((a, b) => a.afterEvent - b.afterEvent);
  const callsAfter = (index: number, atMs: number): void => {
    calls.forEach((call, n) => {
      if (call.afterEvent === index)
        spans.push(
          modelSpan(plan, call, atMs, traceId, stableId('span', plan.taskId, 'model', n).slice(0, 16), rootSpanId),
        );
    });
  };
  callsAfter(-1, taskStart);
  plan.events.forEach((event, index) => {
    const timing = step(event);
    spans.push(eventSpan(plan, event, timing, traceId, stableId('span', plan.taskId, index).slice(0, 16), rootSpanId));
    callsAfter(index, timing.end);
  });
  const taskEnd = clock.now;
  spans.push({
    traceId,
    spanId: rootSpanId,
    parentSpanId: '',
    name: `task ${plan.taskType}`,
    kind: 1,
    startTimeUnixNano: nanos(taskStart),
    endTimeUnixNano: nanos(taskEnd),
    attributes: attrs({
      [ATTR.taskId]: plan.taskId,
      [ATTR.taskType]: plan.taskType,
      [ATTR.taskRoot]: true,
      [ATTR.agentId]: plan.agentId,
    }),
    events: [],
    links: [],
    status: { code: 1 },
  });
  clock.now = taskEnd;
  const late: OtlpSpan[] = [];
  if (plan.afterEnd.length > 0) {
    clock.now = taskEnd + AFTER_END_PAUSE_MS;
    const lateTrace = stableId('trace', plan.taskId, 'after-end').slice(0, 32);
    plan.afterEnd.forEach((event, index) => {
      const timing = step(event);
      late.push(
        eventSpan(plan, event, timing, lateTrace, stableId('span', plan.taskId, 'after-end', index).slice(0, 16), ''),
      );
    });
  }
  const during = classifyRequest(request(plan.agentId, spans), tenant);
  const after = classifyRequest(request(plan.agentId, late), tenant);
  // The root's end (a model-call span that names the task also declares it: a boundary that ends nothing).
  const boundary = during.boundaries.find((candidate) => candidate.ends);
  if (
    boundary === undefined ||
    during.events.length !== plan.events.length ||
    after.events.length !== plan.afterEnd.length
  ) {
    throw new Error(
      `task ${plan.taskId}: the classifier did not see the planned events (${during.events.length}/${plan.events.length} during, ${after.events.length}/${plan.afterEnd.length} after)`,
    );
  }
  const attackStart =
    plan.label === 'benign'
      ? undefined
      : (plan.attackStartIndex ?? (plan.afterEnd.length > 0 ? plan.events.length : undefined));
  return {
    taskId: plan.taskId,
    taskType: plan.taskType,
    agentId: plan.agentId,
    label: plan.label,
    events: during.events,
    boundary,
    afterEnd: after.events,
    usages: during.usages.map((usage, n) => ({ afterEvent: calls[n]?.afterEvent ?? -1, usage })),
    attackStart,
  };
}

type Scalar = string | number | boolean | readonly string[] | undefined;

function anyValue(value: Exclude<Scalar, undefined>): OtlpAnyValue {
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (typeof value === 'number') return Number.isInteger(value) ? { intValue: value } : { doubleValue: value };
  return { arrayValue: { values: value.map((item) => ({ stringValue: item })) } };
}

function attrs(values: Record<string, Scalar>): OtlpKeyValue[] {
  const out: OtlpKeyValue[] = [];
  for (const [key, value] of Object.entries(values)) if (value !== undefined) out.push({ key, value: anyValue(value) });
  return out;
}

function nanos(ms: number): string {
  return `${String(Math.round(ms * 1000))}000`;
}

function request(agentId: string, spans: OtlpSpan[]): OtlpTraceRequest {
  return {
    resourceSpans: [
      {
        resource: {
          attributes: attrs({ [ATTR.serviceName]: agentId, [ATTR.agentId]: agentId, [ATTR.agentName]: agentId }),
        },
        scopeSpans: [{ scope: { name: 'tripline-agent', version: '0.1.0', attributes: [] }, spans }],
      },
    ],
  };
}

/** The `chat` span a GenAI instrumentation emits for one model call (current conventions). */
function modelSpan(
  plan: TaskPlan,
  call: PlannedModelCall,
  atMs: number,
  traceId: string,
  spanId: string,
  parentSpanId: string,
): OtlpSpan {
  return {
    traceId,
    spanId,
    parentSpanId,
    name: `chat ${call.model}`,
    kind: 3,
    startTimeUnixNano: nanos(atMs),
    endTimeUnixNano: nanos(atMs),
    attributes: attrs({
      [ATTR.taskId]: plan.taskId,
      [ATTR.taskType]: plan.taskType,
      [ATTR.agentId]: plan.agentId,
      [ATTR.genAiOperation]: 'chat',
      [ATTR.genAiProvider]: call.model.startsWith('claude') ? 'anthropic' : 'openai',
      [ATTR.genAiRequestModel]: call.model,
      [ATTR.genAiUsageInput]: call.inputTokens,
      [ATTR.genAiUsageOutput]: call.outputTokens,
    }),
    events: [],
    links: [],
    status: { code: 0 },
  };
}

/** The span the agent helpers emit for one planned event (names and attributes as in kits/typescript/src/index.ts). */
function eventSpan(
  plan: TaskPlan,
  event: PlannedEvent,
  timing: { start: number; end: number },
  traceId: string,
  spanId: string,
  parentSpanId: string,
): OtlpSpan {
  const common = { [ATTR.taskId]: plan.taskId, [ATTR.taskType]: plan.taskType, [ATTR.agentId]: plan.agentId };
  let name: string;
  let own: Record<string, Scalar>;
  switch (event.kind) {
    case 'tool_call':
      name = `execute_tool ${event.tool}`;
      own = {
        [ATTR.genAiOperation]: 'execute_tool',
        [ATTR.toolName]: event.tool,
        [ATTR.toolType]: 'function',
        [ATTR.toolSideEffect]: event.sideEffect,
        [ATTR.toolTarget]: event.target,
        [ATTR.toolCallId]: `${spanId}-call`,
        ...recordedCall(event),
      };
      break;
    case 'data_access': {
      const target = event.collection ?? event.url ?? event.file ?? event.namespace ?? 'data';
      name = `${event.operation ?? 'read'} ${target}`;
      own = {
        [ATTR.dbSystem]:
          event.system ?? (event.url !== undefined || event.file !== undefined ? undefined : 'other_sql'),
        [ATTR.dbNamespace]: event.namespace,
        [ATTR.dbCollection]: event.collection,
        [ATTR.dbOperation]: event.operation,
        [ATTR.dbReturnedRows]: event.rows,
        [ATTR.urlFull]: event.url,
        [ATTR.filePath]: event.file,
        [ATTR.serverAddress]: event.serverAddress,
        [ATTR.dataBytes]: event.bytes,
        [ATTR.dataClassification]: event.classification,
        [ATTR.eventKind]: 'data_access',
      };
      break;
    }
    case 'privilege_change':
      name = `privilege ${event.action}`;
      own = {
        [ATTR.privilegeAction]: event.action,
        [ATTR.privilegeScopesBefore]: event.scopesBefore,
        [ATTR.privilegeScopesAfter]: event.scopesAfter,
        [ATTR.privilegeResource]: event.resource,
        [ATTR.privilegeApproved]: event.approved,
      };
      break;
  }
  const failed = event.error === true;
  return {
    traceId,
    spanId,
    parentSpanId,
    name,
    kind: 1,
    startTimeUnixNano: nanos(timing.start),
    endTimeUnixNano: nanos(timing.end),
    attributes: attrs({ ...common, ...own, ...(failed ? { [ATTR.errorType]: 'PlannedFailure' } : {}) }),
    events: [],
    links: [],
    status: failed ? { code: 2, message: 'simulated failure' } : { code: 0 },
  };
}
