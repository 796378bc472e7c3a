// Issue #17 items 2 and 3 in the dashboard: agent A @mentions agent B in an internal note (the
// editor's autocomplete); B's bell count rises live, with a desktop pop-up (B's browser notifications
// are on); B opens the inbox and jumps to the conversation, where the mention is highlighted; the
// notification is then read. Registered in run.mjs before the keyboard step.

export function register(t, s, srv, { eventually, screen, messagesIn }) {
  t.step('A @mentions B in a note; B\'s bell count rises live, B opens the inbox and jumps to the conversation with the mention highlighted (#17)', async () => {
    const A = s.A.page;
    const B = s.B.page;
    const bell = B.getByTestId('inbox-bell');
    const count = async () => {
      const badge = B.getByTestId('inbox-count');
      return (await badge.count()) ? Number(await badge.textContent()) : 0;
    };
    await B.goto('/tickets');
    await bell.waitFor();
    await eventually(async () => (await B.getByTestId('connection-state').getAttribute('data-state')) === 'live', { what: 'B live' });
    const before = await count();
    const popups = () => B.evaluate(() => window.__notifications.map((n) => n.title));
    const popupsBefore = (await popups()).length;

    const ticket = await s.admin.get('/conversations/' + s.ticket);
    await A.goto('/tickets/' + s.ticket);
    await A.getByTestId('reply-editor').waitFor();
    await A.getByRole('button', { name: 'Internal note' }).click();
    const editor = A.getByRole('textbox', { name: 'Internal note' });
    await editor.click();
    await A.keyboard.type('Could you double-check the refund, @Bo');
    const list = A.getByRole('listbox', { name: 'Mention an agent' });
    await list.getByRole('option', { name: 'Bob Baker' }).waitFor();
    await A.keyboard.press('Enter');
    await editor.locator('.mention', { hasText: '@Bob Baker' }).waitFor();
    await A.keyboard.type('thanks!');
    await A.getByTestId('send').click();
    const note = messagesIn(A).filter({ hasText: 'double-check the refund' });
    await note.locator('mark.mention', { hasText: '@Bob Baker' }).waitFor();

    // B: live, without a reload.
    await eventually(async () => (await count()) === before + 1, { what: `B's bell count ${before + 1}` });
    await eventually(async () => (await popups()).length > popupsBefore && (await popups()).some((p) => p.includes('Ann Archer mentioned you')), {
      what: 'a desktop pop-up for the mention',
    });
    await bell.click();
    const panel = B.getByRole('dialog', { name: 'Notification inbox' });
    const item = panel.getByTestId('inbox-item').filter({ hasText: `Ann Archer mentioned you in #${ticket.number}` });
    await item.waitFor();
    if ((await item.getAttribute('data-unread')) !== 'true') throw new Error('the new notification is not unread');
    await screen(B, '17-notification-inbox');
    // Keyboard: the first notification has the focus; Escape closes and gives it back to the bell.
    await B.keyboard.press('Escape');
    await panel.waitFor({ state: 'detached' });
    if (!(await bell.evaluate((el) => el === document.activeElement))) throw new Error('the focus did not return to the bell');
    // Enter on the bell opens the panel with the newest notification focused; Enter opens it.
    await B.keyboard.press('Enter');
    const open = item.locator('.inbox-open');
    await open.waitFor();
    if (!(await open.evaluate((el) => el === document.activeElement))) throw new Error('the newest notification is not focused');
    await B.keyboard.press('Enter');
    await B.waitForURL(`**/tickets/${s.ticket}`);
    const seen = messagesIn(B).filter({ hasText: 'double-check the refund' });
    await seen.locator('mark.mention', { hasText: '@Bob Baker' }).waitFor();
    await eventually(async () => (await count()) === before, { what: 'the notification read' });
    const page = await B.evaluate(() => fetch('/api/v1/me/notifications').then((r) => r.json()));
    const stored = page.items.find((n) => n.kind === 'mentioned' && n.conversation_id === ticket.id);
    if (!stored || stored.read_at === null) throw new Error('not read on the server: ' + JSON.stringify(stored));
    await screen(B, '18-note-with-mention');
  });
}
