// The dashboard's state and what changes it: sign-in, reference data (agents, teams, channels,
// statuses), the conversation cache fed by REST and by socket frames, message threads,
// presence, collision and typing markers, the live indicator for chats (CORE-4), and
// browser notifications (RT-6).

import { api, ApiError, qs, setCsrf, setUnauthorizedHandler } from './api';
import { Live, type ConnState } from './live';
import { applyRead, conversationChanged, customerWrote, loadUnread, markRead, resetReads, seedUnread } from './reads';
import { navigate } from './router';
import { createStore } from './store';
import type {
  Agent,
  AgentNotification,
  Channel,
  Conversation,
  EventFrame,
  Me,
  Message,
  Page,
  Presence,
  ServerFrame,
  Setup,
  Status,
  Team,
  Who,
} from './types';

export interface Thread {
  items: Message[];
  hasEarlier: boolean;
  loading: boolean;
  error?: string;
}

/** A chat row's last message: the newest customer message or reply, never an internal note (the server's rule for
 *  `last_message_preview`, kept live from socket frames). */
export interface Preview {
  text: string;
  /** "You", an agent's name, or '' for the customer. */
  who: string;
}

export interface Toast {
  id: number;
  text: string;
  kind: 'info' | 'error' | 'success';
}

export interface AppState {
  boot: 'loading' | 'setup' | 'login' | 'ready';
  setup: Setup | null;
  me: Me | null;
  agents: Agent[];
  teams: Team[];
  channels: Channel[];
  statuses: Status[];
  presence: Record<number, Presence>;
  myStatus: Presence;
  conn: { state: ConnState; attempt: number; retryAt: number | null };
  convs: Record<number, Conversation>;
  chatIds: number[];
  chatsLoaded: boolean;
  collisions: Record<number, { viewing: Who[]; replying: Who[] }>;
  /** conversation → when the customer's "typing" lapses (ms epoch) */
  customerTyping: Record<number, number>;
  threads: Record<number, Thread>;
  previews: Record<number, Preview>;
  /** Bumped whenever a live event may change the ticket list. */
  listVersion: number;
  /** The conversation open on screen, if any. */
  viewing: number | null;
  notifications: boolean;
  toasts: Toast[];
  /** Frames applied since sign-in (for tests and diagnostics). */
  stats: { frames: number; replayed: number; resumes: number };
}

export const app = createStore<AppState>({
  boot: 'loading',
  setup: null,
  me: null,
  agents: [],
  teams: [],
  channels: [],
  statuses: [],
  presence: {},
  myStatus: 'online',
  conn: { state: 'idle', attempt: 0, retryAt: null },
  convs: {},
  chatIds: [],
  chatsLoaded: false,
  collisions: {},
  customerTyping: {},
  threads: {},
  previews: {},
  listVersion: 0,
  viewing: null,
  notifications: localStorage.getItem('sb.notifications') !== 'off',
  toasts: [],
  stats: { frames: 0, replayed: 0, resumes: 0 },
});

// ---------------------------------------------------------------------------------------------
// Toasts

let toastSeq = 0;
export function toast(text: string, kind: Toast['kind'] = 'info') {
  const id = ++toastSeq;
  app.set((s) => ({ toasts: [...s.toasts.slice(-3), { id, text, kind }] }));
  window.setTimeout(() => dismissToast(id), kind === 'error' ? 8000 : 4000);
}
export function dismissToast(id: number) {
  app.set((s) => ({ toasts: s.toasts.filter((t) => t.id !== id) }));
}

// ---------------------------------------------------------------------------------------------
// Boot, sign-in, sign-out

export const live = new Live({
  frame: (f) => applyFrame(f),
  state: (state, attempt, retryAt) => app.set({ conn: { state, attempt, retryAt } }),
  hello: (fresh, f) => onHello(fresh, f),
  resync: () => refreshAll(),
  authLost: () => signedOut('Your session ended. Please sign in again.'),
  credentialsEnded: () => signedOut('Your session ended (signed out elsewhere, password changed or access revoked). Please sign in again.'),
  // What the agent may see and do changed: start over with the new picture.
  roleChanged: () => location.reload(),
  probeAuth: async () => {
    try {
      await api.get('/me');
      return true;
    } catch (e) {
      return !(e instanceof ApiError && e.status === 401);
    }
  },
});

setUnauthorizedHandler(() => {
  if (app.get().boot === 'ready') signedOut('Your session ended. Please sign in again.');
});

export async function boot() {
  try {
    const me = await api.get<Me>('/me');
    await signedIn(me);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      await showSignIn();
    } else {
      app.set({ boot: 'login' });
      toast('The server cannot be reached: ' + (e as Error).message, 'error');
    }
  }
}

async function showSignIn() {
  try {
    const setup = await api.get<Setup>('/setup');
    app.set({ setup, boot: setup.needs_admin ? 'setup' : 'login' });
  } catch {
    app.set({ boot: 'login' });
  }
}

export async function signIn(email: string, password: string) {
  const me = await api.post<Me>('/auth/login', { email, password });
  await signedIn(me);
}

async function signedIn(me: Me) {
  setCsrf(me.csrf_token);
  const prev = app.get().me;
  if (!prev || prev.agent.id !== me.agent.id) live.reset();
  app.set({ me, boot: 'ready', myStatus: 'online' });
  live.start();
  await loadReference();
}

export async function loadReference() {
  const [agents, teams, channels, statuses] = await Promise.all([
    api.get<Agent[]>('/agents').catch(() => [] as Agent[]),
    api.get<Team[]>('/teams').catch(() => [] as Team[]),
    api.get<Channel[]>('/channels').catch(() => [] as Channel[]),
    api.get<Status[]>('/statuses').catch(() => [] as Status[]),
  ]);
  app.set({ agents, teams, channels, statuses });
}

export async function signOut() {
  try {
    await api.post('/auth/logout');
  } catch {
    /* the session may already be gone */
  }
  signedOut();
}

/**
 * The inbox (inbox.ts) plugs in here rather than being imported: it needs this module (toasts, opening a
 * conversation), so importing it back would make a circle. main.tsx plugs it in before boot().
 */
export interface InboxHooks {
  reset(): void;
  load(): void;
  notified(n: AgentNotification, unread: number): void;
  read(ids: number[], all: boolean, unread: number): void;
}
let inboxHooks: InboxHooks | null = null;
export function plugInbox(hooks: InboxHooks) {
  inboxHooks = hooks;
}

function signedOut(message?: string) {
  live.stop('idle');
  live.reset();
  inboxHooks?.reset();
  resetReads();
  setCsrf(null);
  app.set({
    me: null,
    boot: 'login',
    convs: {},
    chatIds: [],
    chatsLoaded: false,
    threads: {},
    previews: {},
    collisions: {},
    presence: {},
    viewing: null,
  });
  navigate('/login', { replace: true });
  if (message) toast(message, 'info');
}

// ---------------------------------------------------------------------------------------------
// Presence (RT-2)

export function setMyStatus(status: Presence) {
  const s = app.get();
  app.set({ myStatus: status });
  if (status === 'offline') {
    live.stop('paused');
    return;
  }
  if (s.myStatus === 'offline' || s.conn.state === 'paused') {
    // Back online: reconnect and resume from the cursor, so nothing from the pause is lost.
    live.start();
    return;
  }
  live.send({ type: 'presence', status });
}

export function presenceOf(agentId: number): Presence {
  const s = app.get();
  if (s.me && agentId === s.me.agent.id) return s.conn.state === 'paused' ? 'offline' : s.myStatus;
  return s.presence[agentId] ?? 'offline';
}

// ---------------------------------------------------------------------------------------------
// The socket's frames

function onHello(fresh: boolean, f: Extract<ServerFrame, { type: 'hello' }>) {
  const presence: Record<number, Presence> = {};
  for (const p of f.presence) presence[p.agent_id] = p.status;
  app.set((s) => ({
    presence,
    collisions: {},
    stats: fresh ? s.stats : { ...s.stats, resumes: s.stats.resumes + 1 },
  }));
  const s = app.get();
  if (s.myStatus === 'away') live.send({ type: 'presence', status: 'away' });
  if (s.viewing) live.send({ type: 'view', conversation_id: s.viewing });
  // Read frames missed while the socket was down: the server's unread state is the truth.
  loadUnread();
  if (fresh) refreshAll();
  // The inbox is the server's: read it again on every (re)connect, so a frame lost meanwhile is not missed.
  inboxHooks?.load();
}

/** Reload what may have changed while we could not hear about it. */
export function refreshAll() {
  loadChats();
  app.set((s) => ({ listVersion: s.listVersion + 1 }));
  const s = app.get();
  for (const id of Object.keys(s.threads).map(Number)) {
    if (id === s.viewing) fetchTail(id);
    else dropThread(id);
  }
}

function dropThread(id: number) {
  app.set((s) => {
    const threads = { ...s.threads };
    delete threads[id];
    return { threads };
  });
}

export function applyFrame(f: ServerFrame) {
  app.set((s) => ({ stats: { ...s.stats, frames: s.stats.frames + 1 } }));
  switch (f.type) {
    case 'message.created':
    case 'message.updated':
    case 'conversation.created':
    case 'conversation.updated':
    case 'conversation.ended':
      applyEvent(f);
      break;
    case 'presence':
      app.set((s) => ({ presence: { ...s.presence, [f.agent_id]: f.status } }));
      break;
    case 'collision':
      app.set((s) => ({
        collisions: { ...s.collisions, [f.conversation_id]: { viewing: f.viewing, replying: f.replying } },
      }));
      break;
    case 'typing':
      if (f.who === 'customer') {
        app.set((s) => {
          const customerTyping = { ...s.customerTyping };
          if (f.state === 'start') customerTyping[f.conversation_id] = Date.now() + 6000;
          else delete customerTyping[f.conversation_id];
          return { customerTyping };
        });
        if (f.state === 'start') window.setTimeout(expireTyping, 6100);
      }
      break;
    case 'read':
      applyRead(f.conversation_id, f.last_read_seq, f.unread);
      break;
    case 'resumed':
      app.set((s) => ({ stats: { ...s.stats, replayed: s.stats.replayed + f.replayed } }));
      break;
    case 'error':
      if (f.error !== 'not_found' && f.error !== 'slow_consumer') console.warn('socket error', f);
      break;
    case 'notification':
      inboxHooks?.notified(f.notification, f.unread_count);
      break;
    case 'notifications.read':
      inboxHooks?.read(f.ids, f.all, f.unread_count);
      break;
    default:
      break;
  }
}

function expireTyping() {
  const now = Date.now();
  app.set((s) => {
    const customerTyping: Record<number, number> = {};
    for (const [k, until] of Object.entries(s.customerTyping)) if (until > now) customerTyping[Number(k)] = until;
    return { customerTyping };
  });
}

function applyEvent(f: EventFrame) {
  const c = f.conversation;
  const before = app.get().convs[c.id];
  upsertConversation(c);
  const s = app.get();
  const ownId = s.me?.agent.id;
  if (f.type === 'message.updated') {
    // A message changed in place (its delivery: sent, delivered, read, failed): nothing new to announce.
    if (f.message) replaceMessage(c.id, f.message);
    return;
  }
  const msg = f.message;
  if (msg) addMessages(c.id, [msg]);
  if (msg && msg.direction !== 'note') app.set((st) => ({ previews: { ...st.previews, [c.id]: preview(msg) } }));
  const lookingAtIt = s.viewing === c.id && document.visibilityState === 'visible';
  // Unread state (kept on the server, issue #17): a customer's message is unread until the agent has it on screen.
  if (msg && msg.direction === 'in') customerWrote(c.id);
  else if (!msg) conversationChanged(c.id);
  if (lookingAtIt) markRead(c.id, c.last_seq);
  if (!c.active_chat || (before && !before.active_chat) || f.type === 'conversation.ended' || !before) {
    app.set((st) => ({ listVersion: st.listVersion + 1 }));
  }
  // RT-4: someone else took a conversation this agent is looking at.
  if (before && c.assignee_id && before.assignee_id !== c.assignee_id && c.assignee_id !== ownId && s.viewing === c.id) {
    toast(`${agentName(c.assignee_id)} took #${c.number}`, 'info');
  }
  if (msg && msg.direction === 'in' && !lookingAtIt) {
    notify(
      f.type === 'conversation.created' ? (c.active_chat ? 'New chat' : 'New ticket') + ' from ' + c.customer_name : c.customer_name,
      msg.content,
      c,
    );
  }
}

export function upsertConversation(c: Conversation) {
  seedUnread([c]);
  app.set((s) => {
    const old = s.convs[c.id];
    if (old && old.updated_at > c.updated_at && old.last_seq >= c.last_seq) return {};
    const convs = { ...s.convs, [c.id]: c };
    let chatIds = s.chatIds;
    const isChat = chatIds.includes(c.id);
    if (c.active_chat && !c.merged_into_id && !isChat) chatIds = [c.id, ...chatIds];
    if ((!c.active_chat || c.merged_into_id) && isChat) chatIds = chatIds.filter((id) => id !== c.id);
    return { convs, chatIds };
  });
}

/** The agent has conversation `id` on screen (and the tab is visible): it is read up to its newest message. */
export function markSeen(id: number) {
  const c = app.get().convs[id];
  if (c && document.visibilityState === 'visible') markRead(id, c.last_seq);
}

document.addEventListener('visibilitychange', () => {
  const id = app.get().viewing;
  if (id) markSeen(id);
});

export function setViewing(id: number | null) {
  const prev = app.get().viewing;
  if (prev === id) return;
  if (prev) live.send({ type: 'unview', conversation_id: prev });
  app.set({ viewing: id });
  if (id) {
    live.send({ type: 'view', conversation_id: id });
    markSeen(id);
  }
}

// ---------------------------------------------------------------------------------------------
// Chats (CORE-4)

let chatsLoading: Promise<void> | null = null;
export function loadChats(): Promise<void> {
  if (chatsLoading) return chatsLoading;
  chatsLoading = (async () => {
    try {
      const page = await api.get<Page<Conversation>>('/conversations' + qs({ active: true, per_page: 100, sort: 'updated_desc' }));
      app.set((s) => {
        const convs = { ...s.convs };
        for (const c of page.items) convs[c.id] = c;
        return { convs, chatIds: page.items.map((c) => c.id), chatsLoaded: true };
      });
      seedUnread(page.items);
      seedPreviews(page.items);
    } catch {
      /* shown as empty; the next hello retries */
    } finally {
      chatsLoading = null;
    }
  })();
  return chatsLoading;
}

/** The previews the list answer carries (`last_message_preview`, one query on the server, not a request per row). */
function seedPreviews(items: Conversation[]) {
  const me = app.get().me?.agent.id;
  app.set((s) => {
    const previews = { ...s.previews };
    for (const c of items) {
      if (!c.last_message_preview) continue;
      const agent = c.last_message_agent_id;
      const who = c.last_message_direction !== 'out' ? '' : agent == null ? 'Reply' : agent === me ? 'You' : agentName(agent);
      previews[c.id] = { text: c.last_message_preview, who };
    }
    return { previews };
  });
}

function preview(m: Message): Preview {
  const me = app.get().me?.agent.id;
  const who = m.author.kind === 'customer' ? '' : m.author.kind === 'agent' && m.author.id === me ? 'You' : m.author.name;
  return { text: snippet(m), who };
}

export function snippet(m: Message): string {
  const t = m.content.replace(/\s+/g, ' ').trim();
  if (t) return t.length > 140 ? t.slice(0, 140) + '…' : t;
  if (m.attachments.length) return '📎 ' + m.attachments.map((a) => a.file_name).join(', ');
  return '';
}

// ---------------------------------------------------------------------------------------------
// Threads

const PAGE = 50;

export async function loadThread(id: number) {
  const c = app.get().convs[id];
  setThread(id, { items: app.get().threads[id]?.items ?? [], hasEarlier: false, loading: true });
  try {
    const last = c?.last_seq;
    const items = await api.get<Message[]>(
      `/conversations/${id}/messages` + qs({ before_seq: last !== undefined ? last + 1 : 1_000_000_000, limit: PAGE }),
    );
    const merged = merge(app.get().threads[id]?.items ?? [], items);
    setThread(id, { items: merged, hasEarlier: (merged[0]?.seq ?? 1) > 1, loading: false });
    // Anything newer than what the conversation said when we asked.
    if (last !== undefined) fetchTail(id);
  } catch (e) {
    setThread(id, { items: [], hasEarlier: false, loading: false, error: (e as Error).message });
  }
}

export async function loadEarlier(id: number) {
  const t = app.get().threads[id];
  if (!t || t.loading || !t.items.length) return;
  setThread(id, { ...t, loading: true });
  try {
    const items = await api.get<Message[]>(`/conversations/${id}/messages` + qs({ before_seq: t.items[0].seq, limit: PAGE }));
    const merged = merge(app.get().threads[id]?.items ?? [], items);
    setThread(id, { items: merged, hasEarlier: (merged[0]?.seq ?? 1) > 1, loading: false });
  } catch (e) {
    setThread(id, { ...t, loading: false });
    toast('Could not load earlier messages: ' + (e as Error).message, 'error');
  }
}

async function fetchTail(id: number) {
  const t = app.get().threads[id];
  if (!t) return;
  const after = t.items.length ? t.items[t.items.length - 1].seq : 0;
  try {
    const items = await api.get<Message[]>(`/conversations/${id}/messages` + qs({ after_seq: after, limit: 200 }));
    if (items.length) addMessages(id, items);
  } catch {
    /* the next event or reload fills it */
  }
}

function setThread(id: number, t: Thread) {
  app.set((s) => ({ threads: { ...s.threads, [id]: t } }));
}

const deliveredAt = (m: Message) => (m.delivery ? Date.parse(m.delivery.updated_at) : 0);

/** Merge by seq: one message per seq, in order — whatever order REST and socket delivered them. Of two copies of a
 *  message the later one wins, unless it carries an older delivery state (a REST page read before a
 *  `message.updated` frame arrived after it). */
function merge(a: Message[], b: Message[]): Message[] {
  const bySeq = new Map<number, Message>();
  for (const m of a) bySeq.set(m.seq, m);
  for (const m of b) {
    const had = bySeq.get(m.seq);
    if (had && deliveredAt(had) > deliveredAt(m)) continue;
    bySeq.set(m.seq, m);
  }
  return Array.from(bySeq.values()).sort((x, y) => x.seq - y.seq);
}

export function addMessages(id: number, msgs: Message[]) {
  const t = app.get().threads[id];
  if (!t) return;
  const lastBefore = t.items.length ? t.items[t.items.length - 1].seq : 0;
  const merged = merge(t.items, msgs);
  setThread(id, { ...t, items: merged });
  // A hole between what we had and what arrived: fetch it (belt and braces; resume covers drops).
  const first = msgs.reduce((m, x) => Math.min(m, x.seq), Infinity);
  if (t.items.length && first > lastBefore + 1 && !t.loading) {
    const have = new Set(merged.map((m) => m.seq));
    for (let seq = lastBefore + 1; seq < first; seq++) {
      if (!have.has(seq)) {
        api
          .get<Message[]>(`/conversations/${id}/messages` + qs({ after_seq: lastBefore, limit: Math.min(200, first - lastBefore) }))
          .then((items) => items.length && addMessages(id, items))
          .catch(() => undefined);
        break;
      }
    }
  }
}

/** A message on screen changed in place (`message.updated`); one not loaded (an earlier page) is left alone, unless
 *  a page is on its way (it may hold an older copy: the merge keeps the newer delivery). */
export function replaceMessage(id: number, m: Message) {
  const t = app.get().threads[id];
  if (!t || (!t.loading && !t.items.some((x) => x.seq === m.seq))) return;
  setThread(id, { ...t, items: merge(t.items, [m]) });
}

export async function openConversation(id: number): Promise<Conversation | null> {
  try {
    const c = await api.get<Conversation>(`/conversations/${id}`);
    upsertConversation(c);
    if (app.get().viewing === id) markSeen(id);
    return c;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Notifications (RT-6)

export async function setNotifications(on: boolean) {
  if (on && 'Notification' in window && Notification.permission === 'default') {
    try {
      await Notification.requestPermission();
    } catch {
      /* unsupported */
    }
  }
  localStorage.setItem('sb.notifications', on ? 'on' : 'off');
  app.set({ notifications: on });
  if (on && 'Notification' in window && Notification.permission === 'denied') {
    toast('This browser blocks notifications for this site: allow them in its site settings.', 'error');
  } else if (!on) {
    toast('Browser notifications are off', 'info');
  }
}

function notify(title: string, body: string, c: Conversation) {
  if (!app.get().notifications || !('Notification' in window) || Notification.permission !== 'granted') return;
  try {
    const n = new Notification(title, { body: body.slice(0, 200), tag: 'conversation-' + c.id });
    n.onclick = () => {
      window.focus();
      navigate((c.active_chat ? '/chats/' : '/tickets/') + c.id);
      n.close();
    };
  } catch {
    /* some browsers only allow notifications from a service worker */
  }
}

// ---------------------------------------------------------------------------------------------
// Lookups

export function agentName(id: number | null | undefined): string {
  if (!id) return '';
  return app.get().agents.find((a) => a.id === id)?.name ?? `Agent ${id}`;
}

export function channelOf(id: number): Channel | undefined {
  return app.get().channels.find((c) => c.id === id);
}

export function statusOf(key: string): Status | undefined {
  return app.get().statuses.find((s) => s.key === key);
}

export function isAdmin(): boolean {
  const r = app.get().me?.agent.role;
  return r === 'admin' || r === 'super_admin';
}

// Exposed for end-to-end tests and diagnostics (read-only use).
(window as unknown as { __switchboard: unknown }).__switchboard = {
  state: () => app.get(),
  cursor: () => live.currentCursor,
};
