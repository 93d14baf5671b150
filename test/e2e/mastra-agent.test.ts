/**
 * Mastra (TypeScript), protected as it is: test/agents/typescript/mastra-agent.ts is an `Agent` of `@mastra/core`
 * 1.71 with `createTool` tools and a scripted model (`MockLanguageModelV4` from `ai/test`, no network), whose spans
 * Mastra's own observability exports (`@mastra/observability` with `@mastra/otel-exporter`, OTLP/HTTP protobuf, the
 * agent token), against Tripline started as `npm start` does. No Tripline attribute is set on a Mastra span. Mode
 * `wrapper`: the run is wrapped in a span of the script's own OpenTelemetry tracer with `tripline.task.id` /
 * `tripline.task.type`, handed to Mastra as the run's parent (`tracingOptions.traceId` / `parentSpanId`). Mode
 * `trace`: no task id anywhere, the task type a resource attribute of Mastra's exporter; the trace is the task.
 *
 * For each mode, with a task type of its own: 25 benign warm-up tasks, then a few benign tasks and a novel-tool
 * exfiltration (export the customers, then `http_post` to a host the type never saw). Expected: the type reaches its
 * baseline, the exfiltration is revoked, its tool call is read from Mastra's span (target and argument keys from its
 * arguments), each turn of the model is one model call with its tokens, every benign task completes with each tool
 * call counted.
 *
 * Then a new recipient (trace mode, an agent and type of their own): invoices paid to the suppliers they name, and
 * one whose invoice says to pay the attacker, which the scripted model does: revoked as a counterparty flow. Last, a
 * mailed invoice: the event stored in ClickHouse carries the address and IBAN of its arguments as keyed hashes only.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ToolCallDetail } from '../../schemas/events.ts';
import { TEST_AGENT_TOKEN } from '../helpers/auth.ts';
import type { TriplineProcess } from '../helpers/tripline-process.ts';
import { waitFor } from '../helpers/wait.ts';
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
import { invoiceInjectionTests, readStoredEvents } from '../helpers/invoice-injection.ts';
import type { Call, PlannedTask as Plan, TaskView } from '../helpers/agent-plans.ts';

const run = promisify(execFile);
const MASTRA_AGENT = fileURLToPath(new URL('../agents/typescript/mastra-agent.ts', import.meta.url));
/** The Mastra `Agent`'s id when the script is not told another: the agent its spans claim. */
const DEFAULT_AGENT = 'support-agent';

type Mode = 'wrapper' | 'trace';
type Label = 'benign' | 'exfiltration' | 'injection';
type PlannedTask = Plan<Label>;

interface RanTask {
  label: Label;
  taskId: string | null;
  traceId: string;
  calls: number;
}

const COUNTERPARTY_KEY = 'e2e-mastra-counterparty-key-81d0c3';
const TENANT = SUITE_TENANT;
const keyOf = (kind: string, value: string): string => storedCounterpartyKey(COUNTERPARTY_KEY, kind, value);

/** The scripted model's usage of every turn (mastra-agent.ts). */
const TURN_TOKENS = { inputTokens: 20, outputTokens: 10 };

describe('a Mastra agent against Tripline', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-mastra-'));
  const workDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-mastra-plans-'));
  const runId = Date.now().toString(36);
  let tripline: TriplineProcess;

  const startTripline = (): Promise<TriplineProcess> => startSuiteTripline(dataDir, COUNTERPARTY_KEY);

  beforeAll(async () => {
    tripline = await startTripline();
  }, 5 * 60_000);

  afterAll(async () => {
    await tripline.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(workDir, { recursive: true, force: true });
  });

  const task = (id: string): Promise<TaskView | undefined> => taskView(tripline.apiUrl, id);

  /** Runs the Mastra agent over `plan` in `mode`; returns what it ran, in order. */
  async function runAgent(
    mode: Mode,
    phase: string,
    plan: PlannedTask[],
    agent: string = DEFAULT_AGENT,
  ): Promise<RanTask[]> {
    const planFile = join(workDir, `${mode}-${agent}-${phase}.json`);
    writeFileSync(planFile, JSON.stringify(plan));
    const args = ['--endpoint', tripline.otlpUrl, '--token', TEST_AGENT_TOKEN, '--plan', planFile];
    let stdout: string;
    try {
      ({ stdout } = await run(process.execPath, [MASTRA_AGENT, ...args, '--mode', mode, '--agent', agent], {
        maxBuffer: 64 * 1024 * 1024,
        timeout: 300_000,
      }));
    } catch (error) {
      const failure = error as { stderr?: string; message: string };
      throw new Error(`mastra-agent.ts failed: ${failure.message}\n${failure.stderr ?? ''}`, { cause: error });
    }
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

  for (const [index, mode] of (['wrapper', 'trace'] as const).entries()) {
    describe(`${mode} mode`, () => {
      const taskType = `refund_mastra_${mode}`;
      const next = rng(3000 + index);
      let counter = 0;
      const planned = (label: Label, calls: Call[]): PlannedTask => ({
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
          warmup = await runAgent(mode, 'warmup', plan);
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
        'runs a mixed phase: benign tasks and a novel-tool exfiltration, scored under the type baseline',
        async () => {
          const plan = Array.from({ length: MIXED_BENIGN }, () => planned('benign', benignCalls(next)));
          plan.splice(2, 0, planned('exfiltration', exfiltrationCalls()));
          mixed = await runAgent(mode, 'mixed', plan);
          expect(mixed).toHaveLength(MIXED_BENIGN + 1);
          const [first] = mixed;
          if (first === undefined) return;
          const view = await waitFor(`task ${idOf(first)} to be known`, () => task(idOf(first)), VERDICT_MS, 250);
          expect(view.detector.regime, JSON.stringify(view)).toBe('type_baseline');
        },
        10 * 60_000,
      );

      it(
        'revokes the novel-tool exfiltration, a task of the agent its Mastra spans name',
        async () => {
          const [attack] = mixedOf('exfiltration');
          expect(attack, 'the mixed phase ran').toBeDefined();
          if (attack === undefined) return;
          const revoked = await waitForRevoked(tripline.apiUrl, idOf(attack), 'exfiltration');
          expect(revoked.agentId).toBe(DEFAULT_AGENT);
        },
        2 * 60_000,
      );

      it(
        "reads the exfiltration's tool call from Mastra's span (target, argument keys), and each turn's model call with its tokens",
        async () => {
          const [attack] = mixedOf('exfiltration');
          expect(attack, 'the mixed phase ran').toBeDefined();
          if (attack === undefined) return;
          type Items = {
            kind: string;
            detail: {
              tool?: ToolCallDetail;
              model?: string;
              operation?: string;
              inputTokens?: number;
              outputTokens?: number;
            };
          }[];
          const turns = attack.calls + 1;
          const modelCalls = (list: Items): Items => list.filter((item) => item.kind === 'model_call');
          let items: Items = [];
          try {
            await waitFor(
              `the http_post of ${idOf(attack)} and ${String(turns)} model calls in its timeline`,
              async () => {
                const timeline = (await getJson(
                  `${tripline.apiUrl}/v1/tasks/${encodeURIComponent(idOf(attack))}/timeline?limit=1000`,
                )) as { items: Items } | undefined;
                items = timeline?.items ?? [];
                return (
                  items.some((item) => item.detail.tool?.name === 'http_post') && modelCalls(items).length >= turns
                );
              },
              VERDICT_MS,
              250,
            );
          } catch (error) {
            throw new Error(`${(error as Error).message}; timeline: ${JSON.stringify(items).slice(0, 2000)}`, {
              cause: error,
            });
          }
          const post = items.find((item) => item.detail.tool?.name === 'http_post')?.detail.tool;
          expect(post).toMatchObject({ target: EXFIL_URL, argumentKeys: ['body', 'url'], resultRecorded: true });
          expect(
            modelCalls(items).map(({ detail }) => [
              detail.model,
              detail.operation,
              detail.inputTokens,
              detail.outputTokens,
            ]),
          ).toEqual(
            Array.from({ length: turns }, () => [
              'scripted-model',
              'chat',
              TURN_TOKENS.inputTokens,
              TURN_TOKENS.outputTokens,
            ]),
          );
        },
        2 * 60_000,
      );

      it(
        'completes every benign task with each of its tool calls counted, and revokes none',
        async () => {
          const benign = [...warmup, ...mixedOf('benign')];
          expect(benign.length, 'the warm-up and the mixed phase ran').toBe(WARMUP_RUN + MIXED_BENIGN);
          const views = await waitForSettled(tripline.apiUrl, benign.map(idOf), `benign tasks of ${taskType}`);
          const revoked = benign.filter((entry) => views.get(idOf(entry))?.status === 'revoked');
          expect(
            revoked.map((entry) => JSON.stringify(views.get(idOf(entry)))),
            'benign tasks revoked',
          ).toEqual([]);
          const miscounted = benign.filter((entry) => views.get(idOf(entry))?.counts.tool_call !== entry.calls);
          expect(
            miscounted
              .slice(0, 3)
              .map(
                (entry) =>
                  `${idOf(entry)}: planned ${String(entry.calls)}, counted ${JSON.stringify(views.get(idOf(entry))?.counts)}`,
              ),
            'benign tasks whose tool calls were not all counted',
          ).toEqual([]);
        },
        2 * 60_000,
      );
    });
  }

  describe('a new recipient: an instruction injected into an invoice, caught as a counterparty flow', () => {
    invoiceInjectionTests({
      taskType: 'payables_mastra',
      warmupRun: WARMUP_RUN,
      warmupTasks: WARMUP_TASKS,
      mixedBenign: MIXED_BENIGN,
      seed: 3030,
      runId: null,
      apiUrl: () => tripline.apiUrl,
      run: (phase, plan) => runAgent('trace', phase, plan, 'payables-agent'),
      storedEvents: async (taskIds) => {
        await tripline.stop();
        const events = await readStoredEvents(dataDir, TENANT, taskIds);
        tripline = await startTripline();
        return events;
      },
      keyOf,
    });
  });

  describe('counterparties of a tool call, stored as keyed hashes only', () => {
    const taskType = 'invoice_mastra';
    const taskId = `invoice-mastra-${runId}`;

    it(
      "mails an invoice; the stored event carries its arguments' address and IBAN hashed, and no raw value",
      async () => {
        const args = { to: 'Billing@Customer.example', account: 'DE89 3704 0044 0532 0130 00', amount: 120.5 };
        await runAgent('wrapper', 'invoice', [
          { label: 'benign', taskType, taskId, calls: [{ tool: 'send_invoice', args }] },
        ]);
        const view = await waitFor(
          `task ${taskId} to complete`,
          async () => {
            const seen = await task(taskId);
            return seen?.status === 'completed' ? seen : undefined;
          },
          VERDICT_MS,
          250,
        );
        await tripline.stop();
        const stored = await readStoredEvents(dataDir, TENANT, [view.taskId]);
        tripline = await startTripline();
        const invoice = stored.find((event) => event.tool?.name === 'send_invoice');
        expect(invoice, JSON.stringify(stored.map((event) => event.name))).toBeDefined();
        expect(invoice?.tool?.counterparties).toEqual(
          expect.arrayContaining([
            { kind: 'email', key: keyOf('email', 'billing@customer.example') },
            { kind: 'account', key: keyOf('account', 'DE89370400440532013000') },
          ]),
        );
        expect(invoice?.tool?.resultCounterparties).toEqual(
          expect.arrayContaining([{ kind: 'email', key: keyOf('email', 'ledger@books.example') }]),
        );
        expect(invoice?.tool).toMatchObject({
          resultRecorded: true,
          amount: 120.5,
          argumentKeys: ['account', 'amount', 'to'],
        });
        expect(invoice?.attributes['gen_ai.tool.call.arguments']).toMatch(/^\[not stored: \d+ chars\]$/);
        const everything = JSON.stringify(stored).toLowerCase();
        for (const raw of ['billing', 'customer.example', 'ledger', 'books.example', '370400440532013000'])
          expect(everything, `a stored event of ${taskId} holds ${raw}`).not.toContain(raw);
      },
      10 * 60_000,
    );
  });
});
