// Issue #17 items 6, 7, 10, 11 in the browser: the chat queue (longest waiting first, live; take from the list;
// "end chat" asks while the customer waits), the ticket list for triage (previews, waiting time, counts per view,
// compact rows kept, J / K from page load, a search that finds live chats), and every main screen at 1280×800 and
// 390×844 — screenshots, no horizontal overflow at 390 px, no title broken letter by letter, the navigation as a
// drawer on a phone (Escape closes it, focus stays inside and comes back); the header says "Live" only while the
// socket is up.

import { eventually, shot, signedIn } from '../lib.mjs';

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

/** The ids of the chat rows on screen, top to bottom. */
const chatOrder = (page) => page.getByTestId('chat-row').evaluateAll((rows) => rows.map((r) => Number(r.dataset.conversationId)));

/** Problems of the page's layout at its current size: horizontal overflow, titles broken inside words. */
async function layoutProblems(page) {
  return page.evaluate(() => {
    const out = [];
    const doc = document.documentElement;
    if (doc.scrollWidth > doc.clientWidth) {
      const wide = Array.from(document.querySelectorAll('body *'))
        .filter((el) => el.getBoundingClientRect().right > doc.clientWidth + 1 && getComputedStyle(el).position !== 'fixed')
        .slice(0, 3)
        .map((el) => el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : ''));
      out.push(`the page is ${doc.scrollWidth}px wide in a ${doc.clientWidth}px window (${wide.join(', ')})`);
    }
    for (const el of document.querySelectorAll('h1, h2, .conv-title, .brand')) {
      const r = el.getBoundingClientRect();
      if (!r.width || !el.textContent.trim()) continue;
      const style = getComputedStyle(el);
      const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.25;
      const lines = Math.round(r.height / line);
      const words = el.textContent.trim().split(/\s+/).length;
      if (lines > words) out.push(`"${el.textContent.trim().slice(0, 40)}" is broken over ${lines} lines (${words} words)`);
    }
    return out;
  });
}

export function register(t, s, srv, { screen, rowOf, ticketRow, PASSWORD }) {
  t.step('chat queue: longest waiting first, live; a reply moves a chat out of "waiting"; take from the list; "end chat" asks while the customer waits (#17 item 6)', async () => {
    const page = s.A.page;
    const chat = async (user, name, content) =>
      (await s.admin.post('/conversations', { channel: s.chat.id, user_custom_id: user, name, content }, 201)).conversation_id;
    s.qEarly = await chat('queue-early', 'Quinn Early', 'I have been waiting the longest');
    s.qLate = await chat('queue-late', 'Lee Later', 'I wrote a little later');
    await page.goto('/chats');
    await rowOf(page, s.qLate).waitFor();
    await page.getByTestId('chat-sort').selectOption('waiting');
    await page.getByTestId('chat-filter-waiting').click();
    for (const id of [s.qEarly, s.qLate]) await rowOf(page, id).getByTestId('chat-waiting').waitFor();
    await eventually(
      async () => {
        const ids = await chatOrder(page);
        return ids.indexOf(s.qEarly) !== -1 && ids.indexOf(s.qEarly) < ids.indexOf(s.qLate);
      },
      { what: 'the longest waiting chat above the later one' },
    );
    // The early customer writes again: the waiting time runs from their last unanswered message, so the later
    // customer, unanswered for longer now, moves to the top, live.
    await s.admin.post(`/custom-channels/${s.chat.id}/inbound`, { user_custom_id: 'queue-early', content: 'Hello??' }, 201);
    await rowOf(page, s.qEarly).getByText('Hello??').waitFor();
    await eventually(
      async () => {
        const ids = await chatOrder(page);
        return ids.indexOf(s.qLate) !== -1 && ids.indexOf(s.qLate) < ids.indexOf(s.qEarly);
      },
      { what: 'the chat unanswered for longest on top after the other customer wrote again' },
    );
    await screen(page, '30-chat-queue-waiting-longest-first');

    // An answer (from anywhere: here the API) takes the chat out of the waiting filter, live.
    await s.admin.post(`/conversations/${s.qEarly}/messages`, { content: 'Sorry for the wait, Quinn!' }, 201);
    await rowOf(page, s.qEarly).waitFor({ state: 'detached' });
    await page.getByTestId('chat-filter-all').click();
    await rowOf(page, s.qEarly).waitFor();
    if (await rowOf(page, s.qEarly).getByTestId('chat-waiting').count()) throw new Error('an answered chat still shows a waiting time');
    const order = await chatOrder(page);
    if (!(order.indexOf(s.qLate) < order.indexOf(s.qEarly))) throw new Error('the answered chat is not behind the waiting one: ' + order);

    // Take from the list: assigned to A, listed under "Mine", no take button any more.
    await rowOf(page, s.qLate).getByRole('button', { name: /^Take the chat with Lee Later/ }).click();
    await eventually(async () => (await s.admin.get(`/conversations/${s.qLate}`)).assignee_id === s.ann.id, { what: 'taken by A' });
    await rowOf(page, s.qLate).getByTestId('take').waitFor({ state: 'detached' });
    await page.getByTestId('chat-filter-mine').click();
    await rowOf(page, s.qLate).waitFor();
    if (await rowOf(page, s.qEarly).count()) throw new Error('"Mine" shows a chat nobody took');

    // End chat while the customer waits: asked first; keeping it changes nothing; confirming ends it.
    await rowOf(page, s.qLate).getByRole('link').click();
    await page.getByTestId('end-chat').click();
    const ask = page.getByRole('dialog', { name: 'End this chat?' });
    await ask.getByTestId('end-chat-warning').filter({ hasText: 'waiting for an answer to 1 message (the last at' }).waitFor();
    await screen(page, '31-end-chat-asks-while-the-customer-waits');
    await ask.getByRole('button', { name: 'Keep the chat' }).click();
    await ask.waitFor({ state: 'detached' });
    if (!(await s.admin.get(`/conversations/${s.qLate}`)).active_chat) throw new Error('keeping the chat ended it');
    await page.getByTestId('end-chat').click();
    await ask.getByTestId('end-chat-confirm').click();
    await page.waitForURL(`**/tickets/${s.qLate}`);
    if ((await s.admin.get(`/conversations/${s.qLate}`)).active_chat) throw new Error('the chat did not end');
    // The answered chat ends without a question.
    await page.goto(`/chats/${s.qEarly}`);
    await page.getByTestId('end-chat').click();
    await page.waitForURL(`**/tickets/${s.qEarly}`);
    await page.evaluate(() => {
      localStorage.removeItem('sb.chats.filter');
      localStorage.removeItem('sb.chats.sort');
    });
  });

  t.step('ticket list: a preview and the waiting time on each row, a count on every view, compact rows kept, J / K from page load, a search finds live chats (#17 item 7)', async () => {
    const page = s.B.page;
    const q5 = (await s.admin.get('/conversations?q=' + encodeURIComponent('Question number 5'))).items.find((c) => c.subject === 'Question number 5');
    await page.goto('/tickets?q=' + encodeURIComponent('Question number 5'));
    const row = ticketRow(page, q5.id);
    await row.getByTestId('row-preview').filter({ hasText: 'Text 5' }).waitFor();
    await row.getByTestId('row-waiting').waitFor();
    await page.goto('/tickets');
    await page.getByTestId('ticket-row').first().waitFor();
    // Counts: each view's count is what the list totals for B (B's channels only).
    const total = (query) => page.evaluate(async (qs) => (await (await fetch('/api/v1/conversations?per_page=1&' + qs)).json()).total, query);
    for (const [name, query] of [['All tickets', ''], ['Unassigned', 'assignee=none'], ['Open', 'status=open']]) {
      const want = String(await total(query));
      const link = page.getByTestId('view-link').filter({ has: page.locator('.view-name', { hasText: new RegExp('^' + name + '$') }) });
      await eventually(async () => (await link.getByTestId('view-count').textContent()).replace(/\D/g, '') === want, { what: `${name} counts ${want}` });
    }
    // Compact rows: more per screen, and kept after a reload.
    const height = async () => (await page.getByTestId('ticket-row').first().boundingBox()).height;
    const comfortable = await height();
    await page.getByTestId('density-toggle').click();
    await eventually(async () => (await height()) < comfortable - 10, { what: 'compact rows' });
    await screen(page, '32-ticket-list-compact');
    await page.reload();
    await page.getByTestId('ticket-row').first().waitFor();
    if ((await height()) >= comfortable - 10) throw new Error('the compact density was not kept');
    if ((await page.getByTestId('density-toggle').getAttribute('aria-pressed')) !== 'true') throw new Error('the toggle does not say compact');
    await page.getByTestId('density-toggle').click();
    await eventually(async () => (await height()) === comfortable, { what: 'comfortable rows again' });
    await screen(page, '33-ticket-list-previews-waiting-counts');
    // J / K right after the page loads, with nothing focused.
    await page.goto('/tickets');
    await page.getByTestId('ticket-row').nth(1).waitFor();
    const focusedIndex = () => page.evaluate(() => document.activeElement?.dataset?.index ?? null);
    await page.keyboard.press('j');
    await eventually(async () => (await focusedIndex()) === '0', { what: 'J focuses the first row' });
    await page.keyboard.press('j');
    await eventually(async () => (await focusedIndex()) === '1', { what: 'J moves down' });
    await page.keyboard.press('k');
    await eventually(async () => (await focusedIndex()) === '0', { what: 'K moves up' });
    // A search finds a live chat too, and opens it among the chats.
    const live = (await s.admin.post('/conversations', { channel: s.chat.id, user_custom_id: 'search-me', name: 'Sergio Searchable', content: 'Where is my order 5521?' }, 201)).conversation_id;
    await page.getByLabel('Search tickets').fill('Sergio Searchable');
    const hit = ticketRow(page, live);
    await hit.getByText('Live chat').waitFor();
    await hit.getByRole('link').click();
    await page.waitForURL(`**/chats/${live}`);
    await s.admin.post(`/conversations/${live}/end`, {});
  });

  t.step('every main screen at 1280×800 and 390×844: screenshots, no horizontal overflow at 390 px, no title broken letter by letter; the phone navigation is a drawer (#17 items 10, 11)', async () => {
    const problems = [];
    const both = async (page, name, ready) => {
      await page.setViewportSize(DESKTOP);
      await ready();
      await shot(page, `40-${name}-1280`);
      await page.setViewportSize(PHONE);
      await ready();
      await screen(page, `41-${name}-390`);
      for (const p of await layoutProblems(page)) problems.push(`${name} at 390 px: ${p}`);
    };

    // Signed out: the sign-in page.
    const anon = await s.browser.newContext({ baseURL: srv.webUrl, viewport: DESKTOP });
    const login = await anon.newPage();
    await login.goto('/login');
    await both(login, 'login', () => login.getByRole('heading', { name: 'Sign in' }).waitFor());
    await anon.close();

    const A = await signedIn(s.browser, srv.webUrl, 'ann@example.test', PASSWORD.ann, { viewport: DESKTOP });
    const page = A.page;
    const open = (await s.admin.post('/conversations', { channel: s.chat.id, user_custom_id: 'phone-user', name: 'Pat Phone', content: 'Writing from my phone, is this the right place for a refund question about order 7781?' }, 201)).conversation_id;
    await page.goto('/chats');
    await both(page, 'chats', () => rowOf(page, open).waitFor());
    await page.goto(`/chats/${open}`);
    await both(page, 'chat-conversation', async () => {
      await page.getByTestId('reply-editor').waitFor();
      await page.getByRole('textbox', { name: 'Chat reply' }).waitFor();
    });
    // At 390 px the reply box is on screen and in use; the header's actions are one menu; the details a panel.
    const box = await page.getByTestId('reply-editor').boundingBox();
    if (!box || box.x < 0 || box.x + box.width > PHONE.width + 1 || box.y + box.height > PHONE.height + 1) throw new Error('the reply box is off screen: ' + JSON.stringify(box));
    if (await page.getByTestId('end-chat').count()) throw new Error('the header shows its actions inline at 390 px');
    await page.getByTestId('conversation-actions').click();
    await page.getByRole('menuitem', { name: 'End chat' }).waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('menu').waitFor({ state: 'detached' });
    await page.getByTestId('details-toggle').click();
    await page.getByRole('complementary', { name: 'Conversation details' }).getByText('Pat Phone').first().waitFor();
    await screen(page, '42-chat-details-panel-390');
    await page.keyboard.press('Escape');
    await eventually(async () => (await page.getByTestId('details-toggle').getAttribute('aria-expanded')) === 'false', { what: 'details closed' });
    await page.getByRole('textbox', { name: 'Chat reply' }).click();
    await page.keyboard.type('Yes, Pat: what is the refund about?');
    await page.getByTestId('send').click();
    await page.locator('[data-testid="conversation"] [data-testid="message"]').filter({ hasText: 'what is the refund about' }).waitFor();

    // The navigation drawer: the menu button opens it, focus stays inside, Escape closes it and focus returns.
    const nav = page.getByRole('navigation', { name: 'Main' });
    if (await nav.isVisible()) throw new Error('the navigation takes room on a phone');
    await page.getByTestId('menu-button').click();
    await nav.waitFor();
    await screen(page, '43-navigation-drawer-390');
    for (let i = 0; i < 8; i++) {
      await page.keyboard.press('Tab');
      if (!(await page.evaluate(() => !!document.activeElement?.closest('#main-nav')))) throw new Error('focus left the open drawer');
    }
    await page.keyboard.press('Escape');
    await nav.waitFor({ state: 'hidden' });
    if ((await page.evaluate(() => document.activeElement?.dataset?.testid)) !== 'menu-button') throw new Error('focus did not return to the menu button');
    await page.getByTestId('menu-button').click();
    await nav.getByRole('link', { name: /^Tickets/ }).click();
    await page.waitForURL('**/tickets');
    await nav.waitFor({ state: 'hidden' });

    await page.setViewportSize(DESKTOP);
    await both(page, 'tickets', () => page.getByTestId('ticket-row').first().waitFor());
    await page.goto(`/tickets/${s.ticket}`);
    await both(page, 'ticket-conversation', () => page.getByTestId('reply-editor').waitFor());
    await page.goto('/new');
    await both(page, 'new-conversation', () => page.getByLabel('Send from').waitFor());

    // The header says "Live" only while the socket is up: the network goes away, and it says so at once (not after
    // the socket's silence limit); back, and it is live again.
    const conn = page.getByTestId('connection-state');
    await eventually(async () => (await conn.getAttribute('data-state')) === 'live', { what: 'live' });
    await A.context.setOffline(true);
    await eventually(async () => (await conn.getAttribute('data-state')) !== 'live' && !/^\s*Live\s*$/.test(await conn.textContent()), { timeout: 3000, what: 'not "Live" while offline' });
    await A.context.setOffline(false);
    await eventually(async () => (await conn.getAttribute('data-state')) === 'live' && /Live/.test(await conn.textContent()), { timeout: 15_000, what: 'live again' });
    await A.context.close();

    const admin = await signedIn(s.browser, srv.webUrl, 'admin@example.test', PASSWORD.admin, { viewport: DESKTOP });
    for (const [tab, heading] of [
      ['agents', 'Agents'],
      ['channels', 'Channels'],
      ['statuses', 'Statuses'],
      ['teams', 'Teams'],
      ['tokens', 'API tokens'],
    ]) {
      await admin.page.setViewportSize(DESKTOP);
      await admin.page.goto('/admin/' + tab);
      await both(admin.page, 'admin-' + tab, () => admin.page.getByRole('heading', { name: heading, exact: true }).waitFor());
    }
    await admin.context.close();
    await s.admin.post(`/conversations/${open}/end`, {});
    if (problems.length) throw new Error(problems.length + ' layout problems:\n  ' + problems.join('\n  '));
  });
}
