/**
 * The timeline page's script (plain browser JavaScript, served as is): reads every page of
 * `GET /v1/tasks/:taskId/timeline` and draws it. Data goes into the DOM through textContent and attributes only.
 * No backticks or template placeholders inside: this is a TypeScript template literal.
 */
import { DOM_HELPERS } from './dom-script.ts';

export const TIMELINE_SCRIPT = String.raw`'use strict';
(function () {
  var TOKEN_KEY = 'tripline.token';
  var PAGE = 1000;
  var MAX_PAGES = 100;
  var CATEGORY = {
    task_started: 'task', parent: 'task', child_started: 'task', task_ended: 'task',
    tool_call: 'act', data_access: 'act', privilege_change: 'act', model_call: 'act', approval: 'note',
    credential_issued: 'cred', lease_issued: 'cred',
    alert: 'flag', policy_decision: 'note',
    revocation: 'kill', escalation: 'kill', credential_revoked: 'kill', lease_ended: 'kill',
    acknowledged: 'ok', verification: 'ok', restore: 'ok', audit: 'note'
  };
  var LABEL = {
    task_started: 'task started', parent: 'parent', child_started: 'child task', task_ended: 'task ended',
    tool_call: 'tool call', data_access: 'data access', privilege_change: 'privilege change',
    model_call: 'model call', approval: 'approval',
    credential_issued: 'token issued', lease_issued: 'lease issued', alert: 'alert', policy_decision: 'policy',
    revocation: 'revoked', escalation: 'escalation', credential_revoked: 'token dead', lease_ended: 'lease ended',
    acknowledged: 'acknowledged', verification: 'verification', restore: 'restored', audit: 'audit'
  };
  var params = new URLSearchParams(location.search);
  var taskId = params.get('task') || '';
  var state = { items: [], body: null };

${DOM_HELPERS}
  function pad(n, width) { var s = String(n); while (s.length < (width || 2)) s = '0' + s; return s; }
  function clock(ms) {
    var d = new Date(ms);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + '.' + pad(d.getMilliseconds(), 3);
  }
  function relative(ms, startMs) {
    var delta = Math.round(ms - startMs);
    if (delta < 0) return '';
    if (delta < 1000) return '+' + delta + ' ms';
    if (delta < 60000) return '+' + (delta / 1000).toFixed(delta < 10000 ? 2 : 1) + ' s';
    return '+' + Math.floor(delta / 60000) + ' min ' + Math.round((delta % 60000) / 1000) + ' s';
  }

  function readJson(response) {
    return response.json().then(function (body) {
      if (response.status === 401) { sessionStorage.removeItem(TOKEN_KEY); showLogin('Your token is not valid any more; sign in again.'); }
      if (!response.ok) throw new Error((body && body.error && body.error.message) || ('HTTP ' + response.status));
      return body;
    });
  }

  function timelineUrl(extra) {
    return '/v1/tasks/' + encodeURIComponent(taskId) + '/timeline' + extra;
  }

  function loadAll() {
    var items = [];
    function page(cursor, n) {
      var query = '?limit=' + PAGE + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '');
      return fetch(timelineUrl(query), { headers: authHeaders({ accept: 'application/json' }), cache: 'no-store' })
        .then(readJson)
        .then(function (body) {
          items = items.concat(body.items);
          if (body.nextCursor && n + 1 < MAX_PAGES) return page(body.nextCursor, n + 1);
          body.items = items;
          body.partial = Boolean(body.nextCursor);
          return body;
        });
    }
    return page(null, 0);
  }

  function isRoutine(item) {
    var verdict = item.detail && item.detail.verdict;
    if (verdict && verdict.decision === 'allow') return true;
    return item.kind === 'policy_decision' && item.detail.decision === 'allow';
  }

  function isJudged(item) {
    var verdict = item.detail && item.detail.verdict;
    return (verdict && verdict.decision !== 'allow') || (item.kind === 'policy_decision' && item.detail.decision === 'deny');
  }

  function category(item) {
    if (item.kind === 'verification' && item.detail.outcome !== 'verified') return 'flag';
    if (item.kind === 'policy_decision' && item.detail.decision === 'deny') return 'kill';
    if (isJudged(item)) return item.detail.verdict.decision === 'revoke' ? 'kill' : 'flag';
    return CATEGORY[item.kind] || 'note';
  }

  function entryNode(item, startMs) {
    var detail = JSON.stringify(item.detail, null, 2);
    return el('li', {
      className: 'entry cat-' + category(item) + (isJudged(item) ? ' judged' : ''),
      'data-kind': item.kind,
      'data-source': item.source,
      'data-time-ms': item.timeMs
    }, [
      el('div', { className: 'at', title: item.time }, [
        el('span', { className: 'clock', text: clock(item.timeMs) }),
        el('span', { className: 'rel', text: relative(item.timeMs, startMs) })
      ]),
      el('div', { className: 'dot', 'aria-hidden': 'true' }),
      el('div', { className: 'body' }, [
        el('div', { className: 'what' }, [
          el('span', { className: 'kind', text: LABEL[item.kind] || item.kind }),
          el('span', { className: 'summary', text: item.summary })
        ]),
        el('details', null, [el('summary', { text: 'details (' + item.source + ')' }), el('pre', { text: detail })])
      ])
    ]);
  }

  function count(n, one, many) { return n + ' ' + (n === 1 ? one : many); }

  function first(kind) {
    for (var i = 0; i < state.items.length; i += 1) if (state.items[i].kind === kind) return state.items[i];
    return null;
  }

  function tile(label, value, note, className) {
    return el('div', { className: 'stat' + (className ? ' ' + className : '') }, [
      el('div', { className: 'label', text: label }),
      el('div', { className: 'value', text: value }),
      note ? el('div', { className: 'note', text: note }) : null
    ]);
  }

  function renderStory() {
    var acts = { tool_call: 0, data_access: 0, privilege_change: 0 };
    state.items.forEach(function (item) { if (acts[item.kind] !== undefined) acts[item.kind] += 1; });
    var revoked = first('revocation') || first('escalation');
    var alert = first('alert');
    var dead = first('credential_revoked');
    var verification = null;
    state.items.forEach(function (item) { if (item.kind === 'verification') verification = item; });
    var decided = revoked || alert;
    replaceChildren(document.getElementById('story'), [
      tile('The agent did', count(acts.tool_call, 'tool call', 'tool calls'), count(acts.data_access, 'data access', 'data accesses') + ', ' + count(acts.privilege_change, 'privilege change', 'privilege changes')),
      tile('Tripline decided', decided ? (revoked ? 'revoked at ' + clock(revoked.timeMs) : 'alerted at ' + clock(alert.timeMs)) : 'nothing unusual', decided ? decided.summary : '', revoked ? 'danger' : alert ? 'warn' : ''),
      tile('Credentials died', dead ? clock(dead.timeMs) : revoked ? clock(revoked.timeMs) : 'still valid', dead ? dead.summary : ''),
      tile('Verification', verification ? verification.detail.outcome : revoked ? 'none recorded' : 'no kill to verify', verification ? verification.summary : '', verification && verification.detail.outcome !== 'verified' ? 'warn' : '')
    ]);
  }

  function renderHead(body) {
    var task = body.task;
    document.getElementById('task-title').textContent = 'Task ' + body.taskId;
    document.title = 'Task ' + body.taskId + ' \u00b7 Tripline';
    var facts = task === null ? [el('span', { text: 'no task record (only what other sources hold about it)' })] : [
      el('span', { className: 'badge ' + task.status, text: task.status }),
      el('span', null, ['type ', el('b', { text: task.taskType })]),
      el('span', null, ['agent ', el('b', { text: task.agentId })]),
      el('span', null, ['score ', el('b', { text: Math.round(task.score) })]),
      task.parentTaskId ? el('span', null, ['child of ', el('a', { href: '/console/timeline?task=' + encodeURIComponent(task.parentTaskId), text: task.parentTaskId })]) : null
    ];
    replaceChildren(document.getElementById('task-facts'), facts);
    var banner = document.getElementById('truncated');
    if (body.truncated || body.partial) {
      banner.textContent = 'This timeline is incomplete: ' + (body.truncated ? body.truncatedSources.join(', ') + ' had more than ' + body.capPerSource + ' entries each; only the first are shown.' : 'only the first ' + (PAGE * MAX_PAGES) + ' entries are shown.') + ' The export says so too.';
      banner.hidden = false;
    } else banner.hidden = true;
  }

  function render() {
    var list = document.getElementById('timeline');
    var filter = document.getElementById('filter').value;
    var shown = state.items.filter(function (item) { return filter === 'all' || !isRoutine(item); });
    var startMs = state.items.length > 0 ? state.items[0].timeMs : 0;
    document.getElementById('count').textContent = shown.length + ' of ' + state.items.length + ' entries, oldest first';
    if (shown.length === 0) { replaceChildren(list, [el('li', { className: 'empty', text: 'Nothing recorded for this task.' })]); return; }
    replaceChildren(list, shown.map(function (item) { return entryNode(item, startMs); }));
  }

  function load() {
    if (!taskId) { replaceChildren(document.getElementById('timeline'), [el('li', { className: 'empty', text: 'Open this page from a task in the console (?task=<id>).' })]); return Promise.resolve(); }
    return fetch('/v1/whoami', { headers: authHeaders({ accept: 'application/json' }), cache: 'no-store' }).then(readJson).then(function (me) {
      document.getElementById('whoami').textContent = 'tenant ' + me.tenant + ' \u00b7 ' + me.name + ' (' + me.role + ')';
      return loadAll();
    }).then(function (body) {
      state.items = body.items;
      state.body = body;
      renderHead(body);
      renderStory();
      render();
      document.body.setAttribute('data-loaded', 'true');
    }).catch(function (error) {
      replaceChildren(document.getElementById('timeline'), [el('li', { className: 'error', text: error.message })]);
    });
  }

  // The export: the same route as JSON lines, fetched with the token and saved as a file.
  document.getElementById('download').addEventListener('click', function () {
    fetch(timelineUrl('?format=jsonl'), { headers: authHeaders({ accept: 'application/x-ndjson' }), cache: 'no-store' }).then(function (response) {
      if (!response.ok) throw new Error('HTTP ' + response.status);
      return response.blob();
    }).then(function (blob) {
      var url = URL.createObjectURL(blob);
      var link = el('a', { href: url, download: 'timeline-' + taskId.replace(/[^A-Za-z0-9._-]/g, '_') + '.jsonl' });
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
    }).catch(function (error) { alert('The export failed: ' + error.message); });
  });
  document.getElementById('filter').addEventListener('change', render);

  var loginDialog = document.getElementById('login-dialog');
  function showLogin(message) {
    var box = document.getElementById('login-error');
    box.textContent = message || '';
    box.hidden = !message;
    if (!loginDialog.open) loginDialog.showModal();
  }
  document.getElementById('login-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var input = document.getElementById('login-token');
    var token = input.value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    input.value = '';
    loginDialog.close();
    load();
  });
  loginDialog.addEventListener('cancel', function (event) { event.preventDefault(); });

  if (sessionStorage.getItem(TOKEN_KEY)) load();
  else showLogin('');
})();
`;
