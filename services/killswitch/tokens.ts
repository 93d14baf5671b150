/**
 * Task tokens: short-lived JWTs (RFC 9068 access-token profile, `typ: at+jwt`) signed with EdDSA (Ed25519), one
 * per task after the policy allowed it. Any service verifies them offline against the JWKS at
 * `/.well-known/jwks.json`; whether a token is still *active* (not revoked) is what introspection answers.
 *
 * Claims: `iss`, `aud`, `sub` (the agent), `client_id` (the agent), `iat`, `exp`, `jti`, `scope` (space-separated,
 * RFC 8693 §4.2), and Tripline's own `tenant`, `agent_id`, `task_id`, `task_type`, `tools`, `resources`.
 */
import { randomUUID } from 'node:crypto';
import { SignJWT, createLocalJWKSet, errors as joseErrors, jwtVerify } from 'jose';
import type { JSONWebKeySet, JWTPayload } from 'jose';
import { KillSwitchError } from './errors.ts';
import type { SigningKey } from './keys.ts';

export interface TaskClaims {
  tenant: string;
  agentId: string;
  taskId: string;
  taskType: string;
  scopes: string[];
  tools: string[];
  resources: string[];
  jti: string;
  /** Issued at, epoch ms (the JWT carries whole seconds in `iat`). */
  issuedAtMs: number;
  /** Expiry, epoch ms (whole seconds in the JWT). */
  expiresAtMs: number;
  issuer: string;
  audience: string;
}

export interface TokenServiceOptions {
  key: SigningKey;
  /** Extra public keys still accepted (a previous key during rotation). @default [] */
  previousPublicKeys?: SigningKey['publicJwk'][];
  issuer: string;
  audience: string;
  /** Lifetime of a task token. @default 900 (15 minutes) */
  ttlSeconds?: number;
  now?: () => number;
}

export interface IssueRequest {
  tenant: string;
  agentId: string;
  taskId: string;
  taskType: string;
  scopes: readonly string[];
  tools: readonly string[];
  resources: readonly string[];
  /** Shorter than the default lifetime, never longer. */
  ttlSeconds?: number;
}

export interface TokenService {
  readonly ttlSeconds: number;
  issue(request: IssueRequest): Promise<{ token: string; claims: TaskClaims }>;
  /** Verifies signature, issuer, audience and expiry. Throws KillSwitchError TOKEN_INVALID with the reason. */
  verify(token: string): Promise<TaskClaims>;
  jwks(): JSONWebKeySet;
}

/** How far past its expiry a token still verifies (clock skew between issuer and verifier). */
export const CLOCK_TOLERANCE_SECONDS = 5;

export function createTokenService(options: TokenServiceOptions): TokenService {
  const now = options.now ?? Date.now;
  const ttlSeconds = options.ttlSeconds ?? 900;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1)
    throw new Error(`ttlSeconds must be a positive integer (got ${ttlSeconds})`);
  const keys: JSONWebKeySet = { keys: [options.key.publicJwk, ...(options.previousPublicKeys ?? [])] };
  const keySet = createLocalJWKSet(keys);
  /** Verified tokens, so introspecting the same token again costs a map lookup, not a signature check. */
  const verified = new Map<string, TaskClaims>();

  return {
    ttlSeconds,
    async issue(request) {
      const issuedAtMs = now();
      const iat = Math.floor(issuedAtMs / 1000);
      const lifetime = Math.max(1, Math.min(ttlSeconds, request.ttlSeconds ?? ttlSeconds));
      const exp = iat + lifetime;
      const jti = randomUUID();
      const token = await new SignJWT({
        client_id: request.agentId,
        scope: request.scopes.join(' '),
        tenant: request.tenant,
        agent_id: request.agentId,
        task_id: request.taskId,
        task_type: request.taskType,
        tools: [...request.tools],
        resources: [...request.resources],
      })
        .setProtectedHeader({ alg: 'EdDSA', kid: options.key.kid, typ: 'at+jwt' })
        .setIssuer(options.issuer)
        .setAudience(options.audience)
        .setSubject(request.agentId)
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .setJti(jti)
        .sign(options.key.privateKey);
      const claims: TaskClaims = {
        tenant: request.tenant,
        agentId: request.agentId,
        taskId: request.taskId,
        taskType: request.taskType,
        scopes: [...request.scopes],
        tools: [...request.tools],
        resources: [...request.resources],
        jti,
        issuedAtMs,
        expiresAtMs: exp * 1000,
        issuer: options.issuer,
        audience: options.audience,
      };
      remember(token, claims);
      return { token, claims };
    },
    async verify(token) {
      const cached = verified.get(token);
      if (cached !== undefined) {
        if (cached.expiresAtMs + CLOCK_TOLERANCE_SECONDS * 1000 <= now())
          throw new KillSwitchError('TOKEN_INVALID', 'the token has expired');
        return cached;
      }
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, keySet, {
          issuer: options.issuer,
          audience: options.audience,
          algorithms: ['EdDSA'],
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
          currentDate: new Date(now()),
          requiredClaims: ['exp', 'iat', 'jti', 'sub'],
        }));
      } catch (error) {
        throw new KillSwitchError('TOKEN_INVALID', reasonOf(error), { cause: error });
      }
      const claims = claimsOf(payload, options);
      remember(token, claims);
      return claims;
    },
    jwks: () => structuredClone(keys),
  };

  function remember(token: string, claims: TaskClaims): void {
    verified.set(token, claims);
    if (verified.size > 50_000) {
      const oldest = verified.keys().next().value;
      if (oldest !== undefined) verified.delete(oldest);
    }
  }
}

function reasonOf(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'the token has expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed)
    return `the token's ${error.claim} claim is not accepted here`;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'the token signature does not verify';
  if (error instanceof joseErrors.JWKSNoMatchingKey)
    return 'the token was signed by a key this Tripline does not publish';
  return 'the token is not a valid Tripline task token';
}

function claimsOf(payload: JWTPayload, options: TokenServiceOptions): TaskClaims {
  const strings = (value: unknown): string[] =>
    Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
  const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
  const taskId = text(payload.task_id);
  const taskType = text(payload.task_type);
  const tenant = text(payload.tenant);
  const agentId = text(payload.agent_id) ?? payload.sub;
  if (
    taskId === undefined ||
    taskType === undefined ||
    tenant === undefined ||
    agentId === undefined ||
    payload.jti === undefined ||
    payload.iat === undefined ||
    payload.exp === undefined
  ) {
    throw new KillSwitchError(
      'TOKEN_INVALID',
      'the token lacks the task claims (tenant, agent_id, task_id, task_type)',
    );
  }
  return {
    tenant,
    agentId,
    taskId,
    taskType,
    scopes: typeof payload.scope === 'string' && payload.scope !== '' ? payload.scope.split(' ') : [],
    tools: strings(payload.tools),
    resources: strings(payload.resources),
    jti: payload.jti,
    issuedAtMs: payload.iat * 1000,
    expiresAtMs: payload.exp * 1000,
    issuer: options.issuer,
    audience: options.audience,
  };
}
