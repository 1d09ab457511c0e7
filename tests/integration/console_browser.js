// console_browser.js -- drives the console's page in headless Chromium for
// tests/integration/test_console.sh, over the DevTools protocol on a pipe
// (--remote-debugging-pipe: no port, no WebSocket, no package), and prints
// what the page shows as one JSON line.
//
//   node console_browser.js overview URL
//   node console_browser.js overview-until-event URL DRAWN_FILE
//   node console_browser.js user URL USER
//   node console_browser.js job URL JOB_ID
//   node console_browser.js retry URL DEAD_ENTRY [TOKEN]
//   node console_browser.js retry-reason URL REASON [TOKEN]
//   node console_browser.js screenshots URL DIR USER JOB_ID
//
// Every command also reports what would be wrong whatever the page shows:
// JavaScript dialogs (an injected alert()), exceptions, violations of the
// page's Content-Security-Policy, and requests to any other origin (the
// browser's resolver maps every name but the console's address to nothing,
// so the page must work offline). Chromium is started for the command and
// stopped by its PID.
'use strict';

const {spawn} = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const STEP_TIMEOUT_MS = 20000;
// The overview refreshes every 5 s; the events it waits for come from
// three jobs the test enqueues meanwhile, on a loaded machine.
const REFRESH_WAIT_MS = 60000;
const COMMAND_TIMEOUT_MS = 90000;

class Browser {
  constructor() {
    this.profile = fs.mkdtempSync(path.join(os.tmpdir(), 'console-browser-'));
    this.proc = spawn('chromium', [
      '--headless', '--disable-gpu', '--no-sandbox', '--remote-debugging-pipe',
      '--user-data-dir=' + this.profile, '--no-first-run', '--no-default-browser-check',
      '--disable-extensions', '--disable-background-networking', '--disable-sync',
      '--disable-component-update', '--disable-default-apps', '--mute-audio',
      '--hide-scrollbars', '--password-store=basic',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      'about:blank',
    ], {stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe']});
    this.nextId = 1;
    this.pending = new Map();
    this.handlers = [];
    this.buffer = Buffer.alloc(0);
    this.proc.stdio[4].on('data', chunk => this.receive(chunk));
    this.exited = new Promise(resolve => this.proc.on('exit', resolve));
  }

  receive(chunk) {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    let end;
    while ((end = this.buffer.indexOf(0)) >= 0) {
      const message = JSON.parse(this.buffer.subarray(0, end).toString('utf8'));
      this.buffer = this.buffer.subarray(end + 1);
      if (message.id && this.pending.has(message.id)) {
        const {resolve, reject} = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (message.error) reject(new Error(message.error.message));
        else resolve(message.result);
      } else if (message.method) {
        for (const handler of this.handlers) handler(message);
      }
    }
  }

  send(method, params, sessionId) {
    const id = this.nextId++;
    const message = {id, method, params: params || {}};
    if (sessionId) message.sessionId = sessionId;
    this.proc.stdio[3].write(JSON.stringify(message) + '\0');
    return new Promise((resolve, reject) => {
      this.pending.set(id, {resolve, reject});
      setTimeout(() => {
        if (this.pending.delete(id)) reject(new Error(method + ': no answer in time'));
      }, STEP_TIMEOUT_MS);
    });
  }

  // Stops Chromium at once, removes its profile and exits 1.
  kill() {
    this.proc.kill('SIGKILL');
    this.exited.then(() => {
      fs.rmSync(this.profile, {recursive: true, force: true});
      process.exit(1);
    });
  }

  async close() {
    try {
      await Promise.race([this.send('Browser.close'), new Promise(r => setTimeout(r, 3000))]);
    } catch (e) {
      // it may be gone already
    }
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
    fs.rmSync(this.profile, {recursive: true, force: true});
  }
}

class Page {
  constructor(browser, origin) {
    this.browser = browser;
    this.origin = origin;
    this.dialogs = [];
    this.exceptions = [];
    this.csp = [];
    this.foreign = [];
  }

  async open(width, height) {
    const {targetId} = await this.browser.send('Target.createTarget', {url: 'about:blank'});
    const {sessionId} = await this.browser.send('Target.attachToTarget', {targetId, flatten: true});
    this.session = sessionId;
    this.browser.handlers.push(m => {
      if (m.sessionId !== sessionId) return;
      if (m.method === 'Page.javascriptDialogOpening') {
        this.dialogs.push(m.params.type + ': ' + m.params.message);
        this.send('Page.handleJavaScriptDialog', {accept: false}).catch(() => {});
      } else if (m.method === 'Runtime.exceptionThrown') {
        const d = m.params.exceptionDetails;
        this.exceptions.push((d.exception && d.exception.description) || d.text);
      } else if (m.method === 'Log.entryAdded') {
        if (/Content Security Policy/i.test(m.params.entry.text)) this.csp.push(m.params.entry.text);
      } else if (m.method === 'Network.requestWillBeSent') {
        const url = m.params.request.url;
        if (!url.startsWith(this.origin) && !url.startsWith('data:') && url !== 'about:blank')
          this.foreign.push(url);
      }
    });
    for (const domain of ['Page', 'Runtime', 'Log', 'Network']) await this.send(domain + '.enable');
    await this.send('Emulation.setDeviceMetricsOverride',
      {width: width || 1280, height: height || 800, deviceScaleFactor: 1, mobile: false});
  }

  send(method, params) {
    return this.browser.send(method, params, this.session);
  }

  async eval(expression) {
    const r = await this.send('Runtime.evaluate', {expression, returnByValue: true, awaitPromise: true});
    if (r.exceptionDetails) throw new Error('evaluating ' + expression + ': ' + r.exceptionDetails.text);
    return r.result.value;
  }

  // Polls `expression` until it is truthy (at most timeoutMs); returns its value.
  async until(expression, what, timeoutMs) {
    const deadline = Date.now() + (timeoutMs || STEP_TIMEOUT_MS);
    for (;;) {
      let value = null;
      try {
        value = await this.eval(expression);
      } catch (e) {
        // the document may be between two loads
      }
      if (value) return value;
      if (Date.now() > deadline) throw new Error('timed out waiting for ' + (what || expression));
      await new Promise(r => setTimeout(r, 100));
    }
  }

  loads() {
    return this.eval('Number(document.body && document.body.dataset.loads || 0)');
  }

  // Goes to `hash` (first load: the whole page) and waits until the view
  // has been drawn after it.
  async show(hash, view) {
    const before = this.session && this.loaded ? await this.loads() : 0;
    if (!this.loaded) {
      await this.send('Page.navigate', {url: this.origin + '/' + hash});
      this.loaded = true;
    } else {
      await this.eval('location.hash = ' + JSON.stringify(hash) + '; true');
    }
    await this.until('document.body && document.body.dataset.view === ' + JSON.stringify(view) +
      ' && document.body.dataset.state !== "loading" && Number(document.body.dataset.loads || 0) > ' +
      before, 'the ' + view + ' view');
    const state = await this.eval('document.body.dataset.state');
    if (state !== 'ready')
      throw new Error('the ' + view + ' view failed: ' +
        await this.eval('document.getElementById("status").textContent'));
  }

  async setToken(token) {
    await this.eval('(() => { const i = document.getElementById("token"); i.value = ' +
      JSON.stringify(token) + '; document.getElementById("token-form").requestSubmit(); return true; })()');
  }

  // Clicks twice (the page's buttons ask for a second click) and waits
  // for the status line to say something new.
  async act(selector) {
    await this.eval('document.getElementById("status").textContent = ""; ' +
      'document.getElementById("status").dataset.kind = ""; true');
    const found = await this.eval('(() => { const b = document.querySelector(' + JSON.stringify(selector) +
      '); if (!b) return false; b.click(); b.click(); return true; })()');
    if (!found) throw new Error('no ' + selector + ' on the page');
    await this.until('["ok", "error"].includes(document.getElementById("status").dataset.kind)',
      'an answer to ' + selector);
    return {
      kind: await this.eval('document.getElementById("status").dataset.kind'),
      text: await this.eval('document.getElementById("status").textContent'),
    };
  }

  async screenshot(file) {
    const {data} = await this.send('Page.captureScreenshot', {format: 'png', captureBeyondViewport: false});
    fs.writeFileSync(file, Buffer.from(data, 'base64'));
  }

  report() {
    return {dialogs: this.dialogs, exceptions: this.exceptions, csp: this.csp, foreign: this.foreign};
  }
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

const commands = {
  async overview(page) {
    await page.show('#/overview', 'overview');
    return page.eval(`(() => {
      const streams = {};
      for (const tr of document.querySelectorAll('tr[data-stream]')) {
        const cell = k => tr.querySelector('td[data-k="' + k + '"]').textContent;
        streams[tr.dataset.stream] = {pending: cell('pending'), length: cell('length'),
          oldest: cell('oldest_pending'), consumers: [...tr.querySelectorAll('[data-consumer]')].map(x => x.textContent)};
      }
      const reasons = {};
      for (const tr of document.querySelectorAll('tr[data-reason]'))
        reasons[tr.dataset.reason] = tr.querySelector('td[data-k="count"]').textContent;
      const workers = [...document.querySelectorAll('[data-worker]')].map(w => ({url: w.dataset.worker,
        ready: (w.querySelector('[data-k="ready"]') || {}).textContent || 'unreachable'}));
      return {streams, reasons, workers, text: document.getElementById('main').innerText};
    })()`);
  },

  // Opens the overview, writes `drawnFile` once it is drawn, and waits for
  // the page's own refresh to show an event: what the rows were before,
  // and the events' rows once one is shown.
  async 'overview-until-event'(page, drawnFile) {
    await page.show('#/overview', 'overview');
    const before = await page.eval('document.querySelectorAll("tr[data-event]").length');
    fs.writeFileSync(drawnFile, 'drawn\n');
    await page.until('document.querySelectorAll("tr[data-event]").length >= 2', 'two events on the overview',
      REFRESH_WAIT_MS);
    const events = await page.eval(`[...document.querySelectorAll('tr[data-event]')].map(tr =>
      ['type', 'user', 'job', 'details', 'total', 'held'].map(k =>
        tr.querySelector('td[data-k="' + k + '"]').textContent).join(' ')).join(' ')`);
    return {before, events, loads: await page.loads()};
  },

  async user(page, user) {
    await page.show('#/user/' + encodeURIComponent(user), 'user');
    const shown = await page.eval(`(() => {
      const figures = {};
      for (const dd of document.querySelectorAll('dl.figures dd[data-k]')) figures[dd.dataset.k] = dd.textContent;
      const history = [...document.querySelectorAll('tr[data-job]')].map(tr => ({job: tr.dataset.job,
        type: tr.querySelector('td[data-k="type"]').textContent,
        delta: tr.querySelector('td[data-k="delta"]').textContent,
        tool: tr.querySelector('td[data-k="tool"]').textContent}));
      const events = [...document.querySelectorAll('tr[data-event]')].map(tr =>
        ['type', 'details', 'job'].map(k => tr.querySelector('td[data-k="' + k + '"]').textContent).join(' ')).join(' ');
      return {figures, history, events, scripts: document.scripts.length,
        text: document.getElementById('main').innerText};
    })()`);
    // The detail of the newest line, as a support person clicks it.
    if (shown.history.length > 0) {
      const job = shown.history[0].job;
      await page.eval('document.querySelector(\'tr[data-job]\').click(); true');
      await page.until('document.getElementById("job-detail").dataset.job === ' + JSON.stringify(job), 'the detail of ' + job);
      shown.detail = await page.eval('document.getElementById("job-detail").innerText');
    }
    return shown;
  },

  async job(page, id) {
    await page.show('#/job/' + encodeURIComponent(id), 'job');
    return page.eval(`(() => {
      const kv = {};
      for (const dd of document.querySelectorAll('dl.kv dd[data-k]')) if (!(dd.dataset.k in kv)) kv[dd.dataset.k] = dd.textContent;
      return {kv, text: document.getElementById('main').innerText};
    })()`);
  },

  async retry(page, entry, token) {
    await page.show('#/dead', 'dead');
    if (token) await page.setToken(token);
    const answer = await page.act('tr[data-dead="' + entry + '"] button[data-act="retry"]');
    await page.until('document.body.dataset.state === "ready"', 'the page drawn again');
    answer.still_listed = await page.eval('!!document.querySelector(\'tr[data-dead="' + entry + '"]\')');
    return answer;
  },

  async 'retry-reason'(page, reason, token) {
    await page.show('#/dead?reason=' + encodeURIComponent(reason), 'dead');
    if (token) await page.setToken(token);
    const answer = await page.act('button[data-act="retry-reason"]');
    await page.until('document.body.dataset.state === "ready"', 'the page drawn again');
    answer.listed = await page.eval('document.querySelectorAll("tr[data-dead]").length');
    return answer;
  },

  // One picture per page, for the README; small: 1100 wide at scale 1, as
  // tall as the page needs to show what it is for.
  async screenshots(page, dir, user, job) {
    const shots = [
      ['#/overview', 'overview', 'overview.png', 1000],
      ['#/dead', 'dead', 'dead-letters.png', 420],
      ['#/user/' + encodeURIComponent(user), 'user', 'user.png', 1500],
      ['#/job/' + encodeURIComponent(job), 'job', 'job.png', 1000],
      ['#/catalog', 'catalog', 'catalog.png', 360],
    ];
    const written = [];
    for (const [hash, view, file, height] of shots) {
      await page.send('Emulation.setDeviceMetricsOverride',
        {width: 1100, height, deviceScaleFactor: 1, mobile: false});
      await page.show(hash, view);
      if (view === 'user') {
        await page.eval('document.querySelector(\'tr[data-job]\').click(); true');
        await page.until('document.getElementById("job-detail").dataset.job', 'the detail of a job');
      }
      if (view === 'dead')
        await page.eval('for (const d of document.querySelectorAll("details")) { d.open = true; break; } true');
      await page.screenshot(path.join(dir, file));
      written.push(file);
    }
    return {written};
  },
};

async function main() {
  const [name, url, ...args] = process.argv.slice(2);
  if (!commands[name] || !url) {
    process.stderr.write('usage: node console_browser.js ' + Object.keys(commands).join('|') + ' URL ARGS...\n');
    process.exit(2);
  }
  const browser = new Browser();
  const watchdog = setTimeout(() => {
    process.stderr.write('console_browser: ' + name + ' took over ' + COMMAND_TIMEOUT_MS + ' ms\n');
    browser.kill();
  }, COMMAND_TIMEOUT_MS);
  process.on('SIGTERM', () => browser.kill());
  let status = 0;
  try {
    const page = new Page(browser, url.replace(/\/$/, ''));
    await page.open(name === 'screenshots' ? 1100 : 1280, name === 'screenshots' ? 720 : 800);
    const shown = await commands[name](page, ...args);
    process.stdout.write(JSON.stringify(Object.assign({shown}, page.report())) + '\n');
  } catch (e) {
    process.stderr.write('console_browser: ' + name + ': ' + e.message + '\n');
    status = 1;
  } finally {
    clearTimeout(watchdog);
    await browser.close();
  }
  process.exit(status);
}

main();
