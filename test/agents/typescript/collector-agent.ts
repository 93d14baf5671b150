/**
 * An agent instrumented with the OpenTelemetry SDK that exports to a collector, not to Tripline: each task is a
 * root span naming its task id and type with one OTel GenAI `execute_tool` child. Exports OTLP/HTTP protobuf with
 * the bearer token it was given (none with `--token ''`) and any extra headers (`--header name=value`, e.g. a
 * tenant it would like to be). Prints one JSON line: how many spans the endpoint took and refused, and why
 * (test/integration/auth/collector-auth.test.ts).
 *
 *   node collector-agent.ts --endpoint <otlp url> --token <token> --agent <id> --tasks <id,id,...> [--header k=v]
 */
import { parseArgs } from 'node:util';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { context, trace } from '@opentelemetry/api';

const { values } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    token: { type: 'string' },
    agent: { type: 'string' },
    tasks: { type: 'string' },
    header: { type: 'string', multiple: true },
  },
});
const endpoint = values.endpoint ?? '';
const headers: Record<string, string> = {};
if (values.token !== undefined && values.token !== '') headers.authorization = `Bearer ${values.token}`;
for (const pair of values.header ?? []) {
  const at = pair.indexOf('=');
  headers[pair.slice(0, at)] = pair.slice(at + 1);
}

/** The SDK's exporter, counting what the endpoint took and refused (a refusal always carries its error). */
const outcome = { exported: 0, failed: 0, errors: [] as string[] };
class CountingExporter extends OTLPTraceExporter {
  override export(spans: ReadableSpan[], done: Parameters<OTLPTraceExporter['export']>[1]): void {
    super.export(spans, (result) => {
      if (result.error === undefined) outcome.exported += spans.length;
      else {
        outcome.failed += spans.length;
        outcome.errors.push(result.error.message);
      }
      done(result);
    });
  }
}
const counting = new CountingExporter({ url: `${endpoint.replace(/\/$/, '')}/v1/traces`, headers });

const provider = new TracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'collector-agent' }),
  spanProcessors: [new SimpleSpanProcessor({ exporter: counting })],
});
const tracer = provider.getTracer('collector-agent');

for (const taskId of (values.tasks ?? '').split(',').filter((id) => id !== '')) {
  const attributes = {
    'gen_ai.agent.id': values.agent ?? 'collector-agent',
    'tripline.task.id': taskId,
    'tripline.task.type': 'summarize_ticket',
  };
  const root = tracer.startSpan('invoke_agent summarize', { attributes });
  tracer
    .startSpan(
      'execute_tool get_ticket',
      {
        attributes: {
          ...attributes,
          'gen_ai.operation.name': 'execute_tool',
          'gen_ai.tool.name': 'get_ticket',
          'gen_ai.tool.call.id': `${taskId}-call-1`,
        },
      },
      trace.setSpan(context.active(), root),
    )
    .end();
  root.end();
}
// A refused export rejects the flush too; the outcome has already counted it.
await provider.forceFlush().catch(() => undefined);
await provider.shutdown().catch(() => undefined);
process.stdout.write(`${JSON.stringify(outcome)}\n`);
