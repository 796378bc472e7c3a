// The notification inbox in the header (#17): a bell with the unread count, and a panel listing
// the agent's notifications newest first — open one (jumps to its conversation and marks it read),
// mark one or all read, load older ones. Keyboard: the bell is a button; in the panel ↓/↑ move
// between notifications, Escape closes it and gives the focus back to the bell.

import { useEffect, useRef, useState } from 'preact/hooks';
import { ago, full } from '../format';
import { headline, inbox, loadOlder, markAllRead, markRead, openNotification } from '../inbox';
import { useStore } from '../store';
import type { AgentNotification } from '../types';
import { Avatar } from './common';
import { IconBell, IconCheck } from './icons';

function Item({ n, onOpen }: { n: AgentNotification; onOpen: (n: AgentNotification) => void }) {
  const unread = !n.read_at;
  return (
    <li class={'inbox-item' + (unread ? ' unread' : '')} data-testid="inbox-item" data-kind={n.kind} data-conversation-id={n.conversation_id} data-unread={unread}>
      <button type="button" class="inbox-open" onClick={() => onOpen(n)}>
        <Avatar name={n.actor.name || n.customer_name || '?'} size={28} />
        <span class="inbox-text">
          <span class="inbox-headline">
            {unread && <span class="sr-only">Unread: </span>}
            {headline(n)}
          </span>
          {n.excerpt && <span class="inbox-excerpt">{n.excerpt}</span>}
          <time class="muted small" dateTime={n.created_at} title={full(n.created_at)}>
            {ago(n.created_at)}
          </time>
        </span>
      </button>
      {unread && (
        <button type="button" class="icon-btn small" aria-label={'Mark read: ' + headline(n)} title="Mark read" onClick={() => markRead(n.id)}>
          <IconCheck size={14} />
        </button>
      )}
    </li>
  );
}

export function Bell() {
  const unread = useStore(inbox, (s) => s.unread);
  const items = useStore(inbox, (s) => s.items);
  const hasMore = useStore(inbox, (s) => s.hasMore);
  const loading = useStore(inbox, (s) => s.loading);
  const [open, setOpen] = useState(false);
  const button = useRef<HTMLButtonElement>(null);
  const panel = useRef<HTMLDivElement>(null);

  const close = (refocus: boolean) => {
    setOpen(false);
    if (refocus) button.current?.focus();
  };

  useEffect(() => {
    if (!open) return;
    const p = panel.current;
    ((p?.querySelector('.inbox-open') ?? p) as HTMLElement | null)?.focus();
    const outside = (e: MouseEvent) => {
      if (!(e.target as HTMLElement).closest('.inbox')) close(false);
    };
    document.addEventListener('mousedown', outside);
    return () => document.removeEventListener('mousedown', outside);
  }, [open]);

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      close(true);
      return;
    }
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const buttons = Array.from(panel.current?.querySelectorAll<HTMLElement>('.inbox-open') ?? []);
    if (!buttons.length) return;
    e.preventDefault();
    const at = buttons.indexOf(document.activeElement as HTMLElement);
    const next = e.key === 'ArrowDown' ? Math.min(buttons.length - 1, at + 1) : Math.max(0, at - 1);
    buttons[next].focus();
  };

  const onOpen = (n: AgentNotification) => {
    close(false);
    openNotification(n);
  };

  const label = unread ? `Notifications, ${unread} unread` : 'Notifications';
  return (
    <div class="inbox">
      <button
        ref={button}
        type="button"
        class="icon-btn inbox-bell"
        aria-label={label}
        title={label}
        aria-expanded={open}
        aria-controls="inbox-panel"
        onClick={() => (open ? close(false) : setOpen(true))}
        data-testid="inbox-bell"
      >
        <IconBell />
        {unread > 0 && (
          <span class="inbox-count" data-testid="inbox-count" aria-hidden="true">
            {unread > 99 ? '99+' : unread}
          </span>
        )}
      </button>
      {open && (
        <div id="inbox-panel" ref={panel} class="inbox-panel" role="dialog" aria-label="Notification inbox" tabIndex={-1} onKeyDown={onKeyDown as any} data-testid="inbox-panel">
          <header class="inbox-head">
            <h2>Notifications</h2>
            <span class="grow" />
            <button type="button" class="link-btn inbox-all" onClick={() => markAllRead()} disabled={!unread}>
              Mark all read
            </button>
          </header>
          {items.length ? (
            <ul class="inbox-list" aria-label="Notifications, newest first">
              {items.map((n) => (
                <Item key={n.id} n={n} onOpen={onOpen} />
              ))}
            </ul>
          ) : (
            <p class="muted inbox-empty">{loading ? 'Loading…' : 'Nothing yet. Assignments, mentions and customer replies on your conversations show up here.'}</p>
          )}
          {hasMore && (
            <button type="button" class="btn small inbox-more" onClick={() => loadOlder()} disabled={loading}>
              {loading ? 'Loading…' : 'Older notifications'}
            </button>
          )}
        </div>
      )}
    </div>
  );
}
