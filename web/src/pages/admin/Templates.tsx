// Administration › Notification templates (TP-1…TP-3, issue #18 item 4): pick a notification, edit its subject and
// limited-HTML body (a small toolbar and a list of masks to insert), see unknown masks flagged and a live preview
// rendered by the server against a real ticket (debounced), save, or reset to the default. An empty body means the
// notification is not sent.

import { useEffect, useRef, useState } from 'preact/hooks';
import { api, errorText, qs } from '../../api';
import { toast } from '../../state';
import type { Conversation, Page } from '../../types';
import { useAsync } from './kit';

interface Template {
  kind: string;
  title: string;
  subject: string;
  body: string;
  sent: boolean;
  is_default: boolean;
  to_customers: boolean;
  unknown_masks: string[];
  allowed_masks: string[];
  updated_at: string | null;
}

interface Preview {
  subject: string;
  html: string;
  text: string;
  sent: boolean;
  unknown_masks: string[];
  conversation_id: number | null;
}

/** What a mask pattern inserts: `{N}` → 10, `{id}` → a field's key to fill in, `{prompt}` → a sample prompt. */
function insertable(mask: string): string {
  return mask.replace('{N}', '10').replace('{id}', 'field').replace('{prompt}', 'Please rate us');
}

const TOOLS: [string, string, string, string][] = [
  ['B', 'Bold', '<strong>', '</strong>'],
  ['I', 'Italic', '<em>', '</em>'],
  ['¶', 'Paragraph', '<p>', '</p>'],
  ['•', 'List item', '<ul><li>', '</li></ul>'],
  ['Link', 'Link to the ticket', '<a href="#URL#">', '</a>'],
];

export function Templates() {
  const [list, setList] = useState<Template[]>([]);
  const [kind, setKind] = useState('');
  const [subject, setSubject] = useState('');
  const [body, setBody] = useState('');
  const [tickets, setTickets] = useState<Conversation[]>([]);
  const [ticket, setTicket] = useState('');
  const [preview, setPreview] = useState<Preview | null>(null);
  const [previewError, setPreviewError] = useState('');
  const [busy, setBusy] = useState(false);
  const area = useRef<HTMLTextAreaElement>(null);
  const current = list.find((t) => t.kind === kind);
  const dirty = !!current && (current.subject !== subject || current.body !== body);

  const load = async (pick?: string) => {
    const all = await api.get<Template[]>('/notification-templates');
    setList(all);
    const chosen = all.find((t) => t.kind === (pick ?? kind)) ?? all[0];
    if (chosen) {
      setKind(chosen.kind);
      setSubject(chosen.subject);
      setBody(chosen.body);
    }
  };
  useAsync(async () => {
    await load();
    const page = await api.get<Page<Conversation>>('/conversations' + qs({ per_page: 20, sort: 'created_desc' }));
    setTickets(page.items);
  }, []);

  // The live preview: rendered by the server, a moment after the last keystroke.
  useEffect(() => {
    if (!kind) return;
    let stale = false;
    const timer = setTimeout(async () => {
      try {
        const body_ = { subject, body, conversation_id: ticket ? Number(ticket) : undefined };
        const p = await api.post<Preview>(`/notification-templates/${kind}/preview`, body_);
        if (!stale) {
          setPreview(p);
          setPreviewError('');
        }
      } catch (e) {
        if (!stale) setPreviewError(errorText(e));
      }
    }, 350);
    return () => {
      stale = true;
      clearTimeout(timer);
    };
  }, [kind, subject, body, ticket]);

  const choose = (k: string) => {
    if (dirty && !confirm('Discard the changes to this template?')) return;
    const t = list.find((x) => x.kind === k);
    if (!t) return;
    setKind(k);
    setSubject(t.subject);
    setBody(t.body);
  };

  /** Wraps the selection of the body (or inserts at the cursor). */
  const wrap = (before: string, after = '') => {
    const el = area.current;
    const start = el?.selectionStart ?? body.length;
    const end = el?.selectionEnd ?? body.length;
    const next = body.slice(0, start) + before + body.slice(start, end) + after + body.slice(end);
    setBody(next);
    requestAnimationFrame(() => {
      if (!el) return;
      el.focus();
      el.selectionStart = el.selectionEnd = end + before.length + after.length;
    });
  };

  const save = async () => {
    setBusy(true);
    try {
      await api.put(`/notification-templates/${kind}`, { subject, body });
      await load(kind);
      toast(body.trim() ? 'Template saved' : 'Template saved: this notification is not sent', 'success');
    } catch (e) {
      toast(errorText(e), 'error');
    } finally {
      setBusy(false);
    }
  };

  const reset = async () => {
    if (!confirm('Reset this template to the default?')) return;
    setBusy(true);
    try {
      await api.del(`/notification-templates/${kind}`);
      await load(kind);
      toast('Template reset to the default', 'success');
    } catch (e) {
      toast(errorText(e), 'error');
    } finally {
      setBusy(false);
    }
  };

  const unknown = preview?.unknown_masks ?? current?.unknown_masks ?? [];
  return (
    <section class="templates" data-testid="templates">
      <div class="section-head">
        <h2>Notification templates</h2>
      </div>
      <p class="muted small">
        Each notification mail is made from its template: limited HTML with masks such as <code>#Subject#</code>, replaced for each ticket and
        recipient. <strong>An empty body means this notification is not sent.</strong> Details: docs/templates.md.
      </p>
      <div class="templates-grid">
        <nav class="templates-kinds" aria-label="Notifications">
          {list.map((t) => (
            <button
              key={t.kind}
              type="button"
              class={'templates-kind' + (t.kind === kind ? ' active' : '')}
              aria-current={t.kind === kind ? 'true' : undefined}
              data-kind={t.kind}
              onClick={() => choose(t.kind)}
            >
              <span>{t.title}</span>
              <span class="small muted">
                {t.sent ? (t.is_default ? 'default' : 'edited') : 'not sent'}
                {t.unknown_masks.length > 0 && ' · unknown masks'}
              </span>
            </button>
          ))}
        </nav>
        {current && (
          <div class="templates-editor">
            <h3>{current.title}</h3>
            <div class="field">
              <label for="tpl-subject">Subject</label>
              <input id="tpl-subject" value={subject} maxLength={255} onInput={(e) => setSubject(e.currentTarget.value)} />
            </div>
            <div class="field">
              <label for="tpl-body">Body (limited HTML)</label>
              <div class="templates-toolbar" role="toolbar" aria-label="Formatting">
                {TOOLS.map(([label, title, before, after]) => (
                  <button key={title} type="button" class="btn small" title={title} aria-label={title} onClick={() => wrap(before, after)}>
                    {label}
                  </button>
                ))}
              </div>
              <textarea id="tpl-body" ref={area} rows={14} value={body} spellcheck={false} onInput={(e) => setBody(e.currentTarget.value)} />
              {!body.trim() && (
                <p class="templates-off" role="status" data-testid="not-sent">
                  The body is empty: this notification will not be sent.
                </p>
              )}
              {unknown.length > 0 && (
                <p class="templates-unknown" role="alert" data-testid="unknown-masks">
                  Unknown masks (left as written): {unknown.map((m) => <code key={m}>{m}</code>)}
                </p>
              )}
            </div>
            <details class="templates-masks" open>
              <summary>Masks — click to insert</summary>
              <div class="templates-mask-list">
                {current.allowed_masks.map((m) => (
                  <button key={m} type="button" class="btn small" onClick={() => wrap(insertable(m))}>
                    {m}
                  </button>
                ))}
              </div>
            </details>
            <div class="row end">
              <button type="button" class="btn" disabled={busy || current.is_default} onClick={reset}>
                Reset to default
              </button>
              <button type="button" class="btn primary" disabled={busy || !dirty} onClick={save}>
                Save
              </button>
            </div>
          </div>
        )}
        {current && (
          <div class="templates-preview">
            <div class="field">
              <label for="tpl-ticket">Preview with ticket</label>
              <select id="tpl-ticket" value={ticket} onChange={(e) => setTicket(e.currentTarget.value)}>
                <option value="">Newest ticket</option>
                {tickets.map((c) => (
                  <option key={c.id} value={String(c.id)}>
                    #{c.number} {c.subject || '(no subject)'} — {c.customer_name}
                  </option>
                ))}
              </select>
            </div>
            {previewError && (
              <p class="form-error" role="alert">
                {previewError}
              </p>
            )}
            {preview && (
              <div class="templates-mail" data-testid="preview" aria-live="polite">
                <div class="templates-mail-subject">
                  <span class="muted small">Subject</span> <strong data-testid="preview-subject">{preview.subject}</strong>
                </div>
                {preview.sent ? (
                  <div class="msg-html" data-testid="preview-html" dangerouslySetInnerHTML={{ __html: preview.html }} />
                ) : (
                  <p class="muted">Not sent (empty body).</p>
                )}
                {preview.conversation_id === null && <p class="muted small">No tickets yet: an example ticket is shown.</p>}
              </div>
            )}
          </div>
        )}
      </div>
    </section>
  );
}
