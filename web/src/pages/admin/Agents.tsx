// Administration › Agents: invitations (issue #17 item 9), roles, activation and channel access.

import { useState } from 'preact/hooks';
import { api, errorText } from '../../api';
import { KIND_LABEL } from '../../format';
import { app, loadReference, toast } from '../../state';
import { useStore } from '../../store';
import type { Agent, Role } from '../../types';
import { Modal } from '../../components/common';
import { InviteForm } from './Invite';
import { DataTable, FormEnd, SectionHead } from './kit';

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
        <FormEnd error={error} onCancel={onClose} submit={agent ? 'Save' : 'Add agent'} busy={busy} />
      </form>
    </Modal>
  );
}

export function Agents() {
  const agents = useStore(app, (s) => s.agents);
  const channels = useStore(app, (s) => s.channels);
  const teams = useStore(app, (s) => s.teams);
  const [editing, setEditing] = useState<Agent | null>(null);
  const [inviting, setInviting] = useState<Agent | 'new' | null>(null);
  return (
    <section>
      <SectionHead title="Agents" action="Invite agent" onAction={() => setInviting('new')} />
      <DataTable columns={['Name', 'Email', 'Role', 'Channels', 'Teams']}>
      {agents.map((a) => (
        <tr key={a.id} class={a.active ? '' : 'inactive'}>
          <td>
            {a.name} {!a.active && <span class="pill status-closed">inactive</span>}
            {a.active && a.has_password === false && <span class="pill status-pending">invited</span>}
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
            {a.active && a.has_password === false && (
              <button type="button" class="btn small" onClick={() => setInviting(a)} aria-label={'Invite ' + a.name + ' again'}>
                Invite again
              </button>
            )}
          </td>
        </tr>
      ))}
      </DataTable>
      {editing && <AgentForm agent={editing} onClose={() => setEditing(null)} />}
      {inviting && <InviteForm again={inviting === 'new' ? undefined : inviting} onClose={() => setInviting(null)} />}
    </section>
  );
}
