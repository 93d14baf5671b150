/**
 * The four notifier formats. Each target turns a Notification into its destination's request and delivers it
 * with retries (exponential backoff with jitter, `Retry-After` honoured, a timeout per attempt); it returns the
 * outcome as a value. Isolation between destinations is the dispatcher's job (dispatcher.ts).
 *
 * - webhook: Tripline's JSON document, signed `x-tripline-signature: t=<unix>,v1=<hex HMAC-SHA256("<t>.<body>")>`,
 *   with `idempotency-key` (the notification id, the same on every retry) and `x-tripline-event` (the kind).
 * - slack: a Slack incoming webhook message (`text` + Block Kit `blocks`).
 * - alertmanager: Prometheus Alertmanager API v2, `POST <url>/api/v2/alerts` with one alert whose labels name the
 *   task (so repeats group); a restore sends the same labels with `endsAt` = now, which resolves it.
 * - pagerduty: PagerDuty Events API v2 (`trigger`, `dedup_key` = the incident key; a restore sends `resolve`).
 */
import { IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, postWithRetries, signBody } from '../http-client.ts';
import type { PostResult } from '../http-client.ts';
import type { NotifierConfig, NotifierType } from './config.ts';
import type { Notification } from './notification.ts';

export interface NotifierTarget {
  readonly name: string;
  readonly type: NotifierType;
  deliver(notification: Notification, signal: AbortSignal): Promise<PostResult>;
}

export function createTarget(config: NotifierConfig): NotifierTarget {
  switch (config.type) {
    case 'webhook':
      return webhookTarget(config);
    case 'slack':
      return simpleTarget(config, config.url, slackMessage);
    case 'alertmanager':
      return simpleTarget(config, alertmanagerUrl(config.url), alertmanagerAlerts);
    case 'pagerduty':
      return simpleTarget(config, config.url, (notification) => pagerDutyEvent(notification, config.routingKey ?? ''));
  }
}

function retryOf(config: NotifierConfig): {
  timeoutMs: number;
  retry: { maxAttempts: number; initialBackoffMs: number; maxBackoffMs: number };
} {
  return {
    timeoutMs: config.timeoutMs,
    retry: {
      maxAttempts: config.maxAttempts,
      initialBackoffMs: config.initialBackoffMs,
      maxBackoffMs: config.maxBackoffMs,
    },
  };
}

function webhookTarget(config: NotifierConfig): NotifierTarget {
  const secret = config.secret ?? '';
  return {
    name: config.name,
    type: 'webhook',
    deliver(notification, signal) {
      const body = JSON.stringify(webhookDocument(notification));
      return postWithRetries(
        config.url,
        body,
        () => {
          const timestamp = Math.floor(Date.now() / 1000);
          return {
            [SIGNATURE_HEADER]: signBody(secret, timestamp, body),
            [TIMESTAMP_HEADER]: String(timestamp),
            [IDEMPOTENCY_HEADER]: notification.id,
            'x-tripline-event': notification.kind,
          };
        },
        { ...retryOf(config), signal },
      );
    },
  };
}

function simpleTarget(
  config: NotifierConfig,
  url: string,
  format: (notification: Notification) => unknown,
): NotifierTarget {
  return {
    name: config.name,
    type: config.type,
    deliver(notification, signal) {
      return postWithRetries(url, JSON.stringify(format(notification)), () => ({}), { ...retryOf(config), signal });
    },
  };
}

/** Tripline's webhook document (stable field names; `data` carries the alert, revocation or verification). */
export function webhookDocument(notification: Notification): Record<string, unknown> {
  return {
    id: notification.id,
    kind: notification.kind,
    severity: notification.severity,
    tenant: notification.tenant,
    taskId: notification.taskId,
    taskType: notification.taskType,
    agentId: notification.agentId,
    time: new Date(notification.timeMs).toISOString(),
    title: notification.title,
    summary: notification.summary,
    reasons: notification.reasons,
    ...(notification.score === undefined ? {} : { score: notification.score }),
    links: notification.links,
    incidentKey: notification.incidentKey,
    data: notification.data,
  };
}

const SLACK_EMOJI: Record<Notification['severity'], string> = {
  info: ':information_source:',
  warning: ':warning:',
  critical: ':rotating_light:',
};

/**
 * Text for Slack's `mrkdwn`, where `<…>` makes mentions (`<!channel>`, `<@U…>`) and links: agent-controlled text
 * (ids, task types, reasons, titles) is escaped as Slack's formatting rules say (`&`, `<`, `>`), so it can neither
 * ping nor link. Plain `@channel` only pings with `link_names`, which these messages never set.
 */
export function slackEscape(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

export function slackMessage(notification: Notification): Record<string, unknown> {
  const fields = [
    `*Task*\n${slackEscape(notification.taskId) || '—'}`,
    `*Type*\n${slackEscape(notification.taskType) || '—'}`,
    `*Agent*\n${slackEscape(notification.agentId)}`,
    `*Severity*\n${notification.severity}${notification.score === undefined ? '' : ` (score ${Math.round(notification.score)})`}`,
  ];
  const reasons = notification.reasons
    .slice(0, 5)
    .map((reason) => `• ${slackEscape(reason)}`)
    .join('\n');
  const link = Object.values(notification.links)[0];
  return {
    text: `${SLACK_EMOJI[notification.severity]} ${slackEscape(notification.title)}`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: truncate(notification.title, 150) } },
      { type: 'section', fields: fields.map((text) => ({ type: 'mrkdwn', text })) },
      ...(reasons === '' ? [] : [{ type: 'section', text: { type: 'mrkdwn', text: truncate(reasons, 2900) } }]),
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: `${new Date(notification.timeMs).toISOString()}${link === undefined ? '' : ` · <${link}|${notification.kind === 'approval_requested' ? 'approve or deny' : 'details'}>`} · ${notification.kind}`,
          },
        ],
      },
    ],
  };
}

function alertmanagerUrl(url: string): string {
  return /\/api\/v2\/alerts\/?$/.test(url) ? url : `${url.replace(/\/$/, '')}/api/v2/alerts`;
}

const ALERT_NAMES: Record<Notification['kind'], string> = {
  alert: 'TriplineTaskAlert',
  revocation: 'TriplineTaskRevoked',
  restore: 'TriplineTaskRevoked',
  escalation: 'TriplineAgentEscalated',
  verification_failed: 'TriplineKillNotVerified',
  approval_requested: 'TriplineApprovalRequested',
};

export function alertmanagerAlerts(notification: Notification): Record<string, unknown>[] {
  const starts = new Date(notification.timeMs).toISOString();
  const labels: Record<string, string> = {
    alertname: ALERT_NAMES[notification.kind],
    severity: notification.severity === 'info' && notification.kind === 'restore' ? 'critical' : notification.severity,
    source: 'tripline',
    tenant: notification.tenant,
    agent_id: notification.agentId,
  };
  if (notification.taskId !== '' && notification.kind !== 'escalation') labels.task_id = notification.taskId;
  if (notification.taskType !== '') labels.task_type = notification.taskType;
  const alert: Record<string, unknown> = {
    labels,
    annotations: {
      summary: truncate(notification.title, 1000),
      description: truncate(notification.summary, 4000),
      reasons: truncate(notification.reasons.join('\n'), 4000),
    },
    startsAt: starts,
    generatorURL: Object.values(notification.links)[0] ?? 'http://tripline',
  };
  // A restore resolves the revocation alert: same labels, ended now.
  if (notification.kind === 'restore') alert.endsAt = new Date().toISOString();
  return [alert];
}

const PD_SEVERITY: Record<Notification['severity'], string> = {
  info: 'info',
  warning: 'warning',
  critical: 'critical',
};

export function pagerDutyEvent(notification: Notification, routingKey: string): Record<string, unknown> {
  const resolve = notification.kind === 'restore';
  return {
    routing_key: routingKey,
    event_action: resolve ? 'resolve' : 'trigger',
    // A restore resolves the revocation's incident: both carry the revocation's incident key.
    dedup_key: notification.incidentKey,
    ...(resolve
      ? {}
      : {
          payload: {
            summary: truncate(notification.title, 1024),
            source: 'tripline',
            severity: PD_SEVERITY[notification.severity],
            timestamp: new Date(notification.timeMs).toISOString(),
            component: notification.taskType || 'agent',
            group: notification.agentId,
            class: notification.kind,
            custom_details: {
              taskId: notification.taskId,
              reasons: notification.reasons,
              summary: notification.summary,
              score: notification.score,
              id: notification.id,
            },
          },
          links: Object.entries(notification.links).map(([text, href]) => ({ href, text })),
        }),
  };
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
