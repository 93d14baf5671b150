/**
 * Model calls as classification sees them (services/core/model-usage.ts): the current GenAI shape (`chat` with
 * `gen_ai.usage.input_tokens` / `output_tokens`), the older one (`gen_ai.usage.prompt_tokens` /
 * `completion_tokens`, no operation), OpenLLMetry (`llm.request.type`) and OpenInference (`LLM`, token counts);
 * never an agent-run span that sums its calls' usage, and never an event.
 */
import { describe, expect, it } from 'vitest';
import type { OtlpKeyValue, OtlpSpan, OtlpTraceRequest } from '../../../schemas/otlp.ts';
import { classifyRequest } from '../../../services/core/classify.ts';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
let spanCounter = 0;

function attr(key: string, value: string | number): OtlpKeyValue {
  return { key, value: typeof value === 'string' ? { stringValue: value } : { intValue: value } };
}

function span(name: string, attributes: Record<string, string | number>): OtlpSpan {
  spanCounter += 1;
  return {
    traceId: TRACE,
    spanId: spanCounter.toString(16).padStart(16, '0'),
    parentSpanId: 'b7ad6b7169203331',
    name,
    kind: 3,
    startTimeUnixNano: '1700000000000000000',
    endTimeUnixNano: '1700000001500000000',
    attributes: Object.entries(attributes).map(([key, value]) => attr(key, value)),
    events: [],
    links: [],
  };
}

function request(spans: OtlpSpan[]): OtlpTraceRequest {
  return {
    resourceSpans: [
      {
        resource: { attributes: [attr('service.name', 'refund-service'), attr('tripline.task.type', 'refund')] },
        scopeSpans: [{ scope: { name: 'test', attributes: [] }, spans }],
      },
    ],
  };
}

describe('model calls', () => {
  it('reads the current GenAI shape: operation, tokens in and out, response model over request model, provider', () => {
    const batch = classifyRequest(
      request([
        span('chat gpt-4o', {
          'gen_ai.operation.name': 'chat',
          'gen_ai.provider.name': 'openai',
          'gen_ai.request.model': 'gpt-4o',
          'gen_ai.response.model': 'gpt-4o-2024-08-06',
          'gen_ai.usage.input_tokens': 1200,
          'gen_ai.usage.output_tokens': 340,
          'gen_ai.agent.name': 'refund-agent',
        }),
      ]),
      'acme',
    );
    expect(batch.events).toEqual([]);
    expect(batch.usages).toEqual([
      {
        id: expect.stringMatching(new RegExp(`^${TRACE}[0-9a-f]{16}$`)) as string,
        tenant: 'acme',
        taskId: TRACE,
        taskType: 'refund',
        agentId: 'refund-agent',
        claims: { taskType: 'refund', agentId: 'refund-agent' },
        traceId: TRACE,
        spanId: expect.any(String) as string,
        startMs: 1_700_000_000_000,
        endMs: 1_700_000_001_500,
        operation: 'chat',
        model: 'gpt-4o-2024-08-06',
        provider: 'openai',
        inputTokens: 1200,
        outputTokens: 340,
      },
    ]);
    expect(batch.usageOnly).toBe(1);
  });

  it('reads the older GenAI shape (prompt/completion tokens, gen_ai.system, no operation)', () => {
    const batch = classifyRequest(
      request([
        span('openai.chat', {
          'gen_ai.system': 'openai',
          'gen_ai.request.model': 'gpt-4o-mini',
          'gen_ai.usage.prompt_tokens': 800,
          'gen_ai.usage.completion_tokens': '95',
        }),
      ]),
      'acme',
    );
    expect(batch.usages).toEqual([
      expect.objectContaining({
        operation: 'chat',
        model: 'gpt-4o-mini',
        provider: 'openai',
        inputTokens: 800,
        outputTokens: 95,
      }),
    ]);
  });

  it('reads OpenLLMetry and OpenInference model spans, embeddings included', () => {
    const batch = classifyRequest(
      request([
        span('openai.chat', {
          'llm.request.type': 'chat',
          'gen_ai.system': 'OpenAI',
          'gen_ai.request.model': 'gpt-4.1',
          'gen_ai.usage.input_tokens': 10,
          'gen_ai.usage.output_tokens': 20,
        }),
        span('openai.embeddings', {
          'llm.request.type': 'embedding',
          'gen_ai.request.model': 'text-embedding-3-small',
          'gen_ai.usage.prompt_tokens': 64,
        }),
        span('ChatOpenAI', {
          'openinference.span.kind': 'LLM',
          'llm.model_name': 'claude-3-5-sonnet-20241022',
          'llm.provider': 'anthropic',
          'llm.token_count.prompt': 300,
          'llm.token_count.completion': 50,
        }),
        span('embed', { 'openinference.span.kind': 'EMBEDDING', 'llm.model_name': 'text-embedding-3-large' }),
      ]),
      'acme',
    );
    expect(
      batch.usages.map(({ operation, model, provider, inputTokens, outputTokens }) => ({
        operation,
        model,
        provider,
        inputTokens,
        outputTokens,
      })),
    ).toEqual([
      { operation: 'chat', model: 'gpt-4.1', provider: 'OpenAI', inputTokens: 10, outputTokens: 20 },
      {
        operation: 'embeddings',
        model: 'text-embedding-3-small',
        provider: undefined,
        inputTokens: 64,
        outputTokens: 0,
      },
      {
        operation: 'chat',
        model: 'claude-3-5-sonnet-20241022',
        provider: 'anthropic',
        inputTokens: 300,
        outputTokens: 50,
      },
      {
        operation: 'embeddings',
        model: 'text-embedding-3-large',
        provider: undefined,
        inputTokens: 0,
        outputTokens: 0,
      },
    ]);
  });

  it("counts one model call per turn of a LlamaIndex agent: its LLM's request preparation is no call", () => {
    // The two LLM spans openinference-instrumentation-llama-index 4.6.1 makes per turn of a FunctionAgent
    // (llama-index-core 0.14.25), attributes as recorded (the messages cut short here).
    const batch = classifyRequest(
      request([
        span('OpenAI._prepare_chat_with_tools', {
          'openinference.span.kind': 'LLM',
          'llm.model_name': 'gpt-4.1',
          'llm.invocation_parameters': '{"is_chat_model":true,"is_function_calling_model":true}',
          'input.value': '{"tools": ["<FunctionTool object>"], "user_msg": null, "chat_history": ["…"]}',
          'output.value': '{"messages": ["…"]}',
        }),
        span('OpenAI.astream_chat', {
          'openinference.span.kind': 'LLM',
          'llm.model_name': 'gpt-4.1',
          'llm.input_messages.0.message.role': 'user',
          'llm.input_messages.0.message.content': 'Handle ticket #0.',
          'llm.output_messages.0.message.role': 'assistant',
          'llm.token_count.prompt': 120,
          'llm.token_count.completion': 18,
        }),
      ]),
      'acme',
    );
    expect(batch.usages.map(({ model, inputTokens, outputTokens }) => ({ model, inputTokens, outputTokens }))).toEqual([
      { model: 'gpt-4.1', inputTokens: 120, outputTokens: 18 },
    ]);
    expect(batch.usageOnly).toBe(1);
    expect(batch.dropped).toBe(1);
  });

  it('never counts an agent run that sums its calls, a tool call or a chain as a model call; caps absurd counts', () => {
    const batch = classifyRequest(
      request([
        span('invoke_agent refund-agent', {
          'gen_ai.operation.name': 'invoke_agent',
          'gen_ai.usage.input_tokens': 5000,
          'gen_ai.usage.output_tokens': 900,
        }),
        span('agent run', { 'gen_ai.usage.input_tokens': 5000, 'gen_ai.usage.output_tokens': 900 }),
        span('execute_tool refund', { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.usage.prompt_tokens': 9 }),
        span('chain', { 'openinference.span.kind': 'CHAIN', 'llm.token_count.prompt': 300 }),
        span('workflow', { 'llm.request.type': 'rerank', 'gen_ai.usage.prompt_tokens': 4 }),
        span('chat', {
          'gen_ai.operation.name': 'chat',
          'gen_ai.usage.input_tokens': 1e30,
          'gen_ai.usage.output_tokens': -5,
        }),
      ]),
      'acme',
    );
    expect(batch.events.map((event) => event.kind)).toEqual(['tool_call']);
    expect(batch.usages).toEqual([
      expect.objectContaining({ inputTokens: 100_000_000, outputTokens: 0, model: 'unknown' }),
    ]);
    expect(batch.usageOnly).toBe(1);
    expect(batch.dropped).toBe(4);
  });
});
