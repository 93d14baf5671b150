/**
 * What the dashboards share: the tenant variable and filter, the task-id link to the task dashboard, and the colours
 * of statuses, decisions and actions. The rules every query follows are in ../dashboards.ts.
 */
import { variable } from '../grafana.ts';
import type { ColumnOptions, Link } from '../grafana.ts';

// Grafana template syntax inside SQL (plain strings: not TypeScript template placeholders). A variable's value is
// whatever the URL says (`var-tenant=...`), so it reaches SQL only percent-encoded (Grafana's `percentencode`
// leaves [A-Za-z0-9._~%-], nothing that can end a literal) and is decoded by ClickHouse. Grafana's `sqlstring`
// is not enough here: it doubles quotes but keeps backslashes, and ClickHouse reads `\'` as an escaped quote.
export const TENANT = "tenant = decodeURLComponent('${tenant:percentencode}')";
export const TASK = "task_id = decodeURLComponent('${task_id:percentencode}')";

export const tenantVariable = variable({
  name: 'tenant',
  label: 'Tenant',
  description: 'The tenant whose agents are shown (from the authenticated ingest credential; "default" without auth).',
  sql: 'SELECT DISTINCT tenant FROM tripline.tasks FINAL ORDER BY tenant',
  current: 'default',
});

const TASK_LINK: Link = {
  title: 'Open the task timeline',
  url: '/d/tripline-task/tripline-task?var-tenant=${tenant:percentencode}&var-task_id=${__value.raw}&${__url_time_range}',
};
export const taskIdColumn: ColumnOptions = { links: [TASK_LINK], width: 170 };
export const scoreColumn: ColumnOptions = { colorByScore: true, width: 70 };
export const STATUS_COLORS = {
  active: { text: 'active', color: 'blue' },
  completed: { text: 'completed', color: 'green' },
  revoked: { text: 'revoked', color: 'red' },
};
export const DECISION_COLORS = {
  allow: { text: 'allow', color: 'green' },
  alert: { text: 'alert', color: 'orange' },
  revoke: { text: 'revoke', color: 'red' },
};
export const ACTION_COLORS = {
  revoke: { text: 'revoke', color: 'red' },
  restore: { text: 'restore', color: 'green' },
};
