/**
 * Strands Agents (AWS, Python) against Tripline started as `npm start` does: a `strands.Agent` with Strands' own
 * OpenTelemetry tracing (`StrandsTelemetry().setup_otlp_exporter(...)`, OTLP/HTTP protobuf with the agent token) and
 * a scripted subclass of Strands' `Model` (test/agents/python/strands/agent.py; no network, no weights, no keys).
 *
 * Strands records a tool call's content in two ways, both run here:
 * - by default, in span events only: the `execute_tool <name>` span carries the input in a `gen_ai.tool.message`
 *   event (`content`) and the result in a `gen_ai.choice` event (`message`), which Tripline reads because the span's
 *   attributes hold neither (services/core/tool-event-content.ts);
 * - with `OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`, in the `gen_ai.tool.call.arguments` /
 *   `gen_ai.tool.call.result` attributes (and structured `gen_ai.input.messages` / `gen_ai.output.messages` events).
 *
 * For each, with task types and agents of its own: 25 benign warm-up tasks, then a few benign tasks and a novel-tool
 * exfiltration (export the customers, `http_post` to a host the type never saw). Expected: the type reaches its
 * baseline, the exfiltration is revoked, every benign task completes with each tool call counted, and the
 * exfiltration's `http_post` reaches Tripline with its arguments (target, argument keys, the host as a keyed hash)
 * and each model turn (Strands' `chat` span) counted as a model call. Then the accounts-payable injection
 * (test/helpers/invoice-injection.ts): an invoice the agent reads names the attacker's account, which it pays; the
 * task is revoked for the counterparty flow from `read_invoice`'s result to `pay_invoice`'s arguments, something
 * Tripline sees only if it reads both, and the events stored in ClickHouse hold the counterparties as keyed hashes
 * and none of the raw values.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentEvent, ToolCallDetail } from '../../schemas/events.ts';
import { TEST_AGENT_TOKEN } from '../helpers/auth.ts';
import {
  EXFIL_URL,
  MIXED_BENIGN,
  SUITE_TENANT,
  VERDICT_MS,
  WARMUP_RUN,
  WARMUP_TASKS,
  benignCalls,
  exfiltrationCalls,
  getJson,
  rng,
  startSuiteTripline,
  storedCounterpartyKey,
  taskView,
  waitForBaseline,
  waitForRevoked,
  waitForSettled,
} from '../helpers/agent-plans.ts';
import type { Call, PlannedTask, TaskView } from '../helpers/agent-plans.ts';
import { invoiceInjectionTests, readStoredEvents } from '../helpers/invoice-injection.ts';
import { pythonFor, runPythonAgent } from '../helpers/python.ts';
import type { TriplineProcess } from '../helpers/tripline-process.ts';
import { waitFor } from '../helpers/wait.ts';

type Mode = 'wrapper' | 'trace';
type Label = 'benign' | 'exfiltration' | 'injection';

/** How Strands records tool content: span events (its default) or the latest GenAI attributes. */
interface Conventions {
  name: string;
  /** The environment the agent runs with. */
  env: Record<string, string>;
  mode: Mode;
  /** Where the stored event says the arguments were read (the marker's key). */
  argumentsKey: string;
  slug: string;
}

const CONVENTIONS: Conventions[] = [
  {
    name: 'default conventions (tool content in span events)',
    env: { OTEL_SEMCONV_STABILITY_OPT_IN: '' },
    mode: 'trace',
    argumentsKey: 'gen_ai.tool.message.content',
    slug: 'events',
  },
  {
    name: 'OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental (tool content in attributes)',
    env: { OTEL_SEMCONV_STABILITY_OPT_IN: 'gen_ai_latest_experimental' },
    mode: 'wrapper',
    argumentsKey: 'gen_ai.tool.call.arguments',
    slug: 'latest',
  },
];

const COUNTERPARTY_KEY = 'e2e-strands-counterparty-key-8d2e41';
const TENANT = SUITE_TENANT;
const keyOf = (kind: string, value: string): string => storedCounterpartyKey(COUNTERPARTY_KEY, kind, value);

const EXFIL_HOST = new URL(EXFIL_URL).hostname;

interface RanTask {
  label: Label;
  taskId: string | null;
  traceId: string;
  calls: number;
}

describe('Strands Agents against Tripline, tool content from span events and from attributes', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-strands-'));
  const workDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-strands-plans-'));
  const runId = Date.now().toString(36);
  let tripline: TriplineProcess;

  const startTripline = (): Promise<TriplineProcess> => startSuiteTripline(dataDir, COUNTERPARTY_KEY);

  /** The events ClickHouse stored for these tasks: Tripline stopped to read them, then started on the same data. */
  const storedEvents = async (taskIds: readonly string[]): Promise<AgentEvent[]> => {
    await tripline.stop();
    try {
      return await readStoredEvents(dataDir, TENANT, taskIds);
    } finally {
      tripline = await startTripline();
    }
  };

  beforeAll(async () => {
    await pythonFor('strands');
    tripline = await startTripline();
  }, 20 * 60_000);

  afterAll(async () => {
    await tripline.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(workDir, { recursive: true, force: true });
  });

  const task = (id: string): Promise<TaskView | undefined> => taskView(tripline.apiUrl, id);

  async function runAgent(
    conventions: Conventions,
    agent: string,
    phase: string,
    plan: PlannedTask<Label>[],
    mode: Mode,
  ): Promise<RanTask[]> {
    const planFile = join(workDir, `${agent}-${phase}.json`);
    writeFileSync(planFile, JSON.stringify(plan));
    const args = ['--endpoint', tripline.otlpUrl, '--token', TEST_AGENT_TOKEN, '--plan', planFile, '--mode', mode];
    const { stdout } = await runPythonAgent(
      'strands',
      'agent.py',
      [...args, '--agent', agent],
      conventions.env,
      300_000,
    );
    const ran = stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line, index) => ({
        ...(JSON.parse(line) as Omit<RanTask, 'calls'>),
        calls: plan[index]?.calls.length ?? -1,
      }));
    expect(ran.map((entry) => entry.label)).toEqual(plan.map((entry) => entry.label));
    for (const [index, entry] of ran.entries()) {
      expect(entry.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(entry.taskId).toBe(mode === 'wrapper' ? plan[index]?.taskId : null);
    }
    return ran;
  }

  for (const [index, conventions] of CONVENTIONS.entries()) {
    describe(`${conventions.name}, ${conventions.mode} mode`, () => {
      const { mode } = conventions;
      const taskType = `refund_strands_${conventions.slug}`;
      const agent = `strands_${conventions.slug}_agent`;
      const next = rng(3000 + index);
      let counter = 0;
      const planned = (label: Label, calls: Call[]): PlannedTask<Label> => ({
        label,
        taskType,
        taskId: mode === 'wrapper' ? `${taskType}-${label}-${String(++counter)}-${runId}` : null,
        calls,
      });
      const idOf = (entry: RanTask): string => entry.taskId ?? entry.traceId;
      let warmup: RanTask[] = [];
      let mixed: RanTask[] = [];
      const mixedOf = (label: Label): RanTask[] => mixed.filter((entry) => entry.label === label);

      it(
        `runs ${String(WARMUP_RUN)} benign warm-up tasks and the type reaches its baseline`,
        async () => {
          const plan = Array.from({ length: WARMUP_RUN }, () => planned('benign', benignCalls(next)));
          warmup = await runAgent(conventions, agent, 'warmup', plan, mode);
          const first = warmup[0];
          const learned = await waitForBaseline(
            tripline.apiUrl,
            taskType,
            WARMUP_TASKS,
            first === undefined ? undefined : idOf(first),
          );
          expect(learned.regime).toBe('type_baseline');
        },
        10 * 60_000,
      );

      it(
        'runs benign tasks and a novel-tool exfiltration under the baseline, and revokes the exfiltration',
        async () => {
          const plan = Array.from({ length: MIXED_BENIGN }, () => planned('benign', benignCalls(next)));
          plan.splice(2, 0, planned('exfiltration', exfiltrationCalls()));
          mixed = await runAgent(conventions, agent, 'mixed', plan, mode);
          const [attack] = mixedOf('exfiltration');
          if (attack === undefined) throw new Error('the exfiltration did not run');
          const revoked = await waitForRevoked(tripline.apiUrl, idOf(attack), 'exfiltration');
          expect(revoked.detector.regime, JSON.stringify(revoked)).toBe('type_baseline');
        },
        10 * 60_000,
      );

      it(
        "reads the exfiltration's arguments as Strands recorded them, and counts each model turn",
        async () => {
          const [attack] = mixedOf('exfiltration');
          if (attack === undefined) throw new Error('the exfiltration did not run');
          type Items = { kind: string; detail: { tool?: ToolCallDetail } }[];
          const timeline = async (): Promise<Items> =>
            (
              (await getJson(`${tripline.apiUrl}/v1/tasks/${encodeURIComponent(idOf(attack))}/timeline?limit=1000`)) as
                { items: Items } | undefined
            )?.items ?? [];
          // A turn per planned call, and the answer: Strands' `chat` span each.
          const turns = attack.calls + 1;
          const modelCalls = (list: Items): number => list.filter((item) => item.kind === 'model_call').length;
          let items: Items = [];
          try {
            await waitFor(
              `the http_post of ${idOf(attack)} and ${String(turns)} model calls in its timeline`,
              async () => {
                items = await timeline();
                return items.some((item) => item.detail.tool?.name === 'http_post') && modelCalls(items) >= turns;
              },
              VERDICT_MS,
              250,
            );
          } catch (error) {
            throw new Error(`${(error as Error).message}; timeline: ${JSON.stringify(items).slice(0, 2000)}`, {
              cause: error,
            });
          }
          expect(modelCalls(items)).toBe(turns);
          const post = items.find((item) => item.detail.tool?.name === 'http_post')?.detail.tool;
          expect(post).toMatchObject({ target: EXFIL_URL, argumentKeys: ['body', 'url'] });
        },
        2 * 60_000,
      );

      it(
        'completes every benign task with each of its tool calls counted, and revokes none',
        async () => {
          const benign = [...warmup, ...mixedOf('benign')];
          expect(benign).toHaveLength(WARMUP_RUN + MIXED_BENIGN);
          const views = await waitForSettled(tripline.apiUrl, benign.map(idOf), `benign tasks of ${taskType}`);
          expect(
            benign
              .filter((entry) => views.get(idOf(entry))?.status !== 'completed')
              .map((entry) => JSON.stringify(views.get(idOf(entry)))),
            'benign tasks revoked',
          ).toEqual([]);
          expect(
            benign
              .filter((entry) => views.get(idOf(entry))?.counts.tool_call !== entry.calls)
              .slice(0, 3)
              .map(
                (entry) => `planned ${String(entry.calls)}, counted ${JSON.stringify(views.get(idOf(entry))?.counts)}`,
              ),
            'benign tasks whose tool calls were not all counted',
          ).toEqual([]);
        },
        2 * 60_000,
      );
      it(
        "stores the exfiltration's tool facts: the host as a keyed hash, the content only as a marker",
        async () => {
          const [attack] = mixedOf('exfiltration');
          if (attack === undefined) throw new Error('the exfiltration did not run');
          const taskId = (await task(idOf(attack)))?.taskId ?? idOf(attack);
          const stored = await storedEvents([taskId]);
          const storedPost = stored.find((event) => event.tool?.name === 'http_post');
          expect(storedPost?.tool, JSON.stringify(stored.map((event) => event.name))).toMatchObject({
            target: EXFIL_URL,
            argumentKeys: ['body', 'url'],
            resultRecorded: true,
            argumentsHash: expect.stringMatching(/^[0-9a-f]{16}$/) as unknown,
            resultHash: expect.stringMatching(/^[0-9a-f]{16}$/) as unknown,
          });
          // The host from the `url` argument, the address from the `body` one; the host again in the result.
          expect(storedPost?.tool?.counterparties).toEqual(
            expect.arrayContaining([
              { kind: 'url_host', key: keyOf('url_host', EXFIL_HOST) },
              { kind: 'email', key: keyOf('email', 'customer1@shop.example') },
            ]),
          );
          expect(storedPost?.tool?.resultCounterparties).toEqual([
            { kind: 'url_host', key: keyOf('url_host', EXFIL_HOST) },
          ]);
          expect(storedPost?.attributes[conventions.argumentsKey]).toMatch(/^\[not stored: \d+ chars\]$/);
          const everything = JSON.stringify(stored).toLowerCase();
          for (const raw of ['customer1@shop.example', 'id,name,email']) expect(everything).not.toContain(raw);
        },
        5 * 60_000,
      );
    });

    describe(`${conventions.name}: an instruction injected into an invoice, caught as a counterparty flow`, () => {
      const agent = `strands_${conventions.slug}_payables`;
      invoiceInjectionTests({
        taskType: `payables_strands_${conventions.slug}`,
        warmupRun: WARMUP_RUN,
        warmupTasks: WARMUP_TASKS,
        mixedBenign: MIXED_BENIGN,
        seed: 4100 + index,
        runId: conventions.mode === 'wrapper' ? runId : null,
        apiUrl: () => tripline.apiUrl,
        run: (phase, plan) => runAgent(conventions, agent, phase, plan, conventions.mode),
        storedEvents,
        keyOf,
      });
    });
  }
});
