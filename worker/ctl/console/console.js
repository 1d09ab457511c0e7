// console.js -- the operator's console: a small script over the console's
// own JSON API (/api/...). No framework, nothing loaded from elsewhere.
//
// Every value from the ledger or a stream reaches the page as a text node
// (h() below builds elements; nothing is ever parsed as HTML), and links are
// built only from '#/' and encodeURIComponent(). Actions send the token in
// the X-Console-Token header, which a page of another site cannot send.
'use strict';

(function () {
  const boot = JSON.parse(document.getElementById('boot').textContent);
  const main = document.getElementById('main');
  const statusLine = document.getElementById('status');
  const TOKEN_KEY = 'credits-console-token';
  const REFRESH_MS = 5000;
  let refreshTimer = null;
  let loads = 0;

  // ---------------------------------------------------------------------
  // Elements and text
  // ---------------------------------------------------------------------

  // h('td', {class: 'num', 'data-k': 'pending'}, value, ...): children are
  // elements or text (null and undefined are left out).
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined) continue;
      el.appendChild(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }

  function link(hash, text) {
    return h('a', {href: hash}, text);
  }
  function userLink(user) {
    return user ? link('#/user/' + encodeURIComponent(user), user) : '';
  }
  function jobLink(id) {
    return id ? link('#/job/' + encodeURIComponent(id), id) : '';
  }

  function show(v) {
    if (v === null || v === undefined) return '-';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }
  function ms(v) {
    if (v === null || v === undefined) return '-';
    return new Date(Number(v)).toISOString().replace('.000Z', 'Z');
  }
  function age(msValue) {
    if (msValue === null || msValue === undefined) return '-';
    const s = Math.floor(msValue / 1000);
    if (s < 120) return s + ' s';
    if (s < 7200) return Math.floor(s / 60) + ' min';
    if (s < 172800) return Math.floor(s / 3600) + ' h';
    return Math.floor(s / 86400) + ' d';
  }
  // The time of a stream entry ID ("1764000000000-0").
  function entryTime(id) {
    const t = Number(String(id).split('-')[0]);
    return Number.isFinite(t) ? ms(t) : '-';
  }

  function table(columns, rows, rowAttrs) {
    const head = h('tr', null, columns.map(c => h('th', {class: c.num ? 'num' : null}, c.title)));
    const body = rows.map((row, i) => h('tr', rowAttrs ? rowAttrs(row, i) : null,
      columns.map(c => h('td', {class: c.num ? 'num' : c.mono ? 'mono' : null, 'data-k': c.key},
        c.cell ? c.cell(row) : show(row[c.key])))));
    return h('table', null, h('thead', null, head), h('tbody', null, body));
  }

  function kv(obj, keys) {
    const dl = h('dl', {class: 'kv'});
    for (const k of keys || Object.keys(obj || {})) {
      if (!(k in (obj || {}))) continue;
      dl.appendChild(h('dt', null, k));
      dl.appendChild(h('dd', {'data-k': k}, show(obj[k])));
    }
    return dl;
  }

  function section(title, ...kids) {
    return h('section', null, h('h2', null, title), ...kids);
  }

  function empty(text) {
    return h('p', {class: 'muted'}, text);
  }

  function say(text, kind) {
    statusLine.textContent = text;
    statusLine.dataset.kind = kind || '';
  }

  // ---------------------------------------------------------------------
  // The API
  // ---------------------------------------------------------------------

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  }

  async function api(path, params, method) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {}))
      if (v !== '' && v !== null && v !== undefined) q.set(k, v);
    const headers = {};
    const t = token();
    if (t && (method === 'POST' || boot.token_for_reads)) headers['X-Console-Token'] = t;
    const query = q.toString();
    const res = await fetch(path + (query ? '?' + query : ''),
      {method: method || 'GET', headers, cache: 'no-store', credentials: 'same-origin'});
    let body;
    try {
      body = await res.json();
    } catch (e) {
      body = {error: 'the answer is not JSON (status ' + res.status + ')'};
    }
    if (!res.ok) {
      const err = new Error(body.error || 'status ' + res.status);
      err.status = res.status;
      throw err;
    }
    return body;
  }

  // A button that acts only when clicked twice within 4 s (no dialog).
  function actionButton(label, act, run) {
    const b = h('button', {type: 'button', 'data-act': act}, label);
    let armed = null;
    b.addEventListener('click', async () => {
      if (!armed) {
        b.classList.add('armed');
        b.textContent = 'really ' + label + '?';
        armed = setTimeout(() => {
          armed = null;
          b.classList.remove('armed');
          b.textContent = label;
        }, 4000);
        return;
      }
      clearTimeout(armed);
      armed = null;
      b.classList.remove('armed');
      b.textContent = label;
      b.disabled = true;
      try {
        await run();
      } catch (e) {
        say(label + ' refused: ' + e.message, 'error');
      } finally {
        b.disabled = false;
      }
    });
    if (!boot.actions) {
      b.disabled = true;
      b.title = 'actions are off (creditsctl console --allow-actions)';
    }
    return b;
  }

  // ---------------------------------------------------------------------
  // Views
  // ---------------------------------------------------------------------

  function streamsSection(o) {
    const rows = o.streams.map(s => Object.assign({}, s));
    return section('Job streams (group ' + o.group + ')', table([
      {title: 'stream', key: 'name'},
      {title: 'key', key: 'key', mono: true},
      {title: 'length', key: 'length', num: true},
      {title: 'pending', key: 'pending', num: true,
        cell: s => s.group === false ? 'no group' : show(s.pending)},
      {title: 'oldest pending', key: 'oldest_pending', mono: true},
      {title: 'its age', key: 'oldest_pending_age_ms', num: true, cell: s => age(s.oldest_pending_age_ms)},
      {title: 'consumers (pending, idle)', key: 'consumers',
        cell: s => (s.consumers || []).length === 0 ? '-' :
          h('span', null, s.consumers.map(c => h('div', {'data-consumer': c.name},
            c.name + ': ' + c.pending + ' pending, idle ' + age(c.idle_ms))))},
    ], rows, s => ({'data-stream': s.name})));
  }

  function deadSummary(d, nowMs) {
    const rows = d.reasons;
    return section('Dead letters: ' + d.length + ' in ' + d.key,
      rows.length === 0 ? empty('none among the newest ' + d.scanned) :
        table([
          {title: 'reason', key: 'reason', cell: r => link('#/dead?reason=' + encodeURIComponent(r.reason), r.reason)},
          {title: 'count', key: 'count', num: true},
          {title: 'newest', key: 'newest', cell: r => h('span', {title: entryTime(r.newest)},
            age(nowMs - Number(String(r.newest).split('-')[0])) + ' ago')},
          {title: '', key: 'act', cell: r => h('span', {class: 'actions'},
            actionButton('retry all', 'retry-reason', () => retryReason(r.reason)))},
        ], rows, r => ({'data-reason': r.reason})),
      h('p', {class: 'muted'}, 'counted among the newest ' + d.scanned + ' dead letters' +
        (d.other_reasons ? ' (' + d.other_reasons + ' with other reasons)' : '')));
  }

  function resultCells() {
    return [
      {title: 'entry', key: 'entry', cell: e => entryTime(e.entry)},
      {title: 'job', key: 'id', cell: e => !e.result ? '(undecodable)' :
        e.result.id ? jobLink(e.result.id) : h('span', {class: 'muted'}, '(no readable id)')},
      {title: 'type', key: 'type', cell: e => e.result ? show(e.result.type) : ''},
      {title: 'user', key: 'user', cell: e => e.result ? userLink(e.result.user) : ''},
      {title: 'status', key: 'status', cell: e => e.result ?
        h('span', {class: e.result.status === 'applied' ? 'good' : 'bad'},
          e.result.status + (e.result.error ? ' ' + e.result.error : '')) : ''},
      {title: 'total after', key: 'total', num: true,
        cell: e => e.result && e.result.balance ? show(e.result.balance.total) : '-'},
      {title: 'replayed', key: 'replayed', cell: e => e.result ? (e.result.replayed ? 'yes' : 'no') : ''},
    ];
  }

  // The keys of an event's own type (contract 9.8), as key=value.
  function eventDetails(e) {
    const keys = {balance_low: ['threshold'], balance_recovered: ['threshold'],
      credits_expiring: ['lot', 'credits', 'expires_at', 'expires'], credits_expired: ['lot', 'credits'],
      hold_expired: ['hold', 'released']}[e.type] || [];
    return keys.filter(k => e[k] !== undefined && e[k] !== null)
      .map(k => k + '=' + (k === 'expires_at' ? ms(e[k]) : show(e[k]))).join(' ');
  }

  // The newest entries of P:events, as the worker published them.
  function streamEventsSection(ev) {
    if (!ev.exists)
      return section('Newest events', empty(ev.key + ' does not exist yet: the worker writes it ' +
        'at the first event (a threshold crossed, credits expiring).'));
    return section('Newest events (' + ev.key + ', ' + ev.length + ' entries)',
      ev.newest.length === 0 ? empty('no events') : table([
        {title: 'event', key: 'event_id', num: true},
        {title: 'time', key: 'at', cell: e => e.error ? entryTime(e.entry) : ms(e.at)},
        {title: 'type', key: 'type', cell: e => e.error ?
          h('span', {class: 'bad'}, '(' + e.error + ', ' + e.bytes + ' bytes: ' + e.hex.slice(0, 32) + ')') : e.type},
        {title: 'user', key: 'user', cell: e => userLink(e.user)},
        {title: 'job', key: 'job', cell: e => jobLink(e.job)},
        {title: 'details', key: 'details', cell: eventDetails},
        {title: 'total after', key: 'total', num: true, cell: e => e.balance ? show(e.balance.total) : '-'},
        {title: 'held', key: 'held', num: true, cell: e => e.balance ? show(e.balance.held) : '-'},
      ], ev.newest, e => ({'data-event': e.event_id === undefined ? null : e.event_id})));
  }

  // Rows of credits.events (a user's, or a job's).
  function eventsTable(rows) {
    return table([
      {title: 'event', key: 'event_id', num: true}, {title: 'time', key: 'time'},
      {title: 'type', key: 'type'}, {title: 'job', key: 'job', cell: e => jobLink(e.job)},
      {title: 'details', key: 'details', cell: eventDetails},
      {title: 'total after', key: 'total', num: true}, {title: 'held', key: 'held', num: true},
      {title: 'published', key: 'published', cell: e => e.published || 'not yet'},
    ], rows, e => ({'data-event': e.event_id}));
  }

  function workersSection(w) {
    if (w.workers.length === 0)
      return section('Workers', empty('none given: start the console with --worker http://127.0.0.1:9464 (repeatable)'));
    return section('Workers', w.workers.map(x => h('div', {'data-worker': x.url},
      h('h3', null, x.url + ' ',
        x.ready.error ? h('span', {class: 'pill bad'}, 'unreachable') :
          h('span', {class: 'pill ' + (x.ready.ready ? 'good' : 'bad'), 'data-k': 'ready'},
            x.ready.ready ? 'ready' : 'not ready')),
      h('p', {class: 'mono'}, x.ready.error || x.ready.text),
      x.metrics_error ? h('p', {class: 'bad'}, x.metrics_error) :
        h('details', null, h('summary', null, (x.metrics || []).length + ' metrics'),
          table([
            {title: 'name', key: 'name', mono: true},
            {title: 'labels', key: 'labels', mono: true},
            {title: 'value', key: 'value', num: true},
          ], x.metrics || [])))));
  }

  async function viewOverview() {
    const [o, w] = await Promise.all([api('/api/overview'), api('/api/workers')]);
    const r = o.results;
    return [
      streamsSection(o),
      h('div', {class: 'grid'},
        deadSummary(o.dead, o.now_ms),
        workersSection(w)),
      streamEventsSection(o.events),
      section('Newest results (' + r.key + ', ' + r.length + ' entries)',
        r.newest.length === 0 ? empty('no results yet') : table(resultCells(), r.newest)),
    ];
  }

  // Dead letters --------------------------------------------------------

  function hexDump(hex) {
    const lines = [];
    for (let off = 0; off < hex.length; off += 32) {
      const bytes = hex.slice(off, off + 32).match(/../g) || [];
      lines.push((off / 2).toString(16).padStart(4, '0') + '  ' + bytes.join(' '));
    }
    return lines.join('\n');
  }

  function jobSummary(l) {
    if (l.job) {
      const parts = [];
      for (const [k, v] of Object.entries(l.job))
        if (v !== null && k !== 'type' && k !== 'reply') parts.push(k + '=' + show(v));
      return h('span', null, h('b', null, l.job.type), ' ', parts.join(' '));
    }
    if (l.job_error) return h('span', {class: 'bad'}, 'not a job (' + l.job_error + '): ' + l.job_message);
    return h('span', {class: 'muted'}, '(no job bytes)');
  }

  function bytesCell(l) {
    if (l.job_hex === null) return '-';
    return l.job_bytes + ' bytes' + (l.job_cut ? ' (cut: ' + l.job_kept_bytes + ' kept)' : '');
  }

  // The row under a letter's: its original bytes in hex, as wide as the table.
  function bytesRow(l, columns) {
    if (l.job_hex === null) return null;
    return h('tr', {class: 'under'}, h('td', {colspan: columns},
      h('details', null,
        h('summary', null, 'original bytes in hex · sha256 ' + show(l.job_sha256)),
        h('pre', {'data-k': 'hex'}, hexDump(l.job_hex)))));
  }

  async function retryOne(id, force) {
    const r = await api('/api/dead/retry', {id, force: force ? '1' : ''}, 'POST');
    await render();
    say('retried dead letter ' + id + ': job ' + show(r.job) + ' re-enqueued on ' + r.stream +
      ' as entry ' + r.entry, 'ok');
  }

  async function dropOne(id) {
    await api('/api/dead/drop', {id}, 'POST');
    await render();
    say('dropped dead letter ' + id, 'ok');
  }

  async function retryReason(reason) {
    const r = await api('/api/dead/retry-reason', {reason}, 'POST');
    await render();
    say('retried ' + r.retried + ' dead letters whose reason starts with "' + reason + '"; ' +
      r.refused + ' refused' + (r.stopped ? ' (more left: retry again)' : '') +
      (r.refused ? ': ' + r.entries.filter(e => !e.ok).slice(0, 3).map(e => e.why).join('; ') : ''),
      r.refused ? 'error' : 'ok');
  }

  function deadFilterForm(p) {
    const stream = h('select', {name: 'stream'},
      ['', 'consume', 'purchase', 'allocate'].map(s => h('option', {value: s, selected: p.stream === s}, s || 'every stream')));
    const reason = h('input', {name: 'reason', value: p.reason || '', size: 28, placeholder: 'reason starts with'});
    const from = h('input', {name: 'from', type: 'datetime-local', value: p.from_text || ''});
    const to = h('input', {name: 'to', type: 'datetime-local', value: p.to_text || ''});
    const limit = h('input', {name: 'limit', type: 'number', min: 1, max: boot.page_max, value: p.limit || 25});
    const form = h('form', {class: 'bar'},
      h('label', null, 'stream', stream), h('label', null, 'reason', reason),
      h('label', null, 'from (UTC)', from), h('label', null, 'to (UTC)', to),
      h('label', null, 'per page', limit), h('button', {type: 'submit'}, 'show'));
    form.addEventListener('submit', e => {
      e.preventDefault();
      const q = new URLSearchParams();
      if (stream.value) q.set('stream', stream.value);
      if (reason.value) q.set('reason', reason.value);
      if (from.value) q.set('from', from.value);
      if (to.value) q.set('to', to.value);
      if (limit.value) q.set('limit', limit.value);
      location.hash = '#/dead' + (q.toString() ? '?' + q.toString() : '');
    });
    return form;
  }

  // "2026-11-24T07:25" (UTC) as Unix ms, or ''.
  function utcMs(text) {
    if (!text) return '';
    const t = Date.parse(text + 'Z');
    return Number.isFinite(t) ? String(t) : '';
  }

  // The letters, each with its bytes in a row of their own under it.
  function deadTable(rows) {
    const letters = table([
      {title: 'dead entry', key: 'id', cell: l => h('span', null,
        h('div', {class: 'mono'}, l.id), h('div', {class: 'muted'}, entryTime(l.id)))},
      {title: 'stream', key: 'stream', mono: true},
      {title: 'entry', key: 'entry', mono: true},
      {title: 'reason', key: 'reason'},
      {title: 'job', key: 'job', cell: jobSummary},
      {title: 'bytes', key: 'bytes', cell: bytesCell},
      {title: '', key: 'act', cell: l => h('span', {class: 'actions'},
        actionButton('retry', 'retry', () => retryOne(l.id, false)),
        l.job_error || (l.job && l.stream && !l.stream.endsWith(':' + jobStream(l.job.type))) ?
          actionButton('force retry', 'force-retry', () => retryOne(l.id, true)) : null,
        actionButton('drop', 'drop', () => dropOne(l.id)))},
    ], rows, l => ({'data-dead': l.id}));
    [...letters.querySelectorAll('tbody tr')].forEach((tr, i) => {
      const under = bytesRow(rows[i], tr.children.length);
      if (under) tr.after(under);
    });
    return letters;
  }

  async function viewDead(params) {
    const p = {stream: params.get('stream') || '', reason: params.get('reason') || '',
      from_text: params.get('from') || '', to_text: params.get('to') || '',
      limit: params.get('limit') || '', before: params.get('before') || ''};
    const d = await api('/api/dead', {stream: p.stream, reason: p.reason, from: utcMs(p.from_text),
      to: utcMs(p.to_text), limit: p.limit, before: p.before});
    const rows = d.letters;
    const older = new URLSearchParams(params);
    if (d.next) older.set('before', d.next);
    const head = [deadFilterForm(p)];
    if (p.reason)
      head.push(h('p', null, actionButton('retry all whose reason starts with "' + p.reason + '"',
        'retry-reason', () => retryReason(p.reason))));
    return [section('Dead letters: ' + rows.length + ' shown of ' + d.total + (p.before ? ' (older page)' : ''),
      ...head,
      rows.length === 0 ? empty('no dead letter matches (among ' + d.scanned + ' read)') : deadTable(rows),
      h('div', {class: 'pager'},
        p.before ? link('#/dead' + withoutBefore(params), 'newest') : null,
        d.next ? link('#/dead?' + older.toString(), 'older') : null,
        h('span', {class: 'muted'}, d.scanned + ' read for this page')))];
  }

  function withoutBefore(params) {
    const q = new URLSearchParams(params);
    q.delete('before');
    return q.toString() ? '?' + q.toString() : '';
  }

  // The stream a job type belongs to (contract 9.2).
  function jobStream(type) {
    return {consume: 'consume', hold: 'consume', capture: 'consume', release: 'consume',
      refund: 'consume', purchase: 'purchase', revoke: 'purchase', allocate: 'allocate',
      grant: 'allocate', cancel: 'allocate'}[type] || '';
  }

  // A user ----------------------------------------------------------------

  function lookupForm(label, placeholder, value, go) {
    const input = h('input', {name: 'id', value: value || '', size: 40, placeholder, spellcheck: 'false'});
    const form = h('form', {class: 'bar'}, h('label', null, label, input), h('button', {type: 'submit'}, 'show'));
    form.addEventListener('submit', e => {
      e.preventDefault();
      if (input.value.trim()) go(input.value.trim());
    });
    return form;
  }

  function figures(obj, keys) {
    return h('dl', {class: 'figures'}, keys.map(k => h('div', null, h('dt', null, k),
      h('dd', {'data-k': k}, show(obj[k])))));
  }

  async function viewUser(parts, params) {
    const user = parts[0] ? decodeURIComponent(parts[0]) : '';
    const form = lookupForm('user ID', 'user-123', user, u => { location.hash = '#/user/' + encodeURIComponent(u); });
    if (!user) return [section('A user', form)];
    const perLot = params.get('per_lot') === '1';
    const before = params.get('before') || '';
    const eventsBefore = params.get('events_before') || '';
    const [u, hist, ev] = await Promise.all([api('/api/user', {user}),
      api('/api/history', {user, before, per_lot: perLot ? '1' : ''}),
      api('/api/events', {user, before: eventsBefore})]);
    const b = u.balance;
    const detail = h('div', {id: 'job-detail'});
    const histQuery = (extra) => {
      const q = new URLSearchParams(params);
      for (const [k, v] of Object.entries(extra)) { if (v) q.set(k, v); else q.delete(k); }
      return '#/user/' + encodeURIComponent(user) + (q.toString() ? '?' + q.toString() : '');
    };
    const historyRows = hist.lines;
    const historyTable = historyRows.length === 0 ? empty(perLot ? 'no entries' : 'no jobs') :
      table(perLot ? [
        {title: 'time', key: 'time'}, {title: 'kind', key: 'kind'}, {title: 'delta', key: 'delta', num: true},
        {title: 'lot', key: 'lot', num: true}, {title: 'job', key: 'job', cell: r => jobLink(r.job)},
        {title: 'origin', key: 'origin', cell: r => jobLink(r.origin)}, {title: 'tool', key: 'tool'}, {title: 'ref', key: 'ref'},
      ] : [
        {title: 'time', key: 'time'}, {title: 'type', key: 'type'}, {title: 'delta', key: 'delta', num: true},
        {title: 'job', key: 'job', mono: true}, {title: 'tool', key: 'tool'}, {title: 'ref', key: 'ref'},
        {title: 'pack', key: 'pack'}, {title: 'plan', key: 'plan'}, {title: 'period', key: 'period'},
      ], historyRows, r => ({'data-job': r.job, class: 'clickable',
        onclick: ev => { selectRow(ev.currentTarget); showJobDetail(detail, r.job); }}));
    return [
      section('User ' + user, form,
        figures(b, ['total', 'pack', 'monthly', 'grant', 'held']),
        h('p', {class: 'muted'}, 'next expiry: ' + show(b.next_expiry) +
          (b.next_expiry_credits ? ' (' + b.next_expiry_credits + ' credits)' : '') +
          ' · usable credits by kind, as of now (credits.balances); held: in open holds, not in total')),
      h('div', {class: 'grid'},
        section('Usable lots, in the order they are spent',
          b.lots.length === 0 ? empty('no usable lots') : table([
            {title: 'lot', key: 'lot', num: true}, {title: 'kind', key: 'kind'},
            {title: 'remaining', key: 'remaining', num: true}, {title: 'granted', key: 'granted', num: true},
            {title: 'expires', key: 'expires', cell: l => l.expires || 'never'},
            {title: 'pack', key: 'pack'}, {title: 'plan', key: 'plan'}, {title: 'period', key: 'period'},
          ], b.lots)),
        section('Open holds',
          b.holds.length === 0 ? empty('no open holds') : table([
            {title: 'hold', key: 'hold', cell: x => jobLink(x.hold)}, {title: 'amount', key: 'amount', num: true},
            {title: 'created', key: 'created'}, {title: 'expires', key: 'expires'},
            {title: 'tool', key: 'tool'}, {title: 'ref', key: 'ref'},
          ], b.holds))),
      section('Events of ' + user + ' (credits.events, newest first)',
        ev.events.length === 0 ? empty('no events') : eventsTable(ev.events),
        h('div', {class: 'pager'},
          eventsBefore ? link(histQuery({events_before: ''}), 'newest') : null,
          ev.next !== null ? link(histQuery({events_before: String(ev.next)}), 'older') : null)),
      section(perLot ? 'History, one line per ledger entry' : 'History, one line per job (click one for its detail)',
        h('p', null,
          perLot ? link(histQuery({per_lot: '', before: ''}), 'one line per job') :
            link(histQuery({per_lot: '1', before: ''}), 'one line per ledger entry')),
        historyTable,
        h('div', {class: 'pager'},
          before ? link(histQuery({before: ''}), 'newest') : null,
          hist.next !== null ? link(histQuery({before: String(hist.next)}), 'older') : null)),
      detail,
    ];
  }

  function selectRow(tr) {
    for (const other of tr.parentNode.querySelectorAll('tr.selected')) other.classList.remove('selected');
    tr.classList.add('selected');
  }

  async function showJobDetail(target, id) {
    target.replaceChildren(section('Job ' + id, empty('reading...')));
    try {
      const j = await api('/api/job', {id});
      target.replaceChildren(...jobSections(j, true));
      target.dataset.job = id;
    } catch (e) {
      target.replaceChildren(section('Job ' + id, h('p', {class: 'bad'}, e.message)));
    }
  }

  // A job -----------------------------------------------------------------

  function balanceText(b) {
    return 'total ' + b.total + ' · pack ' + b.pack + ' · monthly ' + b.monthly + ' · grant ' +
      b.grant + ' · held ' + b.held;
  }

  // A result of the contract: times as dates, the balance on one line.
  function resultView(r) {
    if (!r) return empty('none');
    const shown = {};
    for (const [k, v] of Object.entries(r)) {
      if (k === 'balance' && v) shown[k] = balanceText(v);
      else if (k.endsWith('_at') && typeof v === 'number') shown[k] = ms(v);
      else shown[k] = v;
    }
    return kv(shown);
  }

  function jobSections(j, compact) {
    const d = j.decision;
    const r = j.redis;
    const out = [
      section('Job ' + j.id + (compact ? '' : ''),
        compact ? h('p', null, link('#/job/' + encodeURIComponent(j.id), 'open as its own page')) : null,
        d ? h('div', {class: 'pair'},
          h('div', null, h('h3', null, 'Stored decision (credits.jobs)'),
            kv(d, ['job', 'type', 'user', 'status', 'error', 'time'])),
          h('div', null, h('h3', null, 'Its result'), resultView(d.result))) :
          h('p', {class: 'warn', 'data-k': 'stored'}, 'No decision is stored under this ID: it was never decided ' +
            'against the ledger (a message rejected before it: invalid_job, wrong_stream, id_conflict; ' +
            'or not read yet). Its result in Redis, if any, is below.')),
      h('div', {class: 'grid'},
        section('Entries it wrote', j.entries.length === 0 ? empty('none') : table([
          {title: 'entry', key: 'entry', num: true}, {title: 'time', key: 'time'},
          {title: 'kind', key: 'kind'}, {title: 'delta', key: 'delta', num: true},
          {title: 'lot', key: 'lot', num: true}, {title: 'origin', key: 'origin', cell: x => jobLink(x.origin)},
          {title: 'tool', key: 'tool'}, {title: 'ref', key: 'ref'},
        ], j.entries)),
        section('Lots it touched, as they are now', j.lots.length === 0 ? empty('none') : table([
          {title: 'lot', key: 'lot', num: true}, {title: 'kind', key: 'kind'},
          {title: 'granted', key: 'granted', num: true}, {title: 'remaining', key: 'remaining', num: true},
          {title: 'expires', key: 'expires', cell: l => l.expires || 'never'}, {title: 'revoked', key: 'revoked'},
          {title: 'created by', key: 'created_by', mono: true, cell: l => jobLink(l.created_by)},
          {title: 'pack', key: 'pack'}, {title: 'plan', key: 'plan'},
        ], j.lots))),
    ];
    if (j.given_back.length > 0)
      out.push(section('Given back to it later (refunds, releases)', table([
        {title: 'entry', key: 'entry', num: true}, {title: 'time', key: 'time'},
        {title: 'by job', key: 'job', cell: x => jobLink(x.job)}, {title: 'kind', key: 'kind'},
        {title: 'delta', key: 'delta', num: true}, {title: 'lot', key: 'lot', num: true},
      ], j.given_back)));
    if (j.holds.length > 0)
      out.push(section('Hold', table([
        {title: 'hold', key: 'hold', cell: x => jobLink(x.hold)}, {title: 'status', key: 'status'},
        {title: 'amount', key: 'amount', num: true}, {title: 'captured', key: 'captured', num: true},
        {title: 'created', key: 'created'}, {title: 'expires', key: 'expires'}, {title: 'closed', key: 'closed'},
        {title: 'closed by', key: 'closed_by', cell: x => jobLink(x.closed_by)},
      ], j.holds)));
    out.push(section('Events it caused', j.events.length === 0 ? empty('none') : eventsTable(j.events)));
    out.push(section('Where its result is in Redis',
      kv({
        result_key: r.result_key,
        result_ttl: r.result_ttl_ms === -2 ? 'no such key' : r.result_ttl_ms === -1 ? 'no expiry' : age(r.result_ttl_ms),
        reply_key: r.reply_key,
        reply_waiting: r.reply_waiting + (r.reply_ttl_ms >= 0 ? ' (expires in ' + age(r.reply_ttl_ms) + ')' : ''),
        results_stream: r.results_key + ': ' + r.results_seen + ' publications among the newest ' + r.results_scanned +
          ', ' + r.replays_seen + ' of them replays',
        dead_letters: r.dead_letters.length === 0 ? 'none among the newest ' + r.dead_scanned :
          r.dead_letters.map(x => x.id + ' (' + x.reason + ')').join(', '),
      }),
      h('h3', null, 'The result at ' + r.result_key), resultView(r.result),
      r.results_entries.length === 0 ? null : h('div', null, h('h3', null, 'Its entries in ' + r.results_key),
        table([
          {title: 'entry', key: 'entry', mono: true}, {title: 'time', key: 'time', cell: x => entryTime(x.entry)},
          {title: 'status', key: 'status'}, {title: 'replayed', key: 'replayed', cell: x => x.replayed ? 'yes' : 'no'},
        ], r.results_entries))));
    return out;
  }

  async function viewJob(parts) {
    const id = parts[0] ? decodeURIComponent(parts[0]) : '';
    const form = lookupForm('job ID', 'web:run-7', id, v => { location.hash = '#/job/' + encodeURIComponent(v); });
    if (!id) return [section('A job by ID', form)];
    const j = await api('/api/job', {id});
    return [section('A job by ID', form), ...jobSections(j, false)];
  }

  // The catalog -------------------------------------------------------------

  function catalogForm(kind) {
    const fields = kind === 'plan' ?
      [['plan', 'pro'], ['monthly', '1000'], ['cap', 'default: 2 x monthly'], ['low_balance', 'none']] :
      [['pack', 'starter'], ['credits', '500'], ['valid_days', 'default: 90']];
    const inputs = fields.map(([name, ph]) => h('input', {name, placeholder: ph, size: 14}));
    const button = actionButton('save ' + kind, 'save-' + kind, async () => {
      const params = {};
      inputs.forEach(i => { params[i.name] = i.value.trim(); });
      const r = await api('/api/' + kind, params, 'POST');
      await render();
      say('saved ' + kind + ' ' + show(r[kind][kind]), 'ok');
    });
    return h('div', {class: 'bar'}, fields.map(([name], i) => h('label', null, name, inputs[i])), button);
  }

  async function viewCatalog() {
    const c = await api('/api/catalog');
    return [h('div', {class: 'grid'},
      section('Plans', c.plans.length === 0 ? empty('no plans') : table([
        {title: 'plan', key: 'plan'}, {title: 'monthly', key: 'monthly', num: true}, {title: 'cap', key: 'cap', num: true},
        {title: 'low balance', key: 'low_balance', num: true, cell: p => p.low_balance === null ? 'none' : show(p.low_balance)},
      ], c.plans, p => ({'data-plan': p.plan})), boot.actions ? catalogForm('plan') :
        empty('read-only: edits need creditsctl console --allow-actions')),
      section('Packs', c.packs.length === 0 ? empty('no packs') : table([
        {title: 'pack', key: 'pack'}, {title: 'credits', key: 'credits', num: true},
        {title: 'valid days', key: 'valid_days', num: true},
      ], c.packs, p => ({'data-pack': p.pack})), boot.actions ? catalogForm('pack') :
        empty('read-only: edits need creditsctl console --allow-actions')))];
  }

  // ---------------------------------------------------------------------
  // Routing
  // ---------------------------------------------------------------------

  const views = {overview: viewOverview, dead: viewDead, user: viewUser, job: viewJob, catalog: viewCatalog};

  function route() {
    const hash = location.hash.replace(/^#\/?/, '');
    const [path, query] = hash.split('?');
    const parts = path.split('/').filter(x => x !== '');
    const name = views[parts[0]] ? parts[0] : 'overview';
    return {name, rest: parts.slice(1), params: new URLSearchParams(query || '')};
  }

  async function render() {
    clearTimeout(refreshTimer);
    const r = route();
    for (const a of document.querySelectorAll('nav a'))
      a.classList.toggle('current', a.dataset.nav === r.name);
    document.body.dataset.view = r.name;
    document.body.dataset.state = 'loading';
    try {
      const content = r.name === 'dead' ? await viewDead(r.params) :
        r.name === 'user' ? await viewUser(r.rest, r.params) :
          r.name === 'job' ? await viewJob(r.rest) : await views[r.name]();
      if (route().name !== r.name) return; // the operator moved on meanwhile
      main.replaceChildren(...content);
      document.body.dataset.state = 'ready';
      document.body.dataset.loads = String(++loads);
      if (!statusLine.dataset.kind || statusLine.dataset.kind === 'info')
        say('read at ' + new Date().toISOString().slice(11, 19) + ' UTC', 'info');
    } catch (e) {
      document.body.dataset.state = 'error';
      main.replaceChildren(section('Cannot show this page', h('p', {class: 'bad', 'data-k': 'error'}, e.message)));
      say(e.message, 'error');
    }
    if (r.name === 'overview')
      refreshTimer = setTimeout(() => { if (!document.hidden) render(); else refreshTimer = setTimeout(render, REFRESH_MS); }, REFRESH_MS);
  }

  function setUpToken() {
    const mode = document.getElementById('mode');
    mode.textContent = boot.prefix + ' · ' + (boot.actions ? 'actions on' : 'read-only');
    const form = document.getElementById('token-form');
    if (!boot.actions && !boot.token_for_reads) return;
    form.hidden = false;
    const input = document.getElementById('token');
    input.value = token();
    form.addEventListener('submit', e => {
      e.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, input.value);
      say(input.value ? 'token kept for this tab' : 'token forgotten', 'ok');
      if (boot.token_for_reads) render();
    });
    document.getElementById('token-forget').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      input.value = '';
      say('token forgotten', 'ok');
    });
  }

  window.addEventListener('hashchange', () => { say('', ''); render(); });
  setUpToken();
  render();
})();
