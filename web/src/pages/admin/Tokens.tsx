// Administration › API tokens: create (the secret is shown once), list and revoke.

import { useState } from 'preact/hooks';
import { api, errorText, qs } from '../../api';
import { ago, full } from '../../format';
import { app } from '../../state';
import { useStore } from '../../store';
import type { Token } from '../../types';
import { confirmDelete, DataTable, FormError, SectionHead, useAsync } from './kit';

export function Tokens() {
  const agents = useStore(app, (s) => s.agents);
  const me = useStore(app, (s) => s.me!);
  const [tokens, setTokens] = useState<Token[]>([]);
  const [name, setName] = useState('');
  const [agent, setAgent] = useState<number>(me.agent.id);
  const [created, setCreated] = useState<string | null>(null);
  const [error, setError] = useState('');
  const reload = async () => setTokens(await api.get<Token[]>('/tokens' + qs({})));
  useAsync(reload, []);
  const create = async (e: Event) => {
    e.preventDefault();
    setError('');
    try {
      const t = await api.post<Token & { token: string }>('/tokens', { name, agent_id: agent });
      setCreated(t.token);
      setName('');
      await reload();
    } catch (err) {
      setError(errorText(err));
    }
  };
  const revoke = async (t: Token) => {
    await confirmDelete(`Revoke the token ${t.name}? Programs using it stop working.`, `/tokens/${t.id}`, reload);
  };
  return (
    <section>
      <SectionHead title="API tokens" />
      <form class="row card pad" onSubmit={create}>
        <label class="field grow">
          <span>Token name</span>
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} required maxLength={100} placeholder="e.g. CRM integration" />
        </label>
        <label class="field">
          <span>For agent</span>
          <select value={agent} onChange={(e) => setAgent(Number(e.currentTarget.value))}>
            {agents.map((a) => (
              <option key={a.id} value={a.id}>
                {a.name}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" class="btn primary align-end">
          Create token
        </button>
      </form>
      <FormError error={error} />
      {created && (
        <div class="banner success inline" role="status">
          Copy the new token now — it is shown only once: <code class="token">{created}</code>
          <button type="button" class="btn small" onClick={() => navigator.clipboard?.writeText(created)}>
            Copy
          </button>
        </div>
      )}
      <DataTable columns={['Name', 'Agent', 'Starts with', 'Created', 'Last used']}>
      {tokens.map((t) => (
        <tr key={t.id}>
          <td>{t.name}</td>
          <td>{agents.find((a) => a.id === t.agent_id)?.name ?? t.agent_id}</td>
          <td>
            <code>{t.prefix}…</code>
          </td>
          <td title={full(t.created_at)}>{ago(t.created_at)}</td>
          <td>{t.last_used_at ? ago(t.last_used_at) : <span class="muted">never</span>}</td>
          <td>
            <button type="button" class="btn small danger-outline" onClick={() => revoke(t)}>
              Revoke
            </button>
          </td>
        </tr>
      ))}
      {!tokens.length && (
        <tr>
          <td colSpan={6} class="muted">
            No tokens.
          </td>
        </tr>
      )}
      </DataTable>
    </section>
  );
}
