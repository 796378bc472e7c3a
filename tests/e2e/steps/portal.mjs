// Issue #18 in the browser: the customer portal. Carla (a customer the earlier steps created, with an email
// identity; a ticket of hers on a channel of its own) asks for a password on /portal/forgot; the mailed link (read
// from the mail itself: the run's mailbox is pointed at a small SMTP sink, lib.mjs SmtpSink) sets it; she signs out and signs in with the form, sees her tickets, opens one, replies
// with a file, closes it and rates it Good; an agent sees the rating on the ticket. Screenshots at 1280 and 390 px
// wide, each audited with axe like the dashboard's screens. Registered in run.mjs after the agents' steps.

import { SmtpSink } from '../lib.mjs';

const CARLA = 'carla@example.org';
const PASSWORD = 'carla-portal-1';

/** The "set your password" link in the newest mail the sink got for `email` (the outbox keeps the token sealed). */
function resetLink(sink, email) {
  for (const m of [...sink.messages].reverse()) {
    if (!m.to.includes(email)) continue;
    const link = SmtpSink.text(m.raw).match(/https?:\/\/[^\s"<>]+\/portal\/reset\/[A-Za-z0-9_-]+/);
    if (link) return link[0];
  }
  return null;
}

const SUBJECT = 'Parcel 77 arrived damaged';

export function register(t, s, srv, { screen, eventually }) {
  t.step('a customer sets a password through "forgot password", signs in to the portal, replies with a file, closes and rates (#18)', async () => {
    // A ticket of Carla's on a channel of its own (linked to her by her email, CC-6), so earlier steps do not touch it.
    const shop = await s.admin.post('/channels', { kind: 'custom', name: 'Shop', mode: 'async' }, 201);
    const created = await s.admin.post('/conversations', {
      channel: shop.id, user_custom_id: 'carla-shop', name: 'Carla Customer', email: CARLA, subject: SUBJECT,
      content: 'The box was crushed and the lamp is broken.',
    }, 201);
    const ticket = created.conversation_id;
    // System mail leaves through the first enabled mailbox: the one an earlier step connected now sends to the sink.
    const sink = await SmtpSink.start();
    const mailbox = (await s.admin.get('/email-channels')).find((m) => m.name === 'Support mailbox');
    if (!mailbox) throw new Error('no "Support mailbox" from the earlier step');
    await s.admin.patch(`/email-channels/${mailbox.id}`, { enabled: true, poll_interval_s: 300, smtp: { port: sink.port, tls: 'none' } });
    if (created.user_id !== s.carla) throw new Error('not linked to Carla: ' + JSON.stringify(created));
    for (const [width, height, tag] of [
      [1280, 800, '1280'],
      [390, 844, '390'],
    ]) {
      const ctx = await s.browser.newContext({ baseURL: srv.webUrl, viewport: { width, height } });
      const page = await ctx.newPage();
      if (tag === '1280') {
        // First visit: no session, the sign-in form; "forgot password" mails a link.
        await page.goto('/portal');
        await page.getByRole('heading', { name: 'Sign in to your tickets' }).waitFor();
        await page.getByRole('link', { name: /Forgot your password/ }).click();
        await page.getByRole('heading', { name: 'Set or reset your password' }).waitFor();
        await page.getByLabel('Email').fill(CARLA);
        await page.getByRole('button', { name: 'Mail me a link' }).click();
        await page.getByTestId('portal-info').filter({ hasText: 'a link to set a password is on its way' }).waitFor();
        await screen(page, `40-portal-forgot-${tag}`);
        let link = null;
        await eventually(async () => (link = resetLink(sink, CARLA)) !== null, { timeout: 20_000, what: 'the reset mail at the SMTP sink' });
        await page.goto(new URL(link).pathname);
        await page.getByRole('heading', { name: 'Choose your password' }).waitFor();
        await page.getByLabel('New password (at least 8 characters)').fill(PASSWORD);
        await page.getByLabel('The same again').fill(PASSWORD);
        await page.getByRole('button', { name: 'Save and sign in' }).click();
        await page.getByRole('heading', { name: 'Your tickets' }).waitFor();
        await page.getByRole('button', { name: 'Sign out' }).click();
        await page.getByRole('heading', { name: 'Sign in to your tickets' }).waitFor();
      } else {
        await page.goto('/portal');
      }
      // Sign in with the form (keyboard: Enter submits).
      await page.getByRole('heading', { name: 'Sign in to your tickets' }).waitFor();
      await page.getByLabel('Email').fill(CARLA);
      await page.getByLabel('Password').fill('not her password');
      await page.getByLabel('Password').press('Enter');
      await page.getByRole('alert').filter({ hasText: /wrong email or password/i }).waitFor();
      await screen(page, `41-portal-login-${tag}`);
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByLabel('Password').press('Enter');
      await page.getByRole('heading', { name: 'Your tickets' }).waitFor();
      const row = page.getByTestId('portal-ticket-row').filter({ hasText: SUBJECT });
      await row.waitFor();
      await screen(page, `42-portal-tickets-${tag}`);

      if (tag === '1280') {
        // Open the ticket, reply with a file, close it, rate it.
        await row.getByRole('link').click();
        await page.getByRole('heading', { name: SUBJECT }).waitFor();
        await page.getByTestId('portal-message').filter({ hasText: 'the lamp is broken' }).waitFor();
        await page.getByLabel('Reply').fill('Here is my bank statement.');
        await page.getByLabel('Attach files').setInputFiles({ name: 'statement.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.4 statement') });
        await page.getByRole('list', { name: 'Files to send' }).getByText('statement.pdf').waitFor();
        await page.getByRole('button', { name: 'Send' }).click();
        await page.getByTestId('portal-info').filter({ hasText: 'Your message was sent.' }).waitFor();
        const mine = page.getByTestId('portal-message').filter({ hasText: 'Here is my bank statement.' });
        await mine.getByTestId('portal-attachment').filter({ hasText: 'statement.pdf' }).waitFor();
        // Agents see it, with the file.
        await eventually(async () => {
          const msgs = await s.admin.get(`/conversations/${ticket}/messages`);
          return msgs.some((m) => m.content === 'Here is my bank statement.' && m.attachments.some((a) => a.file_name === 'statement.pdf'));
        }, { what: 'the reply with its file for agents' });
        await screen(page, `43-portal-ticket-${tag}`);
        await page.getByRole('button', { name: 'Close ticket' }).click();
        await page.getByRole('heading', { name: 'How did we do?' }).waitFor();
        await page.getByRole('button', { name: 'Good' }).click();
        await page.getByTestId('portal-rated').filter({ hasText: 'you rated this ticket good' }).waitFor();
        if ((await page.getByRole('button', { name: 'Good' }).getAttribute('aria-pressed')) !== 'true') throw new Error('Good is not shown as chosen');
        await screen(page, `44-portal-rated-${tag}`);
        const c = await s.admin.get(`/conversations/${ticket}`);
        if (c.csat !== 'good' || c.status !== 'closed') throw new Error('the agent side: ' + JSON.stringify({ csat: c.csat, status: c.status }));
      } else {
        // On a phone: the ticket, its reply form and the rating fit the screen.
        await row.getByRole('link').click();
        await page.getByRole('heading', { name: SUBJECT }).waitFor();
        await page.getByTestId('portal-rating').waitFor();
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
        if (overflow) throw new Error('the portal scrolls sideways at 390 px');
        await screen(page, `43-portal-ticket-${tag}`);
      }
      await ctx.close();
    }
    await sink.close();
  });
}
