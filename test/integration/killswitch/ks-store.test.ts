/**
 * The kill switch's store over the in-process engine: a kill's revocation is stored before the bookkeeping
 * started beside it (a policy decision, a verification record) takes the engine, and both are stored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Revocation } from '../../../schemas/events.ts';
import type { PolicyDecisionRecord, VerificationRecord } from '../../../services/killswitch/ks-store.ts';
import { startTripline } from './helpers.ts';
import type { TestTripline } from './helpers.ts';

let tripline: TestTripline;

beforeAll(async () => {
  tripline = await startTripline();
});

afterAll(async () => {
  await tripline.stop();
});

/** The detector's revocation of a task of tenant `default`. */
function detectorRevocation(id: string, taskId: string, agentId: string, timeMs: number): Revocation {
  return {
    id,
    tenant: 'default',
    taskId,
    taskType: 'customer_refund',
    agentId,
    action: 'revoke',
    source: 'detector',
    actor: 'tripline',
    reason: 'score reached the revoke threshold',
    reasons: [],
    score: 100,
    eventId: 'e',
    timeMs,
  };
}

describe("the kill switch's store", () => {
  it('stores a revocation before the writes that came beside it start', async () => {
    const store = tripline.running.enforcement.store;
    const now = Date.now();
    const revocation: Revocation = {
      id: 'ks-store-r1',
      tenant: 'default',
      taskId: 'ks-store-t1',
      taskType: 'customer_refund',
      agentId: 'a',
      action: 'revoke',
      source: 'manual',
      actor: 'alice',
      reason: 'test',
      reasons: [],
      score: 0,
      eventId: '',
      timeMs: now,
    };
    const decision: PolicyDecisionRecord = {
      id: 'ks-store-d1',
      tenant: 'default',
      timeMs: now,
      action: 'start_task',
      agentId: 'a',
      taskId: 'ks-store-t2',
      taskType: 'customer_refund',
      resource: 'customer_refund',
      decision: 'allow',
      policies: [],
      reasons: [],
      errors: [],
      context: '{}',
    };
    const verification: VerificationRecord = {
      revocationId: 'ks-store-r1',
      tenant: 'default',
      taskId: 'ks-store-t1',
      taskType: 'customer_refund',
      agentId: 'a',
      outcome: 'pending',
      revokedMs: now,
      decidedMs: null,
      acknowledgedMs: null,
      checks: {},
      failures: [],
      version: 1,
    };
    const done: string[] = [];
    await Promise.all([
      store.insertRevocations([revocation]).then(() => done.push('revocation')),
      store.insertDecisions([decision]).then(() => done.push('decision')),
      store.upsertVerifications([verification]).then(() => done.push('verification')),
    ]);
    expect(done[0]).toBe('revocation');
    expect(await store.getRevocation('default', 'ks-store-r1')).toMatchObject({
      taskId: 'ks-store-t1',
      action: 'revoke',
    });
    expect(await store.getVerification('default', 'ks-store-r1')).toMatchObject({ outcome: 'pending' });
    expect(
      (await store.listDecisions({ tenant: 'default', taskId: 'ks-store-t2', limit: 10 })).map((row) => row.id),
    ).toEqual(['ks-store-d1']);
  });

  it('keeps what escalation needs of a revocation, so a restart rebuilds the same scoped blocks', async () => {
    const store = tripline.running.enforcement.store;
    const now = Date.now();
    const base: Revocation = {
      ...detectorRevocation('ks-store-e1', 'ks-store-e1', 'shared-agent', now),
      escalation: { counts: true, basis: 'hard_rule', endUser: 'u-1', conversation: 'c-1' },
    };
    const older: Revocation = { ...base, id: 'ks-store-e2', taskId: 'ks-store-e2' };
    delete older.escalation;
    await store.insertRevocations([base, older]);
    const loaded = (await store.loadRevocationsSince(now - 1)).filter((r) => r.agentId === 'shared-agent');
    expect(loaded).toEqual([base, older]);
    expect(await store.getRevocation('default', 'ks-store-e1')).toEqual(base);
  });

  it("reads one task's revocation state, as it reads every task's at start", async () => {
    const store = tripline.running.enforcement.store;
    const now = Date.now();
    const revoke = detectorRevocation('ks-store-s1', 'ks-store-s', 'a', now);
    const restore: Revocation = { ...revoke, id: 'ks-store-s2', action: 'restore', actor: 'alice', timeMs: now + 5 };
    const otherTenant: Revocation = { ...revoke, id: 'ks-store-s3', tenant: 'other', timeMs: now + 9 };
    await store.insertRevocations([revoke, restore, otherTenant]);
    const [state, ...rest] = await store.loadTaskRevocations({ tenant: 'default', taskId: 'ks-store-s' });
    expect(rest).toEqual([]);
    expect(state).toMatchObject({ lastAction: 'restore', lastRevokeMs: now, last: restore });
    const all = await store.loadTaskRevocations();
    expect(all.find((s) => s.tenant === 'default' && s.taskId === 'ks-store-s')).toEqual(state);
    expect(await store.loadTaskRevocations({ tenant: 'default', taskId: 'never-revoked' })).toEqual([]);
  });
});
