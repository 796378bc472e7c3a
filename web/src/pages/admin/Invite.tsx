// Inviting a teammate (issue #17 item 9): the admin names them, gives a role and channel access, and gets a
// single-use set-your-password link to hand over (valid 7 days; no mail is sent yet). Nobody types a password for
// someone else. Inviting again an agent who has not set a password yet replaces their older link.

import { useState } from 'preact/hooks';
import { api, errorText } from '../../api';
import { full, KIND_LABEL } from '../../format';
import { app, loadReference, toast } from '../../state';
import { useStore } from '../../store';
import type { Agent, Role } from '../../types';
import { Modal } from '../../components/common';
import { CopyField, FormEnd } from './kit';

interface InvitationCreated {
  agent: Agent;
  url: string;
  expires_at: string;
  mailed: boolean;
}

const ROLE_LABEL: Record<Role, string> = { super_admin: 'Super admin', admin: 'Admin', agent: 'Agent' };

export function InviteForm({ again, onClose }: { again?: Agent; onClose: () => void }) {
  const channels = useStore(app, (s) => s.channels);
  const me = useStore(app, (s) => s.me!);
  const [name, setName] = useState(again?.name ?? '');
  const [email, setEmail] = useState(again?.email ?? '');
  const [role, setRole] = useState<Role>(again?.role ?? 'agent');
  const [access, setAccess] = useState<number[]>(again?.channel_ids ?? []);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<InvitationCreated | null>(null);
  const roles: Role[] = me.agent.role === 'super_admin' ? ['agent', 'admin', 'super_admin'] : ['agent', 'admin'];
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      const body = again ? { email } : { email, name: name || undefined, role, channel_ids: access };
      const r = await api.post<InvitationCreated>('/agents/invitations', body);
      await loadReference();
      setCreated(r);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  if (created) {
    return (
      <Modal title={`Invitation for ${created.agent.name}`} onClose={onClose} wide>
        <div class="form" data-testid="invitation-link">
          <CopyField id="invitation-url" label="Set-your-password link" value={created.url} />
          <p class="muted small">
            Send this link to {created.agent.email} (by chat or mail). It works once, until {full(created.expires_at)}; they choose their
            own password and then sign in. {created.mailed
              ? 'Switchboard is also mailing it to them.'
              : 'No mailbox is enabled, so Switchboard cannot mail it: hand it over yourself.'}
          </p>
          <div class="form-end">
            <button
              type="button"
              class="btn primary"
              onClick={() => {
                toast('Invitation ready', 'success');
                onClose();
              }}
            >
              Done
            </button>
          </div>
        </div>
      </Modal>
    );
  }
  return (
    <Modal title={again ? `Invite ${again.name} again` : 'Invite a teammate'} onClose={onClose} wide>
      <form class="form" onSubmit={submit}>
        {again && <p class="muted small">A new link replaces the one sent before.</p>}
        <div class="grid2">
          <label class="field">
            <span>Email</span>
            <input type="email" value={email} onInput={(e) => setEmail(e.currentTarget.value)} required disabled={!!again} autoFocus />
          </label>
          <label class="field">
            <span>Name</span>
            <input value={name} onInput={(e) => setName(e.currentTarget.value)} maxLength={100} disabled={!!again} />
          </label>
          <label class="field">
            <span>Role</span>
            <select value={role} onChange={(e) => setRole(e.currentTarget.value as Role)} disabled={!!again}>
              {roles.map((r) => (
                <option key={r} value={r}>
                  {ROLE_LABEL[r]}
                </option>
              ))}
            </select>
          </label>
        </div>
        {!again && (
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
        )}
        <FormEnd error={error} onCancel={onClose} submit="Create invitation link" busy={busy} />
      </form>
    </Modal>
  );
}
