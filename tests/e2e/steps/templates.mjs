// Issue #18 item 4 (TP-1…TP-3) in the browser: the admin's notification template editor — pick a notification, edit
// the body with masks, the live preview renders them against the ticket picked, an unknown mask is flagged, an empty
// body says "not sent", save and reset to default. Screenshot: 40-admin-templates.

export function register(t, s, srv, { screen, eventually, signedIn, PASSWORD }) {
  t.step('notification templates: edit with masks, live preview against a real ticket, unknown masks flagged, empty = not sent, save, reset (TP-1…TP-3)', async () => {
    const created = await s.admin.post(
      '/conversations',
      {
        channel: s.portal.id,
        user_custom_id: 'tess-template',
        name: 'Tess Template',
        email: 'tess@example.org',
        subject: 'Template preview ticket',
        content: 'My badge does not open the door',
      },
      201,
    );
    const conv = created.conversation_id;
    const admin = await signedIn(s.browser, srv.webUrl, 'admin@example.test', PASSWORD.admin, { viewport: { width: 1440, height: 900 } });
    const page = admin.page;
    await page.goto('/admin/templates');
    await page.getByRole('heading', { name: 'Notification templates', exact: true }).waitFor();
    await page.locator('[data-kind="ticket_updated"]').click();
    await page.getByRole('heading', { name: /^Ticket updated/ }).waitFor();
    await page.getByText('An empty body means this notification is not sent.').waitFor();

    // Pick the ticket and write a body with masks: the preview renders them against it.
    await page.getByLabel('Preview with ticket').selectOption(String(conv));
    await page.getByLabel('Subject').fill('Update on #Subject#');
    await page.getByLabel('Body (limited HTML)').fill('<p>Hello #From#, about <strong>#Subject#</strong> via #Via#.</p><p>#Nope#</p>');
    const html = page.getByTestId('preview-html');
    await eventually(async () => ((await html.textContent()) ?? '').includes('Hello Tess Template, about Template preview ticket via api.'), {
      what: 'the preview renders the masks against the ticket',
    });
    await eventually(async () => (await page.getByTestId('preview-subject').textContent()) === 'Update on Template preview ticket', {
      what: 'the preview subject',
    });
    await page.getByTestId('unknown-masks').filter({ hasText: '#Nope#' }).waitFor();

    // A mask inserted from the list appears in the preview too.
    await page.getByRole('button', { name: '#TicketID#', exact: true }).click();
    await eventually(async () => ((await html.textContent()) ?? '').includes(String(created.number ?? '')), { what: 'the inserted #TicketID#' });
    await screen(page, '40-admin-templates');

    // Save: stored as written.
    await page.getByRole('button', { name: 'Save' }).click();
    await eventually(async () => (await s.admin.get('/notification-templates/ticket_updated')).subject === 'Update on #Subject#', {
      what: 'the template saved',
    });
    await page.locator('[data-kind="ticket_updated"]').filter({ hasText: 'edited' }).waitFor();

    // An empty body: "not sent", in the editor and the preview, and saved as such.
    await page.getByLabel('Body (limited HTML)').fill('');
    await page.getByTestId('not-sent').waitFor();
    await page.getByTestId('preview').filter({ hasText: 'Not sent' }).waitFor();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('[data-kind="ticket_updated"]').filter({ hasText: 'not sent' }).waitFor();
    await eventually(async () => (await s.admin.get('/notification-templates/ticket_updated')).sent === false, { what: 'saved as not sent' });

    // Reset to default.
    page.once('dialog', (d) => d.accept());
    await page.getByRole('button', { name: 'Reset to default' }).click();
    await page.locator('[data-kind="ticket_updated"]').filter({ hasText: 'default' }).waitFor();
    await eventually(async () => (await s.admin.get('/notification-templates/ticket_updated')).is_default === true, { what: 'reset' });
    await admin.context.close();
  });
}
