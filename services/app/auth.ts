/**
 * Authentication for one Tripline process: the tokens (read from ClickHouse over a connection of their own),
 * the audit trail, per-tenant ingest limits, and what the OTLP receiver and the API plug in.
 */
import type { ApiAccess } from '../api/access.ts';
import type { IngestCaller } from '../api/otlp-receiver.ts';
import type { AdminRoutesDeps } from '../api/admin-routes.ts';
import type { AuthConfig } from './config.ts';
import { TriplineError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { openDetectionClient } from '../store/clickhouse/detection-queries.ts';
import type { DetectionClientOptions } from '../store/clickhouse/detection-queries.ts';
import { bearerToken } from '../auth/api-tokens.ts';
import { openAccessControl } from '../auth/access-control.ts';
import type { AccessControl, GeneratedToken } from '../auth/access-control.ts';
import { createAccessStore } from '../store/clickhouse/access-store.ts';
import type { AccessStore } from '../auth/access-store.ts';
import { createAuditTrail } from '../auth/audit-trail.ts';
import type { AuditTrail } from '../auth/audit-trail.ts';
import { createTenantRateLimiter } from '../auth/rate-limit.ts';
import type { TenantRateLimiter } from '../auth/rate-limit.ts';

export interface RunningAuth {
  control: AccessControl;
  store: AccessStore;
  audit: AuditTrail;
  rateLimiter: TenantRateLimiter;
  /** Tokens generated at this start (first start only), to be shown once. */
  generated: GeneratedToken[];
  /** The OTLP receiver's check: the tenant and agent binding of an agent token, or UNAUTHENTICATED / FORBIDDEN. */
  authenticateIngest(authorization: string | undefined): Promise<IngestCaller>;
  /** What the API app needs. */
  api: ApiAccess;
  admin: AdminRoutesDeps;
  stop(): Promise<void>;
}

export interface StartAuthOptions {
  config: AuthConfig;
  clickhouse: DetectionClientOptions & { database: string };
  logger: Logger;
  /**
   * `first-start`: register the configured tokens and, at first start, generate the first ones (the API's
   * process); `configured`: register the configured tokens only (a gateway); `none`.
   */
  bootstrap: 'first-start' | 'configured' | 'none';
  /** A store instead of ClickHouse (an API embedded in another program, tests). */
  store?: AccessStore;
}

export async function startAuth(options: StartAuthOptions): Promise<RunningAuth> {
  let client: ReturnType<typeof openDetectionClient> | undefined;
  let store = options.store;
  if (store === undefined) {
    client = openDetectionClient(options.clickhouse);
    store = createAccessStore(client, options.clickhouse.database);
  }
  try {
    await store.ensureSchema();
    const control = await openAccessControl({ store, logger: options.logger, refreshMs: options.config.refreshMs });
    const configured = { adminToken: options.config.adminToken, agentToken: options.config.agentToken };
    const generated =
      options.bootstrap === 'none'
        ? []
        : await control.bootstrap(configured, { generate: options.bootstrap === 'first-start' });
    const audit = createAuditTrail(store, options.logger);
    const rateLimiter = createTenantRateLimiter({
      spansPerSecond: options.config.tenantSpansPerSecond,
      burstSpans: options.config.tenantBurstSpans,
      bytesPerSecond: options.config.tenantBytesPerSecond,
      burstBytes: options.config.tenantBurstBytes,
    });
    return {
      control,
      store,
      audit,
      rateLimiter,
      generated,
      async authenticateIngest(authorization) {
        const principal = await control.authenticate(bearerToken(authorization));
        if (principal === undefined)
          throw new TriplineError('UNAUTHENTICATED', 'send an agent token as "Authorization: Bearer <token>"');
        if (principal.role !== 'agent')
          throw new TriplineError('FORBIDDEN', `a ${principal.role} token may not send spans; use an agent token`);
        return { tenant: principal.tenant, agents: principal.agents };
      },
      api: { control, audit },
      admin: { control, store },
      async stop() {
        control.stop();
        await audit.stop();
        await client?.close();
      },
    };
  } catch (error) {
    await client?.close();
    throw error;
  }
}

/** The tokens generated at first start, as shown once on the terminal (never through the logger). */
export function describeGeneratedTokens(generated: readonly GeneratedToken[]): string {
  if (generated.length === 0) return '';
  const lines = generated.map(
    (token) => `  ${token.role === 'admin' ? 'admin (API, all of it)  ' : 'agent (OTLP ingest)     '} ${token.token}`,
  );
  return [
    '',
    'Tripline made its first tokens for the tenant "default". They are shown this once; only their hashes are kept.',
    ...lines,
    'Send them as "Authorization: Bearer <token>" (agents: OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer <agent token>").',
    'The agent token is fleet-wide (any agent id); give each agent its own: POST /v1/admin/tokens with "agents".',
    'Lost the admin token? Restart with TRIPLINE_ADMIN_TOKEN set to a new one (24+ characters).',
    '',
  ].join('\n');
}
