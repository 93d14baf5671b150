/**
 * The page's script (plain browser JavaScript, served as is). Data goes into the DOM through textContent and
 * attributes only. No backticks or template placeholders inside: this is a TypeScript template literal.
 */
import { DOM_HELPERS } from './dom-script.ts';

export const CLIENT_SCRIPT = String.raw`'use strict';
(function () {
  var KINDS = [
    { key: 'tool_call', label: 'Tool calls', color: 'var(--tool)' },
    { key: 'data_access', label: 'Data access', color: 'var(--data)' },
    { key: 'privilege_change', label: 'Privilege changes', color: 'var(--priv)' }
  ];
  var POLL_MS = 1000;
  var TOKEN_KEY = 'tripline.token';
  var state = { tasks: [], busy: false, pending: null, signedIn: false };

${DOM_HELPERS}
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
        el('div', { className: 'line3', title: (r.reasons || []).join('\n'), text: r.source === 'manual' ? '\u201c' + r.reason + '\u201d' : ((r.reasons && r.reasons[0]) || r.reason) }),
        timelineLink(r.taskId)
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

  // The task's timeline page (services/api/console/timeline-page.ts): everything that happened to it, in order.
  function timelineLink(taskId) {
    return el('a', { className: 'sub timeline-link', href: '/console/timeline?task=' + encodeURIComponent(taskId), text: 'timeline \u2192' });
  }

  // The task's place in its tree: the parent it declared, how many tasks declared it their parent.
  function treeLine(t) {
    var parts = [];
    if (t.parentTaskId) parts.push('child of ' + t.parentTaskId);
    if (t.children > 0) parts.push(t.children + (t.children === 1 ? ' child' : ' children'));
    return parts.length === 0 ? [] : [el('div', { className: 'sub tree', 'data-parent-id': t.parentTaskId || '', text: parts.join(' \u00b7 ') })];
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
        el('td', null, [el('div', { className: 'mono', text: t.taskId }), el('div', { className: 'sub', text: t.taskType })].concat(treeLine(t), [timelineLink(t.taskId)])),
        el('td', { className: 'mono', text: t.agentId }),
        el('td', null, [el('span', { className: 'badge ' + t.status, text: t.status })]),
        el('td', null, [scoreCell(t.score)]),
        el('td', { className: 'why', title: t.reasons.join('\n') }, reasons),
        el('td', { className: 'num', title: t.counts.tool_call + ' tool calls, ' + t.counts.data_access + ' data accesses, ' + t.counts.privilege_change + ' privilege changes' }, [el('div', { text: total })].concat(t.spend ? [el('div', { className: 'sub spend', title: 'model calls: ' + number(t.spend.tokens) + ' tokens (docs/budgets.md)', text: '$' + t.spend.usd.toFixed(2) })] : [])),
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

  // Approval points (docs/approvals.md): pending ones first, each with Approve and Deny; #approval=<id> (the link
  // in notifications) marks one. Without the kill switch the API has no approvals: the card says so.
  function focusedApproval() {
    var match = /^#approval=(.+)$/.exec(window.location.hash);
    return match ? decodeURIComponent(match[1]) : '';
  }

  function renderApprovals(items) {
    var list = document.getElementById('approvals');
    if (items === null) { replaceChildren(list, [el('li', { className: 'empty', text: 'This API has no approval points.' })]); return; }
    if (items.length === 0) { replaceChildren(list, [el('li', { className: 'empty', text: 'No approvals asked for.' })]); return; }
    var focused = focusedApproval();
    var order = { pending: 0, approved: 1 };
    var sorted = items.slice().sort(function (a, b) { return (order[a.status] === undefined ? 2 : order[a.status]) - (order[b.status] === undefined ? 2 : order[b.status]); });
    replaceChildren(list, sorted.map(function (a) {
      var pending = a.status === 'pending';
      var decided = a.decidedBy ? (a.status === 'denied' ? 'denied by ' : 'approved by ') + a.decidedBy + (a.decisionReason ? ': “' + a.decisionReason + '”' : '') : '';
      var item = el('li', { className: 'item approval' + (a.approvalId === focused ? ' focused' : ''), 'data-approval-id': a.approvalId, 'data-status': a.status, 'data-task-id': a.taskId }, [
        el('div', { className: 'line1' }, [
          el('span', { className: 'badge approval-' + a.status, text: a.status }),
          el('span', { className: 'mono', text: a.tool + (a.resource ? ' on ' + a.resource : '') }),
          el('span', { className: 'when', title: a.requestedAt, text: when(a.requestedAt) })
        ]),
        el('div', { className: 'line2', text: a.agentId + ' · ' + a.taskType + ' · task ' + a.taskId + (pending ? ' · expires ' + when(a.expiresAt) : '') }),
        el('div', { className: 'line3 mono', title: JSON.stringify(a.arguments), text: JSON.stringify(a.arguments) }),
        el('div', { className: 'line3', title: (a.reasons || []).join('\n'), text: decided || (a.reasons || []).join(' · ') }),
        pending ? el('div', { className: 'approval-actions' }, [
          el('button', { type: 'button', className: 'button restore', 'data-approval-action': 'approve', 'data-approval-id': a.approvalId, 'aria-label': 'Approve ' + a.approvalId, text: 'Approve' }),
          el('button', { type: 'button', className: 'button kill', 'data-approval-action': 'deny', 'data-approval-id': a.approvalId, 'aria-label': 'Deny ' + a.approvalId, text: 'Deny' })
        ]) : null
      ]);
      return item;
    }));
    state.approvals = sorted;
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
      getJson('/console/api/activity?minutes=5').then(renderActivity),
      getJson('/v1/approvals?limit=30').then(function (body) { renderApprovals(body.items); }, function (error) {
        if (/no route/.test(error.message)) renderApprovals(null); else throw error;
      })
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
      : 'The task\u2019s credentials are revoked at once and its agent\u2019s next tool call is refused' + (task ? ' (' + task.agentId + ', ' + task.taskType + ').' : '.') +
        (task && task.children > 0 ? ' Its descendant tasks are revoked with it.' : '');
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

  // Approve and deny: POST /v1/approvals/:id/approve|deny with the reason and name, like kill and restore.
  document.getElementById('approvals').addEventListener('click', function (event) {
    var button = event.target.closest('button[data-approval-action]');
    if (!button) return;
    var action = button.getAttribute('data-approval-action'), id = button.getAttribute('data-approval-id');
    var approval = (state.approvals || []).filter(function (a) { return a.approvalId === id; })[0];
    var call = approval ? approval.tool + ' ' + JSON.stringify(approval.arguments) : 'the call';
    state.pending = {
      url: '/v1/approvals/' + encodeURIComponent(id) + '/' + action,
      done: (action === 'approve' ? 'Approved ' : 'Denied ') + call
    };
    document.getElementById('dialog-title').textContent = (action === 'approve' ? 'Approve ' : 'Deny ') + call;
    document.getElementById('dialog-text').textContent = action === 'approve'
      ? 'The agent’s task may make this exact call once' + (approval ? ' (' + approval.agentId + ', task ' + approval.taskId + ')' : '') + '; a changed argument needs a new approval.'
      : 'The call is refused, and the same call stays refused until the approval’s expiry.';
    confirmButton.textContent = action === 'approve' ? 'Approve call' : 'Deny call';
    confirmButton.className = 'button primary ' + (action === 'approve' ? 'restore-confirm' : 'kill-confirm');
    reasonInput.value = '';
    actorInput.value = localStorage.getItem('tripline.actor') || '';
    errorBox.hidden = true;
    dialog.showModal();
    (actorInput.value ? reasonInput : actorInput).focus();
  });

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var pending = state.pending;
    var reason = reasonInput.value.trim(), actor = actorInput.value.trim();
    if (!pending || !reason || !actor) { errorBox.textContent = 'A reason and your name are both required.'; errorBox.hidden = false; return; }
    localStorage.setItem('tripline.actor', actor);
    confirmButton.disabled = true;
    fetch(pending.url || ('/v1/tasks/' + encodeURIComponent(pending.taskId) + '/' + pending.action), {
      method: 'POST',
      headers: authHeaders({ 'content-type': 'application/json', accept: 'application/json' }),
      body: JSON.stringify({ reason: reason, actor: actor })
    }).then(readJson).then(function () {
      dialog.close();
      toast((pending.done || ((pending.action === 'restore' ? 'Restored ' : 'Killed ') + pending.taskId)) + ', recorded as ' + actor + '.');
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
