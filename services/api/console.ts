/**
 * The built-in console: a small web page served by the API (`GET /`) for people running Tripline without
 * Grafana. Live alerts and revocations, each task's score and reasons, a sparkline of events per kind over the
 * last minutes, and buttons to kill and restore a task.
 *
 * - The page is server-rendered HTML (layout, styles) plus one small vanilla script, `GET /console/app.js`
 *   (no framework, no build step). The script polls every second and builds the DOM with textContent only.
 * - Alerts and revocations come from the public JSON API (`/v1/alerts`, `/v1/revocations`, with each kill's
 *   verification outcome when the API has the kill switch), refreshed at once on the kill switch's server-sent
 *   events (`/v1/stream`) where the API offers them; kill and restore
 *   call the same `POST /v1/tasks/:id/revoke|restore` with the reason and name the person enters, so the
 *   console's actions land in the same audit trail as any API client's.
 * - Tasks and activity come from two read endpoints of the console's own (`/console/api/tasks`,
 *   `/console/api/activity`), over services/store/clickhouse/console-queries.ts.
 *
 * - The page and its script are public; the data needs an API token (viewer to watch, operator to kill and
 *   restore). The page asks for one and keeps it in the tab's sessionStorage; requests send it as a bearer
 *   token, and the event stream is read with fetch (EventSource cannot send headers).
 *
 * Register it on the API app before it listens: `await registerConsole(app, { clickhouse: config.store, logger })`.
 */
import type { FastifyInstance } from 'fastify';
import { TriplineError, messageOf } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { openConsoleQueries } from '../store/clickhouse/console-queries.ts';
import type { ConsoleQueries, ConsoleQueryOptions } from '../store/clickhouse/console-queries.ts';
import { tenantOf } from './access.ts';

export interface ConsoleDeps {
  /** Where the store is (TriplineConfig `store`): the console reads the same ClickHouse, read-only. */
  clickhouse: ConsoleQueryOptions;
  logger: Logger;
  /** Queries to use instead of opening them from `clickhouse` (tests). The caller closes them. */
  queries?: ConsoleQueries;
}

/** The activity sparkline: 60 buckets over the window. */
const ACTIVITY_BUCKETS = 60;

const tasksQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
} as const;

const activityQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { minutes: { type: 'integer', minimum: 1, maximum: 60, default: 5 } },
} as const;

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

/** Adds the console's routes to the API app. Never throws for a store problem: the page then says so. */
export async function registerConsole(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  let queries = deps.queries;
  if (queries === undefined) {
    try {
      const opened = await openConsoleQueries(deps.clickhouse);
      queries = opened;
      app.addHook('onClose', () => opened.close());
    } catch (error) {
      deps.logger.warn({ err: messageOf(error) }, 'the console cannot read tasks and activity; it will show alerts and revocations only');
    }
  }
  const ready = (): ConsoleQueries => {
    if (queries === undefined) throw new TriplineError('STORE_UNAVAILABLE', 'The console could not open its read connection to ClickHouse; see the server log');
    return queries;
  };

  app.get('/', (_request, reply) => reply.headers({ ...SECURITY_HEADERS, 'cache-control': 'no-cache' }).type('text/html; charset=utf-8').send(page()));

  app.get('/console/app.js', (_request, reply) =>
    reply.headers({ 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache' }).type('text/javascript; charset=utf-8').send(CLIENT_SCRIPT),
  );

  app.get<{ Querystring: { limit: number } }>('/console/api/tasks', { schema: { querystring: tasksQuery } }, async (request, reply) => {
    const result = await ready().tasks(tenantOf(request), request.query.limit);
    return reply.header('cache-control', 'no-store').send(result);
  });

  app.get<{ Querystring: { minutes: number } }>('/console/api/activity', { schema: { querystring: activityQuery } }, async (request, reply) => {
    const bucketMs = (request.query.minutes * 60_000) / ACTIVITY_BUCKETS;
    const result = await ready().activity(tenantOf(request), { nowMs: Date.now(), bucketMs, buckets: ACTIVITY_BUCKETS });
    return reply.header('cache-control', 'no-store').send({ ...result, minutes: request.query.minutes });
  });
}

const LOGO = `<svg class="mark" viewBox="0 0 32 32" aria-hidden="true"><rect width="32" height="32" rx="8" fill="#e11d48"/><path d="M6 20h6l3-9 4 14 3-8h4" fill="none" stroke="#fff" stroke-width="2.6" stroke-linecap="round" stroke-linejoin="round"/></svg>`;

function page(): string {
  const favicon = `data:image/svg+xml,${encodeURIComponent(LOGO.replace(' class="mark"', ' xmlns="http://www.w3.org/2000/svg"'))}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tripline console</title>
<link rel="icon" href="${favicon}">
<style>${STYLES}</style>
</head>
<body>
<header class="topbar">
  <div class="brand">${LOGO}<span class="name">Tripline</span><span class="sub">Console</span></div>
  <div class="meta">
    <span class="tenant" id="whoami">not signed in</span>
    <button type="button" id="sign-out" class="button small" hidden>Sign out</button>
    <span id="live" class="live connecting" title="The page polls the API every second"><i></i><span>connecting</span></span>
  </div>
</header>
<main>
  <section class="stats" aria-label="Summary">
    <div class="stat"><div class="label">Active tasks</div><div class="value" id="stat-active">–</div></div>
    <div class="stat danger"><div class="label">Revoked now</div><div class="value" id="stat-revoked">–</div></div>
    <div class="stat warn"><div class="label">Flagged tasks</div><div class="value" id="stat-flagged">–</div></div>
    <div class="stat"><div class="label">Events, last 5 minutes</div><div class="value" id="stat-events">–</div></div>
  </section>
  <section class="grid">
    <article class="card">
      <h2>Activity <span class="hint">events received per kind, last 5 minutes</span></h2>
      <div id="activity" class="activity"><p class="empty">Loading…</p></div>
    </article>
    <article class="card">
      <h2>Revocations <span class="hint">kills and restores, newest first</span></h2>
      <ol id="revocations" class="feed"><li class="empty">Loading…</li></ol>
    </article>
    <article class="card">
      <h2>Alerts <span class="hint">newest first</span></h2>
      <ol id="alerts" class="feed"><li class="empty">Loading…</li></ol>
    </article>
  </section>
  <section class="card">
    <h2>Tasks <span class="hint">revoked first, then by score</span></h2>
    <div class="table-wrap">
      <table id="tasks">
        <thead><tr><th>Task</th><th>Agent</th><th>Status</th><th>Score</th><th>Why</th><th class="num">Events</th><th>Last event</th><th></th></tr></thead>
        <tbody><tr><td colspan="8" class="empty">Loading…</td></tr></tbody>
      </table>
    </div>
  </section>
  <noscript><p class="card">The console needs JavaScript. The same data is in the JSON API: <code>/v1/alerts</code>, <code>/v1/revocations</code>, <code>/v1/tasks/:id</code>.</p></noscript>
</main>
<dialog id="action-dialog" aria-labelledby="dialog-title">
  <form id="action-form" method="dialog">
    <h3 id="dialog-title">Restore task</h3>
    <p id="dialog-text" class="dialog-text"></p>
    <label>Reason <textarea id="dialog-reason" name="reason" required maxlength="2000" rows="3" placeholder="Why? It is recorded with the action."></textarea></label>
    <label>Your name <input id="dialog-actor" name="actor" required maxlength="256" autocomplete="name" placeholder="name or e-mail"></label>
    <p id="dialog-error" class="error" hidden></p>
    <div class="dialog-actions">
      <button type="button" id="dialog-cancel" class="button">Cancel</button>
      <button type="submit" id="dialog-confirm" class="button primary">Restore</button>
    </div>
  </form>
</dialog>
<dialog id="login-dialog" aria-labelledby="login-title">
  <form id="login-form" method="dialog">
    <h3 id="login-title">Sign in to Tripline</h3>
    <p class="dialog-text">Paste an API token: a viewer token to watch, an operator token to kill and restore. It stays in this tab only.</p>
    <label>API token <input id="login-token" name="token" type="password" required maxlength="512" autocomplete="off" spellcheck="false"></label>
    <p id="login-error" class="error" hidden></p>
    <div class="dialog-actions">
      <button type="submit" id="login-submit" class="button primary">Sign in</button>
    </div>
  </form>
</dialog>
<div id="toast" class="toast" role="status" aria-live="polite" hidden></div>
<script src="/console/app.js" defer></script>
</body>
</html>
`;
}

const STYLES = String.raw`
:root {
  --bg: #f4f6fb; --card: #ffffff; --ink: #0f172a; --muted: #64748b; --line: #e2e8f0; --soft: #f8fafc;
  --red: #e11d48; --red-soft: #ffe4e6; --green: #059669; --green-soft: #d1fae5; --amber: #d97706; --amber-soft: #fef3c7;
  --blue: #2563eb; --blue-soft: #dbeafe; --violet: #7c3aed;
  --tool: #6366f1; --data: #0ea5e9; --priv: #f59e0b;
  font-family: ui-sans-serif, system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink); background: var(--bg);
}
* { box-sizing: border-box; }
body { margin: 0; font-size: 14px; line-height: 1.45; }
.mono, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.topbar { display: flex; align-items: center; justify-content: space-between; padding: 12px 28px; background: #0b1220; color: #e2e8f0; }
.brand { display: flex; align-items: center; gap: 10px; }
.mark { width: 28px; height: 28px; }
.brand .name { font-weight: 700; font-size: 17px; letter-spacing: .2px; color: #fff; }
.brand .sub { color: #94a3b8; font-size: 14px; padding-left: 10px; border-left: 1px solid #334155; }
.meta { display: flex; align-items: center; gap: 18px; color: #94a3b8; font-size: 13px; }
.meta b { color: #e2e8f0; font-weight: 600; }
.live { display: inline-flex; align-items: center; gap: 7px; padding: 4px 10px; border-radius: 999px; background: #111c33; }
.live i { width: 8px; height: 8px; border-radius: 50%; background: #64748b; }
.live.ok i { background: #10b981; box-shadow: 0 0 0 3px rgba(16,185,129,.25); }
.live.down i { background: var(--red); }
main { padding: 22px 28px 40px; max-width: 1500px; margin: 0 auto; display: flex; flex-direction: column; gap: 18px; }
.stats { display: grid; grid-template-columns: repeat(4, 1fr); gap: 16px; }
.stat { background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 14px 18px; border-top: 3px solid var(--blue); }
.stat.danger { border-top-color: var(--red); }
.stat.warn { border-top-color: var(--amber); }
.stat .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .06em; font-weight: 600; }
.stat .value { font-size: 28px; font-weight: 700; margin-top: 2px; font-variant-numeric: tabular-nums; }
.grid { display: grid; grid-template-columns: 1fr 1fr 1fr; gap: 16px; align-items: start; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 16px 18px; box-shadow: 0 1px 2px rgba(15,23,42,.04); min-width: 0; }
.card h2 { margin: 0 0 12px; font-size: 15px; font-weight: 650; display: flex; align-items: baseline; gap: 8px; flex-wrap: wrap; }
.hint { color: var(--muted); font-weight: 400; font-size: 12.5px; }
.empty { color: var(--muted); font-style: italic; list-style: none; }
.activity { display: flex; flex-direction: column; gap: 14px; }
.spark-row { display: grid; grid-template-columns: 128px 1fr 56px; align-items: center; gap: 12px; }
.spark-label { display: flex; align-items: center; gap: 8px; font-weight: 550; font-size: 13px; }
.spark-label i { width: 10px; height: 10px; border-radius: 3px; display: inline-block; }
.spark { width: 100%; height: 42px; display: block; background: var(--soft); border-radius: 6px; }
.spark-total { text-align: right; font-variant-numeric: tabular-nums; font-weight: 650; }
.spark-total small { display: block; color: var(--muted); font-weight: 400; font-size: 11px; }
.spark-axis { margin-top: -8px; }
.axis { display: flex; justify-content: space-between; color: var(--muted); font-size: 11px; }
.feed { list-style: none; margin: 0; padding: 0; max-height: 300px; overflow: auto; }
.feed li.item { padding: 9px 0; border-bottom: 1px solid var(--line); }
.feed li.item:last-child { border-bottom: 0; }
.line1 { display: flex; align-items: center; gap: 8px; }
.line1 .when { margin-left: auto; color: var(--muted); font-size: 12px; white-space: nowrap; }
.line2 { color: var(--muted); font-size: 12.5px; margin-top: 2px; }
.line3 { font-size: 12.5px; margin-top: 3px; color: #334155; overflow: hidden; text-overflow: ellipsis; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 11.5px; font-weight: 650; letter-spacing: .02em; white-space: nowrap; }
.badge.revoke, .badge.revoked { background: var(--red-soft); color: #be123c; }
.badge.restore, .badge.completed, .badge.allow { background: var(--green-soft); color: #047857; }
.badge.alert { background: var(--amber-soft); color: #b45309; }
.badge.active { background: var(--blue-soft); color: #1d4ed8; }
.badge.shadow { background: #ede9fe; color: var(--violet); }
.badge.outcome-verified { background: transparent; color: #047857; border: 1px solid #a7f3d0; }
.badge.outcome-failed { background: transparent; color: #b45309; border: 1px solid #fcd34d; }
.badge.outcome-pending { background: transparent; color: #1d4ed8; border: 1px solid #bfdbfe; }
.table-wrap { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; }
th { text-align: left; font-size: 11.5px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); font-weight: 600; padding: 8px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }
td { padding: 9px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
tr:last-child td { border-bottom: 0; }
tr.is-revoked td { background: #fff7f8; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td .sub { color: var(--muted); font-size: 12px; }
td.why { max-width: 460px; font-size: 12.5px; color: #334155; }
td.why div { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.score { display: flex; align-items: center; gap: 8px; min-width: 110px; }
.score b { width: 28px; text-align: right; font-variant-numeric: tabular-nums; }
.bar { flex: 1; height: 6px; background: #eef2f7; border-radius: 999px; overflow: hidden; }
.bar span { display: block; height: 100%; border-radius: 999px; }
.low { background: var(--green); } .mid { background: var(--amber); } .high { background: var(--red); }
.button { font: inherit; font-size: 13px; font-weight: 600; border-radius: 8px; padding: 5px 12px; border: 1px solid var(--line); background: #fff; color: var(--ink); cursor: pointer; }
.button:hover { background: var(--soft); }
.button.kill { color: #be123c; border-color: #fecdd3; }
.button.kill:hover { background: var(--red-soft); }
.button.restore { color: #047857; border-color: #a7f3d0; }
.button.restore:hover { background: var(--green-soft); }
.button.primary { background: var(--ink); color: #fff; border-color: var(--ink); }
.button.primary.kill-confirm { background: var(--red); border-color: var(--red); }
.button.primary.restore-confirm { background: var(--green); border-color: var(--green); }
.button:disabled { opacity: .55; cursor: progress; }
dialog { border: 0; border-radius: 14px; padding: 0; width: min(460px, 92vw); box-shadow: 0 24px 60px rgba(15,23,42,.35); }
dialog::backdrop { background: rgba(15,23,42,.45); }
dialog form { padding: 20px 22px; display: flex; flex-direction: column; gap: 12px; }
dialog h3 { margin: 0; font-size: 17px; }
.dialog-text { margin: 0; color: var(--muted); }
dialog label { display: flex; flex-direction: column; gap: 5px; font-weight: 600; font-size: 13px; }
dialog textarea, dialog input { font: inherit; font-weight: 400; padding: 8px 10px; border: 1px solid #cbd5e1; border-radius: 8px; }
dialog textarea:focus, dialog input:focus { outline: 2px solid var(--blue-soft); border-color: var(--blue); }
.button.small { padding: 3px 10px; font-size: 12px; }
.dialog-actions { display: flex; justify-content: flex-end; gap: 8px; margin-top: 4px; }
.error { color: #be123c; margin: 0; font-size: 13px; }
.toast { position: fixed; right: 24px; bottom: 24px; background: #0b1220; color: #fff; padding: 10px 16px; border-radius: 10px; box-shadow: 0 10px 30px rgba(15,23,42,.3); font-size: 13.5px; }
.toast.bad { background: #9f1239; }
@media (max-width: 1100px) { .grid { grid-template-columns: 1fr; } .stats { grid-template-columns: repeat(2, 1fr); } }
`;

/**
 * The page's script (plain browser JavaScript, served as is). Data goes into the DOM through textContent and
 * attributes only. No backticks or template placeholders inside: this is a TypeScript template literal.
 */
const CLIENT_SCRIPT = String.raw`'use strict';
(function () {
  var KINDS = [
    { key: 'tool_call', label: 'Tool calls', color: 'var(--tool)' },
    { key: 'data_access', label: 'Data access', color: 'var(--data)' },
    { key: 'privilege_change', label: 'Privilege changes', color: 'var(--priv)' }
  ];
  var POLL_MS = 1000;
  var TOKEN_KEY = 'tripline.token';
  var state = { tasks: [], busy: false, pending: null, signedIn: false };

  function authHeaders(headers) {
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.authorization = 'Bearer ' + token;
    return headers;
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === undefined || value === null || value === false) return;
        if (key === 'text') node.textContent = String(value);
        else if (key === 'className') node.className = value;
        else node.setAttribute(key, value === true ? '' : String(value));
      });
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    });
    return node;
  }

  function svg(tag, attrs) {
    var node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, String(attrs[key])); });
    return node;
  }

  function readJson(response) {
    return response.json().then(function (body) {
      if (response.status === 401) signOut('Your token is not valid any more; sign in again.');
      if (!response.ok) throw new Error((body && body.error && body.error.message) || ('HTTP ' + response.status));
      return body;
    });
  }

  function getJson(url) {
    return fetch(url, { headers: authHeaders({ accept: 'application/json' }), cache: 'no-store' }).then(readJson);
  }

  function pad(n) { return n < 10 ? '0' + n : String(n); }
  function clock(ms) { var d = new Date(ms); return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()); }
  function when(value) {
    var ms = typeof value === 'number' ? value : Date.parse(value);
    if (!isFinite(ms)) return '';
    var seconds = Math.round((Date.now() - ms) / 1000);
    if (seconds < 0 || seconds >= 3600) return clock(ms);
    if (seconds < 5) return 'just now';
    if (seconds < 60) return seconds + 's ago';
    return Math.floor(seconds / 60) + 'm ago';
  }
  function level(score) { return score >= 80 ? 'high' : score >= 50 ? 'mid' : 'low'; }
  function number(n) { return Number(n).toLocaleString('en-US'); }

  function replaceChildren(parent, children) {
    while (parent.firstChild) parent.removeChild(parent.firstChild);
    children.forEach(function (child) { parent.appendChild(child); });
  }

  function setLive(ok, text) {
    var live = document.getElementById('live');
    live.className = 'live ' + (ok ? 'ok' : 'down');
    live.lastElementChild.textContent = text;
  }

  function toast(message, bad) {
    var box = document.getElementById('toast');
    box.textContent = message;
    box.className = 'toast' + (bad ? ' bad' : '');
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { box.hidden = true; }, 4000);
  }

  function scoreCell(score) {
    var value = Math.round(score);
    return el('div', { className: 'score', title: 'score ' + score.toFixed(1) + ' of 100' }, [
      el('b', { text: value }),
      el('div', { className: 'bar' }, [el('span', { className: level(score), style: 'width:' + Math.max(2, Math.min(100, score)) + '%' })])
    ]);
  }

  // The kill switch's check that a kill took effect (absent when the API has no kill-switch runtime).
  function verificationBadge(verification) {
    if (!verification || !verification.outcome) return null;
    var outcome = verification.outcome;
    var title = outcome === 'failed' && verification.failures && verification.failures.length > 0
      ? 'kill not verified: ' + verification.failures.join('; ')
      : outcome === 'verified' ? 'the kill was verified to have taken effect' : 'verification in progress';
    return el('span', { className: 'badge outcome-' + outcome, title: title, text: outcome === 'verified' ? 'verified' : outcome === 'failed' ? 'unverified' : 'verifying' });
  }

  function renderRevocations(items) {
    var list = document.getElementById('revocations');
    if (items.length === 0) { replaceChildren(list, [el('li', { className: 'empty', text: 'No revocations yet.' })]); return; }
    replaceChildren(list, items.map(function (r) {
      var who = r.source === 'detector' ? 'by the detector' : 'by ' + r.actor;
      return el('li', { className: 'item', 'data-revocation-id': r.id, 'data-task-id': r.taskId, 'data-action': r.action, 'data-source': r.source }, [
        el('div', { className: 'line1' }, [
          el('span', { className: 'badge ' + r.action, text: r.action === 'revoke' ? 'revoked' : 'restored' }),
          el('span', { className: 'mono', text: r.taskId }),
          verificationBadge(r.verification),
          el('span', { className: 'when', title: r.time, text: when(r.time) })
        ]),
        el('div', { className: 'line2', text: r.agentId + ' \u00b7 ' + r.taskType + ' \u00b7 ' + who + ' \u00b7 score ' + Math.round(r.score) }),
        el('div', { className: 'line3', title: (r.reasons || []).join('\n'), text: r.source === 'manual' ? '\u201c' + r.reason + '\u201d' : ((r.reasons && r.reasons[0]) || r.reason) })
      ]);
    }));
  }

  function renderAlerts(items) {
    var list = document.getElementById('alerts');
    if (items.length === 0) { replaceChildren(list, [el('li', { className: 'empty', text: 'No alerts yet.' })]); return; }
    replaceChildren(list, items.map(function (a) {
      return el('li', { className: 'item', 'data-alert-id': a.id, 'data-task-id': a.taskId }, [
        el('div', { className: 'line1' }, [
          el('span', { className: 'badge ' + a.decision, text: a.decision }),
          a.shadow ? el('span', { className: 'badge shadow', title: 'shadow mode: recorded, not acted on', text: 'shadow' }) : null,
          el('span', { className: 'mono', text: a.taskId }),
          el('span', { className: 'when', title: a.time, text: when(a.time) })
        ]),
        el('div', { className: 'line2', text: a.agentId + ' \u00b7 ' + a.taskType + ' \u00b7 score ' + Math.round(a.score) + ' \u00b7 ' + a.regime.replace('_', ' ') }),
        el('div', { className: 'line3', title: a.reasons.join('\n'), text: a.reasons.slice(0, 2).join(' \u00b7 ') })
      ]);
    }));
  }

  function renderTasks(result) {
    document.getElementById('stat-active').textContent = number(result.totals.active);
    document.getElementById('stat-revoked').textContent = number(result.totals.revoked);
    document.getElementById('stat-flagged').textContent = number(result.totals.flagged);
    state.tasks = result.items;
    var body = document.querySelector('#tasks tbody');
    if (result.items.length === 0) { replaceChildren(body, [el('tr', null, [el('td', { colspan: 8, className: 'empty', text: 'No tasks yet. Point agents at the OTLP endpoint (port 4318).' })])]); return; }
    replaceChildren(body, result.items.map(function (t) {
      var revoked = t.status === 'revoked';
      var total = t.counts.tool_call + t.counts.data_access + t.counts.privilege_change;
      var reasons = t.reasons.length === 0 ? [el('div', { className: 'sub', text: 'nothing unusual' })] : t.reasons.slice(0, 2).map(function (reason) { return el('div', { title: reason, text: reason }); });
      return el('tr', { 'data-task-id': t.taskId, 'data-status': t.status, className: revoked ? 'is-revoked' : '' }, [
        el('td', null, [el('div', { className: 'mono', text: t.taskId }), el('div', { className: 'sub', text: t.taskType })]),
        el('td', { className: 'mono', text: t.agentId }),
        el('td', null, [el('span', { className: 'badge ' + t.status, text: t.status })]),
        el('td', null, [scoreCell(t.score)]),
        el('td', { className: 'why', title: t.reasons.join('\n') }, reasons),
        el('td', { className: 'num', title: t.counts.tool_call + ' tool calls, ' + t.counts.data_access + ' data accesses, ' + t.counts.privilege_change + ' privilege changes', text: total }),
        el('td', { className: 'sub', title: new Date(t.lastEventMs).toISOString(), text: when(t.lastEventMs) }),
        el('td', null, [el('button', {
          type: 'button',
          className: 'button ' + (revoked ? 'restore' : 'kill'),
          'data-action': revoked ? 'restore' : 'revoke',
          'data-task-id': t.taskId,
          'aria-label': (revoked ? 'Restore ' : 'Kill ') + t.taskId,
          text: revoked ? 'Restore' : 'Kill'
        })])
      ]);
    }));
  }

  function sparkline(values, color) {
    var width = 300, height = 42, max = Math.max(1, Math.max.apply(null, values));
    var step = values.length > 1 ? width / (values.length - 1) : width;
    var points = values.map(function (v, i) { return [i * step, height - 3 - (v / max) * (height - 8)]; });
    var line = points.map(function (p, i) { return (i === 0 ? 'M' : 'L') + p[0].toFixed(1) + ' ' + p[1].toFixed(1); }).join(' ');
    var chart = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, preserveAspectRatio: 'none', class: 'spark', role: 'img' });
    chart.appendChild(svg('path', { d: line + ' L' + width + ' ' + height + ' L0 ' + height + ' Z', fill: color, 'fill-opacity': 0.14, stroke: 'none' }));
    chart.appendChild(svg('path', { d: line, fill: 'none', stroke: color, 'stroke-width': 1.8, 'stroke-linejoin': 'round', 'vector-effect': 'non-scaling-stroke' }));
    return chart;
  }

  function renderActivity(activity) {
    var total = 0;
    var rows = KINDS.map(function (kind) {
      var values = activity.series[kind.key] || [];
      var sum = values.reduce(function (a, b) { return a + b; }, 0);
      total += sum;
      var perMinute = values.slice(-Math.round(60000 / activity.bucketMs)).reduce(function (a, b) { return a + b; }, 0);
      var chart = sparkline(values, kind.color);
      chart.setAttribute('aria-label', kind.label + ': ' + sum + ' in the last ' + activity.minutes + ' minutes');
      return el('div', { className: 'spark-row', 'data-kind': kind.key }, [
        el('div', { className: 'spark-label' }, [el('i', { style: 'background:' + kind.color }), kind.label]),
        chart,
        el('div', { className: 'spark-total' }, [number(sum), el('small', { text: number(perMinute) + '/min' })])
      ]);
    });
    rows.push(el('div', { className: 'spark-row spark-axis', 'aria-hidden': 'true' }, [
      el('span'), el('div', { className: 'axis' }, [el('span', { text: activity.minutes + ' min ago' }), el('span', { text: 'now' })]), el('span')
    ]));
    replaceChildren(document.getElementById('activity'), rows);
    document.getElementById('stat-events').textContent = number(total);
  }

  function refresh() {
    return Promise.all([
      getJson('/v1/revocations?limit=20').then(function (body) { renderRevocations(body.items); }),
      getJson('/v1/alerts?limit=20').then(function (body) { renderAlerts(body.items); }),
      getJson('/console/api/tasks?limit=50').then(renderTasks),
      getJson('/console/api/activity?minutes=5').then(renderActivity)
    ]).then(function () {
      setLive(true, 'live \u00b7 ' + clock(Date.now()));
    }, function (error) {
      setLive(false, 'offline: ' + error.message);
    });
  }

  function poll() {
    if (!state.signedIn) return;
    refresh().then(function () { setTimeout(poll, POLL_MS); });
  }

  // Where the API has the kill switch's event stream (GET /v1/stream), a revocation or alert shows at once;
  // the one-second poll goes on for scores and activity (and is all there is without the stream).
  var streamRefresh = null;
  var streamAbort = null;
  function connectStream() {
    if (!state.signedIn || !window.AbortController || !window.ReadableStream) return;
    streamAbort = new AbortController();
    fetch('/v1/stream?types=revocation,alert,verification', { headers: authHeaders({ accept: 'text/event-stream' }), cache: 'no-store', signal: streamAbort.signal }).then(function (response) {
      if (!response.ok || !response.body) throw new Error('HTTP ' + response.status);
      var reader = response.body.getReader();
      function read() {
        return reader.read().then(function (chunk) {
          if (chunk.done) throw new Error('the stream ended');
          if (!streamRefresh) streamRefresh = setTimeout(function () { streamRefresh = null; refresh(); }, 150);
          return read();
        });
      }
      return read();
    }).catch(function () {
      if (state.signedIn && !(streamAbort && streamAbort.signal.aborted)) setTimeout(connectStream, 30000);
    });
  }

  // Signing in: the token stays in this tab's sessionStorage and goes out as a bearer token.
  var loginDialog = document.getElementById('login-dialog');
  var loginInput = document.getElementById('login-token');
  var loginError = document.getElementById('login-error');

  function showIdentity(me) {
    document.getElementById('whoami').textContent = 'tenant ' + me.tenant + ' \u00b7 ' + me.name + ' (' + me.role + ')';
    document.getElementById('sign-out').hidden = false;
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.signedIn = false;
    if (streamAbort) streamAbort.abort();
    document.getElementById('whoami').textContent = 'not signed in';
    document.getElementById('sign-out').hidden = true;
    loginError.textContent = message || '';
    loginError.hidden = !message;
    if (!loginDialog.open) loginDialog.showModal();
    loginInput.focus();
  }

  function signIn() {
    return getJson('/v1/whoami').then(function (me) {
      showIdentity(me);
      state.signedIn = true;
      if (loginDialog.open) loginDialog.close();
      poll();
      connectStream();
    });
  }

  document.getElementById('login-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var token = loginInput.value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    loginInput.value = '';
    signIn().catch(function (error) { signOut(error.message); });
  });
  document.getElementById('sign-out').addEventListener('click', function () { signOut(''); });
  loginDialog.addEventListener('cancel', function (event) { event.preventDefault(); });

  // Kill and restore: the same POST API as any client, with the reason and name the person gives.
  var dialog = document.getElementById('action-dialog');
  var form = document.getElementById('action-form');
  var reasonInput = document.getElementById('dialog-reason');
  var actorInput = document.getElementById('dialog-actor');
  var confirmButton = document.getElementById('dialog-confirm');
  var errorBox = document.getElementById('dialog-error');

  function openDialog(action, taskId) {
    var task = state.tasks.filter(function (t) { return t.taskId === taskId; })[0];
    state.pending = { action: action, taskId: taskId };
    document.getElementById('dialog-title').textContent = (action === 'restore' ? 'Restore ' : 'Kill ') + taskId;
    document.getElementById('dialog-text').textContent = action === 'restore'
      ? 'The task becomes active again (or completed, if it had ended). Its agent gets no new credentials by this alone.'
      : 'The task\u2019s credentials are revoked at once and its agent\u2019s next tool call is refused' + (task ? ' (' + task.agentId + ', ' + task.taskType + ').' : '.');
    confirmButton.textContent = action === 'restore' ? 'Restore task' : 'Kill task';
    confirmButton.className = 'button primary ' + (action === 'restore' ? 'restore-confirm' : 'kill-confirm');
    reasonInput.value = '';
    actorInput.value = localStorage.getItem('tripline.actor') || '';
    errorBox.hidden = true;
    dialog.showModal();
    (actorInput.value ? reasonInput : actorInput).focus();
  }

  document.getElementById('tasks').addEventListener('click', function (event) {
    var button = event.target.closest('button[data-action]');
    if (button) openDialog(button.getAttribute('data-action'), button.getAttribute('data-task-id'));
  });
  document.getElementById('dialog-cancel').addEventListener('click', function () { dialog.close(); });

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var pending = state.pending;
    var reason = reasonInput.value.trim(), actor = actorInput.value.trim();
    if (!pending || !reason || !actor) { errorBox.textContent = 'A reason and your name are both required.'; errorBox.hidden = false; return; }
    localStorage.setItem('tripline.actor', actor);
    confirmButton.disabled = true;
    fetch('/v1/tasks/' + encodeURIComponent(pending.taskId) + '/' + pending.action, {
      method: 'POST',
      headers: authHeaders({ 'content-type': 'application/json', accept: 'application/json' }),
      body: JSON.stringify({ reason: reason, actor: actor })
    }).then(readJson).then(function () {
      dialog.close();
      toast((pending.action === 'restore' ? 'Restored ' : 'Killed ') + pending.taskId + ', recorded as ' + actor + '.');
      return refresh();
    }, function (error) {
      errorBox.textContent = error.message;
      errorBox.hidden = false;
    }).then(function () { confirmButton.disabled = false; });
  });

  if (sessionStorage.getItem(TOKEN_KEY)) signIn().catch(function (error) { signOut(error.message); });
  else signOut('');
})();
`;
