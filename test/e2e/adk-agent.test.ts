/**
 * Google's Agent Development Kit (ADK, Python) against Tripline started as `npm start` does, instrumented the way its
 * users instrument it: ADK's own OpenTelemetry spans (no instrumentor: ADK traces with the global tracer provider),
 * exported by the official SDK over OTLP/HTTP protobuf with the agent token. The agent
 * (test/agents/python/google_adk/agent.py) is an `LlmAgent` with the shop's `FunctionTool`s run by an
 * `InMemoryRunner`; its model is a scripted subclass of ADK's `BaseLlm` (native function calls, a token usage per
 * turn; no network, no weights, no API key). google-adk comes from PyPI (requirements.txt, a venv made by
 * test/agents/python/venv.sh).
 *
 * Two suites, each with a task type of its own, one per ADK span schema:
 * - `semconv` (ADK's default), wrapper mode, with `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY` (the
 *   OpenTelemetry switch that puts the tools' arguments and results on ADK's spans; off by default);
 * - `legacy` (`ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN=1`, content on by default), trace mode.
 *
 * For each: 25 benign warm-up tasks (some with two function calls in one model turn: ADK runs them in parallel and
 * adds an `execute_tool (merged)` span beside theirs), then a few benign tasks and a novel-tool exfiltration
 * (export the customers, then `http_post` to a host the type never saw). Expected: the type reaches its baseline,
 * the exfiltration is revoked with its target read from the arguments, every benign task completes with exactly
 * its planned tool calls counted (the merged span none), none is revoked, and each model turn is one model call with
 * the tokens the scripted model reported.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ToolCallDetail } from '../../schemas/events.ts';
import { TEST_AGENT_TOKEN } from '../helpers/auth.ts';
import { pythonFor, runPythonAgent } from '../helpers/python.ts';
import type { TriplineProcess } from '../helpers/tripline-process.ts';
import { waitFor } from '../helpers/wait.ts';
import {
  EXFIL_URL,
  MIXED_BENIGN,
  VERDICT_MS,
  WARMUP_RUN,
  WARMUP_TASKS,
  benignCalls,
  exfiltrationCalls,
  getJson,
  rng,
  startSuiteTripline,
  waitForBaseline,
  waitForRevoked,
  waitForSettled,
} from '../helpers/agent-plans.ts';
import type { Call, PlannedTask as Plan } from '../helpers/agent-plans.ts';

const FRAMEWORK = 'google_adk';
type Mode = 'wrapper' | 'trace';
type Label = 'benign' | 'exfiltration';
type PlannedTask = Plan<Label>;

interface Suite {
  schema: 'semconv' | 'legacy';
  mode: Mode;
  taskType: string;
  /** The user's environment for ADK's telemetry. */
  env: Record<string, string>;
}

const SUITES: Suite[] = [
  {
    schema: 'semconv',
    mode: 'wrapper',
    taskType: 'refund_adk_wrapper',
    env: { OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'SPAN_ONLY' },
  },
  {
    schema: 'legacy',
    mode: 'trace',
    taskType: 'refund_adk_legacy_trace',
    env: { ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN: '1' },
  },
];

/** What the scripted model reports per turn (agent.py `turn_usage`). */
const inputTokensOfTurn = (turn: number): number => 200 + 50 * turn;
const OUTPUT_TOKENS_PER_TURN = 25;

/** One line of the agent's stdout, with the plan it ran. */
interface RanTask {
  label: Label;
  taskId: string | null;
  traceId: string;
  calls: Call[];
}

/** The model's turns for a plan: one per call not made together with the one before it, and the answer. */
const modelTurns = (calls: readonly Call[]): number => calls.filter((call) => call.withPrevious !== true).length + 1;

/** A benign task whose second call, half the time, goes in the same model turn as the first (parallel calls). */
function benignPlan(next: () => number): Call[] {
  const calls = benignCalls(next);
  const second = calls[1];
  if (second !== undefined && next() < 0.5) calls[1] = { ...second, withPrevious: true };
  return calls;
}

type TimelineItems = { kind: string; detail: { tool?: ToolCallDetail; inputTokens?: number; outputTokens?: number } }[];

describe('Google ADK (Python), its own telemetry, against Tripline', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-adk-'));
  const workDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-adk-plans-'));
  const runId = Date.now().toString(36);
  let tripline: TriplineProcess;

  beforeAll(async () => {
    // The first run installs google-adk from PyPI (about a minute); later runs reuse the cached venv.
    await pythonFor(FRAMEWORK);
    tripline = await startSuiteTripline(dataDir);
  }, 10 * 60_000);

  afterAll(async () => {
    await tripline.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(workDir, { recursive: true, force: true });
  });

  const timeline = async (id: string): Promise<TimelineItems> => {
    const view = (await getJson(`${tripline.apiUrl}/v1/tasks/${encodeURIComponent(id)}/timeline?limit=1000`)) as
      { items: TimelineItems } | undefined;
    return view?.items ?? [];
  };

  async function runAgent(suite: Suite, phase: string, plan: PlannedTask[]): Promise<RanTask[]> {
    const planFile = join(workDir, `${suite.taskType}-${phase}.json`);
    writeFileSync(planFile, JSON.stringify(plan));
    const args = [
      '--endpoint',
      tripline.otlpUrl,
      '--token',
      TEST_AGENT_TOKEN,
      '--plan',
      planFile,
      '--mode',
      suite.mode,
    ];
    const { stdout } = await runPythonAgent(FRAMEWORK, 'agent.py', args, suite.env, 300_000);
    const ran = stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line, index) => ({
        ...(JSON.parse(line) as Omit<RanTask, 'calls'>),
        calls: plan[index]?.calls ?? [],
      }));
    expect(ran.map((entry) => entry.label)).toEqual(plan.map((entry) => entry.label));
    for (const [index, entry] of ran.entries()) {
      expect(entry.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(entry.taskId).toBe(suite.mode === 'wrapper' ? plan[index]?.taskId : null);
    }
    return ran;
  }

  for (const [index, suite] of SUITES.entries()) {
    describe(`${suite.schema} span schema, ${suite.mode} mode`, () => {
      const { taskType, mode } = suite;
      const next = rng(3100 + index);
      let counter = 0;
      const planned = (label: Label, calls: Call[]): PlannedTask => ({
        label,
        taskType,
        taskId: mode === 'wrapper' ? `${taskType}-${label}-${String(++counter)}-${runId}` : null,
        calls,
      });
      /** The id Tripline knows a task by: the declared one, or the trace's. */
      const idOf = (entry: RanTask): string => entry.taskId ?? entry.traceId;
      let warmup: RanTask[] = [];
      let mixed: RanTask[] = [];
      const mixedOf = (label: Label): RanTask[] => mixed.filter((entry) => entry.label === label);

      it(
        `runs ${String(WARMUP_RUN)} benign warm-up tasks and the type reaches its baseline`,
        async () => {
          const plan = Array.from({ length: WARMUP_RUN }, () => planned('benign', benignPlan(next)));
          expect(plan.some((entry) => entry.calls.some((call) => call.withPrevious === true))).toBe(true);
          warmup = await runAgent(suite, 'warmup', plan);
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
        'runs a mixed phase: benign tasks and a novel-tool exfiltration',
        async () => {
          const plan = Array.from({ length: MIXED_BENIGN }, () => planned('benign', benignPlan(next)));
          plan.splice(2, 0, planned('exfiltration', exfiltrationCalls()));
          mixed = await runAgent(suite, 'mixed', plan);
          expect(mixed).toHaveLength(MIXED_BENIGN + 1);
        },
        10 * 60_000,
      );

      it(
        'revokes the novel-tool exfiltration, scored under the type baseline',
        async () => {
          const [attack] = mixedOf('exfiltration');
          expect(attack, 'the mixed phase ran').toBeDefined();
          if (attack === undefined) return;
          const revoked = await waitForRevoked(tripline.apiUrl, idOf(attack), 'exfiltration');
          expect(revoked.detector.regime).toBe('type_baseline');
        },
        2 * 60_000,
      );

      it(
        "reads the exfiltration's call from ADK's attributes (its target and argument keys), and each model turn with its tokens",
        async () => {
          const [attack] = mixedOf('exfiltration');
          expect(attack, 'the mixed phase ran').toBeDefined();
          if (attack === undefined) return;
          const turns = modelTurns(attack.calls);
          let items: TimelineItems = [];
          const modelCalls = (): TimelineItems => items.filter((item) => item.kind === 'model_call');
          try {
            await waitFor(
              `the http_post of ${idOf(attack)} and its ${String(turns)} model calls in its timeline`,
              async () => {
                items = await timeline(idOf(attack));
                return items.some((item) => item.detail.tool?.name === 'http_post') && modelCalls().length >= turns;
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
          expect(post).toMatchObject({
            target: EXFIL_URL,
            argumentKeys: ['body', 'url'],
            resultRecorded: true,
            type: 'FunctionTool',
          });
          expect(
            modelCalls()
              .map((item) => [item.detail.inputTokens, item.detail.outputTokens])
              .sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0)),
          ).toEqual(Array.from({ length: turns }, (_, turn) => [inputTokensOfTurn(turn), OUTPUT_TOKENS_PER_TURN]));
        },
        2 * 60_000,
      );

      it(
        'completes every benign task with exactly its planned tool calls counted (parallel calls too), and revokes none',
        async () => {
          const benign = [...warmup, ...mixedOf('benign')];
          expect(benign.length, 'the warm-up and the mixed phase ran').toBe(WARMUP_RUN + MIXED_BENIGN);
          const views = await waitForSettled(tripline.apiUrl, benign.map(idOf), `benign tasks of ${taskType}`);
          const revoked = benign.filter((entry) => views.get(idOf(entry))?.status === 'revoked');
          expect(
            revoked.map((entry) => JSON.stringify(views.get(idOf(entry)))),
            'benign tasks revoked',
          ).toEqual([]);
          const miscounted = benign.filter((entry) => views.get(idOf(entry))?.counts.tool_call !== entry.calls.length);
          expect(
            miscounted.map(
              (entry) =>
                `${idOf(entry)}: planned ${String(entry.calls.length)} tool calls, counted ${JSON.stringify(views.get(idOf(entry))?.counts)}`,
            ),
            'benign tasks whose tool calls were not counted exactly',
          ).toEqual([]);
        },
        2 * 60_000,
      );

      it(
        'counts two function calls of one model turn as two tool calls and that turn as one model call',
        async () => {
          const parallel = [...warmup, ...mixedOf('benign')].find((entry) =>
            entry.calls.some((call) => call.withPrevious === true),
          );
          expect(parallel, 'a benign task with a parallel turn ran').toBeDefined();
          if (parallel === undefined) return;
          const turns = modelTurns(parallel.calls);
          let items: TimelineItems = [];
          await waitFor(
            `the ${String(turns)} model calls of ${idOf(parallel)}`,
            async () => {
              items = await timeline(idOf(parallel));
              return items.filter((item) => item.kind === 'model_call').length >= turns;
            },
            VERDICT_MS,
            250,
          );
          const tools = items.flatMap((item) => (item.kind === 'tool_call' ? [item.detail.tool?.name] : []));
          expect(tools.sort()).toEqual(parallel.calls.map((call) => call.tool).sort());
          expect(tools).not.toContain('(merged tools)');
          expect(items.filter((item) => item.kind === 'model_call')).toHaveLength(turns);
        },
        2 * 60_000,
      );
    });
  }

  describe("ADK's default (semconv schema, content capture off)", () => {
    const suite: Suite = { schema: 'semconv', mode: 'wrapper', taskType: 'refund_adk_no_content', env: {} };

    it(
      'counts the tool calls by name, with no arguments or results to read',
      async () => {
        const calls: Call[] = [
          { tool: 'get_order', args: { order_id: 'ord-3' } },
          { tool: 'http_post', args: { url: EXFIL_URL, body: 'x' } },
        ];
        const taskId = `${suite.taskType}-${runId}`;
        await runAgent(suite, 'no-content', [{ label: 'benign', taskType: suite.taskType, taskId, calls }]);
        let items: TimelineItems = [];
        await waitFor(
          `the tool calls and model calls of ${taskId}`,
          async () => {
            items = await timeline(taskId);
            return (
              items.filter((item) => item.kind === 'tool_call').length >= calls.length &&
              items.filter((item) => item.kind === 'model_call').length >= modelTurns(calls)
            );
          },
          VERDICT_MS,
          250,
        );
        const tools = items.flatMap((item) =>
          item.kind === 'tool_call' && item.detail.tool ? [item.detail.tool] : [],
        );
        expect(tools.map((tool) => tool.name)).toEqual(['get_order', 'http_post']);
        for (const tool of tools) {
          expect(tool.target).toBeUndefined();
          expect(tool.argumentKeys).toBeUndefined();
          expect(tool.resultRecorded).not.toBe(true);
        }
      },
      2 * 60_000,
    );
  });
});
