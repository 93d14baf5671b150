/**
 * Task credentials after a policy decision, against an embedded Tripline: the shipped Cedar policies allow the
 * simulator's task types with the tools they use and deny the rest (default deny), every decision recorded with
 * the policies that decided; allowed tasks get EdDSA tokens that verify against the JWKS endpoint; RFC 7662
 * introspection and RFC 7009 revocation; and the signing key, revoked tokens and revoked tasks survive a restart.
 */
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateScenario, TASK_TYPES } from '../../../collectors/simulator/scenarios.ts';
import { isKillSwitchError } from '../../../services/killswitch/errors.ts';
import { loadPolicyEngine } from '../../../services/killswitch/policy.ts';
import { DEFAULT_POLICY_DIR } from '../../../services/killswitch/settings.ts';
import { getJson, introspect, postJson, startTripline } from './helpers.ts';
import type { TestTripline } from './helpers.ts';
import { adminHeaders } from '../../helpers/auth.ts';

let tripline: TestTripline;

beforeAll(async () => {
  tripline = await startTripline();
});

afterAll(async () => {
  await tripline.stop();
});

/** The tools each simulated task type uses (from the scenario generator), to ask for exactly those. */
function toolsByType(): Map<string, string[]> {
  const tools = new Map<string, Set<string>>();
  for (const plan of generateScenario({ seed: 5, benignPerType: 30, attacksPerPattern: 0, agentsPerType: 1 }).tasks) {
    const set = tools.get(plan.taskType) ?? new Set<string>();
    for (const event of plan.events) if (event.kind === 'tool_call') set.add(event.tool);
    tools.set(plan.taskType, set);
  }
  return new Map([...tools].map(([type, set]) => [type, [...set].sort()]));
}

describe('policy decides, tokens follow', () => {
  it('allows every simulated task type with the tools it uses', async () => {
    const byType = toolsByType();
    expect([...byType.keys()].sort()).toEqual(TASK_TYPES.map((type) => type.name).sort());
    for (const [taskType, tools] of byType) {
      const { status, body } = await postJson(`${tripline.api}/v1/tasks`, {
        agentId: `${taskType}-agent-1`,
        taskType,
        tools,
      });
      expect(status, `${taskType}: ${JSON.stringify(body)}`).toBe(201);
      expect(body.decision).toMatchObject({ decision: 'allow', policies: [`${taskType}.start`] });
    }
  });

  it('denies a task the policies do not permit: no token, and the decision recorded', async () => {
    const cases = [
      {
        request: {
          agentId: 'summarize-ticket-agent-1',
          taskType: 'summarize_ticket',
          taskId: 'deny-1',
          tools: ['shell_exec'],
        },
        policies: [] as string[],
      },
      {
        request: {
          agentId: 'summarize-ticket-agent-1',
          taskType: 'summarize_ticket',
          taskId: 'deny-2',
          tools: ['get_ticket'],
          scopes: ['admin'],
        },
        policies: ['guardrail.no-admin-scopes'],
      },
      { request: { agentId: 'some-agent', taskType: 'mine_bitcoin', taskId: 'deny-3' }, policies: [] },
      {
        request: { agentId: 'quarantined-agent-example', taskType: 'summarize_ticket', taskId: 'deny-4' },
        policies: ['guardrail.quarantined-agents'],
      },
    ];
    for (const { request, policies } of cases) {
      const { status, body } = await postJson(`${tripline.api}/v1/tasks`, request);
      expect(status).toBe(403);
      expect(body.token).toBeUndefined();
      const error = body.error as {
        code: string;
        message: string;
        details: { policies: string[]; decisionId: string };
      };
      expect(error.code).toBe('POLICY_DENIED');
      expect(error.details.policies).toEqual(policies);
      expect(error.message).toMatch(policies.length === 0 ? /default deny/ : /forbidden by/);
      const credentials = await getJson(`${tripline.api}/v1/tasks/${request.taskId}/credentials`);
      expect(credentials.body.items).toEqual([]);
    }
    await tripline.running.enforcement.flush();
    const { body } = await getJson(`${tripline.api}/v1/decisions?task_id=deny-2`);
    expect(body.items).toEqual([
      expect.objectContaining({
        action: 'start_task',
        decision: 'deny',
        policies: ['guardrail.no-admin-scopes'],
        agentId: 'summarize-ticket-agent-1',
        taskType: 'summarize_ticket',
        resource: 'summarize_ticket',
        context: expect.objectContaining({ scopes: ['admin'] }) as unknown,
      }),
    ]);
  });

  it('issues an EdDSA token with the task claims that verifies against the JWKS endpoint', async () => {
    const { status, body } = await postJson(`${tripline.api}/v1/tasks`, {
      agentId: 'refund-agent-7',
      taskType: 'customer_refund',
      taskId: 'refund-77',
      tools: ['get_order', 'issue_refund'],
      scopes: ['orders:read', 'payments:refund'],
      resources: ['billing.orders'],
    });
    expect(status).toBe(201);
    const token = body.token as string;
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'EdDSA', typ: 'at+jwt' });
    const jwks = createRemoteJWKSet(new URL(`${tripline.api}/.well-known/jwks.json`));
    const { payload } = await jwtVerify(token, jwks, {
      issuer: 'http://localhost:8080',
      audience: 'tripline',
      algorithms: ['EdDSA'],
    });
    expect(payload).toMatchObject({
      sub: 'refund-agent-7',
      agent_id: 'refund-agent-7',
      task_id: 'refund-77',
      task_type: 'customer_refund',
      scope: 'orders:read payments:refund',
      tools: ['get_order', 'issue_refund'],
      resources: ['billing.orders'],
      jti: body.jti,
    });
    // exp: 15 minutes by default.
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(900);
    const metadata = await getJson(`${tripline.api}/.well-known/oauth-authorization-server`);
    expect(metadata.body).toMatchObject({
      jwks_uri: 'http://localhost:8080/.well-known/jwks.json',
      introspection_endpoint: 'http://localhost:8080/oauth2/introspect',
    });
  });

  it('introspects (RFC 7662) and revokes single tokens (RFC 7009) without touching the task’s other tokens', async () => {
    const first = await postJson(`${tripline.api}/v1/tasks`, {
      agentId: 'report-agent-1',
      taskType: 'generate_report',
      taskId: 'report-1',
      tools: ['run_query'],
    });
    const second = await postJson(`${tripline.api}/v1/tasks`, {
      agentId: 'report-agent-1',
      taskType: 'generate_report',
      taskId: 'report-1',
      tools: ['run_query'],
    });
    const a = first.body.token as string;
    const b = second.body.token as string;
    expect(await introspect(tripline.api, a)).toMatchObject({
      active: true,
      token_type: 'Bearer',
      task_id: 'report-1',
      task_type: 'generate_report',
      agent_id: 'report-agent-1',
      client_id: 'report-agent-1',
      aud: 'tripline',
    });
    const json = await postJson(`${tripline.api}/oauth2/introspect`, { token: b });
    expect(json.body.active).toBe(true);

    const revoke = await fetch(`${tripline.api}/oauth2/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...adminHeaders },
      body: new URLSearchParams({ token: a, token_type_hint: 'access_token' }),
    });
    expect(revoke.status).toBe(200);
    expect(await introspect(tripline.api, a)).toEqual({ active: false });
    expect((await introspect(tripline.api, b)).active).toBe(true);
    // Garbage, a tampered token and an unknown token are simply inactive; revoking them is a 200 no-op.
    expect(await introspect(tripline.api, 'not-a-token')).toEqual({ active: false });
    expect(await introspect(tripline.api, `${b.slice(0, -4)}AAAA`)).toEqual({ active: false });
    expect(
      (
        await fetch(`${tripline.api}/oauth2/revoke`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...adminHeaders },
          body: 'token=nope',
        })
      ).status,
    ).toBe(200);
    expect((await postJson(`${tripline.api}/oauth2/introspect`, {})).status).toBe(400);
  });

  it('keeps the signing key, revoked tokens and revoked tasks across a restart', async () => {
    const issued = await postJson(`${tripline.api}/v1/tasks`, {
      agentId: 'triage-agent-1',
      taskType: 'triage_alert',
      taskId: 'triage-restart',
      tools: ['get_alert'],
    });
    const keep = await postJson(`${tripline.api}/v1/tasks`, {
      agentId: 'triage-agent-1',
      taskType: 'triage_alert',
      taskId: 'triage-keep',
      tools: ['get_alert'],
    });
    const killed = await postJson(`${tripline.api}/v1/tasks`, {
      agentId: 'triage-agent-2',
      taskType: 'triage_alert',
      taskId: 'triage-killed',
      tools: ['get_alert'],
    });
    await fetch(`${tripline.api}/oauth2/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...adminHeaders },
      body: new URLSearchParams({ token: issued.body.token as string }),
    });
    // A task the API knows only by its token can be revoked by hand once the processor has seen it: send one event.
    const { running } = tripline;
    await running.processor.handle({
      events: [
        {
          id: 'ev-triage-killed',
          tenant: 'default',
          kind: 'tool_call',
          taskId: 'triage-killed',
          taskType: 'triage_alert',
          agentId: 'triage-agent-2',
          traceId: 't',
          spanId: 's',
          parentSpanId: '',
          name: 'execute_tool get_alert',
          startMs: Date.now() - 1000,
          endMs: Date.now() - 990,
          error: false,
          tool: { name: 'get_alert' },
          attributes: {},
        },
      ],
      boundaries: [],
    });
    const manual = await postJson(`${tripline.api}/v1/tasks/triage-killed/revoke`, {
      reason: 'suspected prompt injection',
      actor: 'alice@example.com',
    });
    expect(manual.status).toBe(201);
    const kidBefore = (await getJson(`${tripline.api}/.well-known/jwks.json`)).body;
    const keyFile = statSync(join(tripline.keysDir, 'signing-key.jwk'));
    expect(keyFile.mode & 0o777).toBe(0o600);
    await tripline.running.enforcement.flush();
    await tripline.stop();

    tripline = await startTripline({}, {}, { database: tripline.database, keysDir: tripline.keysDir });
    expect((await getJson(`${tripline.api}/.well-known/jwks.json`)).body).toEqual(kidBefore);
    expect(await introspect(tripline.api, issued.body.token as string)).toEqual({ active: false });
    expect(await introspect(tripline.api, killed.body.token as string)).toEqual({ active: false });
    expect((await introspect(tripline.api, keep.body.token as string)).active).toBe(true);
    const again = await postJson(`${tripline.api}/v1/tasks`, {
      agentId: 'triage-agent-2',
      taskType: 'triage_alert',
      taskId: 'triage-killed',
    });
    expect(again.status).toBe(403);
    expect((again.body.error as { code: string }).code).toBe('TASK_REVOKED');
  });
});

describe('route access', () => {
  it('needs a token on every kill-switch route but the public ones', async () => {
    const anonymous = (method: string, path: string, body?: unknown): Promise<number> =>
      fetch(`${tripline.api}${path}`, {
        method,
        ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
      }).then((response) => response.status);
    expect(await anonymous('POST', '/v1/tasks', { agentId: 'a', taskType: 'summarize_ticket' })).toBe(401);
    expect(await anonymous('POST', '/oauth2/introspect', { token: 'x' })).toBe(401);
    expect(await anonymous('POST', '/v1/check', { tool: 'x', taskId: 't' })).toBe(401);
    expect(await anonymous('GET', '/v1/decisions')).toBe(401);
    expect(await anonymous('GET', '/.well-known/jwks.json')).toBe(200);
    expect(await anonymous('GET', '/.well-known/oauth-authorization-server')).toBe(200);
    expect(await anonymous('GET', '/healthz')).toBe(200);
  });
});

describe('the policy directory', () => {
  it('loads the shipped policies, all named, validated against the schema', () => {
    const engine = loadPolicyEngine(DEFAULT_POLICY_DIR);
    expect(engine.policyIds().every((id) => !id.includes(':'))).toBe(true);
    expect(engine.policyIds()).toContain('guardrail.no-admin-scopes');
  });

  it('refuses to start on a policy that does not parse or does not validate, naming it', () => {
    const broken = mkdtempSync(join(tmpdir(), 'tripline-policies-'));
    writeFileSync(join(broken, 'bad.cedar'), 'permit(principal, action, resource) when { context.x ==  };');
    expect(() => loadPolicyEngine(broken)).toThrow(/bad\.cedar does not parse/);

    const invalid = mkdtempSync(join(tmpdir(), 'tripline-policies-'));
    writeFileSync(
      join(invalid, 'schema.cedarschema'),
      'namespace Tripline { entity Agent; entity TaskType; action start_task appliesTo { principal: Agent, resource: TaskType, context: { tools: Set<String> } }; }',
    );
    writeFileSync(
      join(invalid, 'typo.cedar'),
      '@id("typo") permit(principal, action == Tripline::Action::"start_task", resource) when { context.tool.contains("x") };',
    );
    try {
      loadPolicyEngine(invalid);
      expect.unreachable();
    } catch (error) {
      expect(isKillSwitchError(error, 'POLICY_INVALID')).toBe(true);
      expect((error as Error).message).toMatch(/Policy typo does not validate/);
    }
    const empty = mkdtempSync(join(tmpdir(), 'tripline-policies-'));
    expect(() => loadPolicyEngine(empty)).toThrow(/no \.cedar policies/);
  });
});
