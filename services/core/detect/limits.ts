/**
 * The detector's tuning numbers: where a numeric feature reaches 100 past its fence, how the rules regime widens
 * and caps what it judges against, when a tool's or resource's own distribution counts, how much approval and
 * agent-only novelty weigh, and the built-in limits (PRIORS) of a tenant with no warmed-up baseline at all.
 */
import type { DistName } from './baseline.ts';

/** Fence multiple at which a numeric feature reaches 100 (linear in log between the fence and k × fence). */
export const K_BASELINE = 6;
/** Same, in the rules regime (wider: the prior is not this type's). */
export const K_RULES = 12;
/** In the rules regime the fleet's fence is widened by this factor (a new type may legitimately do more). */
export const RULES_WIDEN = 3;
/** ...and the type's own few tasks by this one. */
export const PARTIAL_TYPE_WIDEN = 2;
/**
 * `tool.calls_per_task` at SPREE_FACTOR × the tool's per-task limit and ten times the most a task of the type made (a
 * spree of one tool) scores up to SPREE_CAP: it revokes alone.
 */
export const SPREE_FACTOR = 2;
export const SPREE_CAP = 85;
/** Per-tool / per-resource distributions are used once the item appeared in this many tasks. */
export const MIN_KEYED_TASKS = 5;
/**
 * In the rules regime, features from priors that are specific but not this type's (what the tenant reads from
 * one resource, sensitive rows) alert at most: a new type may legitimately do more with a known resource.
 */
export const RULES_SPECIFIC_CAP = 75;
/** Unseen privilege actions and ordinary scopes count this much when the change says it was approved. */
export const APPROVED_FACTOR = 0.6;
/** A feature seen by the type but never by this agent counts this much of an unseen one. */
export const AGENT_ONLY_FACTOR = 0.4;

/** Built-in upper limits for the rules regime when the fleet has not warmed up either. */
export const PRIORS: Readonly<Record<DistName, number>> = Object.freeze({
  events: 5000,
  toolCalls: 3000,
  dataAccesses: 3000,
  privilegeChanges: 20,
  errors: 200,
  errorRate: 0.9,
  durationMs: 6 * 3_600_000,
  rows: 1_000_000,
  bytes: 1024 ** 3,
  sensitiveRows: 10_000,
  maxRowsPerAccess: 100_000,
  maxBytesPerAccess: 256 * 1024 ** 2,
  distinctTools: 60,
  distinctResources: 200,
  distinctHosts: 50,
  scopesGained: 10,
  maxEventsPerMinute: 600,
  maxToolCallsPerMinute: 300,
  maxErrorsPerMinute: 30,
});

/**
 * In the rules regime a feature judged only against the fleet (other task types) scores at most this: below
 * the alert threshold, because an alert stops a task from being learned and a new type that merely does more
 * than the others would never warm up. Built-in limits (PRIORS) and specific evidence score fully.
 */
export const RULES_FLEET_CAP = 40;
