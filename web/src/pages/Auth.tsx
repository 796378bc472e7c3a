// Sign-in, and the first-run page shown while no admin exists (create one here or with the CLI).

import { useState } from 'preact/hooks';
import { api, errorText } from '../api';
import { app, signIn } from '../state';
import { useStore } from '../store';

function Brand() {
  return (
    <div class="auth-brand">
      <span class="logo" aria-hidden="true">
        SB
      </span>
      <span>Switchboard</span>
    </div>
  );
}

export function LoginPage() {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      await signIn(email, password);
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };
  return (
    <main class="auth-page">
      <form class="auth-card" onSubmit={submit} aria-labelledby="login-title">
        <Brand />
        <h1 id="login-title">Sign in</h1>
        <label class="field">
          <span>Email</span>
          <input type="email" name="email" autocomplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} autoFocus />
        </label>
        <label class="field">
          <span>Password</span>
          <input
            type="password"
            name="password"
            autocomplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
        <button class="btn primary block" type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

export function SetupPage() {
  const setup = useStore(app, (s) => s.setup);
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [copied, setCopied] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (password.length < 8) {
      setError('Choose a password of at least 8 characters.');
      return;
    }
    setBusy(true);
    setError('');
    try {
      await api.post('/setup', { email, password, name: name || undefined });
      await signIn(email, password);
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(setup?.command ?? '');
      setCopied(true);
    } catch {
      /* clipboard not available */
    }
  };
  return (
    <main class="auth-page">
      <div class="auth-card wide">
        <Brand />
        <h1>Welcome — let's create the first admin</h1>
        <p class="muted">No administrator exists yet. Create one here, or from the server's command line.</p>
        <div class="setup-grid">
          <form onSubmit={submit} aria-labelledby="setup-form-title">
            <h2 id="setup-form-title">Create it here</h2>
            <label class="field">
              <span>Your name</span>
              <input name="name" autocomplete="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
            </label>
            <label class="field">
              <span>Email</span>
              <input type="email" name="email" autocomplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
            </label>
            <label class="field">
              <span>Password</span>
              <input
                type="password"
                name="password"
                autocomplete="new-password"
                required
                minLength={8}
                value={password}
                onInput={(e) => setPassword(e.currentTarget.value)}
              />
            </label>
            {error && (
              <p class="form-error" role="alert">
                {error}
              </p>
            )}
            <button class="btn primary block" type="submit" disabled={busy}>
              {busy ? 'Creating…' : 'Create admin and sign in'}
            </button>
          </form>
          <section aria-labelledby="setup-cli-title">
            <h2 id="setup-cli-title">Or use the command line</h2>
            <p class="muted">On the server, run:</p>
            <pre class="code-block">
              <code>{setup?.command ?? 'switchboard admin create --email … --password …'}</code>
            </pre>
            <button class="btn" type="button" onClick={copy}>
              {copied ? 'Copied' : 'Copy command'}
            </button>
            <p class="muted small">Then reload this page and sign in.</p>
          </section>
        </div>
      </div>
    </main>
  );
}
