// A new outbound conversation (CORE-11): pick the channel instance to send from and the
// customer (autocomplete), write the first message.

import { useEffect, useRef, useState } from 'preact/hooks';
import { api, errorText, qs } from '../api';
import { KIND_LABEL } from '../format';
import { navigate } from '../router';
import { app, toast, upsertConversation } from '../state';
import { useStore } from '../store';
import type { ConversationCreated, CustomerSummary, Page } from '../types';

function CustomerPicker({ value, onChange }: { value: CustomerSummary | null; onChange: (c: CustomerSummary | null) => void }) {
  const [q, setQ] = useState('');
  const [items, setItems] = useState<CustomerSummary[]>([]);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(0);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (value && q === value.name) return;
    const t = window.setTimeout(async () => {
      try {
        const page = await api.get<Page<CustomerSummary>>('/customers' + qs({ q: q.trim() || undefined, per_page: 8 }));
        setItems(page.items);
        setActive(0);
      } catch {
        setItems([]);
      }
    }, 150);
    return () => window.clearTimeout(t);
  }, [q]);
  const choose = (c: CustomerSummary) => {
    onChange(c);
    setQ(c.name);
    setOpen(false);
  };
  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'ArrowDown') {
      e.preventDefault();
      setOpen(true);
      setActive((a) => Math.min(items.length - 1, a + 1));
    } else if (e.key === 'ArrowUp') {
      e.preventDefault();
      setActive((a) => Math.max(0, a - 1));
    } else if (e.key === 'Enter' && open && items[active]) {
      e.preventDefault();
      choose(items[active]);
    } else if (e.key === 'Escape') {
      setOpen(false);
    }
  };
  return (
    <div class="combo">
      <label for="customer-input">To (customer)</label>
      <input
        id="customer-input"
        ref={input}
        role="combobox"
        aria-expanded={open && items.length > 0}
        aria-controls="customer-options"
        aria-autocomplete="list"
        aria-activedescendant={open && items[active] ? 'customer-opt-' + items[active].id : undefined}
        autocomplete="off"
        placeholder="Start typing a name…"
        value={q}
        onInput={(e) => {
          setQ(e.currentTarget.value);
          onChange(null);
          setOpen(true);
        }}
        onFocus={() => setOpen(true)}
        onBlur={() => window.setTimeout(() => setOpen(false), 150)}
        onKeyDown={onKey as any}
      />
      {open && items.length > 0 && (
        <ul id="customer-options" role="listbox" class="combo-list" aria-label="Customers">
          {items.map((c, i) => (
            <li
              key={c.id}
              id={'customer-opt-' + c.id}
              role="option"
              aria-selected={i === active}
              class={i === active ? 'active' : ''}
              onMouseDown={(e) => {
                e.preventDefault();
                choose(c);
              }}
            >
              {c.name} <span class="muted small">customer #{c.id}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function NewConversationPage() {
  const channels = useStore(app, (s) => s.channels);
  const usable = channels.filter((c) => c.enabled);
  const [channel, setChannel] = useState<number | ''>('');
  const [customer, setCustomer] = useState<CustomerSummary | null>(null);
  const [subject, setSubject] = useState('');
  const [content, setContent] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (channel === '' && usable.length) setChannel(usable[0].id);
  }, [usable.length]);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!channel || !customer || !content.trim()) {
      setError(!channel ? 'Choose the channel to send from.' : !customer ? 'Choose the customer from the list.' : 'Write the message.');
      return;
    }
    setBusy(true);
    setError('');
    try {
      const res = await api.post<ConversationCreated>('/conversations', {
        channel,
        customer_id: customer.id,
        content: content.trim(),
        subject: subject.trim() || undefined,
      });
      upsertConversation(res.conversation);
      toast(`Conversation #${res.number} started`, 'success');
      navigate((res.conversation.active_chat ? '/chats/' : '/tickets/') + res.conversation_id);
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };
  const ch = usable.find((c) => c.id === channel);
  return (
    <div class="page narrow">
      <h1>New conversation</h1>
      <p class="muted">Write to a customer first, on the channel of your choice.</p>
      <form class="card form" onSubmit={submit}>
        <label class="field">
          <span>Send from</span>
          <select value={channel} onChange={(e) => setChannel(Number(e.currentTarget.value))} required>
            {!usable.length && <option value="">No channel available</option>}
            {usable.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name} — {KIND_LABEL[c.kind]} ({c.mode === 'sync' ? 'chat' : 'ticket'})
              </option>
            ))}
          </select>
        </label>
        <CustomerPicker value={customer} onChange={setCustomer} />
        {ch?.mode !== 'sync' && (
          <label class="field">
            <span>Subject</span>
            <input value={subject} onInput={(e) => setSubject(e.currentTarget.value)} maxLength={300} />
          </label>
        )}
        <label class="field">
          <span>Message</span>
          <textarea rows={8} value={content} onInput={(e) => setContent(e.currentTarget.value)} required />
        </label>
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
        <div class="row end">
          <button type="submit" class="btn primary" disabled={busy}>
            {busy ? 'Sending…' : 'Send'}
          </button>
        </div>
      </form>
    </div>
  );
}
