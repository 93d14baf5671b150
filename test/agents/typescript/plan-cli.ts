/**
 * What the framework test agents (vercel-ai-agent.ts, langgraph-agent.ts) share that is not part of a user's setup:
 * their command line and plan file, the run of each planned task, and the trace id of each task's root span, which
 * they print.
 *
 *   --endpoint <OTLP base url> --token <agent token> --plan <plan.json> --mode wrapper|trace [--agent <name>]
 *   [--print-spans]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace';

export interface PlannedCall {
  tool: string;
  args: Record<string, unknown>;
}

export interface PlannedTask {
  label: string;
  taskType: string;
  taskId?: string | null;
  calls: PlannedCall[];
}

export interface AgentRun {
  endpoint: string;
  token: string;
  mode: 'wrapper' | 'trace';
  agent: string;
  printSpans: boolean;
  plan: PlannedTask[];
  /** The task type of every task in mode `trace` (one per process, declared as a resource attribute). */
  processTaskType: string | undefined;
}

/** The command line and plan of `script`; exits 2 with its usage when they are wrong. */
export function readAgentRun(script: string): AgentRun {
  const { values } = parseArgs({
    options: {
      endpoint: { type: 'string' },
      token: { type: 'string' },
      plan: { type: 'string' },
      mode: { type: 'string', default: 'wrapper' },
      agent: { type: 'string', default: 'support-agent' },
      'print-spans': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const { endpoint, token, plan: planPath, mode, agent } = values;
  if (
    endpoint === undefined ||
    token === undefined ||
    planPath === undefined ||
    (mode !== 'wrapper' && mode !== 'trace')
  ) {
    console.error(`usage: ${script} --endpoint <url> --token <token> --plan <plan.json> --mode wrapper|trace`);
    process.exit(2);
  }
  const plan = JSON.parse(readFileSync(planPath, 'utf8')) as PlannedTask[];
  const processTaskType = plan[0]?.taskType;
  if (mode === 'trace' && plan.some((task) => task.taskType !== processTaskType)) {
    console.error('mode trace: the task type is one per process, so every task of the plan needs the same taskType');
    process.exit(2);
  }
  return { endpoint, token, mode, agent, printSpans: values['print-spans'], plan, processTaskType };
}

/** Remembers each trace's root span, so the script can print the trace id. */
export class RootSpans implements SpanProcessor {
  readonly traceIds: string[] = [];
  onStart(span: Span, _parent: Context): void {
    if (span.parentSpanContext === undefined) this.traceIds.push(span.spanContext().traceId);
  }
  onEnd(_span: ReadableSpan): void {}
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Runs each task of the plan: in mode `wrapper` inside the user's own span around the run (the only place the task
 * id is declared), in mode `trace` as its own trace. After each task a JSON line `{"label", "taskId", "traceId"}`
 * goes to stdout. A framework that traces outside the OpenTelemetry SDK (Mastra) returns its run's trace id from `runTask`.
 */
export async function runPlan(
  { mode, plan }: Pick<AgentRun, 'mode' | 'plan'>,
  roots: RootSpans,
  runTask: (task: PlannedTask, index: number) => Promise<unknown>,
): Promise<void> {
  const tracer = trace.getTracer('support-agent');
  for (const [index, task] of plan.entries()) {
    const taskId = mode === 'wrapper' ? (task.taskId ?? `task-${String(index)}`) : null;
    let traceId: string | undefined;
    if (taskId !== null) {
      await tracer.startActiveSpan(
        `support ticket ${String(index)}`,
        { root: true, attributes: { 'tripline.task.id': taskId, 'tripline.task.type': task.taskType } },
        async (span) => {
          traceId = span.spanContext().traceId;
          try {
            await runTask(task, index);
          } catch (error) {
            span.setStatus({ code: SpanStatusCode.ERROR, message: String(error) });
            throw error;
          } finally {
            span.end();
          }
        },
      );
    } else {
      const before = roots.traceIds.length;
      const returned = await runTask(task, index);
      traceId = typeof returned === 'string' ? returned : roots.traceIds[before];
    }
    if (traceId === undefined) throw new Error(`task ${String(index)} started no trace`);
    console.log(JSON.stringify({ label: task.label, taskId, traceId }));
  }
}
