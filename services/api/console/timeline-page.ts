/**
 * The console's task timeline page (`GET /console/timeline?task=<id>`): what the agent did, what Tripline decided
 * and why, when the credentials died, what verification found, in order. Server-rendered once with no data in
 * it; ./timeline-script.ts reads `GET /v1/tasks/:taskId/timeline` with the token the console signed in with.
 */
import { STYLES } from './styles.ts';

const LOGO = `<svg class="mark" viewBox="0 0 32 32" aria-hidden="true"><rect width="32" height="32" rx="8" fill="#e11d48"/><path d="M6 20h6l3-9 4 14 3-8h4" fill="none" stroke="#fff" stroke-width="2.6" stroke-linecap="round" stroke-linejoin="round"/></svg>`;

const TIMELINE_STYLES = String.raw`
.back { color: #cbd5e1; text-decoration: none; font-size: 13px; }
.back:hover { color: #fff; }
.task-head { display: flex; align-items: flex-start; justify-content: space-between; gap: 18px; flex-wrap: wrap; }
.task-head h1 { margin: 0; font-size: 19px; font-weight: 700; word-break: break-all; }
.task-facts { display: flex; gap: 14px; flex-wrap: wrap; margin-top: 6px; color: var(--muted); font-size: 13px; align-items: center; }
.task-facts b { color: var(--ink); font-weight: 600; }
.head-actions { display: flex; gap: 8px; align-items: center; }
.head-actions select { font: inherit; font-size: 13px; padding: 5px 8px; border-radius: 8px; border: 1px solid var(--line); }
.story { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin-top: 14px; }
.story .stat .value { font-size: 15px; font-weight: 650; margin-top: 4px; }
.story .stat .note { color: var(--muted); font-size: 12px; margin-top: 2px; }
.banner { background: var(--amber-soft); color: #92400e; border: 1px solid #fcd34d; border-radius: 10px; padding: 10px 14px; font-size: 13px; }
.timeline { list-style: none; margin: 0; padding: 0; position: relative; }
.timeline::before { content: ''; position: absolute; left: 137px; top: 6px; bottom: 6px; width: 2px; background: var(--line); }
.entry { display: grid; grid-template-columns: 120px 36px 1fr; gap: 0; padding: 7px 0; align-items: start; }
.entry .at { text-align: right; padding-right: 12px; font-variant-numeric: tabular-nums; }
.entry .at .clock { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.entry .at .rel { display: block; color: var(--muted); font-size: 11px; }
.entry .dot { width: 12px; height: 12px; border-radius: 50%; margin: 4px 0 0 5px; background: #94a3b8; border: 2px solid #fff; box-shadow: 0 0 0 1px var(--line); position: relative; z-index: 1; }
.entry .body { min-width: 0; }
.entry .what { display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; }
.entry .summary { color: #1e293b; }
.entry details { margin-top: 3px; }
.entry details summary { color: var(--muted); font-size: 12px; cursor: pointer; }
.entry pre { margin: 6px 0 0; background: var(--soft); border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; font-size: 12px; overflow-x: auto; max-height: 320px; }
.kind { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 11px; font-weight: 650; background: #f1f5f9; color: #334155; white-space: nowrap; }
.cat-task .dot { background: var(--blue); } .cat-task .kind { background: var(--blue-soft); color: #1d4ed8; }
.cat-act .dot { background: var(--tool); } .cat-act .kind { background: #e0e7ff; color: #4338ca; }
.cat-flag .dot { background: var(--amber); } .cat-flag .kind { background: var(--amber-soft); color: #b45309; }
.cat-kill .dot { background: var(--red); } .cat-kill .kind { background: var(--red-soft); color: #be123c; }
.cat-cred .dot { background: var(--violet); } .cat-cred .kind { background: #ede9fe; color: var(--violet); }
.cat-ok .dot { background: var(--green); } .cat-ok .kind { background: var(--green-soft); color: #047857; }
.cat-note .dot { background: #94a3b8; }
.entry.judged .summary { font-weight: 600; }
@media (max-width: 900px) { .story { grid-template-columns: repeat(2, 1fr); } }
`;

export function timelinePage(): string {
  const favicon = `data:image/svg+xml,${encodeURIComponent(LOGO.replace(' class="mark"', ' xmlns="http://www.w3.org/2000/svg"'))}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Task timeline · Tripline</title>
<link rel="icon" href="${favicon}">
<style>${STYLES}${TIMELINE_STYLES}</style>
</head>
<body>
<header class="topbar">
  <div class="brand">${LOGO}<span class="name">Tripline</span><span class="sub">Task timeline</span></div>
  <div class="meta">
    <a class="back" href="/">&larr; Console</a>
    <span class="tenant" id="whoami">not signed in</span>
  </div>
</header>
<main>
  <section class="card" id="task-card">
    <div class="task-head">
      <div>
        <h1 id="task-title">Task</h1>
        <div class="task-facts" id="task-facts"><span class="empty">Loading…</span></div>
      </div>
      <div class="head-actions">
        <label class="hint" for="filter">Show</label>
        <select id="filter">
          <option value="all">everything</option>
          <option value="decisive">what Tripline decided (no routine allowed events)</option>
        </select>
        <button type="button" id="download" class="button">Download JSON lines</button>
      </div>
    </div>
    <div class="story" id="story"></div>
  </section>
  <div id="truncated" class="banner" hidden></div>
  <section class="card">
    <h2>What happened <span class="hint" id="count">in order, oldest first</span></h2>
    <ol id="timeline" class="timeline"><li class="empty">Loading…</li></ol>
  </section>
  <noscript><p class="card">This page needs JavaScript. The same data is in the JSON API: <code>/v1/tasks/:id/timeline</code>.</p></noscript>
</main>
<dialog id="login-dialog" aria-labelledby="login-title">
  <form id="login-form" method="dialog">
    <h3 id="login-title">Sign in to Tripline</h3>
    <p class="dialog-text">Paste an API token (viewer or stronger). It stays in this tab only.</p>
    <label>API token <input id="login-token" name="token" type="password" required maxlength="512" autocomplete="off" spellcheck="false"></label>
    <p id="login-error" class="error" hidden></p>
    <div class="dialog-actions">
      <button type="submit" id="login-submit" class="button primary">Sign in</button>
    </div>
  </form>
</dialog>
<script src="/console/timeline.js" defer></script>
</body>
</html>
`;
}
