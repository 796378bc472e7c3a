// Changing one's own password (issue #13): the current password is required; every other
// session of the agent is signed out (this one stays); the agent may also revoke their API
// tokens. Sockets of the ended sessions close with 4001 (docs/realtime.md).

import { useState } from 'preact/hooks';
import { api, errorText } from '../api';
import { app, toast } from '../state';
import { useStore } from '../store';
import { Modal } from './common';

export function ChangePassword({ onClose }: { onClose: () => void }) {
  const me = useStore(app, (s) => s.me!);
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [revokeTokens, setRevokeTokens] = useState(false);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      await api.patch(`/agents/${me.agent.id}`, { password: next, current_password: current, revoke_tokens: revokeTokens });
      toast(revokeTokens ? 'Password changed; other sessions signed out and API tokens revoked' : 'Password changed; other sessions signed out', 'success');
      onClose();
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };
  return (
    <Modal title="Change password" onClose={onClose}>
      <form class="form" onSubmit={submit}>
        <label class="field">
          <span>Current password</span>
          <input type="password" autocomplete="current-password" value={current} onInput={(e) => setCurrent(e.currentTarget.value)} required />
        </label>
        <label class="field">
          <span>New password</span>
          <input type="password" autocomplete="new-password" value={next} onInput={(e) => setNext(e.currentTarget.value)} required minLength={8} />
        </label>
        <label class="check">
          <input type="checkbox" checked={revokeTokens} onChange={(e) => setRevokeTokens(e.currentTarget.checked)} /> Also revoke my API tokens
        </label>
        <p class="muted small">Your other sessions are signed out; this one stays.</p>
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
        <div class="modal-actions">
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="btn primary" disabled={busy}>
            Change password
          </button>
        </div>
      </form>
    </Modal>
  );
}
