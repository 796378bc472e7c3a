// One conversation: header with collision warnings and actions (end chat, merge, previous /
// next), the timeline, the reply editor with drag and drop anywhere on the column, and the
// sidebar. While it is open the socket says "viewing" (RT-3).

import { useEffect, useRef, useState } from 'preact/hooks';
import { api, errorText, qs } from '../api';
import { KIND_LABEL, titleOf } from '../format';
import { navigate } from '../router';
import { agentName, app, channelOf, loadThread, openConversation, setViewing, toast, upsertConversation } from '../state';
import { useStore } from '../store';
import type { Conversation, Message, Page } from '../types';
import { ChannelBadge, Collision, Empty, Link, Modal, PriorityBadge, Spinner, StatusPill } from './common';
import { IconChevronDown, IconChevronUp, IconMerge, IconStop } from './icons';
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

function EndChatButton({ conv }: { conv: Conversation }) {
  const [busy, setBusy] = useState(false);
  const end = async () => {
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
  return (
    <button type="button" class="btn danger-outline" onClick={end} disabled={busy} data-testid="end-chat">
      <IconStop size={14} /> {busy ? 'Ending…' : 'End chat'}
    </button>
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
  const loaded = !!conv;

  // Keyboard users land on the conversation when the link they pressed has gone away.
  useEffect(() => {
    const a = document.activeElement;
    if (loaded && (!a || a === document.body)) title.current?.focus();
  }, [id, loaded]);

  useEffect(() => {
    setMissing(false);
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
    <div class="conversation-wrap">
      <div
        class="conversation"
        data-testid="conversation"
        data-conversation-id={conv.id}
        onDragEnter={onDragEnter as any}
        onDragLeave={onDragLeave}
        onDragOver={(e) => e.preventDefault()}
        onDrop={onDrop as any}
      >
        <header class="conv-head">
          <div class="conv-title-row">
            <h1 class="conv-title" ref={title} tabIndex={-1}>
              <span class="num">#{conv.number}</span> {titleOf(conv)}
            </h1>
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
            {conv.assignee_id && <span class="muted small">Assigned to {agentName(conv.assignee_id)}</span>}
            <span class="grow" />
            {conv.active_chat && <EndChatButton conv={conv} />}
            <button type="button" class="btn" onClick={() => setMerging(true)} disabled={!!conv.merged_into_id}>
              <IconMerge size={14} /> Merge
            </button>
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
      <Sidebar conv={conv} />
      {merging && <MergeDialog conv={conv} onClose={() => setMerging(false)} />}
    </div>
  );
}
