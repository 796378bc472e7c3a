// First meaningful paint of the dashboard with 10,000 tickets, and the bundle size.
//
// Starts the release binary on a fresh SQLite database, creates 10,000 tickets through the API
// (POST /api/v1/conversations, as integrations do), then loads /tickets in Debian's headless
// Chromium with a cold cache several times and reads the Performance API: first contentful
// paint, and the dashboard's own mark `switchboard:tickets-painted` (set on the first animation
// frame after the first page of ticket rows is in the DOM — the first meaningful paint).
// Prints the figures; exits non-zero if the median first meaningful paint exceeds the budget.
//
// Run: (cd tests/e2e && node perf.mjs)   Env: SWITCHBOARD_PERF_TICKETS (default 10000),
// SWITCHBOARD_PERF_RUNS (default 5), SWITCHBOARD_PERF_BUDGET_MS (default 1000).

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT, Server, launch } from './lib.mjs';

const TICKETS = Number(process.env.SWITCHBOARD_PERF_TICKETS ?? 10_000);
const RUNS = Number(process.env.SWITCHBOARD_PERF_RUNS ?? 5);
const BUDGET = Number(process.env.SWITCHBOARD_PERF_BUDGET_MS ?? 1000);

function bundle() {
  const dir = join(ROOT, 'web/dist/assets');
  const files = readdirSync(dir).map((f) => {
    const data = readFileSync(join(dir, f));
    return { f, raw: data.length, gz: gzipSync(data, { level: 9 }).length };
  });
  const html = readFileSync(join(ROOT, 'web/dist/index.html'));
  files.push({ f: 'index.html', raw: html.length, gz: gzipSync(html, { level: 9 }).length });
  return files;
}

const kb = (n) => (n / 1024).toFixed(1) + ' KB';
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const files = bundle();
console.log('bundle (web/dist):');
for (const x of files) console.log(`  ${x.f.padEnd(28)} ${kb(x.raw).padStart(9)} raw ${kb(x.gz).padStart(9)} gzip`);
const total = files.reduce((a, x) => ({ raw: a.raw + x.raw, gz: a.gz + x.gz }), { raw: 0, gz: 0 });
console.log(`  ${'total'.padEnd(28)} ${kb(total.raw).padStart(9)} raw ${kb(total.gz).padStart(9)} gzip`);

const srv = new Server({ logName: 'perf-server' });
let failed = false;
try {
  await srv.start();
  const admin = await srv.createAdmin('perf@example.test', 'perf-password-1', 'Perf Admin');
  const portal = await admin.post('/channels', { kind: 'custom', name: 'Bulk portal', mode: 'async' }, 201);
  const t0 = Date.now();
  let next = 0;
  const subjects = ['Cannot log in', 'Refund request', 'Shipping delay', 'Invoice question', 'Feature request', 'Bug report'];
  const worker = async () => {
    for (let i = next++; i < TICKETS; i = next++) {
      await admin.post(
        '/conversations',
        { channel: portal.id, user_custom_id: 'c' + i, name: 'Customer ' + i, subject: `${subjects[i % subjects.length]} ${i}`, content: 'Message ' + i },
        201,
      );
    }
  };
  await Promise.all(Array.from({ length: 6 }, worker));
  const page1 = await admin.get('/conversations?per_page=1');
  console.log(`seeded ${page1.total} tickets through the API in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const browser = await launch();
  const results = [];
  for (let run = 0; run < RUNS; run++) {
    // A new context each time: cold HTTP cache, a fresh session cookie.
    const ctx = await browser.newContext({ baseURL: srv.url, viewport: { width: 1366, height: 800 } });
    const login = await ctx.request.post('/api/v1/auth/login', { data: { email: 'perf@example.test', password: 'perf-password-1' } });
    if (!login.ok()) throw new Error('login failed: ' + login.status());
    const page = await ctx.newPage();
    await page.goto('/tickets');
    const m = await page.waitForFunction(
      () => {
        const mark = performance.getEntriesByName('switchboard:tickets-painted')[0];
        const fcp = performance.getEntriesByName('first-contentful-paint')[0];
        if (!mark || !fcp) return null;
        const nav = performance.getEntriesByType('navigation')[0];
        const rows = document.querySelectorAll('[data-testid="ticket-row"]').length;
        const total = document.querySelector('[data-testid="ticket-total"]')?.textContent ?? '';
        return { fmp: mark.startTime, fcp: fcp?.startTime ?? null, domReady: nav?.domContentLoadedEventEnd ?? null, rows, total };
      },
      null,
      { timeout: 15_000, polling: 50 },
    );
    const v = await m.jsonValue();
    results.push(v);
    console.log(
      `run ${run + 1}: first meaningful paint ${v.fmp.toFixed(0)} ms (first contentful paint ${v.fcp.toFixed(0)} ms, DOMContentLoaded ${v.domReady?.toFixed(0)} ms; ${v.rows} rows in the DOM of "${v.total}")`,
    );
    await ctx.close();
  }
  await browser.close();
  const fmp = median(results.map((r) => r.fmp));
  const fcp = median(results.map((r) => r.fcp));
  console.log(`median first meaningful paint with ${TICKETS.toLocaleString()} tickets: ${fmp.toFixed(0)} ms (budget ${BUDGET} ms); median first contentful paint ${fcp.toFixed(0)} ms`);
  console.log(`bundle: ${kb(total.gz)} gzip (${kb(total.raw)} raw)`);
  failed = fmp > BUDGET;
} catch (e) {
  console.error(e);
  failed = true;
} finally {
  await srv.stop();
  srv.cleanup();
}
console.log(`perf: ${failed ? 0 : 1} passed, ${failed ? 1 : 0} failed`);
process.exit(failed ? 1 : 0);
