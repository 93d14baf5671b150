/**
 * The audit trail's writer under failed authentication: anyone can send writes without a valid token, so their
 * rows are capped per minute; the rest of a minute becomes one summary row with its count. Rows of authenticated
 * requests are never capped.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../services/auth/access-store.ts';
import { UNAUTHENTICATED_ROWS_PER_MINUTE, createAuditTrail } from '../../services/auth/audit-trail.ts';
import type { AuditTrail } from '../../services/auth/audit-trail.ts';
import { createMemoryAccessStore } from '../../services/auth/memory-access-store.ts';
import { createLogger } from '../../services/shared/logger.ts';

const START_MS = Date.parse('2026-03-01T10:00:00Z');
const trails: AuditTrail[] = [];

afterEach(async () => {
  for (const trail of trails.splice(0)) await trail.stop();
});

function row(timeMs: number, tokenId: string, index: number): AuditRecord {
  return {
    timeMs,
    tenant: tokenId === '' ? '' : 'acme',
    actor: tokenId === '' ? '' : 'ops',
    tokenId,
    role: tokenId === '' ? '' : 'operator',
    method: 'POST',
    route: '/v1/tasks/:taskId/revoke',
    target: JSON.stringify({ taskId: `t-${index}` }),
    reason: '',
    status: tokenId === '' ? 401 : 200,
    requestId: `req-${index}`,
  };
}

describe('the audit trail and writes without a valid token', () => {
  it('records at most the per-minute cap of them, then one row counting the rest of the minute', async () => {
    let now = START_MS;
    const store = createMemoryAccessStore();
    const trail = createAuditTrail(store, createLogger('silent'), () => now);
    trails.push(trail);

    const attempts = UNAUTHENTICATED_ROWS_PER_MINUTE + 500;
    for (let index = 0; index < attempts; index += 1) {
      now = START_MS + index * 10; // all within the first minute
      trail.record(row(now, '', index));
      if (index % 100 === 0) trail.record(row(now, 'tok_ops', index));
    }
    await trail.flush();
    expect(store.audit.filter((entry) => entry.tokenId === '')).toHaveLength(UNAUTHENTICATED_ROWS_PER_MINUTE);
    expect(store.audit.filter((entry) => entry.tokenId === 'tok_ops')).toHaveLength(Math.ceil(attempts / 100));

    now = START_MS + 61_000;
    trail.record(row(now, '', attempts));
    await trail.flush();
    const unauthenticated = store.audit.filter((entry) => entry.tokenId === '');
    expect(unauthenticated).toHaveLength(UNAUTHENTICATED_ROWS_PER_MINUTE + 2);
    const summary = unauthenticated.find((entry) => entry.route === '*');
    expect(summary).toMatchObject({
      tenant: '',
      status: 401,
      timeMs: START_MS + 60_000,
      reason: `500 more requests without a valid token in the minute from 2026-03-01T10:00:00.000Z, not recorded one by one`,
    });
    expect(JSON.parse(summary?.target ?? '')).toEqual({});
  });

  it('writes the summary of the last minute on stop', async () => {
    const now = START_MS;
    const store = createMemoryAccessStore();
    const trail = createAuditTrail(store, createLogger('silent'), () => now);
    for (let index = 0; index < UNAUTHENTICATED_ROWS_PER_MINUTE + 3; index += 1) trail.record(row(now, '', index));
    await trail.stop();
    expect(store.audit).toHaveLength(UNAUTHENTICATED_ROWS_PER_MINUTE + 1);
    expect(store.audit.at(-1)?.reason).toMatch(/^3 more requests without a valid token/);
  });
});
