// A new outbound conversation (CORE-11): pick the channel instance to send from and the
// customer (autocomplete), write the first message. From a Mattermost bot, the recipient is a
// Mattermost member (a direct message) or channel, each marked as such (MM-12).

import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, errorText, qs } from '../api';
import { KIND_LABEL } from '../format';
import { navigate } from '../router';
import { app, isAdmin, toast, upsertConversation } from '../state';
import { useStore } from '../store';
import { Link } from '../components/common';
import type { Conversation, ConversationCreated, CustomerSummary, MattermostRecipient, Page } from '../types';

/** An autocomplete field: what is typed is looked up (`find`, debounced), arrows and Enter pick an option. */
function Picker<T>({
  id,
  label,
  placeholder,
  value,
  onChange,
  find,
  keyOf,
  textOf,
  render,
}: {
  id: string;
  label: string;
  placeholder: string;
  value: T | null;
  onChange: (v: T | null) => void;
  find: (q: string) => Promise<T[]>;
  keyOf: (v: T) => string;
  textOf: (v: T) => string;
  render: (v: T) => preact.ComponentChildren;
}) {
  const [q, setQ] = useState(value ? textOf(value) : '');
  const [items, setItems] = useState<T[]>([]);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(0);
  useEffect(() => {
    if (value && q === textOf(value)) return;
    const t = window.setTimeout(async () => {
      try {
        setItems(await find(q.trim()));
        setActive(0);
      } catch {
        setItems([]);
      }
    }, 150);
    return () => window.clearTimeout(t);
  }, [q, find]);
  const choose = (v: T) => {
    onChange(v);
    setQ(textOf(v));
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
  const optionId = (v: T) => id + '-opt-' + keyOf(v);
  return (
    <div class="combo">
      <label for={id}>{label}</label>
      <input
        id={id}
        role="combobox"
        aria-expanded={open && items.length > 0}
        aria-controls={id + '-options'}
        aria-autocomplete="list"
        aria-activedescendant={open && items[active] ? optionId(items[active]) : undefined}
        autocomplete="off"
        placeholder={placeholder}
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
        <ul id={id + '-options'} role="listbox" class="combo-list" aria-label={label}>
          {items.map((v, i) => (
            <li
              key={keyOf(v)}
              id={optionId(v)}
              role="option"
              aria-selected={i === active}
              class={i === active ? 'active' : ''}
              onMouseDown={(e) => {
                e.preventDefault();
                choose(v);
              }}
            >
              {render(v)}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

const findCustomers = async (q: string) =>
  (await api.get<Page<CustomerSummary>>('/customers' + qs({ q: q || undefined, per_page: 8 }))).items;

export function NewConversationPage() {
  const channels = useStore(app, (s) => s.channels);
  const usable = channels.filter((c) => c.enabled);
  const [channel, setChannel] = useState<number | ''>('');
  const [customer, setCustomer] = useState<CustomerSummary | null>(null);
  const [recipient, setRecipient] = useState<MattermostRecipient | null>(null);
  const [subject, setSubject] = useState('');
  const [content, setContent] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (channel === '' && usable.length) setChannel(usable[0].id);
  }, [usable.length]);
  const ch = usable.find((c) => c.id === channel);
  // A Mattermost bot writes to a member (a direct message) or in a channel, not to a stored customer (MM-12).
  const bot = ch?.kind === 'mattermost' ? ch.id : null;
  const findRecipients = useMemo(
    () => async (q: string) => (bot ? api.get<MattermostRecipient[]>(`/mattermost-channels/${bot}/recipients` + qs({ q })) : []),
    [bot],
  );
  useEffect(() => setRecipient(null), [bot]);
  const submit = async (e: Event) => {
    e.preventDefault();
    const to = bot ? recipient : customer;
    if (!channel || !to || !content.trim()) {
      setError(
        !channel ? 'Choose the channel to send from.' : !to ? (bot ? 'Choose a member or channel from the list.' : 'Choose the customer from the list.') : 'Write the message.',
      );
      return;
    }
    setBusy(true);
    setError('');
    try {
      let conversation: Conversation;
      if (bot && recipient) {
        conversation = await api.post<Conversation>(`/mattermost-channels/${bot}/conversations`, {
          to: { kind: recipient.kind, id: recipient.id },
          content: content.trim(),
          subject: subject.trim() || undefined,
        });
      } else {
        conversation = (
          await api.post<ConversationCreated>('/conversations', {
            channel,
            customer_id: customer!.id,
            content: content.trim(),
            subject: subject.trim() || undefined,
          })
        ).conversation;
      }
      upsertConversation(conversation);
      toast(`Conversation #${conversation.number} started`, 'success');
      navigate((conversation.active_chat ? '/chats/' : '/tickets/') + conversation.id);
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };
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
        {!usable.length && (
          <p class="muted small" data-testid="no-channel">
            {isAdmin() ? (
              <>
                No channel is connected yet. <Link href="/admin/channels">Connect a channel</Link> to write to customers.
              </>
            ) : (
              'You have no channel to write from yet: ask an admin to give you access to one.'
            )}
          </p>
        )}
        {bot ? (
          <Picker<MattermostRecipient>
            key={'bot-' + bot}
            id="recipient-input"
            label="To (Mattermost member or channel)"
            placeholder="Start typing a username or channel…"
            value={recipient}
            onChange={setRecipient}
            find={findRecipients}
            keyOf={(r) => r.kind + '-' + r.id}
            textOf={(r) => r.label}
            render={(r) => (
              <>
                {r.label} <span class={'pill small ' + (r.kind === 'member' ? 'status-open' : 'status-pending')}>{r.kind}</span>
              </>
            )}
          />
        ) : (
          <Picker<CustomerSummary>
            id="customer-input"
            label="To (customer)"
            placeholder="Start typing a name…"
            value={customer}
            onChange={setCustomer}
            find={findCustomers}
            keyOf={(c) => String(c.id)}
            textOf={(c) => c.name}
            render={(c) => (
              <>
                {c.name} <span class="muted small">customer #{c.id}</span>
              </>
            )}
          />
        )}
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
