// A mailbox's form: email channels have their own API (/api/v1/email-channels, docs/email.md)
// with typed settings the connector reads. Passwords are write-only: the view says `password_set`.

import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { api, errorText } from '../../api';
import { toast } from '../../state';
import type { EmailChannel, MailProtocol, TlsMode } from '../../types';
import { ChannelBasics } from './ChannelBasics';
import { controlProps, Field, fieldProblem, FormEnd } from './kit';

const TLS_LABEL: Record<TlsMode, string> = {
  implicit: 'SSL/TLS (implicit)',
  starttls: 'STARTTLS',
  none: 'None (unencrypted)',
};

/** The usual port of IMAP, POP3 or SMTP (submission) over a TLS mode. */
function usualPort(protocol: MailProtocol | 'smtp', tls: TlsMode): number {
  const [implicit, plain] = protocol === 'imap' ? [993, 143] : protocol === 'pop3' ? [995, 110] : [465, 587];
  if (tls === 'implicit') return implicit;
  return protocol === 'smtp' && tls === 'none' ? 25 : plain;
}

/** What the protocol does with an imported mail unless told otherwise. */
const usualAfterImport = (p: MailProtocol) => (p === 'imap' ? 'mark_read' : 'delete');

interface SmtpDraft {
  host: string;
  port: string;
  tls: TlsMode;
  tls_insecure: boolean;
  username: string;
  password: string;
  from_address: string;
  from_name: string;
  reply_to: string;
  use_from_name_for_all: boolean;
}

interface MailboxDraft {
  name: string;
  protocol: MailProtocol;
  host: string;
  port: string;
  tls: TlsMode;
  tls_insecure: boolean;
  username: string;
  password: string;
  folder: string;
  poll_interval_s: string;
  after_import: 'mark_read' | 'delete';
  address: string;
  accept_unknown_senders: boolean;
  subscribe_recipients: boolean;
  extract_forwarded_sender: boolean;
  default_team_id: number | '';
  enabled: boolean;
  smtp: SmtpDraft;
}

function draftOf(m: EmailChannel | null): MailboxDraft {
  if (!m) {
    return {
      name: '',
      protocol: 'imap',
      host: '',
      port: '993',
      tls: 'implicit',
      tls_insecure: false,
      username: '',
      password: '',
      folder: 'INBOX',
      poll_interval_s: '60',
      after_import: 'mark_read',
      address: '',
      accept_unknown_senders: true,
      subscribe_recipients: true,
      extract_forwarded_sender: true,
      default_team_id: '',
      enabled: true,
      smtp: { host: '', port: '587', tls: 'starttls', tls_insecure: false, username: '', password: '', from_address: '', from_name: '', reply_to: '', use_from_name_for_all: false },
    };
  }
  return {
    name: m.name,
    protocol: m.protocol,
    host: m.host,
    port: String(m.port),
    tls: m.tls,
    tls_insecure: m.tls_insecure,
    username: m.username,
    password: '',
    folder: m.folder,
    poll_interval_s: String(m.poll_interval_s),
    after_import: m.after_import,
    address: m.address ?? '',
    accept_unknown_senders: m.accept_unknown_senders,
    subscribe_recipients: m.subscribe_recipients,
    extract_forwarded_sender: m.extract_forwarded_sender,
    default_team_id: m.default_team_id ?? '',
    enabled: m.enabled,
    smtp: {
      host: m.smtp.host,
      port: String(m.smtp.port),
      tls: m.smtp.tls,
      tls_insecure: m.smtp.tls_insecure,
      username: m.smtp.username ?? '',
      password: '',
      from_address: m.smtp.from_address,
      from_name: m.smtp.from_name ?? '',
      reply_to: m.smtp.reply_to ?? '',
      use_from_name_for_all: m.smtp.use_from_name_for_all,
    },
  };
}

/** A draft as the API's fields (passwords apart): what is sent, and what edits are compared on. */
function apiFields(d: MailboxDraft) {
  const opt = (v: string) => v.trim() || null;
  return {
    top: {
      name: d.name.trim(),
      protocol: d.protocol,
      host: d.host.trim(),
      port: Number(d.port),
      tls: d.tls,
      tls_insecure: d.tls_insecure,
      username: d.username,
      folder: d.protocol === 'pop3' ? 'INBOX' : d.folder.trim() || 'INBOX',
      poll_interval_s: Number(d.poll_interval_s),
      after_import: d.after_import,
      address: d.address.trim(),
      accept_unknown_senders: d.accept_unknown_senders,
      subscribe_recipients: d.subscribe_recipients,
      extract_forwarded_sender: d.extract_forwarded_sender,
      default_team_id: d.default_team_id === '' ? null : d.default_team_id,
      enabled: d.enabled,
    } as Record<string, unknown>,
    smtp: {
      host: d.smtp.host.trim(),
      port: Number(d.smtp.port),
      tls: d.smtp.tls,
      tls_insecure: d.smtp.tls_insecure,
      username: opt(d.smtp.username),
      from_address: d.smtp.from_address.trim(),
      from_name: opt(d.smtp.from_name),
      reply_to: opt(d.smtp.reply_to),
      use_from_name_for_all: d.smtp.use_from_name_for_all,
    } as Record<string, unknown>,
  };
}

/** The fields the API names in its validation messages ("smtp.host: must be …"). */
const MAILBOX_FIELDS = new Set([
  'name',
  'host',
  'port',
  'username',
  'password',
  'folder',
  'poll_interval_s',
  'address',
  'default_team_id',
  'smtp.host',
  'smtp.port',
  'smtp.username',
  'smtp.password',
  'smtp.from_address',
  'smtp.from_name',
  'smtp.reply_to',
]);

const fieldId = (key: string) => 'mailbox-' + key.replace(/[._]/g, '-');

/** A mailbox's labelled control (kit's `Field`, named by its API field). */
function MailField({ k, label, errors, children }: { k: string; label: string; errors: Record<string, string>; children: ComponentChildren }) {
  return (
    <Field id={fieldId(k)} label={label} error={errors[k]}>
      {children}
    </Field>
  );
}

export function MailboxForm({ mailbox, kindField, onClose, onSaved }: { mailbox: EmailChannel | null; kindField?: ComponentChildren; onClose: () => void; onSaved: () => void }) {
  const [d, setD] = useState<MailboxDraft>(() => draftOf(mailbox));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const set = (patch: Partial<MailboxDraft>) => setD((x) => ({ ...x, ...patch }));
  const setSmtp = (patch: Partial<SmtpDraft>) => setD((x) => ({ ...x, smtp: { ...x.smtp, ...patch } }));
  /** The props that tie a control to its label and its error. */
  const ctl = (k: string) => controlProps(fieldId(k), errors[k]);

  // Ports follow the protocol and TLS choices unless the admin typed another one.
  const incoming = (protocol: MailProtocol, tls: TlsMode) =>
    setD((x) => ({
      ...x,
      protocol,
      tls,
      port: x.port === '' || x.port === String(usualPort(x.protocol, x.tls)) ? String(usualPort(protocol, tls)) : x.port,
      after_import: !mailbox && x.after_import === usualAfterImport(x.protocol) ? usualAfterImport(protocol) : x.after_import,
      folder: protocol === 'pop3' ? 'INBOX' : x.folder,
    }));
  const outgoingTls = (tls: TlsMode) =>
    setD((x) => ({
      ...x,
      smtp: {
        ...x.smtp,
        tls,
        port: x.smtp.port === '' || x.smtp.port === String(usualPort('smtp', x.smtp.tls)) ? String(usualPort('smtp', tls)) : x.smtp.port,
      },
    }));

  const submit = async (e: Event) => {
    e.preventDefault();
    setErrors({});
    setError('');
    const now = apiFields(d);
    let body: Record<string, unknown>;
    if (mailbox) {
      // Only what changed; an empty password keeps the stored one.
      const before = apiFields(draftOf(mailbox));
      body = {};
      for (const [k, v] of Object.entries(now.top)) if (v !== before.top[k]) body[k] = v;
      if (d.password) body.password = d.password;
      const smtp: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(now.smtp)) if (v !== before.smtp[k]) smtp[k] = v;
      if (d.smtp.password) smtp.password = d.smtp.password;
      if (Object.keys(smtp).length) body.smtp = smtp;
      if (!Object.keys(body).length) {
        onClose();
        return;
      }
    } else {
      body = { ...now.top, address: now.top.address || null, password: d.password, smtp: { ...now.smtp, password: d.smtp.password || null } };
    }
    setBusy(true);
    try {
      if (mailbox) await api.patch<EmailChannel>(`/email-channels/${mailbox.id}`, body);
      else await api.post<EmailChannel>('/email-channels', body);
      toast(mailbox ? 'Mailbox saved' : 'Mailbox connected', 'success');
      onSaved();
      onClose();
    } catch (err) {
      setBusy(false);
      const problem = fieldProblem(err, MAILBOX_FIELDS);
      if (problem) {
        setErrors({ [problem[0]]: problem[1] });
        // After the re-render: take the admin to the field.
        window.setTimeout(() => document.getElementById(fieldId(problem[0]))?.focus(), 0);
      } else {
        setError(errorText(err));
      }
    }
  };

  const pop3 = d.protocol === 'pop3';
  return (
    <form class="form" onSubmit={submit} data-testid="mailbox-form">
      <div class="grid2">
        {kindField}
        <MailField k="name" label="Name" errors={errors}>
          <input {...ctl('name')} value={d.name} onInput={(e) => set({ name: e.currentTarget.value })} required maxLength={100} placeholder="e.g. Support" />
        </MailField>
      </div>
      <fieldset>
        <legend>Incoming mail</legend>
        <div class="grid2">
          <div class="field">
            <label for={fieldId('protocol')}>Protocol</label>
            <select id={fieldId('protocol')} value={d.protocol} onChange={(e) => incoming(e.currentTarget.value as MailProtocol, d.tls)}>
              <option value="imap">IMAP</option>
              <option value="pop3">POP3</option>
            </select>
          </div>
          <div class="field">
            <label for={fieldId('tls')}>Security</label>
            <select id={fieldId('tls')} value={d.tls} onChange={(e) => incoming(d.protocol, e.currentTarget.value as TlsMode)}>
              {(['implicit', 'starttls', 'none'] as TlsMode[]).map((t) => (
                <option key={t} value={t}>
                  {TLS_LABEL[t]}
                </option>
              ))}
            </select>
          </div>
          <MailField k="host" label="Server" errors={errors}>
            <input {...ctl('host')} value={d.host} onInput={(e) => set({ host: e.currentTarget.value })} required maxLength={253} autocomplete="off" placeholder="imap.example.com" />
          </MailField>
          <MailField k="port" label="Port" errors={errors}>
            <input {...ctl('port')} type="number" min={1} max={65535} value={d.port} onInput={(e) => set({ port: e.currentTarget.value })} required />
          </MailField>
          <MailField k="username" label="User name" errors={errors}>
            <input {...ctl('username')} value={d.username} onInput={(e) => set({ username: e.currentTarget.value })} required maxLength={320} autocomplete="off" />
          </MailField>
          <MailField k="password" label={mailbox?.password_set ? 'Password (stored — leave empty to keep)' : 'Password'} errors={errors}>
            <input
              {...ctl('password')}
              type="password"
              autocomplete="new-password"
              value={d.password}
              onInput={(e) => set({ password: e.currentTarget.value })}
              required={!mailbox?.password_set}
              maxLength={1024}
            />
          </MailField>
          <MailField k="folder" label={pop3 ? 'Folder (POP3 reads INBOX only)' : 'Folder'} errors={errors}>
            <input {...ctl('folder')} value={pop3 ? 'INBOX' : d.folder} onInput={(e) => set({ folder: e.currentTarget.value })} disabled={pop3} maxLength={255} />
          </MailField>
          <MailField k="poll_interval_s" label="Check every (seconds, without IMAP IDLE)" errors={errors}>
            <input {...ctl('poll_interval_s')} type="number" min={5} max={300} value={d.poll_interval_s} onInput={(e) => set({ poll_interval_s: e.currentTarget.value })} required />
          </MailField>
          <div class="field">
            <label for={fieldId('after_import')}>After import</label>
            <select id={fieldId('after_import')} value={d.after_import} onChange={(e) => set({ after_import: e.currentTarget.value as MailboxDraft['after_import'] })}>
              <option value="mark_read">{pop3 ? 'Leave on the server (remembered)' : 'Mark as read'}</option>
              <option value="delete">Delete from the server</option>
            </select>
          </div>
          <MailField k="address" label="Receiving address (default: the From address)" errors={errors}>
            <input {...ctl('address')} type="email" value={d.address} onInput={(e) => set({ address: e.currentTarget.value })} autocomplete="off" />
          </MailField>
        </div>
        <label class="check">
          <input type="checkbox" checked={d.tls_insecure} onChange={(e) => set({ tls_insecure: e.currentTarget.checked })} /> Accept a self-signed certificate
        </label>
      </fieldset>
      <fieldset>
        <legend>Outgoing mail (SMTP)</legend>
        <div class="grid2">
          <MailField k="smtp.host" label="Server" errors={errors}>
            <input {...ctl('smtp.host')} value={d.smtp.host} onInput={(e) => setSmtp({ host: e.currentTarget.value })} required maxLength={253} autocomplete="off" placeholder="smtp.example.com" />
          </MailField>
          <MailField k="smtp.port" label="Port" errors={errors}>
            <input {...ctl('smtp.port')} type="number" min={1} max={65535} value={d.smtp.port} onInput={(e) => setSmtp({ port: e.currentTarget.value })} required />
          </MailField>
          <div class="field">
            <label for={fieldId('smtp.tls')}>Security</label>
            <select id={fieldId('smtp.tls')} value={d.smtp.tls} onChange={(e) => outgoingTls(e.currentTarget.value as TlsMode)}>
              {(['starttls', 'implicit', 'none'] as TlsMode[]).map((t) => (
                <option key={t} value={t}>
                  {TLS_LABEL[t]}
                </option>
              ))}
            </select>
          </div>
          <MailField k="smtp.username" label="User name (empty: no login)" errors={errors}>
            <input {...ctl('smtp.username')} value={d.smtp.username} onInput={(e) => setSmtp({ username: e.currentTarget.value })} maxLength={320} autocomplete="off" />
          </MailField>
          <MailField k="smtp.password" label={mailbox?.smtp.password_set ? 'Password (stored — leave empty to keep)' : 'Password'} errors={errors}>
            <input {...ctl('smtp.password')} type="password" autocomplete="new-password" value={d.smtp.password} onInput={(e) => setSmtp({ password: e.currentTarget.value })} maxLength={1024} />
          </MailField>
          <MailField k="smtp.from_address" label="From address" errors={errors}>
            <input {...ctl('smtp.from_address')} type="email" value={d.smtp.from_address} onInput={(e) => setSmtp({ from_address: e.currentTarget.value })} required autocomplete="off" placeholder="support@example.com" />
          </MailField>
          <MailField k="smtp.from_name" label="From name" errors={errors}>
            <input {...ctl('smtp.from_name')} value={d.smtp.from_name} onInput={(e) => setSmtp({ from_name: e.currentTarget.value })} maxLength={200} placeholder="Example Support" />
          </MailField>
          <MailField k="smtp.reply_to" label="Reply-To" errors={errors}>
            <input {...ctl('smtp.reply_to')} type="email" value={d.smtp.reply_to} onInput={(e) => setSmtp({ reply_to: e.currentTarget.value })} autocomplete="off" />
          </MailField>
        </div>
        <label class="check">
          <input type="checkbox" checked={d.smtp.tls_insecure} onChange={(e) => setSmtp({ tls_insecure: e.currentTarget.checked })} /> Accept a self-signed certificate
        </label>
        <label class="check">
          <input type="checkbox" checked={d.smtp.use_from_name_for_all} onChange={(e) => setSmtp({ use_from_name_for_all: e.currentTarget.checked })} /> Sign every reply with the From name
          (not the agent's name)
        </label>
      </fieldset>
      <ChannelBasics
        idPrefix="mailbox"
        chat={false}
        teamLabel="Team of new tickets"
        enabledLabel="Enabled (check the mailbox)"
        value={{ team: d.default_team_id, timeout: '', enabled: d.enabled }}
        onChange={(b) => set({ default_team_id: b.team ?? d.default_team_id, enabled: b.enabled ?? d.enabled })}
        errors={errors}
      >
        <label class="check">
          <input type="checkbox" checked={d.accept_unknown_senders} onChange={(e) => set({ accept_unknown_senders: e.currentTarget.checked })} /> Accept mail from unknown senders (else it
          is rejected and logged)
        </label>
        <label class="check">
          <input type="checkbox" checked={d.subscribe_recipients} onChange={(e) => set({ subscribe_recipients: e.currentTarget.checked })} /> Copy the first mail's To and Cc on replies
        </label>
        <label class="check">
          <input type="checkbox" checked={d.extract_forwarded_sender} onChange={(e) => set({ extract_forwarded_sender: e.currentTarget.checked })} /> A mail an agent forwards is a ticket
          of the original sender
        </label>
      </ChannelBasics>
      <FormEnd error={error} onCancel={onClose} submit={mailbox ? 'Save' : 'Connect mailbox'} busy={busy} />
    </form>
  );
}

/** "5m ago", "just now", "Mar 4". */
