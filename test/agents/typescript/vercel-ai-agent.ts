/**
 * A test agent on the Vercel AI SDK (`ai` 7 with its OpenTelemetry integration `@ai-sdk/otel`), exactly as a
 * user's agent is written: `generateText` with tools, a scripted model (`MockLanguageModelV4` from `ai/test`,
 * no network), spans exported by the OpenTelemetry Node SDK over OTLP/HTTP protobuf with the agent token.
 *
 *   node test/agents/typescript/vercel-ai-agent.ts --endpoint <OTLP base url> --token <agent token>
 *        --plan <plan.json> --mode wrapper|trace [--agent <name>]
 *
 * The plan is a JSON list of tasks `{ label, taskType, taskId?, calls: [{ tool, args }] }`; the model calls the
 * planned tools in order, one per step, then answers. Mode `wrapper` runs each task inside a span of this
 * script's tracer carrying `tripline.task.id` and `tripline.task.type`; mode `trace` declares nothing but the
 * task type, once, as a resource attribute (every task of the plan must then have the same type), and each
 * task is its own trace. `--agent` names the agent (the AI SDK's `functionId`, and `<name>-vercel-ai` its
 * `service.name`; default `support-agent`). After each task a JSON line `{"label", "taskId", "traceId"}` goes to stdout.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { OpenTelemetry } from '@ai-sdk/otel';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { Context } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace';
import { generateText, isStepCount, jsonSchema, registerTelemetry, tool } from 'ai';
import { MockLanguageModelV4 } from 'ai/test';

interface PlannedCall {
  tool: string;
  args: Record<string, unknown>;
}

interface PlannedTask {
  label: string;
  taskType: string;
  taskId?: string | null;
  calls: PlannedCall[];
}

const { values: options } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    token: { type: 'string' },
    plan: { type: 'string' },
    mode: { type: 'string', default: 'wrapper' },
    agent: { type: 'string', default: 'support-agent' },
  },
  strict: true,
});
const { endpoint, token, plan: planPath, mode, agent } = options;
if (
  endpoint === undefined ||
  token === undefined ||
  planPath === undefined ||
  (mode !== 'wrapper' && mode !== 'trace')
) {
  console.error('usage: vercel-ai-agent.ts --endpoint <url> --token <token> --plan <plan.json> --mode wrapper|trace');
  process.exit(2);
}
const plan = JSON.parse(readFileSync(planPath, 'utf8')) as PlannedTask[];
const processTaskType = plan[0]?.taskType;
if (mode === 'trace' && plan.some((task) => task.taskType !== processTaskType)) {
  console.error('mode trace: the task type is one per process, so every task of the plan needs the same taskType');
  process.exit(2);
}

/** Not part of a user's setup: remembers each trace's root span, so the script can print the trace id. */
class RootSpans implements SpanProcessor {
  readonly traceIds: string[] = [];
  onStart(span: Span, _parent: Context): void {
    if (span.parentSpanContext === undefined) this.traceIds.push(span.spanContext().traceId);
  }
  onEnd(_span: ReadableSpan): void {}
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
const roots = new RootSpans();

// ---- The user's setup: an OpenTelemetry SDK exporting to Tripline, and the AI SDK's OpenTelemetry integration.
const sdk = new NodeSDK({
  resource: resourceFromAttributes({
    'service.name': `${agent}-vercel-ai`,
    ...(mode === 'trace' && processTaskType !== undefined ? { 'tripline.task.type': processTaskType } : {}),
  }),
  spanProcessors: [
    roots,
    new BatchSpanProcessor({
      exporter: new OTLPTraceExporter({
        url: `${endpoint.replace(/\/$/, '')}/v1/traces`,
        headers: { authorization: `Bearer ${token}` },
      }),
    }),
  ],
});
sdk.start();
registerTelemetry(new OpenTelemetry());
// ----

interface Invoice {
  id: string;
  supplier: string;
  email: string;
  iban: string;
  amount: number;
  note?: string;
}
/** The suppliers' invoices (shared with the Python agents and the tests), the poisoned one with its note. */
const invoiceFile = JSON.parse(readFileSync(new URL('../invoices.json', import.meta.url), 'utf8')) as {
  invoices: Invoice[];
  poisoned: Invoice;
};
const invoices = new Map(
  [...invoiceFile.invoices, invoiceFile.poisoned].map(({ id, supplier, email, iban, amount, note }) => [
    id,
    { id, supplier, email, iban, amount, ...(note === undefined ? {} : { note }) },
  ]),
);

const orders = new Map<string, { order_id: string; amount: number; status: string }>();

const tools = {
  get_order: tool({
    description: 'Look up an order by its id.',
    inputSchema: jsonSchema<{ order_id: string }>({
      type: 'object',
      properties: { order_id: { type: 'string' } },
      required: ['order_id'],
    }),
    execute: ({ order_id }) => {
      const order = orders.get(order_id) ?? { order_id, amount: 42.5, status: 'delivered' };
      orders.set(order_id, order);
      return Promise.resolve(order);
    },
  }),
  issue_refund: tool({
    description: 'Refund (part of) an order.',
    inputSchema: jsonSchema<{ order_id: string; amount: number }>({
      type: 'object',
      properties: { order_id: { type: 'string' }, amount: { type: 'number' } },
      required: ['order_id', 'amount'],
    }),
    execute: ({ order_id, amount }) => Promise.resolve({ order_id, refunded: amount, status: 'refunded' }),
  }),
  export_customers: tool({
    description: 'Export (the first `limit` rows of) the customer list.',
    inputSchema: jsonSchema<{ limit?: number }>({ type: 'object', properties: { limit: { type: 'integer' } } }),
    execute: ({ limit = 3 }) =>
      Promise.resolve({
        customers: Array.from({ length: limit }, (_, n) => ({
          id: `c-${String(n + 1)}`,
          email: `customer${String(n + 1)}@shop.example`,
        })),
      }),
  }),
  send_invoice: tool({
    description: 'Mail an invoice to a customer, payable to an account.',
    inputSchema: jsonSchema<{ to: string; account: string; amount: number }>({
      type: 'object',
      properties: { to: { type: 'string' }, account: { type: 'string' }, amount: { type: 'number' } },
      required: ['to', 'account', 'amount'],
    }),
    // The result names the customer again and the ledger's address: counterparties of the call's result.
    execute: ({ to }) => Promise.resolve({ status: 'sent', sent_to: to, copy_to: 'ledger@books.example' }),
  }),
  read_invoice: tool({
    description: "Read a supplier's invoice: who sent it, the account to pay and the amount due.",
    inputSchema: jsonSchema<{ invoice_id: string }>({
      type: 'object',
      properties: { invoice_id: { type: 'string' } },
      required: ['invoice_id'],
    }),
    execute: ({ invoice_id }): Promise<Record<string, unknown>> => {
      const invoice = invoices.get(invoice_id);
      if (invoice === undefined) return Promise.resolve({ error: `no invoice ${invoice_id}` });
      const { id, supplier, email, iban, amount, note } = invoice;
      return Promise.resolve({
        invoice_id: id,
        supplier,
        contact: email,
        pay_to_iban: iban,
        amount_due: amount,
        ...(note === undefined ? {} : { note }),
      });
    },
  }),
  pay_invoice: tool({
    description: 'Pay an invoice to an account.',
    inputSchema: jsonSchema<{ invoice_id: string; iban: string; amount: number }>({
      type: 'object',
      properties: { invoice_id: { type: 'string' }, iban: { type: 'string' }, amount: { type: 'number' } },
      required: ['invoice_id', 'iban', 'amount'],
    }),
    // A stub: no money moves.
    execute: ({ invoice_id, amount }) => Promise.resolve({ invoice_id, paid: amount, status: 'paid' }),
  }),
  http_post: tool({
    description: 'POST a body to a URL.',
    inputSchema: jsonSchema<{ url: string; body: string }>({
      type: 'object',
      properties: { url: { type: 'string' }, body: { type: 'string' } },
      required: ['url', 'body'],
    }),
    // No real network: the test only needs the call and its arguments.
    execute: ({ url, body }) => Promise.resolve({ url, status: 200, bytes: body.length }),
  }),
};

const usage = {
  inputTokens: { total: 20, noCache: 20, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 10, text: 10, reasoning: undefined },
};

/** A model that calls the task's planned tools in order, one per step, then answers. */
function scriptedModel(task: PlannedTask, index: number): MockLanguageModelV4 {
  let step = 0;
  return new MockLanguageModelV4({
    provider: 'scripted',
    modelId: 'scripted-model',
    doGenerate: () => {
      const call = task.calls[step];
      const id = `call_${index}_${step}`;
      step += 1;
      return Promise.resolve(
        call === undefined
          ? {
              content: [{ type: 'text' as const, text: `Done: ${task.label}.` }],
              finishReason: { unified: 'stop' as const, raw: 'stop' },
              usage,
              warnings: [],
            }
          : {
              content: [
                { type: 'tool-call' as const, toolCallId: id, toolName: call.tool, input: JSON.stringify(call.args) },
              ],
              finishReason: { unified: 'tool-calls' as const, raw: 'tool_calls' },
              usage,
              warnings: [],
            },
      );
    },
  });
}

async function runTask(task: PlannedTask, index: number): Promise<void> {
  await generateText({
    model: scriptedModel(task, index),
    instructions: 'You are a customer-support agent.',
    prompt: `Handle ticket #${index}.`,
    tools,
    stopWhen: isStepCount(task.calls.length + 1),
    telemetry: { functionId: agent },
  });
}

const tracer = trace.getTracer('support-agent');
for (const [index, task] of plan.entries()) {
  const taskId = mode === 'wrapper' ? (task.taskId ?? `task-${index}`) : null;
  let traceId: string | undefined;
  if (taskId !== null) {
    // Mode wrapper: the user's own span around the run, the only place the task id is declared.
    await tracer.startActiveSpan(
      `support ticket ${index}`,
      { root: true, attributes: { 'tripline.task.id': taskId, 'tripline.task.type': task.taskType } },
      async (span) => {
        traceId = span.spanContext().traceId;
        try {
          await runTask(task, index);
        } catch (error) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: String(error) });
          throw error;
        } finally {
          span.end();
        }
      },
    );
  } else {
    const before = roots.traceIds.length;
    await runTask(task, index);
    traceId = roots.traceIds[before];
  }
  if (traceId === undefined) throw new Error(`task ${index} started no trace`);
  console.log(JSON.stringify({ label: task.label, taskId, traceId }));
}
await sdk.shutdown();
