// The mailboxes table of the Channels page: health, mail log, settings and delivery log of each.

import { useEffect, useState } from 'preact/hooks';
import { api, errorText } from '../../api';
import { ago, bytes, full } from '../../format';
import type { Channel, EmailChannel, MailLogEntry } from '../../types';
import { Modal } from '../../components/common';
import { Deliveries } from './Deliveries';
import { MailboxForm } from './MailboxForm';
import { confirmDelete, FormError } from './kit';

function since(iso: string): string {
  const a = ago(iso);
  return a === 'now' ? 'just now' : /^\d+[mh]$/.test(a) ? a + ' ago' : a;
}

function MailboxHealthCell({ m }: { m: EmailChannel }) {
  const h = m.health;
  const failures = h.consecutive_failures;
  return (
    <div class="mailbox-health small" data-testid="mailbox-health" data-failures={failures}>
      {failures > 0 ? (
        <span class="pill delivery-failed">
          {failures} failed {failures === 1 ? 'check' : 'checks'} in a row
        </span>
      ) : h.last_success_at ? (
        <span class="pill delivery-delivered">connected</span>
      ) : (
        <span class="pill delivery-pending">not checked yet</span>
      )}
      <div>
        Last success:{' '}
        {h.last_success_at ? (
          <time dateTime={h.last_success_at} title={full(h.last_success_at)}>
            {since(h.last_success_at)}
          </time>
        ) : (
          'never'
        )}
      </div>
      <div>Imported: {h.imported_total}</div>
      {h.last_error && <div class="form-error inline">Last error: {h.last_error}</div>}
    </div>
  );
}

function MailLog({ mailbox }: { mailbox: EmailChannel }) {
  const [rows, setRows] = useState<MailLogEntry[] | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    api
      .get<MailLogEntry[]>(`/email-channels/${mailbox.id}/log`)
      .then(setRows)
      .catch((e) => setError(errorText(e)));
  }, [mailbox.id]);
  if (error) return <FormError error={error} />;
  if (!rows) return <p class="muted">Loading the mail log…</p>;
  if (!rows.length) return <p class="muted">No mail was set aside: every mail this mailbox received made a ticket.</p>;
  return (
    <table class="data small" data-testid="mail-log">
      <thead>
        <tr>
          <th scope="col">When</th>
          <th scope="col">From</th>
          <th scope="col">Subject</th>
          <th scope="col">Outcome</th>
          <th scope="col">Reason</th>
          <th scope="col">Source</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.id}>
            <td>
              <time dateTime={r.created_at} title={full(r.created_at)}>
                {ago(r.created_at)}
              </time>
            </td>
            <td>{r.from_address || <span class="muted">—</span>}</td>
            <td>{r.subject || <span class="muted">(no subject)</span>}</td>
            <td>
              <span class={'pill ' + (r.outcome === 'junk' ? 'status-closed' : 'delivery-failed')}>{r.outcome}</span>
            </td>
            <td class="small">{r.reason}</td>
            <td class="small">
              <a
                href={`/api/v1/email-channels/${mailbox.id}/log/${r.id}/source`}
                download={`mail-${r.id}.eml`}
                aria-label={`Download the source of "${r.subject || 'no subject'}" (${bytes(r.size_bytes)})`}
              >
                .eml, {bytes(r.size_bytes)}
              </a>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The email group of the channel list: each mailbox with its state, health and actions. */
export function Mailboxes({ channels, onChanged }: { channels: Channel[]; onChanged: () => void }) {
  const [mailboxes, setMailboxes] = useState<EmailChannel[] | null>(null);
  const [loadError, setLoadError] = useState('');
  const [editing, setEditing] = useState<EmailChannel | null>(null);
  const [log, setLog] = useState<EmailChannel | null>(null);
  const [deliveries, setDeliveries] = useState<EmailChannel | null>(null);
  const [notes, setNotes] = useState<Record<number, { text: string; error: boolean }>>({});
  const reload = async () => {
    try {
      setMailboxes(await api.get<EmailChannel[]>('/email-channels'));
      setLoadError('');
    } catch (e) {
      setLoadError(errorText(e));
    }
  };
  // The list follows the channels in the store (added, deleted), and health changes by itself.
  const ids = channels.map((c) => c.id + ':' + c.enabled).join(',');
  useEffect(() => {
    reload();
  }, [ids]);
  useEffect(() => {
    const t = window.setInterval(reload, 10_000);
    return () => window.clearInterval(t);
  }, []);
  const note = (id: number, text: string, error = false) => setNotes((n) => ({ ...n, [id]: { text, error } }));
  const saved = () => {
    onChanged();
    reload();
  };
  const enable = async (m: EmailChannel) => {
    try {
      await api.patch(`/email-channels/${m.id}`, { enabled: true });
      note(m.id, 'Enabled again: checking the mailbox.');
      saved();
    } catch (e) {
      note(m.id, errorText(e), true);
    }
  };
  const check = async (m: EmailChannel) => {
    try {
      await api.post(`/email-channels/${m.id}/check`);
      note(m.id, 'Checking the mailbox now…');
      window.setTimeout(reload, 1500);
    } catch (e) {
      note(m.id, errorText(e), true);
    }
  };
  const remove = async (m: EmailChannel) => {
    await confirmDelete(`Delete the mailbox ${m.name} and its tickets? Mail on the server is left alone.`, `/email-channels/${m.id}`, saved);
  };
  if (loadError && !mailboxes) {
    // Without the mailbox view (e.g. a channel whose settings the connector cannot read), the
    // channel list still allows deleting what is there.
    return (
      <>
        <FormError error={`The mailboxes cannot be loaded: ${loadError}`} />
        {channels.map((c) => (
          <div key={c.id} class="row">
            <span>{c.name}</span>
            <button
              type="button"
              class="btn small danger-outline"
              onClick={async () => {
                await confirmDelete(`Delete the channel ${c.name} and its tickets?`, `/channels/${c.id}`, saved);
              }}
            >
              Delete {c.name}
            </button>
          </div>
        ))}
      </>
    );
  }
  if (!mailboxes) return <p class="muted small">Loading the mailboxes…</p>;
  if (!mailboxes.length) return <p class="muted small">None.</p>;
  return (
    <>
      <table class="data" data-testid="mailboxes">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Mailbox</th>
            <th scope="col">State</th>
            <th scope="col">Health</th>
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {mailboxes.map((m) => (
            <tr key={m.id} data-testid="mailbox-row" data-channel-id={m.id}>
              <td>{m.name}</td>
              <td class="small">
                <div>
                  {m.protocol.toUpperCase()} {m.host}:{m.port}
                </div>
                <div class="muted">{m.address ?? m.smtp.from_address}</div>
              </td>
              <td>
                {m.enabled ? <span class="pill status-open">enabled</span> : <span class="pill status-closed">disabled</span>}
                {m.disabled_reason && <div class="form-error inline">{m.disabled_reason}</div>}
                {!m.enabled && (
                  <button type="button" class="btn small" onClick={() => enable(m)}>
                    Enable again
                  </button>
                )}
              </td>
              <td>
                <MailboxHealthCell m={m} />
                {notes[m.id] && (
                  <p class={notes[m.id].error ? 'form-error inline' : 'muted small'} role={notes[m.id].error ? 'alert' : 'status'}>
                    {notes[m.id].text}
                  </p>
                )}
              </td>
              <td class="actions">
                <button type="button" class="btn small" onClick={() => setEditing(m)}>
                  Settings
                </button>
                <button type="button" class="btn small" onClick={() => check(m)}>
                  Check now
                </button>
                <button type="button" class="btn small" onClick={() => setLog(m)}>
                  Mail log
                </button>
                <button type="button" class="btn small" onClick={() => setDeliveries(m)}>
                  Delivery log
                </button>
                <button type="button" class="btn small danger-outline" onClick={() => remove(m)}>
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {loadError && <FormError error={`The mailboxes cannot be refreshed: ${loadError}`} />}
      {editing && (
        <Modal title={`${editing.name} — mailbox settings`} onClose={() => setEditing(null)} wide>
          <MailboxForm mailbox={editing} onClose={() => setEditing(null)} onSaved={saved} />
        </Modal>
      )}
      {log && (
        <Modal title={`${log.name} — mail log`} onClose={() => setLog(null)} wide>
          <p class="muted small">Mail that made no ticket: junk (bounces, autoreplies, lists, loops), rejected senders and unreadable mail.</p>
          <MailLog mailbox={log} />
        </Modal>
      )}
      {deliveries && (
        <Modal title={`${deliveries.name} — delivery log`} onClose={() => setDeliveries(null)} wide>
          <Deliveries channelId={deliveries.id} />
        </Modal>
      )}
    </>
  );
}
