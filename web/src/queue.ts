// The chat queue and the ticket list for triage (issue #17 items 6, 7, 10): how long a customer has waited, taking a
// conversation, the chat queue's filter and order, the ticket list's density and its views' counts (one call), and
// the few layout hooks the phone layout needs (media queries, a container's width, a clock that ticks).

import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { api, errorText } from './api';
import { app, toast, upsertConversation } from './state';
import { createStore } from './store';
import type { Conversation } from './types';

// ---------------------------------------------------------------------------------------------
// Waiting time

/** "45s", "12m", "2h 05m", "3d 4h": how long since `iso`, for a waiting customer. */
export function waited(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** Re-render every `ms` (waiting times move on by themselves). */
export function useNow(ms = 15_000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), ms);
    return () => window.clearInterval(t);
  }, [ms]);
  return now;
}

/** A closed conversation waits on nobody, whatever its last message. */
export function waitingSince(c: Conversation, closedStatuses: Set<string>): string | null {
  return c.waiting_since && !closedStatuses.has(c.status) ? c.waiting_since : null;
}

// ---------------------------------------------------------------------------------------------
// Taking a conversation

/** Assign a conversation to the signed-in agent ("take"); true when done. */
export async function take(c: Conversation): Promise<boolean> {
  const me = app.get().me?.agent.id;
  if (!me) return false;
  try {
    const updated = await api.patch<Conversation>(`/conversations/${c.id}`, { assignee_id: me });
    upsertConversation(updated);
    toast(`You took #${updated.number}`, 'success');
    return true;
  } catch (e) {
    toast(errorText(e), 'error');
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Preferences kept in this browser

function remembered<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
  const v = localStorage.getItem(key) as T | null;
  return v && allowed.includes(v) ? v : fallback;
}

export const CHAT_FILTERS = ['all', 'mine', 'unassigned', 'waiting'] as const;
export type ChatFilter = (typeof CHAT_FILTERS)[number];
export const CHAT_SORTS = ['activity', 'waiting'] as const;
export type ChatSort = (typeof CHAT_SORTS)[number];
export const DENSITIES = ['comfortable', 'compact'] as const;
export type Density = (typeof DENSITIES)[number];

export const prefs = createStore<{ chatFilter: ChatFilter; chatSort: ChatSort; density: Density }>({
  chatFilter: remembered('sb.chats.filter', CHAT_FILTERS, 'all'),
  chatSort: remembered('sb.chats.sort', CHAT_SORTS, 'activity'),
  density: remembered('sb.density', DENSITIES, 'comfortable'),
});

export function setChatFilter(f: ChatFilter) {
  localStorage.setItem('sb.chats.filter', f);
  prefs.set({ chatFilter: f });
}
export function setChatSort(s: ChatSort) {
  localStorage.setItem('sb.chats.sort', s);
  prefs.set({ chatSort: s });
}
export function setDensity(d: Density) {
  localStorage.setItem('sb.density', d);
  prefs.set({ density: d });
}

/** Whether a chat passes the queue's filter. */
export function chatPasses(c: Conversation, f: ChatFilter, me: number | undefined): boolean {
  switch (f) {
    case 'mine':
      return c.assignee_id === me;
    case 'unassigned':
      return !c.assignee_id;
    case 'waiting':
      return !!c.waiting_since;
    default:
      return true;
  }
}

/** Longest waiting first; those nobody waits on after them, by latest activity. */
export function byWaiting(a: Conversation, b: Conversation, activity: (c: Conversation) => string): number {
  if (a.waiting_since && b.waiting_since) return a.waiting_since < b.waiting_since ? -1 : a.waiting_since > b.waiting_since ? 1 : a.id - b.id;
  if (a.waiting_since) return -1;
  if (b.waiting_since) return 1;
  const x = activity(a);
  const y = activity(b);
  return x < y ? 1 : x > y ? -1 : b.id - a.id;
}

// ---------------------------------------------------------------------------------------------
// The counts of the ticket list's views (one call, counted by the server in the agent's channels)

export async function countViews(views: Record<string, string>): Promise<Record<string, number>> {
  const r = await api.post<{ counts: Record<string, number> }>('/conversations/counts', { views });
  return r.counts;
}

// ---------------------------------------------------------------------------------------------
// Layout

/** Phones below 600 px, tablets below 1024 px, laptops and up above. */
export const PHONE = '(max-width: 599.98px)';
export const TABLET = '(max-width: 1023.98px)';

export function useMedia(query: string): boolean {
  const [on, setOn] = useState(() => window.matchMedia(query).matches);
  useEffect(() => {
    const m = window.matchMedia(query);
    const change = () => setOn(m.matches);
    change();
    m.addEventListener('change', change);
    return () => m.removeEventListener('change', change);
  }, [query]);
  return on;
}

/** True while the element is narrower than `px` (its own width, wherever it sits). The element may mount after the
 *  first render (a spinner first): it is looked for after every render. */
export function useNarrow(ref: { current: HTMLElement | null }, px: number): boolean {
  const [narrow, setNarrow] = useState(false);
  const seen = useRef<{ el: HTMLElement; ro: ResizeObserver } | null>(null);
  useLayoutEffect(() => {
    const el = ref.current;
    if (seen.current?.el === el) return;
    seen.current?.ro.disconnect();
    seen.current = null;
    if (!el) return;
    const ro = new ResizeObserver(() => setNarrow(el.clientWidth < px));
    ro.observe(el);
    seen.current = { el, ro };
    setNarrow(el.clientWidth < px);
  });
  useEffect(() => () => seen.current?.ro.disconnect(), []);
  return narrow;
}

/** The focusable elements inside `root`, in order. */
export function focusables(root: HTMLElement): HTMLElement[] {
  return Array.from(
    root.querySelectorAll<HTMLElement>('a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])'),
  ).filter((el) => el.offsetParent !== null || el === document.activeElement);
}
