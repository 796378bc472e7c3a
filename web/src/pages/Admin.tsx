// Administration: agents (roles, channel access), teams, custom statuses, channel instances of
// every kind (settings, state, delivery log) and API tokens.

import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, errorText, qs } from '../api';
import { ago, bytes, full, KIND_LABEL } from '../format';
import { app, loadReference, toast } from '../state';
import { useStore } from '../store';
import { OFFERED_KINDS } from '../types';
import type { Agent, Channel, ChannelKind, Delivery, EmailChannel, MailLogEntry, MailProtocol, OfferedKind, Role, Status, Team, TlsMode, Token } from '../types';
import { Link, Modal } from '../components/common';

const TABS = [
  ['agents', 'Agents'],
  ['teams', 'Teams'],
  ['statuses', 'Statuses'],
  ['channels', 'Channels'],
  ['tokens', 'API tokens'],
] as const;

function useAsync(fn: () => Promise<void>, deps: unknown[]) {
  useEffect(() => {
    fn().catch((e) => toast(errorText(e), 'error'));
  }, deps);
}

function FormError({ error }: { error: string }) {
  return error ? (
    <p class="form-error" role="alert">
      {error}
    </p>
  ) : null;
}

const ROLE_LABEL: Record<Role, string> = { super_admin: 'Super admin', admin: 'Admin', agent: 'Agent' };

// ---------------------------------------------------------------------------------------------
// Agents

function AgentForm({ agent, onClose }: { agent: Agent | null; onClose: () => void }) {
  const channels = useStore(app, (s) => s.channels);
  const me = useStore(app, (s) => s.me!);
  const [name, setName] = useState(agent?.name ?? '');
  const [email, setEmail] = useState(agent?.email ?? '');
  const [password, setPassword] = useState('');
  const [currentPassword, setCurrentPassword] = useState('');
  const [revokeTokens, setRevokeTokens] = useState(false);
  const own = !!agent && agent.id === me.agent.id;
  const [role, setRole] = useState<Role>(agent?.role ?? 'agent');
  const [active, setActive] = useState(agent?.active ?? true);
  const [access, setAccess] = useState<number[]>(agent?.channel_ids ?? []);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      if (agent) {
        const body: Record<string, unknown> = {};
        if (name !== agent.name) body.name = name;
        if (role !== agent.role) body.role = role;
        if (active !== agent.active) body.active = active;
        if (password) {
          // Every other session of the agent ends; their API tokens only when asked (issue #13).
          body.password = password;
          body.revoke_tokens = revokeTokens;
          if (own) body.current_password = currentPassword;
        }
        if (Object.keys(body).length) await api.patch(`/agents/${agent.id}`, body);
        const before = [...agent.channel_ids].sort().join(',');
        if ([...access].sort().join(',') !== before) await api.put(`/agents/${agent.id}/channels`, { channel_ids: access });
      } else {
        await api.post('/agents', { name, email, password: password || undefined, role, channel_ids: access });
      }
      await loadReference();
      toast(agent ? 'Agent updated' : 'Agent created', 'success');
      onClose();
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };
  const roles: Role[] = me.agent.role === 'super_admin' ? ['agent', 'admin', 'super_admin'] : ['agent', 'admin'];
  return (
    <Modal title={agent ? `Edit ${agent.name}` : 'Add an agent'} onClose={onClose} wide>
      <form class="form" onSubmit={submit}>
        <div class="grid2">
          <label class="field">
            <span>Name</span>
            <input value={name} onInput={(e) => setName(e.currentTarget.value)} required maxLength={100} />
          </label>
          <label class="field">
            <span>Email</span>
            <input type="email" value={email} onInput={(e) => setEmail(e.currentTarget.value)} required disabled={!!agent} />
          </label>
          <label class="field">
            <span>{agent ? 'New password (leave empty to keep)' : 'Password'}</span>
            <input type="password" autocomplete="new-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} minLength={8} />
          </label>
          {own && password && (
            <label class="field">
              <span>Your current password</span>
              <input type="password" autocomplete="current-password" value={currentPassword} onInput={(e) => setCurrentPassword(e.currentTarget.value)} required />
            </label>
          )}
          <label class="field">
            <span>Role</span>
            <select value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
              {roles.map((r) => (
                <option key={r} value={r}>
                  {ROLE_LABEL[r]}
                </option>
              ))}
            </select>
          </label>
        </div>
        {agent && (
          <label class="check">
            <input type="checkbox" checked={active} onChange={(e) => setActive(e.currentTarget.checked)} /> Active (may sign in)
          </label>
        )}
        {agent && password && (
          <label class="check">
            <input type="checkbox" checked={revokeTokens} onChange={(e) => setRevokeTokens(e.currentTarget.checked)} />{' '}
            {own ? 'Also revoke my API tokens' : `Also revoke ${agent.name}'s API tokens`}{' '}
            <span class="muted small">({own ? 'your other sessions are' : 'their sessions are'} signed out either way)</span>
          </label>
        )}
        <fieldset class="checks">
          <legend>Channel access {role !== 'agent' && <span class="muted small">(admins see every channel)</span>}</legend>
          {channels.map((c) => (
            <label key={c.id} class="check">
              <input
                type="checkbox"
                checked={access.includes(c.id)}
                onChange={(e) => setAccess(e.currentTarget.checked ? [...access, c.id] : access.filter((x) => x !== c.id))}
              />{' '}
              {c.name} <span class="muted small">{KIND_LABEL[c.kind]}</span>
            </label>
          ))}
          {!channels.length && <p class="muted">No channels yet.</p>}
        </fieldset>
        <FormError error={error} />
        <div class="modal-actions">
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="btn primary" disabled={busy}>
            {agent ? 'Save' : 'Add agent'}
          </button>
        </div>
      </form>
    </Modal>
  );
}

function Agents() {
  const agents = useStore(app, (s) => s.agents);
  const channels = useStore(app, (s) => s.channels);
  const teams = useStore(app, (s) => s.teams);
  const [editing, setEditing] = useState<Agent | null | 'new'>(null);
  return (
    <section>
      <div class="section-head">
        <h2>Agents</h2>
        <button type="button" class="btn primary" onClick={() => setEditing('new')}>
          Add agent
        </button>
      </div>
      <table class="data">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Email</th>
            <th scope="col">Role</th>
            <th scope="col">Channels</th>
            <th scope="col">Teams</th>
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {agents.map((a) => (
            <tr key={a.id} class={a.active ? '' : 'inactive'}>
              <td>
                {a.name} {!a.active && <span class="pill status-closed">inactive</span>}
              </td>
              <td>{a.email}</td>
              <td>{ROLE_LABEL[a.role]}</td>
              <td class="small">
                {a.role !== 'agent' ? <span class="muted">all</span> : a.channel_ids.map((id) => channels.find((c) => c.id === id)?.name ?? id).join(', ') || <span class="muted">none</span>}
              </td>
              <td class="small">{a.team_ids.map((id) => teams.find((t) => t.id === id)?.name ?? id).join(', ')}</td>
              <td>
                <button type="button" class="btn small" onClick={() => setEditing(a)} aria-label={'Edit ' + a.name}>
                  Edit
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {editing && <AgentForm agent={editing === 'new' ? null : editing} onClose={() => setEditing(null)} />}
    </section>
  );
}

// ---------------------------------------------------------------------------------------------
// Teams

function TeamForm({ team, onClose }: { team: Team | null; onClose: () => void }) {
  const agents = useStore(app, (s) => s.agents);
  const [name, setName] = useState(team?.name ?? '');
  const [description, setDescription] = useState(team?.description ?? '');
  const [members, setMembers] = useState<number[]>(team?.member_ids ?? []);
  const [error, setError] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      if (team) {
        await api.patch(`/teams/${team.id}`, { name, description });
        await api.put(`/teams/${team.id}/members`, { agent_ids: members });
      } else {
        await api.post('/teams', { name, description, member_ids: members });
      }
      await loadReference();
      onClose();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <Modal title={team ? `Edit team ${team.name}` : 'New team'} onClose={onClose}>
      <form class="form" onSubmit={submit}>
        <label class="field">
          <span>Name</span>
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} required maxLength={100} />
        </label>
        <label class="field">
          <span>Description</span>
          <textarea rows={2} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
        </label>
        <fieldset class="checks">
          <legend>Members</legend>
          {agents.map((a) => (
            <label key={a.id} class="check">
              <input type="checkbox" checked={members.includes(a.id)} onChange={(e) => setMembers(e.currentTarget.checked ? [...members, a.id] : members.filter((x) => x !== a.id))} />{' '}
              {a.name}
            </label>
          ))}
        </fieldset>
        <FormError error={error} />
        <div class="modal-actions">
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="btn primary">
            Save
          </button>
        </div>
      </form>
    </Modal>
  );
}

function Teams() {
  const teams = useStore(app, (s) => s.teams);
  const agents = useStore(app, (s) => s.agents);
  const [editing, setEditing] = useState<Team | null | 'new'>(null);
  const remove = async (t: Team) => {
    if (!confirm(`Delete the team ${t.name}?`)) return;
    try {
      await api.del(`/teams/${t.id}`);
      await loadReference();
    } catch (e) {
      toast(errorText(e), 'error');
    }
  };
  return (
    <section>
      <div class="section-head">
        <h2>Teams</h2>
        <button type="button" class="btn primary" onClick={() => setEditing('new')}>
          New team
        </button>
      </div>
      <table class="data">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Description</th>
            <th scope="col">Members</th>
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {teams.map((t) => (
            <tr key={t.id}>
              <td>{t.name}</td>
              <td class="small">{t.description}</td>
              <td class="small">{t.member_ids.map((id) => agents.find((a) => a.id === id)?.name ?? id).join(', ') || <span class="muted">none</span>}</td>
              <td class="actions">
                <button type="button" class="btn small" onClick={() => setEditing(t)}>
                  Edit
                </button>
                <button type="button" class="btn small danger-outline" onClick={() => remove(t)}>
                  Delete
                </button>
              </td>
            </tr>
          ))}
          {!teams.length && (
            <tr>
              <td colSpan={4} class="muted">
                No teams yet.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      {editing && <TeamForm team={editing === 'new' ? null : editing} onClose={() => setEditing(null)} />}
    </section>
  );
}

// ---------------------------------------------------------------------------------------------
// Statuses

const REQUIRABLE = ['assignee', 'team', 'subject', 'tags'];

function StatusForm({ status, onClose }: { status: Status | null; onClose: () => void }) {
  const [key, setKey] = useState(status?.key ?? '');
  const [name, setName] = useState(status?.name ?? '');
  const [base, setBase] = useState(status?.base ?? 'open');
  const [required, setRequired] = useState<string[]>(status?.required_fields ?? []);
  const [customField, setCustomField] = useState('');
  const [error, setError] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      if (status) await api.patch(`/statuses/${status.key}`, { name, required_fields: required });
      else await api.post('/statuses', { key, name, base, required_fields: required });
      await loadReference();
      onClose();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <Modal title={status ? `Edit status ${status.name}` : 'New status'} onClose={onClose}>
      <form class="form" onSubmit={submit}>
        <div class="grid2">
          <label class="field">
            <span>Name</span>
            <input value={name} onInput={(e) => setName(e.currentTarget.value)} required maxLength={60} />
          </label>
          <label class="field">
            <span>Key</span>
            <input value={key} onInput={(e) => setKey(e.currentTarget.value)} required pattern="[a-z][a-z0-9_]{0,39}" disabled={!!status} title="lower-case letters, digits and _" />
          </label>
        </div>
        <label class="field">
          <span>Means</span>
          <select value={base} onChange={(e) => setBase(e.currentTarget.value as Status['base'])} disabled={!!status}>
            <option value="open">Open (needs work)</option>
            <option value="pending">Pending (waiting on the customer)</option>
            <option value="closed">Closed (done)</option>
          </select>
        </label>
        <fieldset class="checks">
          <legend>Required before a conversation may take this status</legend>
          {REQUIRABLE.map((f) => (
            <label key={f} class="check">
              <input type="checkbox" checked={required.includes(f)} onChange={(e) => setRequired(e.currentTarget.checked ? [...required, f] : required.filter((x) => x !== f))} /> {f}
            </label>
          ))}
          {required
            .filter((f) => f.startsWith('custom:'))
            .map((f) => (
              <label key={f} class="check">
                <input type="checkbox" checked onChange={() => setRequired(required.filter((x) => x !== f))} /> custom field “{f.slice(7)}”
              </label>
            ))}
          <div class="row">
            <input aria-label="Custom field to require" placeholder="custom field name" value={customField} onInput={(e) => setCustomField(e.currentTarget.value)} />
            <button
              type="button"
              class="btn small"
              disabled={!customField.trim()}
              onClick={() => {
                setRequired([...required, 'custom:' + customField.trim()]);
                setCustomField('');
              }}
            >
              Require
            </button>
          </div>
        </fieldset>
        <FormError error={error} />
        <div class="modal-actions">
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="btn primary">
            Save
          </button>
        </div>
      </form>
    </Modal>
  );
}

function Statuses() {
  const statuses = useStore(app, (s) => s.statuses);
  const [editing, setEditing] = useState<Status | null | 'new'>(null);
  const remove = async (s: Status) => {
    if (!confirm(`Delete the status ${s.name}?`)) return;
    try {
      await api.del(`/statuses/${s.key}`);
      await loadReference();
    } catch (e) {
      toast(errorText(e), 'error');
    }
  };
  return (
    <section>
      <div class="section-head">
        <h2>Statuses</h2>
        <button type="button" class="btn primary" onClick={() => setEditing('new')}>
          New status
        </button>
      </div>
      <table class="data">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Key</th>
            <th scope="col">Means</th>
            <th scope="col">Requires</th>
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {statuses.map((s) => (
            <tr key={s.key}>
              <td>
                <span class={'pill status-' + s.base}>{s.name}</span> {s.builtin && <span class="muted small">built-in</span>}
              </td>
              <td>
                <code>{s.key}</code>
              </td>
              <td>{s.base}</td>
              <td class="small">{s.required_fields.join(', ') || <span class="muted">—</span>}</td>
              <td class="actions">
                <button type="button" class="btn small" onClick={() => setEditing(s)}>
                  Edit
                </button>
                {!s.builtin && (
                  <button type="button" class="btn small danger-outline" onClick={() => remove(s)}>
                    Delete
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {editing && <StatusForm status={editing === 'new' ? null : editing} onClose={() => setEditing(null)} />}
    </section>
  );
}

// ---------------------------------------------------------------------------------------------
// Channels

/** Kinds configured with free-form settings; mailboxes have their own form and API (MailboxForm). */
type GenericKind = Exclude<OfferedKind, 'email'>;

/** Suggested settings per kind (the admin may add others). Secret ones are never sent back. */
const KIND_FIELDS: Record<GenericKind, { key: string; label: string; type?: string; secret?: boolean }[]> = {
  custom: [{ key: 'webhook_url', label: 'Webhook URL (agent replies are POSTed here)', type: 'url' }],
};
const MASK = '********';

/** The kind picker of a new channel's dialog: email switches to the mailbox form. */
function KindField({ kind, onChange, disabled }: { kind: ChannelKind; onChange?: (k: OfferedKind) => void; disabled?: boolean }) {
  return (
    <label class="field">
      <span>Kind</span>
      <select value={kind} onChange={(e) => onChange?.(e.currentTarget.value as OfferedKind)} disabled={disabled}>
        {OFFERED_KINDS.map((k) => (
          <option key={k} value={k}>
            {KIND_LABEL[k]}
          </option>
        ))}
      </select>
    </label>
  );
}

/** Adding a channel: the generic form, or the mailbox form when the kind is email. */
function NewChannel({ onClose, onSaved }: { onClose: () => void; onSaved: () => void }) {
  const [kind, setKind] = useState<OfferedKind>('custom');
  const kindField = <KindField kind={kind} onChange={setKind} />;
  return kind === 'email' ? (
    <MailboxForm mailbox={null} kindField={kindField} onClose={onClose} onSaved={onSaved} />
  ) : (
    <ChannelForm channel={null} kind={kind} kindField={kindField} onClose={onClose} />
  );
}

function ChannelForm({ channel, kind, kindField, onClose }: { channel: Channel | null; kind: GenericKind; kindField: ComponentChildren; onClose: () => void }) {
  const teams = useStore(app, (s) => s.teams);
  const [name, setName] = useState(channel?.name ?? '');
  const [mode, setMode] = useState(channel?.mode ?? 'sync');
  const [enabled, setEnabled] = useState(channel?.enabled ?? true);
  const [timeout, setTimeoutS] = useState(String(channel?.inactivity_timeout_s ?? 600));
  const [team, setTeam] = useState<number | ''>(channel?.default_team_id ?? '');
  const original = (channel?.settings ?? {}) as Record<string, unknown>;
  const [settings, setSettings] = useState<Record<string, string>>(
    Object.fromEntries(Object.entries(original).map(([k, v]) => [k, v === MASK ? '' : typeof v === 'string' ? v : JSON.stringify(v)])),
  );
  const [touched, setTouched] = useState(false);
  const [extraKey, setExtraKey] = useState('');
  const [error, setError] = useState('');
  const fields = KIND_FIELDS[kind];
  const extra = Object.keys(settings).filter((k) => !fields.some((f) => f.key === k));
  const masked = Object.entries(original).filter(([, v]) => v === MASK).map(([k]) => k);
  const setField = (k: string, v: string) => {
    setTouched(true);
    setSettings({ ...settings, [k]: v });
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setError('');
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(settings)) {
      if (v === '') continue;
      const f = fields.find((x) => x.key === k);
      out[k] = f?.type === 'number' && /^\d+$/.test(v) ? Number(v) : v === 'true' ? true : v === 'false' ? false : v;
    }
    const body: Record<string, unknown> = {
      name,
      enabled,
      inactivity_timeout_s: Number(timeout) || 600,
    };
    if (channel) {
      body.default_team_id = team === '' ? null : team;
      if (touched) {
        const lost = masked.filter((k) => !settings[k]);
        if (lost.length) {
          setError(`Secrets are never shown again: re-enter ${lost.join(', ')} to save changed settings, or close without saving.`);
          return;
        }
        body.settings = out;
      }
      if (kind === 'custom') body.mode = mode;
    } else {
      body.kind = kind;
      body.settings = out;
      if (team !== '') body.default_team_id = team;
      if (kind === 'custom') body.mode = mode;
    }
    try {
      if (channel) await api.patch(`/channels/${channel.id}`, body);
      else await api.post('/channels', body);
      await loadReference();
      toast(channel ? 'Channel saved' : 'Channel created', 'success');
      onClose();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <form class="form" onSubmit={submit}>
      <div class="grid2">
        {kindField}
        <label class="field">
          <span>Name</span>
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} required maxLength={100} />
        </label>
        <label class="field">
          <span>Type</span>
          <select value={kind === 'custom' ? mode : 'sync'} onChange={(e) => setMode(e.currentTarget.value as 'sync' | 'async')} disabled={kind !== 'custom'}>
            <option value="sync">Chat (sync)</option>
            <option value="async">Ticket (async)</option>
          </select>
        </label>
        <label class="field">
          <span>End idle chats after (seconds)</span>
          <input type="number" min={1} max={604800} value={timeout} onInput={(e) => setTimeoutS(e.currentTarget.value)} />
        </label>
        <label class="field">
          <span>Default team</span>
          <select value={team} onChange={(e) => setTeam(e.currentTarget.value ? Number(e.currentTarget.value) : '')}>
            <option value="">None</option>
            {teams.map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
              </option>
            ))}
          </select>
        </label>
        <label class="check align-end">
          <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} /> Enabled
        </label>
      </div>
      <fieldset class="settings">
        <legend>{KIND_LABEL[kind]} settings</legend>
        <div class="grid2">
          {fields.map((f) => (
            <label key={f.key} class="field">
              <span>{f.label}</span>
              <input
                type={(f.secret ? 'password' : f.type ?? 'text') as 'text'}
                autocomplete="off"
                value={settings[f.key] ?? ''}
                placeholder={f.secret && masked.includes(f.key) ? 'set — re-enter to change' : ''}
                onInput={(e) => setField(f.key, e.currentTarget.value)}
              />
            </label>
          ))}
          {extra.map((k) => (
            <label key={k} class="field">
              <span>{k}</span>
              <input value={settings[k]} placeholder={masked.includes(k) ? 'set — re-enter to change' : ''} onInput={(e) => setField(k, e.currentTarget.value)} />
            </label>
          ))}
        </div>
        <div class="row">
          <input aria-label="Another setting's name" placeholder="another setting" value={extraKey} onInput={(e) => setExtraKey(e.currentTarget.value)} />
          <button
            type="button"
            class="btn small"
            disabled={!extraKey.trim()}
            onClick={() => {
              setField(extraKey.trim(), '');
              setExtraKey('');
            }}
          >
            Add setting
          </button>
        </div>
      </fieldset>
      <FormError error={error} />
      <div class="modal-actions">
        <button type="button" class="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" class="btn primary">
          {channel ? 'Save' : 'Create channel'}
        </button>
      </div>
    </form>
  );
}

// ---------------------------------------------------------------------------------------------
// Mailboxes: email channels have their own API (/api/v1/email-channels, docs/email.md) with typed
// settings the connector reads. Passwords are write-only: the view says `password_set`.

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

/** A `{"error","message"}` answer about one field, as [field, problem]. */
function fieldProblem(e: unknown): [string, string] | null {
  if (!(e instanceof ApiError) || e.status !== 400) return null;
  const m = /^([a-z_]+(?:\.[a-z_]+)?): ([\s\S]+)$/.exec(e.message);
  if (!m || !MAILBOX_FIELDS.has(m[1])) return null;
  return [m[1], m[2].charAt(0).toUpperCase() + m[2].slice(1)];
}

const fieldId = (key: string) => 'mailbox-' + key.replace(/[._]/g, '-');

/** A labelled control with room for the API's complaint about it (announced, and linked to the
 *  control by aria-describedby). */
function MailField({ k, label, errors, children }: { k: string; label: string; errors: Record<string, string>; children: ComponentChildren }) {
  return (
    <div class="field">
      <label for={fieldId(k)}>{label}</label>
      {children}
      {errors[k] && (
        <div class="field-error" id={fieldId(k) + '-error'} role="alert">
          {errors[k]}
        </div>
      )}
    </div>
  );
}

function MailboxForm({ mailbox, kindField, onClose, onSaved }: { mailbox: EmailChannel | null; kindField?: ComponentChildren; onClose: () => void; onSaved: () => void }) {
  const teams = useStore(app, (s) => s.teams);
  const [d, setD] = useState<MailboxDraft>(() => draftOf(mailbox));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const set = (patch: Partial<MailboxDraft>) => setD((x) => ({ ...x, ...patch }));
  const setSmtp = (patch: Partial<SmtpDraft>) => setD((x) => ({ ...x, smtp: { ...x.smtp, ...patch } }));
  /** The props that tie a control to its label and its error. */
  const ctl = (k: string) => ({
    id: fieldId(k),
    'aria-invalid': errors[k] ? ('true' as const) : undefined,
    'aria-describedby': errors[k] ? fieldId(k) + '-error' : undefined,
  });

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
      const problem = fieldProblem(err);
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
      <fieldset>
        <legend>Handling</legend>
        <div class="grid2">
          <MailField k="default_team_id" label="Team of new tickets" errors={errors}>
            <select {...ctl('default_team_id')} value={d.default_team_id} onChange={(e) => set({ default_team_id: e.currentTarget.value ? Number(e.currentTarget.value) : '' })}>
              <option value="">None</option>
              {teams.map((t) => (
                <option key={t.id} value={t.id}>
                  {t.name}
                </option>
              ))}
            </select>
          </MailField>
        </div>
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
        <label class="check">
          <input type="checkbox" checked={d.enabled} onChange={(e) => set({ enabled: e.currentTarget.checked })} /> Enabled (check the mailbox)
        </label>
      </fieldset>
      <FormError error={error} />
      <div class="modal-actions">
        <button type="button" class="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" class="btn primary" disabled={busy}>
          {mailbox ? 'Save' : 'Connect mailbox'}
        </button>
      </div>
    </form>
  );
}

/** "5m ago", "just now", "Mar 4". */
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
function Mailboxes({ channels, onChanged }: { channels: Channel[]; onChanged: () => void }) {
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
    if (!confirm(`Delete the mailbox ${m.name} and its tickets? Mail on the server is left alone.`)) return;
    try {
      await api.del(`/email-channels/${m.id}`);
      saved();
    } catch (e) {
      toast(errorText(e), 'error');
    }
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
                if (!confirm(`Delete the channel ${c.name} and its tickets?`)) return;
                try {
                  await api.del(`/channels/${c.id}`);
                  saved();
                } catch (e) {
                  toast(errorText(e), 'error');
                }
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

function Deliveries({ channelId }: { channelId: number }) {
  const [rows, setRows] = useState<Delivery[] | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    api
      .get<Delivery[]>(`/channels/${channelId}/deliveries`)
      .then(setRows)
      .catch((e) => setError(errorText(e)));
  }, [channelId]);
  if (error) return <FormError error={error} />;
  if (!rows) return <p class="muted">Loading the delivery log…</p>;
  if (!rows.length) return <p class="muted">Nothing was sent through this channel yet.</p>;
  return (
    <table class="data small">
      <thead>
        <tr>
          <th scope="col">When</th>
          <th scope="col">Conversation</th>
          <th scope="col">State</th>
          <th scope="col">Attempts</th>
          <th scope="col">Last error</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((d) => (
          <tr key={d.id}>
            <td title={full(d.created_at)}>{ago(d.created_at)}</td>
            <td>{d.conversation_id ? <Link href={'/tickets/' + d.conversation_id}>#{d.conversation_id}</Link> : '—'}</td>
            <td>
              <span class={'pill delivery-' + d.state}>{d.state}</span>
            </td>
            <td>{d.attempts}</td>
            <td class="small">{d.last_error ?? ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Channels() {
  const channels = useStore(app, (s) => s.channels);
  const [editing, setEditing] = useState<Channel | null | 'new'>(null);
  const [log, setLog] = useState<Channel | null>(null);
  const remove = async (c: Channel) => {
    if (!confirm(`Delete the channel ${c.name} and its conversations?`)) return;
    try {
      await api.del(`/channels/${c.id}`);
      await loadReference();
    } catch (e) {
      toast(errorText(e), 'error');
    }
  };
  const kinds: GenericKind[] = OFFERED_KINDS.filter((k): k is GenericKind => k !== 'email');
  const reload = () => {
    loadReference().catch((e) => toast(errorText(e), 'error'));
  };
  return (
    <section>
      <div class="section-head">
        <h2>Channels</h2>
        <button type="button" class="btn primary" onClick={() => setEditing('new')}>
          Add channel
        </button>
      </div>
      <div class="kind-group">
        <h3>{KIND_LABEL.email}</h3>
        <Mailboxes channels={channels.filter((c) => c.kind === 'email')} onChanged={reload} />
      </div>
      {kinds.map((k) => {
        const list = channels.filter((c) => c.kind === k);
        return (
          <div key={k} class="kind-group">
            <h3>{KIND_LABEL[k]}</h3>
            {!list.length ? (
              <p class="muted small">None.</p>
            ) : (
              <table class="data">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Type</th>
                    <th scope="col">State</th>
                    <th scope="col">Idle chats end after</th>
                    <th scope="col">
                      <span class="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((c) => (
                    <tr key={c.id}>
                      <td>{c.name}</td>
                      <td>{c.mode === 'sync' ? 'Chat' : 'Ticket'}</td>
                      <td>
                        {c.enabled ? <span class="pill status-open">enabled</span> : <span class="pill status-closed">disabled</span>}
                        {c.disabled_reason && <span class="form-error inline"> {c.disabled_reason}</span>}
                      </td>
                      <td>{c.mode === 'sync' ? Math.round(c.inactivity_timeout_s / 60) + ' min' : '—'}</td>
                      <td class="actions">
                        <button type="button" class="btn small" onClick={() => setEditing(c)}>
                          Settings
                        </button>
                        <button type="button" class="btn small" onClick={() => setLog(c)}>
                          Delivery log
                        </button>
                        <button type="button" class="btn small danger-outline" onClick={() => remove(c)}>
                          Delete
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </div>
        );
      })}
      {editing && (
        <Modal title={editing === 'new' ? 'Add a channel' : `${editing.name} — settings`} onClose={() => setEditing(null)} wide>
          {editing === 'new' ? (
            <NewChannel onClose={() => setEditing(null)} onSaved={reload} />
          ) : (
            <ChannelForm channel={editing} kind={editing.kind as GenericKind} kindField={<KindField kind={editing.kind} disabled />} onClose={() => setEditing(null)} />
          )}
        </Modal>
      )}
      {log && (
        <Modal title={`${log.name} — delivery log`} onClose={() => setLog(null)} wide>
          <Deliveries channelId={log.id} />
        </Modal>
      )}
    </section>
  );
}

// ---------------------------------------------------------------------------------------------
// API tokens

function Tokens() {
  const agents = useStore(app, (s) => s.agents);
  const me = useStore(app, (s) => s.me!);
  const [tokens, setTokens] = useState<Token[]>([]);
  const [name, setName] = useState('');
  const [agent, setAgent] = useState<number>(me.agent.id);
  const [created, setCreated] = useState<string | null>(null);
  const [error, setError] = useState('');
  const reload = async () => setTokens(await api.get<Token[]>('/tokens' + qs({})));
  useAsync(reload, []);
  const create = async (e: Event) => {
    e.preventDefault();
    setError('');
    try {
      const t = await api.post<Token & { token: string }>('/tokens', { name, agent_id: agent });
      setCreated(t.token);
      setName('');
      await reload();
    } catch (err) {
      setError(errorText(err));
    }
  };
  const revoke = async (t: Token) => {
    if (!confirm(`Revoke the token ${t.name}? Programs using it stop working.`)) return;
    try {
      await api.del(`/tokens/${t.id}`);
      await reload();
    } catch (e) {
      toast(errorText(e), 'error');
    }
  };
  return (
    <section>
      <div class="section-head">
        <h2>API tokens</h2>
      </div>
      <form class="row card pad" onSubmit={create}>
        <label class="field grow">
          <span>Token name</span>
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} required maxLength={100} placeholder="e.g. CRM integration" />
        </label>
        <label class="field">
          <span>For agent</span>
          <select value={agent} onChange={(e) => setAgent(Number(e.currentTarget.value))}>
            {agents.map((a) => (
              <option key={a.id} value={a.id}>
                {a.name}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" class="btn primary align-end">
          Create token
        </button>
      </form>
      <FormError error={error} />
      {created && (
        <div class="banner success inline" role="status">
          Copy the new token now — it is shown only once: <code class="token">{created}</code>
          <button type="button" class="btn small" onClick={() => navigator.clipboard?.writeText(created)}>
            Copy
          </button>
        </div>
      )}
      <table class="data">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Agent</th>
            <th scope="col">Starts with</th>
            <th scope="col">Created</th>
            <th scope="col">Last used</th>
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {tokens.map((t) => (
            <tr key={t.id}>
              <td>{t.name}</td>
              <td>{agents.find((a) => a.id === t.agent_id)?.name ?? t.agent_id}</td>
              <td>
                <code>{t.prefix}…</code>
              </td>
              <td title={full(t.created_at)}>{ago(t.created_at)}</td>
              <td>{t.last_used_at ? ago(t.last_used_at) : <span class="muted">never</span>}</td>
              <td>
                <button type="button" class="btn small danger-outline" onClick={() => revoke(t)}>
                  Revoke
                </button>
              </td>
            </tr>
          ))}
          {!tokens.length && (
            <tr>
              <td colSpan={6} class="muted">
                No tokens.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </section>
  );
}

export function AdminPage({ tab }: { tab: string }) {
  const current = TABS.find(([k]) => k === tab)?.[0] ?? 'agents';
  useEffect(() => {
    loadReference();
  }, []);
  return (
    <div class="page">
      <h1>Administration</h1>
      <nav class="tabs" aria-label="Administration">
        {TABS.map(([k, label]) => (
          <Link key={k} href={'/admin/' + k} class={'tab' + (k === current ? ' active' : '')} aria-current={k === current ? 'page' : undefined}>
            {label}
          </Link>
        ))}
      </nav>
      {current === 'agents' && <Agents />}
      {current === 'teams' && <Teams />}
      {current === 'statuses' && <Statuses />}
      {current === 'channels' && <Channels />}
      {current === 'tokens' && <Tokens />}
    </div>
  );
}
