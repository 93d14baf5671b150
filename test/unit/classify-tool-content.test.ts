/**
 * What classification reads from the content of tool calls (services/core/tool-detail.ts, counterparties.ts) in the
 * attribute shapes real instrumentations use, and that the content itself stays out of the stored event.
 */
import { describe, expect, it } from 'vitest';
import { span, request } from '../helpers/otlp-spans.ts';
import { classifyRequest } from '../../services/core/classify.ts';
import { DEFAULT_COUNTERPARTY_KEY, counterpartyKey } from '../../services/core/counterparties.ts';
import type { CounterpartyKind } from '../../schemas/events.ts';

describe('counterparties and tool content', () => {
  const secret = 'classify-test-secret-0123';
  const cp = (kind: CounterpartyKind, value: string, tenant = 'acme') => ({
    kind,
    key: counterpartyKey({ secret, tenant }, kind, value),
  });
  const transferArgs = '{"to_account":"DE89 3704 0044 0532 0130 00","amount":2500,"memo":"for bob@payee.example"}';
  const transferResult = '{"status":"sent","confirmation_to":"alice@bank.example"}';
  // The attribute shapes real instrumentations give a tool call (their sources: @ai-sdk/otel's `execute_tool`,
  // pydantic-ai's InstrumentationNames for versions 2 and 3+, OpenInference's TOOL span, OpenLLMetry's tool).
  const shapes = {
    'GenAI (Vercel AI SDK, pydantic-ai 3+)': span('execute_tool transfer', {
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'transfer',
      'gen_ai.tool.call.id': 'call_1',
      'gen_ai.tool.type': 'function',
      'gen_ai.tool.call.arguments': transferArgs,
      'gen_ai.tool.call.result': transferResult,
    }),
    'pydantic-ai 2': span('running tool', {
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'transfer',
      'gen_ai.tool.call.id': 'call_2',
      tool_arguments: transferArgs,
      tool_response: transferResult,
      'logfire.msg': 'running tool: transfer',
    }),
    OpenInference: span('transfer', {
      'openinference.span.kind': 'TOOL',
      'tool.name': 'transfer',
      'input.value': transferArgs,
      'input.mime_type': 'application/json',
      'output.value': transferResult,
    }),
    OpenLLMetry: span('transfer.tool', {
      'traceloop.span.kind': 'tool',
      'traceloop.entity.name': 'transfer',
      'traceloop.entity.input': transferArgs,
      'traceloop.entity.output': transferResult,
    }),
  };

  it.each(Object.entries(shapes))('reads the arguments and the result of a %s tool span', (_, toolSpan) => {
    const [event] = classifyRequest(request([toolSpan]), 'acme', { counterpartyKey: secret }).events;
    expect(event?.tool).toMatchObject({
      name: 'transfer',
      counterparties: [
        cp('account', 'DE89370400440532013000'),
        cp('email', 'bob@payee.example'),
        cp('domain', 'payee.example'),
      ],
      resultCounterparties: [cp('email', 'alice@bank.example'), cp('domain', 'bank.example')],
      resultRecorded: true,
      amount: 2500,
      argumentKeys: ['amount', 'memo', 'to_account'],
    });
  });

  // The envelopes some OpenInference instrumentations record around a tool's content, as observed from
  // openinference-instrumentation-smolagents 0.1.43 (smolagents 1.26) and -llama-index 4.6.1 (llama-index-core
  // 0.14.25): the bound arguments of the framework's own call, and LlamaIndex's whole ToolOutput as the result; and
  // from @arizeai/openinference-instrumentation-langchain 4.1.1 (@langchain/core 1.5.0, langchain 1.5.14): the
  // serialized ToolMessage as the result, with a call id and `@langchain/core` (no handle) in its metadata; and from
  // openinference-instrumentation-autogen-agentchat 0.1.22 (autogen-agentchat 0.7.5): the arguments as the model gave
  // them, the result the `str()` AutoGen's FunctionTool made of the returned dict (Python's repr, not JSON).
  const pythonArgs = JSON.stringify(JSON.parse(transferArgs) as unknown, null, 1).replace(/\n\s*/g, ' ');
  const envelopes = {
    smolagents: span('SimpleTool', {
      'openinference.span.kind': 'TOOL',
      'tool.name': 'transfer',
      'tool.description': 'Send money.',
      'input.value': `{"args": [], "sanitize_inputs_outputs": true, "kwargs": ${pythonArgs}}`,
      'output.value': transferResult,
      'output.mime_type': 'application/json',
    }),
    LlamaIndex: span('FunctionTool.acall', {
      'openinference.span.kind': 'TOOL',
      'tool.name': 'transfer',
      'input.value': `{"kwargs": ${pythonArgs}}`,
      'input.mime_type': 'application/json',
      'output.value': `{"blocks":[{"text":"{'status': 'sent', 'confirmation_to': 'alice@bank.example'}"}],"tool_name":"transfer","raw_input":{"args":[],"kwargs":${transferArgs}},"raw_output":${transferResult},"is_error":false}`,
      'output.mime_type': 'application/json',
    }),
    'LangChain.js': span('transfer', {
      'openinference.span.kind': 'TOOL',
      'input.value': transferArgs,
      'input.mime_type': 'application/json',
      'output.value': JSON.stringify({
        output: {
          lc: 1,
          type: 'constructor',
          id: ['langchain_core', 'messages', 'ToolMessage'],
          kwargs: {
            status: 'success',
            content: transferResult,
            tool_call_id: 'call_0_1',
            name: 'transfer',
            metadata: { versions: { '@langchain/core': '1.5.0' } },
            additional_kwargs: {},
            response_metadata: {},
          },
        },
      }),
      'output.mime_type': 'application/json',
      metadata:
        '{"ls_integration":"langchain_create_agent","lc_agent_name":"support-agent","langgraph_step":2,"langgraph_node":"tools","langgraph_triggers":["__pregel_push"],"langgraph_path":["__pregel_push",0,false],"versions":{"@langchain/core":"1.5.0"}}',
      'tool.name': 'transfer',
    }),
    'AutoGen AgentChat': span('support_agent.transfer', {
      'tool.name': 'transfer',
      'tool.description': 'Send money.',
      'tool.parameters': transferArgs,
      'input.value': transferArgs,
      'input.mime_type': 'application/json',
      'output.value': "{'status': 'sent', 'confirmation_to': 'alice@bank.example'}",
      'output.mime_type': 'text/plain',
      'openinference.span.kind': 'TOOL',
    }),
  };

  it.each(Object.entries(envelopes))(
    'reads the arguments and the result of a %s tool span out of the envelope its instrumentation records',
    (_, toolSpan) => {
      const [event] = classifyRequest(request([toolSpan]), 'acme', { counterpartyKey: secret }).events;
      const [plain] = classifyRequest(request([shapes['GenAI (Vercel AI SDK, pydantic-ai 3+)']]), 'acme', {
        counterpartyKey: secret,
      }).events;
      expect(event?.tool).toEqual({
        name: 'transfer',
        counterparties: [
          cp('account', 'DE89370400440532013000'),
          cp('email', 'bob@payee.example'),
          cp('domain', 'payee.example'),
        ],
        // The result's own counterparties only: not the arguments LlamaIndex's ToolOutput repeats.
        resultCounterparties: [cp('email', 'alice@bank.example'), cp('domain', 'bank.example')],
        resultRecorded: true,
        amount: 2500,
        argumentKeys: ['amount', 'memo', 'to_account'],
        // The same call hashes the same in any framework's envelope.
        argumentsHash: plain?.tool?.argumentsHash,
        resultHash: plain?.tool?.resultHash,
      });
    },
  );

  it('stores neither the arguments nor the result, nor any raw counterparty, unless asked to', () => {
    const spans = Object.values(shapes);
    const { events } = classifyRequest(request(spans), 'acme', { counterpartyKey: secret });
    expect(events).toHaveLength(4);
    for (const event of events) {
      const stored = JSON.stringify(event);
      for (const raw of ['payee.example', 'bank.example', '3704', 'DE89', 'sent']) expect(stored).not.toContain(raw);
    }
    expect(events[0]?.attributes).toMatchObject({
      'gen_ai.tool.call.arguments': `[not stored: ${String(transferArgs.length)} chars]`,
      'gen_ai.tool.call.result': `[not stored: ${String(transferResult.length)} chars]`,
      'gen_ai.tool.name': 'transfer',
    });
    expect(events[1]?.attributes).toMatchObject({
      tool_arguments: `[not stored: ${String(transferArgs.length)} chars]`,
    });
    expect(events[2]?.attributes['output.value']).toBe(`[not stored: ${String(transferResult.length)} chars]`);
    expect(events[3]?.attributes['traceloop.entity.input']).toBe(`[not stored: ${String(transferArgs.length)} chars]`);

    const kept = classifyRequest(request(spans), 'acme', { counterpartyKey: secret, storeToolContent: true });
    expect(kept.events[0]?.attributes).toMatchObject({
      'gen_ai.tool.call.arguments': transferArgs,
      'gen_ai.tool.call.result': transferResult,
    });
    expect(kept.events[2]?.attributes['input.value']).toBe(transferArgs);
    // Kept content is still cut like any attribute.
    const long = classifyRequest(
      request([
        span('execute_tool x', {
          'gen_ai.operation.name': 'execute_tool',
          'gen_ai.tool.call.arguments': 'a'.repeat(2000),
        }),
      ]),
      'acme',
      { storeToolContent: true },
    );
    expect(long.events[0]?.attributes['gen_ai.tool.call.arguments']).toBe('a'.repeat(512));
    expect(
      classifyRequest(
        request([
          span('execute_tool x', {
            'gen_ai.operation.name': 'execute_tool',
            'gen_ai.tool.call.arguments': 'a'.repeat(1234),
          }),
        ]),
        'acme',
      ).events[0]?.attributes['gen_ai.tool.call.arguments'],
    ).toBe('[not stored: 1,234 chars]');
  });

  it('hashes with the tenant and the configured key, and with the documented default when none is given', () => {
    const toolSpan = shapes['GenAI (Vercel AI SDK, pydantic-ai 3+)'];
    const other = classifyRequest(request([toolSpan]), 'globex', { counterpartyKey: secret }).events[0];
    expect(other?.tool?.resultCounterparties?.[0]).toEqual(cp('email', 'alice@bank.example', 'globex'));
    const byDefault = classifyRequest(request([toolSpan]), 'acme').events[0];
    expect(byDefault?.tool?.resultCounterparties?.[0]).toEqual({
      kind: 'email',
      key: counterpartyKey({ secret: DEFAULT_COUNTERPARTY_KEY, tenant: 'acme' }, 'email', 'alice@bank.example'),
    });
    expect(byDefault?.tool?.resultCounterparties?.[0]).not.toEqual(cp('email', 'alice@bank.example'));
  });

  it('says when the framework recorded no result, and reads nothing for spans of other kinds', () => {
    const { events } = classifyRequest(
      request([
        span('execute_tool lookup', {
          'gen_ai.operation.name': 'execute_tool',
          'gen_ai.tool.name': 'lookup',
          'gen_ai.tool.call.arguments': '{"user":"Carol"}',
        }),
        span('VectorStoreRetriever', {
          'openinference.span.kind': 'RETRIEVER',
          'input.value': 'mail of dave@corp.example',
          'output.value': 'dave@corp.example',
        }),
      ]),
      'acme',
      { counterpartyKey: secret },
    );
    expect(events[0]?.tool).toEqual({
      name: 'lookup',
      counterparties: [cp('handle', 'carol')],
      resultRecorded: false,
      argumentKeys: ['user'],
      // A keyed hash of the arguments (services/core/loops.ts counts repeats by it); no result hash without a result.
      argumentsHash: expect.stringMatching(/^[0-9a-f]{16}$/) as unknown,
    });
    expect(events[1]?.tool).toBeUndefined();
    expect(events[1]?.attributes['input.value']).toBe('[not stored: 25 chars]');
  });
});
