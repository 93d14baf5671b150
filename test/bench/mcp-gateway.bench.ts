/**
 * What the MCP gateway adds to a tool call: the same `tools/call` (`get_order`) made by the official TypeScript SDK
 * client directly to the MCP server and through the gateway (task token as the bearer: the credential verified, the
 * authority's check with the task's state and the Cedar policies, the call forwarded, the response read for its
 * span, the span handed to ingest), p50 / p95 / p99 over many calls. Two servers: the shop over Streamable HTTP
 * (this process; SSE responses) and the shop over stdio (direct: the client spawns it; through the gateway: the
 * gateway spawns it per session). Calls alternate between the two paths, so drift on a shared machine hits both.
 *
 * Run: `node test/bench/mcp-gateway.bench.ts` (CALLS=2000 WARMUP=200 by default; Node 24: node_modules/.bin first on
 * PATH). Tripline runs as `npm start` does, in a child process (embedded mode). Figures, not assertions.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { TEST_AUTH_ENV, agentHeaders } from '../helpers/auth.ts';
import { startShopHttpServer } from '../helpers/mcp-shop.ts';
import { freePort, startTriplineProcess } from '../helpers/tripline-process.ts';

const CALLS = Number(process.env.CALLS ?? 2000);
const WARMUP = Number(process.env.WARMUP ?? 200);
const STDIO_SERVER = fileURLToPath(new URL('../agents/typescript/mcp-shop-stdio.ts', import.meta.url));
const POLICIES = fileURLToPath(new URL('../../policies/', import.meta.url));

interface Stats {
  p50: number;
  p95: number;
  p99: number;
  mean: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), mean: sorted.reduce((a, b) => a + b, 0) / sorted.length };
}

async function connected(transport: Transport): Promise<Client> {
  const client = new Client({ name: 'mcp-gateway-bench', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

async function timedCall(client: Client, i: number): Promise<number> {
  const started = performance.now();
  await client.callTool({ name: 'get_order', arguments: { order_id: `ord-${String(i % 200)}` } });
  return performance.now() - started;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'tripline-bench-mcp-'));
  const policyDir = join(work, 'policies');
  mkdirSync(policyDir);
  copyFileSync(join(POLICIES, 'schema.cedarschema'), join(policyDir, 'schema.cedarschema'));
  writeFileSync(
    join(policyDir, 'bench.cedar'),
    '@id("bench.start")\npermit (principal, action == Tripline::Action::"start_task", resource == Tripline::TaskType::"mcp_bench");\n' +
      '@id("bench.tools")\npermit (principal, action == Tripline::Action::"call_tool", resource) when { context.task_type == "mcp_bench" };\n',
  );
  const shop = await startShopHttpServer();
  const port = await freePort();
  const tripline = await startTriplineProcess({
    ...TEST_AUTH_ENV,
    TRIPLINE_DATA_DIR: join(work, 'data'),
    TRIPLINE_POLICY_DIR: policyDir,
    TRIPLINE_MCP_PORT: String(port),
    TRIPLINE_MCP_SERVERS: JSON.stringify({
      shop: { url: shop.url },
      local: { command: process.execPath, args: [STDIO_SERVER, join(work, 'gateway-stdio.jsonl')] },
    }),
    LOG_LEVEL: 'warn',
  });
  const clients: Client[] = [];
  try {
    const started = await fetch(`${tripline.apiUrl}/v1/tasks`, {
      method: 'POST',
      headers: { ...agentHeaders, 'content-type': 'application/json' },
      body: JSON.stringify({ agentId: 'bench-agent', taskType: 'mcp_bench', ttlSeconds: 3600 }),
    });
    const { token } = (await started.json()) as { token: string };
    const viaGateway = (name: string): StreamableHTTPClientTransport =>
      new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${String(port)}/mcp/${name}`), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      });
    const pairs: [string, Client, Client][] = [
      [
        'Streamable HTTP server',
        await connected(new StreamableHTTPClientTransport(new URL(shop.url))),
        await connected(viaGateway('shop')),
      ],
      [
        'stdio server',
        await connected(
          new StdioClientTransport({
            command: process.execPath,
            args: [STDIO_SERVER, join(work, 'direct-stdio.jsonl')],
          }),
        ),
        await connected(viaGateway('local')),
      ],
    ];
    for (const [, direct, gateway] of pairs) clients.push(direct, gateway);
    console.log(
      `MCP gateway bench: ${String(CALLS)} calls per path after ${String(WARMUP)} warm-up, ${String(availableParallelism())} CPUs, load ${loadavg()
        .map((value) => value.toFixed(2))
        .join(' ')}`,
    );
    console.log('| server | path | p50 ms | p95 ms | p99 ms | mean ms |');
    console.log('|---|---|---|---|---|---|');
    for (const [label, direct, gateway] of pairs) {
      const samples: { direct: number[]; gateway: number[] } = { direct: [], gateway: [] };
      for (let i = 0; i < WARMUP + CALLS; i++) {
        // Alternate which path goes first, so neither always follows the other.
        const order: ['direct' | 'gateway', Client][] =
          i % 2 === 0
            ? [
                ['direct', direct],
                ['gateway', gateway],
              ]
            : [
                ['gateway', gateway],
                ['direct', direct],
              ];
        for (const [path, client] of order) {
          const ms = await timedCall(client, i);
          if (i >= WARMUP) samples[path].push(ms);
        }
      }
      const d = stats(samples.direct);
      const g = stats(samples.gateway);
      const row = (path: string, s: Stats): string =>
        `| ${label} | ${path} | ${s.p50.toFixed(2)} | ${s.p95.toFixed(2)} | ${s.p99.toFixed(2)} | ${s.mean.toFixed(2)} |`;
      console.log(row('direct', d));
      console.log(row('through the gateway', g));
      console.log(
        `| ${label} | added by the gateway | +${(g.p50 - d.p50).toFixed(2)} | +${(g.p95 - d.p95).toFixed(2)} | +${(g.p99 - d.p99).toFixed(2)} | +${(g.mean - d.mean).toFixed(2)} |`,
      );
    }
    console.log(
      `load after: ${loadavg()
        .map((value) => value.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    await Promise.allSettled(clients.map((client) => client.close()));
    await tripline.stop();
    await shop.close();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
