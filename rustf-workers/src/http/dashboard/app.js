// The rustf-workers dashboard: plain DOM code over the stats router's JSON and
// Server-Sent Events routes. Every URL is relative to this page (`<router>/ui/`), so it
// works under any prefix. No dependencies, no build step, no inline script.
'use strict';

(() => {
  const API = '../';
  // `GET /` of the router: `../` would add a trailing slash, which a router nested with
  // axum's `nest("/prefix", ..)` does not match; the prefix is the page's path without
  // its `ui/`.
  const ROOT = (() => {
    const prefix = location.pathname.replace(/ui\/?$/, '');
    return prefix.length > 1 ? prefix.replace(/\/$/, '') : '/';
  })();
  const CSRF = { 'x-rustf-workers': '1' };
  const JOB_STATES = ['scheduled', 'available', 'running', 'retrying', 'discarded', 'cancelled', 'completed'];
  const WAITING = ['scheduled', 'available', 'retrying'];
  const LIVE_RUN = ['queued', 'running', 'backing_off'];
  const FINISHED = ['completed', 'discarded', 'cancelled'];
  const HISTORY_MS = 5 * 60 * 1000;
  const BUCKET_MS = 10 * 1000;
  const POLL_MS = 2000;
  const SSE_PATIENCE_MS = 5000;
  const LOG_LINES = 500;

  // ---- DOM helpers ----

  /** An element: `h('td', {class: 'num', text: 3})`, children after the attributes. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'text') el.textContent = String(value);
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
      else if (value === true) el.setAttribute(key, '');
      else el.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function svg(tag, attrs) {
    const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
    return el;
  }

  // ---- formatting ----

  function ms(value) {
    if (value === null || value === undefined) return '–';
    if (value < 1000) return `${value} ms`;
    if (value < 60000) return `${(value / 1000).toFixed(1)} s`;
    const minutes = Math.floor(value / 60000);
    return `${minutes} min ${Math.round((value % 60000) / 1000)} s`;
  }

  function time(epochMs) {
    if (!epochMs) return '–';
    return new Date(epochMs).toLocaleString(undefined, {
      month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
  }

  function ago(epochMs) {
    if (!epochMs) return '–';
    const delta = epochMs - Date.now();
    const text = ms(Math.abs(Math.round(delta / 1000) * 1000));
    return delta > 0 ? `in ${text}` : `${text} ago`;
  }

  function bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let value = n;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return `${unit ? value.toFixed(value < 10 ? 1 : 0) : value} ${units[unit]}`;
  }

  // A daemon's jobs may be attempted without end: `u32::MAX`.
  function maxAttempts(max) {
    return max >= 4294967295 ? '∞' : String(max);
  }

  function percent(rate) {
    return rate === null ? '–' : `${(rate * 100).toFixed(rate === 1 ? 0 : 1)}%`;
  }

  function short(id) {
    return id.length > 12 ? `${id.slice(0, 8)}…` : id;
  }

  function badge(state) {
    return h('span', { class: 'badge', dataset: { state }, text: state.replace('_', ' ') });
  }

  function json(value) {
    return JSON.stringify(value, null, 2);
  }

  // ---- the API ----

  class ApiError extends Error {
    constructor(status, body) {
      super(body && body.error ? body.error.message : `HTTP ${status}`);
      this.status = status;
      this.kind = body && body.error ? body.error.kind : 'http';
    }
  }

  async function call(method, path, body) {
    const init = { method, headers: { accept: 'application/json' } };
    if (method !== 'GET') {
      Object.assign(init.headers, CSRF, { 'content-type': 'application/json' });
      if (body !== undefined) init.body = body;
    }
    const response = await fetch(path === '' ? ROOT : API + path, init);
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }
  const get = (path) => call('GET', path);

  const enc = encodeURIComponent;

  // ---- shared state: the config, the live overview and its history ----

  const app = {
    config: { allow_starting_runs: false, allow_cancelling_runs: false, allow_managing_jobs: false, queue: false },
    overview: null,
    history: [],
    source: null,
    timer: null,
    // `?poll` in the page's URL: never the stream (a proxy known to buffer it).
    sse: 'EventSource' in window && !new URLSearchParams(window.location.search).has('poll'),
    view: null,
  };

  function setLive(state, text) {
    const el = document.getElementById('live');
    el.dataset.state = state;
    el.textContent = text || state;
  }

  function receive(snapshot) {
    app.overview = snapshot;
    const total = snapshot.workers.reduce((sum, w) => sum + w.stats.runs, 0);
    app.history.push({ at: snapshot.at_ms, total });
    const horizon = snapshot.at_ms - HISTORY_MS - BUCKET_MS;
    while (app.history.length && app.history[0].at < horizon) app.history.shift();
    if (app.view && app.view.update) app.view.update(snapshot);
  }

  function connect() {
    disconnect();
    if (document.hidden) return;
    if (app.sse) {
      const source = new EventSource(`${API}events`);
      let errors = 0;
      const fallBack = () => {
        app.sse = false;
        connect();
      };
      // The server sends a snapshot at once: none within a few seconds is a proxy that
      // buffers the stream, and polling works through it.
      app.watchdog = setTimeout(fallBack, SSE_PATIENCE_MS);
      source.addEventListener('overview', (event) => {
        clearTimeout(app.watchdog);
        errors = 0;
        setLive('live');
        receive(JSON.parse(event.data));
      });
      source.addEventListener('error', () => {
        errors += 1;
        // Refused (an error status), or failing again and again: poll instead.
        if (source.readyState === EventSource.CLOSED || errors >= 3) fallBack();
        else setLive('offline', 'reconnecting');
      });
      app.source = source;
    } else {
      poll();
    }
  }

  async function poll() {
    try {
      const [list, runs, jobs] = await Promise.all([
        get(''),
        get('runs'),
        app.config.queue ? get('jobs/counts') : Promise.resolve(null),
      ]);
      setLive('polling');
      receive({ at_ms: Date.now(), workers: list.workers, runs: runs.runs, jobs });
    } catch (err) {
      setLive('offline');
    }
    if (!document.hidden) app.timer = setTimeout(poll, POLL_MS);
  }

  function disconnect() {
    if (app.source) app.source.close();
    app.source = null;
    clearTimeout(app.timer);
    clearTimeout(app.watchdog);
    app.timer = null;
  }

  // ---- confirmation ----

  function confirmAction(text, label) {
    const dialog = document.getElementById('confirm');
    document.getElementById('confirm-text').textContent = text;
    const ok = document.getElementById('confirm-ok');
    ok.textContent = label || 'Confirm';
    return new Promise((resolve) => {
      const done = (answer) => () => {
        dialog.close();
        resolve(answer);
      };
      const yes = done(true);
      const no = done(false);
      ok.addEventListener('click', yes, { once: true });
      document.getElementById('confirm-cancel').addEventListener('click', no, { once: true });
      dialog.addEventListener('cancel', no, { once: true });
      dialog.showModal();
      document.getElementById('confirm-cancel').focus();
    }).finally(() => {
      // Listeners of the answer not given would fire on the next question.
      ok.replaceWith(ok.cloneNode(true));
      const cancel = document.getElementById('confirm-cancel');
      cancel.replaceWith(cancel.cloneNode(true));
    });
  }

  function notice(container, text, isError) {
    // In the console too: where whoever debugs the page (or its browser test) looks.
    if (isError) console.error(`rustf-workers dashboard: ${text}`);
    container.replaceChildren(h('p', { class: isError ? 'error' : 'muted', role: isError ? 'alert' : 'status', text }));
  }

  // ---- views ----

  function jobCount(jobs, worker, states) {
    if (!jobs) return 0;
    return jobs
      .filter((c) => c.worker === worker && states.includes(c.state))
      .reduce((sum, c) => sum + c.count, 0);
  }

  function throughputChart() {
    const width = 300;
    const height = 80;
    const chart = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', role: 'img' });
    const caption = h('p', { class: 'muted' });
    function draw() {
      const count = HISTORY_MS / BUCKET_MS;
      const buckets = new Array(count).fill(0);
      const now = app.history.length ? app.history[app.history.length - 1].at : Date.now();
      for (let i = 1; i < app.history.length; i += 1) {
        const sample = app.history[i];
        // The newest sample in the last bar.
        const index = count - 1 - Math.floor((now - sample.at) / BUCKET_MS);
        if (index >= 0 && index < count) buckets[index] += Math.max(0, sample.total - app.history[i - 1].total);
      }
      const top = Math.max(1, ...buckets);
      const bar = width / count;
      const shapes = [svg('line', { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5 })];
      buckets.forEach((n, i) => {
        if (!n) return;
        const barHeight = Math.max(2, (n / top) * (height - 6));
        shapes.push(svg('rect', { x: i * bar + 1, y: height - barHeight, width: bar - 2, height: barHeight }));
      });
      chart.replaceChildren(...shapes);
      const total = buckets.reduce((a, b) => a + b, 0);
      const label = `${total} runs finished in the last 5 minutes seen by this page; at most ${top} in 10 s`;
      chart.setAttribute('aria-label', label);
      caption.textContent = `${total} runs finished (bars of 10 s over the last 5 minutes, since this page opened)`;
    }
    draw();
    return { el: h('div', {}, chart, caption), draw };
  }

  function overviewView() {
    const workersBody = h('tbody');
    const runsBody = h('tbody');
    const chart = throughputChart();
    const rows = new Map();
    const runRows = new Map();
    const cells = ['runs', 'errors', 'success', 'p50', 'p95', 'running', 'queued'];

    function workerRow(name) {
      let row = rows.get(name);
      if (!row) {
        row = h('tr', { dataset: { worker: name } },
          h('td', {}, h('a', { href: `#/queue?worker=${enc(name)}`, text: name })),
          cells.map((col) => h('td', { class: 'num', dataset: { col } })));
        rows.set(name, row);
      }
      return row;
    }

    function update(snapshot) {
      const names = [];
      for (const w of snapshot.workers) {
        const row = workerRow(w.name);
        const s = w.stats;
        const values = {
          runs: s.runs,
          errors: s.errors,
          success: percent(s.runs ? (s.runs - s.errors) / s.runs : null),
          p50: ms(w.p50_ms),
          p95: ms(w.p95_ms),
          running: w.live,
          queued: w.queued + jobCount(snapshot.jobs, w.name, WAITING),
        };
        for (const col of cells) {
          const cell = row.querySelector(`[data-col="${col}"]`);
          const text = String(values[col]);
          if (cell.textContent !== text) cell.textContent = text;
        }
        names.push(row);
      }
      if (names.some((row, i) => workersBody.children[i] !== row) || workersBody.children.length !== names.length) {
        workersBody.replaceChildren(...names);
      }
      if (!names.length) workersBody.replaceChildren(h('tr', {}, h('td', { colspan: 8, class: 'empty', text: 'No worker is registered.' })));

      const live = [];
      for (const run of snapshot.runs) {
        let row = runRows.get(run.id);
        if (!row) {
          row = h('tr', { dataset: { run: run.id } },
            h('td', { text: run.worker }),
            h('td', { class: 'mono' }, h('a', { href: `#/runs/${enc(run.id)}`, text: short(run.id), title: run.id })),
            h('td', { dataset: { col: 'state' } }),
            h('td', { dataset: { col: 'progress' } }, h('progress', { max: 100 }), ' ', h('span', { class: 'muted' })),
            h('td', { class: 'num', dataset: { col: 'elapsed' } }),
            h('td', {}, app.config.allow_cancelling_runs
              ? h('button', { type: 'button', class: 'small danger', text: 'Cancel', onclick: () => cancelRun(run.id) })
              : null));
          runRows.set(run.id, row);
        }
        row.querySelector('[data-col="state"]').replaceChildren(badge(run.stopping ? 'stopping' : run.state));
        const bar = row.querySelector('progress');
        const note = row.querySelector('[data-col="progress"] span');
        if (run.progress) {
          bar.value = run.progress.percent;
          note.textContent = `${run.progress.percent}%${run.progress.message ? ` ${run.progress.message}` : ''}`;
        } else {
          bar.removeAttribute('value');
          note.textContent = '';
        }
        row.querySelector('[data-col="elapsed"]').textContent = ms(run.elapsed_ms);
        live.push(row);
      }
      for (const id of runRows.keys()) {
        if (!snapshot.runs.some((run) => run.id === id)) runRows.delete(id);
      }
      runsBody.replaceChildren(...(live.length ? live : [h('tr', {}, h('td', { colspan: 6, class: 'empty', text: 'No run is live.' }))]));
      chart.draw();
      if (startForm && snapshot.workers.length !== startSelect.options.length) fillWorkers(startSelect, snapshot.workers, false);
    }

    async function cancelRun(id) {
      if (!(await confirmAction(`Cancel run ${id}?`, 'Cancel run'))) return;
      try {
        await call('DELETE', `runs/${enc(id)}`);
      } catch (err) {
        notice(runsMessage, err.message, true);
      }
    }

    const runsMessage = h('div');
    const startSelect = h('select', { name: 'worker', id: 'start-worker', required: true });
    const startPayload = h('textarea', { name: 'payload', id: 'start-payload', placeholder: '{"key": "value"} or empty for none', spellcheck: 'false' });
    const startMessage = h('div');
    const startForm = app.config.allow_starting_runs
      ? h('section', { 'aria-labelledby': 'start-title' },
        h('h2', { id: 'start-title', text: 'Start a run' }),
        h('form', {
          id: 'start',
          onsubmit: async (event) => {
            event.preventDefault();
            const text = startPayload.value.trim();
            if (text) {
              try {
                JSON.parse(text);
              } catch (err) {
                notice(startMessage, `The payload is not JSON: ${err.message}`, true);
                return;
              }
            }
            // "Enqueue" stores a job for whichever process claims it; "Start" runs it here.
            const route = event.submitter && event.submitter.value === 'enqueue' ? 'jobs' : 'runs';
            try {
              const started = await call('POST', `${enc(startSelect.value)}/${route}`, text);
              location.hash = `#/runs/${enc(started.id)}`;
            } catch (err) {
              notice(startMessage, err.message, true);
            }
          },
        },
        h('label', {}, 'Payload (JSON)', startPayload),
        h('div', { class: 'row' },
          h('label', {}, 'Worker', startSelect),
          h('button', { type: 'submit', class: 'primary', value: 'start', text: 'Start' }),
          app.config.queue ? h('button', { type: 'submit', value: 'enqueue', text: 'Enqueue' }) : null),
        startMessage))
      : null;

    const el = h('div', {},
      h('h1', { text: 'Overview' }),
      h('div', { class: 'grid' },
        h('section', { 'aria-labelledby': 'workers-title' },
          h('h2', { id: 'workers-title', text: 'Workers' }),
          h('div', { class: 'scroll' }, h('table', { id: 'workers' },
            h('thead', {}, h('tr', {},
              h('th', { text: 'Worker' }), h('th', { class: 'num', text: 'Runs' }), h('th', { class: 'num', text: 'Errors' }),
              h('th', { class: 'num', text: 'Success' }), h('th', { class: 'num', text: 'p50' }), h('th', { class: 'num', text: 'p95' }),
              h('th', { class: 'num', text: 'Running' }), h('th', { class: 'num', text: 'Queued' }))),
            workersBody))),
        h('section', { 'aria-labelledby': 'throughput-title' },
          h('h2', { id: 'throughput-title', text: 'Throughput' }), chart.el)),
      h('section', { 'aria-labelledby': 'runs-title' },
        h('h2', { id: 'runs-title', text: 'Live runs' }),
        runsMessage,
        h('div', { class: 'scroll' }, h('table', { id: 'runs' },
          h('thead', {}, h('tr', {},
            h('th', { text: 'Worker' }), h('th', { text: 'Run' }), h('th', { text: 'State' }),
            h('th', { text: 'Progress' }), h('th', { class: 'num', text: 'Elapsed' }), h('th', { text: '' }))),
          runsBody))),
      startForm);
    if (app.overview) update(app.overview);
    else if (startForm) get('').then((list) => fillWorkers(startSelect, list.workers, false)).catch(() => {});
    return { el, update };
  }

  function fillWorkers(select, workers, any) {
    const current = select.value;
    const options = workers.map((w) => h('option', { value: w.name, text: w.name }));
    if (any) options.unshift(h('option', { value: '', text: 'every worker' }));
    select.replaceChildren(...options);
    if ([...select.options].some((o) => o.value === current)) select.value = current;
  }

  function runView(id) {
    const title = h('h1', {}, 'Run ', h('span', { class: 'mono', text: id }));
    const facts = h('dl', { class: 'stats', id: 'run-facts' });
    const bar = h('progress', { max: 100, id: 'run-progress' });
    const barText = h('span', { class: 'muted', id: 'run-progress-text' });
    const progressRow = h('p', {}, h('label', { for: 'run-progress' }, 'Progress'), bar, ' ', barText);
    const actions = h('div', { class: 'actions' });
    const message = h('div');
    const attempts = h('div');
    const payloadBox = h('pre', { id: 'run-payload', hidden: true });
    const payloadToggle = h('button', {
      type: 'button', class: 'small', text: 'Show payload', 'aria-controls': 'run-payload', 'aria-expanded': 'false',
      onclick: () => {
        payloadBox.hidden = !payloadBox.hidden;
        payloadToggle.textContent = payloadBox.hidden ? 'Show payload' : 'Hide payload';
        payloadToggle.setAttribute('aria-expanded', String(!payloadBox.hidden));
      },
    });
    const log = h('ol', { class: 'log', id: 'log', 'aria-live': 'off' });
    let paused = false;
    const held = [];
    const heldNote = h('span', { class: 'muted', id: 'log-held' });
    const pause = h('button', {
      type: 'button', class: 'small', id: 'log-pause', text: 'Pause', 'aria-pressed': 'false',
      onclick: () => {
        paused = !paused;
        pause.textContent = paused ? 'Resume' : 'Pause';
        pause.setAttribute('aria-pressed', String(paused));
        if (!paused) {
          held.splice(0).forEach(appendLine);
          heldNote.textContent = '';
        }
      },
    });
    const logState = h('span', { class: 'muted', id: 'log-state', text: 'waiting for messages' });
    let stream = null;
    let ended = false;
    let lastDetail = null;

    function appendLine(line) {
      const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.append(line);
      while (log.children.length > LOG_LINES) log.firstChild.remove();
      if (stick) log.scrollTop = log.scrollHeight;
    }

    function line(text, note) {
      const item = h('li', { class: note ? 'note' : undefined },
        h('time', { text: new Date().toLocaleTimeString() }), text);
      if (paused) {
        held.push(item);
        heldNote.textContent = `${held.length} new while paused`;
      } else {
        appendLine(item);
      }
    }

    function follow() {
      if (stream || ended) return;
      stream = new EventSource(`${API}runs/${enc(id)}/events`);
      logState.textContent = 'live';
      stream.addEventListener('message', (event) => {
        line(event.data);
        // `ctx.progress` arrives as a message too: the bar moves with it, not a second later.
        const message = JSON.parse(event.data);
        const progress = message && message.progress;
        if (progress && typeof progress.percent === 'number') showProgress(progress);
      });
      stream.addEventListener('lagged', (event) => line(`missed ${JSON.parse(event.data).missed} messages (this page read too slowly)`, true));
      stream.addEventListener('end', (event) => {
        const outcome = JSON.parse(event.data);
        line(`ended: ${outcome.status}${outcome.error ? `: ${outcome.error}` : ''} after ${ms(outcome.duration_ms)}`, true);
        ended = true;
        logState.textContent = 'ended';
        stream.close();
        stream = null;
        load();
      });
      stream.addEventListener('error', () => {
        if (stream && stream.readyState === EventSource.CLOSED) {
          stream = null;
          logState.textContent = 'disconnected';
        }
      });
    }

    function showProgress(progress) {
      bar.value = progress.percent;
      barText.textContent = `${progress.percent}%${progress.message ? ` ${progress.message}` : ''}`;
      progressRow.hidden = false;
    }

    function fact(label, value, key) {
      return h('div', { dataset: { fact: key } }, h('dt', { text: label }), h('dd', {}, value));
    }

    function render(detail) {
      lastDetail = detail;
      const run = detail.run;
      const record = detail.record;
      const job = detail.job;
      const state = run ? (run.stopping ? 'stopping' : run.state) : record ? record.state : job.state;
      const worker = (run || record || job).worker;
      title.replaceChildren('Run ', h('span', { class: 'mono', text: id }));
      const list = [fact('Worker', worker, 'worker'), fact('State', badge(state), 'state')];
      if (run) {
        list.push(fact('Attempt', run.attempt, 'attempt'), fact('Elapsed', ms(run.elapsed_ms), 'elapsed'),
          fact('Started', time(run.started_at_ms), 'started'));
      }
      if (job) {
        list.push(fact('Stored job', `${job.state}, attempt ${job.attempt} of ${maxAttempts(job.max_attempts)}`, 'job'),
          fact('Run at', time(job.run_at_ms), 'run-at'));
      }
      facts.replaceChildren(...list);
      const progress = run ? run.progress : job && job.progress;
      // While the stream is open it is the newer source: a snapshot is up to a second old.
      if (progress && typeof progress.percent === 'number' && !stream) showProgress(progress);
      // An ended run keeps the last progress this page saw; one never seen live has none.
      progressRow.hidden = !progress && !run && !bar.hasAttribute('value');

      const buttons = [];
      if (run && app.config.allow_cancelling_runs && !run.stopping) {
        buttons.push(h('button', { type: 'button', class: 'danger', id: 'cancel-run', text: 'Cancel run', onclick: cancel }));
      }
      if (job && app.config.allow_managing_jobs) buttons.push(...jobButtons(job, message, load));
      actions.replaceChildren(...buttons);

      const rows = [];
      if (record) {
        for (const a of record.attempts) rows.push([a.number, a.state, ms(a.duration_ms), a.error || '']);
      } else if (job) {
        for (const e of job.errors) rows.push([e.attempt, 'failed', time(e.at_ms), e.error]);
      } else if (run) {
        rows.push([run.attempt, run.state, ms(run.elapsed_ms), '']);
      }
      attempts.replaceChildren(h('div', { class: 'scroll' }, h('table', { id: 'attempts' },
        h('thead', {}, h('tr', {}, h('th', { text: 'Attempt' }), h('th', { text: 'State' }),
          h('th', { text: record || !job ? 'Duration' : 'At' }), h('th', { text: 'Error' }))),
        h('tbody', {}, rows.length
          ? rows.map(([n, s, d, e]) => h('tr', {}, h('td', { class: 'num', text: n }), h('td', {}, badge(s)),
            h('td', { text: d }), h('td', { class: 'wrap error', text: e })))
          : h('tr', {}, h('td', { colspan: 4, class: 'empty', text: 'No attempt has ended yet.' }))))));
      if (detail.payload !== null) payloadBox.textContent = json(detail.payload);
      else if (run || job) payloadBox.textContent = 'no payload';
      else if (!payloadBox.textContent) payloadBox.textContent = 'not kept: an in-process run forgets its payload when it ends';
      if (run && LIVE_RUN.includes(run.state)) follow();
      else if (!stream && !ended) logState.textContent = 'the run is not live: messages are not kept';
    }

    async function load() {
      try {
        render(await get(`runs/${enc(id)}/detail`));
      } catch (err) {
        notice(message, err.kind === 'run_not_found' ? 'No live or remembered run, and no stored job, has this id.' : err.message, true);
      }
    }

    async function cancel() {
      if (!(await confirmAction(`Cancel run ${id}?`, 'Cancel run'))) return;
      try {
        await call('DELETE', `runs/${enc(id)}`);
        notice(message, 'Cancelling: the run stops at its next await.');
        load();
      } catch (err) {
        notice(message, err.message, true);
      }
    }

    let reloading = false;
    function update(snapshot) {
      if (!lastDetail || reloading) return;
      // Live: its info comes with every snapshot. Starting, ending, or a stored job not
      // yet finished: load what there is now.
      const run = snapshot.runs.find((r) => r.id === id);
      const job = lastDetail.job;
      if (run && lastDetail.run) {
        render(Object.assign({}, lastDetail, { run }));
      } else if (run || lastDetail.run || (job && !FINISHED.includes(job.state))) {
        reloading = true;
        load().finally(() => { reloading = false; });
      }
    }

    load();
    const el = h('div', {},
      h('p', {}, h('a', { href: '#/', text: '← Overview' })),
      title,
      h('section', { 'aria-labelledby': 'run-title' },
        h('h2', { id: 'run-title', class: 'visually-hidden', text: 'State' }),
        facts,
        progressRow,
        actions,
        message),
      h('section', { 'aria-labelledby': 'log-title' },
        h('div', { class: 'row' }, h('h2', { id: 'log-title', text: 'Messages' }), pause, logState, heldNote),
        log),
      h('div', { class: 'grid' },
        h('section', { 'aria-labelledby': 'attempts-title' }, h('h2', { id: 'attempts-title', text: 'Attempts and errors' }), attempts),
        h('section', { 'aria-labelledby': 'payload-title' },
          h('div', { class: 'row' }, h('h2', { id: 'payload-title', text: 'Payload' }), payloadToggle), payloadBox)));
    return {
      el,
      update,
      destroy: () => {
        if (stream) stream.close();
      },
    };
  }

  /** The retry, cancel and delete buttons a stored job in `job.state` allows. */
  function jobButtons(job, message, after) {
    const act = (label, method, path, question, cls) => h('button', {
      type: 'button', class: `small ${cls || ''}`, text: label, dataset: { action: label.toLowerCase() },
      onclick: async () => {
        if (!(await confirmAction(question, label))) return;
        try {
          await call(method, path);
          notice(message, `${label}: done for job ${job.id}.`);
        } catch (err) {
          notice(message, err.message, true);
        }
        after();
      },
    });
    const buttons = [];
    const id = enc(job.id);
    if (job.state === 'discarded' || job.state === 'cancelled') {
      buttons.push(act('Retry', 'POST', `jobs/${id}/retry`, `Retry job ${job.id} (${job.worker}) with one more attempt?`));
    }
    if (WAITING.includes(job.state) || job.state === 'running') {
      buttons.push(act('Cancel', 'POST', `jobs/${id}/cancel`, `Cancel job ${job.id} (${job.worker})?`, 'danger'));
    }
    if (job.state !== 'running') {
      buttons.push(act('Delete', 'DELETE', `jobs/${id}`, `Delete job ${job.id} (${job.worker})? This cannot be undone.`, 'danger'));
    }
    return buttons;
  }

  function queueView(params) {
    const filter = {
      state: params.get('state') || '',
      worker: params.get('worker') || '',
      search: params.get('search') || '',
      before: params.get('before') || '',
    };
    const tabs = h('div', { class: 'tabs', role: 'list', id: 'state-tabs' });
    const worker = h('select', { id: 'filter-worker', name: 'worker' }, h('option', { value: '', text: 'every worker' }));
    const search = h('input', { id: 'filter-search', name: 'search', type: 'search', value: filter.search, placeholder: 'text in the payload' });
    const body = h('tbody');
    const message = h('div');
    const more = h('p');
    let counts = '';
    let loading = null;
    let rendered = new Map();

    function query(overrides) {
      const next = Object.assign({}, filter, overrides);
      const q = new URLSearchParams();
      for (const key of ['state', 'worker', 'search', 'before']) if (next[key]) q.set(key, next[key]);
      const text = q.toString();
      return `#/queue${text ? `?${text}` : ''}`;
    }

    function drawTabs(jobs) {
      const total = (states) => (jobs || [])
        .filter((c) => (!filter.worker || c.worker === filter.worker) && states.includes(c.state))
        .reduce((sum, c) => sum + c.count, 0);
      const tab = (state, label) => h('a', {
        href: query({ state, before: '' }), role: 'listitem', 'aria-current': filter.state === state ? 'true' : 'false',
        dataset: { state: state || 'all' },
      }, label, h('span', { class: 'count', text: total(state ? state.split(',') : JOB_STATES) }));
      tabs.replaceChildren(tab('', 'all'), ...JOB_STATES.map((s) => tab(s, s === 'discarded' ? 'discarded (failed)' : s)));
    }

    function listQuery(limit, before) {
      const q = new URLSearchParams();
      if (filter.state) q.set('state', filter.state);
      if (filter.worker) q.set('worker', filter.worker);
      if (filter.search) q.set('search', filter.search);
      q.set('limit', String(limit));
      if (before) q.set('before', before);
      return `jobs?${q}`;
    }

    async function load() {
      if (loading) return loading;
      loading = (async () => {
        try {
          const page = await get(listQuery(50, filter.before));
          // Rows of unchanged jobs are kept, so a button is not swapped under the pointer.
          const next = new Map();
          const list = page.jobs.map((job) => {
            const key = JSON.stringify([job.state, job.attempt, job.errors.length, job.run_at_ms]);
            const kept = rendered.get(job.id);
            const entry = kept && kept.key === key ? kept : { key, row: row(job) };
            next.set(job.id, entry);
            return entry.row;
          });
          rendered = next;
          if (!list.length) list.push(h('tr', {}, h('td', { colspan: 7, class: 'empty', text: 'No stored job matches.' })));
          if (list.length !== body.children.length || list.some((r, i) => body.children[i] !== r)) body.replaceChildren(...list);
          more.replaceChildren(
            filter.before ? h('a', { href: query({ before: '' }), text: '← Newest' }) : '',
            filter.before && page.next ? ' · ' : '',
            page.next ? h('a', { href: query({ before: page.next }), text: 'Older →' }) : '');
        } catch (err) {
          notice(message, err.message, true);
        } finally {
          loading = null;
        }
      })();
      return loading;
    }

    function row(job) {
      const last = job.errors.length ? job.errors[job.errors.length - 1].error : '';
      return h('tr', { dataset: { job: job.id, state: job.state } },
        h('td', { class: 'mono' }, h('a', { href: `#/runs/${enc(job.id)}`, text: short(job.id), title: job.id })),
        h('td', { text: job.worker }),
        h('td', {}, badge(job.state)),
        h('td', { class: 'num', dataset: { col: 'attempt' }, text: `${job.attempt}/${maxAttempts(job.max_attempts)}` }),
        h('td', { text: time(job.run_at_ms) }),
        h('td', { class: 'wrap error', text: last }),
        h('td', {}, app.config.allow_managing_jobs ? h('div', { class: 'actions' }, jobButtons(job, message, load)) : null));
    }

    async function bulk(label, action, applies) {
      // Counted for the confirmation, up to 10,000; the server acts on them all.
      let count = 0;
      let before = '';
      try {
        do {
          // eslint-disable-next-line no-await-in-loop
          const page = await get(listQuery(1000, before));
          count += page.jobs.filter((j) => applies(j.state)).length;
          before = page.next;
        } while (before && count < 10000);
      } catch (err) {
        notice(message, err.message, true);
        return;
      }
      if (!count) {
        notice(message, `No job matching this filter can be ${label.toLowerCase()}d.`);
        return;
      }
      const shown = before ? `${count}+` : `${count}`;
      const which = [filter.state || 'any state', filter.worker || 'every worker', filter.search ? `payload containing “${filter.search}”` : null].filter(Boolean).join(', ');
      if (!(await confirmAction(`${label} ${shown} job(s) matching ${which}?`, `${label} ${shown}`))) return;
      // One request: the server acts on every job the filter matches, page by page.
      const q = new URLSearchParams();
      if (filter.state) q.set('state', filter.state);
      if (filter.worker) q.set('worker', filter.worker);
      if (filter.search) q.set('search', filter.search);
      try {
        const result = await call('POST', `jobs/${action}?${q}`);
        const skipped = result.matched - result.changed;
        notice(message, `${label}: ${result.changed} done${skipped ? ` (${skipped} matching could not be)` : ''}.`, false);
      } catch (err) {
        notice(message, err.message, true);
      }
      load();
    }

    const bulkBar = app.config.allow_managing_jobs
      ? h('div', { class: 'actions', id: 'bulk' },
        h('button', { type: 'button', class: 'small', text: 'Retry all matching', onclick: () => bulk('Retry', 'retry', (s) => s === 'discarded' || s === 'cancelled') }),
        h('button', { type: 'button', class: 'small danger', text: 'Cancel all matching', onclick: () => bulk('Cancel', 'cancel', (s) => WAITING.includes(s) || s === 'running') }),
        h('button', { type: 'button', class: 'small danger', text: 'Delete all matching', onclick: () => bulk('Delete', 'delete', (s) => s !== 'running') }))
      : null;

    function update(snapshot) {
      if (worker.options.length !== snapshot.workers.length + 1) {
        fillWorkers(worker, snapshot.workers, true);
        worker.value = filter.worker;
      }
      const now = JSON.stringify(snapshot.jobs);
      if (now !== counts) {
        counts = now;
        drawTabs(snapshot.jobs);
        load();
      }
    }

    const el = h('div', {},
      h('h1', { text: 'Queue' }),
      h('section', { 'aria-labelledby': 'jobs-title' },
        h('h2', { id: 'jobs-title', text: 'Stored jobs' }),
        tabs,
        h('form', {
          class: 'row',
          id: 'filter',
          role: 'search',
          onsubmit: (event) => {
            event.preventDefault();
            location.hash = query({ worker: worker.value, search: search.value.trim(), before: '' });
          },
        },
        h('label', {}, 'Worker', worker),
        h('label', { class: 'grow' }, 'Search', search),
        h('button', { type: 'submit', class: 'primary', text: 'Filter' }),
        bulkBar),
        message,
        h('div', { class: 'scroll' }, h('table', { id: 'jobs' },
          h('thead', {}, h('tr', {}, h('th', { text: 'Job' }), h('th', { text: 'Worker' }), h('th', { text: 'State' }),
            h('th', { class: 'num', text: 'Attempt' }), h('th', { text: 'Run at' }), h('th', { text: 'Last error' }), h('th', { text: '' }))),
          body)),
        more));
    drawTabs(null);
    if (app.overview) update(app.overview);
    else {
      get('').then((list) => {
        fillWorkers(worker, list.workers, true);
        worker.value = filter.worker;
      }).catch(() => {});
      load();
    }
    return { el, update, search };
  }

  function schedulesView() {
    const cronBody = h('tbody');
    const nodesBody = h('tbody');
    const message = h('div');
    let last = 0;

    async function load() {
      last = Date.now();
      try {
        const [cron, nodes] = await Promise.all([get('cron'), app.config.queue ? get('nodes') : Promise.resolve(null)]);
        cronBody.replaceChildren(...(cron.length ? cron.map((c) => h('tr', { dataset: { worker: c.worker } },
          h('td', { text: c.worker }),
          h('td', { class: 'mono', text: c.expr }),
          h('td', { text: `${time(c.last_tick_ms)} (${ago(c.last_tick_ms)})` }),
          h('td', { text: `${time(c.next_tick_ms)} (${ago(c.next_tick_ms)})` }),
          h('td', {}, c.last_job ? [h('a', { href: `#/runs/${enc(c.last_job.id)}`, class: 'mono', text: short(c.last_job.id) }), ' ', badge(c.last_job.state)] : '–')))
          : [h('tr', {}, h('td', { colspan: 5, class: 'empty', text: 'No worker has a cron schedule.' }))]));
        if (nodes) {
          nodesBody.replaceChildren(...(nodes.length ? nodes.map((n) => h('tr', {},
            h('td', { class: 'mono', text: short(n.id), title: n.id }),
            h('td', { text: `${n.host} (pid ${n.pid})` }),
            h('td', {}, badge(n.status)),
            h('td', { class: 'num', text: n.stopped_at_ms ? 'stopped' : ago(n.last_beat_ms) }),
            h('td', {}, h('meter', { min: 0, max: n.concurrency || 1, value: n.running, title: `${n.running} of ${n.concurrency}` }), ` ${n.running}/${n.concurrency}`),
            h('td', { class: 'num', text: n.memory_pool ? `${bytes(n.memory_used)} of ${bytes(n.memory_pool)}` : '–' }),
            h('td', { class: 'wrap', text: (n.workers || []).join(', ') })))
            : [h('tr', {}, h('td', { colspan: 7, class: 'empty', text: 'No node has registered.' }))]));
        }
      } catch (err) {
        notice(message, err.message, true);
      }
    }

    load();
    const el = h('div', {},
      h('h1', { text: 'Schedules and nodes' }),
      message,
      h('section', { 'aria-labelledby': 'cron-title' },
        h('h2', { id: 'cron-title', text: 'Cron schedules' }),
        h('div', { class: 'scroll' }, h('table', { id: 'cron' },
          h('thead', {}, h('tr', {}, h('th', { text: 'Worker' }), h('th', { text: 'Schedule (UTC)' }), h('th', { text: 'Last tick' }),
            h('th', { text: 'Next tick' }), h('th', { text: 'Newest job' }))),
          cronBody))),
      app.config.queue
        ? h('section', { 'aria-labelledby': 'nodes-title' },
          h('h2', { id: 'nodes-title', text: 'Nodes' }),
          h('div', { class: 'scroll' }, h('table', { id: 'nodes' },
            h('thead', {}, h('tr', {}, h('th', { text: 'Node' }), h('th', { text: 'Host' }), h('th', { text: 'Status' }),
              h('th', { class: 'num', text: 'Heartbeat' }), h('th', { text: 'Load' }), h('th', { class: 'num', text: 'Memory' }), h('th', { text: 'Workers' }))),
            nodesBody)))
        : null);
    return {
      el,
      update: () => {
        if (Date.now() - last >= 2000) load();
      },
    };
  }

  // ---- routing: the view and its filters live in the URL's fragment ----

  function route() {
    if (app.view && app.view.destroy) app.view.destroy();
    const hash = location.hash || '#/';
    const [path, queryText] = hash.slice(1).split('?');
    const params = new URLSearchParams(queryText || '');
    let section = 'overview';
    let view;
    const runMatch = /^\/runs\/(.+)$/.exec(path);
    if (runMatch) {
      view = runView(decodeURIComponent(runMatch[1]));
    } else if (path === '/queue' && app.config.queue) {
      section = 'queue';
      view = queueView(params);
    } else if (path === '/schedules') {
      section = 'schedules';
      view = schedulesView();
    } else {
      view = overviewView();
    }
    app.view = view;
    for (const link of document.querySelectorAll('[data-nav]')) {
      if (link.dataset.nav === section) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    const main = document.getElementById('main');
    main.replaceChildren(view.el);
    document.title = `${runMatch ? 'Run' : section[0].toUpperCase() + section.slice(1)} · Workers`;
  }

  // ---- theme: the system's, unless the toggle chose one ----

  function theme() {
    const root = document.documentElement;
    const button = document.getElementById('theme');
    const dark = () => root.dataset.theme === 'dark'
      || (!root.dataset.theme && window.matchMedia('(prefers-color-scheme: dark)').matches);
    const label = () => {
      button.textContent = dark() ? 'Light' : 'Dark';
      button.setAttribute('aria-label', dark() ? 'Switch to light mode' : 'Switch to dark mode');
    };
    try {
      const saved = localStorage.getItem('rustf-workers-theme');
      if (saved === 'light' || saved === 'dark') root.dataset.theme = saved;
    } catch (err) {
      // Storage refused (a private window): the toggle still works for this page.
    }
    button.addEventListener('click', () => {
      root.dataset.theme = dark() ? 'light' : 'dark';
      try {
        localStorage.setItem('rustf-workers-theme', root.dataset.theme);
      } catch (err) {
        // As above.
      }
      label();
    });
    window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', label);
    label();
  }

  // ---- keyboard: `/` searches the queue, `g o` / `g q` / `g s` go to a section ----

  function keys() {
    let pending = false;
    document.addEventListener('keydown', (event) => {
      const target = event.target;
      if (event.ctrlKey || event.metaKey || event.altKey || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) return;
      if (event.key === '/' && app.view && app.view.search) {
        event.preventDefault();
        app.view.search.focus();
      } else if (event.key === 'g') {
        pending = true;
        setTimeout(() => { pending = false; }, 1000);
      } else if (pending) {
        pending = false;
        const to = { o: '#/', q: '#/queue', s: '#/schedules' }[event.key];
        if (to) location.hash = to;
      }
    });
  }

  async function start() {
    theme();
    keys();
    try {
      app.config = await get('ui/config');
    } catch (err) {
      setLive('offline', 'cannot reach the router');
    }
    document.querySelector('[data-nav="queue"]').hidden = !app.config.queue;
    window.addEventListener('hashchange', () => {
      route();
      document.getElementById('main').focus({ preventScroll: true });
    });
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) {
        disconnect();
        setLive('paused', 'paused while hidden');
      } else {
        connect();
      }
    });
    route();
    connect();
  }

  start();
})();
