/**
 * Which task is current, and the task trees it makes: the kit's task is kept in the OpenTelemetry context (so it
 * follows `await`s) and its id and type in baggage, which the W3C baggage propagator carries to other agents over
 * HTTP. A task started while another is current, or from a request whose baggage names a task, is that task's
 * child: it says so with `tripline.task.parent_id` on its spans. The parent id is a claim Tripline uses only to
 * link the two (docs/kill-switch.md, "Task trees").
 */
import { ROOT_CONTEXT, createContextKey, propagation } from '@opentelemetry/api';
import type { Context, TextMapGetter } from '@opentelemetry/api';
import { AGENT_ATTR as ATTR } from './conventions.ts';

/** A request's headers: Node's `IncomingMessage.headers` (lowercase names), a plain record, or fetch `Headers`. */
export type IncomingHeaders = Readonly<Record<string, string | readonly string[] | undefined>> | Headers;

interface CurrentTask {
  taskId: string;
  taskType: string;
  parentTaskId: string | undefined;
}

const TASK_KEY = createContextKey('tripline.task');

/** `context` with the task current: the task itself, and its id, type and parent as baggage. */
export function withTask(context: Context, task: CurrentTask): Context {
  let baggage = (propagation.getBaggage(context) ?? propagation.createBaggage())
    .setEntry(ATTR.taskId, { value: task.taskId })
    .setEntry(ATTR.taskType, { value: task.taskType });
  baggage =
    task.parentTaskId === undefined
      ? baggage.removeEntry(ATTR.taskParentId)
      : baggage.setEntry(ATTR.taskParentId, { value: task.parentTaskId });
  return propagation.setBaggage(context.setValue(TASK_KEY, task), baggage);
}

/** The id of the kit's task current in `context`, if any. */
export function currentTaskId(context: Context): string | undefined {
  const task = context.getValue(TASK_KEY) as CurrentTask | undefined;
  return task?.taskId;
}

const headerGetter: TextMapGetter<IncomingHeaders> = {
  keys: (carrier) => (carrier instanceof Headers ? [...carrier.keys()] : Object.keys(carrier)),
  get(carrier, key) {
    if (carrier instanceof Headers) return carrier.get(key) ?? undefined;
    const value = carrier[key] ?? carrier[key.toLowerCase()];
    return typeof value === 'string' ? value : value === undefined ? undefined : [...value];
  },
};

function baggageTask(context: Context): string | undefined {
  const value = propagation.getBaggage(context)?.getEntry(ATTR.taskId)?.value;
  return value === undefined || value === '' ? undefined : value;
}

/**
 * The parent of a task about to start: the one given (`null`: none), else the task in the incoming request's
 * baggage, else the kit's task current here, else a task id in the active context's baggage (a caller's,
 * extracted by the server's own instrumentation). Never the task itself.
 */
export function parentTaskOf(
  taskId: string,
  options: { parentTaskId?: string | null; incomingHeaders?: IncomingHeaders },
  active: Context,
): string | undefined {
  if (options.parentTaskId === null) return undefined;
  const parent =
    options.parentTaskId ??
    (options.incomingHeaders === undefined
      ? undefined
      : baggageTask(propagation.extract(ROOT_CONTEXT, options.incomingHeaders, headerGetter))) ??
    currentTaskId(active) ??
    baggageTask(active);
  return parent === undefined || parent === '' || parent === taskId ? undefined : parent;
}

/**
 * `traceparent` and `baggage` (W3C, through the propagators the OpenTelemetry SDK installed) for a request made
 * in `context`, where the task is current.
 */
export function outgoingHeaders(context: Context): Record<string, string> {
  const headers: Record<string, string> = {};
  propagation.inject(context, headers);
  return headers;
}
