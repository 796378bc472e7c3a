// The set-your-password page of an invitation link (`/invite/{token}`, issue #17 item 9): shows who the invitation is
// for, takes a new password (the usual rules: at least 8 characters), then signs the new agent in. An expired, used
// or altered link says so and what to do.

import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, errorText } from '../api';
import { navigate } from '../router';
import { signIn } from '../state';

interface InvitationView {
  email: string;
  name: string;
  expires_at: string;
}

export function InvitationPage({ token }: { token: string }) {
  const [inv, setInv] = useState<InvitationView | null>(null);
  const [dead, setDead] = useState('');
  const [password, setPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const path = `/invitations/${encodeURIComponent(token)}`;
  useEffect(() => {
    api
      .get<InvitationView>(path)
      .then(setInv)
      .catch((e) => setDead(e instanceof ApiError && e.status === 404 ? 'This invitation link is not valid: it may be mistyped, or a newer invitation replaced it.' : errorText(e)));
  }, [token]);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (password.length < 8) return setError('Choose a password of at least 8 characters.');
    if (password !== repeat) return setError('The two passwords differ.');
    setBusy(true);
    setError('');
    try {
      const r = await api.post<{ email: string }>(path, { password });
      await signIn(r.email, password);
      navigate('/tickets', { replace: true });
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };
  return (
    <main class="auth-page">
      <form class="auth-card" onSubmit={submit} aria-labelledby="invite-title">
        <div class="auth-brand">
          <span class="logo" aria-hidden="true">
            SB
          </span>
          <span>Switchboard</span>
        </div>
        <h1 id="invite-title">Set your password</h1>
        {dead ? (
          <p class="form-error" role="alert" data-testid="invitation-refused">
            {dead}
          </p>
        ) : !inv ? (
          <p class="muted">Checking the invitation…</p>
        ) : (
          <>
            <p class="muted">
              Welcome, {inv.name}. Choose the password you will sign in with as <strong>{inv.email}</strong>.
            </p>
            <label class="field">
              <span>New password</span>
              <input type="password" autocomplete="new-password" required minLength={8} value={password} onInput={(e) => setPassword(e.currentTarget.value)} autoFocus />
            </label>
            <label class="field">
              <span>Repeat the password</span>
              <input type="password" autocomplete="new-password" required minLength={8} value={repeat} onInput={(e) => setRepeat(e.currentTarget.value)} />
            </label>
            {error && (
              <p class="form-error" role="alert">
                {error}
              </p>
            )}
            <button class="btn primary block" type="submit" disabled={busy}>
              {busy ? 'Saving…' : 'Set password and sign in'}
            </button>
          </>
        )}
      </form>
    </main>
  );
}
