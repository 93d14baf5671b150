/**
 * Real Mastra runs, recorded as the bytes Mastra sends: test/agents/typescript/mastra-agent.ts (`@mastra/core` 1.71,
 * `@mastra/otel-exporter` 1.4, the scripted model) runs a plan against a local HTTP server standing in for
 * Tripline's OTLP endpoint, which keeps the body of every `POST /v1/traces` (OTLP/HTTP protobuf) as it arrived.
 * Nothing here writes a span: whatever the tests read, Mastra exported.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const MASTRA_AGENT = fileURLToPath(new URL('../agents/typescript/mastra-agent.ts', import.meta.url));

export interface MastraPlannedTask {
  label: string;
  taskType: string;
  taskId?: string | null;
  calls: { tool: string; args: Record<string, unknown> }[];
}

export interface MastraRun {
  /** The bodies of Mastra's (and, in mode `wrapper`, the wrapper span's) export requests, in arrival order. */
  bodies: Uint8Array[];
  /** What the agent printed for each task: its label, task id (mode `wrapper`) and trace id. */
  tasks: { label: string; taskId: string | null; traceId: string }[];
  /** The agent token the requests carried. */
  authorization: string[];
}

export const MASTRA_TOKEN = 'mastra-run-token';

/** Runs `plan` on the Mastra test agent in `mode` and returns what it exported. */
export async function recordMastraRun(plan: MastraPlannedTask[], mode: 'wrapper' | 'trace'): Promise<MastraRun> {
  const bodies: Uint8Array[] = [];
  const authorization: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') {
        bodies.push(new Uint8Array(Buffer.concat(chunks)));
        authorization.push(req.headers.authorization ?? '');
      }
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const dir = mkdtempSync(join(tmpdir(), 'tripline-mastra-run-'));
  try {
    const planFile = join(dir, 'plan.json');
    writeFileSync(planFile, JSON.stringify(plan));
    const args = ['--endpoint', `http://127.0.0.1:${String(port)}`, '--token', MASTRA_TOKEN, '--plan', planFile];
    const { stdout } = await run(process.execPath, [MASTRA_AGENT, ...args, '--mode', mode], { timeout: 120_000 });
    const tasks = stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as MastraRun['tasks'][number]);
    return { bodies, tasks, authorization };
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
