// The frame around every signed-in screen: navigation (with the live chat indicator), the
// connection state, the team's presence, one's own status, notifications, password change,
// sign-out, toasts. On a phone (issue #17 item 10) the navigation is a drawer behind a menu button: Escape or a
// choice closes it, focus stays inside while it is open and goes back to the button after.

import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { navigate, useLocation } from '../router';
import { reads } from '../reads';
import { app, dismissToast, isAdmin, presenceOf, setMyStatus, setNotifications, signOut } from '../state';
import { useStore } from '../store';
import type { Presence } from '../types';
import { focusables, PHONE, useMedia } from '../queue';
import { Bell } from './Bell';
import { ChangePassword } from './ChangePassword';
import { IconMenu } from './queueIcons';
import { OnboardingChecklist } from './Onboarding';
import { Avatar, Link, Modal } from './common';
import { IconBell, IconBellOff, IconChat, IconInbox, IconKey, IconLogout, IconPlus, IconSettings } from './icons';

function NavItem({ href, label, icon, badge, live, testid = 'chats-live-indicator' }: { href: string; label: string; icon: ComponentChildren; badge?: number; live?: boolean; testid?: string }) {
  const loc = useLocation();
  const active = loc.path === href || loc.path.startsWith(href + '/');
  return (
    <Link href={href} class={'nav-item' + (active ? ' active' : '')} aria-current={active ? 'page' : undefined}>
      <span class="nav-icon">
        {icon}
        {live && (
          <span class="nav-badge live" data-testid={testid} aria-hidden="true">
            {badge}
          </span>
        )}
      </span>
      <span class="nav-label">{label}</span>
      {badge ? <span class="sr-only">, {badge} unread</span> : null}
    </Link>
  );
}

function ConnectionState() {
  const conn = useStore(app, (s) => s.conn);
  const [, tick] = useState(0);
  useEffect(() => {
    if (conn.state !== 'reconnecting') return;
    const t = window.setInterval(() => tick((n) => n + 1), 500);
    return () => window.clearInterval(t);
  }, [conn.state]);
  let label = 'Live';
  let cls = 'live';
  if (conn.state === 'connecting') {
    label = 'Connecting…';
    cls = 'pending';
  } else if (conn.state === 'resuming') {
    label = 'Catching up…';
    cls = 'pending';
  } else if (conn.state === 'reconnecting') {
    const secs = conn.retryAt ? Math.max(0, Math.ceil((conn.retryAt - Date.now()) / 1000)) : 0;
    label = secs > 0 ? `Reconnecting in ${secs}s…` : 'Reconnecting…';
    cls = 'down';
  } else if (conn.state === 'paused') {
    label = 'Offline';
    cls = 'off';
  } else if (conn.state === 'idle') {
    label = 'Not connected';
    cls = 'off';
  }
  return (
    <span class={'conn-state ' + cls} role="status" aria-live="polite" data-testid="connection-state" data-state={conn.state}>
      <span class="conn-dot" aria-hidden="true" />
      {label}
    </span>
  );
}

function TeamPresence() {
  const agents = useStore(app, (s) => s.agents);
  const me = useStore(app, (s) => s.me?.agent.id);
  useStore(app, (s) => s.presence);
  useStore(app, (s) => s.myStatus);
  useStore(app, (s) => s.conn.state);
  const [open, setOpen] = useState(false);
  const others = agents.filter((a) => a.active && a.id !== me);
  const rank: Record<Presence, number> = { online: 0, away: 1, offline: 2 };
  const sorted = others
    .map((a) => ({ a, p: presenceOf(a.id) }))
    .sort((x, y) => rank[x.p] - rank[y.p] || x.a.name.localeCompare(y.a.name));
  const online = sorted.filter((x) => x.p !== 'offline').length;
  useEffect(() => {
    if (!open) return;
    const close = (e: Event) => {
      if (e instanceof KeyboardEvent ? e.key === 'Escape' : !(e.target as HTMLElement).closest('.team-presence')) setOpen(false);
    };
    document.addEventListener('mousedown', close);
    document.addEventListener('keydown', close);
    return () => {
      document.removeEventListener('mousedown', close);
      document.removeEventListener('keydown', close);
    };
  }, [open]);
  return (
    <div class="team-presence">
      <button
        type="button"
        class="presence-stack"
        aria-expanded={open}
        aria-controls="team-list"
        onClick={() => setOpen(!open)}
      >
        <span class="stack" aria-hidden="true">
          {sorted.slice(0, 5).map(({ a, p }) => (
            <Avatar key={a.id} name={a.name} size={26} presence={p} />
          ))}
        </span>
        <span class="presence-count">
          {online} of {others.length} teammates online
        </span>
      </button>
      <ul id="team-list" class={'team-list' + (open ? ' open' : '')} aria-label="Team presence">
        {sorted.map(({ a, p }) => (
          <li key={a.id} data-agent-presence={a.id} data-status={p}>
            <Avatar name={a.name} size={24} presence={p} />
            <span class="grow">{a.name}</span>
            <span class={'presence-label ' + p}>{p}</span>
          </li>
        ))}
        {!sorted.length && <li class="muted">No other agents yet.</li>}
      </ul>
    </div>
  );
}

function MyStatus() {
  const status = useStore(app, (s) => (s.conn.state === 'paused' ? 'offline' : s.myStatus));
  return (
    <label class="my-status">
      <span class={'presence-dot inline ' + status} aria-hidden="true" />
      <span class="sr-only">Your status</span>
      <select value={status} onChange={(e) => setMyStatus(e.currentTarget.value as Presence)} data-testid="my-status">
        <option value="online">Online</option>
        <option value="away">Away</option>
        <option value="offline">Offline</option>
      </select>
    </label>
  );
}

function NotificationsToggle() {
  const pref = useStore(app, (s) => s.notifications);
  const perm = 'Notification' in window ? Notification.permission : 'denied';
  // On only when the agent wants them and the browser allows them.
  const on = pref && perm === 'granted';
  return (
    <button
      type="button"
      class="icon-btn"
      aria-pressed={on}
      aria-label="Browser notifications"
      title={on ? 'Notifications on — click to switch off' : 'Notifications off — click to switch on'}
      onClick={() => setNotifications(!on)}
      data-testid="notifications-toggle"
    >
      {on ? <IconBell /> : <IconBellOff />}
    </button>
  );
}

export function ShortcutsHelp({ onClose }: { onClose: () => void }) {
  const rows: [string, string][] = [
    ['Ctrl + Enter', 'Send the reply (or note)'],
    ['Alt + N', 'Switch between reply and internal note'],
    ['Alt + ↓ / Alt + ↑', 'Next / previous conversation'],
    ['J / K', 'Next / previous conversation (outside text fields)'],
    ['R', 'Focus the reply editor'],
    ['/', 'Search tickets'],
    ['G then C / G then T', 'Go to chats / tickets'],
    ['Ctrl + B, Ctrl + I, Ctrl + K', 'Bold, italic, link (in the editor)'],
    ['?', 'This help'],
  ];
  return (
    <Modal title="Keyboard shortcuts" onClose={onClose}>
      <table class="shortcuts">
        <tbody>
          {rows.map(([k, v]) => (
            <tr key={k}>
              <th scope="row">
                <kbd>{k}</kbd>
              </th>
              <td>{v}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Modal>
  );
}

function Toasts() {
  const toasts = useStore(app, (s) => s.toasts);
  return (
    <div class="toasts" role="region" aria-live="polite" aria-label="Notifications">
      {toasts.map((t) => (
        <div key={t.id} class={'toast ' + t.kind} role={t.kind === 'error' ? 'alert' : undefined}>
          <span>{t.text}</span>
          <button type="button" class="icon-btn small" aria-label="Dismiss" onClick={() => dismissToast(t.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}

export function Shell({ children }: { children: ComponentChildren }) {
  const me = useStore(app, (s) => s.me);
  const unreadChats = useStore(reads, (s) => s.chats.conversations);
  const unreadTickets = useStore(reads, (s) => s.tickets.conversations);
  const conn = useStore(app, (s) => s.conn.state);
  const [help, setHelp] = useState(false);
  const [changingPassword, setChangingPassword] = useState(false);
  const phone = useMedia(PHONE);
  const [navOpen, setNavOpen] = useState(false);
  const menuButton = useRef<HTMLButtonElement>(null);
  const nav = useRef<HTMLElement>(null);
  const path = useLocation().path;
  const drawer = phone && navOpen;
  const closeNav = (refocus: boolean) => {
    setNavOpen(false);
    if (refocus) menuButton.current?.focus();
  };
  useEffect(() => setNavOpen(false), [path, phone]);
  useEffect(() => {
    if (!drawer) return;
    const el = nav.current;
    if (!el) return;
    focusables(el)[0]?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        closeNav(true);
      } else if (e.key === 'Tab') {
        // Focus stays in the drawer while it is open.
        const all = focusables(el);
        if (!all.length) return;
        const i = all.indexOf(document.activeElement as HTMLElement);
        const next = e.shiftKey ? (i <= 0 ? all.length - 1 : i - 1) : i === all.length - 1 ? 0 : i + 1;
        e.preventDefault();
        all[next].focus();
      }
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [drawer]);
  useEffect(() => {
    document.title = (unreadChats ? `(${unreadChats}) ` : '') + 'Switchboard';
  }, [unreadChats]);
  useEffect(() => {
    let g = 0;
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (t.closest('input, textarea, select, [contenteditable="true"]') || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === '?') {
        e.preventDefault();
        setHelp(true);
      } else if (e.key === 'g') {
        g = Date.now();
      } else if (Date.now() - g < 1200 && (e.key === 'c' || e.key === 't')) {
        g = 0;
        navigate(e.key === 'c' ? '/chats' : '/tickets');
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  if (!me) return null;
  return (
    <div class="shell">
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        {phone && (
          <button
            type="button"
            class="icon-btn menu-btn"
            ref={menuButton}
            aria-label="Menu"
            aria-expanded={navOpen}
            aria-controls="main-nav"
            onClick={() => (navOpen ? closeNav(false) : setNavOpen(true))}
            data-testid="menu-button"
          >
            <IconMenu />
          </button>
        )}
        <div class="brand">
          <span class="logo" aria-hidden="true">
            SB
          </span>
          <span class="brand-name">Switchboard</span>
        </div>
        <ConnectionState />
        <div class="grow" />
        <TeamPresence />
        <Bell />
        <NotificationsToggle />
        <MyStatus />
        <div class="me">
          <Avatar name={me.agent.name} size={28} />
          <span class="me-name">{me.agent.name}</span>
        </div>
        <button type="button" class="icon-btn" onClick={() => setChangingPassword(true)} aria-label="Change password" title="Change password">
          <IconKey />
        </button>
        <button type="button" class="icon-btn" onClick={() => signOut()} aria-label="Sign out" title="Sign out">
          <IconLogout />
        </button>
      </header>
      {(conn === 'reconnecting' || conn === 'paused') && (
        <div class={'banner ' + (conn === 'paused' ? 'info' : 'warn')} data-testid="reconnecting-banner">
          {conn === 'paused' ? (
            <>
              You are offline: live updates are paused and teammates see you as offline.{' '}
              <button type="button" class="link-btn" onClick={() => setMyStatus('online')}>
                Go online
              </button>
            </>
          ) : (
            'Connection lost — reconnecting. Nothing will be missed: the dashboard catches up as soon as it is back.'
          )}
        </div>
      )}
      {isAdmin() && <OnboardingChecklist />}
      <div class={'body' + (phone ? ' nav-drawer' : '') + (drawer ? ' nav-open' : '')}>
        {drawer && <div class="drawer-backdrop" onClick={() => closeNav(true)} aria-hidden="true" />}
        <nav class="rail" id="main-nav" aria-label="Main" ref={nav}>
          <NavItem href="/chats" label="Chats" icon={<IconChat />} badge={unreadChats} live={unreadChats > 0} />
          <NavItem href="/tickets" label="Tickets" icon={<IconInbox />} badge={unreadTickets} live={unreadTickets > 0} testid="tickets-unread-badge" />
          <NavItem href="/new" label="New" icon={<IconPlus />} />
          {isAdmin() && <NavItem href="/admin" label="Admin" icon={<IconSettings />} />}
          <div class="grow" />
          <button type="button" class="nav-item help" onClick={() => setHelp(true)} aria-label="Keys (keyboard shortcuts)" title="Keyboard shortcuts (?)">
            <span class="nav-icon" aria-hidden="true">
              ?
            </span>
            <span class="nav-label">Keys</span>
          </button>
        </nav>
        <main id="main" class="main" tabIndex={-1}>
          {children}
        </main>
      </div>
      {help && <ShortcutsHelp onClose={() => setHelp(false)} />}
      {changingPassword && <ChangePassword onClose={() => setChangingPassword(false)} />}
      <Toasts />
    </div>
  );
}
