/**
 * The kill switch's parts on their own, over the in-memory store (no ClickHouse, no network): the escalation
 * window, token expiry and key persistence, the authority's revocation rules (restore revives nothing), the
 * verifier's outcomes (verified, failed at once on evidence, a verified kill turned failed by late evidence, a
 * lease provider that fails), and the server-sent-events parser of the agent guard.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readEvents } from '../../../kits/typescript/src/guard.ts';
import type { AgentEvent, Alert, Revocation } from '../../../schemas/events.ts';
import { createAuthority } from '../../../services/killswitch/authority.ts';
import { createBatchWriter } from '../../../services/killswitch/batch-writer.ts';
import { ESCALATION_ACTOR, EscalationWindow } from '../../../services/killswitch/escalation.ts';
import { isKillSwitchError } from '../../../services/killswitch/errors.ts';
import { loadSigningKey } from '../../../services/killswitch/keys.ts';
import { createLocalKillSwitch } from '../../../services/killswitch/kill-switch.ts';
import { createInMemoryKillSwitchStore } from '../../../services/killswitch/ks-store.ts';
import type { CredentialRecord, LeaseRecord, PolicyDecisionRecord } from '../../../services/killswitch/ks-store.ts';
import { createLeaseManager } from '../../../services/killswitch/leases.ts';
import { loadPolicyEngine } from '../../../services/killswitch/policy.ts';
import { createBuiltinSecretStore } from '../../../services/killswitch/secrets.ts';
import type { SecretProvider } from '../../../services/killswitch/secrets.ts';
import { createTokenService } from '../../../services/killswitch/tokens.ts';
import { RECEIPT_ALLOWANCE_MS } from '../../../services/killswitch/verification-checks.ts';
import { createVerifier } from '../../../services/killswitch/verifier.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import { waitFor } from '../../helpers/wait.ts';

const logger = createLogger('silent');

function revocation(
  taskId: string,
  agentId: string,
  timeMs: number,
  action: Revocation['action'] = 'revoke',
  actor = 'tripline',
): Revocation {
  return {
    id: `${action}-${taskId}-${timeMs}`,
    tenant: 'default',
    taskId,
    taskType: 'customer_refund',
    agentId,
    action,
    source: actor === 'tripline' ? 'detector' : 'manual',
    actor,
    reason: 'r',
    reasons: [],
    score: 100,
    eventId: 'e',
    timeMs,
    // A hard rule: a revocation that counts toward escalation.
    ...(actor === 'tripline' && action === 'revoke'
      ? { escalation: { counts: true, basis: 'hard_rule' as const } }
      : {}),
  };
}

describe('the escalation window', () => {
  it('escalates one agent after N revocations of distinct tasks within the window, and no one else', () => {
    const window = new EscalationWindow({ revocations: 3, windowMs: 60_000, blockMs: 30_000 });
    expect(window.observe(revocation('t1', 'a', 0))).toBeUndefined();
    expect(window.observe(revocation('t1', 'a', 1000))).toBeUndefined(); // the same task twice counts once
    expect(window.observe(revocation('x1', 'b', 1500))).toBeUndefined();
    expect(window.observe(revocation('t2', 'a', 2000))).toBeUndefined();
    const escalation = window.observe(revocation('t3', 'a', 3000));
    expect(escalation).toMatchObject({ agentId: 'a', atMs: 3000, untilMs: 33_000, taskIds: ['t1', 't2', 't3'] });
    expect(window.blocking('default', 'a', {}, 10_000)).toBeDefined();
    expect(window.blocking('default', 'a', {}, 33_000)).toBeUndefined();
    expect(window.blocking('default', 'b', {}, 10_000)).toBeUndefined();
    expect(window.blocking('other-tenant', 'a', {}, 10_000)).toBeUndefined();
  });

  it('forgets revocations older than the window, restored ones, and its own', () => {
    const window = new EscalationWindow({ revocations: 2, windowMs: 10_000, blockMs: 30_000 });
    window.observe(revocation('t1', 'a', 0));
    expect(window.observe(revocation('t2', 'a', 20_000))).toBeUndefined();
    window.observe(revocation('t2', 'a', 21_000, 'restore', 'alice'));
    expect(window.observe(revocation('t3', 'a', 22_000, 'revoke', ESCALATION_ACTOR))).toBeUndefined();
    expect(window.observe(revocation('t4', 'a', 23_000))).toBeUndefined();
    expect(window.observe(revocation('t5', 'a', 24_000))).toBeDefined();
    expect(
      new EscalationWindow({ revocations: 0, windowMs: 1, blockMs: 1 }).observe(revocation('t', 'a', 0)),
    ).toBeUndefined();
  });
});

function writer<T>(rows: T[]): ReturnType<typeof createBatchWriter<T>> {
  return createBatchWriter<T>({
    name: 'test',
    write: (batch) => Promise.resolve(void rows.push(...batch)),
    logger,
    intervalMs: 1,
  });
}

async function authorityFixture(
  now: () => number,
  options: { store?: ReturnType<typeof createInMemoryKillSwitchStore>; maxRevokedTasks?: number } = {},
) {
  const key = await loadSigningKey({ keysDir: mkdtempSync(join(tmpdir(), 'tripline-keys-')) });
  const tokens = createTokenService({
    key,
    issuer: 'https://tripline.test',
    audience: 'tripline',
    ttlSeconds: 60,
    now,
  });
  const store = options.store ?? createInMemoryKillSwitchStore();
  const killSwitch = createLocalKillSwitch();
  const decisions: PolicyDecisionRecord[] = [];
  const credentials: CredentialRecord[] = [];
  const authority = createAuthority({
    tokens,
    policy: loadPolicyEngine(),
    store,
    killSwitch,
    decisions: writer(decisions),
    credentials: writer(credentials),
    escalation: { revocations: 0, windowMs: 1, blockMs: 1 },
    kid: key.kid,
    logger,
    now,
    ...(options.maxRevokedTasks === undefined ? {} : { maxRevokedTasks: options.maxRevokedTasks }),
  });
  return { key, tokens, store, killSwitch, authority, decisions, credentials };
}

describe('tokens and the authority', () => {
  it('keeps one signing key across loads and expires tokens after their lifetime', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tripline-keys-'));
    const first = await loadSigningKey({ keysDir: dir });
    const second = await loadSigningKey({ keysDir: dir });
    expect(first.origin).toBe('generated');
    expect(second.origin).toBe('file');
    expect(second.kid).toBe(first.kid);
    await expect(loadSigningKey({ keysDir: dir, configured: '{"kty":"RSA"}' })).rejects.toThrow(
      /TRIPLINE_SIGNING_KEY is invalid/,
    );

    let clock = Date.parse('2026-03-01T00:00:00Z');
    const { authority, tokens } = await authorityFixture(() => clock);
    const { token } = await authority.startTask({
      tenant: 'default',
      agentId: 'a',
      taskType: 'summarize_ticket',
      taskId: 't-exp',
    });
    expect((await authority.introspect(token)).active).toBe(true);
    clock += 70_000; // past exp and the 5 s clock tolerance
    expect(await authority.introspect(token)).toEqual({ active: false });
    await expect(tokens.verify(token)).rejects.toSatisfy((error: unknown) => isKillSwitchError(error, 'TOKEN_INVALID'));
  });

  it('kills tokens issued before a revocation for good; a restore lets only new tokens live', async () => {
    let clock = Date.parse('2026-03-01T00:00:00Z');
    const { authority, killSwitch } = await authorityFixture(() => clock);
    const before = await authority.startTask({
      tenant: 'default',
      agentId: 'a',
      taskType: 'summarize_ticket',
      taskId: 't-1',
    });
    const other = await authority.startTask({
      tenant: 'default',
      agentId: 'a',
      taskType: 'summarize_ticket',
      taskId: 't-2',
    });
    clock += 10;
    killSwitch.apply(revocation('t-1', 'a', clock));
    expect(await authority.introspect(before.token)).toEqual({ active: false });
    expect((await authority.introspect(other.token)).active).toBe(true);
    await expect(
      authority.startTask({ tenant: 'default', agentId: 'a', taskType: 'summarize_ticket', taskId: 't-1' }),
    ).rejects.toSatisfy((error: unknown) => isKillSwitchError(error, 'TASK_REVOKED'));
    clock += 10;
    killSwitch.apply(revocation('t-1', 'a', clock, 'restore', 'alice'));
    expect(await authority.introspect(before.token)).toEqual({ active: false });
    clock += 10;
    const after = await authority.startTask({
      tenant: 'default',
      agentId: 'a',
      taskType: 'summarize_ticket',
      taskId: 't-1',
    });
    expect((await authority.introspect(after.token)).active).toBe(true);
    // Another agent cannot take the task over.
    await expect(
      authority.startTask({ tenant: 'default', agentId: 'b', taskType: 'summarize_ticket', taskId: 't-1' }),
    ).rejects.toThrow(/belongs to agent a/);
  });

  it('refuses to start a revoked task it no longer holds in memory: it reads the task from the store', async () => {
    const clock = Date.parse('2026-03-01T00:00:00Z');
    const store = createInMemoryKillSwitchStore();
    const longAgo = clock - 3_600_000; // older than a token's lifetime: no token issued before can verify
    await store.insertRevocations([
      revocation('old-1', 'a', longAgo),
      revocation('old-2', 'a', longAgo + 1),
      revocation('old-3', 'a', longAgo + 2),
      revocation('old-3', 'a', longAgo + 3, 'restore', 'alice'),
      revocation('old-4', 'a', longAgo + 4),
    ]);
    // A restart: memory keeps one revoked task of the four, the store has them all.
    const { authority } = await authorityFixture(() => clock, { store, maxRevokedTasks: 1 });
    await authority.load();
    expect(authority.task('default', 'old-1').revoked).toBe(false);
    const start = (taskId: string, agentId = 'a') =>
      authority.startTask({ tenant: 'default', agentId, taskType: 'summarize_ticket', taskId });
    for (const taskId of ['old-1', 'old-2', 'old-4'])
      await expect(start(taskId)).rejects.toSatisfy((error: unknown) => isKillSwitchError(error, 'TASK_REVOKED'));
    expect(authority.task('default', 'old-1').revoked).toBe(true);
    await expect(start('old-2', 'b')).rejects.toThrow(/belongs to agent a/);
    expect((await start('old-3')).taskId).toBe('old-3'); // restored: new tokens may be issued
    expect((await start('never-revoked')).taskId).toBe('never-revoked');
  });
});

describe('verification', () => {
  interface Fixture {
    killSwitch: ReturnType<typeof createLocalKillSwitch>;
    verifier: ReturnType<typeof createVerifier>;
    alerts: Alert[];
    store: ReturnType<typeof createInMemoryKillSwitchStore>;
    leases: ReturnType<typeof createLeaseManager>;
  }

  async function fixture(
    options: {
      provider?: SecretProvider | ((store: ReturnType<typeof createInMemoryKillSwitchStore>) => SecretProvider);
      requireAck?: boolean;
      /** The verifier's clock (when Tripline receives an event). */
      now?: () => number;
    } = {},
  ): Promise<Fixture> {
    const { authority, killSwitch, store } = await authorityFixture(Date.now);
    const given = typeof options.provider === 'function' ? options.provider(store) : options.provider;
    const provider: SecretProvider = given ?? {
      name: 'builtin',
      has: () => Promise.resolve(true),
      lease: () => Promise.resolve({ value: 'v', providerRef: '' }),
      revoke: () => Promise.resolve(),
    };
    const decisions: PolicyDecisionRecord[] = [];
    const leases = createLeaseManager({
      store,
      providers: [provider],
      policy: loadPolicyEngine(),
      decisions: writer(decisions),
      authority,
      taskState: () => Promise.resolve(undefined),
      ttlSeconds: 60,
      logger,
    });
    const alerts: Alert[] = [];
    const verifier = createVerifier({
      store,
      authority,
      leases,
      killSwitch,
      insertAlerts: (rows) => Promise.resolve(void alerts.push(...rows)),
      windowMs: 150,
      clockSkewMs: 10,
      requireAck: options.requireAck ?? false,
      logger,
      ...(options.now === undefined ? {} : { now: options.now }),
    });
    return { killSwitch, verifier, alerts, store, leases };
  }

  function event(taskId: string, startMs: number): AgentEvent {
    return {
      id: `e-${startMs}`,
      tenant: 'default',
      kind: 'tool_call',
      taskId,
      taskType: 'customer_refund',
      agentId: 'a',
      traceId: 't',
      spanId: 's',
      parentSpanId: '',
      name: 'execute_tool get_order',
      startMs,
      endMs: startMs + 1,
      error: false,
      attributes: {},
    };
  }

  it('records verified when every check passes, and failed at once on evidence', async () => {
    const { killSwitch, verifier, alerts } = await fixture();
    const clean = revocation('clean', 'a', Date.now());
    killSwitch.apply(clean);
    expect((await verifier.get('default', clean.id))?.outcome).toBe('pending');
    await verifier.settled();
    expect(await verifier.get('default', clean.id)).toMatchObject({ outcome: 'verified', failures: [] });

    const dirty = revocation('dirty', 'a', Date.now());
    killSwitch.apply(dirty);
    verifier.onRevokedTaskEvent(event('dirty', dirty.timeMs - 100)); // before the revocation: fine
    verifier.onRevokedTaskEvent(event('dirty', dirty.timeMs + 5)); // within the clock-skew allowance: fine
    verifier.onRevokedTaskEvent(event('dirty', dirty.timeMs + 1500)); // past any grace: fails at once
    const failed = await waitFor(
      'the failure',
      async () => {
        const record = await verifier.get('default', dirty.id);
        return record?.outcome === 'failed' ? record : undefined;
      },
      100,
      5,
    );
    expect(failed.decidedMs).toBeLessThan(dirty.timeMs + 150);
    expect(failed.checks.agentStopped).toMatchObject({ ok: false, violations: 1 });
    await verifier.settled();
    expect(alerts).toHaveLength(1);
    expect(verifier.ownsAlert(alerts[0]?.id ?? '')).toBe(true);
  });

  it('excuses operations already under way when an acknowledged kill reached the agent, not later ones', async () => {
    const { killSwitch, verifier } = await fixture();
    const excused = revocation('excused', 'a', Date.now());
    killSwitch.apply(excused);
    // The agent received the kill 40 ms after it was decided; a call it had started 30 ms after is not its fault.
    await verifier.acknowledge('default', excused.id, { agentId: 'a', receivedAtMs: excused.timeMs + 40 });
    verifier.onRevokedTaskEvent(event('excused', excused.timeMs + 30));
    await verifier.settled();
    const ok = await verifier.get('default', excused.id);
    expect(ok?.outcome).toBe('verified');
    expect(ok?.checks.agentStopped?.detail).toMatch(/1 already under way/);
    expect(ok?.checks.acknowledged?.detail).toMatch(/the agent received it 40 ms after it/);

    const guilty = revocation('guilty', 'a', Date.now());
    killSwitch.apply(guilty);
    await verifier.acknowledge('default', guilty.id, { agentId: 'a', receivedAtMs: guilty.timeMs + 40 });
    verifier.onRevokedTaskEvent(event('guilty', guilty.timeMs + 60)); // after the agent knew
    await verifier.settled();
    expect((await verifier.get('default', guilty.id))?.outcome).toBe('failed');
    // An acknowledgement from another agent is not taken.
    expect(await verifier.acknowledge('default', guilty.id, { agentId: 'someone-else' })).toBeUndefined();
  });

  it('turns a verified kill into failed when evidence arrives late', async () => {
    const { killSwitch, verifier, alerts } = await fixture();
    const late = revocation('late', 'a', Date.now());
    killSwitch.apply(late);
    await verifier.settled();
    expect((await verifier.get('default', late.id))?.outcome).toBe('verified');
    verifier.onRevokedTaskEvent(event('late', late.timeMs + 100));
    expect((await verifier.get('default', late.id))?.outcome).toBe('failed');
    expect(alerts).toHaveLength(1);
  });

  it('fails a kill when a span arrives long after it, however early the span says it ran (backdated)', async () => {
    let receivedLater = 0;
    const { killSwitch, verifier, alerts } = await fixture({ now: () => Date.now() + receivedLater });
    const kill = revocation('backdated', 'a', Date.now());
    killSwitch.apply(kill);
    // Received at once, a span that ended before the kill finished before it: fine.
    verifier.onRevokedTaskEvent({ ...event('backdated', kill.timeMs - 100), id: 'prompt' });
    // A long operation under way at the kill, received soon after it ended: already under way, fine.
    receivedLater = 30_000;
    verifier.onRevokedTaskEvent({ ...event('backdated', kill.timeMs - 50), id: 'long', endMs: kill.timeMs + 29_000 });
    expect((await verifier.get('default', kill.id))?.outcome).toBe('pending');
    // Claims to have run before the kill, received 30 s after it: the agent set its timestamps back.
    verifier.onRevokedTaskEvent({ ...event('backdated', kill.timeMs - 100), id: 'backdated' });
    await verifier.settled();
    const record = await verifier.get('default', kill.id);
    expect(record?.outcome).toBe('failed');
    expect(record?.checks.agentStopped).toMatchObject({ ok: false, violations: 1 });
    expect(record?.checks.agentStopped?.firstViolation?.eventId).toBe('backdated');
    expect(record?.checks.agentStopped?.firstViolation?.receivedMs).toBeGreaterThan(kill.timeMs + RECEIPT_ALLOWANCE_MS);
    expect(record?.failures.join(' ')).toMatch(
      /received \d+ ms after it though it claims to have started 100 ms before it/,
    );
    expect(alerts).toHaveLength(1);
  });

  it('finds stored spans by when Tripline stored them, not only by their own start time', async () => {
    const revokedMs = Date.now();
    const base = { tenant: 'default', taskId: 't', name: 'execute_tool get_order', kind: 'tool_call' };
    const store = createInMemoryKillSwitchStore({
      events: [
        { ...base, eventId: 'before', startMs: revokedMs - 500, endMs: revokedMs - 400, ingestedMs: revokedMs + 200 },
        {
          ...base,
          eventId: 'backdated',
          startMs: revokedMs - 900,
          endMs: revokedMs - 800,
          ingestedMs: revokedMs + 20_000,
        },
      ],
    });
    const receipt = { revokedMs, allowanceMs: RECEIPT_ALLOWANCE_MS };
    expect(await store.eventsAfter('default', 't', revokedMs + 10, receipt)).toEqual({
      count: 1,
      first: {
        eventId: 'backdated',
        name: base.name,
        kind: base.kind,
        startMs: revokedMs - 900,
        receivedMs: revokedMs + 20_000,
      },
    });
  });

  it('says a built-in-store lease was revoked at Tripline only: the value handed out still works', async () => {
    const { killSwitch, verifier, store, leases } = await fixture({
      provider: (kill) => createBuiltinSecretStore({ store: kill, key: randomBytes(32) }).provider,
    });
    const now = Date.now();
    const lease: LeaseRecord = {
      id: 'lease-static',
      tenant: 'default',
      taskId: 'static',
      taskType: 'customer_refund',
      agentId: 'a',
      secret: 'refund-api-key',
      provider: 'builtin',
      providerRef: '',
      status: 'active',
      issuedMs: now,
      expiresMs: now + 60_000,
      endedMs: null,
      endReason: '',
      version: 1,
    };
    await store.upsertLeases([lease]);
    await leases.load();
    const kill = revocation('static', 'a', now);
    killSwitch.apply(kill);
    await verifier.settled();
    const record = await verifier.get('default', kill.id);
    expect(record?.checks.leases).toMatchObject({
      ok: true,
      revoked: 1,
      atTriplineOnly: ['lease lease-static (refund-api-key, builtin)'],
    });
    expect(record?.checks.leases?.detail).toMatch(/revoked at Tripline only: the value was handed out .* rotate it/);
    expect(record?.checks.leases?.detail).not.toMatch(/at their provider/);
    const ended = await store.getLease('default', 'lease-static');
    expect(ended?.status).toBe('revoked_at_tripline_only');
    expect(ended?.endReason).toMatch(/rotate it there/);
    await leases.stop();
  });

  it('fails when a lease provider cannot revoke, or when an acknowledgement is required and missing', async () => {
    const failing: SecretProvider = {
      name: 'builtin',
      has: () => Promise.resolve(true),
      lease: () => Promise.resolve({ value: 'v', providerRef: 'ref' }),
      revoke: () => Promise.reject(new Error('vault down')),
    };
    const { killSwitch, verifier, store, leases } = await fixture({ provider: failing, requireAck: true });
    const now = Date.now();
    const lease: LeaseRecord = {
      id: 'lease-1',
      tenant: 'default',
      taskId: 'leaky',
      taskType: 'customer_refund',
      agentId: 'a',
      secret: 's',
      provider: 'builtin',
      providerRef: 'ref',
      status: 'active',
      issuedMs: now,
      expiresMs: now + 60_000,
      endedMs: null,
      endReason: '',
      version: 1,
    };
    await store.upsertLeases([lease]);
    await leases.load();
    const leaky = revocation('leaky', 'a', now);
    killSwitch.apply(leaky);
    await verifier.settled();
    const record = await verifier.get('default', leaky.id);
    expect(record?.outcome).toBe('failed');
    expect(record?.failures.join(' ')).toMatch(/vault down/);
    expect(record?.failures.join(' ')).toMatch(/did not acknowledge/);
    expect((await store.getLease('default', 'lease-1'))?.status).toBe('revoke_failed');
    await leases.stop();
  });
});

describe('the guard’s event-stream parser', () => {
  it('parses events, ids, multi-line data and comments across chunk boundaries', async () => {
    const text = ': ping\n\nevent: revocation\nid: r1\ndata: {"a":\ndata: 1}\n\nevent: ready\ndata: {}\r\n\r\n';
    const bytes = new TextEncoder().encode(text);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 7) controller.enqueue(bytes.slice(i, i + 7));
        controller.close();
      },
    });
    const events = [];
    for await (const event of readEvents(body)) events.push(event);
    expect(events).toEqual([
      { event: 'revocation', id: 'r1', data: '{"a":\n1}' },
      { event: 'ready', data: '{}' },
    ]);
  });
});
