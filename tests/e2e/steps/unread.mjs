// Issue #17 items 1 and 4 in the browser: unread state kept on the server (a fresh sign-in in another browser
// context shows the unread badge and the bold row at once; opening the ticket in the first context clears both,
// live) and the activity trail (compact lines between the messages after a few changes and a merge, the merged
// ticket's history linked from the survivor).

export function register(t, s, srv, { screen, ticketRow, eventually, signedIn, PASSWORD }) {
  const badge = (page) => page.getByTestId('tickets-unread-badge');
  const badgeCount = async (page) => ((await badge(page).count()) ? Number(await badge(page).textContent()) : 0);
  const isBold = async (page, id) => /\bunread\b/.test((await ticketRow(page, id).getAttribute('class')) ?? '');

  t.step('unread (#17): a fresh sign-in in a second browser context shows the unread badge and bold row; opening the ticket in the first clears both, live', async () => {
    const created = await s.admin.post('/conversations', {
      channel: s.portal.id,
      user_custom_id: 'uma-unread',
      name: 'Uma Unread',
      subject: 'Unread on the server',
      content: 'Nobody has read this yet.',
    }, 201);
    const id = created.conversation_id;
    const first = s.B.page;
    await first.goto('/chats');
    // Bob signs in again in a second browser context: a new login, nothing carried over from the first.
    const second = await signedIn(s.browser, srv.webUrl, 'bob@example.test', PASSWORD.bob);
    s.unreadSecond = second;
    await second.page.goto('/tickets');
    await ticketRow(second.page, id).waitFor();
    await eventually(() => isBold(second.page, id), { what: 'the new ticket is bold after a fresh sign-in' });
    await ticketRow(second.page, id).getByTestId('ticket-unread').waitFor({ state: 'attached' });
    const before = await eventually(() => badgeCount(second.page), { what: 'the Tickets badge after a fresh sign-in' });
    await screen(second.page, '17-unread-fresh-login');

    // The first context opens it: the second hears of it over its socket, without a reload.
    await first.goto('/tickets/' + id);
    await first.locator(`[data-testid="conversation"][data-conversation-id="${id}"]`).waitFor();
    await eventually(async () => !(await isBold(second.page, id)), { what: 'the row is no longer bold in the other context' });
    await eventually(async () => (await badgeCount(second.page)) === before - 1, { what: `the Tickets badge drops to ${before - 1}` });
    // And a sign-in after that agrees.
    const third = await signedIn(s.browser, srv.webUrl, 'bob@example.test', PASSWORD.bob);
    await third.page.goto('/tickets');
    await ticketRow(third.page, id).waitFor();
    await eventually(async () => (await badgeCount(third.page)) === before - 1, { what: 'a later sign-in shows the same count' });
    if (await isBold(third.page, id)) throw new Error('the read ticket is bold after a new sign-in');
    await third.context.close();
  });

  t.step('activity trail (#17): after a few changes and a merge the timeline shows who changed what, and the survivor links the merged ticket', async () => {
    const one = await s.admin.post('/conversations', { channel: s.portal.id, user_custom_id: 'tom-trail', name: 'Tom Trail', subject: 'Trail one', content: 'My router blinks red.' }, 201);
    const two = await s.admin.post('/conversations', { channel: s.portal.id, user_custom_id: 'tom-trail-2', name: 'Tom Trail', subject: 'Trail two', content: 'Still blinking.' }, 201);
    const [x, y] = [one.conversation_id, two.conversation_id];
    await s.admin.patch(`/conversations/${x}`, { status: 'pending', priority: 'high' });
    await s.admin.patch(`/conversations/${x}`, { add_tags: ['router'], assignee_id: s.bob.id });
    await s.admin.post(`/conversations/${y}/merge`, { into: x });
    const [xNo, yNo] = [(await s.admin.get(`/conversations/${x}`)).number, (await s.admin.get(`/conversations/${y}`)).number];

    const page = s.unreadSecond.page;
    await page.goto('/tickets/' + x);
    const view = page.locator(`[data-testid="conversation"][data-conversation-id="${x}"]`);
    const line = (kind) => view.locator(`[data-testid="activity"][data-kind="${kind}"]`);
    await line('status').filter({ hasText: 'Ada Admin changed the status from Open to Pending' }).waitFor();
    await line('priority').filter({ hasText: 'from normal to high' }).waitFor();
    await line('tags').filter({ hasText: 'added the tag router' }).waitFor();
    await line('assignee').filter({ hasText: 'assigned it to Bob Baker' }).waitFor();
    await line('merged_from').filter({ hasText: `merged #${yNo} into this conversation` }).waitFor();
    // Lines sit between the messages by time: the first message comes before the first change.
    const order = await view.locator('[data-testid="message"], [data-testid="activity"]').evaluateAll((els) => els.map((e) => e.dataset.testid));
    if (order[0] !== 'message' || !order.includes('activity')) throw new Error('unexpected timeline order: ' + order.join(', '));

    // A change made while the ticket is open shows up live.
    await s.admin.patch(`/conversations/${x}`, { subject: 'Router blinks red' });
    await line('subject').filter({ hasText: 'changed the subject to “Router blinks red”' }).waitFor();
    await screen(page, '17-activity-trail');

    // The merged ticket's history is reachable from the survivor, and links back.
    await line('merged_from').getByTestId('activity-link').click();
    await page.waitForURL(`**/tickets/${y}`);
    const merged = page.locator(`[data-testid="conversation"][data-conversation-id="${y}"]`);
    await merged.getByText('Still blinking.').waitFor();
    await merged.locator('[data-testid="activity"][data-kind="merged_into"]').filter({ hasText: `merged this conversation into #${xNo}` }).waitFor();
    await s.unreadSecond.context.close();
  });
}
