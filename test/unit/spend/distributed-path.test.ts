/**
 * Model calls on the distributed path without a broker: the gateway's byte router sends chat spans (current and
 * older shape) to the tool_calls topic, the processor's record decoding classifies them again into usages, and a
 * processor over those usages revokes the task over its budget. And the spend settings from the environment:
 * the shipped table and budgets by default, a bad file refused at start-up naming its variable.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { OtlpKeyValue, OtlpSpan, OtlpTraceRequest } from '../../../schemas/otlp.ts';
import type { ModelUsage } from '../../../schemas/events.ts';
import { readSpendConfig } from '../../../services/app/spend-config.ts';
import { decodeSpanRecord } from '../../../services/bus/kafka/span-record-decoding.ts';
import { TENANT_HEADER } from '../../../services/bus/kafka/span-record-encoding.ts';
import { encodeTraceRequest } from '../../../services/otlp/codec.ts';
import { routeTraceRequest } from '../../../services/otlp/route.ts';
import { TriplineError } from '../../../services/shared/errors.ts';
import { revocationsOf, startProcessor } from '../processor/harness.ts';

const TOPICS = { tool_call: 'tools', data_access: 'data', privilege_change: 'privileges' };
const TRACE = '5b8efff798038103d269b633813fc60c';
const NOW_NS = BigInt(Date.now() - 60_000) * 1_000_000n;

const kv = (key: string, value: string | number): OtlpKeyValue => ({
  key,
  value: typeof value === 'string' ? { stringValue: value } : { intValue: value },
});

function span(id: number, name: string, attributes: OtlpKeyValue[], parent = 'eee19b7ec3c1b174'): OtlpSpan {
  return {
    traceId: TRACE,
    spanId: id.toString(16).padStart(16, '0'),
    parentSpanId: parent,
    name,
    kind: 3,
    startTimeUnixNano: String(NOW_NS + BigInt(id) * 1_000_000n),
    endTimeUnixNano: String(NOW_NS + BigInt(id) * 1_000_000n + 500_000n),
    attributes,
    events: [],
    links: [],
  };
}

const request: OtlpTraceRequest = {
  resourceSpans: [
    {
      resource: { attributes: [kv('service.name', 'router-agent'), kv('tripline.task.type', 'routing')] },
      scopeSpans: [
        {
          scope: { name: 'test', attributes: [] },
          spans: [
            span(1, 'chat gpt-4o', [
              kv('gen_ai.operation.name', 'chat'),
              kv('gen_ai.request.model', 'gpt-4o'),
              kv('gen_ai.usage.input_tokens', 1_000_000),
              kv('gen_ai.usage.output_tokens', 100_000),
            ]),
            span(2, 'openai.chat', [
              kv('gen_ai.system', 'openai'),
              kv('gen_ai.request.model', 'gpt-4o'),
              kv('gen_ai.usage.prompt_tokens', 1_000_000),
              kv('gen_ai.usage.completion_tokens', 100_000),
            ]),
            span(3, 'GET /health', []),
            span(4, 'task routing', [kv('tripline.task.id', 'routed-1')], ''),
          ],
        },
      ],
    },
  ],
};

describe('model calls through the byte router and the Kafka record decoding', () => {
  it('routes both shapes to the tool_calls topic, decodes them into usages, and a processor revokes over budget', async () => {
    const routed = routeTraceRequest(encodeTraceRequest(request), TOPICS, 900_000);
    expect({
      events: routed.events,
      boundaries: routed.boundaries,
      usageOnly: routed.usageOnly,
      dropped: routed.dropped,
    }).toEqual({ events: 0, boundaries: 1, usageOnly: 2, dropped: 1 });
    expect(routed.records.map((record) => [record.topic, record.key, record.spans])).toEqual([['tools', TRACE, 3]]);
    const usages: ModelUsage[] = [];
    const boundaries = [];
    for (const record of routed.records) {
      const decoded = decodeSpanRecord(Buffer.from(record.value), { [TENANT_HEADER]: 'acme' });
      if (!decoded.ok) throw new Error(decoded.reason);
      usages.push(...(decoded.events.usages ?? []));
      boundaries.push(...decoded.events.boundaries);
    }
    expect(usages.map((usage) => [usage.tenant, usage.model, usage.inputTokens, usage.outputTokens])).toEqual([
      ['acme', 'gpt-4o', 1_000_000, 100_000],
      ['acme', 'gpt-4o', 1_000_000, 100_000],
    ]);

    const spend = readSpendConfig({});
    const h = await startProcessor({
      spend: {
        prices: spend.prices,
        budgets: [
          { id: 'routing', scope: 'task', match: 'routing', usd: 5, warnAt: 0.8, windowMs: null, window: 'task' },
        ],
      },
    });
    await h.processor.handle({ events: [], boundaries, usages });
    // Each call: 1M in × $2.50 + 100k out × $10 = $3.50; the second reaches $7.00.
    expect(revocationsOf(h.messages).map((revocation) => [revocation.taskId, revocation.reasons])).toEqual([
      [
        'routed-1',
        [
          'task budget "routing" $5.00 per task of type routing: spent $7.00 (2.00M tokens in, 200k out, gpt-4o) in this task',
        ],
      ],
    ]);
    await h.processor.stop();
  });
});

describe('spend settings from the environment', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tripline-spend-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the shipped table and budgets by default, and an operator table over the shipped one', () => {
    const shipped = readSpendConfig({});
    expect(shipped.prices.date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(shipped.budgets).toEqual([expect.objectContaining({ id: 'default-task', scope: 'task', usd: 25 })]);
    const prices = join(dir, 'prices.json');
    writeFileSync(prices, JSON.stringify({ models: { 'our-model': { input: 1, output: 2 } } }));
    const mine = readSpendConfig({ TRIPLINE_MODEL_PRICES: prices });
    expect(mine.prices.models.get('our-model')).toEqual({ input: 1, output: 2 });
    expect(mine.prices.models.get('gpt-4o')).toEqual(shipped.prices.models.get('gpt-4o'));
  });

  it('refuses a bad file at start-up with a CONFIG_INVALID error naming the variable', () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ budgets: [{ scope: 'agent', usd: 5 }] }));
    const attempts: [Record<string, string>, RegExp][] = [
      [
        { TRIPLINE_BUDGETS: bad },
        /^TRIPLINE_BUDGETS=".*bad\.json" is invalid: expected a budgets file: budgets\[0\]\.window/,
      ],
      [
        { TRIPLINE_BUDGETS: join(dir, 'missing.json') },
        /^TRIPLINE_BUDGETS=.* is invalid: expected a readable file \(ENOENT\)/,
      ],
      [{ TRIPLINE_MODEL_PRICES: bad }, /^TRIPLINE_MODEL_PRICES=.* is invalid: expected a price table: /],
    ];
    for (const [env, message] of attempts) {
      let caught: unknown;
      try {
        readSpendConfig(env);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(TriplineError);
      expect((caught as TriplineError).code).toBe('CONFIG_INVALID');
      expect((caught as TriplineError).message).toMatch(message);
    }
  });
});
