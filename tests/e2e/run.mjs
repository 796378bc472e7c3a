// End-to-end: the dashboard in Debian's headless Chromium against the real release binary.
//
// Two agents in two browser contexts. A customer message arriving through the API appears live
// for both; agent A opens it and B sees "A is viewing"; A types and B sees "A is writing a
// reply"; A replies (quoting the customer, with a dropped attachment) and ends the chat; the chat
// moves to the ticket list; B goes offline and A sees it; the server restarts while messages
// arrive, and both reconnect and resume with nothing missed and nothing twice. An admin connects
// a mailbox through the Channels form and follows its health and mail log, and connects a Mattermost bot (a fake
// Mattermost): a DM to the bot becomes a live chat and the agent's reply arrives in the DM; and connects a Zalo Official
// Account (a fake Zalo): its webhook URL is shown to copy, a signed photo event becomes a live chat with the photo
// inline, the reply reaches Zalo once and its mark turns "Read" live on Zalo's receipt. Screenshots of the main
// screens go to test-artifacts/screenshots/.
//
// Needs: the release binary (cargo build --release) with web/dist embedded, and /usr/bin/chromium.
// Run: (cd tests/e2e && npm ci && node run.mjs). The last line is `e2e: N passed, N failed`.

import { FakeMattermost, FakeZalo, Runner, Server, accessibilityProblems, eventually, launch, shot, signedIn, SCREENSHOTS } from './lib.mjs';
import { register as registerQueue } from './steps/queue.mjs';
import { register as registerSetup } from './steps/setup.mjs';
import { register as registerInbox } from './steps/inbox.mjs';
import { register as registerUnread } from './steps/unread.mjs';
import { register as registerTemplates } from './steps/templates.mjs';
import { register as registerNotify } from './steps/notify.mjs';
import { register as registerPortal } from './steps/portal.mjs';

const PASSWORD = { admin: 'admin-password-1', ann: 'ann-password-1', bob: 'bob-password-1' };
const t = new Runner('Switchboard dashboard, two agents, live');
const srv = new Server({ logName: 'e2e-server' });
const s = { a11y: [] }; // what the steps share

/** Screenshot a screen and audit it (axe-core, WCAG 2.1 A/AA); problems are asserted at the end. */
async function screen(page, name) {
  await shot(page, name);
  for (const p of await accessibilityProblems(page)) s.a11y.push(`${name}: ${p}`);
}

const rowOf = (page, id) => page.locator(`[data-testid="chat-row"][data-conversation-id="${id}"]`);
const ticketRow = (page, id) => page.locator(`[data-testid="ticket-row"][data-conversation-id="${id}"]`);
const connState = (page) => page.getByTestId('connection-state').getAttribute('data-state');
const presenceOf = (page, agentId) => page.locator(`[data-agent-presence="${agentId}"]`).getAttribute('data-status');
const messagesIn = (page) => page.locator('[data-testid="conversation"] [data-testid="message"]');
const appState = (page) => page.evaluate(() => window.__switchboard.state());

t.step('the server starts on a fresh SQLite database and the dashboard shows the first-run page', async () => {
  await srv.start();
  s.browser = await launch();
  const ctx = await s.browser.newContext({ baseURL: srv.webUrl, viewport: { width: 1366, height: 800 } });
  const page = await ctx.newPage();
  await page.goto('/');
  await page.getByRole('heading', { name: /create the first admin/i }).waitFor();
  await page.getByText('switchboard admin create').first().waitFor();
  await screen(page, '01-first-run');
  s.setupCtx = ctx;
});

t.step('the CLI creates the admin; the dashboard then asks to sign in', async () => {
  s.admin = await srv.createAdmin('admin@example.test', PASSWORD.admin, 'Ada Admin');
  const page = s.setupCtx.pages()[0];
  await page.reload();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByLabel('Email').fill('admin@example.test');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: /wrong email or password/i }).waitFor();
  await screen(page, '02-login');
  await s.setupCtx.close();
});

t.step('the API sets up a sync custom channel, two agents with access, and a ticket channel', async () => {
  s.chat = await s.admin.post('/channels', { kind: 'custom', name: 'Website chat', mode: 'sync' }, 201);
  s.portal = await s.admin.post('/channels', { kind: 'custom', name: 'Partner portal', mode: 'async' }, 201);
  s.ann = await s.admin.post('/agents', { email: 'ann@example.test', name: 'Ann Archer', password: PASSWORD.ann }, 201);
  s.bob = await s.admin.post('/agents', { email: 'bob@example.test', name: 'Bob Baker', password: PASSWORD.bob }, 201);
  for (const a of [s.ann, s.bob]) await s.admin.put(`/agents/${a.id}/channels`, { channel_ids: [s.chat.id, s.portal.id] });
  await s.admin.post('/statuses', { key: 'waiting_on_dev', name: 'Waiting on dev', base: 'pending' }, 201);
  // Some history, so the screens have something to show.
  const t1 = await s.admin.post('/conversations', {
    channel: s.portal.id,
    user_custom_id: 'carla',
    name: 'Carla Customer',
    email: 'carla@example.org',
    company: 'Acme Corp',
    subject: 'Invoice 4411 charged twice',
    content: 'Hello, my card was charged twice for invoice 4411.',
  }, 201);
  s.ticket = t1.conversation_id;
  s.carla = t1.user_id;
  for (let i = 1; i <= 12; i++) {
    await s.admin.post('/conversations', { channel: s.portal.id, user_custom_id: 'bulk-' + i, name: 'Customer ' + i, subject: 'Question number ' + i, content: 'Text ' + i }, 201);
  }
});

t.step('agents A and B sign in, each in their own browser context, and see each other online', async () => {
  s.A = await signedIn(s.browser, srv.webUrl, 'ann@example.test', PASSWORD.ann);
  // B's browser records the notifications the dashboard shows (as if permission were granted).
  s.B = await signedIn(s.browser, srv.webUrl, 'bob@example.test', PASSWORD.bob, {
    initScript: () => {
      window.__notifications = [];
      window.Notification = class {
        static permission = 'granted';
        static requestPermission() {
          return Promise.resolve('granted');
        }
        constructor(title, options) {
          window.__notifications.push({ title, body: options?.body });
        }
        close() {}
      };
    },
  });
  for (const who of [s.A, s.B]) {
    await who.page.getByRole('link', { name: /^Chats/ }).click();
    await who.page.getByRole('heading', { name: 'Live chats' }).waitFor();
    await eventually(async () => (await connState(who.page)) === 'live', { what: 'socket live' });
  }
  await eventually(async () => (await presenceOf(s.A.page, s.bob.id)) === 'online', { what: 'A sees B online' });
  await eventually(async () => (await presenceOf(s.B.page, s.ann.id)) === 'online', { what: 'B sees A online' });
});

t.step('a customer message arriving through the API appears live for both agents, with the green indicator', async () => {
  // The same person as the ticket's Carla (linked by email, CC-6): her history spans both channels.
  const created = await s.admin.post('/conversations', {
    channel: s.chat.id,
    user_custom_id: 'carla-web',
    name: 'Carla Customer',
    email: 'carla@example.org',
    content: 'Hi! My parcel 99812 has not arrived yet. Can you help?',
  }, 201);
  s.chatId = created.conversation_id;
  for (const who of [s.A, s.B]) {
    await rowOf(who.page, s.chatId).waitFor();
    await rowOf(who.page, s.chatId).getByText('My parcel 99812').waitFor();
    await who.page.getByTestId('chats-live-indicator').waitFor();
  }
  await screen(s.B.page, '03-new-chat-live-indicator');
});

t.step("A opens the chat and B sees 'A is viewing' in the list and in the conversation", async () => {
  await rowOf(s.A.page, s.chatId).getByRole('link').click();
  await s.A.page.locator(`[data-testid="conversation"][data-conversation-id="${s.chatId}"]`).waitFor();
  await messagesIn(s.A.page).filter({ hasText: 'My parcel 99812' }).waitFor();
  await rowOf(s.B.page, s.chatId).getByTestId('collision-viewing').filter({ hasText: 'Ann Archer' }).waitFor();
  await rowOf(s.B.page, s.chatId).getByRole('link').click();
  await s.B.page.getByTestId('collision-viewing').filter({ hasText: 'Ann Archer is viewing' }).waitFor();
  // A sees B too, and opening the chat cleared the indicator for A.
  await s.A.page.getByTestId('collision-viewing').filter({ hasText: 'Bob Baker is viewing' }).waitFor();
  await s.A.page.getByTestId('chats-live-indicator').waitFor({ state: 'detached' });
  await screen(s.B.page, '04-collision-viewing');
});

t.step("A types and B sees 'A is writing a reply'", async () => {
  const editor = s.A.page.getByRole('textbox', { name: 'Chat reply' });
  await editor.click();
  await s.A.page.keyboard.type('Hello Carla, let me check parcel 99812 for you.');
  await s.B.page.getByTestId('collision-replying').filter({ hasText: 'Ann Archer is writing a reply' }).waitFor();
  await screen(s.B.page, '05-collision-writing');
});

t.step('A quotes the customer, attaches a file by drag and drop, and sends; B sees the reply live', async () => {
  const page = s.A.page;
  const customerMsg = messagesIn(page).filter({ hasText: 'My parcel 99812' });
  await customerMsg.hover();
  await customerMsg.getByRole('button', { name: /Quote this message/ }).click();
  await page.getByTestId('quote-preview').waitFor();
  // Drop a small PNG onto the conversation, as a person dragging a file from their desktop would.
  const drop = await page.evaluateHandle(async () => {
    const canvas = document.createElement('canvas');
    canvas.width = 320;
    canvas.height = 160;
    const g = canvas.getContext('2d');
    g.fillStyle = '#fff8e1';
    g.fillRect(0, 0, 320, 160);
    g.strokeStyle = '#8a6500';
    g.lineWidth = 4;
    g.strokeRect(6, 6, 308, 148);
    g.fillStyle = '#1b1f24';
    g.font = 'bold 22px sans-serif';
    g.fillText('PARCEL 99812', 24, 60);
    g.font = '16px sans-serif';
    g.fillText('Depot: Berlin-Mitte', 24, 95);
    g.fillText('Status: waiting for pickup', 24, 122);
    const blob = await new Promise((r) => canvas.toBlob(r, 'image/png'));
    const dt = new DataTransfer();
    dt.items.add(new File([blob], 'parcel-label.png', { type: 'image/png' }));
    return dt;
  });
  const zone = page.getByTestId('conversation');
  await zone.dispatchEvent('dragenter', { dataTransfer: drop });
  await zone.dispatchEvent('drop', { dataTransfer: drop });
  await page.getByTestId('upload').filter({ hasText: 'parcel-label.png' }).waitFor();
  await eventually(async () => !(await page.getByTestId('upload').filter({ hasText: 'uploading' }).count()), { what: 'upload finished' });
  await page.keyboard.press('Control+Enter');
  const reply = messagesIn(page).filter({ hasText: 'let me check parcel 99812' });
  await reply.waitFor();
  await reply.getByTestId('quoted-message').filter({ hasText: 'My parcel 99812' }).waitFor();
  await reply.locator('img[alt="parcel-label.png"]').waitFor();
  const onB = messagesIn(s.B.page).filter({ hasText: 'let me check parcel 99812' });
  await onB.waitFor();
  await onB.locator('img[alt="parcel-label.png"]').waitFor();
  await eventually(async () => !(await s.B.page.getByTestId('collision-replying').count()), { what: "B no longer sees 'writing'" });
});

t.step('A adds an internal note with the note shortcut; it looks different from a reply', async () => {
  const page = s.A.page;
  await page.getByRole('textbox', { name: 'Chat reply' }).click();
  await page.keyboard.press('Alt+n');
  const note = page.getByRole('textbox', { name: 'Internal note' });
  await note.waitFor();
  await page.keyboard.type('Carrier says the parcel is in the depot.');
  await page.getByTestId('send').click();
  const item = messagesIn(page).filter({ hasText: 'in the depot' });
  await item.waitFor();
  if (!(await item.getAttribute('class')).includes('note')) throw new Error('the note is not styled as a note');
  await messagesIn(s.B.page).filter({ hasText: 'in the depot' }).filter({ hasText: 'Internal note' }).waitFor();
  await page.keyboard.press('Alt+n');
  await page.getByRole('textbox', { name: 'Chat reply' }).waitFor();
  await screen(page, '06-conversation-reply-quote-note-attachment');
});

t.step('A ends the chat; it leaves the chat panel and appears live in B\'s ticket list', async () => {
  await s.B.page.getByRole('link', { name: /^Tickets/ }).click();
  await s.B.page.getByTestId('ticket-row').first().waitFor();
  if (await ticketRow(s.B.page, s.chatId).count()) throw new Error('an active chat is in the ticket list');
  await s.A.page.getByTestId('end-chat').click();
  await s.A.page.waitForURL(`**/tickets/${s.chatId}`);
  await ticketRow(s.B.page, s.chatId).waitFor();
  await s.A.page.getByRole('link', { name: /^Chats/ }).click();
  await rowOf(s.A.page, s.chatId).waitFor({ state: 'detached' });
  await screen(s.B.page, '07-ticket-list-after-chat-ended');
});

t.step('send and set status in one action, on a ticket', async () => {
  const page = s.B.page;
  await ticketRow(page, s.ticket).getByRole('link').click();
  await page.getByRole('textbox', { name: 'Reply' }).click();
  // Rich text: the first words in bold (Ctrl+B), the rest plain.
  await page.keyboard.press('Control+b');
  await page.keyboard.type('Refund issued');
  await page.keyboard.press('Control+b');
  await page.keyboard.type(', you will see it in 3 days.');
  await page.getByLabel('Status to set when sending').selectOption('waiting_on_dev');
  await page.getByTestId('send').click();
  await messagesIn(page).filter({ hasText: 'Refund issued' }).locator('b, strong').filter({ hasText: 'Refund issued' }).waitFor();
  await eventually(async () => (await s.admin.get(`/conversations/${s.ticket}`)).status === 'waiting_on_dev', { what: 'status set' });
  await page.locator('.conv-meta [data-status="waiting_on_dev"]').waitFor();
  // HD-1: the customer's earlier conversations across all channels (the ended chat included).
  const history = page.getByTestId('customer-history').locator('li');
  await eventually(async () => (await history.count()) >= 2, { what: 'two conversations in the customer history' });
  await history.filter({ hasText: 'Website chat' }).waitFor();
  await history.filter({ hasText: 'Partner portal' }).waitFor();
  await screen(page, '08-ticket-with-customer-sidebar');
});

t.step('B goes offline with the status switch and A sees it', async () => {
  await eventually(async () => (await presenceOf(s.A.page, s.bob.id)) === 'online', { what: 'B online for A' });
  await s.B.page.getByTestId('my-status').selectOption('offline');
  await s.B.page.getByTestId('reconnecting-banner').filter({ hasText: 'You are offline' }).waitFor();
  await eventually(async () => (await presenceOf(s.A.page, s.bob.id)) === 'offline', { what: 'A sees B offline', timeout: 15_000 });
  await s.A.page.getByRole('button', { name: /teammates online/ }).click();
  await screen(s.A.page, '09-presence-b-offline');
  await s.A.page.getByRole('button', { name: /teammates online/ }).click();
  await s.B.page.getByTestId('my-status').selectOption('online');
  await eventually(async () => (await connState(s.B.page)) === 'live', { what: 'B live again' });
  await eventually(async () => (await presenceOf(s.A.page, s.bob.id)) === 'online', { what: 'A sees B online again' });
});

t.step('browser notifications tell B of new customer messages, until B switches them off', async () => {
  const page = s.B.page;
  const notes = () => page.evaluate(() => window.__notifications.map((n) => n.title + ': ' + n.body));
  await page.getByRole('link', { name: /^Tickets/ }).click();
  const toggle = page.getByTestId('notifications-toggle');
  if ((await toggle.getAttribute('aria-pressed')) !== 'true') throw new Error('notifications are not on by default');
  await s.admin.post('/conversations', { channel: s.chat.id, user_custom_id: 'finn', name: 'Finn Fischer', content: 'Do you ship to Norway?' }, 201);
  await eventually(async () => (await notes()).some((n) => n.includes('Finn Fischer') && n.includes('ship to Norway')), { what: 'a notification' });
  await toggle.click();
  await eventually(async () => (await toggle.getAttribute('aria-pressed')) === 'false', { what: 'switched off' });
  const count = (await notes()).length;
  const quiet = await s.admin.post('/conversations', { channel: s.chat.id, user_custom_id: 'gina', name: 'Gina Gold', content: 'Quiet please' }, 201);
  await eventually(async () => (await appState(page)).chatIds.includes(quiet.conversation_id), { what: 'the chat reached B' });
  if ((await notes()).length !== count) throw new Error('a notification was shown while switched off');
  await toggle.click();
  await eventually(async () => (await toggle.getAttribute('aria-pressed')) === 'true', { what: 'switched on again' });
});

t.step('a network drop (server restart) shows "reconnecting"; both resume and miss nothing, twice nothing', async () => {
  // A keeps a live chat open; B watches the chat panel.
  const open = await s.admin.post('/conversations', { channel: s.chat.id, user_custom_id: 'dora', name: 'Dora Diaz', content: 'Is the shop open on Sunday?' }, 201);
  const id = open.conversation_id;
  await rowOf(s.A.page, id).getByRole('link').click();
  await messagesIn(s.A.page).filter({ hasText: 'open on Sunday' }).waitFor();
  await s.B.page.getByRole('link', { name: /^Chats/ }).click();
  await rowOf(s.B.page, id).waitFor();
  const before = { A: (await appState(s.A.page)).stats, B: (await appState(s.B.page)).stats };

  await srv.stop();
  for (const who of [s.A, s.B]) {
    await who.page.getByTestId('reconnecting-banner').filter({ hasText: 'reconnecting' }).waitFor({ timeout: 15_000 });
  }
  await screen(s.A.page, '10-reconnecting');
  // Keep the browsers off the network while the server comes back and things happen, so that
  // what follows can only reach them through resume.
  await s.A.context.setOffline(true);
  await s.B.context.setOffline(true);
  await srv.start();
  await s.admin.post(`/conversations/${id}/messages`, { content: 'Yes, from 10 to 16 on Sundays.' }, 201);
  await s.admin.post(`/conversations/${id}/messages`, { content: 'And the café is open too.' }, 201);
  const other = await s.admin.post('/conversations', { channel: s.chat.id, user_custom_id: 'emil', name: 'Emil Ek', content: 'Hello from while you were away' }, 201);
  await s.A.context.setOffline(false);
  await s.B.context.setOffline(false);

  for (const who of [s.A, s.B]) {
    await eventually(async () => (await connState(who.page)) === 'live', { what: 'live again', timeout: 30_000 });
    await who.page.getByTestId('reconnecting-banner').waitFor({ state: 'detached' });
    await rowOf(who.page, other.conversation_id).waitFor();
  }
  await messagesIn(s.A.page).filter({ hasText: 'from 10 to 16' }).waitFor();
  await messagesIn(s.A.page).filter({ hasText: 'café is open too' }).waitFor();
  // Exactly the conversation's messages, each once, in order.
  const server = await s.admin.get(`/conversations/${id}`);
  await eventually(async () => (await messagesIn(s.A.page).count()) === server.last_seq, { what: `${server.last_seq} messages on screen` });
  const seqs = await messagesIn(s.A.page).evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-seq'))));
  const expected = Array.from({ length: server.last_seq }, (_, i) => i + 1);
  if (JSON.stringify(seqs) !== JSON.stringify(expected)) throw new Error(`messages on screen ${seqs} ≠ ${expected}`);
  for (const text of ['from 10 to 16', 'café is open too']) {
    const n = await messagesIn(s.A.page).filter({ hasText: text }).count();
    if (n !== 1) throw new Error(`"${text}" is on screen ${n} times`);
  }
  const after = { A: (await appState(s.A.page)).stats, B: (await appState(s.B.page)).stats };
  if (after.A.resumes <= before.A.resumes || after.B.resumes <= before.B.resumes) throw new Error('the dashboard did not resume with its cursor');
  const replayedA = after.A.replayed - before.A.replayed;
  if (replayedA < 3) throw new Error(`A's resume replayed ${replayedA} events; expected the 3 it missed`);
  console.log(`  resume replayed ${replayedA} events to A and ${after.B.replayed - before.B.replayed} to B`);
  await screen(s.A.page, '11-resumed-after-restart');
});

t.step('A starts a new outbound conversation, choosing the channel and the customer', async () => {
  const page = s.A.page;
  await page.getByRole('link', { name: /^New/ }).click();
  await page.getByLabel('Send from').selectOption(String(s.portal.id));
  await page.getByRole('combobox', { name: 'To (customer)' }).fill('Carla');
  await page.getByRole('option', { name: /Carla Customer/ }).click();
  await page.getByLabel('Subject').fill('Your refund');
  await page.getByLabel('Message').fill('Hi Carla, your refund has been processed.');
  await screen(page, '12-new-outbound-conversation');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.waitForURL(/\/tickets\/\d+$/);
  await messagesIn(page).filter({ hasText: 'your refund has been processed' }).waitFor();
});

t.step('the ticket list filters, and the admin screens render', async () => {
  const page = s.A.page;
  await page.goto('/tickets?status=waiting_on_dev');
  await ticketRow(page, s.ticket).waitFor();
  await eventually(async () => (await page.getByTestId('ticket-row').count()) === 1, { what: 'one ticket with that status' });
  await page.getByLabel('Search tickets').fill('Question number 7');
  await page.waitForURL(/q=Question/);
  await page.goto('/tickets');
  await page.getByTestId('ticket-row').first().waitFor();
  await screen(page, '13-ticket-list');
  const admin = await signedIn(s.browser, srv.webUrl, 'admin@example.test', PASSWORD.admin);
  for (const [tab, heading] of [
    ['agents', 'Agents'],
    ['channels', 'Channels'],
    ['statuses', 'Statuses'],
    ['teams', 'Teams'],
    ['tokens', 'API tokens'],
  ]) {
    await admin.page.goto('/admin/' + tab);
    await admin.page.getByRole('heading', { name: heading, exact: true }).waitFor();
    await screen(admin.page, '14-admin-' + tab);
  }
  // A dialog too: editing an agent (roles and channel access).
  await admin.page.goto('/admin/agents');
  await admin.page.getByRole('button', { name: 'Edit Bob Baker' }).click();
  await admin.page.getByRole('dialog', { name: 'Edit Bob Baker' }).waitFor();
  await screen(admin.page, '15-admin-edit-agent');
  await admin.page.keyboard.press('Escape');
  await admin.page.getByRole('dialog').waitFor({ state: 'detached' });
  await admin.context.close();
});

t.step('an admin adds a mailbox in Administration → Channels; it is listed with its health, its mail log is empty, the API has it (#5)', async () => {
  const admin = await signedIn(s.browser, srv.webUrl, 'admin@example.test', PASSWORD.admin);
  const page = admin.page;
  await page.goto('/admin/agents');
  await page.getByRole('navigation', { name: 'Administration' }).getByRole('link', { name: 'Channels' }).click();
  await page.getByRole('heading', { name: 'Channels', exact: true }).waitFor();
  await page.getByRole('button', { name: 'Add channel' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add a channel' });
  await dialog.getByLabel('Kind').selectOption('email');
  const form = dialog.getByTestId('mailbox-form');
  const incoming = form.getByRole('group', { name: 'Incoming mail' });
  const outgoing = form.getByRole('group', { name: 'Outgoing mail (SMTP)' });
  const handling = form.getByRole('group', { name: 'Handling' });
  const value = async (loc, want, what) => {
    const got = await loc.inputValue();
    if (got !== want) throw new Error(`${what}: ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  };
  // The defaults (IMAP on 993 with implicit TLS, SMTP on 587 with STARTTLS, a check a minute),
  // and ports that follow the protocol and security choices.
  await value(incoming.getByLabel('Protocol', { exact: true }), 'imap', 'protocol');
  await value(incoming.getByLabel('Security', { exact: true }), 'implicit', 'incoming security');
  await value(incoming.getByLabel('Port', { exact: true }), '993', 'incoming port');
  await value(incoming.getByLabel(/^Check every/), '60', 'poll interval');
  await value(outgoing.getByLabel('Security', { exact: true }), 'starttls', 'outgoing security');
  await value(outgoing.getByLabel('Port', { exact: true }), '587', 'outgoing port');
  await incoming.getByLabel('Protocol', { exact: true }).selectOption('pop3');
  await value(incoming.getByLabel('Port', { exact: true }), '995', 'POP3S port');
  await incoming.getByLabel('Protocol', { exact: true }).selectOption('imap');
  await incoming.getByLabel('Security', { exact: true }).selectOption('starttls');
  await value(incoming.getByLabel('Port', { exact: true }), '143', 'IMAP STARTTLS port');
  await outgoing.getByLabel('Security', { exact: true }).selectOption('implicit');
  await value(outgoing.getByLabel('Port', { exact: true }), '465', 'SMTPS port');
  await outgoing.getByLabel('Security', { exact: true }).selectOption('starttls');

  await form.getByLabel('Name', { exact: true }).fill('Support mailbox');
  await incoming.getByLabel('Server', { exact: true }).fill('imap example'); // a space: the server names the field it refuses
  await incoming.getByLabel('Port', { exact: true }).fill('9'); // nothing listens there: the connection fails, as it should
  await incoming.getByLabel('User name', { exact: true }).fill('support@example.test');
  await incoming.getByLabel('Password', { exact: true }).fill('mailbox-password-1');
  await outgoing.getByLabel('Server', { exact: true }).fill('127.0.0.1');
  await outgoing.getByLabel('Port', { exact: true }).fill('2525');
  await outgoing.getByLabel('From address', { exact: true }).fill('support@example.test');
  await outgoing.getByLabel('From name', { exact: true }).fill('Example Support');
  await handling.getByLabel(/Accept mail from unknown senders/).uncheck();
  await form.getByRole('button', { name: 'Connect mailbox' }).click();
  const host = incoming.getByLabel('Server', { exact: true });
  await incoming.locator('#mailbox-host-error').filter({ hasText: /host name or address/ }).waitFor();
  if ((await host.getAttribute('aria-invalid')) !== 'true') throw new Error('the refused field is not marked invalid');
  await eventually(() => host.evaluate((el) => el === document.activeElement), { what: 'focus on the refused field' });
  await screen(page, '17-admin-mailbox-form-field-error');
  // Fix it and submit from the keyboard.
  await host.fill('127.0.0.1');
  await host.press('Enter');
  await dialog.waitFor({ state: 'detached' });

  const row = page.getByTestId('mailbox-row').filter({ hasText: 'Support mailbox' });
  await row.waitFor();
  await row.getByText('IMAP 127.0.0.1:9').waitFor();
  const health = row.getByTestId('mailbox-health');
  const failures = async () => Number(await health.getAttribute('data-failures'));
  await row.getByRole('button', { name: 'Check now' }).click();
  await row.getByRole('status').filter({ hasText: 'Checking the mailbox now' }).waitFor();
  await eventually(async () => (await failures()) >= 1, { timeout: 20_000, what: 'the failed connection in the health' });
  await health.getByText(/^Last error: /).waitFor();
  await health.getByText('Last success: never').waitFor();
  await health.getByText('Imported: 0').waitFor();
  await screen(page, '18-admin-mailbox-listed-with-health');

  await row.getByRole('button', { name: 'Mail log' }).click();
  const log = page.getByRole('dialog', { name: 'Support mailbox — mail log' });
  await log.getByText('No mail was set aside').waitFor();
  await screen(page, '19-admin-mailbox-mail-log');
  await page.keyboard.press('Escape');
  await log.waitFor({ state: 'detached' });

  // The API has it as entered; the password is stored, never shown.
  const m = (await s.admin.get('/email-channels')).find((x) => x.name === 'Support mailbox');
  if (!m) throw new Error('GET /email-channels has no "Support mailbox"');
  const want = {
    protocol: 'imap', host: '127.0.0.1', port: 9, tls: 'starttls', tls_insecure: false, username: 'support@example.test',
    password_set: true, folder: 'INBOX', poll_interval_s: 60, after_import: 'mark_read', address: null,
    accept_unknown_senders: false, subscribe_recipients: true, extract_forwarded_sender: true, default_team_id: null,
  };
  const wantSmtp = {
    host: '127.0.0.1', port: 2525, tls: 'starttls', tls_insecure: false, username: null, password_set: false,
    from_address: 'support@example.test', from_name: 'Example Support', reply_to: null, use_from_name_for_all: false,
  };
  for (const [k, v] of Object.entries(want)) if (m[k] !== v) throw new Error(`${k}: ${JSON.stringify(m[k])}, expected ${JSON.stringify(v)}`);
  for (const [k, v] of Object.entries(wantSmtp)) if (m.smtp[k] !== v) throw new Error(`smtp.${k}: ${JSON.stringify(m.smtp[k])}, expected ${JSON.stringify(v)}`);
  if (JSON.stringify(m).includes('mailbox-password-1')) throw new Error('the API shows the password');
  if (m.health.consecutive_failures < 1 || !m.health.last_error) throw new Error('health without the failure: ' + JSON.stringify(m.health));

  // Editing sends only what changed; the empty password field keeps the stored one.
  await row.getByRole('button', { name: 'Settings' }).click();
  const edit = page.getByRole('dialog', { name: 'Support mailbox — mailbox settings' });
  await edit.getByLabel(/^Password \(stored/).first().waitFor();
  await edit.getByRole('group', { name: 'Incoming mail' }).getByLabel(/^Check every/).fill('120');
  const patch = page.waitForRequest((r) => r.method() === 'PATCH' && r.url().endsWith(`/api/v1/email-channels/${m.id}`));
  await edit.getByRole('button', { name: 'Save' }).click();
  const sent = (await patch).postDataJSON();
  if (JSON.stringify(sent) !== JSON.stringify({ poll_interval_s: 120 })) throw new Error('PATCH body: ' + JSON.stringify(sent));
  await edit.waitFor({ state: 'detached' });
  const after = await s.admin.get(`/email-channels/${m.id}`);
  if (after.poll_interval_s !== 120 || !after.password_set) throw new Error('after the edit: ' + JSON.stringify(after));

  // Five failed checks in a row disable it; "Check now" then says why; "Enable again" restarts it.
  await eventually(
    async () => {
      if (await row.getByText('disabled', { exact: true }).count()) return true;
      await row.getByRole('button', { name: 'Check now' }).click();
      return false;
    },
    { timeout: 40_000, interval: 2_000, what: 'the mailbox disabled after five failed checks' },
  );
  await row.getByText(/connection failures in a row/).waitFor();
  await row.getByRole('button', { name: 'Check now' }).click();
  await row.getByRole('alert').filter({ hasText: /is disabled/ }).waitFor();
  await screen(page, '20-admin-mailbox-disabled');
  await row.getByRole('button', { name: 'Enable again' }).click();
  await row.getByRole('status').filter({ hasText: 'Enabled again' }).waitFor();
  await row.getByText('enabled', { exact: true }).waitFor();
  const back = await s.admin.get(`/email-channels/${m.id}`);
  if (!back.enabled || back.disabled_reason) throw new Error('not enabled again: ' + JSON.stringify(back));
  await admin.context.close();
});

t.step('an admin connects a Mattermost bot in Administration → Channels; a DM to the bot is a live chat and the reply arrives in Mattermost (#15)', async () => {
  s.mm = await FakeMattermost.start();
  const admin = await signedIn(s.browser, srv.webUrl, 'admin@example.test', PASSWORD.admin);
  const page = admin.page;
  await page.goto('/admin/channels');
  await page.getByRole('heading', { name: 'Channels', exact: true }).waitFor();
  await page.getByRole('button', { name: 'Add channel' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add a channel' });
  await dialog.getByLabel('Kind').selectOption('mattermost');
  const form = dialog.getByTestId('mattermost-form');
  await form.getByLabel('Name', { exact: true }).fill('Team chat');
  await form.getByLabel('Mattermost server URL').fill(s.mm.url);
  // A wrong token is refused with Mattermost's reason, and nothing is stored.
  await form.getByLabel('Bot access token').fill('not-the-token');
  await form.getByRole('button', { name: 'Connect bot' }).click();
  await form.getByRole('alert').waitFor();
  if ((await s.admin.get('/mattermost-channels')).length) throw new Error('a bot was stored with a wrong token');
  await form.getByLabel('Bot access token').fill(s.mm.bot_token);
  await form.getByRole('button', { name: 'Connect bot' }).click();
  await dialog.waitFor({ state: 'detached' });
  const row = page.getByTestId('mattermost-bot').filter({ hasText: 'Team chat' });
  await row.getByText('@helpbot').waitFor();
  await eventually(async () => (await row.getByTestId('mattermost-state').getAttribute('data-state')) === 'connected', {
    timeout: 15_000,
    what: 'the bot connected',
  });
  await screen(page, '21-admin-mattermost-connected');
  const bot = (await s.admin.get('/mattermost-channels')).find((b) => b.name === 'Team chat');
  if (JSON.stringify(bot).includes(s.mm.bot_token)) throw new Error('the API shows the bot token');
  await s.admin.put(`/agents/${s.ann.id}/channels`, { channel_ids: [s.chat.id, s.portal.id, bot.id] });
  await admin.context.close();

  // A Mattermost user writes to the bot; Ann (signed in again: her access changed) sees the chat live and answers.
  const alice = await s.mm.user('alice', 'Alice', 'Mattermost', 'alice@example.test');
  const dm = await s.mm.dm(alice);
  const A = await signedIn(s.browser, srv.webUrl, 'ann@example.test', PASSWORD.ann);
  await A.page.getByRole('link', { name: /^Chats/ }).click();
  await A.page.getByRole('heading', { name: 'Live chats' }).waitFor();
  await s.mm.post(alice, dm, 'Hi from Mattermost: my build is red');
  const chat = A.page.locator('[data-testid="chat-row"]').filter({ hasText: 'my build is red' });
  await chat.waitFor({ timeout: 15_000 });
  await chat.getByRole('link').click();
  await messagesIn(A.page).filter({ hasText: 'my build is red' }).waitFor();
  await A.page.getByRole('textbox', { name: 'Chat reply' }).click();
  await A.page.keyboard.type('Looking at your build now.');
  await A.page.keyboard.press('Control+Enter');
  await messagesIn(A.page).filter({ hasText: 'Looking at your build now.' }).waitFor();
  // (An empty list is truthy: wait for one.)
  const posts = await eventually(
    async () => {
      const mine = (await s.mm.botPosts()).filter((p) => p.channel_id === dm && p.message.includes('Looking at your build now.'));
      return mine.length ? mine : null;
    },
    { timeout: 15_000, what: 'the reply posted in the DM' },
  );
  if (posts.length !== 1) throw new Error('reply posted ' + posts.length + ' times');
  await screen(A.page, '22-mattermost-chat-replied');
  await A.context.close();
});

t.step('a super admin connects a Zalo Official Account in the form and copies its webhook URL; a signed image webhook is a live chat with the image inline; the reply reaches Zalo once and shows "Read" when the customer has seen it (#16)', async () => {
  const zl = (s.zalo = await FakeZalo.start());
  const admin = await signedIn(s.browser, srv.webUrl, 'admin@example.test', PASSWORD.admin);
  const page = admin.page;
  await admin.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: srv.webUrl });
  await page.goto('/admin/channels');
  await page.getByRole('heading', { name: 'Channels', exact: true }).waitFor();
  await page.getByRole('button', { name: 'Add channel' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add a channel' });
  await dialog.getByLabel('Kind').selectOption('zalo');
  const form = dialog.getByTestId('zalo-form');
  await form.getByLabel('Name', { exact: true }).fill('Shop on Zalo');
  await form.getByLabel('App ID', { exact: true }).fill(zl.app_id);
  await form.getByLabel('App secret key', { exact: true }).fill(zl.app_secret);
  await form.getByLabel(/^OA secret key/).fill(zl.oa_secret_key);
  await form.getByLabel('OA access token', { exact: true }).fill(zl.access_token);
  await form.getByLabel('OA refresh token', { exact: true }).fill(zl.refresh_token);
  // Zalo's addresses are advanced settings (the fake's here); one the server refuses is named next to its field,
  // focused, and nothing is stored.
  await form.getByText("Advanced: Zalo's addresses").click();
  const apiBase = form.getByLabel('API base URL', { exact: true });
  if ((await apiBase.getAttribute('placeholder')) !== 'https://openapi.zalo.me') throw new Error("Zalo's API address is not the placeholder");
  await apiBase.fill(zl.url.replace('http:', 'ftp:'));
  await form.getByLabel('OAuth base URL', { exact: true }).fill(zl.url);
  await form.getByRole('button', { name: 'Connect account' }).click();
  await form.locator('#zalo-api-base-url-error').filter({ hasText: /http:\/\/ or https:\/\// }).waitFor();
  if ((await apiBase.getAttribute('aria-invalid')) !== 'true') throw new Error('the refused field is not marked invalid');
  await eventually(() => apiBase.evaluate((el) => el === document.activeElement), { what: 'focus on the refused field' });
  if ((await s.admin.get('/zalo-channels')).length) throw new Error('a Zalo channel was stored although the form was refused');
  await screen(page, '23-admin-zalo-form-field-error');
  await apiBase.fill(zl.url);
  await apiBase.press('Enter');

  // Connected: the webhook URL to paste into Zalo's console, with a copy button, and the domain-verification setting.
  const setup = dialog.getByTestId('zalo-setup');
  await setup.waitFor();
  const webhook = await setup.getByLabel('Webhook URL', { exact: true }).inputValue();
  const m = new RegExp(`^${srv.url}/api/v1/zalo-channels/(\\d+)/webhook$`).exec(webhook);
  if (!m) throw new Error('webhook URL shown: ' + webhook);
  s.zaloId = Number(m[1]);
  await setup.getByRole('button', { name: 'Copy the Webhook URL' }).click();
  await setup.getByRole('status').filter({ hasText: 'Copied' }).waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  if (copied !== webhook) throw new Error('copied ' + JSON.stringify(copied));
  await setup.getByTestId('zalo-verification').filter({ hasText: 'not set' }).waitFor();
  await screen(page, '24-admin-zalo-connected-webhook-url');
  await setup.getByRole('button', { name: 'Done' }).click();
  await dialog.waitFor({ state: 'detached' });
  const row = page.getByTestId('zalo-channel').filter({ hasText: 'Shop on Zalo' });
  await row.getByText(webhook).waitFor();
  await eventually(async () => (await row.getByTestId('zalo-state').getAttribute('data-state')) === 'connected', {
    timeout: 15_000,
    what: 'the Zalo account connected',
  });
  await screen(page, '25-admin-zalo-listed');
  const listed = await s.admin.get('/zalo-channels');
  const shown = JSON.stringify(listed);
  for (const secret of [zl.app_secret, zl.oa_secret_key, zl.access_token, zl.refresh_token]) {
    if (shown.includes(secret)) throw new Error('the API shows a secret or token');
  }
  const ann = await s.admin.get(`/agents/${s.ann.id}`);
  await s.admin.put(`/agents/${s.ann.id}/channels`, { channel_ids: [...ann.channel_ids, s.zaloId] });
  await admin.context.close();

  // A Zalo user sends a photo; Ann (signed in again: her access changed) sees the chat live with the photo inline.
  const A = await signedIn(s.browser, srv.webUrl, 'ann@example.test', PASSWORD.ann);
  await A.page.getByRole('link', { name: /^Chats/ }).click();
  await A.page.getByRole('heading', { name: 'Live chats' }).waitFor();
  const png = await A.page.evaluate(() => {
    const canvas = document.createElement('canvas');
    canvas.width = 280;
    canvas.height = 160;
    const g = canvas.getContext('2d');
    g.fillStyle = '#e0f2fe';
    g.fillRect(0, 0, 280, 160);
    g.strokeStyle = '#0369a1';
    g.lineWidth = 4;
    g.beginPath();
    g.moveTo(40, 30);
    g.lineTo(140, 90);
    g.lineTo(110, 140);
    g.moveTo(140, 90);
    g.lineTo(240, 60);
    g.stroke();
    g.fillStyle = '#0c4a6e';
    g.font = 'bold 18px sans-serif';
    g.fillText('CRACKED SCREEN', 20, 24);
    return canvas.toDataURL('image/png').split(',')[1];
  });
  const photo = await zl.media('cracked-screen.png', 'image/png', Buffer.from(png, 'base64'));
  const user = '2468013579246801';
  const image = await zl.fromUser('image', user, {
    msg_id: 'e2e-zalo-image-1',
    text: 'My phone screen cracked, see the photo',
    attachments: [{ type: 'image', payload: { thumbnail: photo, url: photo } }],
  });
  const statuses = await zl.deliver(webhook, image);
  if (JSON.stringify(statuses) !== '[200]') throw new Error('webhook answers: ' + JSON.stringify(statuses));
  const chat = A.page.locator('[data-testid="chat-row"]').filter({ hasText: 'My phone screen cracked' });
  await chat.waitFor({ timeout: 15_000 });
  await chat.getByRole('link').click();
  const inbound = messagesIn(A.page).filter({ hasText: 'My phone screen cracked' });
  await inbound.waitFor();
  const img = inbound.locator('.attachments img');
  await img.waitFor();
  await eventually(() => img.evaluate((el) => el.complete && el.naturalWidth === 280), { what: 'the photo shown inline' });
  if (await inbound.getByTestId('delivery').count()) throw new Error('a customer message has a delivery mark');

  // Ann replies: Zalo gets it exactly once, and the mark follows it live: sent, then read once the user saw it.
  await A.page.getByRole('textbox', { name: 'Chat reply' }).click();
  await A.page.keyboard.type('We can replace the screen tomorrow.');
  await A.page.keyboard.press('Control+Enter');
  const reply = messagesIn(A.page).filter({ hasText: 'We can replace the screen tomorrow.' });
  const mark = reply.getByTestId('delivery');
  await eventually(async () => (await mark.getAttribute('data-state')) === 'sent', { timeout: 15_000, what: 'the reply marked sent' });
  await mark.filter({ hasText: 'Sent' }).waitFor();
  const sent = (await zl.sent()).filter((x) => x.body.message?.text === 'We can replace the screen tomorrow.');
  if (sent.length !== 1) throw new Error(`the reply reached Zalo ${sent.length} times`);
  if (sent[0].body.recipient?.user_id !== user) throw new Error('sent to ' + JSON.stringify(sent[0].body.recipient));
  const seen = await zl.event('user_seen_message', {
    sender: { id: user },
    recipient: { id: zl.oa_id },
    message: { msg_ids: [sent[0].message_id] },
  });
  if (JSON.stringify(await zl.deliver(webhook, seen)) !== '[200]') throw new Error('the seen receipt was not taken');
  await eventually(async () => (await mark.getAttribute('data-state')) === 'read', { timeout: 15_000, what: 'the reply marked read, live' });
  await mark.filter({ hasText: 'Read' }).waitFor();
  await screen(A.page, '26-zalo-chat-image-in-reply-read');
  if ((await zl.sent()).filter((x) => x.body.message?.text === 'We can replace the screen tomorrow.').length !== 1) {
    throw new Error('the reply was sent to Zalo again');
  }
  await A.context.close();
});

registerQueue(t, s, srv, { screen, rowOf, ticketRow, PASSWORD });
registerSetup(t, s, srv, { screen });
registerInbox(t, s, srv, { eventually, screen, messagesIn });
registerUnread(t, s, srv, { screen, ticketRow, eventually, signedIn, PASSWORD });
registerTemplates(t, s, srv, { screen, eventually, signedIn, PASSWORD });
registerNotify(t, s, srv, { eventually, screen, signedIn, PASSWORD });
registerPortal(t, s, srv, { screen, eventually });

t.step('keyboard: Enter opens a ticket, Alt+↓ the next one, K the previous; G C / G T switch screens; ? shows the shortcuts', async () => {
  const page = s.B.page;
  await page.goto('/tickets');
  const first = page.getByTestId('ticket-row').first();
  await first.waitFor();
  const firstId = await first.getAttribute('data-conversation-id');
  const secondId = await page.getByTestId('ticket-row').nth(1).getAttribute('data-conversation-id');
  await first.getByRole('link').focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(`**/tickets/${firstId}`);
  await page.getByTestId('reply-editor').waitFor();
  await page.keyboard.press('Alt+ArrowDown');
  await page.waitForURL(`**/tickets/${secondId}`);
  await page.locator('body').click({ position: { x: 5, y: 400 } });
  await page.keyboard.press('k');
  await page.waitForURL(`**/tickets/${firstId}`);
  await page.keyboard.press('g');
  await page.keyboard.press('c');
  await page.waitForURL('**/chats');
  await page.keyboard.press('g');
  await page.keyboard.press('t');
  await page.waitForURL('**/tickets');
  await page.keyboard.press('?');
  await page.getByRole('dialog', { name: 'Keyboard shortcuts' }).waitFor();
  await screen(page, '16-keyboard-shortcuts');
  await page.keyboard.press('Escape');
});

t.step('merge a ticket into another; the merged one points to the survivor', async () => {
  const page = s.B.page;
  const list = await s.admin.get('/conversations?q=' + encodeURIComponent('Question number 3'));
  const from = list.items.find((c) => c.subject === 'Question number 3');
  const into = (await s.admin.get('/conversations?q=' + encodeURIComponent('Question number 4'))).items.find((c) => c.subject === 'Question number 4');
  await page.goto('/tickets/' + from.id);
  await page.getByRole('button', { name: 'Merge' }).click();
  const dialog = page.getByRole('dialog', { name: /Merge #/ });
  await dialog.getByRole('textbox').fill('#' + into.number);
  await dialog.getByRole('button', { name: new RegExp('#' + into.number) }).click();
  await dialog.getByRole('button', { name: `Merge into #${into.number}` }).click();
  await page.waitForURL(`**/tickets/${into.id}`);
  await messagesIn(page).filter({ hasText: 'Text 4' }).waitFor();
  const merged = await s.admin.get('/conversations/' + from.id);
  if (merged.merged_into_id !== into.id) throw new Error('not merged: ' + JSON.stringify(merged));
  await page.goto('/tickets/' + from.id);
  await page.getByText('This conversation was merged').waitFor();
  await page.getByRole('link', { name: /merged into/ }).click();
  await page.waitForURL(`**/tickets/${into.id}`);
});

t.step('the main screens pass a WCAG 2.1 AA audit (axe-core): no serious or critical problem', async () => {
  if (s.a11y.length) throw new Error(`${s.a11y.length} accessibility problems:\n  ` + s.a11y.join('\n  '));
});

t.step('A signs out; B sees A go offline', async () => {
  await s.A.page.getByRole('button', { name: 'Sign out' }).click();
  await s.A.page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await eventually(async () => (await presenceOf(s.B.page, s.ann.id)) === 'offline', { what: 'B sees A offline', timeout: 15_000 });
});

const ok = await t.run({
  after: async () => {
    await s.browser?.close();
    s.mm?.stop();
    s.zalo?.stop();
    await srv.stop();
    srv.cleanup();
    console.log(`screenshots: ${SCREENSHOTS}`);
  },
});
process.exit(ok ? 0 : 1);
