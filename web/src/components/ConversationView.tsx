// One conversation: header with collision warnings and actions (end chat, merge, previous /
// next), the timeline, the reply editor with drag and drop anywhere on the column, and the
// sidebar. While it is open the socket says "viewing" (RT-3).

import { useEffect, useRef, useState } from 'preact/hooks';
import { api, errorText, qs } from '../api';
import { clock, KIND_LABEL, titleOf } from '../format';
import { TABLET, useMedia, useNarrow } from '../queue';
import { navigate } from '../router';
import { agentName, app, channelOf, loadThread, openConversation, setViewing, toast, upsertConversation } from '../state';
import { useStore } from '../store';
import type { Conversation, Message, Page } from '../types';
import { ChannelBadge, Collision, CsatBadge, Empty, Link, Modal, PriorityBadge, Spinner, StatusPill } from './common';
import { IconChevronDown, IconChevronUp, IconMerge, IconStop } from './icons';
import { IconDots, IconInfo } from './queueIcons';
import { ReplyEditor, type EditorApi } from './ReplyEditor';
import { Sidebar } from './Sidebar';
import { Timeline } from './Timeline';

function MergeDialog({ conv, onClose }: { conv: Conversation; onClose: () => void }) {
  const [q, setQ] = useState('');
  const [results, setResults] = useState<Conversation[]>([]);
  const [target, setTarget] = useState<Conversation | null>(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const text = q.trim();
    const t = window.setTimeout(async () => {
      try {
        const page = await api.get<Page<Conversation>>(
          '/conversations' + qs({ q: text || undefined, customer: text ? undefined : conv.customer_id, show_active_chats: true, per_page: 10 }),
        );
        setResults(page.items.filter((c) => c.id !== conv.id));
      } catch (e) {
        setError(errorText(e));
      }
    }, 200);
    return () => window.clearTimeout(t);
  }, [q]);
  const merge = async () => {
    if (!target) return;
    setBusy(true);
    try {
      const survivor = await api.post<Conversation>(`/conversations/${conv.id}/merge`, { into: target.id });
      upsertConversation(survivor);
      openConversation(conv.id).catch(() => undefined);
      toast(`#${conv.number} was merged into #${survivor.number}`, 'success');
      onClose();
      navigate((survivor.active_chat ? '/chats/' : '/tickets/') + survivor.id);
    } catch (e) {
      setError(errorText(e));
      setBusy(false);
    }
  };
  return (
    <Modal title={`Merge #${conv.number} into another conversation`} onClose={onClose}>
      <p class="muted">
        #{conv.number} is closed into the conversation you choose: whatever is addressed to #{conv.number} from now on lands
        there, and #{conv.number} stays readable with a link to it.
      </p>
      <label class="field">
        <span>Find the conversation to keep (number, subject, customer)</span>
        <input value={q} onInput={(e) => setQ(e.currentTarget.value)} placeholder="#1234 or words" autoFocus />
      </label>
      <ul class="pick-list" role="listbox" aria-label="Conversations">
        {results.map((c) => (
          <li key={c.id} role="option" aria-selected={target?.id === c.id}>
            <button type="button" class={'pick' + (target?.id === c.id ? ' selected' : '')} onClick={() => setTarget(c)}>
              <span class="num">#{c.number}</span> {titleOf(c)} <span class="muted small">· {c.customer_name}</span>
            </button>
          </li>
        ))}
        {!results.length && <li class="muted">No matching conversations.</li>}
      </ul>
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      <div class="modal-actions">
        <button type="button" class="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="button" class="btn danger" disabled={!target || busy} onClick={merge}>
          {target ? `Merge into #${target.number}` : 'Choose a conversation'}
        </button>
      </div>
    </Modal>
  );
}

/** Ending a chat (CORE-5). When the customer waits for an answer, the agent is asked first, with how many of
 *  their messages nobody answered (issue #17 item 6). */
function useEndChat(conv: Conversation) {
  const [busy, setBusy] = useState(false);
  const [asking, setAsking] = useState(false);
  const thread = useStore(app, (s) => s.threads[conv.id]);
  const end = async () => {
    setAsking(false);
    setBusy(true);
    try {
      const c = await api.post<Conversation>(`/conversations/${conv.id}/end`, {});
      upsertConversation(c);
      toast(`Chat #${c.number} ended — it is now in the ticket list`, 'success');
      navigate('/tickets/' + c.id, { replace: true });
    } catch (e) {
      toast(errorText(e), 'error');
    } finally {
      setBusy(false);
    }
  };
  const start = () => (conv.waiting_since ? setAsking(true) : end());
  const items = thread?.items ?? [];
  let lastOut = -1;
  items.forEach((m, i) => m.direction === 'out' && (lastOut = i));
  const unanswered = items.slice(lastOut + 1).filter((m) => m.direction === 'in').length;
  const dialog = asking ? (
    <Modal title="End this chat?" onClose={() => setAsking(false)}>
      <p data-testid="end-chat-warning">
        {conv.customer_name} is waiting for an answer
        {unanswered > 0 ? (unanswered === 1 ? ' to 1 message' : ` to ${unanswered} messages`) : ''} (the last at {clock(conv.waiting_since!)}).
        Ending the chat moves it to the ticket list unanswered.
      </p>
      <div class="modal-actions">
        <button type="button" class="btn" onClick={() => setAsking(false)} autoFocus>
          Keep the chat
        </button>
        <button type="button" class="btn danger" onClick={end} data-testid="end-chat-confirm">
          End chat anyway
        </button>
      </div>
    </Modal>
  ) : null;
  return { busy, start, dialog };
}

/** The header's actions in one menu, for a narrow header (issue #17 item 6: the header never wraps them). */
function ActionsMenu({ items }: { items: { label: string; onSelect: () => void; disabled?: boolean; testid?: string }[] }) {
  const [open, setOpen] = useState(false);
  const button = useRef<HTMLButtonElement>(null);
  const menu = useRef<HTMLDivElement>(null);
  const close = (refocus: boolean) => {
    setOpen(false);
    if (refocus) button.current?.focus();
  };
  useEffect(() => {
    if (!open) return;
    (menu.current?.querySelector('[role="menuitem"]:not([disabled])') as HTMLElement | null)?.focus();
    const onDown = (e: MouseEvent) => {
      if (!(e.target as HTMLElement).closest('.actions-menu')) close(false);
    };
    document.addEventListener('mousedown', onDown);
    return () => document.removeEventListener('mousedown', onDown);
  }, [open]);
  const onKey = (e: KeyboardEvent) => {
    const all = Array.from(menu.current?.querySelectorAll<HTMLElement>('[role="menuitem"]:not([disabled])') ?? []);
    const i = all.indexOf(document.activeElement as HTMLElement);
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      close(true);
    } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      all[(i + (e.key === 'ArrowDown' ? 1 : all.length - 1)) % all.length]?.focus();
    } else if (e.key === 'Tab') {
      close(false);
    }
  };
  return (
    <div class="actions-menu" onKeyDown={onKey as any}>
      <button
        ref={button}
        type="button"
        class="icon-btn"
        aria-haspopup="menu"
        aria-expanded={open}
        aria-label="More actions"
        title="More actions"
        onClick={() => setOpen(!open)}
        data-testid="conversation-actions"
      >
        <IconDots />
      </button>
      {open && (
        <div class="menu" role="menu" aria-label="Conversation actions" ref={menu}>
          {items.map((it) => (
            <button
              key={it.label}
              type="button"
              role="menuitem"
              class="menu-item"
              disabled={it.disabled}
              data-testid={it.testid}
              onClick={() => {
                close(true);
                it.onSelect();
              }}
            >
              {it.label}
            </button>
          ))}
        </div>
      )}
    </div>
  );
}

export function ConversationView({ id, siblings, base }: { id: number; siblings: () => number[]; base: string }) {
  const conv = useStore(app, (s) => s.convs[id]);
  const thread = useStore(app, (s) => s.threads[id]);
  useStore(app, (s) => s.channels);
  const [missing, setMissing] = useState(false);
  const [quote, setQuote] = useState<Message | null>(null);
  const [merging, setMerging] = useState(false);
  const [dragging, setDragging] = useState(false);
  const editorApi = useRef<EditorApi | null>(null);
  const dragDepth = useRef(0);
  const title = useRef<HTMLHeadingElement>(null);
  const head = useRef<HTMLElement>(null);
  // Below 560 px of header the actions fold into one menu, so they never wrap (issue #17 item 6).
  const narrow = useNarrow(head, 560);
  // Below 1024 px the conversation's details are a panel over it, opened from the header.
  const tablet = useMedia(TABLET);
  const [details, setDetails] = useState(false);
  const detailsButton = useRef<HTMLButtonElement>(null);
  const loaded = !!conv;

  // Keyboard users land on the conversation when the link they pressed has gone away.
  useEffect(() => {
    const a = document.activeElement;
    if (loaded && (!a || a === document.body)) title.current?.focus();
  }, [id, loaded]);

  useEffect(() => {
    setMissing(false);
    setDetails(false);
    setQuote(null);
    setViewing(id);
    openConversation(id)
      .then((c) => {
        if (!c) setMissing(true);
        else loadThread(id);
      })
      .catch((e) => toast(errorText(e), 'error'));
    return () => setViewing(null);
  }, [id]);

  const go = (delta: number) => {
    const ids = siblings();
    const i = ids.indexOf(id);
    const next = i === -1 ? ids[0] : ids[i + delta];
    if (next !== undefined && next !== id) navigate(`${base}/${next}`);
  };

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      const inField = !!t.closest('input, textarea, select, [contenteditable="true"]');
      if (e.altKey && (e.key === 'ArrowDown' || e.key === 'ArrowUp')) {
        e.preventDefault();
        go(e.key === 'ArrowDown' ? 1 : -1);
      } else if (e.altKey && (e.key === 'n' || e.key === 'N' || e.code === 'KeyN')) {
        e.preventDefault();
        editorApi.current?.toggleNote();
      } else if (!inField && !e.ctrlKey && !e.metaKey && !e.altKey) {
        if (e.key === 'j') go(1);
        else if (e.key === 'k') go(-1);
        else if (e.key === 'r') {
          e.preventDefault();
          editorApi.current?.focus();
        }
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [id]);

  const ending = useEndChat(conv ?? ({ id, waiting_since: null } as Conversation));
  useEffect(() => {
    if (!details) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && !(e.target as HTMLElement).closest('dialog')) {
        setDetails(false);
        detailsButton.current?.focus();
      }
    };
    window.addEventListener('keydown', onKey);
    (document.querySelector('.conversation-wrap .sidebar') as HTMLElement | null)?.focus();
    return () => window.removeEventListener('keydown', onKey);
  }, [details]);

  if (missing) {
    return (
      <div class="conversation">
        <Empty title="This conversation is not available">It may not exist, or you have no access to its channel.</Empty>
      </div>
    );
  }
  if (!conv) {
    return (
      <div class="conversation center-pad">
        <Spinner label="Loading conversation" />
      </div>
    );
  }
  const channel = channelOf(conv.channel_id);
  const ids = siblings();
  const idx = ids.indexOf(id);

  const onDragEnter = (e: DragEvent) => {
    if (!e.dataTransfer?.types.includes('Files')) return;
    dragDepth.current++;
    setDragging(true);
  };
  const onDragLeave = () => {
    dragDepth.current = Math.max(0, dragDepth.current - 1);
    if (!dragDepth.current) setDragging(false);
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    dragDepth.current = 0;
    setDragging(false);
    const files = e.dataTransfer?.files;
    if (files?.length) editorApi.current?.addFiles(files);
  };

  return (
    <div class={'conversation-wrap' + (tablet ? ' details-drawer' : '') + (details ? ' details-open' : '')}>
      <div
        class="conversation"
        data-testid="conversation"
        data-conversation-id={conv.id}
        onDragEnter={onDragEnter as any}
        onDragLeave={onDragLeave}
        onDragOver={(e) => e.preventDefault()}
        onDrop={onDrop as any}
      >
        <header class="conv-head" ref={head}>
          <div class="conv-title-row">
            <h1 class="conv-title" ref={title} tabIndex={-1}>
              <span class="num">#{conv.number}</span> {titleOf(conv)}
            </h1>
            <div class="conv-actions">
              {narrow ? (
                <ActionsMenu
                  items={[
                    ...(conv.active_chat ? [{ label: ending.busy ? 'Ending…' : 'End chat', onSelect: ending.start, disabled: ending.busy, testid: 'end-chat-menu' }] : []),
                    { label: 'Merge', onSelect: () => setMerging(true), disabled: !!conv.merged_into_id },
                  ]}
                />
              ) : (
                <>
                  {conv.active_chat && (
                    <button type="button" class="btn danger-outline" onClick={ending.start} disabled={ending.busy} data-testid="end-chat">
                      <IconStop size={14} /> {ending.busy ? 'Ending…' : 'End chat'}
                    </button>
                  )}
                  <button type="button" class="btn" onClick={() => setMerging(true)} disabled={!!conv.merged_into_id}>
                    <IconMerge size={14} /> Merge
                  </button>
                </>
              )}
              {tablet && (
                <button
                  type="button"
                  class="icon-btn"
                  ref={detailsButton}
                  aria-expanded={details}
                  aria-controls="conversation-details"
                  aria-label="Conversation details"
                  title="Conversation details"
                  onClick={() => setDetails(!details)}
                  data-testid="details-toggle"
                >
                  <IconInfo />
                </button>
              )}
            </div>
            <div class="conv-nav">
              <button type="button" class="icon-btn" aria-label="Previous conversation (Alt+↑)" title="Previous (Alt+↑ or K)" disabled={idx <= 0} onClick={() => go(-1)}>
                <IconChevronUp />
              </button>
              <button
                type="button"
                class="icon-btn"
                aria-label="Next conversation (Alt+↓)"
                title="Next (Alt+↓ or J)"
                disabled={idx === -1 ? !ids.length : idx >= ids.length - 1}
                onClick={() => go(1)}
              >
                <IconChevronDown />
              </button>
            </div>
          </div>
          <div class="conv-meta">
            <span>{conv.customer_name}</span>
            <ChannelBadge kind={conv.channel_kind} name={(channel?.name ?? KIND_LABEL[conv.channel_kind]) + ' · ' + (conv.mode === 'sync' ? 'chat' : 'ticket')} />
            {conv.active_chat ? (
              <span class="pill live-pill" data-testid="live-pill">
                Live chat
              </span>
            ) : (
              <StatusPill status={conv.status} />
            )}
            <PriorityBadge priority={conv.priority} />
            <CsatBadge csat={conv.csat} />
            {conv.assignee_id && <span class="muted small">Assigned to {agentName(conv.assignee_id)}</span>}
          </div>
          <Collision id={conv.id} />
          {conv.merged_into_id && (
            <div class="banner info inline">
              This conversation was merged. <Link href={`/tickets/${conv.merged_into_id}`}>Open the conversation it was merged into</Link>
            </div>
          )}
        </header>
        <Timeline id={conv.id} thread={thread} onQuote={(m) => { setQuote(m); editorApi.current?.focus(); }} />
        {!conv.merged_into_id && (
          <ReplyEditor key={conv.id} conv={conv} quote={quote} onClearQuote={() => setQuote(null)} register={(a) => (editorApi.current = a)} />
        )}
        {dragging && (
          <div class="drop-overlay" aria-hidden="true">
            Drop files to attach them to your reply
          </div>
        )}
      </div>
      {tablet && details && <div class="drawer-backdrop" onClick={() => setDetails(false)} aria-hidden="true" />}
      <Sidebar conv={conv} />
      {merging && <MergeDialog conv={conv} onClose={() => setMerging(false)} />}
      {ending.dialog}
    </div>
  );
}
