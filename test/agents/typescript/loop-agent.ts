/**
 * A test agent that loops, or does not: the agent kit's telemetry (`@opentelemetry/sdk-node` underneath, OTLP/HTTP
 * with the agent token) and its guard, plus a request-time check (`POST /v1/check`) before every call, as a tool
 * gateway in front of the tool would make.
 *
 *   node test/agents/typescript/loop-agent.ts --endpoint <OTLP url> --api <API url> --token <agent token>
 *        --agent <id> --task-id <id> --task-type <type> --mode loop|varied [--max-calls N] [--max-ms N]
 *
 * `loop` calls `get_order` with the same arguments again and again; `varied` calls it with a different order each
 * time. A runaway agent, it records the check's answer but calls anyway: when the kit's guard refuses
 * (TaskRefusedError: a loop or rate limit's refuse step) it waits and tries again; when the task is revoked
 * (TaskRevokedError, or a check saying so) it stops. One JSON line on stdout: every check's answer, the guard's refusals, the revocation, the calls run.
 */
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { TaskRefusedError, TaskRevokedError, startTelemetry } from '../../../kits/typescript/src/index.ts';
import { AGENT_ATTR } from '../../../kits/typescript/src/conventions.ts';

const { values } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    api: { type: 'string' },
    token: { type: 'string' },
    agent: { type: 'string' },
    'task-id': { type: 'string' },
    'task-type': { type: 'string' },
    mode: { type: 'string' },
    'max-calls': { type: 'string', default: '200' },
    'max-ms': { type: 'string', default: '60000' },
  },
  strict: true,
});
const { endpoint, api, token, agent, mode } = values;
const taskId = values['task-id'];
const taskType = values['task-type'];
if (
  endpoint === undefined ||
  api === undefined ||
  token === undefined ||
  agent === undefined ||
  taskId === undefined ||
  taskType === undefined ||
  (mode !== 'loop' && mode !== 'varied')
) {
  console.error('usage: loop-agent.ts --endpoint --api --token --agent --task-id --task-type --mode loop|varied');
  process.exit(2);
}
const maxCalls = Number(values['max-calls']);
const maxMs = Number(values['max-ms']);

interface CheckSeen {
  call: number;
  allowed: boolean;
  reasons: string[];
  revoked: boolean;
  refusing: { reason: string; untilMs: number } | null;
}
const outcome = {
  checks: [] as CheckSeen[],
  guardRefusals: [] as { call: number; reason: string; refusedUntilMs: number }[],
  revoked: null as { call: number; reason: string } | null,
  ran: 0,
  attempted: 0,
};

async function check(call: number): Promise<CheckSeen> {
  const response = await fetch(`${api}/v1/check`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ taskId, tool: 'get_order', sideEffect: 'read' }),
  });
  const answer = (await response.json()) as {
    allowed: boolean;
    reasons: string[];
    task?: { revoked?: boolean; refusing?: { reason: string; untilMs: number } };
  };
  const seen = {
    call,
    allowed: answer.allowed,
    reasons: answer.reasons,
    revoked: answer.task?.revoked === true,
    refusing: answer.task?.refusing ?? null,
  };
  outcome.checks.push(seen);
  return seen;
}

const telemetry = startTelemetry({
  endpoint,
  apiUrl: api,
  token,
  agentId: agent,
  exportDelayMs: 20,
  guard: { onError: (error) => process.stderr.write(`guard: ${error.message}\n`) },
});
await telemetry.guard?.ready(10_000);

const started = Date.now();
try {
  await telemetry.task(
    taskType,
    async (task) => {
      for (let call = 1; call <= maxCalls && Date.now() - started < maxMs; call += 1) {
        const answer = await check(call);
        if (answer.revoked) {
          outcome.revoked = { call, reason: answer.reasons[0] ?? '' };
          return;
        }
        // A runaway agent does not heed the check's refusal: it calls anyway, and the kit's guard must refuse.
        const orderId = mode === 'loop' ? 'ord-7' : `ord-${call}`;
        outcome.attempted += 1;
        try {
          await task.toolCall(
            'get_order',
            {
              sideEffect: 'read',
              attributes: { [AGENT_ATTR.toolCallArguments]: JSON.stringify({ order_id: orderId }) },
            },
            () => {
              outcome.ran += 1;
              return { id: orderId, status: 'delivered' };
            },
          );
        } catch (error) {
          if (!(error instanceof TaskRefusedError)) throw error;
          outcome.guardRefusals.push({ call, reason: error.reason, refusedUntilMs: error.refusedUntilMs });
          await sleep(150);
          continue;
        }
        await sleep(60);
      }
    },
    { taskId },
  );
} catch (error) {
  if (!(error instanceof TaskRevokedError)) throw error;
  outcome.revoked = { call: outcome.attempted, reason: error.reason };
}
await telemetry.forceFlush();
await telemetry.shutdown();
process.stdout.write(`${JSON.stringify(outcome)}\n`);
