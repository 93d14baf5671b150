/**
 * The kill switch's settings, as read from the environment by services/app/config.ts (`config.killSwitch`).
 * Every value has its variable, default and range listed in CONFIG_VARIABLES.
 */
import { fileURLToPath } from 'node:url';
import type { EscalationPolicy } from './escalation.ts';
import type { NotifierConfig } from './notifiers/config.ts';

/** The policies shipped with Tripline (`policies/` at the repository root). */
export const DEFAULT_POLICY_DIR = fileURLToPath(new URL('../../policies/', import.meta.url));

export interface KillSwitchConfig {
  /** Directory of Cedar policies (`*.cedar`, optional `schema.cedarschema` and `entities.json`). @default the shipped `policies/` */
  policyDir: string;
  /** Tripline's API as others reach it: links in notifications, default token issuer. @default http://localhost:8080 */
  publicUrl: string;
  /** `iss` of task tokens. @default publicUrl */
  tokenIssuer: string;
  /** `aud` of task tokens. @default 'tripline' */
  tokenAudience: string;
  /** Task token lifetime. @default 900 */
  tokenTtlSeconds: number;
  /** Ed25519 private key (JWK JSON or PKCS#8 PEM); unset = generated into `keysDir`. */
  signingKey: string | undefined;
  /** AES-256 key of the built-in secret store (base64 of 32 bytes); unset = generated into `keysDir`. */
  secretsKey: string | undefined;
  /** Where generated keys are kept. @default `<data dir>/keys` */
  keysDir: string;
  /** Longest (and default) secret lease. @default 900 */
  leaseTtlSeconds: number;
  /** How long an approval point stays valid after it is asked for (docs/approvals.md). @default 900 */
  approvalTtlSeconds: number;
  /** The webhook secret provider (an external vault), when configured. */
  secretWebhook: { url: string; secret: string; names: string[] } | undefined;
  /** How long after a revocation the verifier watches for the agent acting. @default 5000 */
  verifyWindowMs: number;
  /** Events that start within this long after a revocation are not held against the agent (clock skew). @default 250 */
  verifyClockSkewMs: number;
  /** A verification fails when the agent helper did not acknowledge. @default false */
  verifyRequireAck: boolean;
  escalation: EscalationPolicy;
  notifiers: NotifierConfig[];
  /** Comment lines on idle server-sent-event streams. @default 15000 */
  streamHeartbeatMs: number;
  /** Open `/v1/stream` connections at most, in all (beyond: 503 with Retry-After). @default 1000 */
  streamMaxClients: number;
  /** Open `/v1/stream` connections at most per tenant (beyond: 429 with Retry-After). @default 100 */
  streamMaxClientsPerTenant: number;
  /**
   * A credentialed task that checks or leases this long after it got its token without having sent telemetry
   * alerts (`identity.no_telemetry`; services/killswitch/silent-tasks.ts). @default 30000
   */
  silentTaskGraceMs: number;
}
