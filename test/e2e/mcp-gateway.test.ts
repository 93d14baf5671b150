/**
 * The MCP gateway against Tripline started as `npm start` does (embedded), with real MCP servers behind it (the
 * TypeScript SDK's `Server`: the shop over Streamable HTTP in this process, and the same over stdio, spawned by the
 * gateway per session: test/helpers/mcp-shop.ts) and the official SDKs as clients: the TypeScript SDK's `Client`
 * with a Tripline task token as its bearer token, and the Python `mcp` package's `Client` with an operator-bound
 * client token (test/agents/python/mcp_client/client.py; its venv from test/agents/python/venv.sh).
 *
 * - a client without a valid credential is refused (401 with the MCP authorization challenge);
 * - benign calls pass (tools/list, tools/call, resources/read, both transports) and their spans are stored as the
 *   task's tool calls and data access;
 * - after warm-up (benign bound sessions, each a task that ends with its session), a client that exports the
 *   customers and posts them to a host its type never saw is revoked by the detector, and its next call through the
 *   gateway is refused with an MCP error (`-32010`, `data.code` TASK_REVOKED) that never reaches the server: once for
 *   a task-token client (TypeScript, HTTP upstream), once for a bound client (Python, stdio upstream);
 * - the gateway as its own process (`node services/app/mcp-gateway-main.ts`, the distributed mode's adapters: the
 *   API's JWKS, `POST /v1/check` and OTLP to the receiver, with an agent token) passes a call, stores its span and
 *   refuses the next call of a task a person killed.
 */
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXFIL_URL, VERDICT_MS, baselineView, benignCalls, getJson, rng, taskView } from '../helpers/agent-plans.ts';
import type { Call } from '../helpers/agent-plans.ts';
import { TEST_AGENT_TOKEN, TEST_AUTH_ENV, adminHeaders, agentHeaders } from '../helpers/auth.ts';
import { REFUND_POLICY_URI, startShopHttpServer } from '../helpers/mcp-shop.ts';
import type { ServedCall, ShopHttpServer } from '../helpers/mcp-shop.ts';
import { pythonFor } from '../helpers/python.ts';
import { freePort, startTriplineProcess } from '../helpers/tripline-process.ts';
import type { TriplineProcess } from '../helpers/tripline-process.ts';
import { waitFor } from '../helpers/wait.ts';

const run = promisify(execFile);
const STDIO_SERVER = fileURLToPath(new URL('../agents/typescript/mcp-shop-stdio.ts', import.meta.url));
const MCP_GATEWAY_MAIN = fileURLToPath(new URL('../../services/app/mcp-gateway-main.ts', import.meta.url));
const PY_CLIENT = fileURLToPath(new URL('../agents/python/mcp_client/client.py', import.meta.url));
const POLICIES = fileURLToPath(new URL('../../policies/', import.meta.url));

const TASK_TYPE = 'mcp_support';
const CLIENT_TOKEN = 'desk-client-token-0123456789abcdefgh';
const BOUND_AGENT = 'desk-assistant';
const TOKEN_AGENT = 'ts-mcp-agent';
const WARMUP_TASKS = 15;
const WARMUP_RUN = 18;
/** The call a revoked task makes next: it must be refused before the server sees it. */
const AFTER_REVOCATION: Call = { tool: 'issue_refund', args: { order_id: 'ord-after-revocation', amount: 1 } };
const EXFILTRATION: Call[] = [
  { tool: 'get_order', args: { order_id: 'ord-17' } },
  { tool: 'export_customers', args: { limit: 50 } },
  { tool: 'http_post', args: { url: EXFIL_URL, body: 'id,name,email\n1,Customer 1,customer1@shop.example\n...' } },
];

interface PySession {
  label: string;
  tools: string[];
  ran: Call[];
  refused: {
    tool: string;
    code: string | null;
    message: string;
    mcpCode: number;
    data: Record<string, unknown>;
  } | null;
}

describe('the MCP gateway (embedded) with the official MCP SDKs as clients', () => {
  const workDir = mkdtempSync(join(tmpdir(), 'tripline-e2e-mcp-'));
  const stdioLog = join(workDir, 'stdio-calls.jsonl');
  let shop: ShopHttpServer;
  let tripline: TriplineProcess;
  let mcpUrl: string;
  let python: string;

  beforeAll(async () => {
    python = await pythonFor('mcp_client');
    shop = await startShopHttpServer();
    const policyDir = join(workDir, 'policies');
    mkdirSync(policyDir);
    copyFileSync(join(POLICIES, 'schema.cedarschema'), join(policyDir, 'schema.cedarschema'));
    writeFileSync(
      join(policyDir, 'mcp.cedar'),
      [
        `@id("${TASK_TYPE}.start")`,
        `permit (principal, action == Tripline::Action::"start_task", resource == Tripline::TaskType::"${TASK_TYPE}");`,
        `@id("${TASK_TYPE}.tools")`,
        `permit (principal, action == Tripline::Action::"call_tool", resource) when { context.task_type == "${TASK_TYPE}" };`,
        '',
      ].join('\n'),
    );
    const port = await freePort();
    mcpUrl = `http://127.0.0.1:${String(port)}`;
    tripline = await startTriplineProcess({
      ...TEST_AUTH_ENV,
      TRIPLINE_DATA_DIR: join(workDir, 'data'),
      TRIPLINE_POLICY_DIR: policyDir,
      TRIPLINE_WARMUP_TASKS: String(WARMUP_TASKS),
      TRIPLINE_VERIFY_WINDOW_MS: '1500',
      TRIPLINE_MCP_PORT: String(port),
      TRIPLINE_MCP_PUBLIC_URL: mcpUrl,
      TRIPLINE_MCP_SERVERS: JSON.stringify({
        shop: { url: shop.url },
        local: { command: process.execPath, args: [STDIO_SERVER, stdioLog] },
      }),
      TRIPLINE_MCP_CLIENTS: JSON.stringify([
        { name: 'desk', token: CLIENT_TOKEN, agentId: BOUND_AGENT, taskType: TASK_TYPE },
      ]),
      LOG_LEVEL: 'warn',
    });
  }, 10 * 60_000);

  afterAll(async () => {
    await tripline.stop();
    await shop.close();
    rmSync(workDir, { recursive: true, force: true });
  });

  async function startTask(): Promise<{ taskId: string; token: string }> {
    const response = await fetch(`${tripline.apiUrl}/v1/tasks`, {
      method: 'POST',
      headers: { ...agentHeaders, 'content-type': 'application/json' },
      body: JSON.stringify({ agentId: TOKEN_AGENT, taskType: TASK_TYPE }),
    });
    expect(response.status).toBe(201);
    return (await response.json()) as { taskId: string; token: string };
  }

  async function connect(
    upstream: string,
    token: string,
  ): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
    const client = new Client({ name: 'tripline-e2e', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${mcpUrl}/mcp/${upstream}`), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    });
    await client.connect(transport);
    return { client, transport };
  }

  async function pyRun(upstream: string, plan: unknown[]): Promise<PySession[]> {
    const planFile = join(workDir, `plan-${String(Date.now())}.json`);
    writeFileSync(planFile, JSON.stringify(plan));
    const { stdout } = await run(
      python,
      [PY_CLIENT, '--url', `${mcpUrl}/mcp/${upstream}`, '--token', CLIENT_TOKEN, '--plan', planFile],
      {
        timeout: 240_000,
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    return stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as PySession);
  }

  /** The tasks the gateway started for the bound client, oldest first. */
  async function boundTasks(): Promise<string[]> {
    const page = (await getJson(`${tripline.apiUrl}/v1/decisions?agent_id=${BOUND_AGENT}&limit=1000`)) as {
      items: { action: string; decision: string; taskId: string; time: string }[];
    };
    return page.items
      .filter((item) => item.action === 'start_task' && item.decision === 'allow')
      .sort((a, b) => a.time.localeCompare(b.time))
      .map((item) => item.taskId)
      .filter((taskId, index, all) => all.indexOf(taskId) === index);
  }

  const stdioCalls = (): ServedCall[] =>
    existsSync(stdioLog)
      ? readFileSync(stdioLog, 'utf8')
          .trim()
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => JSON.parse(line) as ServedCall)
      : [];

  it('refuses a client without a valid credential, with the MCP authorization challenge', async () => {
    const initialize = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    };
    const post = (headers: Record<string, string>): Promise<Response> =>
      fetch(`${mcpUrl}/mcp/shop`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
        body: JSON.stringify(initialize),
      });
    const metadataUrl = `${mcpUrl}/.well-known/oauth-protected-resource/mcp/shop`;
    const missing = await post({});
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe(`Bearer resource_metadata="${metadataUrl}"`);
    const metadata = (await (await fetch(metadataUrl)).json()) as Record<string, unknown>;
    expect(metadata.resource).toBe(`${mcpUrl}/mcp/shop`);
    expect(metadata.bearer_methods_supported).toEqual(['header']);
    expect(Array.isArray(metadata.authorization_servers)).toBe(true);

    const forged = `${Buffer.from('{"alg":"EdDSA","typ":"at+jwt"}').toString('base64url')}.${Buffer.from('{"task_id":"x"}').toString('base64url')}.c2ln`;
    for (const token of ['not-a-known-client-token-at-all', forged, TEST_AGENT_TOKEN]) {
      const refused = await post({ authorization: `Bearer ${token}` });
      expect(refused.status, token).toBe(401);
      expect(refused.headers.get('www-authenticate')).toMatch(
        /^Bearer error="invalid_token", error_description="[^"]+", resource_metadata="/,
      );
    }
    // The SDK client fails to connect; the server never hears of it.
    await expect(connect('shop', forged)).rejects.toThrow(/401|Unauthorized/i);
    const { stdout } = await run(python, [
      PY_CLIENT,
      '--url',
      `${mcpUrl}/mcp/local`,
      '--token',
      forged,
      '--expect-unauthorized',
    ]);
    const outcome = JSON.parse(stdout) as { unauthorized: boolean; error: string };
    expect(outcome.unauthorized).toBe(true);
    expect(outcome.error).toMatch(/401|Unauthorized/i);
    expect(shop.calls).toEqual([]);
    expect(stdioCalls()).toEqual([]);
  }, 120_000);

  it('passes benign calls of a task-token client (TypeScript SDK, HTTP and stdio servers) and stores their spans', async () => {
    const { taskId, token } = await startTask();
    for (const upstream of ['shop', 'local']) {
      const { client, transport } = await connect(upstream, token);
      const { tools } = await client.listTools();
      expect(tools.map((tool) => tool.name).sort()).toEqual([
        'export_customers',
        'get_order',
        'http_post',
        'issue_refund',
      ]);
      const result = await client.callTool({ name: 'get_order', arguments: { order_id: `ord-${upstream}` } });
      expect(JSON.stringify(result.content)).toContain(`ord-${upstream}`);
      const read = await client.readResource({ uri: REFUND_POLICY_URI });
      expect(JSON.stringify(read.contents)).toContain('Refunds up to 50 EUR');
      await transport.terminateSession();
      await client.close();
    }
    expect(shop.calls).toEqual([{ tool: 'get_order', args: { order_id: 'ord-shop' } }]);
    expect(stdioCalls()).toEqual([{ tool: 'get_order', args: { order_id: 'ord-local' } }]);
    const view = await waitFor(
      `the spans of ${taskId}`,
      async () => {
        const found = await taskView(tripline.apiUrl, taskId);
        return (found?.counts.tool_call ?? 0) >= 2 && (found?.counts.data_access ?? 0) >= 2 ? found : undefined;
      },
      VERDICT_MS,
      250,
    );
    expect(view).toMatchObject({ taskType: TASK_TYPE, agentId: TOKEN_AGENT, status: 'active' });
    expect(view.counts).toMatchObject({ tool_call: 2, data_access: 2 });
  }, 120_000);

  it(
    `runs ${String(WARMUP_RUN)} benign sessions of a bound client (Python SDK), each a task that completes`,
    async () => {
      const next = rng(7);
      const plan = Array.from({ length: WARMUP_RUN }, () => ({
        label: 'benign',
        read: true,
        calls: benignCalls(next),
      }));
      const sessions = await pyRun('shop', plan);
      expect(sessions).toHaveLength(WARMUP_RUN);
      for (const [index, session] of sessions.entries()) {
        expect(session.refused, JSON.stringify(session)).toBeNull();
        expect(session.ran).toEqual(plan[index]?.calls);
      }
      const tasks = await waitFor(
        "the bound sessions' tasks",
        async () => {
          const found = await boundTasks();
          return found.length >= WARMUP_RUN ? found : undefined;
        },
        VERDICT_MS,
        250,
      );
      await waitFor(
        'the bound tasks to complete',
        async () => {
          for (const taskId of tasks)
            if ((await taskView(tripline.apiUrl, taskId))?.status !== 'completed') return false;
          return true;
        },
        VERDICT_MS,
        500,
      );
      const baseline = await waitFor(
        `the baseline of ${TASK_TYPE}`,
        async () => {
          const found = await baselineView(tripline.apiUrl, TASK_TYPE);
          return found !== undefined && found.tasks >= WARMUP_TASKS ? found : undefined;
        },
        VERDICT_MS,
        250,
      );
      expect(baseline.regime).toBe('type_baseline');
    },
    5 * 60_000,
  );

  it(
    "refuses a task-token client's next call once the detector revoked its task (TypeScript SDK, HTTP server)",
    async () => {
      const { taskId, token } = await startTask();
      const { client, transport } = await connect('shop', token);
      for (const call of EXFILTRATION) await client.callTool({ name: call.tool, arguments: call.args });
      await waitFor(
        `the revocation of ${taskId}`,
        async () => (await taskView(tripline.apiUrl, taskId))?.status === 'revoked',
        VERDICT_MS,
        100,
      );
      const refused = await client.callTool({ name: AFTER_REVOCATION.tool, arguments: AFTER_REVOCATION.args }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(McpError);
      const error = refused as McpError;
      expect(error.code).toBe(-32010);
      expect(error.message).toMatch(new RegExp(`Tripline refused the call of issue_refund: task ${taskId} is revoked`));
      expect(error.data).toMatchObject({ code: 'TASK_REVOKED', taskId });
      expect(shop.calls.filter((call) => call.args.order_id === AFTER_REVOCATION.args.order_id)).toEqual([]);
      expect(shop.calls.filter((call) => call.tool === 'http_post')).toHaveLength(1);
      const revocations = (await getJson(`${tripline.apiUrl}/v1/revocations?task_id=${taskId}`)) as {
        items: { source: string; action: string }[];
      };
      expect(revocations.items).toContainEqual(expect.objectContaining({ source: 'detector', action: 'revoke' }));
      await transport.terminateSession();
      await client.close();
    },
    3 * 60_000,
  );

  it(
    "refuses a bound client's next call once the detector revoked its session's task (Python SDK, stdio server)",
    async () => {
      const before = new Set(await boundTasks());
      const waitFile = join(workDir, 'revoked');
      const planFile = join(workDir, 'attack.json');
      writeFileSync(
        planFile,
        JSON.stringify([
          { label: 'exfiltration', read: true, calls: EXFILTRATION, afterRevocation: AFTER_REVOCATION, waitFile },
        ]),
      );
      const child = spawn(
        python,
        [PY_CLIENT, '--url', `${mcpUrl}/mcp/local`, '--token', CLIENT_TOKEN, '--plan', planFile],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      try {
        const taskId = await waitFor(
          "the attack session's task",
          async () => (await boundTasks()).find((id) => !before.has(id)),
          VERDICT_MS,
          100,
        );
        await waitFor(
          `the revocation of ${taskId}`,
          async () => (await taskView(tripline.apiUrl, taskId))?.status === 'revoked',
          VERDICT_MS,
          100,
        );
        writeFileSync(waitFile, taskId);
        expect(await exited, stderr).toBe(0);
        const [session] = stdout
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as PySession);
        expect(session?.ran).toEqual(EXFILTRATION);
        expect(session?.refused, stderr).toMatchObject({ tool: 'issue_refund', code: 'TASK_REVOKED', mcpCode: -32010 });
        expect(session?.refused?.data.taskId).toBe(taskId);
        expect(session?.refused?.message).toContain(`task ${taskId} is revoked`);
        const served = stdioCalls();
        expect(served.filter((call) => call.args.order_id === AFTER_REVOCATION.args.order_id)).toEqual([]);
        expect(served.filter((call) => call.tool === 'http_post')).toHaveLength(1);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    },
    3 * 60_000,
  );

  it(
    'runs as its own process over the API and the OTLP receiver (the distributed mode): passes, records, refuses',
    async () => {
      const port = await freePort();
      const { KAFKA_BROKERS: _brokers, ...inherited } = process.env;
      const child = spawn(process.execPath, [MCP_GATEWAY_MAIN], {
        env: {
          ...inherited,
          LOG_LEVEL: 'warn',
          TRIPLINE_MCP_PORT: String(port),
          TRIPLINE_MCP_SERVERS: JSON.stringify({ shop: { url: shop.url } }),
          TRIPLINE_MCP_API_URL: tripline.apiUrl,
          TRIPLINE_MCP_OTLP_URL: tripline.otlpUrl,
          TRIPLINE_MCP_API_TOKEN: TEST_AGENT_TOKEN,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      const gatewayUrl = `http://127.0.0.1:${String(port)}`;
      try {
        await waitFor(
          'the MCP gateway process',
          async () => {
            if (child.exitCode !== null) throw new Error(`exited with ${String(child.exitCode)}: ${output}`);
            return (await fetch(`${gatewayUrl}/healthz`).catch(() => undefined))?.ok === true;
          },
          30_000,
          100,
        );
        const { taskId, token } = await startTask();
        const client = new Client({ name: 'tripline-e2e', version: '1.0.0' });
        const transport = new StreamableHTTPClientTransport(new URL(`${gatewayUrl}/mcp/shop`), {
          requestInit: { headers: { authorization: `Bearer ${token}` } },
        });
        await client.connect(transport);
        await client.callTool({ name: 'get_order', arguments: { order_id: 'ord-distributed' } });
        await waitFor(
          `the span of ${taskId}`,
          async () => ((await taskView(tripline.apiUrl, taskId))?.counts.tool_call ?? 0) >= 1,
          VERDICT_MS,
          250,
        );
        const killed = await fetch(`${tripline.apiUrl}/v1/tasks/${taskId}/revoke`, {
          method: 'POST',
          headers: { ...adminHeaders, 'content-type': 'application/json' },
          body: JSON.stringify({ reason: 'e2e: a person kills the task' }),
        });
        expect(killed.status).toBe(201);
        const refused = await client.callTool({ name: 'get_order', arguments: { order_id: 'ord-after-kill' } }).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(refused).toBeInstanceOf(McpError);
        expect((refused as McpError).data).toMatchObject({ code: 'TASK_REVOKED', taskId });
        expect(shop.calls.filter((call) => call.args.order_id === 'ord-after-kill')).toEqual([]);
        await transport.terminateSession();
        await client.close();
      } finally {
        child.kill('SIGTERM');
        expect(await exited, output).toBe(0);
      }
    },
    2 * 60_000,
  );
});
