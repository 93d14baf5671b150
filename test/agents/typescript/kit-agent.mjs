/**
 * A plain-JavaScript agent protected by the installed `@tripline/agent` package, the way a user writes one. The
 * end-to-end test (test/e2e/typescript-kit.test.ts) copies it into a folder where the package was installed from
 * its tarball and runs it from there, so `@tripline/agent` resolves to that install and nothing of the repository.
 *
 *   node kit-agent.mjs <plan.json>
 *   environment: TRIPLINE_OTLP_URL, TRIPLINE_API_URL, TRIPLINE_AGENT_TOKEN, AGENT_ID
 *
 * The plan is a list of tasks (test/helpers/agent-plans.ts, `PlannedTask`, plus `persist`): each task's tool calls
 * run through `task.toolCall`; a task with `persist` then keeps looking orders up until Tripline stops it (for at
 * most PERSIST_MS). One JSON line per task on stdout: the calls it attempted, the tool bodies that actually ran, and
 * the refusal (`TaskRevokedError`) if there was one.
 */
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { TaskRevokedError, startTelemetry } from '@tripline/agent';
import { AGENT_ATTR } from '@tripline/agent/conventions';

const PERSIST_MS = 30_000;

/** The agent's tools: what a support agent's functions return, without a network. */
const TOOLS = {
  get_order: { sideEffect: 'read', run: (args) => ({ id: args.order_id, total: 49.9, status: 'delivered' }) },
  issue_refund: { sideEffect: 'write', run: (args) => ({ refunded: args.amount, order: args.order_id }) },
  export_customers: {
    sideEffect: 'read',
    run: (args) =>
      Array.from({ length: Number(args.limit) }, (_, i) => ({ id: i + 1, email: `c${i + 1}@shop.example` })),
  },
  http_post: { sideEffect: 'write', run: (args) => ({ status: 200, url: args.url }) },
};

function required(name) {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
}

const plan = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8'));
const telemetry = startTelemetry({
  endpoint: required('TRIPLINE_OTLP_URL'),
  apiUrl: required('TRIPLINE_API_URL'),
  token: required('TRIPLINE_AGENT_TOKEN'),
  agentId: required('AGENT_ID'),
  exportDelayMs: 50,
  guard: { onError: (error) => process.stderr.write(`guard: ${error.message}\n`) },
});

for (const planned of plan) {
  const outcome = { label: planned.label, taskId: planned.taskId, attempted: 0, ran: 0, refused: null };
  const call = (task, tool, args) => {
    outcome.attempted += 1;
    const { sideEffect, run } = TOOLS[tool];
    return task.toolCall(
      tool,
      { sideEffect, attributes: { [AGENT_ATTR.toolCallArguments]: JSON.stringify(args) } },
      () => {
        outcome.ran += 1;
        return run(args);
      },
    );
  };
  try {
    await telemetry.task(
      planned.taskType,
      async (task) => {
        for (const { tool, args } of planned.calls) await call(task, tool, args);
        const until = Date.now() + (planned.persist === true ? PERSIST_MS : 0);
        while (Date.now() < until) {
          await call(task, 'get_order', { order_id: 'ord-7' });
          await sleep(20);
        }
      },
      { taskId: planned.taskId },
    );
  } catch (error) {
    if (!(error instanceof TaskRevokedError)) throw error;
    outcome.refused = { operation: error.operation, revocationId: error.revocationId, reason: error.reason };
  }
  process.stdout.write(`${JSON.stringify(outcome)}\n`);
}
await telemetry.shutdown();
