/**
 * The REAL upstream OpenTelemetry Collector (collectors/otelcol/build.sh) run with collectors/otelcol/gateway.yaml,
 * in front of an embedded Tripline (issue 14): the collector takes spans only with a token of its tokens file and
 * forwards them to Tripline's gateway with its own agent token, so they count for that token's tenant, never
 * `default`, whatever tenant a client names in a header.
 *
 *   real `@opentelemetry/sdk-trace` agent (test/agents/typescript/collector-agent.ts, OTLP/HTTP protobuf)
 *     → otelcol (otlp receiver + bearertokenauth → memory_limiter → batch → otlphttp + bearertokenauth)
 *     → Tripline's gateway (token → tenant) → processor → ClickHouse (in-process engine)
 *
 * When the collector binary is missing the test FAILS, naming collectors/otelcol/build.sh (CI builds it first).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTraceRequest } from '../../../services/otlp/codec.ts';
import { TEST_AGENT_TOKEN, adminHeaders } from '../../helpers/auth.ts';
import { OTELCOL_GATEWAY_CONFIG, otelcolBinary, startOtelcol } from '../../helpers/otelcol.ts';
import type { RunningOtelcol } from '../../helpers/otelcol.ts';
import { freePort } from '../../helpers/tripline-process.ts';
import { waitFor } from '../../helpers/wait.ts';
import { postJson, startTripline } from '../killswitch/helpers.ts';
import type { TestTripline } from '../killswitch/helpers.ts';
import { syntheticRequest } from '../kafka/fixtures.ts';

const run = promisify(execFile);
const AGENT = fileURLToPath(new URL('../../agents/typescript/collector-agent.ts', import.meta.url));
const TENANT = 'acme';
const AGENT_ID = 'collector/agent-1';

interface AgentOutcome {
  exported: number;
  failed: number;
  errors: string[];
}

const workDir = mkdtempSync(join(tmpdir(), 'tripline-collector-auth-'));
const tokensFile = join(workDir, 'agent-tokens');
let tripline: TestTripline;
let collector: RunningOtelcol;
/** The token the agent presents to the collector (an agent token of acme, bound to the agent). */
let agentToken = '';

async function tokenFor(creator: string, body: Record<string, unknown>): Promise<string> {
  const answer = await postJson(`${tripline.api}/v1/admin/tokens`, body, { authorization: `Bearer ${creator}` });
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
  return answer.body.token as string;
}

/** Runs the SDK agent against the collector. */
async function runAgent(token: string, tasks: string[], headers: string[] = []): Promise<AgentOutcome> {
  const { stdout } = await run(process.execPath, [
    AGENT,
    '--endpoint',
    collector.otlpUrl,
    '--token',
    token,
    '--agent',
    AGENT_ID,
    '--tasks',
    tasks.join(','),
    ...headers.flatMap((header) => ['--header', header]),
  ]);
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as AgentOutcome;
}

/** A raw OTLP/HTTP protobuf request to the collector. */
async function post(headers: Record<string, string>, taskId: string): Promise<number> {
  const response = await fetch(`${collector.otlpUrl}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf', ...headers },
    body: encodeTraceRequest(syntheticRequest({ taskId, taskType: 'summarize_ticket', agentId: AGENT_ID, spans: 3 })),
  });
  await response.arrayBuffer();
  return response.status;
}

beforeAll(async () => {
  const binary = otelcolBinary();
  tripline = await startTripline();
  const acmeAdmin = await tokenFor(adminHeaders.authorization.slice('Bearer '.length), {
    tenant: TENANT,
    role: 'admin',
    name: 'acme admin',
  });
  agentToken = await tokenFor(acmeAdmin, { role: 'agent', name: 'acme agent', agents: [AGENT_ID] });
  const collectorToken = await tokenFor(acmeAdmin, { role: 'agent', name: 'acme collector', agents: ['collector/*'] });
  // As an operator writes it: one token a line, a trailing newline.
  writeFileSync(tokensFile, `${agentToken}\n`);
  const port = await freePort();
  collector = await startOtelcol({
    binary,
    config: OTELCOL_GATEWAY_CONFIG,
    otlpHttpPort: port,
    env: {
      TRIPLINE_GATEWAY_URL: tripline.otlp,
      TRIPLINE_COLLECTOR_TOKEN: collectorToken,
      TRIPLINE_COLLECTOR_AGENT_TOKENS_FILE: tokensFile,
      OTLP_HTTP_ENDPOINT: `127.0.0.1:${String(port)}`,
    },
  });
}, 120_000);

afterAll(async () => {
  await collector.stop();
  await tripline.stop();
  rmSync(workDir, { recursive: true, force: true });
});

describe('the authenticated collector (collectors/otelcol/gateway.yaml)', () => {
  it('refuses spans without a token, with an unknown one, an empty one, or a Tripline token not in its file', async () => {
    expect(await post({}, 'refused-none')).toBe(401);
    expect(await post({ authorization: 'Bearer tl_made-up-token-0000000000000000000000' }, 'refused-made-up')).toBe(
      401,
    );
    // The tokens file ends with a newline: its empty last line must not be a token.
    expect(await post({ authorization: 'Bearer ' }, 'refused-empty')).toBe(401);
    expect(await post({ authorization: `Bearer ${TEST_AGENT_TOKEN}` }, 'refused-default')).toBe(401);
    expect(await post({ authorization: agentToken }, 'refused-no-scheme')).toBe(401);

    const outcome = await runAgent('', ['refused-sdk']);
    expect(outcome.exported, JSON.stringify(outcome)).toBe(0);
    expect(outcome.failed).toBeGreaterThan(0);
    expect(outcome.errors).toContain('Unauthorized');
  });

  it('forwards an agent token’s spans under the collector token’s tenant, whatever tenant header the client sends', async () => {
    const tasks = ['via-collector-1', 'via-collector-2'];
    const outcome = await runAgent(agentToken, tasks, [
      'tripline-tenant=default',
      'x-tripline-tenant=default',
      'x-scope-orgid=default',
    ]);
    expect(outcome, JSON.stringify(outcome)).toMatchObject({ exported: 4, failed: 0 });

    const stored = await waitFor("the agent's tasks stored for acme", async () => {
      const found = await tripline.running.store.getTasks(TENANT, tasks);
      return found.length === tasks.length ? found : undefined;
    });
    for (const task of stored) {
      expect(task.tenant).toBe(TENANT);
      expect(task.agentId).toBe(AGENT_ID);
    }
    expect(await tripline.running.store.getTasks('default', tasks)).toEqual([]);
    // What the collector refused never reached Tripline, in any tenant (it answered 401 before taking it).
    const refused = ['refused-none', 'refused-made-up', 'refused-empty', 'refused-default', 'refused-sdk'];
    for (const tenant of [TENANT, 'default'])
      expect(await tripline.running.store.getTasks(tenant, refused)).toEqual([]);
  });

  it('does not start without the token it forwards with (fails closed)', async () => {
    const port = await freePort();
    await expect(
      startOtelcol({
        config: OTELCOL_GATEWAY_CONFIG,
        otlpHttpPort: port,
        readyTimeoutMs: 30_000,
        env: {
          TRIPLINE_GATEWAY_URL: tripline.otlp,
          TRIPLINE_COLLECTOR_TOKEN: '',
          TRIPLINE_COLLECTOR_AGENT_TOKENS_FILE: tokensFile,
          OTLP_HTTP_ENDPOINT: `127.0.0.1:${String(port)}`,
        },
      }),
    ).rejects.toThrow(/exited with code/);
  });
});
