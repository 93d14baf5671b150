/**
 * Notifier destinations, as configured in `TRIPLINE_NOTIFIERS` (a JSON array). Each entry:
 *
 *   { "type": "webhook" | "slack" | "alertmanager" | "pagerduty",
 *     "name": "ops-webhook",                      // default: the type and its position
 *     "url": "https://…",                         // required except for pagerduty (default Events v2 endpoint)
 *     "secret": "…",                              // webhook: HMAC-SHA256 key (required for webhook)
 *     "routingKey": "…",                          // pagerduty: the integration's routing key (required)
 *     "minSeverity": "info" | "warning" | "critical",   // default "warning"
 *     "kinds": ["alert", "revocation", "restore", "escalation", "verification_failed", "approval_requested"],  // default all
 *     "taskTypes": ["customer_refund"],           // default all task types
 *     "timeoutMs": 5000, "maxAttempts": 5, "initialBackoffMs": 500, "maxBackoffMs": 30000,
 *     "concurrency": 4, "maxQueued": 1000,
 *     "maxQueuedPerTenant": 1000 }                // one tenant's share of the queue (default maxQueued; see dispatcher.ts)
 */
import { NOTIFICATION_KINDS, SEVERITIES } from './notification.ts';
import type { NotificationKind, Severity } from './notification.ts';

export const NOTIFIER_TYPES = ['webhook', 'slack', 'alertmanager', 'pagerduty'] as const;
export type NotifierType = (typeof NOTIFIER_TYPES)[number];

export const PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';

export interface NotifierConfig {
  type: NotifierType;
  name: string;
  url: string;
  secret?: string;
  routingKey?: string;
  minSeverity: Severity;
  kinds: NotificationKind[];
  /** Empty: every task type. */
  taskTypes: string[];
  timeoutMs: number;
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  concurrency: number;
  maxQueued: number;
  /** One tenant's share of the queue: past it the tenant drops its own oldest (services/killswitch/notifiers/dispatcher.ts). */
  maxQueuedPerTenant: number;
}

const KEYS = [
  'type',
  'name',
  'url',
  'secret',
  'routingKey',
  'minSeverity',
  'kinds',
  'taskTypes',
  'timeoutMs',
  'maxAttempts',
  'initialBackoffMs',
  'maxBackoffMs',
  'concurrency',
  'maxQueued',
  'maxQueuedPerTenant',
];

/** Validates and fills defaults; throws an Error whose message names the entry and the key. */
export function parseNotifierConfigs(value: unknown): NotifierConfig[] {
  if (!Array.isArray(value)) throw new Error('a JSON array of notifier objects');
  const names = new Set<string>();
  return (value as unknown[]).map((entry, index) => {
    const where = `entry ${index}`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry))
      throw new Error(`${where} must be an object`);
    const raw = entry as Record<string, unknown>;
    const unknown = Object.keys(raw).find((key) => !KEYS.includes(key));
    if (unknown !== undefined)
      throw new Error(`${where} has an unknown key ${JSON.stringify(unknown)} (known: ${KEYS.join(', ')})`);
    const type = raw.type;
    if (typeof type !== 'string' || !(NOTIFIER_TYPES as readonly string[]).includes(type))
      throw new Error(`${where}.type must be one of ${NOTIFIER_TYPES.join(', ')}`);
    const name = optionalString(raw.name, `${where}.name`) ?? `${type}-${index}`;
    if (names.has(name)) throw new Error(`${where}.name ${JSON.stringify(name)} is used twice`);
    names.add(name);
    const url = optionalString(raw.url, `${where}.url`) ?? (type === 'pagerduty' ? PAGERDUTY_EVENTS_URL : undefined);
    if (url === undefined) throw new Error(`${where}.url is required for ${type}`);
    try {
      const parsed = new URL(url);
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      throw new Error(`${where}.url must be an http(s) URL`);
    }
    const secret = optionalString(raw.secret, `${where}.secret`);
    if (type === 'webhook' && secret === undefined)
      throw new Error(`${where}.secret is required for webhook (the HMAC-SHA256 signing key)`);
    const routingKey = optionalString(raw.routingKey, `${where}.routingKey`);
    if (type === 'pagerduty' && routingKey === undefined)
      throw new Error(`${where}.routingKey is required for pagerduty`);
    const minSeverity = raw.minSeverity ?? 'warning';
    if (typeof minSeverity !== 'string' || !(SEVERITIES as readonly string[]).includes(minSeverity))
      throw new Error(`${where}.minSeverity must be one of ${SEVERITIES.join(', ')}`);
    const kinds = stringList(raw.kinds, `${where}.kinds`) ?? [...NOTIFICATION_KINDS];
    const badKind = kinds.find((kind) => !(NOTIFICATION_KINDS as readonly string[]).includes(kind));
    if (badKind !== undefined)
      throw new Error(`${where}.kinds has ${JSON.stringify(badKind)}; known: ${NOTIFICATION_KINDS.join(', ')}`);
    const timeoutMs = integer(raw.timeoutMs, `${where}.timeoutMs`, 5000, 100, 120_000);
    const initialBackoffMs = integer(raw.initialBackoffMs, `${where}.initialBackoffMs`, 500, 1, 600_000);
    const maxBackoffMs = integer(raw.maxBackoffMs, `${where}.maxBackoffMs`, 30_000, 1, 3_600_000);
    const maxQueued = integer(raw.maxQueued, `${where}.maxQueued`, 1000, 1, 1_000_000);
    if (maxBackoffMs < initialBackoffMs) throw new Error(`${where}.maxBackoffMs must not be below initialBackoffMs`);
    return {
      type: type as NotifierType,
      name,
      url,
      ...(secret === undefined ? {} : { secret }),
      ...(routingKey === undefined ? {} : { routingKey }),
      minSeverity: minSeverity as Severity,
      kinds: kinds as NotificationKind[],
      taskTypes: stringList(raw.taskTypes, `${where}.taskTypes`) ?? [],
      timeoutMs,
      maxAttempts: integer(raw.maxAttempts, `${where}.maxAttempts`, 5, 1, 20),
      initialBackoffMs,
      maxBackoffMs,
      concurrency: integer(raw.concurrency, `${where}.concurrency`, 4, 1, 64),
      maxQueued,
      maxQueuedPerTenant: integer(raw.maxQueuedPerTenant, `${where}.maxQueuedPerTenant`, maxQueued, 1, maxQueued),
    };
  });
}

function optionalString(value: unknown, where: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw new Error(`${where} must be a non-empty string`);
  return value;
}

function stringList(value: unknown, where: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string' && item !== ''))
    throw new Error(`${where} must be an array of non-empty strings`);
  return value as string[];
}

function integer(value: unknown, where: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw new Error(`${where} must be a whole number from ${min} to ${max}`);
  return value;
}
