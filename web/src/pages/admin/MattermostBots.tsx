// The Mattermost bots of the Channels page (MM-1…MM-7): each bot's connection state, live, and the
// form that connects one (server URL + bot token, checked by the server against Mattermost before
// anything is stored), edits it, disables or deletes it. The token is write-only: never shown again.

import { useState } from 'preact/hooks';
import { api, errorText } from '../../api';
import { loadReference, toast } from '../../state';
import type { ComponentChildren } from 'preact';
import type { MattermostChannel, MattermostMode } from '../../types';
import { Modal } from '../../components/common';
import { basicsFields, basicsOf, ChannelBasics } from './ChannelBasics';
import type { Basics } from './ChannelBasics';
import { confirmDelete, ConnectionState, DataTable, FormEnd, usePolledList } from './kit';

const MODE_LABEL: Record<MattermostMode, string> = {
  group: 'Group chat: one conversation per Mattermost channel',
  thread: 'Thread: one conversation per customer post and its thread',
};

/** The Mattermost bots, their states refreshed every few seconds (a bot's socket runs on one node). */
export function MattermostBots({ onChanged }: { onChanged: () => void }) {
  const { list: bots, error, load } = usePolledList<MattermostChannel>('/mattermost-channels');
  const [editing, setEditing] = useState<MattermostChannel | null>(null);
  const changed = () => {
    load();
    onChanged();
  };
  const remove = (b: MattermostChannel) =>
    confirmDelete(`Disconnect the bot ${b.name} and delete its conversations?`, `/mattermost-channels/${b.id}`, changed);
  if (error && !bots) return <p class="form-error">{error}</p>;
  if (!bots) return <p class="muted small">Loading…</p>;
  if (!bots.length) return <p class="muted small">None.</p>;
  return (
    <>
      <DataTable columns={['Name', 'Bot', 'Conversations', 'State']}>
        {bots.map((b) => (
          <tr key={b.id} data-testid="mattermost-bot">
            <td>{b.name}</td>
            <td>
              {b.bot_username ? '@' + b.bot_username : <span class="muted">—</span>}
              <div class="muted small">{b.server_url}</div>
            </td>
            <td>
              {b.mode === 'thread' ? 'Thread' : 'Group chat'}
              {b.mention_only && <div class="muted small">channel posts that mention the bot</div>}
            </td>
            <td>
              <ConnectionState enabled={b.enabled} state={b.state} reason={b.state_reason} testid="mattermost-state" />
            </td>
            <td class="actions">
              <button type="button" class="btn small" onClick={() => setEditing(b)}>
                Settings
              </button>
              <button type="button" class="btn small danger-outline" onClick={() => remove(b)}>
                Delete
              </button>
            </td>
          </tr>
        ))}
      </DataTable>
      {editing && (
        <Modal title={`${editing.name} — settings`} onClose={() => setEditing(null)} wide>
          <MattermostForm bot={editing} onClose={() => setEditing(null)} onSaved={changed} />
        </Modal>
      )}
    </>
  );
}

/** Connect a bot (`bot` null) or edit one. The server checks the token against Mattermost first. */
export function MattermostForm({
  bot,
  kindField,
  onClose,
  onSaved,
}: {
  bot: MattermostChannel | null;
  kindField?: ComponentChildren;
  onClose: () => void;
  onSaved: () => void;
}) {
  const [name, setName] = useState(bot?.name ?? '');
  const [serverUrl, setServerUrl] = useState(bot?.server_url ?? '');
  const [token, setToken] = useState('');
  const [mentionOnly, setMentionOnly] = useState(bot?.mention_only ?? true);
  const [mode, setMode] = useState<MattermostMode>(bot?.mode ?? 'group');
  const [mmTeam, setMmTeam] = useState(bot?.mattermost_team_id ?? '');
  const [basics, setBasics] = useState<Basics>(() => basicsOf(bot));
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError('');
    const { enabled, ...shared } = basicsFields(basics);
    const body: Record<string, unknown> = {
      name,
      mention_only: mentionOnly,
      mode,
      mattermost_team_id: mmTeam.trim() || null,
      ...shared,
    };
    // The server URL is fixed once connected (MM-3): a bot belongs to one server.
    if (!bot) body.server_url = serverUrl.trim();
    if (token) body.bot_token = token;
    if (bot) body.enabled = enabled;
    setBusy(true);
    try {
      if (bot) await api.patch(`/mattermost-channels/${bot.id}`, body);
      else await api.post('/mattermost-channels', body);
      await loadReference();
      toast(bot ? 'Bot saved' : 'Bot connected', 'success');
      onSaved();
      onClose();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="form" onSubmit={submit} data-testid="mattermost-form">
      <div class="grid2">
        {kindField}
        <label class="field">
          <span>Name</span>
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} required maxLength={100} />
        </label>
        <label class="field">
          <span>Mattermost server URL</span>
          <input
            type="url"
            value={serverUrl}
            placeholder="https://chat.example.com"
            onInput={(e) => setServerUrl(e.currentTarget.value)}
            required
            readOnly={!!bot}
            title={bot ? 'A bot stays bound to its server; connect a new bot for another server' : undefined}
          />
        </label>
        <label class="field">
          <span>Bot access token</span>
          <input
            type="password"
            autocomplete="off"
            value={token}
            placeholder={bot ? 'set — enter a new one to change it' : ''}
            onInput={(e) => setToken(e.currentTarget.value)}
            required={!bot}
          />
        </label>
        <label class="field">
          <span>Mattermost team id (for starting conversations)</span>
          <input value={mmTeam} autocomplete="off" onInput={(e) => setMmTeam(e.currentTarget.value)} />
        </label>
      </div>
      <fieldset class="settings">
        <legend>Conversations</legend>
        {(Object.keys(MODE_LABEL) as MattermostMode[]).map((m) => (
          <label key={m} class="check">
            <input type="radio" name="mattermost-mode" value={m} checked={mode === m} onChange={() => setMode(m)} /> {MODE_LABEL[m]}
          </label>
        ))}
        <label class="check">
          <input type="checkbox" checked={mentionOnly} onChange={(e) => setMentionOnly(e.currentTarget.checked)} /> In channels, take only
          posts that mention the bot (direct messages always count)
        </label>
      </fieldset>
      <ChannelBasics idPrefix="mattermost" enabledLabel={bot ? 'Enabled' : undefined} value={basics} onChange={(b) => setBasics({ ...basics, ...b })} />
      <FormEnd error={error} onCancel={onClose} submit={bot ? 'Save' : 'Connect bot'} busy={busy} />
    </form>
  );
}
