// The conversation's sidebar: its properties (status including custom ones, assignee, team,
// priority, tags, custom fields, subject) and the customer (profile, identities, company, and
// every conversation with them across all channels: HD-1).

import { useEffect, useState } from 'preact/hooks';
import { api, errorText } from '../api';
import { ago, KIND_LABEL, titleOf } from '../format';
import { app, channelOf, toast, upsertConversation } from '../state';
import { useStore } from '../store';
import type { Conversation, Customer, Page } from '../types';
import { ChannelBadge, Link, StatusPill } from './common';
import { IconX } from './icons';

async function patch(id: number, body: Record<string, unknown>): Promise<string | null> {
  try {
    const c = await api.patch<Conversation>(`/conversations/${id}`, body);
    upsertConversation(c);
    return null;
  } catch (e) {
    return errorText(e);
  }
}

function Properties({ conv }: { conv: Conversation }) {
  const me = useStore(app, (s) => s.me!);
  const agents = useStore(app, (s) => s.agents);
  const teams = useStore(app, (s) => s.teams);
  const statuses = useStore(app, (s) => s.statuses);
  const [error, setError] = useState('');
  const [tag, setTag] = useState('');
  const [subject, setSubject] = useState(conv.subject);
  const [newKey, setNewKey] = useState('');
  const [newValue, setNewValue] = useState('');
  useEffect(() => setSubject(conv.subject), [conv.id, conv.subject]);
  useEffect(() => setError(''), [conv.id]);

  const run = async (body: Record<string, unknown>) => {
    setError('');
    const err = await patch(conv.id, body);
    if (err) setError(err);
    return !err;
  };

  const addTag = async (e: Event) => {
    e.preventDefault();
    const t = tag.trim();
    if (!t) return;
    if (await run({ add_tags: [t] })) setTag('');
  };

  const addField = async (e: Event) => {
    e.preventDefault();
    const k = newKey.trim();
    if (!k) return;
    if (await run({ custom_fields: { [k]: newValue } })) {
      setNewKey('');
      setNewValue('');
    }
  };

  const fields = Object.entries(conv.custom_fields ?? {});
  return (
    <section class="side-section" aria-labelledby="props-title">
      <h2 id="props-title" class="side-title">
        Details
      </h2>
      {error && (
        <p class="form-error" role="alert" data-testid="properties-error">
          {error}
        </p>
      )}
      <div class="props">
        <label class="prop">
          <span>Status</span>
          <select value={conv.status} onChange={(e) => run({ status: e.currentTarget.value })} data-testid="prop-status">
            {!statuses.some((s) => s.key === conv.status) && <option value={conv.status}>{conv.status}</option>}
            {statuses.map((s) => (
              <option key={s.key} value={s.key}>
                {s.name}
                {s.required_fields.length ? ' (needs ' + s.required_fields.join(', ') + ')' : ''}
              </option>
            ))}
          </select>
        </label>
        <div class="prop">
          <label for="prop-assignee">Assignee</label>
          <div class="row">
            <select id="prop-assignee" value={conv.assignee_id ?? ''} onChange={(e) => run({ assignee_id: e.currentTarget.value ? Number(e.currentTarget.value) : null })}>
              <option value="">Unassigned</option>
              {agents
                .filter((a) => a.active || a.id === conv.assignee_id)
                .map((a) => (
                  <option key={a.id} value={a.id}>
                    {a.name}
                    {a.id === me.agent.id ? ' (me)' : ''}
                  </option>
                ))}
            </select>
            {conv.assignee_id !== me.agent.id && (
              <button type="button" class="btn small" onClick={() => run({ assignee_id: me.agent.id })}>
                Take
              </button>
            )}
          </div>
        </div>
        <label class="prop">
          <span>Team</span>
          <select value={conv.team_id ?? ''} onChange={(e) => run({ team_id: e.currentTarget.value ? Number(e.currentTarget.value) : null })}>
            <option value="">No team</option>
            {teams.map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
              </option>
            ))}
          </select>
        </label>
        <label class="prop">
          <span>Priority</span>
          <select value={conv.priority} onChange={(e) => run({ priority: e.currentTarget.value })}>
            <option value="low">Low</option>
            <option value="normal">Normal</option>
            <option value="high">High</option>
            <option value="urgent">Urgent</option>
          </select>
        </label>
        <form
          class="prop"
          onSubmit={(e) => {
            e.preventDefault();
            if (subject.trim() !== conv.subject) run({ subject: subject.trim() });
          }}
        >
          <label for="prop-subject">Subject</label>
          <input
            id="prop-subject"
            value={subject}
            maxLength={300}
            onInput={(e) => setSubject(e.currentTarget.value)}
            onBlur={() => subject.trim() !== conv.subject && run({ subject: subject.trim() })}
            placeholder="No subject"
          />
        </form>
        <div class="prop">
          <span id="tags-label">Tags</span>
          <ul class="tags" aria-labelledby="tags-label">
            {conv.tags.map((t) => (
              <li key={t} class="tag">
                {t}
                <button type="button" class="tag-x" aria-label={'Remove tag ' + t} onClick={() => run({ remove_tags: [t] })}>
                  <IconX size={11} />
                </button>
              </li>
            ))}
          </ul>
          <form onSubmit={addTag} class="row">
            <input aria-label="Add a tag" placeholder="Add a tag…" value={tag} maxLength={50} onInput={(e) => setTag(e.currentTarget.value)} />
            <button type="submit" class="btn small" disabled={!tag.trim()}>
              Add
            </button>
          </form>
        </div>
        <div class="prop">
          <span id="fields-label">Custom fields</span>
          {fields.length > 0 && (
            <dl class="fields" aria-labelledby="fields-label">
              {fields.map(([k, v]) => (
                <div key={k} class="field-row">
                  <dt>{k}</dt>
                  <dd>
                    <input
                      aria-label={'Value of ' + k}
                      value={typeof v === 'string' ? v : JSON.stringify(v)}
                      onChange={(e) => run({ custom_fields: { [k]: e.currentTarget.value } })}
                    />
                    <button type="button" class="icon-btn small" aria-label={'Remove field ' + k} onClick={() => run({ custom_fields: { [k]: null } })}>
                      <IconX size={12} />
                    </button>
                  </dd>
                </div>
              ))}
            </dl>
          )}
          <form onSubmit={addField} class="row">
            <input aria-label="New field name" placeholder="Field" value={newKey} maxLength={60} onInput={(e) => setNewKey(e.currentTarget.value)} />
            <input aria-label="New field value" placeholder="Value" value={newValue} onInput={(e) => setNewValue(e.currentTarget.value)} />
            <button type="submit" class="btn small" disabled={!newKey.trim()}>
              Add
            </button>
          </form>
        </div>
      </div>
    </section>
  );
}

const customers = new Map<number, Customer>();

function CustomerCard({ conv }: { conv: Conversation }) {
  useStore(app, (s) => s.channels);
  const listVersion = useStore(app, (s) => s.listVersion);
  const [customer, setCustomer] = useState<Customer | null>(customers.get(conv.customer_id) ?? null);
  const [history, setHistory] = useState<Page<Conversation> | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    let gone = false;
    setCustomer(customers.get(conv.customer_id) ?? null);
    api
      .get<Customer>(`/customers/${conv.customer_id}`)
      .then((c) => {
        customers.set(c.id, c);
        if (!gone) setCustomer(c);
      })
      .catch((e) => !gone && setError(errorText(e)));
    return () => {
      gone = true;
    };
  }, [conv.customer_id]);
  useEffect(() => {
    let gone = false;
    api
      .get<Page<Conversation>>(`/customers/${conv.customer_id}/conversations`)
      .then((p) => !gone && setHistory(p))
      .catch(() => undefined);
    return () => {
      gone = true;
    };
  }, [conv.customer_id, listVersion]);

  const channelName = (id: number | null) => (id ? channelOf(id)?.name ?? `Channel ${id}` : '');
  return (
    <section class="side-section" aria-labelledby="customer-title" data-testid="customer-card">
      <h2 id="customer-title" class="side-title">
        Customer
      </h2>
      {error && <p class="form-error">{error}</p>}
      <div class="customer-head">
        <strong class="customer-name">{customer?.name ?? conv.customer_name}</strong>
        {customer?.company && <span class="muted">{customer.company.name}</span>}
      </div>
      {customer && customer.identities.length > 0 && (
        <ul class="identities" aria-label="Identities">
          {customer.identities.map((i) => (
            <li key={i.id}>
              <span class="identity-kind">{i.kind === 'external' ? channelName(i.channel_id) || 'External id' : i.kind === 'email' ? 'Email' : 'Phone'}</span>
              <span class="identity-value">{i.value}</span>
            </li>
          ))}
        </ul>
      )}
      {customer?.notes && <p class="customer-notes">{customer.notes}</p>}
      {customer && Object.keys(customer.custom_fields).length > 0 && (
        <dl class="fields compact">
          {Object.entries(customer.custom_fields).map(([k, v]) => (
            <div key={k} class="field-row">
              <dt>{k}</dt>
              <dd>{typeof v === 'string' ? v : JSON.stringify(v)}</dd>
            </div>
          ))}
        </dl>
      )}
      <h3 class="side-subtitle">Conversations {history ? `(${history.total})` : ''}</h3>
      <ul class="history" data-testid="customer-history">
        {history?.items.map((c) => (
          <li key={c.id} class={c.id === conv.id ? 'current' : ''}>
            <Link href={(c.active_chat ? '/chats/' : '/tickets/') + c.id} aria-current={c.id === conv.id ? 'page' : undefined}>
              <span class="history-top">
                <span class="num">#{c.number}</span>
                <span class="history-title">{titleOf(c)}</span>
              </span>
              <span class="history-meta">
                <ChannelBadge kind={c.channel_kind} name={channelOf(c.channel_id)?.name ?? KIND_LABEL[c.channel_kind]} />
                {c.active_chat ? <span class="pill live-pill">Live</span> : <StatusPill status={c.status} />}
                <span class="muted small">{ago(c.updated_at)}</span>
              </span>
            </Link>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function Sidebar({ conv }: { conv: Conversation }) {
  return (
    <aside class="sidebar" id="conversation-details" tabIndex={-1} aria-label="Conversation details">
      <Properties conv={conv} />
      <CustomerCard conv={conv} />
    </aside>
  );
}

export function notifyPatchError(e: unknown) {
  toast(errorText(e), 'error');
}
