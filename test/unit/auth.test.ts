/** The pure parts of authentication: roles, bearer parsing, the rate limiter, and the token registry. */
import { describe, expect, it } from 'vitest';
import { openAccessControl } from '../../services/auth/access-control.ts';
import { bearerToken, generateToken, hashToken, isAcceptableToken } from '../../services/auth/api-tokens.ts';
import { createMemoryAccessStore } from '../../services/auth/memory-access-store.ts';
import { createTenantRateLimiter } from '../../services/auth/rate-limit.ts';
import { ROLES, permits } from '../../services/auth/roles.ts';
import type { Access } from '../../services/auth/roles.ts';
import { ROUTE_ACCESS } from '../../services/api/access.ts';
import { loadConfig } from '../../services/app/config.ts';
import { createLogger } from '../../services/shared/logger.ts';

const logger = createLogger('silent');

describe('roles', () => {
  it('orders viewer < operator < admin and keeps agent tokens to agent and enforcement routes', () => {
    const table = (access: Access): string[] => ROLES.filter((role) => permits(role, access));
    expect(table('viewer')).toEqual(['viewer', 'operator', 'admin']);
    expect(table('operator')).toEqual(['operator', 'admin']);
    expect(table('admin')).toEqual(['admin']);
    expect(table('agent')).toEqual(['agent']);
    expect(table('enforce')).toEqual([...ROLES]);
  });

  it('names an access for every route, and only known accesses', () => {
    const accesses = new Set(['public', 'task', 'enforce', ...ROLES]);
    for (const [route, access] of Object.entries(ROUTE_ACCESS)) {
      expect(route).toMatch(/^(GET|POST|PUT|DELETE) \//);
      expect(accesses.has(access), route).toBe(true);
    }
    // Writes are never public.
    expect(
      Object.entries(ROUTE_ACCESS).filter(([route, access]) => !route.startsWith('GET') && access === 'public'),
    ).toEqual([]);
  });
});

describe('tokens', () => {
  it('makes 256-bit tokens and parses bearer headers strictly', () => {
    const token = generateToken();
    expect(token).toMatch(/^tl_[\w-]{43}$/);
    expect(generateToken()).not.toBe(token);
    expect(hashToken(token)).toMatch(/^[0-9a-f]{64}$/);
    expect(bearerToken(`Bearer ${token}`)).toBe(token);
    expect(bearerToken(`bearer  ${token} `)).toBe(token);
    for (const header of [undefined, '', 'Bearer', 'Bearer ', `Basic ${token}`, `Bearer a b`, ['Bearer x']])
      expect(bearerToken(header), String(header)).toBeUndefined();
  });

  it('accepts configured tokens of 24+ header-safe characters only, naming the variable and never the value', () => {
    expect(isAcceptableToken('short')).toBe(false);
    expect(isAcceptableToken('a'.repeat(24))).toBe(true);
    expect(isAcceptableToken(`${'a'.repeat(24)} b`)).toBe(false);
    const attempt = (): unknown => loadConfig({ TRIPLINE_ADMIN_TOKEN: 'too-short-secret' });
    expect(attempt).toThrow(/TRIPLINE_ADMIN_TOKEN/);
    expect(attempt).not.toThrow(/too-short-secret/);
    expect(() => loadConfig({ TRIPLINE_ADMIN_TOKEN: 'x'.repeat(30), TRIPLINE_AGENT_TOKEN: 'x'.repeat(30) })).toThrow(
      /TRIPLINE_AGENT_TOKEN/,
    );
    expect(loadConfig({}).auth).toMatchObject({
      adminToken: undefined,
      tenantSpansPerSecond: 20_000,
      tenantBurstSpans: 40_000,
    });
  });
});

describe('the rate limiter', () => {
  it('admits a tenant while its bucket is not in debt, and again once it refills', () => {
    let now = 0;
    const limiter = createTenantRateLimiter({ spansPerSecond: 100, burstSpans: 200 }, () => now);
    expect(limiter.admit('a')).toBeUndefined();
    limiter.charge('a', 150);
    expect(limiter.admit('a')).toBeUndefined();
    limiter.charge('a', 250); // overdraws: 200 in debt
    expect(limiter.admit('a')).toBe(2);
    expect(limiter.admit('b')).toBeUndefined();
    now += 1000;
    expect(limiter.admit('a')).toBe(1);
    now += 1000;
    expect(limiter.admit('a')).toBeUndefined();
    now += 60_000;
    limiter.charge('a', 200);
    expect(limiter.admit('a')).toBeUndefined(); // refilled to the burst, not beyond
    limiter.charge('a', 1);
    expect(limiter.admit('a')).toBe(1);
  });
});

describe('the token registry', () => {
  it('makes an admin and an agent token at first start only, and stores only their hashes', async () => {
    const store = createMemoryAccessStore();
    const first = await openAccessControl({ store, logger, refreshMs: 60_000 });
    const generated = await first.bootstrap({}, { generate: true });
    expect(generated.map((token) => [token.role, token.tenant])).toEqual([
      ['admin', 'default'],
      ['agent', 'default'],
    ]);
    const rows = await store.listTokens();
    for (const token of generated) {
      expect(JSON.stringify(rows)).not.toContain(token.token);
      expect(rows.some((row) => row.tokenHash === hashToken(token.token))).toBe(true);
      expect(await first.authenticate(token.token)).toMatchObject({ role: token.role, tenant: 'default' });
    }
    first.stop();
    const second = await openAccessControl({ store, logger, refreshMs: 60_000 });
    expect(await second.bootstrap({}, { generate: true })).toEqual([]);
    second.stop();
  });

  it('registers configured tokens once, and never brings back one that was revoked', async () => {
    const store = createMemoryAccessStore();
    const control = await openAccessControl({ store, logger, refreshMs: 60_000 });
    const admin = 'configured-admin-token-000000000';
    expect(await control.bootstrap({ adminToken: admin }, { generate: true })).toEqual([]);
    await control.bootstrap({ adminToken: admin }, { generate: true });
    expect(control.listTokens(undefined)).toHaveLength(1);
    const principal = await control.authenticate(admin);
    expect(principal).toMatchObject({ role: 'admin', superuser: true });
    await control.revokeToken(principal?.tokenId ?? '', undefined, 'test');
    expect(await control.authenticate(admin)).toBeUndefined();
    await control.bootstrap({ adminToken: admin }, { generate: false });
    expect(await control.authenticate(admin)).toBeUndefined();
    control.stop();
  });

  it('sees tokens another process made at their first use, re-reading the store at most once a second for unknown tokens', async () => {
    let now = 10_000;
    const sleep = (ms: number): Promise<void> => {
      now += ms;
      return Promise.resolve();
    };
    const store = createMemoryAccessStore();
    let reads = 0;
    const counting = { ...store, listTokens: () => ((reads += 1), store.listTokens()) };
    const control = await openAccessControl({ store: counting, logger, refreshMs: 60_000, now: () => now, sleep });
    const other = await openAccessControl({ store, logger, refreshMs: 60_000 });
    const { token } = await other.createToken({ tenant: 'acme', role: 'viewer', name: 'elsewhere', createdBy: 'test' });
    reads = 0;
    // Used right after this process read the tokens (at open): it waits for the next read, a second later.
    expect(await control.authenticate(token)).toMatchObject({ tenant: 'acme', role: 'viewer', name: 'elsewhere' });
    expect(reads).toBe(1);
    expect(now).toBe(11_000);
    // Made-up tokens at once share one read; one after another, one read a second each.
    const guesses = await Promise.all(Array.from({ length: 50 }, (_, i) => control.authenticate(`tl_guess-${i}`)));
    expect(guesses.every((principal) => principal === undefined)).toBe(true);
    expect(reads).toBe(2);
    for (let i = 0; i < 5; i += 1) expect(await control.authenticate(`tl_guess-again-${i}`)).toBeUndefined();
    expect(reads).toBe(7);
    expect(now).toBe(17_000);
    // A known token costs no read.
    expect(await control.authenticate(token)).toBeDefined();
    expect(reads).toBe(7);
    control.stop();
    other.stop();
  });
});
