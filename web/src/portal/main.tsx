// The customer portal (issue #18, CU-1…CU-3, HD-12): a small page of its own, served by the binary at /portal.
// Sign in, "forgot password" and the reset link, the customer's tickets, one ticket with its public messages, a
// reply with files, a new ticket, close, rate (Good / Average / Bad). Keyboard-first (every action is a real link,
// button or form; the heading of each view takes focus when the view changes), announced to screen readers
// (a polite live region for what happened), and laid out for phones as well as laptops.

import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import { api, PortalError, setCsrf } from './api';
import type { PortalAttachment, PortalMe, PortalMessage, PortalTicket, Rating } from './api';
import './portal.css';

// ---------------------------------------------------------------------------------------------
// Routing: /portal, /portal/tickets/{id}, /portal/new, /portal/login, /portal/forgot, /portal/reset/{token}

type Route =
  | { name: 'list' }
  | { name: 'ticket'; id: number }
  | { name: 'new' }
  | { name: 'login' }
  | { name: 'forgot' }
  | { name: 'reset'; token: string };

function parse(path: string): Route {
  const rest = path.replace(/^\/portal\/?/, '');
  const ticket = /^tickets\/(\d+)\/?$/.exec(rest);
  if (ticket) return { name: 'ticket', id: Number(ticket[1]) };
  const reset = /^reset\/([^/]+)\/?$/.exec(rest);
  if (reset) return { name: 'reset', token: decodeURIComponent(reset[1]) };
  if (rest === 'new') return { name: 'new' };
  if (rest === 'login') return { name: 'login' };
  if (rest === 'forgot') return { name: 'forgot' };
  return { name: 'list' };
}

let setRouteGlobal: ((r: Route) => void) | null = null;

function go(path: string) {
  history.pushState(null, '', path);
  setRouteGlobal?.(parse(path));
}

function A({ href, children, class: cls, testid }: { href: string; children: ComponentChildren; class?: string; testid?: string }) {
  return (
    <a
      href={href}
      class={cls}
      data-testid={testid}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        go(href);
      }}
    >
      {children}
    </a>
  );
}

// ---------------------------------------------------------------------------------------------
// Small pieces

const STATE_LABEL: Record<string, string> = { open: 'Open', pending: 'Waiting for you', closed: 'Closed' };
const RATING_LABEL: Record<Rating, string> = { good: 'Good', average: 'Average', bad: 'Bad' };

function when(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

function size(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function message(e: unknown): string {
  return e instanceof PortalError ? e.message : 'Something went wrong. Try again.';
}

/** The view's heading, focused when the view appears (so keyboard and screen-reader users start there). */
function Heading({ children }: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => ref.current?.focus(), []);
  return (
    <h1 tabIndex={-1} ref={ref}>
      {children}
    </h1>
  );
}

function Alert({ text, kind }: { text: string | null; kind: 'error' | 'info' }) {
  if (!text) return null;
  return (
    <p class={'alert ' + kind} role={kind === 'error' ? 'alert' : 'status'} data-testid={kind === 'error' ? 'portal-error' : 'portal-info'}>
      {text}
    </p>
  );
}

/** Files chosen for a message: uploaded on send. */
function FilePicker({ files, onChange, id }: { files: File[]; onChange: (f: File[]) => void; id: string }) {
  return (
    <div class="files">
      <label for={id}>Attach files</label>
      <input
        id={id}
        type="file"
        multiple
        data-testid="portal-file"
        onChange={(e) => {
          onChange([...files, ...Array.from(e.currentTarget.files ?? [])]);
          e.currentTarget.value = '';
        }}
      />
      {files.length > 0 && (
        <ul class="chosen" aria-label="Files to send">
          {files.map((f, i) => (
            <li key={i}>
              {f.name} <span class="muted">({size(f.size)})</span>{' '}
              <button type="button" class="link" onClick={() => onChange(files.filter((_, j) => j !== i))} aria-label={'Remove ' + f.name}>
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

async function uploadAll(files: File[]): Promise<number[]> {
  const ids: number[] = [];
  for (const f of files) ids.push((await api.upload(f)).id);
  return ids;
}

function Files({ list }: { list: PortalAttachment[] }) {
  if (!list.length) return null;
  return (
    <ul class="attachments" aria-label="Attached files">
      {list.map((a) => (
        <li key={a.id}>
          <a href={a.url} target="_blank" rel="noopener" data-testid="portal-attachment">
            {a.file_name}
          </a>{' '}
          <span class="muted">({size(a.size_bytes)})</span>
        </li>
      ))}
    </ul>
  );
}

// ---------------------------------------------------------------------------------------------
// Signing in

function Login({ onIn, notice }: { onIn: (me: PortalMe) => void; notice: string | null }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <main class="narrow">
      <Heading>Sign in to your tickets</Heading>
      <Alert text={notice} kind="info" />
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          try {
            onIn(await api.login(email, password));
          } catch (err) {
            setError(message(err));
          } finally {
            setBusy(false);
          }
        }}
      >
        <label for="email">Email</label>
        <input id="email" type="email" autocomplete="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        <label for="password">Password</label>
        <input id="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        <Alert text={error} kind="error" />
        <button type="submit" class="btn primary" disabled={busy} data-testid="portal-login">
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <p>
        <A href="/portal/forgot">Forgot your password, or never set one?</A>
      </p>
    </main>
  );
}

function Forgot() {
  const [email, setEmail] = useState('');
  const [done, setDone] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  return (
    <main class="narrow">
      <Heading>Set or reset your password</Heading>
      <p>Enter the address you write to us from. We mail you a link to set a password; it works for one hour.</p>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          try {
            setDone((await api.forgot(email)).message);
          } catch (err) {
            setError(message(err));
          }
        }}
      >
        <label for="forgot-email">Email</label>
        <input id="forgot-email" type="email" autocomplete="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        <Alert text={error} kind="error" />
        <Alert text={done} kind="info" />
        <button type="submit" class="btn primary">
          Mail me a link
        </button>
      </form>
      <p>
        <A href="/portal/login">Back to sign in</A>
      </p>
    </main>
  );
}

function Reset({ token, onIn }: { token: string; onIn: (me: PortalMe) => void }) {
  const [password, setPassword] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState<string | null>(null);
  return (
    <main class="narrow">
      <Heading>Choose your password</Heading>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          if (password !== again) {
            setError('The two passwords differ.');
            return;
          }
          setError(null);
          try {
            onIn(await api.reset(token, password));
          } catch (err) {
            setError(message(err));
          }
        }}
      >
        <label for="new-password">New password (at least 8 characters)</label>
        <input id="new-password" type="password" autocomplete="new-password" minLength={8} required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        <label for="new-password-again">The same again</label>
        <input id="new-password-again" type="password" autocomplete="new-password" minLength={8} required value={again} onInput={(e) => setAgain(e.currentTarget.value)} />
        <Alert text={error} kind="error" />
        <button type="submit" class="btn primary">
          Save and sign in
        </button>
      </form>
      <p>
        <A href="/portal/forgot">Ask for a new link</A>
      </p>
    </main>
  );
}

// ---------------------------------------------------------------------------------------------
// Tickets

function StatePill({ t }: { t: PortalTicket }) {
  return <span class={'pill state-' + t.state}>{STATE_LABEL[t.state] ?? t.status}</span>;
}

function List() {
  const [tickets, setTickets] = useState<PortalTicket[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api.tickets().then(setTickets, (e) => setError(message(e)));
  }, []);
  return (
    <main>
      <div class="head-row">
        <Heading>Your tickets</Heading>
        <A href="/portal/new" class="btn primary" testid="portal-new">
          New ticket
        </A>
      </div>
      <Alert text={error} kind="error" />
      {tickets === null && !error && <p aria-busy="true">Loading…</p>}
      {tickets?.length === 0 && <p>You have no tickets yet.</p>}
      {tickets && tickets.length > 0 && (
        <ul class="tickets" data-testid="portal-tickets">
          {tickets.map((t) => (
            <li key={t.id} class="ticket-row" data-testid="portal-ticket-row">
              <A href={`/portal/tickets/${t.id}`} class="ticket-link">
                <span class="num">#{t.number}</span> <span class="subject">{t.subject || '(no subject)'}</span>
              </A>
              <span class="meta">
                <StatePill t={t} />
                {t.csat && <span class={'pill rated-' + t.csat}>Rated {RATING_LABEL[t.csat].toLowerCase()}</span>}
                <span class="muted">Updated {when(t.updated_at)}</span>
              </span>
            </li>
          ))}
        </ul>
      )}
    </main>
  );
}

function Message({ m }: { m: PortalMessage }) {
  return (
    <li class={'msg from-' + m.from} data-testid="portal-message">
      <div class="msg-head">
        <strong>{m.from === 'customer' ? 'You' : m.author}</strong> <span class="muted">{when(m.created_at)}</span>
      </div>
      <div class="msg-text">{m.text}</div>
      <Files list={m.attachments} />
    </li>
  );
}

function RatingPicker({ t, onRated }: { t: PortalTicket; onRated: (t: PortalTicket) => void }) {
  const [error, setError] = useState<string | null>(null);
  return (
    <section class="rating" aria-labelledby="rate-head" data-testid="portal-rating">
      <h2 id="rate-head">How did we do?</h2>
      <div class="rate-buttons" role="group" aria-label="Rate this ticket">
        {(['good', 'average', 'bad'] as Rating[]).map((r) => (
          <button
            key={r}
            type="button"
            class={'btn rate rate-' + r + (t.csat === r ? ' chosen' : '')}
            aria-pressed={t.csat === r}
            data-testid={'portal-rate-' + r}
            onClick={async () => {
              setError(null);
              try {
                onRated(await api.rate(t.id, r));
              } catch (e) {
                setError(message(e));
              }
            }}
          >
            {RATING_LABEL[r]}
          </button>
        ))}
      </div>
      <Alert text={error} kind="error" />
      {t.csat && (
        <p role="status" data-testid="portal-rated">
          Thank you — you rated this ticket {RATING_LABEL[t.csat].toLowerCase()}. You can change it for 7 days.
        </p>
      )}
    </section>
  );
}

function TicketPage({ id }: { id: number }) {
  const [t, setT] = useState<PortalTicket | null>(null);
  const [msgs, setMsgs] = useState<PortalMessage[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [text, setText] = useState('');
  const [files, setFiles] = useState<File[]>([]);
  const [busy, setBusy] = useState(false);
  const [said, setSaid] = useState<string | null>(null);
  const load = async () => {
    try {
      const [ticket, messages] = await Promise.all([api.ticket(id), api.messages(id)]);
      setT(ticket);
      setMsgs(messages);
    } catch (e) {
      setError(e instanceof PortalError && e.status === 404 ? 'There is no such ticket of yours.' : message(e));
    }
  };
  useEffect(() => {
    load();
  }, [id]);
  if (!t) {
    return (
      <main>
        <p>
          <A href="/portal">← Your tickets</A>
        </p>
        <Alert text={error} kind="error" />
        {!error && <p aria-busy="true">Loading…</p>}
      </main>
    );
  }
  return (
    <main>
      <p>
        <A href="/portal">← Your tickets</A>
      </p>
      <Heading>
        {t.subject || '(no subject)'} <span class="num">#{t.number}</span>
      </Heading>
      <p class="meta">
        <StatePill t={t} /> <span class="muted">Opened {when(t.created_at)}</span>
      </p>
      <ol class="thread" aria-label="Messages">
        {msgs.map((m) => (
          <Message key={m.id} m={m} />
        ))}
      </ol>
      <Alert text={said} kind="info" />
      <Alert text={error} kind="error" />
      <form
        class="reply"
        onSubmit={async (e) => {
          e.preventDefault();
          if (!text.trim()) {
            setError('Write a message first.');
            return;
          }
          setBusy(true);
          setError(null);
          try {
            const posted = await api.reply(t.id, text, await uploadAll(files));
            setText('');
            setFiles([]);
            if (posted.ticket.id !== t.id) {
              setSaid(`This ticket was closed, so your message opened ticket #${posted.ticket.number}.`);
              go(`/portal/tickets/${posted.ticket.id}`);
            } else {
              setSaid('Your message was sent.');
              await load();
            }
          } catch (err) {
            setError(message(err));
          } finally {
            setBusy(false);
          }
        }}
      >
        <h2>
          <label for="reply-text">{t.state === 'closed' ? 'Write again (opens a new ticket)' : 'Reply'}</label>
        </h2>
        <textarea id="reply-text" rows={5} value={text} onInput={(e) => setText(e.currentTarget.value)} data-testid="portal-reply-text" />
        <FilePicker files={files} onChange={setFiles} id="reply-files" />
        <div class="actions">
          <button type="submit" class="btn primary" disabled={busy} data-testid="portal-send">
            {busy ? 'Sending…' : 'Send'}
          </button>
          {t.state !== 'closed' && (
            <button
              type="button"
              class="btn"
              data-testid="portal-close"
              onClick={async () => {
                setError(null);
                try {
                  setT(await api.close(t.id));
                  setSaid('The ticket is closed. Thank you!');
                } catch (err) {
                  setError(message(err));
                }
              }}
            >
              Close ticket
            </button>
          )}
        </div>
      </form>
      {t.state === 'closed' && <RatingPicker t={t} onRated={setT} />}
    </main>
  );
}

function NewTicket() {
  const [subject, setSubject] = useState('');
  const [text, setText] = useState('');
  const [files, setFiles] = useState<File[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <main class="narrow">
      <p>
        <A href="/portal">← Your tickets</A>
      </p>
      <Heading>New ticket</Heading>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          try {
            const posted = await api.open(subject, text, await uploadAll(files));
            go(`/portal/tickets/${posted.ticket.id}`);
          } catch (err) {
            setError(message(err));
          } finally {
            setBusy(false);
          }
        }}
      >
        <label for="new-subject">Subject</label>
        <input id="new-subject" required maxLength={300} value={subject} onInput={(e) => setSubject(e.currentTarget.value)} data-testid="portal-subject" />
        <label for="new-text">How can we help?</label>
        <textarea id="new-text" rows={7} required value={text} onInput={(e) => setText(e.currentTarget.value)} data-testid="portal-new-text" />
        <FilePicker files={files} onChange={setFiles} id="new-files" />
        <Alert text={error} kind="error" />
        <button type="submit" class="btn primary" disabled={busy} data-testid="portal-submit">
          {busy ? 'Sending…' : 'Send'}
        </button>
      </form>
    </main>
  );
}

// ---------------------------------------------------------------------------------------------
// The page

function Portal() {
  const [route, setRoute] = useState<Route>(parse(location.pathname));
  const [me, setMe] = useState<PortalMe | null | undefined>(undefined);
  const [notice, setNotice] = useState<string | null>(null);
  setRouteGlobal = setRoute;
  useEffect(() => {
    const pop = () => setRoute(parse(location.pathname));
    addEventListener('popstate', pop);
    api.me().then(
      (m) => {
        setCsrf(m.csrf_token);
        setMe(m);
      },
      () => setMe(null),
    );
    return () => removeEventListener('popstate', pop);
  }, []);
  const signedIn = (m: PortalMe) => {
    setCsrf(m.csrf_token);
    setMe(m);
    setNotice(null);
    if (route.name === 'login' || route.name === 'reset' || route.name === 'forgot') go('/portal');
  };
  if (me === undefined) return <p aria-busy="true">Loading…</p>;
  const publicView =
    route.name === 'forgot' ? <Forgot /> : route.name === 'reset' ? <Reset token={route.token} onIn={signedIn} /> : null;
  return (
    <div class="portal">
      <a class="skip" href="#main-content">
        Skip to content
      </a>
      <header class="top">
        <A href="/portal" class="brand">
          Support
        </A>
        {me && (
          <span class="who">
            <span class="name" data-testid="portal-me">
              {me.customer.name}
            </span>
            <button
              type="button"
              class="btn small"
              onClick={async () => {
                await api.logout().catch(() => undefined);
                setCsrf(null);
                setMe(null);
                setNotice('You are signed out.');
                go('/portal/login');
              }}
            >
              Sign out
            </button>
          </span>
        )}
      </header>
      <div id="main-content">
        {publicView ??
          (!me ? (
            <Login onIn={signedIn} notice={notice} />
          ) : route.name === 'ticket' ? (
            <TicketPage key={route.id} id={route.id} />
          ) : route.name === 'new' ? (
            <NewTicket />
          ) : (
            <List />
          ))}
      </div>
    </div>
  );
}

render(<Portal />, document.getElementById('portal')!);
