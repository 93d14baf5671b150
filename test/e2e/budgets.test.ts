/**
 * Spend budgets end to end (docs/budgets.md), against Tripline started as `npm start` does, with a budgets file of
 * the test's own (TRIPLINE_BUDGETS) and the shipped price table:
 *
 * - a Vercel AI SDK agent (`ai` 7 with `@ai-sdk/otel`, its scripted model answering 20 tokens in and 10 out per
 *   step; test/agents/typescript/vercel-ai-agent.ts): the SDK's own `chat` spans are the model calls. A benign fleet
 *   with varied spend (1 to 5 steps a task) stays under the type's budget of 300 tokens per task; a runaway task
 *   (a model loop of 14 tool calls, 15 steps, 450 tokens) is revoked with the budget's reason. The `invoke_agent`
 *   span around each run carries the run's summed usage and is not counted again.
 * - model calls in the current GenAI shape, the older one (OpenLLMetry before 0.40: prompt/completion tokens,
 *   `llm.request.type`) and OpenInference's, exported by the OpenTelemetry Node SDK
 *   (test/agents/typescript/llm-calls-agent.ts): each task's cost is what the price table says (GET /v1/spend by
 *   task, agent and type, and the task view), and the task whose calls reach $1.00 is revoked, naming the
 *   budget, the spend, the tokens and the model.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_AGENT_TOKEN, TEST_AUTH_ENV } from '../helpers/auth.ts';
import { VERDICT_MS, getJson, taskView } from '../helpers/agent-plans.ts';
import type { TaskView } from '../helpers/agent-plans.ts';
import { startTriplineProcess } from '../helpers/tripline-process.ts';
import type { TriplineProcess } from '../helpers/tripline-process.ts';
import { waitFor } from '../helpers/wait.ts';

const run = promisify(execFile);
const VERCEL_AGENT = fileURLToPath(new URL('../agents/typescript/vercel-ai-agent.ts', import.meta.url));
const LLM_AGENT = fileURLToPath(new URL('../agents/typescript/llm-calls-agent.ts', import.meta.url));

interface SpendItem {
  key: string;
  costUsd: number;
  inputTokens: number;
  outputTokens: number;
  calls: number;
  unpricedCalls: number;
  models: string[];
}

interface Revocations {
  items: { taskId: string; action: string; reason: string; reasons: string[] }[];
}

type Task = TaskView & { spend: SpendItem | null };

async function runAgent(script: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(process.execPath, [script, ...args], {
      maxBuffer: 16 * 1024 * 1024,
      timeout: 300_000,
    });
    return stdout;
  } catch (error) {
    const failure = error as { stderr?: string; message: string };
    throw new Error(`${script} failed: ${failure.message}\n${failure.stderr ?? ''}`, { cause: error });
  }
}

describe('spend budgets with real OpenTelemetry SDK agents', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-budgets-'));
  const workDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-budgets-plans-'));
  const runId = Date.now().toString(36);
  let tripline: TriplineProcess;

  beforeAll(async () => {
    const budgets = join(workDir, 'budgets.json');
    writeFileSync(
      budgets,
      JSON.stringify({
        budgets: [
          { id: 'support-tokens', scope: 'task', match: 'budget_support', tokens: 300, warnAt: 0.8 },
          { id: 'llm-usd', scope: 'task', match: 'llm_costs', usd: 1, warnAt: 0.8 },
        ],
      }),
    );
    tripline = await startTriplineProcess({
      ...TEST_AUTH_ENV,
      TRIPLINE_DATA_DIR: dataDir,
      TRIPLINE_BUDGETS: budgets,
      LOG_LEVEL: 'warn',
    });
  });

  afterAll(async () => {
    await tripline.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(workDir, { recursive: true, force: true });
  });

  const settled = async (taskId: string): Promise<Task> =>
    waitFor(
      `task ${taskId} to complete or be revoked`,
      async () => {
        const view = (await taskView(tripline.apiUrl, taskId)) as Task | undefined;
        return view !== undefined && view.status !== 'active' ? view : undefined;
      },
      VERDICT_MS,
    );

  it('revokes the Vercel AI SDK task whose chat spans pass its token budget, and no task of the benign fleet', async () => {
    const order = (n: number): { tool: string; args: Record<string, unknown> } => ({
      tool: 'get_order',
      args: { order_id: `A-${String(1000 + n)}` },
    });
    // Benign tasks make 0 to 4 tool calls (1 to 5 steps: 30 to 150 tokens), the runaway 14 (15 steps: 450 tokens).
    const benign = [0, 1, 2, 3, 4, 2, 1, 3].map((calls, index) => ({
      label: 'benign',
      taskType: 'budget_support',
      taskId: `benign-${runId}-${String(index)}`,
      calls: Array.from({ length: calls }, (_, n) => order(n)),
    }));
    const runaway = {
      label: 'runaway',
      taskType: 'budget_support',
      taskId: `runaway-${runId}`,
      calls: Array.from({ length: 14 }, (_, n) => order(n)),
    };
    const planFile = join(workDir, 'vercel.json');
    writeFileSync(planFile, JSON.stringify([...benign.slice(0, 4), runaway, ...benign.slice(4)]));
    await runAgent(VERCEL_AGENT, [
      '--endpoint',
      tripline.otlpUrl,
      '--token',
      TEST_AGENT_TOKEN,
      '--plan',
      planFile,
      '--mode',
      'wrapper',
      '--agent',
      'budget-agent',
    ]);

    const revoked = await settled(runaway.taskId);
    expect(revoked.status).toBe('revoked');
    // The run's spans came before its wrapper named the task: the task is its trace, named by the wrapper.
    const revocations = (await getJson(
      `${tripline.apiUrl}/v1/revocations?task_id=${encodeURIComponent(revoked.taskId)}`,
    )) as Revocations;
    expect(revocations.items).toHaveLength(1);
    const [revocation] = revocations.items;
    expect(revocation?.reason).toMatch(
      /^spend budget reached: task budget "support-tokens" 300 tokens per task of type budget_support: spent/,
    );
    // The step that reached 300 tokens: 10 steps of 20 in and 10 out, of a model the price table does not know.
    expect(revocation?.reasons[0]).toMatch(
      /spent \$0\.\d{4} \(200 tokens in, 100 out, scripted-model; 10 calls of a model not in the price table, priced at its fallback\) in this task$/,
    );
    expect(revoked.spend).toMatchObject({ calls: 15, inputTokens: 300, outputTokens: 150, unpricedCalls: 15 });
    // Its timeline holds every model call, and the revocation after the call that reached the budget.
    const timeline = (await getJson(
      `${tripline.apiUrl}/v1/tasks/${encodeURIComponent(revoked.taskId)}/timeline?limit=1000`,
    )) as { items: { kind: string; detail: { inputTokens?: number } }[] };
    const kinds = timeline.items.map((item) => item.kind);
    expect(kinds.filter((kind) => kind === 'model_call')).toHaveLength(15);
    expect(timeline.items.find((item) => item.kind === 'model_call')?.detail.inputTokens).toBe(20);
    expect(kinds.indexOf('revocation')).toBeGreaterThan(kinds.indexOf('model_call'));

    for (const task of benign) {
      const view = await settled(task.taskId);
      expect(view.status, task.taskId).toBe('completed');
      const steps = task.calls.length + 1;
      expect(view.spend, task.taskId).toMatchObject({
        calls: steps,
        inputTokens: 20 * steps,
        outputTokens: 10 * steps,
      });
    }
    const benignRevoked = (await getJson(`${tripline.apiUrl}/v1/revocations?limit=100`)) as Revocations;
    expect(benignRevoked.items.map((item) => item.taskId)).toEqual([revoked.taskId]);
  });

  it('prices chat spans of the current, the older and the OpenInference shape, and revokes the one over $1.00', async () => {
    const plan = [
      // 2 × (100k in × $2.50 + 10k out × $10 per million) = $0.70
      {
        taskId: `current-${runId}`,
        calls: [1, 2].map(() => ({ shape: 'current', model: 'gpt-4o', input: 100_000, output: 10_000 })),
      },
      // 2 × (1M in × $0.15 + 100k out × $0.60) = $0.42
      {
        taskId: `legacy-${runId}`,
        calls: [1, 2].map(() => ({ shape: 'legacy', model: 'gpt-4o-mini', input: 1_000_000, output: 100_000 })),
      },
      // 50k in × $3 + 5k out × $15 = $0.225
      {
        taskId: `openinference-${runId}`,
        calls: [{ shape: 'openinference', model: 'claude-3-5-sonnet-20241022', input: 50_000, output: 5000 }],
      },
      // 3 × (200k in × $2.50 + 20k out × $10) = 3 × $0.70: the second call reaches $1.40.
      {
        taskId: `over-${runId}`,
        calls: [1, 2, 3].map(() => ({ shape: 'legacy', model: 'gpt-4o', input: 200_000, output: 20_000 })),
      },
    ].map((task) => ({ ...task, taskType: 'llm_costs' }));
    const planFile = join(workDir, 'llm.json');
    writeFileSync(planFile, JSON.stringify(plan));
    await runAgent(LLM_AGENT, ['--endpoint', tripline.otlpUrl, '--token', TEST_AGENT_TOKEN, '--plan', planFile]);

    const [current, legacy, openinference, over] = await Promise.all(plan.map((task) => settled(task.taskId)));
    expect(current?.status).toBe('completed');
    expect(legacy?.status).toBe('completed');
    expect(openinference?.status).toBe('completed');
    expect(over?.status).toBe('revoked');
    expect(current?.spend).toMatchObject({
      costUsd: 0.7,
      inputTokens: 200_000,
      outputTokens: 20_000,
      unpricedCalls: 0,
    });
    expect(current?.spend?.models).toEqual(['gpt-4o-2024-08-06']);
    expect(legacy?.spend).toMatchObject({ costUsd: 0.42, inputTokens: 2_000_000, outputTokens: 200_000, calls: 2 });
    expect(openinference?.spend).toMatchObject({ costUsd: 0.225, models: ['claude-3-5-sonnet-20241022'] });
    expect(over?.spend).toMatchObject({ costUsd: 2.1, calls: 3 });

    const revocations = (await getJson(
      `${tripline.apiUrl}/v1/revocations?task_id=${encodeURIComponent(over?.taskId ?? '')}`,
    )) as Revocations;
    expect(revocations.items.map((item) => item.reasons)).toEqual([
      [
        'task budget "llm-usd" $1.00 per task of type llm_costs: spent $1.40 (400k tokens in, 40k out, gpt-4o) in this task',
      ],
    ]);

    const byTask = (await getJson(`${tripline.apiUrl}/v1/spend?by=task&window=7d`)) as { items: SpendItem[] };
    const costOf = (taskId: string | undefined): number | undefined =>
      byTask.items.find((item) => item.key === taskId)?.costUsd;
    expect([current, legacy, openinference, over].map((task) => costOf(task?.taskId))).toEqual([0.7, 0.42, 0.225, 2.1]);
    const byType = (await getJson(`${tripline.apiUrl}/v1/spend?by=task_type&window=7d`)) as { items: SpendItem[] };
    expect(byType.items.find((item) => item.key === 'llm_costs')).toMatchObject({ costUsd: 3.445, calls: 8 });
    const byAgent = (await getJson(`${tripline.apiUrl}/v1/spend?by=agent&window=7d`)) as { items: SpendItem[] };
    expect(byAgent.items.find((item) => item.key === 'llm-agent')).toMatchObject({ costUsd: 3.445 });
  });
});
