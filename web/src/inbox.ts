// The agent's notification inbox (#17): the bell's unread count and list, kept on the server
// (GET /me/notifications) and live over the socket (`notification`, `notifications.read` frames);
// marking read; and the desktop pop-up for a new notification when the agent switched pop-ups on
// (the header's "Browser notifications" toggle, RT-6).

import { api, errorText, qs } from './api';
import { navigate } from './router';
import { app, openConversation, toast } from './state';
import { createStore } from './store';
import type { AgentNotification } from './types';

export interface InboxState {
  items: AgentNotification[];
  unread: number;
  loaded: boolean;
  loading: boolean;
  hasMore: boolean;
}

interface Page {
  items: AgentNotification[];
  unread_count: number;
  has_more: boolean;
}

const PAGE = 30;

export const inbox = createStore<InboxState>({ items: [], unread: 0, loaded: false, loading: false, hasMore: false });

/** Newest first, one copy of each. */
function merged(items: AgentNotification[], more: AgentNotification[]): AgentNotification[] {
  const byId = new Map<number, AgentNotification>();
  for (const n of [...items, ...more]) byId.set(n.id, n);
  return [...byId.values()].sort((a, b) => (a.created_at === b.created_at ? b.id - a.id : b.created_at.localeCompare(a.created_at)));
}

/** Read the newest page (after sign-in and whenever the socket (re)connects: a dropped frame is healed here). */
export async function loadInbox() {
  inbox.set({ loading: true });
  try {
    const page = await api.get<Page>('/me/notifications' + qs({ limit: PAGE }));
    inbox.set({ items: page.items, unread: page.unread_count, hasMore: page.has_more, loaded: true, loading: false });
  } catch {
    inbox.set({ loading: false });
  }
}

export async function loadOlder() {
  const s = inbox.get();
  const last = s.items[s.items.length - 1];
  if (!last || s.loading) return;
  inbox.set({ loading: true });
  try {
    const page = await api.get<Page>('/me/notifications' + qs({ limit: PAGE, before: last.id }));
    inbox.set((st) => ({ items: merged(st.items, page.items), unread: page.unread_count, hasMore: page.has_more, loading: false }));
  } catch (e) {
    inbox.set({ loading: false });
    toast(errorText(e), 'error');
  }
}

export function resetInbox() {
  inbox.set({ items: [], unread: 0, loaded: false, loading: false, hasMore: false });
}

export function onNotification(n: AgentNotification, unread: number) {
  inbox.set((s) => ({ items: merged(s.items, [n]), unread }));
  popup(n);
}

export function onNotificationsRead(ids: number[], all: boolean, unread: number) {
  const now = new Date().toISOString();
  inbox.set((s) => ({
    unread,
    items: s.items.map((n) => (!n.read_at && (all || ids.includes(n.id)) ? { ...n, read_at: now } : n)),
  }));
}

export async function markRead(id: number) {
  const n = inbox.get().items.find((x) => x.id === id);
  if (!n || n.read_at) return;
  try {
    const res = await api.post<{ unread_count: number }>(`/me/notifications/${id}/read`);
    onNotificationsRead([id], false, res.unread_count);
  } catch (e) {
    toast(errorText(e), 'error');
  }
}

export async function markAllRead() {
  try {
    const res = await api.post<{ unread_count: number }>('/me/notifications/read-all');
    onNotificationsRead([], true, res.unread_count);
  } catch (e) {
    toast(errorText(e), 'error');
  }
}

/** Open the notification's conversation (in the chat panel while the chat is live) and mark it read. */
export async function openNotification(n: AgentNotification) {
  markRead(n.id);
  const c = app.get().convs[n.conversation_id] ?? (await openConversation(n.conversation_id).catch(() => null));
  if (!c) {
    toast(`#${n.conversation_number} is no longer available`, 'error');
    return;
  }
  navigate((c.active_chat ? '/chats/' : '/tickets/') + c.id);
}

/** What a notification says, in a few words. */
export function headline(n: AgentNotification): string {
  const who = n.actor.name || 'Someone';
  const conv = `#${n.conversation_number}`;
  switch (n.kind) {
    case 'assigned':
      return n.actor.kind === 'system' ? `${conv} was assigned to you` : `${who} assigned ${conv} to you`;
    case 'mentioned':
      return `${who} mentioned you in ${conv}`;
    case 'customer_replied':
      return `${n.customer_name || who} replied in ${conv}`;
    case 'chat_waiting':
      return `A new chat from ${n.customer_name || 'a customer'} waits for you (${conv})`;
    default:
      return conv;
  }
}

function popup(n: AgentNotification) {
  if (!app.get().notifications || !('Notification' in window) || Notification.permission !== 'granted') return;
  // A customer message on screen is announced by the conversation's own pop-up (same tag: one replaces the other).
  if (app.get().viewing === n.conversation_id && document.visibilityState === 'visible') return;
  try {
    const p = new Notification(headline(n), { body: n.excerpt.slice(0, 200), tag: 'conversation-' + n.conversation_id });
    p.onclick = () => {
      window.focus();
      openNotification(n);
      p.close();
    };
  } catch {
    /* some browsers only allow notifications from a service worker */
  }
}
