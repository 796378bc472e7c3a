// The live chat panel (CORE-4): chats in progress, newest activity first, each lit green while
// it has customer messages the agent has not read (kept on the server, `reads.ts`); the open chat beside it.

import { ago } from '../format';
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

function ChatRow({ c, active }: { c: Conversation; active: boolean }) {
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
              {preview.who && <span class="muted">{preview.direction === 'note' ? `${preview.who} (note): ` : `${preview.who}: `}</span>}
              {preview.text}
            </>
          ) : (
            <span class="muted">#{c.number}</span>
          )}
        </span>
        <span class="chat-bottom">
          <span class="muted small">{channel?.name ?? c.channel_kind}</span>
          {unread > 1 && <span class="count-badge">{unread}</span>}
          <Collision id={c.id} compact />
        </span>
      </Link>
    </li>
  );
}

export function ChatsPage({ id }: { id: number | null }) {
  const chatIds = useStore(app, (s) => s.chatIds);
  const convs = useStore(app, (s) => s.convs);
  const loaded = useStore(app, (s) => s.chatsLoaded);
  useStore(app, (s) => s.channels);
  const chats = chatIds
    .map((i) => convs[i])
    .filter((c): c is Conversation => !!c && c.active_chat)
    .sort((a, b) => (lastActivity(b) > lastActivity(a) ? 1 : lastActivity(b) < lastActivity(a) ? -1 : b.id - a.id));
  order = chats.map((c) => c.id);
  return (
    <div class="split">
      <section class="list-pane" aria-labelledby="chats-title">
        <header class="pane-head">
          <h1 id="chats-title">Live chats</h1>
          <span class="muted small" data-testid="chat-count">
            {chats.length} in progress
          </span>
        </header>
        {!loaded && !chats.length ? (
          <div class="center-pad">
            <Spinner label="Loading chats" />
          </div>
        ) : !chats.length ? (
          <Empty title="No chats in progress">New chats appear here the moment a customer writes.</Empty>
        ) : (
          <ul class="chat-list" data-testid="chat-list">
            {chats.map((c) => (
              <ChatRow key={c.id} c={c} active={c.id === id} />
            ))}
          </ul>
        )}
      </section>
      {id ? (
        <ConversationView id={id} siblings={chatOrder} base="/chats" />
      ) : (
        <div class="conversation placeholder-pane">
          <Empty title="Pick a chat">Chats with new activity are marked green.</Empty>
        </div>
      )}
    </div>
  );
}
