/**
 * Google ADK's own spans (google-adk 2.15.0, test/helpers/adk-run.ts) as classification reads them, under both of
 * its span schemas: the tool calls with their arguments and results, the parallel calls' merged summary span not
 * counted, the model calls counted once each with their tokens, and the agent's name as its claim.
 */
import { describe, expect, it } from 'vitest';
import { classifyRequest } from '../../services/core/classify.ts';
import { encodeTraceRequest } from '../../services/otlp/codec.ts';
import { routeTraceRequest } from '../../services/otlp/route.ts';
import {
  ADK_AGENT,
  ADK_EXFIL_URL,
  ADK_INPUT_TOKENS,
  ADK_OUTPUT_TOKENS,
  ADK_TOOL_CALLS,
  adkRequest,
} from '../helpers/adk-run.ts';
import type { AdkSchema } from '../helpers/adk-run.ts';
import { request, span } from '../helpers/otlp-spans.ts';

const SCHEMAS: AdkSchema[] = ['semconv', 'legacy'];
const TOPICS = {
  tool_call: 'tools',
  data_access: 'data',
  privilege_change: 'privileges',
  alerts: 'alerts',
  revocations: 'revocations',
  deadLetter: 'dlq',
};

describe.each(SCHEMAS)('a Google ADK run, %s span schema', (schema) => {
  const batch = classifyRequest(adkRequest(schema), 'acme');

  it('is one tool call per function call: the merged summary of the parallel calls is none', () => {
    expect(batch.events.map((event) => event.tool?.name)).toEqual(ADK_TOOL_CALLS);
    expect(batch.events.every((event) => event.kind === 'tool_call')).toBe(true);
    expect(batch.events.map((event) => event.name)).not.toContain('execute_tool (merged)');
  });

  it("reads each call's arguments and result (the exfiltration's target from its arguments)", () => {
    const post = batch.events.find((event) => event.tool?.name === 'http_post')?.tool;
    expect(post).toMatchObject({
      target: ADK_EXFIL_URL,
      argumentKeys: ['body', 'url'],
      resultRecorded: true,
      callId: 'call_0_1_0',
      type: 'FunctionTool',
    });
    const refund = batch.events.find((event) => event.tool?.name === 'issue_refund')?.tool;
    expect(refund).toMatchObject({ argumentKeys: ['amount', 'order_id'], amount: 5, resultRecorded: true });
  });

  it('keeps the content of the calls out of the stored attributes', () => {
    const post = batch.events.find((event) => event.tool?.name === 'http_post');
    const stored = Object.entries(post?.attributes ?? {}).filter(([key]) =>
      /tool\.call\.(arguments|result)$|tool_call_args$|tool_response$/.test(key),
    );
    expect(stored).toHaveLength(2);
    for (const [, value] of stored) expect(value).toMatch(/^\[not stored: \d+ chars\]$/);
    expect(JSON.stringify(post?.attributes)).not.toContain('exfil.attacker.example');
  });

  it('counts one model call per turn, with its tokens (the legacy `call_llm` around each is not a second)', () => {
    expect(batch.usages.map((usage) => [usage.operation, usage.inputTokens, usage.outputTokens])).toEqual(
      ADK_INPUT_TOKENS.map((tokens) => ['generate_content', tokens, ADK_OUTPUT_TOKENS]),
    );
    expect(batch.usages.every((usage) => usage.model === 'scripted-model')).toBe(true);
  });

  it("takes the agent's name as the agent its spans claim (the token's binding decides whether it is believed)", () => {
    expect(batch.events.every((event) => event.claims?.agentId === ADK_AGENT && event.agentId === ADK_AGENT)).toBe(
      true,
    );
  });

  it("is routed by the gateway's byte router as classification reads it", () => {
    const routed = routeTraceRequest(encodeTraceRequest(adkRequest(schema)), TOPICS, 900_000);
    expect({ events: routed.events, boundaries: routed.boundaries, usageOnly: routed.usageOnly }).toEqual({
      events: batch.events.length,
      boundaries: batch.boundaries.length,
      usageOnly: batch.usageOnly,
    });
    expect(routed.dropped).toBe(batch.dropped);
  });
});

describe('the merged-tools rule', () => {
  it('leaves a tool span that only says `execute_tool` in its name (no tool name attribute) a tool call', () => {
    const { events } = classifyRequest(request([span('execute_tool (merged)', {})]), 'acme');
    expect(events.map((event) => event.kind)).toEqual(['tool_call']);
  });

  // As ADK 2.15 traced a model's call of a function it named `(merged tools)`: the span is named after the tool.
  const hallucinated = span('execute_tool (merged tools)', {
    'gen_ai.operation.name': 'execute_tool',
    'gen_ai.tool.name': '(merged tools)',
    'gen_ai.tool.type': 'BaseTool',
    'gen_ai.agent.name': ADK_AGENT,
    'error.type': 'ValueError',
    'gen_ai.tool.call.id': 'call_0_0_0',
  });

  it('keeps a call of a tool the model named `(merged tools)` a tool call', () => {
    const { events } = classifyRequest(request([hallucinated]), 'acme');
    expect(events.map((event) => [event.kind, event.tool?.name, event.error])).toEqual([
      ['tool_call', '(merged tools)', true],
    ]);
  });

  it("is the byte router's too", () => {
    const routed = routeTraceRequest(encodeTraceRequest(request([hallucinated])), TOPICS, 900_000);
    expect(routed.events).toBe(1);
  });

  it('yields to an explicit `tripline.event.kind`', () => {
    const { events } = classifyRequest(
      request([
        span('execute_tool (merged)', {
          'tripline.event.kind': 'tool_call',
          'gen_ai.operation.name': 'execute_tool',
          'gen_ai.tool.name': '(merged tools)',
        }),
      ]),
      'acme',
    );
    expect(events.map((event) => event.kind)).toEqual(['tool_call']);
  });
});
