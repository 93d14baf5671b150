/**
 * Runs a fleet of simulated agents, one child process per agent, each exporting OTLP to `endpoint`.
 * Tasks of one agent run in order; agents run side by side.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { AgentJob } from './agent-process.ts';
import type { PlanProgress } from './run-plan.ts';
import type { TaskPlan } from './scenarios.ts';

const AGENT_SCRIPT = fileURLToPath(new URL('./agent-process.ts', import.meta.url));

export interface FleetOptions {
  endpoint: string;
  plans: readonly TaskPlan[];
  headers?: Record<string, string>;
  /** Tripline's agent token for OTLP and the API (TelemetryOptions.token). */
  token?: string;
  /** Tripline's API: the agents' guards refuse tool calls of revoked tasks. */
  apiUrl?: string;
  onTask?: (progress: PlanProgress & { agentId: string }) => void;
  /** Most agent processes at once (default 8). */
  concurrency?: number;
}

export async function runFleet(options: FleetOptions): Promise<void> {
  const byAgent = new Map<string, TaskPlan[]>();
  for (const plan of options.plans) byAgent.set(plan.agentId, [...(byAgent.get(plan.agentId) ?? []), plan]);
  const jobs = [...byAgent.entries()].map(([agentId, plans]): AgentJob => ({
    endpoint: options.endpoint,
    agentId,
    plans,
    ...(options.headers === undefined ? {} : { headers: options.headers }),
    ...(options.token === undefined ? {} : { token: options.token }),
    ...(options.apiUrl === undefined ? {} : { apiUrl: options.apiUrl }),
  }));
  const concurrency = options.concurrency ?? 8;
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, jobs.length) }, async () => {
    while (next < jobs.length) {
      const job = jobs[next];
      next += 1;
      if (job !== undefined) await runAgent(job, options.onTask);
    }
  });
  await Promise.all(workers);
}

function runAgent(job: AgentJob, onTask: FleetOptions['onTask']): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AGENT_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-4000);
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const message = JSON.parse(line) as { type: string } & PlanProgress;
        if (message.type === 'task') onTask?.({ ...message, agentId: job.agentId });
      } catch {
        // not a progress line
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`agent ${job.agentId} exited with code ${String(code)}: ${stderr}`));
    });
    child.stdin.end(JSON.stringify(job));
  });
}
