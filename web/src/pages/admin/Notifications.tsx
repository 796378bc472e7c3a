// Administration › Notifications: the instance's email notification settings (NT-1…NT-13, issue #18), one checkbox
// each with the seed's explanation. Saved at once, field by field (PATCH /settings/notifications).

import { useEffect, useState } from 'preact/hooks';
import { api, errorText } from '../../api';
import { FormError, SectionHead } from './kit';

export type NotificationSettings = {
  enabled: boolean;
  ticket_closed: boolean;
  ticket_confirmation: boolean;
  new_ticket_admins: boolean;
  new_ticket_category: boolean;
  customer_update_category: boolean;
  kb_article_category: boolean;
  ticket_taken_category: boolean;
  include_attachments: boolean;
  auto_login_links: boolean;
  cc_subscribers: boolean;
  customer_updates_technicians_only: boolean;
  welcome_email: boolean;
};

const SETTINGS: [keyof NotificationSettings, string, string][] = [
  ['enabled', 'Email notifications enabled', 'When on, the help desk tells customers when their tickets are updated, and tells the team about new tickets and new updates to existing ones. Replies to customers are sent either way.'],
  ['ticket_closed', '"Ticket closed" notification', 'Ticket submitters are notified when their tickets are closed.'],
  ['ticket_confirmation', 'Ticket confirmation', 'Submitters get an email when their ticket is created — only when they submitted it by email, not through the web.'],
  ['new_ticket_admins', 'Notify all admins of new tickets', 'Admins are notified of every ticket created, in every category.'],
  ['new_ticket_category', 'Notify technicians of new tickets in their categories', 'Technicians are notified of new tickets in the categories they can access — also when a ticket is MOVED into their category, if they did not see it in the old one.'],
  ['customer_update_category', 'Notify ALL technicians of the category when a customer updates a ticket', 'Whether or not the technician is assigned to the ticket.'],
  ['ticket_taken_category', 'Notify ALL technicians of the category when another technician takes a ticket', 'Prevents collisions: the others learn that someone took it.'],
  ['kb_article_category', 'Notify ALL technicians of the category when a KB article changes', 'When another technician or admin updates a knowledge-base article in their category (sent once the knowledge base exists).'],
  ['include_attachments', 'Include attachments in outgoing notifications', 'Uncheck to leave the ticket’s files out of notifications (e.g. for HIPAA). This also stops serving inline images from email to customers.'],
  ['auto_login_links', 'Auto-login links in outgoing notifications', 'Links that sign the ticket’s submitter in without a password, valid three days — only for customers, never technicians or admins. Handy, but whoever receives a forwarded notification can use the link too.'],
  ['cc_subscribers', 'Send updates to all subscribers in one email (CC)', 'By default every subscriber gets an email of their own (recommended). Checked: one email with all subscribers in Cc — "reply all" can confuse people, and auto-login and rating links are left out.'],
  ['customer_updates_technicians_only', 'Send customers’ updates to technicians only', 'When someone replies to a ticket by email, the update normally goes to all its subscribers. Checked: updates from non-technicians go to technicians only, so subscribers never see each other’s data.'],
  ['welcome_email', 'Welcome email for new users', 'New customer accounts get a welcome email.'],
];

export function Notifications() {
  const [settings, setSettings] = useState<NotificationSettings | null>(null);
  const [error, setError] = useState('');
  const [saved, setSaved] = useState('');
  useEffect(() => {
    api
      .get<NotificationSettings>('/settings/notifications')
      .then(setSettings)
      .catch((e) => setError(errorText(e)));
  }, []);
  const change = async (key: keyof NotificationSettings, value: boolean) => {
    setError('');
    setSaved('');
    try {
      setSettings(await api.patch<NotificationSettings>('/settings/notifications', { [key]: value }));
      setSaved('Saved.');
    } catch (e) {
      setError(errorText(e));
    }
  };
  return (
    <section>
      <SectionHead title="Email notifications" />
      <FormError error={error} />
      {settings && (
        <fieldset class="checks notification-settings" data-testid="notification-settings">
          <legend>Who is emailed about what</legend>
          {SETTINGS.map(([key, label, help]) => (
            <label key={key} class="check">
              <input type="checkbox" name={key} checked={settings[key]} disabled={key !== 'enabled' && !settings.enabled} onChange={(e) => change(key, e.currentTarget.checked)} />{' '}
              <span>
                <strong>{label}</strong>
                <br />
                <span class="small muted">{help}</span>
              </span>
            </label>
          ))}
        </fieldset>
      )}
      <p class="small muted" role="status">
        {saved}
      </p>
    </section>
  );
}
