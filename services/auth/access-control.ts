/**
 * The tokens Tripline accepts, held in memory and re-read from the store: every `refreshMs`, and when an unknown
 * token arrives, so that a token created by another API process works at its first use. An unknown token waits for a
 * read that starts after it arrived (at most one a second, shared by every unknown token waiting): a token used
 * right after a read is not refused (an OTLP client drops what a 401 answers), and a flood of made-up tokens costs
 * at most one query a second (and waits up to a second for its 401).
 *
 * On first start (no admin token anywhere) it makes an admin token and an agent token for the `default`
 * tenant and returns them to the caller, which shows them once; only their hashes are stored.
 * `TRIPLINE_ADMIN_TOKEN` / `TRIPLINE_AGENT_TOKEN` register known tokens instead (deployments, tests, and
 * the way back in after losing the generated admin token).
 */
import { TriplineError, messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { generateToken, generateTokenId, hashToken } from './api-tokens.ts';
import type { AccessStore, TokenRecord } from './access-store.ts';
import type { Principal, Role } from './roles.ts';

export const BOOTSTRAP_TENANT = 'default';
const MISS_REFRESH_INTERVAL_MS = 1000;

export interface AccessControlOptions {
  store: AccessStore;
  logger: Logger;
  /** How often tokens are re-read from the store. */
  refreshMs: number;
  now?: () => number;
  /** Waits `ms` (tests pass a fake clock's). @default a timer */
  sleep?: (ms: number) => Promise<void>;
}

export interface NewToken {
  tenant: string;
  role: Role;
  name: string;
  createdBy: string;
  superuser?: boolean;
  /** Agent tokens: the agent ids (and `prefix*`) it may speak for. @default [] (fleet-wide) */
  agents?: readonly string[];
}

/** Tokens made by `bootstrap`, to be shown once. */
export interface GeneratedToken {
  role: Role;
  tenant: string;
  token: string;
}

export interface AccessControl {
  /** The principal of a bearer token, or undefined for an unknown or revoked one. */
  authenticate(token: string | undefined): Promise<Principal | undefined>;
  /** Registers the configured tokens; on first start (with `generate`) makes the admin and agent tokens. */
  bootstrap(
    configured: { adminToken?: string | undefined; agentToken?: string | undefined },
    options: { generate: boolean },
  ): Promise<GeneratedToken[]>;
  createToken(input: NewToken): Promise<{ token: string; record: TokenRecord }>;
  /** Revokes a token of `tenant` (any tenant when undefined); undefined when there is no such live token. */
  revokeToken(id: string, tenant: string | undefined, by: string): Promise<TokenRecord | undefined>;
  /** Live and revoked tokens of a tenant (every tenant when undefined), newest first. */
  listTokens(tenant: string | undefined): TokenRecord[];
  stop(): void;
}

/** The tokens `bootstrap` registers from the configuration (`TRIPLINE_ADMIN_TOKEN` / `TRIPLINE_AGENT_TOKEN`). */
const CONFIGURED_ADMIN: NewToken = {
  tenant: BOOTSTRAP_TENANT,
  role: 'admin',
  name: 'configured admin',
  createdBy: 'configuration',
  superuser: true,
};
const CONFIGURED_AGENT: NewToken = {
  tenant: BOOTSTRAP_TENANT,
  role: 'agent',
  name: 'configured agent',
  createdBy: 'configuration',
};

/** The tokens `bootstrap` generates on first start (no superuser admin token anywhere). */
const GENERATED_ADMIN: NewToken = {
  tenant: BOOTSTRAP_TENANT,
  role: 'admin',
  name: 'admin (generated at first start)',
  createdBy: 'first start',
  superuser: true,
};
const GENERATED_AGENT: NewToken = {
  tenant: BOOTSTRAP_TENANT,
  role: 'agent',
  name: 'agent (generated at first start)',
  createdBy: 'first start',
};

/**
 * The first-start and configured agent tokens are bound to no agent: they speak for every agent id of their tenant
 * (a fleet's shared token), so one leaked copy can put spans, task starts and acknowledgements under any agent.
 */
const FLEET_WIDE_WARNING = {
  advice: 'give each agent a token bound to its ids: POST /v1/admin/tokens {"role":"agent","agents":["id","prefix*"]}',
};

function principalOf(row: TokenRecord): Principal {
  return {
    tokenId: row.id,
    tenant: row.tenant,
    role: row.role,
    name: row.name,
    superuser: row.superuser,
    agents: row.agents,
  };
}

export async function openAccessControl(options: AccessControlOptions): Promise<AccessControl> {
  const { store, logger } = options;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let records = new Map<string, TokenRecord>();
  let byHash = new Map<string, TokenRecord>();
  let lastRefreshMs = 0;
  let refreshing: Promise<void> | undefined;

  const index = (rows: readonly TokenRecord[]): void => {
    records = new Map(rows.map((row) => [row.id, row]));
    byHash = new Map(rows.filter((row) => row.revokedMs === null).map((row) => [row.tokenHash, row]));
  };
  const remember = (row: TokenRecord): void => {
    records.set(row.id, row);
    if (row.revokedMs === null) byHash.set(row.tokenHash, row);
    else if (byHash.get(row.tokenHash)?.id === row.id) byHash.delete(row.tokenHash);
  };
  const refresh = (): Promise<void> => {
    refreshing ??= (async () => {
      lastRefreshMs = now();
      try {
        index(await store.listTokens());
      } finally {
        refreshing = undefined;
      }
    })();
    return refreshing;
  };

  let missRead: Promise<void> | undefined;
  /** A read that starts after now (not one already under way), a second after the last at the earliest. */
  const readAfterMiss = (): Promise<void> => {
    missRead ??= (async () => {
      try {
        const wait = lastRefreshMs + MISS_REFRESH_INTERVAL_MS - now();
        if (wait > 0) await sleep(wait);
        await refreshing?.catch(() => undefined);
        await refresh();
      } finally {
        missRead = undefined;
      }
    })();
    return missRead;
  };

  try {
    await refresh();
  } catch (error) {
    throw new TriplineError('STORE_UNAVAILABLE', `Cannot read the access tokens: ${messageOf(error)}`, {
      cause: error,
    });
  }
  const timer = setInterval(() => {
    refresh().catch((error: unknown) =>
      logger.warn({ err: messageOf(error) }, 're-reading access tokens failed; the tokens read before stay in force'),
    );
  }, options.refreshMs);
  timer.unref();

  const createToken = async (
    input: NewToken,
    token = generateToken(),
  ): Promise<{ token: string; record: TokenRecord }> => {
    const record: TokenRecord = {
      id: generateTokenId(),
      tenant: input.tenant,
      role: input.role,
      name: input.name,
      tokenHash: hashToken(token),
      superuser: input.superuser ?? false,
      agents: [...(input.agents ?? [])],
      createdMs: now(),
      createdBy: input.createdBy,
      revokedMs: null,
      revokedBy: '',
    };
    await store.saveToken(record);
    remember(record);
    return { token, record };
  };

  /** Registers a configured token unless it is known; a known but revoked one stays revoked. */
  const ensure = async (token: string, input: NewToken): Promise<void> => {
    const hash = hashToken(token);
    const known = [...records.values()].find((row) => row.tokenHash === hash);
    if (known === undefined) await createToken(input, token);
    else if (known.revokedMs !== null)
      logger.warn(
        { tokenId: known.id, role: known.role },
        'a configured token was revoked through the API and stays revoked; configure a new one',
      );
  };

  return {
    async authenticate(token) {
      if (token === undefined) return undefined;
      const hash = hashToken(token);
      let row = byHash.get(hash);
      if (row === undefined) {
        try {
          await readAfterMiss();
        } catch (error) {
          logger.warn({ err: messageOf(error) }, 're-reading access tokens failed');
        }
        row = byHash.get(hash);
      }
      return row === undefined ? undefined : principalOf(row);
    },

    async bootstrap(configured, { generate }) {
      const generated: GeneratedToken[] = [];
      if (configured.adminToken !== undefined) await ensure(configured.adminToken, CONFIGURED_ADMIN);
      if (configured.agentToken !== undefined) {
        await ensure(configured.agentToken, CONFIGURED_AGENT);
        logger.warn(
          FLEET_WIDE_WARNING,
          'TRIPLINE_AGENT_TOKEN is fleet-wide: it may speak for every agent id of "default"',
        );
      }
      const firstStart = generate && ![...records.values()].some((row) => row.role === 'admin' && row.superuser);
      if (firstStart) {
        const admin = await createToken(GENERATED_ADMIN);
        generated.push({ role: 'admin', tenant: BOOTSTRAP_TENANT, token: admin.token });
        if (configured.agentToken === undefined) {
          const agent = await createToken(GENERATED_AGENT);
          generated.push({ role: 'agent', tenant: BOOTSTRAP_TENANT, token: agent.token });
          logger.warn(
            FLEET_WIDE_WARNING,
            'the first-start agent token is fleet-wide: it may speak for every agent id of "default"',
          );
        }
      }
      return generated;
    },

    createToken: (input) => createToken(input),

    async revokeToken(id, tenant, by) {
      const row = records.get(id);
      if (row === undefined || row.revokedMs !== null || (tenant !== undefined && row.tenant !== tenant))
        return undefined;
      const revoked: TokenRecord = { ...row, revokedMs: Math.max(now(), row.createdMs + 1), revokedBy: by };
      await store.saveToken(revoked);
      remember(revoked);
      return revoked;
    },

    listTokens(tenant) {
      return [...records.values()]
        .filter((row) => tenant === undefined || row.tenant === tenant)
        .sort((a, b) => b.createdMs - a.createdMs);
    },

    stop() {
      clearInterval(timer);
    },
  };
}
