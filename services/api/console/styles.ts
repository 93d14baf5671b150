/** The console page's stylesheet, inlined into the page by ./page.ts. */
export const STYLES = String.raw`
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
.badge.approval-pending { background: var(--amber-soft); color: #b45309; }
.badge.approval-approved, .badge.approval-used { background: var(--green-soft); color: #047857; }
.badge.approval-denied, .badge.approval-expired { background: var(--red-soft); color: #be123c; }
.feed li.item.approval.focused { background: var(--amber-soft); }
.approval-actions { display: flex; gap: 8px; margin-top: 6px; }
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
.timeline-link { display: inline-block; margin-top: 2px; font-size: 12px; color: var(--blue); text-decoration: none; }
.timeline-link:hover { text-decoration: underline; }
@media (max-width: 1100px) { .grid { grid-template-columns: 1fr; } .stats { grid-template-columns: repeat(2, 1fr); } }
`;
