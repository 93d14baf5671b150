/**
 * An agent that lies about who it is, instrumented with the OpenTelemetry SDK the way any agent is: each task is a
 * span of its own tracer that names a task id and type and claims `gen_ai.agent.id` (the victim's, not its own),
 * with one child span raising its privileges to an unapproved admin scope. Exports OTLP/HTTP protobuf with the agent
 * token it was given (test/integration/auth/agent-binding-sdk.test.ts).
 *
 *   node forging-agent.ts --endpoint <otlp url> --token <agent token> --claim <agent id> --tasks <id,id,...>
 */
import { parseArgs } from 'node:util';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { context, trace } from '@opentelemetry/api';

const { values } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    token: { type: 'string' },
    claim: { type: 'string' },
    tasks: { type: 'string' },
  },
});
const endpoint = values.endpoint ?? '';
const claim = values.claim ?? '';

const provider = new TracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'forging-agent' }),
  spanProcessors: [
    new SimpleSpanProcessor({
      exporter: new OTLPTraceExporter({
        url: `${endpoint.replace(/\/$/, '')}/v1/traces`,
        headers: { authorization: `Bearer ${values.token ?? ''}` },
      }),
    }),
  ],
});
const tracer = provider.getTracer('forging-agent');

for (const taskId of (values.tasks ?? '').split(',').filter((id) => id !== '')) {
  const attributes = {
    'gen_ai.agent.id': claim,
    'tripline.task.id': taskId,
    'tripline.task.type': 'customer_refund',
  };
  const root = tracer.startSpan('invoke_agent refund', { attributes });
  const inside = trace.setSpan(context.active(), root);
  tracer
    .startSpan(
      'privilege elevate',
      {
        attributes: {
          ...attributes,
          'tripline.privilege.action': 'elevate',
          'tripline.privilege.scopes_before': ['payments:read'],
          'tripline.privilege.scopes_after': ['payments:read', 'admin'],
          'tripline.privilege.approved': false,
        },
      },
      inside,
    )
    .end();
  root.end();
}
await provider.forceFlush();
await provider.shutdown();
