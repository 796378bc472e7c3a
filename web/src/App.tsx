// Which screen to show: first-run, sign-in, or the dashboard's routes.

import { useEffect } from 'preact/hooks';
import { Shell } from './components/Shell';
import { Spinner } from './components/common';
import { match, navigate, useLocation } from './router';
import { app, isAdmin } from './state';
import { useStore } from './store';
import { AdminPage } from './pages/Admin';
import { LoginPage, SetupPage } from './pages/Auth';
import { ChatsPage } from './pages/Chats';
import { InvitationPage } from './pages/Invitation';
import { NewConversationPage } from './pages/NewConversation';
import { TicketsPage } from './pages/Tickets';

function Routes() {
  const loc = useLocation();
  const p = loc.path;
  let m: Record<string, string> | null;
  if (p === '/' || p === '/login' || p === '/setup') return null;
  if (p === '/chats') return <ChatsPage id={null} />;
  if ((m = match('/chats/:id', p))) return <ChatsPage id={Number(m.id)} />;
  if (p === '/tickets') return <TicketsPage id={null} />;
  if ((m = match('/tickets/:id', p))) return <TicketsPage id={Number(m.id)} />;
  if (p === '/new') return <NewConversationPage />;
  if (p === '/admin' && isAdmin()) return <AdminPage tab="agents" />;
  if ((m = match('/admin/:tab', p)) && isAdmin()) return <AdminPage tab={m.tab} />;
  return (
    <div class="page">
      <h1>Not found</h1>
      <p>
        There is nothing at <code>{p}</code>.
      </p>
    </div>
  );
}

export function App() {
  const boot = useStore(app, (s) => s.boot);
  const loc = useLocation();
  const invitation = match('/invite/:token', loc.path);
  useEffect(() => {
    if (invitation) return;
    if (boot === 'setup' && loc.path !== '/setup') navigate('/setup', { replace: true });
    if (boot === 'login' && loc.path !== '/login') {
      sessionStorage.setItem('sb.after-login', loc.path + location.search);
      navigate('/login', { replace: true });
    }
    if (boot === 'ready' && loc.path === '/') navigate('/tickets', { replace: true });
    if (boot === 'ready' && (loc.path === '/login' || loc.path === '/setup')) {
      const back = sessionStorage.getItem('sb.after-login');
      sessionStorage.removeItem('sb.after-login');
      navigate(back && back !== '/login' ? back : '/tickets', { replace: true });
    }
  }, [boot, loc.path]);
  if (boot === 'loading') {
    return (
      <div class="boot">
        <Spinner label="Starting" />
      </div>
    );
  }
  if (invitation) return <InvitationPage token={invitation.token} />;
  if (boot === 'setup') return <SetupPage />;
  if (boot === 'login') return <LoginPage />;
  return (
    <Shell>
      <Routes />
    </Shell>
  );
}
