/**
 * Loops end to end, the way a user runs it: `npm start` (embedded, and distributed over Kafka with all roles in one
 * process) with a loop policy file (TRIPLINE_LIMITS_FILE),
 * real agents (test/agents/typescript/loop-agent.ts: the agent kit over `@opentelemetry/sdk-node`, OTLP/HTTP, the
 * kit's guard, and a `POST /v1/check` before each call):
 *
 * - an agent calling `get_order` with the same arguments again and again is alerted (`loop.repeat`), then refused
 *   through /v1/check with the reason while its task stays active (and the kit's guard refuses it with
 *   TaskRefusedError), then, still looping after the refusal ends, revoked with the `loop.repeat` reason;
 * - an agent calling the same tool with different arguments is neither refused, revoked nor alerted for a loop.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_AGENT_TOKEN, TEST_AUTH_ENV, adminHeaders } from '../helpers/auth.ts';
import { kafkaBrokers } from '../helpers/kafka-broker.ts';
import { startTriplineProcess } from '../helpers/tripline-process.ts';
import type { TriplineProcess } from '../helpers/tripline-process.ts';
import { waitFor } from '../helpers/wait.ts';

const run = promisify(execFile);
const AGENT = fileURLToPath(new URL('../agents/typescript/loop-agent.ts', import.meta.url));
const TASK_TYPE = 'customer_refund';
const AGENT_ID = 'refund-loop-agent';
const REFUSE_MS = 2500;

interface AgentOutcome {
  checks: {
    call: number;
    allowed: boolean;
    reasons: string[];
    revoked: boolean;
    refusing: { reason: string; untilMs: number } | null;
  }[];
  guardRefusals: { call: number; reason: string; refusedUntilMs: number }[];
  revoked: { call: number; reason: string } | null;
  ran: number;
  attempted: number;
}

interface Listed<T> {
  items: T[];
}
interface AlertView {
  taskId: string;
  decision: string;
  reasons: string[];
}
interface RevocationView {
  taskId: string;
  action: string;
  source: string;
  reason: string;
  reasons: string[];
}

/** The embedded mode, and the distributed mode (all roles in one process, over Kafka). */
const MODES: { name: string; env: () => Record<string, string> }[] = [
  { name: 'embedded', env: () => ({}) },
  {
    name: 'distributed',
    env: () => {
      const run = randomBytes(4).toString('hex');
      return {
        KAFKA_BROKERS: kafkaBrokers().join(','),
        KAFKA_GROUP_ID: `loops-${run}`,
        KAFKA_PARTITIONS: '2',
        TRIPLINE_TOPIC_TOOL_CALLS: `loops-${run}.tool_calls`,
        TRIPLINE_TOPIC_DATA_ACCESS: `loops-${run}.data_access`,
        TRIPLINE_TOPIC_PRIVILEGE_CHANGES: `loops-${run}.privilege_changes`,
        TRIPLINE_TOPIC_ALERTS: `loops-${run}.alerts`,
        TRIPLINE_TOPIC_REVOCATIONS: `loops-${run}.revocations`,
        TRIPLINE_TOPIC_DEAD_LETTER: `loops-${run}.dead_letter`,
      };
    },
  },
];

describe.each(MODES)('loops ($name): refused through /v1/check, then revoked with the loop reason', (mode) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-loops-'));
  const limitsFile = join(dataDir, 'limits.json');
  let tripline: TriplineProcess;

  beforeAll(async () => {
    writeFileSync(
      limitsFile,
      JSON.stringify({
        version: 1,
        defaults: { repeat: { alert: 3, refuse: 5, revoke: 9 }, refuseForMs: REFUSE_MS },
      }),
    );
    tripline = await startTriplineProcess({
      ...TEST_AUTH_ENV,
      TRIPLINE_DATA_DIR: dataDir,
      TRIPLINE_LIMITS_FILE: limitsFile,
      LOG_LEVEL: 'warn',
      ...mode.env(),
    });
  }, 90_000);

  afterAll(async () => {
    await tripline.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function runAgent(mode: 'loop' | 'varied', taskId: string, maxCalls: number): Promise<AgentOutcome> {
    const args = [
      AGENT,
      '--endpoint',
      tripline.otlpUrl,
      '--api',
      tripline.apiUrl,
      '--token',
      TEST_AGENT_TOKEN,
      '--agent',
      AGENT_ID,
      '--task-id',
      taskId,
      '--task-type',
      TASK_TYPE,
      '--mode',
      mode,
      '--max-calls',
      String(maxCalls),
    ];
    try {
      const { stdout } = await run(process.execPath, args, { timeout: 120_000 });
      const line = stdout.split('\n').find((candidate) => candidate.startsWith('{'));
      if (line === undefined) throw new Error(`no outcome line in ${stdout}`);
      return JSON.parse(line) as AgentOutcome;
    } catch (error) {
      const failure = error as { stderr?: string; message: string };
      throw new Error(`loop-agent.ts failed: ${failure.message}\n${failure.stderr ?? ''}`, { cause: error });
    }
  }

  async function get<T>(path: string): Promise<T> {
    const response = await fetch(`${tripline.apiUrl}${path}`, { headers: adminHeaders });
    expect(response.status, path).toBe(200);
    return (await response.json()) as T;
  }

  it('refuses a looping agent while its task stays active, then revokes it with loop.repeat', async () => {
    const outcome = await runAgent('loop', 'loop-task-1', 400);

    // Refused through /v1/check with the loop's reason, the task still active (not revoked).
    const refused = outcome.checks.filter((check) => check.refusing !== null);
    expect(refused.length, JSON.stringify(outcome.checks.slice(-5))).toBeGreaterThan(0);
    const first = refused[0];
    expect(first?.allowed).toBe(false);
    expect(first?.revoked).toBe(false);
    expect(first?.refusing?.reason).toBe(
      'loop.repeat: tool get_order was called 5 times with the same arguments in this task (its next calls are refused)',
    );
    expect(first?.reasons[0]).toMatch(
      /^task loop-task-1 is refused calls until \d{4}-\d\d-\d\dT[\d:.]+Z: loop\.repeat: tool get_order was called 5 times/,
    );
    // Before the refusal the checks allowed the calls (the first ones may come before Tripline heard of the task).
    const before = outcome.checks.filter((check) => check.call < (first?.call ?? 0));
    expect(before.length).toBeGreaterThanOrEqual(5);
    for (const check of before)
      expect(
        check.allowed || check.reasons[0]?.endsWith('is not known to Tripline (no token issued, no events seen)'),
        JSON.stringify(check),
      ).toBe(true);
    expect(before.filter((check) => check.allowed).length).toBeGreaterThan(0);

    // The agent called anyway: the kit's guard refused those calls (TaskRefusedError), the tool did not run.
    expect(outcome.guardRefusals.length).toBeGreaterThan(0);
    expect(outcome.guardRefusals[0]?.reason).toMatch(
      /^loop\.repeat: tool get_order was called 5 times with the same arguments in this task \(its next calls are refused\) until /,
    );
    expect(outcome.ran).toBe(outcome.attempted - outcome.guardRefusals.length);

    // After the refusal ended the agent kept looping: revoked with the loop reason, and it stopped.
    expect(outcome.revoked).not.toBeNull();
    expect(outcome.revoked?.reason).toContain(
      'loop.repeat: tool get_order was called 9 times with the same arguments in this task (the task is revoked)',
    );
    expect(outcome.ran).toBeGreaterThanOrEqual(9);
    const refusedCalls = refused.map((check) => check.call);
    const revokedAt = outcome.revoked?.call ?? 0;
    expect(Math.min(...refusedCalls)).toBeLessThan(revokedAt);

    const revocations = await waitFor('the loop revocation to be stored', async () => {
      const page = await get<Listed<RevocationView>>('/v1/revocations?task_id=loop-task-1');
      return page.items.length > 0 ? page.items : undefined;
    });
    expect(revocations).toHaveLength(1);
    expect(revocations[0]).toMatchObject({
      action: 'revoke',
      source: 'detector',
      reason:
        'loop.repeat: tool get_order was called 9 times with the same arguments in this task (the task is revoked)',
    });
    const alerts = await waitFor('the loop alerts to be stored', async () => {
      const page = await get<Listed<AlertView>>('/v1/alerts?task_id=loop-task-1');
      return page.items.length >= 3 ? page.items : undefined;
    });
    const firstReasons = alerts.map((alert) => alert.reasons[0] ?? '');
    expect(firstReasons).toContainEqual(
      'loop.repeat: tool get_order was called 3 times with the same arguments in this task (alert)',
    );
    expect(
      firstReasons.some((reason) => /^loop\.repeat: .* 5 times .*\(its next calls are refused\) until /.test(reason)),
    ).toBe(true);
    const task = await get<{ status: string }>('/v1/tasks/loop-task-1');
    expect(task.status).toBe('revoked');
  }, 150_000);

  it('leaves an agent alone that calls the same tool with different arguments', async () => {
    const outcome = await runAgent('varied', 'varied-task-1', 20);
    expect(outcome.ran).toBe(20);
    expect(outcome.revoked).toBeNull();
    expect(outcome.guardRefusals).toEqual([]);
    expect(outcome.attempted).toBe(20);
    expect(outcome.checks.every((check) => check.refusing === null && !check.revoked)).toBe(true);
    const task = await waitFor('the varied task to be stored', async () => {
      const response = await fetch(`${tripline.apiUrl}/v1/tasks/varied-task-1`, { headers: adminHeaders });
      return response.status === 200 ? ((await response.json()) as { status: string }) : undefined;
    });
    expect(task.status).not.toBe('revoked');
    const alerts = await get<Listed<AlertView>>('/v1/alerts?task_id=varied-task-1');
    expect(alerts.items.flatMap((alert) => alert.reasons).filter((reason) => /^(loop|rate)\./.test(reason))).toEqual(
      [],
    );
    const revocations = await get<Listed<RevocationView>>('/v1/revocations?task_id=varied-task-1');
    expect(revocations.items).toEqual([]);
  }, 150_000);
});
