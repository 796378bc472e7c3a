// Shared pieces of the end-to-end scripts: the release binary started on a loopback port with a
// fresh SQLite data directory, its CLI, a small API client, headless Chromium (Debian's, driven
// by playwright-core), polling without fixed sleeps, and a tiny test runner whose closing line
// is `N passed, N failed` (what scripts/test.sh counts).

import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, '../..');
export const ARTIFACTS = resolve(ROOT, process.env.SWITCHBOARD_E2E_ARTIFACTS ?? 'test-artifacts');
export const SCREENSHOTS = join(ARTIFACTS, 'screenshots');

export function binaryPath() {
  if (process.env.SWITCHBOARD_BIN) return process.env.SWITCHBOARD_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? '/var/tmp/switchboard-target';
  for (const p of [join(target, 'release/switchboard'), join(ROOT, 'target/release/switchboard')]) {
    if (existsSync(p)) return p;
  }
  throw new Error('no release binary: run `cargo build --release` first (or set SWITCHBOARD_BIN)');
}

export function chromiumPath() {
  const p = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(p)) throw new Error(`${p} is missing: apt-get install -y chromium (scripts/test.sh does it)`);
  return p;
}

export async function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` until it returns a truthy value (or stops throwing); its value. */
export async function eventually(fn, { timeout = 10_000, interval = 100, what = 'condition' } = {}) {
  const until = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = new Error(`${what}: got ${JSON.stringify(v)}`);
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}: ${last?.message ?? last}`);
    await sleep(interval);
  }
}

// -------------------------------------------------------------------------------------------
// The server

export class Server {
  constructor({ dataDir, port, bin = binaryPath(), logName = 'server' } = {}) {
    this.bin = bin;
    this.dataDir = dataDir ?? mkdtempSync(join(tmpdir(), 'switchboard-e2e-'));
    this.ownsDir = !dataDir;
    this.port = port ?? (process.env.SWITCHBOARD_E2E_PORT ? Number(process.env.SWITCHBOARD_E2E_PORT) : undefined);
    this.logName = logName;
    this.proc = null;
    this.starts = 0;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Where the browser loads the dashboard: the server itself, or (while working on the
   *  dashboard) a Vite dev server proxying to it (SWITCHBOARD_E2E_WEB_URL with SWITCHBOARD_E2E_PORT). */
  get webUrl() {
    return process.env.SWITCHBOARD_E2E_WEB_URL ?? this.url;
  }

  env() {
    return {
      ...process.env,
      SWITCHBOARD_DATA_DIR: this.dataDir,
      SWITCHBOARD_BIND: `127.0.0.1:${this.port}`,
      SWITCHBOARD_LOG: process.env.SWITCHBOARD_E2E_LOG ?? 'warn',
      // The mailboxes these tests configure are on loopback.
      SWITCHBOARD_ALLOWED_INTERNAL_HOSTS: '127.0.0.0/8,::1',
      DATABASE_URL: '',
      REDIS_URL: '',
    };
  }

  async start() {
    if (!this.port) this.port = await freePort();
    mkdirSync(ARTIFACTS, { recursive: true });
    const log = createWriteStream(join(ARTIFACTS, `${this.logName}.log`), { flags: this.starts ? 'a' : 'w' });
    this.starts++;
    const env = this.env();
    delete env.DATABASE_URL;
    delete env.REDIS_URL;
    this.proc = spawn(this.bin, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout.pipe(log);
    this.proc.stderr.pipe(log);
    const proc = this.proc;
    const exited = new Promise((r) => proc.once('exit', (code) => r(code)));
    this.exited = exited;
    await eventually(
      async () => {
        if (proc.exitCode !== null) throw new Error(`the server exited with ${proc.exitCode}; see ${this.logName}.log`);
        const r = await fetch(this.url + '/readyz').catch(() => null);
        return r?.ok;
      },
      { timeout: 30_000, what: 'the server to be ready' },
    );
  }

  /** SIGTERM and wait for the process to end. */
  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    const p = this.proc;
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(t);
  }

  /** Kill without a goodbye (a crash). */
  async kill() {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  async cli(...args) {
    const env = this.env();
    delete env.DATABASE_URL;
    delete env.REDIS_URL;
    const { stdout } = await promisify(execFile)(this.bin, args, { env });
    return stdout;
  }

  /** `switchboard admin create` then `token create`: an API client for that admin. */
  async createAdmin(email, password, name) {
    await this.cli('admin', 'create', '--email', email, '--password', password, '--name', name);
    return this.tokenFor(email);
  }

  async tokenFor(email) {
    const out = await this.cli('token', 'create', '--email', email, '--name', 'e2e');
    const token = out.trim().split(/\s+/).pop();
    return new Api(this.url, token);
  }

  cleanup() {
    if (this.ownsDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export class Api {
  constructor(base, token) {
    this.base = base;
    this.token = token;
  }

  async call(method, path, body, expect) {
    const res = await fetch(this.base + '/api/v1' + path, {
      method,
      headers: { Authorization: `Bearer ${this.token}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (expect ? res.status !== expect : !res.ok) {
      throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
    }
    return data;
  }
  get(path) {
    return this.call('GET', path);
  }
  post(path, body, expect) {
    return this.call('POST', path, body ?? {}, expect);
  }
  patch(path, body) {
    return this.call('PATCH', path, body);
  }
  put(path, body) {
    return this.call('PUT', path, body);
  }
}

// -------------------------------------------------------------------------------------------
// The browser

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export async function launch() {
  return chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS, headless: true });
}

/** A browser context (its own cookies) signed in through the login form. */
export async function signedIn(browser, base, email, password, { viewport = { width: 1366, height: 800 }, initScript } = {}) {
  const context = await browser.newContext({ baseURL: base, viewport });
  if (initScript) await context.addInitScript(initScript);
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`[${email}] page error: ${e.message}`));
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
  return { context, page };
}

export async function shot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, name + '.png');
  await page.screenshot({ path });
  return path;
}

// -------------------------------------------------------------------------------------------
// A tiny runner: steps run in order; after a failure the remaining steps are skipped (they
// depend on the ones before). The last line is `N passed, N failed[, N skipped]`.

export class Runner {
  constructor(title) {
    this.title = title;
    this.steps = [];
  }
  step(name, fn) {
    this.steps.push({ name, fn });
  }
  async run({ after } = {}) {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    let broken = false;
    console.log(`# ${this.title}`);
    for (const s of this.steps) {
      if (broken) {
        skipped++;
        console.log(`skip - ${s.name}`);
        continue;
      }
      const t0 = Date.now();
      try {
        await s.fn();
        passed++;
        console.log(`ok - ${s.name} (${Date.now() - t0} ms)`);
      } catch (e) {
        failed++;
        broken = true;
        console.log(`not ok - ${s.name} (${Date.now() - t0} ms)`);
        console.log('  ' + String(e?.stack ?? e).split('\n').join('\n  '));
      }
    }
    if (after) {
      try {
        await after(failed > 0);
      } catch (e) {
        console.log('cleanup failed: ' + e);
      }
    }
    console.log(`e2e: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
    return failed === 0;
  }
}

// -------------------------------------------------------------------------------------------
// Accessibility: axe-core (from npm) run inside the page against WCAG 2.1 A and AA rules.

const AXE = new URL('./node_modules/axe-core/axe.min.js', import.meta.url);

/** The serious and critical WCAG violations on the page, as readable lines. */
export async function accessibilityProblems(page) {
  if (!(await page.evaluate(() => 'axe' in window))) {
    // The dashboard's Content-Security-Policy refuses inline scripts, which is what addScriptTag adds; an evaluation
    // through the DevTools protocol is not subject to the page's policy, so the audit leaves the policy in force.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Runtime.evaluate', { expression: readFileSync(fileURLToPath(AXE), 'utf8') });
    await cdp.detach();
  }
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ') + ' — ' + n.failureSummary.split('\n').slice(1, 2).join(' ')) }));
  });
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.impact}: ${v.id} (${v.help})\n      ${v.nodes.join('\n      ')}`);
}

// -------------------------------------------------------------------------------------------
// The fakes of the Rust test suite (tests/common/fake_*.rs) run as example binaries (examples/fake_*.rs), driven by
// JSON lines: their first line says where they listen, then each command written to stdin gets one answer line.

/** The example binary `name` (built by `cargo build --examples`; `cargo test` builds them too), or `$envVar`. */
function examplePath(name, envVar) {
  if (process.env[envVar]) return process.env[envVar];
  const target = process.env.CARGO_TARGET_DIR ?? '/var/tmp/switchboard-target';
  for (const p of [join(target, `debug/examples/${name}`), join(target, `release/examples/${name}`)]) {
    if (existsSync(p)) return p;
  }
  throw new Error(`no ${name}: run \`cargo build --example ${name}\` first (\`cargo test\` builds it too)`);
}

class JsonLinesFake {
  /** Start `path`; resolves once it listens, with the fields of its first line on the instance. */
  static async spawn(fake, path, label) {
    fake.label = label;
    fake.proc = spawn(path, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    fake.waiting = [];
    let buffer = '';
    fake.proc.stdout.setEncoding('utf8');
    fake.proc.stdout.on('data', (chunk) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        fake.waiting.shift()?.(JSON.parse(line));
      }
    });
    const hello = await new Promise((ok) => fake.waiting.push(ok));
    Object.assign(fake, hello);
    return fake;
  }

  /** One command; its answer (an `error` answer throws). */
  async call(cmd) {
    const answer = new Promise((ok) => this.waiting.push(ok));
    this.proc.stdin.write(JSON.stringify(cmd) + '\n');
    const got = await answer;
    if (got.error) throw new Error(`${this.label}: ${got.error}`);
    return got;
  }

  stop() {
    this.proc?.stdin.end();
  }
}

/** The fake Mattermost (tests/common/fake_mattermost.rs): `url`, `bot_id`, `bot_token`. */
export class FakeMattermost extends JsonLinesFake {
  static start() {
    return JsonLinesFake.spawn(new FakeMattermost(), examplePath('fake_mattermost', 'SWITCHBOARD_FAKE_MATTERMOST'), 'fake Mattermost');
  }

  async user(username, first, last, email) {
    return (await this.call({ cmd: 'user', username, first, last, email })).id;
  }

  async dm(userId) {
    return (await this.call({ cmd: 'dm', user_id: userId })).channel_id;
  }

  async post(userId, channelId, message, rootId = '') {
    return (await this.call({ cmd: 'post', user_id: userId, channel_id: channelId, message, root_id: rootId })).post_id;
  }

  async botPosts() {
    return (await this.call({ cmd: 'bot_posts' })).posts;
  }
}

/** The fake Zalo (tests/common/fake_zalo.rs): `url` (its API and OAuth base URL), `app_id`, `app_secret`,
 *  `oa_secret_key`, `oa_id`, and a pair of tokens as Zalo's console gives them, `access_token` and `refresh_token`. */
export class FakeZalo extends JsonLinesFake {
  static start() {
    return JsonLinesFake.spawn(new FakeZalo(), examplePath('fake_zalo', 'SWITCHBOARD_FAKE_ZALO'), 'fake Zalo');
  }

  /** Serve `bytes` (a Buffer) at a URL of the fake; the URL. */
  async media(name, mime, bytes) {
    return (await this.call({ cmd: 'media', name, mime, base64: Buffer.from(bytes).toString('base64') })).url;
  }

  /** The event `user_send_{kind}` from `user` with `message` (`msg_id`, `text`, `attachments`…), as Zalo builds it. */
  async fromUser(kind, user, message) {
    return (await this.call({ cmd: 'from_user', kind, user, message })).body;
  }

  /** Any other event (`user_seen_message`, `follow`…): the envelope plus `fields`. */
  async event(eventName, fields) {
    return (await this.call({ cmd: 'event', event_name: eventName, fields })).body;
  }

  /** Deliver an event to `webhook` as Zalo does (signed; retried, on a schedule compressed 600×, until answered 200):
   *  the statuses of the attempts. */
  async deliver(webhook, body) {
    return (await this.call({ cmd: 'deliver', webhook, body, compress: 600 })).statuses;
  }

  /** What the OA sent, oldest first: `{message_id, token, body}`. */
  async sent() {
    return (await this.call({ cmd: 'sent' })).sent;
  }
}

/** A minimal SMTP server on a loopback port that keeps every message it is given (plain SMTP, no TLS, no auth):
 *  the mail the server sends in the browser tests (a portal reset link) is read from here, as a user reads mail.
 *  `messages` holds `{ from, to: [..], raw }` with `raw` the message as sent. */
export class SmtpSink {
  static async start() {
    const sink = new SmtpSink();
    sink.messages = [];
    sink.server = createServer((socket) => sink.#session(socket));
    await new Promise((res) => sink.server.listen(0, '127.0.0.1', res));
    sink.port = sink.server.address().port;
    return sink;
  }

  #session(socket) {
    socket.setEncoding('latin1');
    let buffer = '';
    let mail = null;
    let data = null; // the DATA lines while a message is being received
    const reply = (line) => socket.write(line + '\r\n');
    reply('220 sink.test ESMTP');
    socket.on('data', (chunk) => {
      buffer += chunk;
      let at;
      while ((at = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        if (data) {
          if (line === '.') {
            this.messages.push({ ...mail, raw: data.join('\r\n') });
            data = null;
            mail = null;
            reply('250 2.0.0 kept');
          } else {
            data.push(line.startsWith('..') ? line.slice(1) : line);
          }
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO' || verb === 'HELO') reply('250 sink.test');
        else if (verb === 'MAIL') { mail = { from: line.slice(10).trim(), to: [] }; reply('250 2.1.0 ok'); }
        else if (verb === 'RCPT') { mail?.to.push(line.slice(8).trim().replace(/^<|>$/g, '')); reply('250 2.1.5 ok'); }
        else if (verb === 'DATA') { data = []; reply('354 go on'); }
        else if (verb === 'QUIT') { reply('221 bye'); socket.end(); }
        else if (verb === 'RSET' || verb === 'NOOP') { mail = null; reply('250 ok'); }
        else reply('502 5.5.2 not here');
      }
    });
    socket.on('error', () => {});
  }

  /** The text of a message with its transfer encodings undone (quoted-printable and base64 parts). */
  static text(raw) {
    const qp = raw.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
    const b64 = [...raw.matchAll(/Content-Transfer-Encoding: base64\r\n(?:[^\r\n]+\r\n)*\r\n([A-Za-z0-9+/=\r\n]+)/gi)]
      .map((m) => Buffer.from(m[1].replace(/\r\n/g, ''), 'base64').toString('utf8'));
    return [qp, ...b64].join('\n');
  }

  async close() {
    await new Promise((res) => this.server.close(res));
  }
}
