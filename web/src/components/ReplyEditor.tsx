// The reply editor (HD-10): limited rich text, links, attachments (button, drag and drop,
// paste), the internal-note toggle (CORE-10), a quoted message (MM-8), and "send and set status"
// in one action. It tells the others "X is writing a reply" while the agent types (RT-3).

import { useEffect, useRef, useState } from 'preact/hooks';
import { api, errorText } from '../api';
import { bytes } from '../format';
import { addMessages, app, live, toast, upsertConversation } from '../state';
import { useStore } from '../store';
import type { Attachment, Conversation, Message, MessageCreated } from '../types';
import { IconClip, IconCode, IconLink, IconList, IconNote, IconOList, IconX } from './icons';
import { useMentionPicker } from './Mentions';

interface Upload {
  key: number;
  name: string;
  size: number;
  state: 'uploading' | 'done' | 'error';
  attachment?: Attachment;
  error?: string;
}

interface Draft {
  html: string;
  note: boolean;
}

const drafts = new Map<number, Draft>();
let uploadSeq = 0;

const RICH = /<(b|strong|i|em|u|a|ul|ol|li|code|pre|blockquote)\b/i;

export interface EditorApi {
  addFiles(files: FileList | File[]): void;
  focus(): void;
  toggleNote(): void;
}

export function ReplyEditor({
  conv,
  quote,
  onClearQuote,
  register,
}: {
  conv: Conversation;
  quote: Message | null;
  onClearQuote: () => void;
  register: (api: EditorApi | null) => void;
}) {
  const statuses = useStore(app, (s) => s.statuses);
  const editor = useRef<HTMLDivElement>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const [note, setNote] = useState(drafts.get(conv.id)?.note ?? false);
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [thenStatus, setThenStatus] = useState('');
  const [sending, setSending] = useState(false);
  const [error, setError] = useState('');
  const [empty, setEmpty] = useState(!drafts.get(conv.id)?.html);
  const typing = useRef({ on: false, last: 0, idle: 0 as number | undefined });
  // @mentions in notes (#17).
  const mention = useMentionPicker(conv.id, editor, note);

  // Restore this conversation's draft; save it when leaving.
  useEffect(() => {
    const el = editor.current!;
    el.innerHTML = drafts.get(conv.id)?.html ?? '';
    return () => {
      const html = el.innerHTML;
      if (el.innerText.trim() || RICH.test(html)) drafts.set(conv.id, { html, note: noteRef.current });
      else drafts.delete(conv.id);
      stopTyping();
    };
  }, [conv.id]);
  const noteRef = useRef(note);
  noteRef.current = note;

  const stopTyping = () => {
    const t = typing.current;
    window.clearTimeout(t.idle);
    if (t.on) {
      t.on = false;
      live.send({ type: 'typing', conversation_id: conv.id, state: 'stop' });
    }
  };

  const onInput = () => {
    mention.onInput();
    const el = editor.current!;
    const hasText = el.innerText.trim().length > 0;
    setEmpty(!hasText && !RICH.test(el.innerHTML));
    setError('');
    const t = typing.current;
    if (!hasText) {
      stopTyping();
      return;
    }
    const now = Date.now();
    // Re-announce every 2.5 s while typing (the server lets the marker lapse after 6 s).
    if (!t.on || now - t.last > 2500) {
      t.on = true;
      t.last = now;
      live.send({ type: 'typing', conversation_id: conv.id, state: 'start' });
    }
    window.clearTimeout(t.idle);
    t.idle = window.setTimeout(stopTyping, 5000);
  };

  const addFiles = (files: FileList | File[]) => {
    for (const file of Array.from(files)) {
      const key = ++uploadSeq;
      setUploads((u) => [...u, { key, name: file.name, size: file.size, state: 'uploading' }]);
      api
        .upload<Attachment>(file)
        .then((a) => setUploads((u) => u.map((x) => (x.key === key ? { ...x, state: 'done', attachment: a } : x))))
        .catch((e) => setUploads((u) => u.map((x) => (x.key === key ? { ...x, state: 'error', error: errorText(e) } : x))));
    }
  };

  const toggleNote = () => setNote((n) => !n);

  useEffect(() => {
    register({ addFiles, focus: () => editor.current?.focus(), toggleNote });
    return () => register(null);
  }, [conv.id]);

  const exec = (cmd: string, value?: string) => {
    editor.current?.focus();
    document.execCommand(cmd, false, value);
    onInput();
  };

  const insertLink = () => {
    const sel = window.getSelection();
    const text = sel?.toString() ?? '';
    const url = window.prompt('Link address (https://…)', text.startsWith('http') ? text : 'https://');
    if (!url || !/^(https?:|mailto:)/i.test(url)) return;
    if (text) exec('createLink', url);
    else exec('insertHTML', `<a href="${url.replace(/"/g, '&quot;')}">${url.replace(/</g, '&lt;')}</a>&nbsp;`);
  };

  const insertCode = () => {
    const text = window.getSelection()?.toString() ?? '';
    const safe = (text || 'code').replace(/&/g, '&amp;').replace(/</g, '&lt;');
    exec('insertHTML', `<code>${safe}</code>&nbsp;`);
  };

  const send = async () => {
    if (sending) return;
    const el = editor.current!;
    const text = el.innerText.replace(/\u00a0/g, ' ').trim();
    const html = el.innerHTML;
    if (uploads.some((u) => u.state === 'uploading')) {
      setError('Wait for the attachments to finish uploading.');
      return;
    }
    const files = uploads.filter((u) => u.state === 'done' && u.attachment).map((u) => u.attachment!);
    if (!text && !files.length) {
      setError(note ? 'Write the note first.' : 'Write a reply first.');
      el.focus();
      return;
    }
    setSending(true);
    setError('');
    try {
      const body: Record<string, unknown> = {
        content: text || files.map((f) => f.file_name).join(', '),
        note,
        attachment_ids: files.map((f) => f.id),
      };
      if (RICH.test(html)) body.content_html = html;
      const mentions = note ? mention.collect() : [];
      if (mentions.length) body.mentions = mentions;
      if (quote) body.quoted_message_id = quote.id;
      if (thenStatus) body.status = thenStatus;
      const res = await api.post<MessageCreated>(`/conversations/${conv.id}/messages`, body);
      addMessages(conv.id, [res.message]);
      upsertConversation(res.conversation);
      el.innerHTML = '';
      drafts.delete(conv.id);
      setEmpty(true);
      setUploads([]);
      setThenStatus('');
      onClearQuote();
      stopTyping();
      if (thenStatus) toast(`${note ? 'Note added' : 'Reply sent'} and status set to ${statuses.find((s) => s.key === thenStatus)?.name ?? thenStatus}`, 'success');
      el.focus();
    } catch (e) {
      setError(errorText(e));
    } finally {
      setSending(false);
    }
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (mention.onKeyDown(e)) return;
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') {
      e.preventDefault();
      send();
    } else if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'k') {
      e.preventDefault();
      insertLink();
    }
  };

  const onPaste = (e: ClipboardEvent) => {
    const dt = e.clipboardData;
    if (!dt) return;
    if (dt.files.length) {
      e.preventDefault();
      addFiles(dt.files);
      return;
    }
    // Paste as plain text: formatting from other pages is rarely wanted in a reply.
    const text = dt.getData('text/plain');
    if (text) {
      e.preventDefault();
      document.execCommand('insertText', false, text);
    }
  };

  const label = note ? 'Internal note' : conv.active_chat ? 'Chat reply' : 'Reply';
  const current = statuses.find((s) => s.key === conv.status);
  return (
    <section class={'editor' + (note ? ' note-mode' : '')} aria-label="Reply editor" data-testid="reply-editor">
      <div class="editor-tabs" role="group" aria-label="Message kind">
        <button type="button" class={'tab' + (!note ? ' active' : '')} aria-pressed={!note} onClick={() => setNote(false)}>
          Reply to customer
        </button>
        <button type="button" class={'tab' + (note ? ' active' : '')} aria-pressed={note} onClick={() => setNote(true)} title="Alt+N">
          <IconNote size={14} /> Internal note
        </button>
        <span class="grow" />
        {note && <span class="note-hint">Only agents see notes</span>}
      </div>
      {quote && (
        <div class="quote-preview" data-testid="quote-preview">
          <span class="muted small">Quoting {quote.author.name}:</span>
          <span class="quote-text">{quote.content.length > 160 ? quote.content.slice(0, 160) + '…' : quote.content}</span>
          <button type="button" class="icon-btn small" aria-label="Remove the quote" onClick={onClearQuote}>
            <IconX size={14} />
          </button>
        </div>
      )}
      <div class="toolbar" role="toolbar" aria-label="Formatting">
        <button type="button" class="tool" aria-label="Bold" title="Bold (Ctrl+B)" onMouseDown={(e) => e.preventDefault()} onClick={() => exec('bold')}>
          <b>B</b>
        </button>
        <button type="button" class="tool" aria-label="Italic" title="Italic (Ctrl+I)" onMouseDown={(e) => e.preventDefault()} onClick={() => exec('italic')}>
          <i>I</i>
        </button>
        <button type="button" class="tool" aria-label="Bulleted list" title="Bulleted list" onMouseDown={(e) => e.preventDefault()} onClick={() => exec('insertUnorderedList')}>
          <IconList size={16} />
        </button>
        <button type="button" class="tool" aria-label="Numbered list" title="Numbered list" onMouseDown={(e) => e.preventDefault()} onClick={() => exec('insertOrderedList')}>
          <IconOList size={16} />
        </button>
        <button type="button" class="tool" aria-label="Insert link" title="Link (Ctrl+K)" onMouseDown={(e) => e.preventDefault()} onClick={insertLink}>
          <IconLink size={16} />
        </button>
        <button type="button" class="tool" aria-label="Code" title="Code" onMouseDown={(e) => e.preventDefault()} onClick={insertCode}>
          <IconCode size={16} />
        </button>
        <span class="sep" aria-hidden="true" />
        <button type="button" class="tool" aria-label="Attach files" title="Attach files (or drop them here)" onClick={() => fileInput.current?.click()}>
          <IconClip size={16} />
        </button>
        <input
          ref={fileInput}
          type="file"
          multiple
          class="sr-only"
          tabIndex={-1}
          aria-hidden="true"
          data-testid="file-input"
          onChange={(e) => {
            const f = e.currentTarget.files;
            if (f?.length) addFiles(f);
            e.currentTarget.value = '';
          }}
        />
      </div>
      <div class="editor-box">
        {empty && (
          <span class="placeholder" aria-hidden="true">
            {note ? 'Write an internal note… (@ mentions a teammate)' : `Write your reply to ${conv.customer_name}…`}
          </span>
        )}
        <div
          ref={editor}
          class="editor-input"
          contentEditable
          role="textbox"
          aria-multiline="true"
          aria-label={label}
          aria-controls={mention.open ? 'mention-list' : undefined}
          aria-activedescendant={mention.activeId}
          data-testid="editor-input"
          onInput={onInput}
          onKeyDown={onKeyDown as any}
          onPaste={onPaste as any}
          onBlur={() => {
            if (typing.current.on) {
              window.clearTimeout(typing.current.idle);
              typing.current.idle = window.setTimeout(stopTyping, 3000);
            }
          }}
        />
        {mention.list}
      </div>
      {uploads.length > 0 && (
        <ul class="uploads" aria-label="Attachments">
          {uploads.map((u) => (
            <li key={u.key} class={'upload ' + u.state} data-testid="upload">
              <IconClip size={14} />
              <span class="file-name">{u.name}</span>
              <span class="muted small">{u.state === 'uploading' ? 'uploading…' : u.state === 'error' ? u.error : bytes(u.size)}</span>
              <button type="button" class="icon-btn small" aria-label={'Remove ' + u.name} onClick={() => setUploads((x) => x.filter((y) => y.key !== u.key))}>
                <IconX size={12} />
              </button>
            </li>
          ))}
        </ul>
      )}
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      <div class="editor-actions">
        <span class="muted small">
          <kbd>Ctrl</kbd>+<kbd>Enter</kbd> to send · <kbd>Alt</kbd>+<kbd>N</kbd> note
        </span>
        <span class="grow" />
        <label class="then-status">
          <span>then</span>
          <select onChange={(e) => setThenStatus(e.currentTarget.value)} aria-label="Status to set when sending">
            <option value="" selected={thenStatus === ''}>
              keep status ({current?.name ?? conv.status})
            </option>
            {statuses
              .filter((s) => s.key !== conv.status)
              .map((s) => (
                <option key={s.key} value={s.key} selected={thenStatus === s.key}>
                  set {s.name}
                </option>
              ))}
          </select>
        </label>
        <button type="button" class={'btn ' + (note ? 'note' : 'primary')} onClick={send} disabled={sending} data-testid="send">
          {sending ? 'Sending…' : note ? 'Add note' : 'Send'}
        </button>
      </div>
    </section>
  );
}
