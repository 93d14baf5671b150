/**
 * One simulated agent in its own process (each agent has its own `@opentelemetry/sdk-node`, as a real one
 * would). Reads a job as JSON on stdin, runs its task plans, reports one JSON line per finished task on
 * stdout, flushes its spans and exits.
 */
import { startTelemetry } from '../../kits/typescript/src/index.ts';
import { runPlans } from './run-plan.ts';
import type { TaskPlan } from './scenarios.ts';

export interface AgentJob {
  endpoint: string;
  agentId: string;
  plans: TaskPlan[];
  headers?: Record<string, string>;
  token?: string;
  /** Tripline's API: set, the agent's guard refuses tool calls of revoked tasks (pushed over /v1/stream). */
  apiUrl?: string;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const job = JSON.parse(await readStdin()) as AgentJob;
const telemetry = startTelemetry({
  endpoint: job.endpoint,
  agentId: job.agentId,
  exportDelayMs: 100,
  ...(job.headers === undefined ? {} : { headers: job.headers }),
  ...(job.token === undefined ? {} : { token: job.token }),
  ...(job.apiUrl === undefined ? {} : { apiUrl: job.apiUrl }),
});
await runPlans(telemetry, job.plans, (progress) => {
  process.stdout.write(`${JSON.stringify({ type: 'task', ...progress })}\n`);
});
await telemetry.forceFlush();
await telemetry.shutdown();
process.stdout.write(`${JSON.stringify({ type: 'done', agentId: job.agentId })}\n`);
