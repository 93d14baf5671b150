/**
 * A test agent on Mastra (`@mastra/core` 1.71) exactly as a user's agent is written: an `Agent` with the shop's
 * tools (shop-tools.ts) made by `createTool`, registered on a `Mastra` instance whose `Observability` exports
 * Mastra's own spans with `OtelExporter` (`@mastra/otel-exporter`, provider `custom`) over OTLP/HTTP protobuf with
 * the agent token. The model is scripted (`MockLanguageModelV4` from `ai/test`, a model of the AI SDK's provider
 * spec v4 that Mastra accepts as is), no network.
 *
 *   node test/agents/typescript/mastra-agent.ts --endpoint <OTLP base url> --token <agent token>
 *        --plan <plan.json> --mode wrapper|trace [--agent <name>] [--print-spans]
 *
 * The CLI and output are vercel-ai-agent.ts's: the plan is a JSON list of tasks `{ label, taskType, taskId?,
 * calls: [{ tool, args }] }`; the model calls the planned tools in order, one per step, then answers. Mode `wrapper`
 * runs each task inside a span of this script's OpenTelemetry tracer carrying `tripline.task.id` and
 * `tripline.task.type`, and hands its trace and span id to Mastra (`tracingOptions.traceId` / `parentSpanId`, the
 * way Mastra documents joining an external trace); mode `trace` declares the task type once, as a resource attribute
 * of Mastra's exporter, and each task is its own trace. `--agent` names the agent (the `Agent`'s id and name, and
 * `<name>-mastra` its `service.name`; default `support-agent`). After each task a JSON line `{"label", "taskId",
 * "traceId"}` goes to stdout. `--print-spans` also writes every span Mastra exports to stderr (the OpenTelemetry
 * SDK's ConsoleSpanExporter, as a second Mastra exporter).
 */
import { Agent } from '@mastra/core/agent';
import type { MastraModelConfig } from '@mastra/core/llm';
import { Mastra } from '@mastra/core/mastra';
import { RequestContext } from '@mastra/core/request-context';
import { createTool } from '@mastra/core/tools';
import { Observability } from '@mastra/observability';
import { OtelExporter } from '@mastra/otel-exporter';
import { trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor, ConsoleSpanExporter } from '@opentelemetry/sdk-trace';
import { jsonSchema } from 'ai';
import { MockLanguageModelV4 } from 'ai/test';
import { RootSpans, readAgentRun, runPlan } from './plan-cli.ts';
import type { PlannedTask } from './plan-cli.ts';
import { SHOP_TOOLS } from './shop-tools.ts';

const { endpoint, token, mode, agent, printSpans, plan, processTaskType } = readAgentRun('mastra-agent.ts');
const roots = new RootSpans();
const serviceName = `${agent}-mastra`;
const traces = `${endpoint.replace(/\/$/, '')}/v1/traces`;
const headers = { authorization: `Bearer ${token}` };

// ---- The user's own OpenTelemetry SDK: only the wrapper span of mode `wrapper` goes through it.
const sdk = new NodeSDK({
  resource: resourceFromAttributes({ 'service.name': serviceName }),
  spanProcessors: [roots, new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: traces, headers }) })],
});
sdk.start();

// ---- The user's Mastra setup: Mastra's observability exporting its spans to Tripline.
const exporters = [
  new OtelExporter({
    provider: { custom: { endpoint: traces, protocol: 'http/protobuf', headers } },
    ...(mode === 'trace' && processTaskType !== undefined
      ? { resourceAttributes: { 'tripline.task.type': processTaskType } }
      : {}),
    signals: { logs: false },
  }),
  ...(printSpans ? [new OtelExporter({ exporter: new ConsoleSpanExporter(), signals: { logs: false } })] : []),
];
const observability = new Observability({ configs: { otel: { serviceName, exporters } } });

const tools = Object.fromEntries(
  SHOP_TOOLS.map(({ name, description, schema, execute }) => [
    name,
    createTool({ id: name, description, inputSchema: jsonSchema<Record<string, unknown>>(schema), execute }),
  ]),
);

const usage = {
  inputTokens: { total: 20, noCache: 20, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 10, text: 10, reasoning: undefined },
};

/** A model that calls the task's planned tools in order, one per step, then answers. */
function scriptedModel(task: PlannedTask, index: number): MockLanguageModelV4 {
  let step = 0;
  return new MockLanguageModelV4({
    provider: 'scripted',
    modelId: 'scripted-model',
    doGenerate: () => {
      const call = task.calls[step];
      const id = `call_${String(index)}_${String(step)}`;
      step += 1;
      return Promise.resolve(
        call === undefined
          ? {
              content: [{ type: 'text' as const, text: `Done: ${task.label}.` }],
              finishReason: { unified: 'stop' as const, raw: 'stop' },
              usage,
              warnings: [],
            }
          : {
              content: [
                { type: 'tool-call' as const, toolCallId: id, toolName: call.tool, input: JSON.stringify(call.args) },
              ],
              finishReason: { unified: 'tool-calls' as const, raw: 'tool_calls' },
              usage,
              warnings: [],
            },
      );
    },
  });
}

const supportAgent = new Agent({
  id: agent,
  name: agent,
  instructions: 'You are a customer-support agent.',
  // Each task's scripted model, handed in with the run. Typed as Mastra's model config: Mastra 1.71 declares the
  // provider spec v4 by its own copy of @ai-sdk/provider 4.0.17, `ai` 7.0.185's mock by 4.0.39 (the same spec).
  model: ({ requestContext }) => requestContext.get<string, MastraModelConfig>('model'),
  tools,
});
const mastra = new Mastra({ agents: { supportAgent }, observability, logger: false });

async function runTask(task: PlannedTask, index: number): Promise<string | undefined> {
  const wrapper = trace.getActiveSpan()?.spanContext();
  const requestContext = new RequestContext([['model', scriptedModel(task, index)]]);
  const result = await mastra.getAgent('supportAgent').generate(`Handle ticket #${String(index)}.`, {
    requestContext,
    maxSteps: task.calls.length + 1,
    ...(wrapper === undefined ? {} : { tracingOptions: { traceId: wrapper.traceId, parentSpanId: wrapper.spanId } }),
  });
  return result.traceId;
}

await runPlan({ mode, plan }, roots, runTask);
await mastra.shutdown();
await sdk.shutdown();
