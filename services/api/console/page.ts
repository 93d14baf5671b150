/**
 * The console's HTML page (`GET /`): layout, the summary tiles, the cards the script fills in, and the kill/restore
 * and sign-in dialogs. Server-rendered once per request, with no data in it: the script (./client-script.ts)
 * fetches everything after the person signs in.
 */
import { STYLES } from './styles.ts';

const LOGO = `<svg class="mark" viewBox="0 0 32 32" aria-hidden="true"><rect width="32" height="32" rx="8" fill="#e11d48"/><path d="M6 20h6l3-9 4 14 3-8h4" fill="none" stroke="#fff" stroke-width="2.6" stroke-linecap="round" stroke-linejoin="round"/></svg>`;

export function page(): string {
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
  <section class="card" id="approvals-card">
    <h2>Approvals <span class="hint">calls waiting for a person, then the latest decided</span></h2>
    <ol id="approvals" class="feed"><li class="empty">Loading…</li></ol>
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
