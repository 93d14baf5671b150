/**
 * Who may do what. A token belongs to one tenant and has one role:
 *
 *   agent     sends OTLP spans, starts tasks (POST /v1/tasks), subscribes to the stream, acknowledges
 *             revocations, asks request-time checks and introspects task tokens: what an instrumented agent
 *             and an enforcement point need, nothing a person needs
 *   viewer    reads everything of its tenant
 *   operator  viewer, and kills, restores and marks false positives
 *   admin     operator, and manages tokens and secrets
 *
 * Every route names the access it needs (services/auth/route-access.ts); a route without one is refused.
 */
export const ROLES = ['agent', 'viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/**
 * What a route needs:
 * - `public`: no token (health, JWKS, the console's static page);
 * - `task`: a task token, checked by the route itself (leases);
 * - `enforce`: an agent token or any person's token (checks, introspection, the stream);
 * - a role: that role or a stronger one (agent tokens only pass `agent`).
 */
export type Access = 'public' | 'task' | 'enforce' | Role;

/** The authenticated caller of one request. */
export interface Principal {
  tokenId: string;
  tenant: string;
  role: Role;
  /** The token's name: the actor of audited writes. */
  name: string;
  /** May manage the tokens of every tenant (the bootstrap admin token only). */
  superuser: boolean;
  /**
   * Agent tokens: the agent ids it may speak for (exact ids and `prefix*`; services/core/agent-binding.ts); empty
   * for a fleet-wide token and for every other role.
   */
  agents: readonly string[];
}

const PERSON_RANK: Record<Exclude<Role, 'agent'>, number> = { viewer: 1, operator: 2, admin: 3 };

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** Whether a token of `role` may use a route that needs `access` (for `public` and `task`, no token is needed). */
export function permits(role: Role, access: Access): boolean {
  switch (access) {
    case 'public':
    case 'task':
    case 'enforce':
      return true;
    case 'agent':
      return role === 'agent';
    default:
      return role !== 'agent' && PERSON_RANK[role] >= PERSON_RANK[access];
  }
}
