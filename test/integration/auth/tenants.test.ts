/**
 * Who may do what, through the public contract of a running embedded Tripline: every route refuses a request
 * without a valid token; each role is held to its routes; and a tenant never sees, scores against or revokes
 * another tenant's data, through every route, even with the same task id. Tokens and secret values never
 * reach the log.
 */
import { Writable } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTraceRequest } from '../../../services/otlp/codec.ts';
import type { Alert } from '../../../schemas/events.ts';
import { ROUTE_ACCESS } from '../../../services/api/access.ts';
import { loadConfig } from '../../../services/app/config.ts';
import { startEmbedded } from '../../../services/app/embedded.ts';
import type { RunningTripline } from '../../../services/app/embedded.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import { TEST_ADMIN_TOKEN, TEST_AGENT_TOKEN, loopbackTestEnv } from '../../helpers/auth.ts';
import { waitFor } from '../../helpers/wait.ts';
import { syntheticRequest } from '../kafka/fixtures.ts';
import { readStreamUntil } from '../killswitch/helpers.ts';

const SHARED_TASK = 'same-task-id';
const SECRET_VALUE = 'hd_default_only_secret_value_42';

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

const logLines: string[] = [];
const logSink = new Writable({
  write(chunk: Buffer, _encoding, done) {
    logLines.push(chunk.toString('utf8'));
    done();
  },
});

let running: RunningTripline;
const dataDir = mkdtempSync(join(tmpdir(), 'tripline-tenants-'));
/** Tokens by tenant and role. */
const tokens = {
  default: { admin: TEST_ADMIN_TOKEN, agent: TEST_AGENT_TOKEN, viewer: '', operator: '' },
  acme: { admin: '', agent: '', viewer: '', operator: '' },
};
let defaultTaskToken = '';
let defaultRevocationId = '';
let defaultAlertId = '';

async function call(
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = contentType;
  const response = await fetch(`${running.apiUrl}${path}`, {
    method,
    headers,
    ...(body === undefined
      ? {}
      : { body: contentType === 'application/json' ? JSON.stringify(body) : (body as string) }),
  });
  const text = await response.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    parsed = { text };
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

async function ingest(token: string | undefined, taskId: string, spans = 9): Promise<Response> {
  return fetch(`${running.otlpUrl}/v1/traces`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-protobuf',
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body: encodeTraceRequest(syntheticRequest({ taskId, taskType: 'summarize_ticket', agentId: 'agent-1', spans })),
  });
}

async function tokenFor(creator: string, tenant: string, role: string): Promise<string> {
  const answer = await call(creator, 'POST', '/v1/admin/tokens', { tenant, role, name: `${tenant} ${role}` });
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
  return answer.body.token as string;
}

beforeAll(async () => {
  const config = loadConfig({
    ...loopbackTestEnv(dataDir),
    TRIPLINE_VERIFY_WINDOW_MS: '500',
    TRIPLINE_AUTH_REFRESH_MS: '500',
  });
  running = await startEmbedded(config, createLogger('debug', 'tripline', logSink));
  tokens.default.viewer = await tokenFor(TEST_ADMIN_TOKEN, 'default', 'viewer');
  tokens.default.operator = await tokenFor(TEST_ADMIN_TOKEN, 'default', 'operator');
  // The bootstrap admin makes acme's first admin; acme's admin makes the rest of acme's tokens.
  tokens.acme.admin = await tokenFor(TEST_ADMIN_TOKEN, 'acme', 'admin');
  tokens.acme.agent = await tokenFor(tokens.acme.admin, 'acme', 'agent');
  tokens.acme.viewer = await tokenFor(tokens.acme.admin, 'acme', 'viewer');
  tokens.acme.operator = await tokenFor(tokens.acme.admin, 'acme', 'operator');

  // The same task id in both tenants, and a task of default's alone.
  for (const [token, taskId] of [
    [tokens.default.agent, SHARED_TASK],
    [tokens.acme.agent, SHARED_TASK],
    [tokens.default.agent, 'default-only'],
  ] as const) {
    expect((await ingest(token, taskId)).status).toBe(200);
  }
  await waitFor("both tenants' tasks to be stored", async () => {
    const [a, b, c] = await Promise.all([
      running.store.getTask('default', SHARED_TASK),
      running.store.getTask('acme', SHARED_TASK),
      running.store.getTask('default', 'default-only'),
    ]);
    return a !== null && b !== null && c !== null;
  });

  // default's secret, task token, lease, kill and alert.
  expect(
    (await call(tokens.default.admin, 'PUT', '/v1/secrets/helpdesk-api-token', { value: SECRET_VALUE })).status,
  ).toBe(200);
  const started = await call(tokens.default.agent, 'POST', '/v1/tasks', {
    agentId: 'agent-1',
    taskType: 'summarize_ticket',
    taskId: 'default-credentialed',
    tools: ['get_ticket'],
  });
  expect(started.status, JSON.stringify(started.body)).toBe(201);
  defaultTaskToken = started.body.token as string;
  const kill = await call(tokens.default.operator, 'POST', '/v1/tasks/default-only/revoke', {
    reason: 'default tenant kill',
  });
  expect(kill.status, JSON.stringify(kill.body)).toBe(201);
  defaultRevocationId = kill.body.id as string;
  const alert: Alert = {
    id: 'default-alert-1',
    tenant: 'default',
    taskId: 'default-only',
    taskType: 'summarize_ticket',
    agentId: 'agent-1',
    eventId: 'e1',
    timeMs: Date.now(),
    score: 90,
    decision: 'revoke',
    regime: 'rules',
    reasons: ['seeded'],
    shadow: false,
  };
  await running.store.insertAlerts([alert]);
  defaultAlertId = alert.id;
}, 120_000);

afterAll(async () => {
  await running.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** A concrete path for a route pattern. */
function concrete(route: string): string {
  return route.replace(/:(\w+)/g, (_match, name: string) => `x-${name}`);
}

describe('authentication', () => {
  const guarded = Object.entries(ROUTE_ACCESS).filter(([, access]) => access !== 'public' && access !== 'task');

  it('refuses every non-public route without a token, with a made-up one and with a malformed header', async () => {
    for (const [key] of guarded) {
      const [method = 'GET', route = '/'] = key.split(' ');
      const body = method === 'GET' || method === 'DELETE' ? undefined : {};
      for (const header of [undefined, 'tl_made-up-token-000000000000000000000000000000']) {
        const answer = await call(header, method, concrete(route), body);
        expect(answer.status, `${key} with ${header ?? 'no token'}`).toBe(401);
        expect((answer.body.error as { code: string }).code).toBe('UNAUTHENTICATED');
        expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
    }
    const basic = await fetch(`${running.apiUrl}/v1/alerts`, {
      headers: { authorization: `Basic ${Buffer.from(`admin:${TEST_ADMIN_TOKEN}`).toString('base64')}` },
    });
    expect(basic.status).toBe(401);
  });

  it('serves the public routes without a token', async () => {
    for (const path of [
      '/healthz',
      '/readyz',
      '/',
      '/console/app.js',
      '/.well-known/jwks.json',
      '/.well-known/oauth-authorization-server',
    ]) {
      expect((await fetch(`${running.apiUrl}${path}`)).status, path).toBe(200);
    }
  });

  it("refuses OTLP without an agent token: 401 (not retried by OTLP clients), 403 for a person's token", async () => {
    const none = await ingest(undefined, 'x');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await ingest('tl_made-up-token-000000000000000000000000000000', 'x')).status).toBe(401);
    expect((await ingest(tokens.default.admin, 'x')).status).toBe(403);
    expect((await ingest(tokens.default.viewer, 'x')).status).toBe(403);
  });

  it('stops accepting a token once an admin revokes it', async () => {
    const spare = await tokenFor(tokens.acme.admin, 'acme', 'agent');
    expect((await ingest(spare, 'spare-task')).status).toBe(200);
    const list = await call(tokens.acme.admin, 'GET', '/v1/admin/tokens');
    // Newest first: the spare token is the first.
    const spareId = (list.body.items as { id: string; name: string }[])[0];
    expect(spareId?.name).toBe('acme agent');
    const revoked = await call(tokens.acme.admin, 'DELETE', `/v1/admin/tokens/${spareId?.id ?? ''}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ revokedBy: 'acme admin' });
    expect((await ingest(spare, 'spare-task')).status).toBe(401);
    // The token list never shows a token or its hash.
    expect(JSON.stringify(list.body)).not.toContain(spare);
    expect(JSON.stringify(list.body)).not.toMatch(/[0-9a-f]{64}/);
  });
});

describe('roles', () => {
  it('lets a viewer read but not kill, restore, mark false positives or manage tokens and secrets', async () => {
    const viewer = tokens.default.viewer;
    expect((await call(viewer, 'GET', '/v1/alerts')).status).toBe(200);
    expect((await call(viewer, 'GET', `/v1/tasks/${SHARED_TASK}`)).status).toBe(200);
    for (const [method, path, body] of [
      ['POST', `/v1/tasks/${SHARED_TASK}/revoke`, { reason: 'x' }],
      ['POST', '/v1/tasks/default-only/restore', { reason: 'x' }],
      ['POST', `/v1/alerts/${defaultAlertId}/false-positive`, { reason: 'x' }],
      ['POST', '/v1/admin/tokens', { role: 'admin', name: 'escalate me' }],
      ['PUT', '/v1/secrets/x', { value: 'y' }],
      ['GET', '/v1/audit', undefined],
      ['POST', '/v1/tasks', { agentId: 'a', taskType: 'summarize_ticket' }],
    ] as const) {
      const answer = await call(viewer, method, path, body);
      expect(answer.status, `${method} ${path}`).toBe(403);
      expect((answer.body.error as { code: string }).code).toBe('FORBIDDEN');
    }
  });

  it('lets an operator kill but not manage tokens or secrets; an agent starts tasks but reads nothing', async () => {
    expect(
      (await call(tokens.default.operator, 'POST', '/v1/admin/tokens', { role: 'viewer', name: 'x' })).status,
    ).toBe(403);
    expect((await call(tokens.default.operator, 'DELETE', '/v1/secrets/helpdesk-api-token')).status).toBe(403);
    expect((await call(tokens.default.agent, 'GET', '/v1/alerts')).status).toBe(403);
    expect((await call(tokens.default.agent, 'POST', `/v1/tasks/${SHARED_TASK}/revoke`, { reason: 'x' })).status).toBe(
      403,
    );
    expect(
      (await call(tokens.default.admin, 'POST', '/v1/tasks', { agentId: 'a', taskType: 'summarize_ticket' })).status,
    ).toBe(403);
  });

  it("keeps a tenant admin to its own tenant's tokens", async () => {
    const answer = await call(tokens.acme.admin, 'POST', '/v1/admin/tokens', {
      tenant: 'default',
      role: 'admin',
      name: 'takeover',
    });
    expect(answer.status).toBe(403);
    const defaults = await call(tokens.default.admin, 'GET', '/v1/admin/tokens');
    const someDefaultToken = (defaults.body.items as { id: string; tenant: string }[]).find(
      (item) => item.tenant === 'default',
    );
    expect(someDefaultToken).toBeDefined();
    expect((await call(tokens.acme.admin, 'DELETE', `/v1/admin/tokens/${someDefaultToken?.id ?? ''}`)).status).toBe(
      404,
    );
    const acmeList = await call(tokens.acme.admin, 'GET', '/v1/admin/tokens');
    expect((acmeList.body.items as { tenant: string }[]).every((item) => item.tenant === 'acme')).toBe(true);
  });
});

describe('tenant isolation', () => {
  const acme = (): string => tokens.acme.admin;

  it("never shows one tenant another tenant's tasks, alerts, revocations, decisions, secrets or audit", async () => {
    expect((await call(acme(), 'GET', '/v1/tasks/default-only')).status).toBe(404);
    const shared = await call(acme(), 'GET', `/v1/tasks/${SHARED_TASK}`);
    expect(shared.status).toBe(200);
    expect(shared.body.status).toBe('active');
    const lists = [
      '/v1/alerts?limit=1000',
      '/v1/revocations?limit=1000',
      '/v1/decisions?limit=1000',
      '/v1/secrets',
      '/console/api/tasks?limit=200',
      '/v1/audit?limit=1000',
      '/v1/baselines',
    ];
    for (const path of lists) {
      const answer = await call(acme(), 'GET', path);
      expect(answer.status, path).toBe(200);
      const text = JSON.stringify(answer.body);
      for (const foreign of [
        'default-only',
        'default-credentialed',
        defaultAlertId,
        defaultRevocationId,
        'helpdesk-api-token',
        'default tenant kill',
      ]) {
        expect(text, `${path} shows ${foreign}`).not.toContain(foreign);
      }
    }
    expect((await call(acme(), 'GET', `/v1/revocations/${defaultRevocationId}`)).status).toBe(404);
    expect((await call(acme(), 'GET', '/v1/tasks/default-credentialed/credentials')).body.items).toEqual([]);
    expect((await call(acme(), 'GET', '/v1/leases?task_id=default-credentialed')).body.items).toEqual([]);
    expect((await call(acme(), 'GET', '/v1/shadow-report')).status).toBe(200);
  });

  it("never lets one tenant kill, restore, mark, delete or acknowledge another tenant's things", async () => {
    expect(
      (await call(tokens.acme.operator, 'POST', '/v1/tasks/default-only/restore', { reason: 'cross-tenant' })).status,
    ).toBe(404);
    expect(
      (await call(tokens.acme.operator, 'POST', '/v1/tasks/default-credentialed/revoke', { reason: 'cross-tenant' }))
        .status,
    ).toBe(404);
    expect(
      (
        await call(tokens.acme.operator, 'POST', `/v1/alerts/${defaultAlertId}/false-positive`, {
          reason: 'cross-tenant',
        })
      ).status,
    ).toBe(404);
    expect((await call(acme(), 'DELETE', '/v1/secrets/helpdesk-api-token')).status).toBe(404);
    expect((await call(tokens.acme.agent, 'POST', `/v1/revocations/${defaultRevocationId}/ack`, {})).status).toBe(404);
    expect((await running.store.getTask('default', 'default-only'))?.status).toBe('revoked');
    expect((await call(tokens.default.viewer, 'GET', '/v1/secrets')).body.items).toEqual([
      expect.objectContaining({ name: 'helpdesk-api-token' }),
    ]);
  });

  it("kills a task id in one tenant only, leaving the other tenant's task of the same id alone", async () => {
    const kill = await call(tokens.acme.operator, 'POST', `/v1/tasks/${SHARED_TASK}/revoke`, { reason: 'acme kill' });
    expect(kill.status).toBe(201);
    expect((await call(tokens.acme.viewer, 'GET', `/v1/tasks/${SHARED_TASK}`)).body.status).toBe('revoked');
    expect((await call(tokens.default.viewer, 'GET', `/v1/tasks/${SHARED_TASK}`)).body.status).toBe('active');
    expect(running.killSwitch.isRevoked('default', SHARED_TASK)).toBe(false);
    // default's agents can go on with it; acme's spans for it are scored in acme's state.
    expect((await ingest(tokens.default.agent, SHARED_TASK)).status).toBe(200);
  });

  it("answers introspection, checks and token revocation for another tenant's task token as if it did not exist", async () => {
    const own = await call(
      tokens.default.agent,
      'POST',
      '/oauth2/introspect',
      `token=${defaultTaskToken}`,
      'application/x-www-form-urlencoded',
    );
    expect(own.body.active).toBe(true);
    const foreign = await call(
      tokens.acme.agent,
      'POST',
      '/oauth2/introspect',
      `token=${defaultTaskToken}`,
      'application/x-www-form-urlencoded',
    );
    expect(foreign.body).toEqual({ active: false });
    const check = await call(tokens.acme.agent, 'POST', '/v1/check', { token: defaultTaskToken, tool: 'get_ticket' });
    expect(check.body).toMatchObject({ allowed: false });
    expect(JSON.stringify(check.body)).not.toContain('default-credentialed');
    expect(
      (
        await call(
          tokens.acme.agent,
          'POST',
          '/oauth2/revoke',
          `token=${defaultTaskToken}`,
          'application/x-www-form-urlencoded',
        )
      ).status,
    ).toBe(200);
    expect(
      (
        await call(
          tokens.default.agent,
          'POST',
          '/oauth2/introspect',
          `token=${defaultTaskToken}`,
          'application/x-www-form-urlencoded',
        )
      ).body.active,
    ).toBe(true);
  });

  it('streams a tenant its own revocations only', async () => {
    const response = await fetch(`${running.apiUrl}/v1/stream?types=revocation`, {
      headers: { authorization: `Bearer ${tokens.acme.viewer}` },
    });
    const text = await readStreamUntil(response, 'event: ready');
    expect(text).not.toContain(defaultRevocationId);
    expect(text).not.toContain('default-only');
  });
});

describe('secrets stay out of the log', () => {
  it('never writes a token, a task token or a secret value to the log', async () => {
    await running.auth.audit.flush();
    const log = logLines.join('');
    expect(log.length).toBeGreaterThan(0);
    for (const secret of [
      TEST_ADMIN_TOKEN,
      TEST_AGENT_TOKEN,
      tokens.acme.admin,
      tokens.acme.agent,
      tokens.default.viewer,
      defaultTaskToken,
      SECRET_VALUE,
    ]) {
      expect(log).not.toContain(secret);
    }
  });
});
