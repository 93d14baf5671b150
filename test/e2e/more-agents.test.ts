/**
 * Seven more agent frameworks, each instrumented the way its users instrument it, against Tripline started as
 * `npm start` does (for the guide "Agents you already have"):
 *
 * - OpenAI Agents SDK (Python): the SDK's own tracing bridged to OpenTelemetry by
 *   openinference-instrumentation-openai-agents; the SDK's scripted test model (`agents.testing.ScriptedModel`);
 * - CrewAI (Python): openinference-instrumentation-crewai; a scripted `crewai.BaseLLM` with native tool calls;
 * - smolagents (Python, Hugging Face): openinference-instrumentation-smolagents; a `ToolCallingAgent` whose model is a
 *   scripted subclass of smolagents' `Model` (every run ends with smolagents' own `final_answer` tool, a tool call
 *   of its own);
 * - LlamaIndex (Python): openinference-instrumentation-llama-index; a `FunctionAgent` with `FunctionTool`s whose LLM
 *   is llama-index-core's `MockFunctionCallingLLM` with a scripted response generator;
 * - AutoGen AgentChat (Python, Microsoft): openinference-instrumentation-autogen-agentchat; an `AssistantAgent` with
 *   `FunctionTool`s whose model is autogen-ext's `OpenAIChatCompletionClient` on a scripted in-process HTTP transport
 *   (native tool calls; OpenInference records each chat completion as an LLM span);
 *   once more with the SDK's provider made global (`trace.set_tracer_provider`), so autogen-core's own
 *   `execute_tool` span records each tool call a second time, inside OpenInference's: each call still counts once;
 * - Vercel AI SDK (TypeScript): `generateText` with `ai` 7's OpenTelemetry integration (`@ai-sdk/otel`) and
 *   `MockLanguageModelV4` from `ai/test`;
 * - LangGraph.js (TypeScript): `createAgent` from `langchain` 1 (the prebuilt ReAct agent on LangGraph) with
 *   `@langchain/core` tools, traced by `@arizeai/openinference-instrumentation-langchain`; a scripted `BaseChatModel`.
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
 *
 * Then an injection through content the agent reads (Vercel AI SDK, trace mode, an agent and type of its own): 25
 * accounts-payable tasks read supplier invoices and pay each to the IBAN it names, then a few more and one whose
 * invoice says to pay the attacker's account, which the scripted model does. Expected: that task is revoked with the
 * counterparty-flow reason naming `read_invoice`, no benign task is, and the stored events carry the attacker's IBAN
 * and address as keyed hashes (Tripline stopped to read ClickHouse, then started again on the same data).
 *
 * Last, counterparties: the Vercel AI SDK agent mails an invoice (a mail address and an IBAN in the arguments, the
 * address and another in the recorded result); the events stored in ClickHouse carry those as keyed hashes under
 * the configured TRIPLINE_COUNTERPARTY_KEY (recomputed here with node:crypto) and hold none of the raw values.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ToolCallDetail } from '../../schemas/events.ts';
import { openClickHouseStore } from '../../services/store/clickhouse/store.ts';
import { TEST_AGENT_TOKEN } from '../helpers/auth.ts';
import { pythonFor, runPythonAgent } from '../helpers/python.ts';
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
const TYPESCRIPT_AGENTS = {
  vercel_ai: fileURLToPath(new URL('../agents/typescript/vercel-ai-agent.ts', import.meta.url)),
  langgraph: fileURLToPath(new URL('../agents/typescript/langgraph-agent.ts', import.meta.url)),
};

type Mode = 'wrapper' | 'trace';
type Label = 'benign' | 'exfiltration' | 'injection';

interface Suite {
  name: string;
  /** The venv folder of a Python framework, or undefined for a TypeScript agent. */
  python?: PythonFramework;
  /** The TypeScript agent (when `python` is undefined). @default 'vercel_ai' */
  typescript?: keyof typeof TYPESCRIPT_AGENTS;
  mode: Mode;
  taskType: string;
  /** The agent's name, when not the script's default. */
  agent?: string;
  /** Tool calls the framework makes in every run on top of the planned ones (smolagents' `final_answer`). */
  frameworkToolCalls?: number;
  /**
   * Whether the framework's instrumentation records each turn of the scripted model as one model call (LlamaIndex:
   * its LLM spans, the request preparation not counted; LangChain.js: the chat model's LLM span; AutoGen: the OpenAI
   * client's `create`), so a task has one
   * more model call than planned tool calls.
   */
  modelCallPerTurn?: boolean;
  /**
   * The agent makes its SDK's provider the global one (`--global-provider`), so a framework tracing through the
   * global provider records each tool call a second time (AutoGen: autogen-core's `execute_tool` span inside
   * OpenInference's tool span). Each call must still count once; the second record is in the timeline, marked.
   */
  globalProvider?: boolean;
}

const PYTHON_FRAMEWORKS = ['openai_agents', 'crewai', 'smolagents', 'llama_index', 'autogen'] as const;
type PythonFramework = (typeof PYTHON_FRAMEWORKS)[number];

const SUITES: Suite[] = [
  { name: 'OpenAI Agents SDK', python: 'openai_agents', mode: 'wrapper', taskType: 'refund_openai_agents_wrapper' },
  { name: 'CrewAI', python: 'crewai', mode: 'trace', taskType: 'refund_crewai_trace' },
  {
    name: 'smolagents',
    python: 'smolagents',
    mode: 'trace',
    taskType: 'refund_smolagents_trace',
    frameworkToolCalls: 1,
  },
  {
    name: 'LlamaIndex',
    python: 'llama_index',
    mode: 'wrapper',
    taskType: 'refund_llama_index_wrapper',
    modelCallPerTurn: true,
  },
  {
    name: 'AutoGen AgentChat',
    python: 'autogen',
    mode: 'trace',
    taskType: 'refund_autogen_trace',
    modelCallPerTurn: true,
  },
  {
    name: 'AutoGen AgentChat with a global provider',
    python: 'autogen',
    mode: 'wrapper',
    taskType: 'refund_autogen_global_wrapper',
    // An agent of its own: until the wrapper span declares the type, a task is scored as its agent's usual type,
    // and an agent that declared two types (the trace-mode suite's) has none.
    agent: 'support-agent-global',
    modelCallPerTurn: true,
    globalProvider: true,
  },
  { name: 'Vercel AI SDK', mode: 'wrapper', taskType: 'refund_vercel_ai_wrapper' },
  { name: 'Vercel AI SDK', mode: 'trace', taskType: 'refund_vercel_ai_trace' },
  {
    name: 'LangGraph.js',
    typescript: 'langgraph',
    mode: 'wrapper',
    taskType: 'refund_langgraph_js_wrapper',
    modelCallPerTurn: true,
  },
  {
    name: 'LangGraph.js',
    typescript: 'langgraph',
    mode: 'trace',
    taskType: 'refund_langgraph_js_trace',
    modelCallPerTurn: true,
  },
];

/** The hashing secret the process runs with; the test recomputes the keys with it. */
const COUNTERPARTY_KEY = 'e2e-counterparty-key-5f1c2a7e93b1';
/** The ingest token's tenant (TEST_AUTH_ENV registers TRIPLINE_AGENT_TOKEN for `default`). */
const TENANT = SUITE_TENANT;
/** A counterparty's key as Tripline computes it (schemas/conventions.md, "Counterparties"). */
const keyOf = (kind: string, value: string): string => storedCounterpartyKey(COUNTERPARTY_KEY, kind, value);

type PlannedTask = Plan<Label>;

/**
 * One line of an agent's stdout: the task it ran and the trace it ran in (plus how many tool calls it made: the
 * planned ones and the framework's own).
 */
interface RanTask {
  label: Label;
  taskId: string | null;
  traceId: string;
  calls: number;
}

describe('more real agents (OpenAI Agents SDK, CrewAI, smolagents, LlamaIndex, AutoGen AgentChat, Vercel AI SDK, LangGraph.js) against Tripline', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-more-'));
  const workDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-more-plans-'));
  const runId = Date.now().toString(36);
  let tripline: TriplineProcess;

  const startTripline = (): Promise<TriplineProcess> => startSuiteTripline(dataDir, COUNTERPARTY_KEY);

  beforeAll(async () => {
    // The first run installs each Python framework from PyPI (CrewAI and LlamaIndex take a minute and a half each);
    // later runs reuse the cached venvs.
    await Promise.all(PYTHON_FRAMEWORKS.map((framework) => pythonFor(framework)));
    tripline = await startTripline();
  }, 20 * 60_000);

  afterAll(async () => {
    await tripline.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(workDir, { recursive: true, force: true });
  });

  const task = (id: string): Promise<TaskView | undefined> => taskView(tripline.apiUrl, id);

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
      ...(suite.agent === undefined ? [] : ['--agent', suite.agent]),
      ...(suite.globalProvider === true ? ['--global-provider'] : []),
    ];
    let stdout: string;
    if (suite.python === undefined) {
      const script = TYPESCRIPT_AGENTS[suite.typescript ?? 'vercel_ai'];
      try {
        ({ stdout } = await run(process.execPath, [script, ...args], {
          maxBuffer: 64 * 1024 * 1024,
          timeout: 300_000,
        }));
      } catch (error) {
        const failure = error as { stderr?: string; message: string };
        throw new Error(`${script} failed: ${failure.message}\n${failure.stderr ?? ''}`, { cause: error });
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
        calls: (plan[index]?.calls.length ?? -1) + (suite.frameworkToolCalls ?? 0),
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
          await waitForRevoked(tripline.apiUrl, idOf(attack), 'exfiltration');
        },
        2 * 60_000,
      );

      it(
        "reads the exfiltration's tool call as the framework recorded it: the tool, its target and argument keys",
        async () => {
          const [attack] = mixedOf('exfiltration');
          expect(attack, 'the mixed phase ran').toBeDefined();
          if (attack === undefined) return;
          type Items = { kind: string; detail: { tool?: ToolCallDetail; eventId?: string } }[];
          type Timeline = { items: Items } | undefined;
          const timeline = (): Promise<Timeline> =>
            getJson(
              `${tripline.apiUrl}/v1/tasks/${encodeURIComponent(idOf(attack))}/timeline?limit=1000`,
            ) as Promise<Timeline>;
          // A turn per planned call, and the answer.
          const turns = attack.calls - (suite.frameworkToolCalls ?? 0) + 1;
          const ofKind = (list: Items, kind: string): number => list.filter((item) => item.kind === kind).length;
          // With a global provider, every call is recorded twice: once as the call, once as its second record.
          const secondRecords = suite.globalProvider === true ? attack.calls : 0;
          let items: Items = [];
          try {
            await waitFor(
              `the http_post of ${idOf(attack)} and its ${String(attack.calls)} tool calls in its timeline${suite.modelCallPerTurn === true ? `, and ${String(turns)} model calls` : ''}${secondRecords > 0 ? `, and ${String(secondRecords)} second records of calls` : ''}`,
              async () => {
                items = (await timeline())?.items ?? [];
                return (
                  items.some((item) => item.detail.tool?.name === 'http_post') &&
                  (suite.modelCallPerTurn !== true || ofKind(items, 'model_call') >= turns) &&
                  ofKind(items, 'tool_call') >= attack.calls &&
                  ofKind(items, 'same_tool_call') >= secondRecords
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
          // The record that carries the arguments (with a global provider AutoGen's own record carries none).
          const posts = items.filter((item) => item.detail.tool?.name === 'http_post').map((item) => item.detail.tool);
          expect(posts).toContainEqual(expect.objectContaining({ target: EXFIL_URL, argumentKeys: ['body', 'url'] }));
          if (suite.modelCallPerTurn === true) expect(ofKind(items, 'model_call')).toBe(turns);
          expect(ofKind(items, 'tool_call'), 'tool calls in the timeline').toBe(attack.calls);
          expect(ofKind(items, 'same_tool_call'), 'second records of a call in the timeline').toBe(secondRecords);
          if (secondRecords > 0) {
            // Each second record points at a call of the timeline, and each call has exactly one.
            const calls = items.filter((item) => item.kind === 'tool_call').map((item) => item.detail.eventId);
            const marks = items
              .filter((item) => item.kind === 'same_tool_call')
              .map((item) => item.detail.tool?.sameCallOf);
            expect([...marks].sort()).toEqual([...calls].sort());
          }
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
  describe('Vercel AI SDK: an instruction injected into an invoice, caught as a counterparty flow', () => {
    // An agent of its own: the exfiltrations above were revoked under the default one.
    const suite: Suite = {
      name: 'Vercel AI SDK',
      mode: 'trace',
      taskType: 'payables_vercel_ai',
      agent: 'payables-agent',
    };
    invoiceInjectionTests({
      taskType: suite.taskType,
      warmupRun: WARMUP_RUN,
      warmupTasks: WARMUP_TASKS,
      mixedBenign: MIXED_BENIGN,
      seed: 2024,
      runId: null,
      apiUrl: () => tripline.apiUrl,
      run: (phase, plan) => runAgent(suite, phase, plan),
      // Stopped to read ClickHouse, then started again on the same data for the test below.
      storedEvents: async (taskIds) => {
        await tripline.stop();
        const events = await readStoredEvents(dataDir, TENANT, taskIds);
        tripline = await startTripline();
        return events;
      },
      keyOf,
    });
  });

  describe('Vercel AI SDK: counterparties of a tool call, stored as keyed hashes only', () => {
    const suite: Suite = { name: 'Vercel AI SDK', mode: 'wrapper', taskType: 'invoice_vercel_ai' };
    const taskId = `invoice-vercel-ai-${runId}`;

    it(
      'mails an invoice; the stored event carries the hashed address, IBAN and result addresses, and no raw value',
      async () => {
        const args = { to: 'Billing@Customer.example', account: 'DE89 3704 0044 0532 0130 00', amount: 120.5 };
        await runAgent(suite, 'invoice', [
          { label: 'benign', taskType: suite.taskType, taskId, calls: [{ tool: 'send_invoice', args }] },
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
        // The events as ClickHouse holds them: stop the process (it drains its writes), then open its data.
        await tripline.stop();
        const store = await openClickHouseStore({ dataDir, database: 'tripline' });
        let stored: Awaited<ReturnType<typeof store.eventsForTask>>;
        try {
          // The task is keyed by its trace (the wrapper span declared `taskId`, its name, after the tool ran).
          stored = await store.eventsForTask(TENANT, view.taskId);
        } finally {
          await store.close();
        }
        const invoice = stored.map(({ event }) => event).find((event) => event.tool?.name === 'send_invoice');
        expect(invoice, JSON.stringify(stored.map(({ event }) => event.name))).toBeDefined();
        expect(invoice?.tool?.counterparties).toEqual(
          expect.arrayContaining([
            { kind: 'email', key: keyOf('email', 'billing@customer.example') },
            { kind: 'domain', key: keyOf('domain', 'customer.example') },
            { kind: 'account', key: keyOf('account', 'DE89370400440532013000') },
          ]),
        );
        expect(invoice?.tool?.counterparties).toHaveLength(3);
        expect(invoice?.tool?.resultCounterparties).toEqual(
          expect.arrayContaining([
            { kind: 'email', key: keyOf('email', 'billing@customer.example') },
            { kind: 'email', key: keyOf('email', 'ledger@books.example') },
            { kind: 'domain', key: keyOf('domain', 'books.example') },
          ]),
        );
        expect(invoice?.tool).toMatchObject({
          resultRecorded: true,
          amount: 120.5,
          argumentKeys: ['account', 'amount', 'to'],
        });
        expect(invoice?.attributes['gen_ai.tool.call.arguments']).toMatch(/^\[not stored: \d+ chars\]$/);
        expect(invoice?.attributes['gen_ai.tool.call.result']).toMatch(/^\[not stored: \d+ chars\]$/);
        const everything = JSON.stringify(stored).toLowerCase();
        for (const raw of [
          'billing',
          'customer.example',
          'ledger',
          'books.example',
          'de89',
          '3704 0044',
          '370400440532013000',
        ])
          expect(everything, `a stored event of ${taskId} holds ${raw}`).not.toContain(raw);
      },
      10 * 60_000,
    );
  });
});
