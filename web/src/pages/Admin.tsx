// Administration: agents (roles, channel access), teams, custom statuses, channel instances of
// every kind (settings, state, delivery log) and API tokens.

import { useEffect, useState } from 'preact/hooks';
import { api, errorText, qs } from '../api';
import { ago, full, KIND_LABEL } from '../format';
import { app, loadReference, toast } from '../state';
import { useStore } from '../store';
import type { Agent, Channel, ChannelKind, Delivery, Role, Status, Team, Token } from '../types';
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
        if (password) body.password = password;
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

/** Suggested settings per kind (the admin may add others). Secret ones are never sent back. */
const KIND_FIELDS: Record<ChannelKind, { key: string; label: string; type?: string; secret?: boolean }[]> = {
  custom: [{ key: 'webhook_url', label: 'Webhook URL (agent replies are POSTed here)', type: 'url' }],
  email: [
    { key: 'imap_host', label: 'IMAP host' },
    { key: 'imap_port', label: 'IMAP port', type: 'number' },
    { key: 'username', label: 'Mailbox user name' },
    { key: 'password', label: 'Mailbox password', secret: true },
    { key: 'smtp_host', label: 'SMTP host' },
    { key: 'smtp_port', label: 'SMTP port', type: 'number' },
    { key: 'from_address', label: 'From address', type: 'email' },
    { key: 'from_name', label: 'From name' },
    { key: 'reply_to', label: 'Reply-To', type: 'email' },
  ],
  mattermost: [
    { key: 'server_url', label: 'Mattermost server URL', type: 'url' },
    { key: 'bot_token', label: 'Bot token', secret: true },
  ],
  zalo: [
    { key: 'app_id', label: 'Application ID' },
    { key: 'app_secret', label: 'Application secret', secret: true },
    { key: 'access_token', label: 'OA access token', secret: true },
    { key: 'refresh_token', label: 'OA refresh token', secret: true },
  ],
};
const MASK = '********';

function ChannelForm({ channel, onClose }: { channel: Channel | null; onClose: () => void }) {
  const teams = useStore(app, (s) => s.teams);
  const [kind, setKind] = useState<ChannelKind>(channel?.kind ?? 'custom');
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
        <label class="field">
          <span>Kind</span>
          <select value={kind} onChange={(e) => setKind(e.currentTarget.value as ChannelKind)} disabled={!!channel}>
            {(['custom', 'email', 'mattermost', 'zalo'] as ChannelKind[]).map((k) => (
              <option key={k} value={k}>
                {KIND_LABEL[k]}
              </option>
            ))}
          </select>
        </label>
        <label class="field">
          <span>Name</span>
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} required maxLength={100} />
        </label>
        <label class="field">
          <span>Type</span>
          <select value={kind === 'custom' ? mode : kind === 'email' ? 'async' : 'sync'} onChange={(e) => setMode(e.currentTarget.value as 'sync' | 'async')} disabled={kind !== 'custom'}>
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

function Deliveries({ channel }: { channel: Channel }) {
  const [rows, setRows] = useState<Delivery[] | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    api
      .get<Delivery[]>(`/channels/${channel.id}/deliveries`)
      .then(setRows)
      .catch((e) => setError(errorText(e)));
  }, [channel.id]);
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
    if (!confirm(`Delete the channel ${c.name}? Its conversations stay.`)) return;
    try {
      await api.del(`/channels/${c.id}`);
      await loadReference();
    } catch (e) {
      toast(errorText(e), 'error');
    }
  };
  const kinds: ChannelKind[] = ['email', 'mattermost', 'zalo', 'custom'];
  return (
    <section>
      <div class="section-head">
        <h2>Channels</h2>
        <button type="button" class="btn primary" onClick={() => setEditing('new')}>
          Add channel
        </button>
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
          <ChannelForm channel={editing === 'new' ? null : editing} onClose={() => setEditing(null)} />
        </Modal>
      )}
      {log && (
        <Modal title={`${log.name} — delivery log`} onClose={() => setLog(null)} wide>
          <Deliveries channel={log} />
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
