/**
 * A test agent on LangGraph.js as LangChain.js users write one today: `createAgent` from `langchain` 1 (the prebuilt
 * ReAct agent, a LangGraph graph; it replaced `@langchain/langgraph`'s deprecated `createReactAgent`), with
 * `@langchain/core` tools made from the shop's tools (shop-tools.ts), traced by OpenInference's LangChain.js
 * instrumentation (`@arizeai/openinference-instrumentation-langchain`, instrumenting
 * `@langchain/core/callbacks/manager` by hand as its README says), spans exported by the OpenTelemetry Node SDK over
 * OTLP/HTTP protobuf with the agent token. The chat model is scripted (a `BaseChatModel` subclass whose answers
 * are the plan's tool calls, `bindTools` supported), no network.
 *
 *   node test/agents/typescript/langgraph-agent.ts --endpoint <OTLP base url> --token <agent token>
 *        --plan <plan.json> --mode wrapper|trace [--agent <name>] [--print-spans]
 *
 * The CLI and output are vercel-ai-agent.ts's: the plan is a JSON list of tasks `{ label, taskType, taskId?,
 * calls: [{ tool, args }] }`; the model calls the planned tools in order, one per turn, then answers. Mode `wrapper`
 * runs each task inside a span of this script's tracer carrying `tripline.task.id` and `tripline.task.type`; mode
 * `trace` declares the task type once, as a resource attribute, and each task is its own trace. `--agent` names the
 * agent (the graph's `name`, and `<name>-langgraph` its `service.name`; default `support-agent`). After each task a
 * JSON line `{"label", "taskId", "traceId"}` goes to stdout. `--print-spans` also writes every span to stderr
 * (the SDK's ConsoleSpanExporter).
 */
import { LangChainInstrumentation } from '@arizeai/openinference-instrumentation-langchain';
import * as CallbackManagerModule from '@langchain/core/callbacks/manager';
import { BaseChatModel } from '@langchain/core/language_models/chat_models';
import type { BaseChatModelCallOptions, BindToolsInput } from '@langchain/core/language_models/chat_models';
import { AIMessage } from '@langchain/core/messages';
import type { BaseMessage } from '@langchain/core/messages';
import type { ChatResult } from '@langchain/core/outputs';
import { tool } from '@langchain/core/tools';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { createAgent } from 'langchain';
import { RootSpans, readAgentRun, runPlan } from './plan-cli.ts';
import type { PlannedTask } from './plan-cli.ts';
import { SHOP_TOOLS } from './shop-tools.ts';

const { endpoint, token, mode, agent, printSpans, plan, processTaskType } = readAgentRun('langgraph-agent.ts');
const roots = new RootSpans();

// ---- The user's setup: an OpenTelemetry SDK exporting to Tripline, and OpenInference's LangChain.js instrumentation.
const sdk = new NodeSDK({
  resource: resourceFromAttributes({
    'service.name': `${agent}-langgraph`,
    ...(mode === 'trace' && processTaskType !== undefined ? { 'tripline.task.type': processTaskType } : {}),
  }),
  spanProcessors: [
    roots,
    ...(printSpans ? [new SimpleSpanProcessor({ exporter: new ConsoleSpanExporter() })] : []),
    new BatchSpanProcessor({
      exporter: new OTLPTraceExporter({
        url: `${endpoint.replace(/\/$/, '')}/v1/traces`,
        headers: { authorization: `Bearer ${token}` },
      }),
    }),
  ],
});
sdk.start();
new LangChainInstrumentation().manuallyInstrument(CallbackManagerModule);
// ----

const tools = SHOP_TOOLS.map(({ name, description, schema, execute }) =>
  tool(async (args: Record<string, unknown>) => JSON.stringify(await execute(args)), { name, description, schema }),
);

/** A chat model that calls the task's planned tools in order, one per turn, then answers. */
class ScriptedChatModel extends BaseChatModel {
  private turn = 0;
  private readonly task: PlannedTask;
  private readonly index: number;

  constructor(task: PlannedTask, index: number) {
    super({});
    this.task = task;
    this.index = index;
  }

  _llmType(): string {
    return 'scripted';
  }

  /** The tools are the plan's to call: binding them changes nothing. */
  override bindTools(_tools: BindToolsInput[], _kwargs?: Partial<BaseChatModelCallOptions>): this {
    return this;
  }

  _generate(_messages: BaseMessage[]): Promise<ChatResult> {
    const call = this.task.calls[this.turn];
    const id = `call_${String(this.index)}_${String(this.turn)}`;
    this.turn += 1;
    const usage_metadata = { input_tokens: 20, output_tokens: 10, total_tokens: 30 };
    const message =
      call === undefined
        ? new AIMessage({ content: `Done: ${this.task.label}.`, usage_metadata })
        : new AIMessage({
            content: '',
            tool_calls: [{ id, name: call.tool, args: call.args, type: 'tool_call' }],
            usage_metadata,
          });
    return Promise.resolve({
      generations: [{ text: typeof message.content === 'string' ? message.content : '', message }],
    });
  }
}

async function runTask(task: PlannedTask, index: number): Promise<void> {
  const graph = createAgent({
    model: new ScriptedChatModel(task, index),
    tools,
    systemPrompt: 'You are a customer-support agent.',
    name: agent,
  });
  await graph.invoke(
    { messages: [{ role: 'user', content: `Handle ticket #${String(index)}.` }] },
    { recursionLimit: 2 * task.calls.length + 5 },
  );
}

await runPlan({ mode, plan }, roots, runTask);
await sdk.shutdown();
