/**
 * The RFC 7662 introspection answer for a token found active (Tripline's task claims as extensions).
 */
import type { TaskClaims } from './tokens.ts';

/** RFC 7662 §2.2 introspection response (with Tripline's task claims as extensions). */
export type IntrospectionResponse =
  | { active: false }
  | {
      active: true;
      scope: string;
      client_id: string;
      token_type: 'Bearer';
      exp: number;
      iat: number;
      sub: string;
      aud: string;
      iss: string;
      jti: string;
      tenant: string;
      agent_id: string;
      task_id: string;
      task_type: string;
      tools: string[];
      resources: string[];
    };

export function activeResponse(claims: TaskClaims): IntrospectionResponse {
  return {
    active: true,
    scope: claims.scopes.join(' '),
    client_id: claims.agentId,
    token_type: 'Bearer',
    exp: Math.floor(claims.expiresAtMs / 1000),
    iat: Math.floor(claims.issuedAtMs / 1000),
    sub: claims.agentId,
    aud: claims.audience,
    iss: claims.issuer,
    jti: claims.jti,
    tenant: claims.tenant,
    agent_id: claims.agentId,
    task_id: claims.taskId,
    task_type: claims.taskType,
    tools: claims.tools,
    resources: claims.resources,
  };
}
