/**
 * Classification throughput (services/core/classify.ts, `classifyRequest`) on decoded requests of 100 agent spans:
 * tool calls in the shapes real frameworks record them (GenAI / Vercel AI SDK with `gen_ai.tool.call.arguments`
 * and `gen_ai.tool.call.result`, pydantic-ai 2 `tool_arguments` / `tool_response`, OpenInference `input.value` /
 * `output.value`), their arguments JSON naming recipients, accounts, amounts and URLs; database reads and privilege
 * changes beside them; the usual SDK resource. Two workloads: typical results (4 in 5 a small status object, the
 * rest a list of 2–40 customer rows: 0.3–6 KB of JSON or text with mail addresses and links), and every result such
 * a list. The cases cycle through REQUESTS different requests.
 *
 *   node test/bench/classify.bench.ts                 # ~3 s per case
 *   BENCH_SECONDS=5 node test/bench/classify.bench.ts
 *   BENCH_CLASSIFY=/elsewhere/services/core/classify.ts node test/bench/classify.bench.ts   # another version
 *
 * Prints spans/s and µs per request, per workload, for: all spans, and tool spans only. To compare with the
 * classifier of another commit: `git archive <commit> services/core schemas | tar -x -C /tmp/before`, then
 * BENCH_CLASSIFY=/tmp/before/services/core/classify.ts.
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { OtlpKeyValue, OtlpSpan, OtlpTraceRequest } from '../../schemas/otlp.ts';

type Classify = (request: OtlpTraceRequest, tenant: string, options?: object) => { events: unknown[] };
const modulePath = process.env.BENCH_CLASSIFY;
const { classifyRequest } = (await import(
  modulePath === undefined ? '../../services/core/classify.ts' : pathToFileURL(modulePath).href
)) as { classifyRequest: Classify };

const SPANS_PER_REQUEST = 100;
const REQUESTS = 32;
const SECONDS = Number(process.env.BENCH_SECONDS ?? '3');

let seed = 42;
const random = (): number => {
  seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
  return seed / 2_147_483_648;
};
const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
const hex = (n: number): string => Array.from({ length: n }, () => Math.floor(random() * 16).toString(16)).join('');

const kv = (key: string, value: string | number | boolean): OtlpKeyValue =>
  typeof value === 'string'
    ? { key, value: { stringValue: value } }
    : typeof value === 'boolean'
      ? { key, value: { boolValue: value } }
      : { key, value: { intValue: value } };

const PEOPLE = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];
const DOMAINS = ['corp.example', 'shop.example', 'partner.example.org'];
const IBANS = ['DE89 3704 0044 0532 0130 00', 'GB82 WEST 1234 5698 7654 32', 'FR14 2004 1010 0505 0001 3M02 606'];

function toolArguments(tool: string): string {
  const person = `${pick(PEOPLE)}@${pick(DOMAINS)}`;
  switch (tool) {
    case 'send_email':
      return JSON.stringify({
        to: person,
        cc: [`${pick(PEOPLE)}@${pick(DOMAINS)}`],
        subject: 'Your refund',
        body: 'Hello,\n'.repeat(20),
      });
    case 'transfer_funds':
      return JSON.stringify({
        to_account: pick(IBANS),
        amount: (random() * 5000).toFixed(2),
        currency: 'EUR',
        memo: `invoice ${hex(6)}`,
      });
    case 'http_get':
      return JSON.stringify({
        url: `https://api.${pick(DOMAINS)}/v2/orders/${hex(8)}`,
        headers: { accept: 'application/json' },
      });
    case 'post_message':
      return JSON.stringify({ channel: '#support', text: `@${pick(PEOPLE)} please check ticket ${hex(5)}` });
    default:
      return JSON.stringify({ order_id: hex(10), limit: 20, include: ['history', 'notes'] });
  }
}

/** A result: usually a small status object; a list of 2–40 customer rows in 1 of 5 (always when `lists`). */
function toolResult(lists: boolean): string {
  if (!lists && random() < 0.8) {
    return JSON.stringify({
      status: pick(['ok', 'sent', 'queued']),
      id: hex(12),
      ...(random() < 0.5 ? { confirmation_to: `${pick(PEOPLE)}@${pick(DOMAINS)}` } : {}),
    });
  }
  const rows = Array.from({ length: 2 + Math.floor(random() * 40) }, (_, i) => ({
    id: i,
    name: `Customer ${hex(4)}`,
    email: `${pick(PEOPLE)}${String(i)}@${pick(DOMAINS)}`,
    note: 'See https://help.shop.example/articles/123 for details.',
  }));
  return random() < 0.5
    ? JSON.stringify({ rows })
    : rows.map((row) => `${row.name} <${row.email}> ${row.note}`).join('\n');
}

function span(i: number, traceId: string, lists: boolean): OtlpSpan {
  const variant = i % 5;
  const tool = pick(['send_email', 'transfer_funds', 'http_get', 'post_message', 'get_order']);
  const args = toolArguments(tool);
  const attributes: OtlpKeyValue[] = [
    kv('tripline.task.id', `task-${traceId.slice(0, 8)}`),
    kv('tripline.task.type', 'support'),
  ];
  let name = `execute_tool ${tool}`;
  if (variant === 0) {
    attributes.push(
      kv('gen_ai.operation.name', 'execute_tool'),
      kv('gen_ai.tool.name', tool),
      kv('gen_ai.tool.call.id', `call_${hex(12)}`),
      kv('gen_ai.tool.type', 'function'),
      kv('gen_ai.tool.call.arguments', args),
      kv('gen_ai.tool.call.result', toolResult(lists)),
    );
  } else if (variant === 1) {
    name = 'running tool';
    attributes.push(
      kv('gen_ai.operation.name', 'execute_tool'),
      kv('gen_ai.tool.name', tool),
      kv('tool_arguments', args),
      kv('tool_response', toolResult(lists)),
      kv('logfire.msg', `running tool: ${tool}`),
    );
  } else if (variant === 2) {
    name = tool;
    attributes.push(
      kv('openinference.span.kind', 'TOOL'),
      kv('tool.name', tool),
      kv('input.value', args),
      kv('input.mime_type', 'application/json'),
      kv('output.value', toolResult(lists)),
    );
  } else if (variant === 3) {
    name = 'SELECT crm.customers';
    attributes.push(
      kv('db.system.name', 'postgresql'),
      kv('db.namespace', 'crm'),
      kv('db.collection.name', 'customers'),
      kv('db.operation.name', 'SELECT'),
      kv('db.response.returned_rows', 1 + Math.floor(random() * 40)),
      kv('server.address', 'crm-db.internal'),
    );
  } else {
    name = 'grant scope';
    attributes.push(
      kv('tripline.privilege.action', 'grant'),
      kv('tripline.privilege.scopes_before', 'tickets:read'),
      kv('tripline.privilege.scopes_after', 'tickets:read refunds:create'),
    );
  }
  return {
    traceId,
    spanId: hex(16),
    parentSpanId: hex(16),
    name,
    kind: 1,
    startTimeUnixNano: '1795900000123456789',
    endTimeUnixNano: '1795900000223456789',
    attributes,
    events: [],
    links: [],
  };
}

function request(lists: boolean): OtlpTraceRequest {
  const traceId = hex(32);
  return {
    resourceSpans: [
      {
        resource: {
          attributes: [
            kv('service.name', 'support-agent'),
            kv('service.version', '2.14.0'),
            kv('telemetry.sdk.language', 'nodejs'),
            kv('host.name', 'agent-worker-7d9f8c6b5-x2k4q'),
            kv('gen_ai.agent.id', 'agent-0042'),
          ],
        },
        scopeSpans: [{ spans: Array.from({ length: SPANS_PER_REQUEST }, (_, i) => span(i, traceId, lists)) }],
      },
    ],
  };
}

function run(label: string, requests: OtlpTraceRequest[], spansPer: number): void {
  const at = (i: number): OtlpTraceRequest => requests[i % requests.length] as OtlpTraceRequest;
  const warmUntil = performance.now() + 1000;
  for (let i = 0; performance.now() < warmUntil; i++) classifyRequest(at(i), 'acme');
  let ops = 0;
  const start = performance.now();
  const stop = start + SECONDS * 1000;
  let now = start;
  while (now < stop) {
    for (let i = 0; i < requests.length; i++) classifyRequest(at(i), 'acme');
    ops += requests.length;
    now = performance.now();
  }
  const seconds = (now - start) / 1000;
  console.log(
    `${label.padEnd(36)} ${Math.round((ops * spansPer) / seconds)
      .toLocaleString('en-US')
      .padStart(10)} spans/s  ${((seconds * 1e6) / ops).toFixed(0).padStart(7)} µs/request`,
  );
}

const toolOnly = (requests: OtlpTraceRequest[]): OtlpTraceRequest[] =>
  requests.map((r) => ({
    resourceSpans: r.resourceSpans.map((rs) => ({
      ...rs,
      scopeSpans: rs.scopeSpans.map((ss) => ({ spans: ss.spans.filter((_, i) => i % 5 < 3) })),
    })),
  }));
const kib = (requests: OtlpTraceRequest[]): number =>
  Math.round(requests.reduce((sum, r) => sum + JSON.stringify(r).length, 0) / requests.length / 1024);

console.log(
  `classify benchmark (${modulePath ?? 'services/core/classify.ts'}): ${String(REQUESTS)} requests of ${String(SPANS_PER_REQUEST)} spans, 3/5 tool calls; Node ${process.version}; ${String(SECONDS)} s per case`,
);
for (const lists of [false, true]) {
  const requests = Array.from({ length: REQUESTS }, () => request(lists));
  const label = lists ? 'every result a customer list' : 'typical results';
  console.log(`\n${label} (~${String(kib(requests))} KiB per request as JSON)`);
  run('classifyRequest, all spans', requests, SPANS_PER_REQUEST);
  run('classifyRequest, tool spans only', toolOnly(requests), (SPANS_PER_REQUEST * 3) / 5);
}
