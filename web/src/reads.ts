// Unread state kept on the server (issue #17 item 1): the agent's unread customer messages per conversation and
// the totals per view (the Chats and Tickets badges), read from GET /me/unread and from the `unread` of
// conversation list and get answers; opening a conversation posts the read cursor
// (POST /conversations/{id}/read), and the agent's other tabs and devices hear of it through the socket's `read`
// frame. A new customer message marks its row at once; the totals are read again from the server shortly after
// any change, so every tab and a fresh sign-in show the same numbers. Knows nothing of the UI.

import { api } from './api';
import { createStore } from './store';
import type { Conversation } from './types';

export interface UnreadTotals {
  conversations: number;
  messages: number;
}

interface UnreadSummary {
  chats: UnreadTotals;
  tickets: UnreadTotals;
  conversations: { conversation_id: number; number: number; view: 'chats' | 'tickets'; unread: number; last_read_seq: number }[];
  truncated: boolean;
}

export interface ReadsState {
  /** Unread customer messages per conversation (absent: not known yet). */
  unread: Record<number, number>;
  /** The agent's read cursor per conversation, where known. */
  readSeq: Record<number, number>;
  chats: UnreadTotals;
  tickets: UnreadTotals;
}

const empty = (): ReadsState => ({ unread: {}, readSeq: {}, chats: { conversations: 0, messages: 0 }, tickets: { conversations: 0, messages: 0 } });

export const reads = createStore<ReadsState>(empty());

/** Cursors posted and not yet answered, so one open does not post twice. */
const posting: Record<number, number> = {};
let reloadTimer: number | undefined;
let generation = 0;

export function resetReads() {
  generation++;
  window.clearTimeout(reloadTimer);
  for (const k of Object.keys(posting)) delete posting[Number(k)];
  reads.set(empty());
}

/** Read the agent's unread state from the server (after sign-in, and whenever the socket (re)connects). */
export async function loadUnread() {
  const gen = generation;
  try {
    const s = await api.get<UnreadSummary>('/me/unread');
    if (gen !== generation) return;
    reads.set((st) => {
      const unread: Record<number, number> = {};
      // A complete list: what it leaves out has nothing unread (or is closed, merged, out of view).
      if (s.truncated) Object.assign(unread, st.unread);
      else for (const [id, n] of Object.entries(st.unread)) if (n > 0) unread[Number(id)] = 0;
      const readSeq = { ...st.readSeq };
      for (const c of s.conversations) {
        unread[c.conversation_id] = c.unread;
        readSeq[c.conversation_id] = Math.max(readSeq[c.conversation_id] ?? 0, c.last_read_seq);
      }
      return { unread, readSeq, chats: s.chats, tickets: s.tickets };
    });
  } catch {
    /* the next change or reconnect reads it again */
  }
}

/** Read the totals again soon (several changes in a burst make one request). */
export function reloadSoon() {
  window.clearTimeout(reloadTimer);
  reloadTimer = window.setTimeout(() => loadUnread(), 400);
}

/** Conversations as the REST API answered them (list and get carry the caller's `unread`). */
export function seedUnread(items: Conversation[]) {
  const known = items.filter((c) => typeof c.unread === 'number');
  if (!known.length) return;
  reads.set((st) => {
    const unread = { ...st.unread };
    for (const c of known) unread[c.id] = c.unread as number;
    return { unread };
  });
}

/** A customer message arrived in conversation `id`. */
export function customerWrote(id: number) {
  reads.set((st) => ({ unread: { ...st.unread, [id]: (st.unread[id] ?? 0) + 1 } }));
  reloadSoon();
}

/** A conversation moved between views or was closed or merged: the totals may have changed. */
export function conversationChanged(id: number) {
  if ((reads.get().unread[id] ?? 0) > 0) reloadSoon();
}

/** The agent has conversation `id` on screen up to message `seq`: move the read cursor there. */
export async function markRead(id: number, seq: number) {
  const st = reads.get();
  if (seq < 1 || st.unread[id] === 0 || (st.readSeq[id] ?? 0) >= seq || (posting[id] ?? 0) >= seq) return;
  posting[id] = seq;
  const gen = generation;
  try {
    const r = await api.post<{ conversation_id: number; last_read_seq: number; unread: number }>(`/conversations/${id}/read`, { seq });
    if (gen === generation) applyRead(r.conversation_id, r.last_read_seq, r.unread);
  } catch {
    /* the next open or message posts it again */
  } finally {
    if (posting[id] === seq) delete posting[id];
  }
}

/** The cursor moved, here or in another tab or device of this agent (the socket's `read` frame). */
export function applyRead(id: number, lastReadSeq: number, unread: number) {
  reads.set((st) => {
    if ((st.readSeq[id] ?? 0) > lastReadSeq) return {};
    return { unread: { ...st.unread, [id]: unread }, readSeq: { ...st.readSeq, [id]: lastReadSeq } };
  });
  reloadSoon();
}
