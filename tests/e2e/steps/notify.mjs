// Issue #18 items 2 and 3 in the dashboard: an admin opens Administration › Notifications, sees every NT-1…NT-13
// setting with its explanation and the seed's defaults, switches one off (saved at once, still off after a reload)
// and back on. Registered in run.mjs after the inbox steps.

export function register(t, s, srv, { eventually, screen, signedIn, PASSWORD }) {
  t.step('an admin sees and changes the email notification settings (NT-1…NT-13, #18)', async () => {
    const admin = await signedIn(s.browser, srv.webUrl, 'admin@example.test', PASSWORD.admin);
    const page = admin.page;
    await page.goto('/admin/notifications');
    const box = page.getByTestId('notification-settings');
    await box.waitFor();
    const boxes = box.locator('input[type="checkbox"]');
    if ((await boxes.count()) !== 13) throw new Error(`expected 13 settings, saw ${await boxes.count()}`);
    const checked = async (name) => box.locator(`input[name="${name}"]`).isChecked();
    for (const on of ['enabled', 'ticket_closed', 'ticket_confirmation', 'welcome_email']) {
      if (!(await checked(on))) throw new Error(`${on} should be on by default`);
    }
    for (const off of ['cc_subscribers', 'customer_updates_technicians_only']) {
      if (await checked(off)) throw new Error(`${off} should be off by default`);
    }
    await screen(page, '18-notification-settings');
    await box.locator('input[name="ticket_confirmation"]').uncheck();
    await page.getByText('Saved.').waitFor();
    await page.reload();
    await box.waitFor();
    await eventually(async () => !(await checked('ticket_confirmation')), { what: 'the change kept after a reload' });
    const stored = await s.admin.get('/settings/notifications');
    if (stored.ticket_confirmation !== false) throw new Error('the API does not show the change');
    await box.locator('input[name="ticket_confirmation"]').check();
    await page.getByText('Saved.').waitFor();
    await admin.context.close();
  });
}
