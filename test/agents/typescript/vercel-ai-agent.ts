/**
 * A test agent on the Vercel AI SDK (`ai` 7 with its OpenTelemetry integration `@ai-sdk/otel`), exactly as a
 * user's agent is written: `generateText` with the shop's tools (shop-tools.ts), a scripted model
 * (`MockLanguageModelV4` from `ai/test`, no network), spans exported by the OpenTelemetry Node SDK over OTLP/HTTP
 * protobuf with the agent token.
 *
 *   node test/agents/typescript/vercel-ai-agent.ts --endpoint <OTLP base url> --token <agent token>
 *        --plan <plan.json> --mode wrapper|trace [--agent <name>]
 *
 * The plan is a JSON list of tasks `{ label, taskType, taskId?, calls: [{ tool, args }] }`; the model calls the
 * planned tools in order, one per step, then answers. Mode `wrapper` runs each task inside a span of this
 * script's tracer carrying `tripline.task.id` and `tripline.task.type`; mode `trace` declares nothing but the
 * task type, once, as a resource attribute (every task of the plan must then have the same type), and each
 * task is its own trace. `--agent` names the agent (the AI SDK's `functionId`, and `<name>-vercel-ai` its
 * `service.name`; default `support-agent`). After each task a JSON line `{"label", "taskId", "traceId"}` goes to stdout.
 */
import { OpenTelemetry } from '@ai-sdk/otel';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import { generateText, isStepCount, jsonSchema, registerTelemetry, tool } from 'ai';
import { MockLanguageModelV4 } from 'ai/test';
import { RootSpans, readAgentRun, runPlan } from './plan-cli.ts';
import type { PlannedTask } from './plan-cli.ts';
import { SHOP_TOOLS } from './shop-tools.ts';

const { endpoint, token, mode, agent, plan, processTaskType } = readAgentRun('vercel-ai-agent.ts');
const roots = new RootSpans();

// ---- The user's setup: an OpenTelemetry SDK exporting to Tripline, and the AI SDK's OpenTelemetry integration.
const sdk = new NodeSDK({
  resource: resourceFromAttributes({
    'service.name': `${agent}-vercel-ai`,
    ...(mode === 'trace' && processTaskType !== undefined ? { 'tripline.task.type': processTaskType } : {}),
  }),
  spanProcessors: [
    roots,
    new BatchSpanProcessor({
      exporter: new OTLPTraceExporter({
        url: `${endpoint.replace(/\/$/, '')}/v1/traces`,
        headers: { authorization: `Bearer ${token}` },
      }),
    }),
  ],
});
sdk.start();
registerTelemetry(new OpenTelemetry());
// ----

const tools = Object.fromEntries(
  SHOP_TOOLS.map(({ name, description, schema, execute }) => [
    name,
    tool({ description, inputSchema: jsonSchema<Record<string, unknown>>(schema), execute }),
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
      const id = `call_${index}_${step}`;
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

async function runTask(task: PlannedTask, index: number): Promise<void> {
  await generateText({
    model: scriptedModel(task, index),
    instructions: 'You are a customer-support agent.',
    prompt: `Handle ticket #${index}.`,
    tools,
    stopWhen: isStepCount(task.calls.length + 1),
    telemetry: { functionId: agent },
  });
}

await runPlan({ mode, plan }, roots, runTask);
await sdk.shutdown();
