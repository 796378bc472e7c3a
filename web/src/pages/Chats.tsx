// The live chat panel (CORE-4): chats in progress, each lit green while it has customer messages the agent has not
// read (kept on the server, `reads.ts`); the open chat beside it. The queue (issue #17 item 6): filters mine /
// unassigned / waiting, the customer's waiting time on each row, newest activity or longest waiting first, and
// "Take" on a row. On a phone the list and the open chat take the screen in turn.

import { useEffect, useRef, useState } from 'preact/hooks';
import { ago, full } from '../format';
import { byWaiting, CHAT_FILTERS, chatPasses, prefs, setChatFilter, setChatSort, take, useNow, waited, type ChatFilter } from '../queue';
import { reads } from '../reads';
import { app, channelOf } from '../state';
import { useStore } from '../store';
import type { Conversation } from '../types';
import { Collision, Empty, Link, Spinner } from '../components/common';
import { ConversationView } from '../components/ConversationView';

let order: number[] = [];
export const chatOrder = () => order;

function lastActivity(c: Conversation): string {
  return [c.last_customer_activity_at, c.last_agent_activity_at, c.updated_at, c.created_at].filter(Boolean).sort().pop() as string;
}

function TakeButton({ c }: { c: Conversation }) {
  const [busy, setBusy] = useState(false);
  return (
    <button
      type="button"
      class="btn small take-btn"
      disabled={busy}
      aria-label={`Take the chat with ${c.customer_name} (assign it to me)`}
      title="Assign to me"
      data-testid="take"
      onClick={async () => {
        setBusy(true);
        await take(c);
        setBusy(false);
      }}
    >
      {busy ? 'Taking…' : 'Take'}
    </button>
  );
}

function ChatRow({ c, active, now, me }: { c: Conversation; active: boolean; now: number; me: number | undefined }) {
  const unread = useStore(reads, (s) => s.unread[c.id] ?? 0);
  const preview = useStore(app, (s) => s.previews[c.id]);
  const typing = useStore(app, (s) => (s.customerTyping[c.id] ?? 0) > Date.now());
  const channel = channelOf(c.channel_id);
  return (
    <li class={'chat-row' + (active ? ' active' : '') + (unread ? ' unread' : '')} data-testid="chat-row" data-conversation-id={c.id}>
      <Link href={'/chats/' + c.id} aria-current={active ? 'page' : undefined}>
        <span class="chat-top">
          {unread > 0 && <span class="live-dot small" aria-hidden="true" data-testid="chat-unread" />}
          <span class="chat-name">{c.customer_name}</span>
          {unread > 0 && <span class="sr-only">({unread} new)</span>}
          <span class="muted small chat-time">{ago(lastActivity(c))}</span>
        </span>
        <span class="chat-preview">
          {typing ? (
            <em>typing…</em>
          ) : preview ? (
            <>
              {preview.who && <span class="muted">{`${preview.who}: `}</span>}
              {preview.text}
            </>
          ) : (
            <span class="muted">#{c.number}</span>
          )}
        </span>
        <span class="chat-bottom">
          <span class="muted small chat-channel">{channel?.name ?? c.channel_kind}</span>
          {c.waiting_since && (
            <span class="wait-chip" data-testid="chat-waiting" title={'Waiting for an answer since ' + full(c.waiting_since)}>
              <span class="sr-only">Waiting for an answer for </span>
              {waited(c.waiting_since, now)}
            </span>
          )}
          {unread > 1 && <span class="count-badge">{unread}</span>}
          <Collision id={c.id} compact />
        </span>
      </Link>
      {c.assignee_id !== me && <TakeButton c={c} />}
    </li>
  );
}

const FILTER_LABEL: Record<ChatFilter, string> = { all: 'All', mine: 'Mine', unassigned: 'Unassigned', waiting: 'Waiting' };

export function ChatsPage({ id }: { id: number | null }) {
  const chatIds = useStore(app, (s) => s.chatIds);
  const convs = useStore(app, (s) => s.convs);
  const loaded = useStore(app, (s) => s.chatsLoaded);
  const me = useStore(app, (s) => s.me?.agent.id);
  const filter = useStore(prefs, (s) => s.chatFilter);
  const sort = useStore(prefs, (s) => s.chatSort);
  const now = useNow();
  const list = useRef<HTMLUListElement>(null);
  useStore(app, (s) => s.channels);
  const active = chatIds.map((i) => convs[i]).filter((c): c is Conversation => !!c && c.active_chat);
  const chats = active
    .filter((c) => chatPasses(c, filter, me))
    .sort((a, b) =>
      sort === 'waiting'
        ? byWaiting(a, b, lastActivity)
        : lastActivity(b) > lastActivity(a)
          ? 1
          : lastActivity(b) < lastActivity(a)
            ? -1
            : b.id - a.id,
    );
  order = chats.map((c) => c.id);
  const counts = Object.fromEntries(CHAT_FILTERS.map((f) => [f, active.filter((c) => chatPasses(c, f, me)).length])) as Record<ChatFilter, number>;

  // J / K move through the list from the moment it shows (no chat open: the open chat has its own keys).
  useEffect(() => {
    if (id) return;
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (t.closest('input, textarea, select, [contenteditable="true"], dialog') || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key !== 'j' && e.key !== 'k') return;
      const links = Array.from(list.current?.querySelectorAll<HTMLElement>('.chat-row > a') ?? []);
      if (!links.length) return;
      e.preventDefault();
      const i = links.indexOf(document.activeElement as HTMLElement);
      const next = i === -1 ? (e.key === 'j' ? 0 : links.length - 1) : Math.max(0, Math.min(links.length - 1, i + (e.key === 'j' ? 1 : -1)));
      links[next].focus();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [id]);

  return (
    <div class={'split' + (id ? ' has-open' : '')}>
      <section class="list-pane" aria-labelledby="chats-title">
        <header class="pane-head">
          <h1 id="chats-title">Live chats</h1>
          <span class="muted small" data-testid="chat-count">
            {active.length} in progress
          </span>
        </header>
        <div class="queue-bar">
          <div class="seg" role="group" aria-label="Show chats">
            {CHAT_FILTERS.map((f) => (
              <button
                key={f}
                type="button"
                class={'seg-btn' + (filter === f ? ' on' : '')}
                aria-pressed={filter === f}
                onClick={() => setChatFilter(f)}
                data-testid={'chat-filter-' + f}
              >
                {FILTER_LABEL[f]} <span class="seg-count">{counts[f]}</span>
              </button>
            ))}
          </div>
          <label class="queue-sort">
            <span class="sr-only">Order of chats</span>
            <select value={sort} onChange={(e) => setChatSort(e.currentTarget.value as 'activity' | 'waiting')} data-testid="chat-sort">
              <option value="activity">Latest activity</option>
              <option value="waiting">Longest waiting</option>
            </select>
          </label>
        </div>
        {!loaded && !active.length ? (
          <div class="center-pad">
            <Spinner label="Loading chats" />
          </div>
        ) : !active.length ? (
          <Empty title="No chats in progress">New chats appear here the moment a customer writes.</Empty>
        ) : !chats.length ? (
          <Empty title={`No ${FILTER_LABEL[filter].toLowerCase()} chats`}>
            <button type="button" class="link-btn" onClick={() => setChatFilter('all')}>
              Show all chats
            </button>
          </Empty>
        ) : (
          <ul class="chat-list" data-testid="chat-list" ref={list}>
            {chats.map((c) => (
              <ChatRow key={c.id} c={c} active={c.id === id} now={now} me={me} />
            ))}
          </ul>
        )}
      </section>
      {id ? (
        <div class="open-pane">
          <div class="crumbs phone-only">
            <Link href="/chats">← Live chats</Link>
          </div>
          <ConversationView id={id} siblings={chatOrder} base="/chats" />
        </div>
      ) : (
        <div class="conversation placeholder-pane">
          <Empty title="Pick a chat">Chats with new activity are marked green.</Empty>
        </div>
      )}
    </div>
  );
}
