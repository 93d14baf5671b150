/**
 * Known tokens for tests: registered through TRIPLINE_ADMIN_TOKEN / TRIPLINE_AGENT_TOKEN (the way a deployment
 * does), or on an in-memory token store for an API app built directly.
 */
import type { ApiAccess } from '../../services/api/access.ts';
import type { AdminRoutesDeps } from '../../services/api/admin-routes.ts';
import { openAccessControl } from '../../services/auth/access-control.ts';
import type { AccessControl } from '../../services/auth/access-control.ts';
import { createAuditTrail } from '../../services/auth/audit-trail.ts';
import { createMemoryAccessStore } from '../../services/auth/memory-access-store.ts';
import { createLogger } from '../../services/shared/logger.ts';

export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';
export const TEST_AGENT_TOKEN = 'test-agent-token-0123456789abcdef';

/** Environment variables that register the test tokens for the tenant `default`. */
export const TEST_AUTH_ENV = {
  TRIPLINE_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
  TRIPLINE_AGENT_TOKEN: TEST_AGENT_TOKEN,
} as const;

export const adminHeaders = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } as const;
export const agentHeaders = { authorization: `Bearer ${TEST_AGENT_TOKEN}` } as const;

export interface TestAccess {
  control: AccessControl;
  store: ReturnType<typeof createMemoryAccessStore>;
  api: ApiAccess;
  admin: AdminRoutesDeps;
}

/** Access control over an in-memory store with the test tokens registered. */
export async function testAccess(): Promise<TestAccess> {
  const store = createMemoryAccessStore();
  const logger = createLogger('silent');
  const control = await openAccessControl({ store, logger, refreshMs: 60_000 });
  await control.bootstrap({ adminToken: TEST_ADMIN_TOKEN, agentToken: TEST_AGENT_TOKEN }, { generate: false });
  const audit = createAuditTrail(store, logger);
  return { control, store, api: { control, audit }, admin: { control, store } };
}

/** What an agent sends (POST /v1/tasks, acknowledgements); everything else goes out with the admin token. */
const AGENT_ROUTES = [/^\/v1\/tasks\/?$/, /^\/v1\/revocations\/[^/]+\/ack$/, /^\/v1\/traces$/];

/** The test token a request to `url` needs: the agent's for agent routes, the admin's for the rest. */
export function authFor(method: string, url: string): { authorization: string } {
  const path = new URL(url, 'http://x').pathname;
  return method.toUpperCase() === 'POST' && AGENT_ROUTES.some((route) => route.test(path))
    ? agentHeaders
    : adminHeaders;
}

/** An embedded Tripline on loopback, on free ports, with its data in `dataDir` and the test tokens registered. */
export function loopbackTestEnv(dataDir: string): Record<string, string> {
  return {
    TRIPLINE_DATA_DIR: dataDir,
    TRIPLINE_API_HOST: '127.0.0.1',
    TRIPLINE_OTLP_HOST: '127.0.0.1',
    TRIPLINE_API_PORT: '0',
    TRIPLINE_OTLP_PORT: '0',
    ...TEST_AUTH_ENV,
  };
}
