/**
 * A test agent whose model calls are traced the way LLM client instrumentations trace them, exported by the
 * OpenTelemetry Node SDK over OTLP/HTTP protobuf with the agent token (no network to a model: the spans carry the
 * usage a provider would have answered).
 *
 *   node test/agents/typescript/llm-calls-agent.ts --endpoint <OTLP base url> --token <agent token> --plan <plan.json>
 *
 * The plan is a JSON list of tasks `{ taskId, taskType, calls: [{ shape, model, input, output }] }`. Each task is a
 * root span of this script's tracer carrying `tripline.task.id` / `tripline.task.type`, with one client span per
 * call, in the shape `shape` names:
 *   current   the GenAI semantic conventions today: `chat <model>`, `gen_ai.operation.name` chat,
 *             `gen_ai.provider.name`, `gen_ai.request.model` / `gen_ai.response.model`, `gen_ai.usage.input_tokens` /
 *             `gen_ai.usage.output_tokens` (as @ai-sdk/otel, pydantic-ai and opentelemetry-instrumentation-openai-v2 write them);
 *   legacy    the conventions before `gen_ai.operation.name` (OpenLLMetry before 0.40): `openai.chat`,
 *             `gen_ai.system`, `llm.request.type` chat, `gen_ai.usage.prompt_tokens` / `gen_ai.usage.completion_tokens`;
 *   openinference  OpenInference: `openinference.span.kind` LLM, `llm.model_name`, `llm.token_count.prompt` /
 *             `llm.token_count.completion`.
 * After each task a JSON line `{"taskId", "traceId"}` goes to stdout.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { SpanKind, trace } from '@opentelemetry/api';
import type { Attributes } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';

interface PlannedCall {
  shape: 'current' | 'legacy' | 'openinference';
  model: string;
  input: number;
  output: number;
}

interface PlannedTask {
  taskId: string;
  taskType: string;
  calls: PlannedCall[];
}

const { values: options } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    token: { type: 'string' },
    plan: { type: 'string' },
    agent: { type: 'string', default: 'llm-agent' },
  },
  strict: true,
});
const { endpoint, token, plan: planPath, agent } = options;
if (endpoint === undefined || token === undefined || planPath === undefined) {
  console.error('usage: llm-calls-agent.ts --endpoint <url> --token <token> --plan <plan.json> [--agent <name>]');
  process.exit(2);
}
const plan = JSON.parse(readFileSync(planPath, 'utf8')) as PlannedTask[];

const sdk = new NodeSDK({
  resource: resourceFromAttributes({ 'service.name': agent }),
  spanProcessors: [
    new BatchSpanProcessor({
      exporter: new OTLPTraceExporter({
        url: `${endpoint.replace(/\/$/, '')}/v1/traces`,
        headers: { authorization: `Bearer ${token}` },
      }),
    }),
  ],
});
sdk.start();

function callSpan(call: PlannedCall): { name: string; attributes: Attributes } {
  switch (call.shape) {
    case 'current':
      return {
        name: `chat ${call.model}`,
        attributes: {
          'gen_ai.operation.name': 'chat',
          'gen_ai.provider.name': 'openai',
          'gen_ai.request.model': call.model,
          'gen_ai.response.model': `${call.model}-2024-08-06`,
          'gen_ai.usage.input_tokens': call.input,
          'gen_ai.usage.output_tokens': call.output,
        },
      };
    case 'legacy':
      return {
        name: 'openai.chat',
        attributes: {
          'llm.request.type': 'chat',
          'gen_ai.system': 'openai',
          'gen_ai.request.model': call.model,
          'gen_ai.response.model': call.model,
          'gen_ai.usage.prompt_tokens': call.input,
          'gen_ai.usage.completion_tokens': call.output,
          'llm.usage.total_tokens': call.input + call.output,
        },
      };
    case 'openinference':
      return {
        name: 'ChatOpenAI',
        attributes: {
          'openinference.span.kind': 'LLM',
          'llm.model_name': call.model,
          'llm.provider': 'openai',
          'llm.token_count.prompt': call.input,
          'llm.token_count.completion': call.output,
          'llm.token_count.total': call.input + call.output,
        },
      };
  }
}

const tracer = trace.getTracer('llm-calls-agent');
for (const task of plan) {
  await tracer.startActiveSpan(
    `task ${task.taskId}`,
    { root: true, attributes: { 'tripline.task.id': task.taskId, 'tripline.task.type': task.taskType } },
    async (root) => {
      for (const call of task.calls) {
        const { name, attributes } = callSpan(call);
        const span = tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes });
        await new Promise((resolve) => setTimeout(resolve, 1));
        span.end();
      }
      console.log(JSON.stringify({ taskId: task.taskId, traceId: root.spanContext().traceId }));
      root.end();
    },
  );
}
await sdk.shutdown();
