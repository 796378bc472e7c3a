// Issue #17 items 9, 8 and 5, end to end on a server of their own (a fresh, empty SQLite database; outbox retries
// scaled down so a reply to a receiver that stays down is given up on in about five seconds):
//
// - onboarding: the first-run page creates the admin, whose first screen is the checklist; they connect a custom
//   channel in the form (its id, signing secret — rotated once —, inbound URL and curl example are shown), invite a
//   teammate (a set-your-password link to copy), the invited agent sets a password through the link and is signed
//   in, the admin sends a test message, the new agent answers it, the reply reaches the webhook signed with the
//   rotated secret, and the completed checklist is dismissed;
// - delivery: while the receiver is down, a reply shows "Sending…", then "Not delivered: <why>" with a Retry button;
//   the receiver comes up, Retry sends it exactly once and it shows "Sent"; the delivery log names the conversation
//   by its number.

import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { Server, eventually } from '../lib.mjs';

/** A server whose outbox gives up after ~26 s (3 days × 0.0001, the smallest scale) instead of three days. */
class FastRetryServer extends Server {
  env() {
    return { ...super.env(), SWITCHBOARD_OUTBOX_BACKOFF_SCALE: '0.0001' };
  }
}

/** A webhook receiver on loopback that can be "down" (answers 503) and records what it accepted. */
async function startReceiver() {
  const r = { down: false, accepted: [], refused: 0 };
  r.server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (r.down) {
        r.refused++;
        res.writeHead(503).end();
        return;
      }
      const raw = Buffer.concat(chunks);
      r.accepted.push({ raw, body: JSON.parse(raw.toString('utf8')), headers: req.headers });
      res.writeHead(200).end();
    });
  });
  await new Promise((ok) => r.server.listen(0, '127.0.0.1', ok));
  r.url = `http://127.0.0.1:${r.server.address().port}/hook`;
  return r;
}

function signatureOk(secret, got) {
  const mac = createHmac('sha256', secret);
  mac.update(`${got.headers['x-switchboard-timestamp']}.`);
  mac.update(got.raw);
  return got.headers['x-switchboard-signature'] === 'sha256=' + mac.digest('hex');
}

export function register(t, s, _srv, { screen }) {
  const own = {};
  const PASSWORD = { ada: 'ada-first-admin-1', nia: 'nia-chose-this-1' };
  const markOf = (page, text) => page.locator('[data-testid="message"]').filter({ hasText: text }).getByTestId('delivery');

  t.step('onboarding (#17 items 8, 9): from an empty database, the checklist leads the first admin to a channel, an invitation and a test message that the invited agent answers', async () => {
    own.srv = new FastRetryServer({ logName: 'e2e-setup-server' });
    process.on('exit', () => {
      own.srv.proc?.kill('SIGKILL');
      own.srv.cleanup();
    });
    await own.srv.start();
    own.rx = await startReceiver();
    const ctx = await s.browser.newContext({ baseURL: own.srv.url, viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    own.admin = { ctx, page };
    page.on('dialog', (d) => d.accept());

    // First run: the admin is created here and lands on the checklist, nothing done yet.
    await page.goto('/');
    await page.getByRole('heading', { name: /create the first admin/i }).waitFor();
    await page.getByLabel('Your name').fill('Ada Admin');
    await page.getByLabel('Email').fill('ada@example.test');
    await page.getByLabel('Password').fill(PASSWORD.ada);
    await page.getByRole('button', { name: 'Create admin and sign in' }).click();
    const checklist = page.getByTestId('onboarding');
    await checklist.getByRole('heading', { name: 'Get started' }).waitFor();
    const step = (k) => checklist.locator(`[data-step="${k}"]`);
    for (const k of ['connect_channel', 'invite_teammate', 'answer_message']) {
      if ((await step(k).getAttribute('data-done')) !== 'false') throw new Error(`${k} is done on an empty install`);
    }
    await screen(page, 'setup-01-checklist');

    // 1. Connect a channel: the custom channel form with its routing options, then what an integrator needs.
    await step('connect_channel').getByRole('link', { name: 'Connect a channel' }).click();
    await page.getByRole('heading', { name: 'Channels' }).waitFor();
    await page.getByRole('button', { name: 'Add channel' }).click();
    const form = page.getByTestId('custom-channel-form');
    await form.getByLabel('Name').fill('Website chat');
    await form.getByLabel('Webhook URL (agent replies are POSTed here)').fill(own.rx.url);
    await form.getByLabel('Priority of new conversations').selectOption('high');
    await form.getByLabel('Tags of new conversations (comma-separated)').fill('website');
    await form.getByTestId('assign-mode').selectOption('round_robin');
    await form.getByRole('group', { name: 'Round-robin agents' }).waitFor();
    await form.getByTestId('assign-mode').selectOption('nobody');
    await screen(page, 'setup-02-custom-channel-form');
    await form.getByRole('button', { name: 'Create channel' }).click();
    const panel = page.getByTestId('custom-channel-integration');
    await panel.waitFor();
    own.channelId = Number(await panel.getByLabel('Channel id', { exact: true }).inputValue());
    const first = await panel.getByLabel('Signing secret', { exact: true }).inputValue();
    const inbound = await panel.getByLabel('Inbound URL', { exact: true }).inputValue();
    if (!/^[0-9a-f]{64}$/.test(first)) throw new Error(`a signing secret is shown: ${first}`);
    if (inbound !== `${own.srv.url}/api/v1/custom-channels/${own.channelId}/inbound`) throw new Error(`inbound URL: ${inbound}`);
    const curl = await panel.getByTestId('curl-example').innerText();
    if (!curl.includes(inbound) || !curl.includes('Authorization: Bearer')) throw new Error(`curl example: ${curl}`);
    await screen(page, 'setup-03-custom-channel-integration');
    await panel.getByTestId('rotate-secret').click();
    await eventually(async () => (await panel.getByLabel('Signing secret', { exact: true }).inputValue()) !== first, { what: 'a rotated secret' });
    own.secret = await panel.getByLabel('Signing secret', { exact: true }).inputValue();
    await panel.getByRole('button', { name: 'Done' }).click();

    // 2. Invite a teammate: a link to copy, no password typed by the admin.
    await page.getByRole('navigation', { name: 'Administration' }).getByRole('link', { name: 'Agents' }).click();
    await page.getByRole('button', { name: 'Invite agent' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Email').fill('nia@example.test');
    await dialog.getByLabel('Name').fill('Nia New');
    await dialog.getByRole('checkbox', { name: /Website chat/ }).check();
    await dialog.getByRole('button', { name: 'Create invitation link' }).click();
    const link = await page.getByTestId('invitation-link').getByLabel('Set-your-password link', { exact: true }).inputValue();
    if (!link.startsWith(`${own.srv.url}/invite/sbi_`)) throw new Error(`an invitation link: ${link}`);
    await screen(page, 'setup-04-invitation-link');
    await page.getByRole('button', { name: 'Done' }).click();
    await page.locator('tr').filter({ hasText: 'nia@example.test' }).getByText('invited', { exact: true }).waitFor();

    // The invited agent opens the link, sets a password, and is signed in.
    const niaCtx = await s.browser.newContext({ baseURL: own.srv.url, viewport: { width: 1280, height: 800 } });
    const nia = await niaCtx.newPage();
    own.nia = { ctx: niaCtx, page: nia };
    await nia.goto(new URL(link).pathname);
    await nia.getByRole('heading', { name: 'Set your password' }).waitFor();
    await nia.getByText('nia@example.test').waitFor();
    await screen(nia, 'setup-05-set-password');
    await nia.getByLabel('New password').fill(PASSWORD.nia);
    await nia.getByLabel('Repeat the password').fill(PASSWORD.nia);
    await nia.getByRole('button', { name: 'Set password and sign in' }).click();
    await nia.getByRole('navigation', { name: 'Main' }).waitFor();
    await nia.getByRole('link', { name: /^Chats/ }).click();
    await nia.getByRole('heading', { name: 'Live chats' }).waitFor();
    // The link is spent.
    const again = await niaCtx.newPage();
    await again.goto(new URL(link).pathname);
    await again.getByTestId('invitation-refused').filter({ hasText: /already used/ }).waitFor();
    await again.close();

    // 3. The admin sends a test message; Nia answers it; the reply reaches the webhook signed with the new secret.
    await page.getByRole('link', { name: /^Tickets/ }).click();
    await step('connect_channel').and(page.locator('[data-done="true"]')).waitFor();
    await step('invite_teammate').and(page.locator('[data-done="true"]')).waitFor();
    await step('answer_message').getByTestId('send-test-message').click();
    await page.waitForURL(/\/chats\/\d+$/);
    own.conversationId = Number(new URL(page.url()).pathname.split('/').pop());
    const row = nia.locator(`[data-testid="chat-row"][data-conversation-id="${own.conversationId}"]`);
    await row.getByRole('link').click();
    await nia.locator('[data-testid="message"]').filter({ hasText: 'This is a test message' }).waitFor();
    await nia.getByRole('textbox', { name: 'Chat reply' }).click();
    await nia.keyboard.type('Hello! Your test message arrived.');
    await nia.keyboard.press('Control+Enter');
    await eventually(async () => (await markOf(nia, 'Your test message arrived').getAttribute('data-state')) === 'sent', { what: 'the answer sent', timeout: 15_000 });
    const got = own.rx.accepted.find((a) => a.body.message.content.includes('Your test message arrived'));
    if (!got || !signatureOk(own.secret, got)) throw new Error('the webhook got the answer, signed with the rotated secret');

    // Everything done: the checklist says so and goes away when dismissed.
    await page.getByRole('link', { name: /^Tickets/ }).click();
    await checklist.getByRole('heading', { name: 'You are all set' }).waitFor();
    await screen(page, 'setup-06-checklist-done');
    await checklist.getByTestId('dismiss-onboarding').click();
    await checklist.waitFor({ state: 'detached' });
    await page.reload();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    if (await page.getByTestId('onboarding').count()) throw new Error('a dismissed checklist came back');
  });

  t.step('delivery state (#17 item 5): a reply goes "Sending…" → "Not delivered: why" while the receiver is down, and Retry sends it once when it is up', async () => {
    const { page: nia } = own.nia;
    own.rx.down = true;
    await nia.getByRole('textbox', { name: 'Chat reply' }).click();
    await nia.keyboard.type('Second answer, while the receiver is down.');
    await nia.keyboard.press('Control+Enter');
    const mark = markOf(nia, 'Second answer');
    await eventually(async () => (await mark.getAttribute('data-state')) === 'pending', { what: 'pending' });
    await eventually(async () => (await mark.getAttribute('data-state')) === 'failed', { what: 'failed', timeout: 60_000 });
    await mark.filter({ hasText: /Not delivered: .*503/ }).waitFor();
    await screen(nia, 'setup-07-reply-failed');
    if (own.rx.refused < 2) throw new Error(`the receiver refused the attempts: ${own.rx.refused}`);

    own.rx.down = false;
    const before = own.rx.accepted.length;
    await mark.getByTestId('retry-delivery').click();
    await eventually(async () => (await mark.getAttribute('data-state')) === 'sent', { what: 'sent after Retry', timeout: 15_000 });
    const second = own.rx.accepted.slice(before).filter((a) => a.body.message.content.includes('Second answer'));
    if (second.length !== 1) throw new Error(`exactly one delivery after Retry, got ${second.length}`);
    if (await mark.getByTestId('retry-delivery').count()) throw new Error('no Retry on a sent reply');

    // The delivery log names the conversation by its number, linked.
    const { page } = own.admin;
    await page.goto('/admin/channels');
    const number = await page.evaluate(async (id) => (await (await fetch(`/api/v1/conversations/${id}`)).json()).number, own.conversationId);
    await page.locator('tr').filter({ hasText: 'Website chat' }).getByRole('button', { name: 'Delivery log' }).click();
    await page.getByTestId('delivery-conversation').filter({ hasText: `#${number}` }).first().waitFor();
    await screen(page, 'setup-08-delivery-log');
    await own.admin.ctx.close();
    await own.nia.ctx.close();
    own.rx.server.close();
    await own.srv.stop();
    own.srv.cleanup();
  });
}
