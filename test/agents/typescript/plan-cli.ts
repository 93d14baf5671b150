/**
 * What the framework test agents (vercel-ai-agent.ts, langgraph-agent.ts) share that is not part of a user's setup:
 * their command line and plan file, and the trace id of each task's root span, which they print.
 *
 *   --endpoint <OTLP base url> --token <agent token> --plan <plan.json> --mode wrapper|trace [--agent <name>]
 *   [--print-spans]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
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
