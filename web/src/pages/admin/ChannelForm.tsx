// A channel's settings form for the kinds with free-form settings (custom channels), and the
// kind picker of a new channel (email switches to the mailbox form, Mattermost to the bot form, Zalo to the Official
// Account form). Only the offered kinds are listed (#14 item 12).

import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { api, errorText } from '../../api';
import { KIND_LABEL } from '../../format';
import { loadReference, toast } from '../../state';
import { OFFERED_KINDS } from '../../types';
import type { Channel, ChannelKind, OfferedKind } from '../../types';
import { MailboxForm } from './MailboxForm';
import { MattermostForm } from './MattermostBots';
import { ZaloForm } from './ZaloChannels';
import { basicsFields, basicsOf, ChannelBasics } from './ChannelBasics';
import type { Basics } from './ChannelBasics';
import { FormEnd } from './kit';
import { CustomChannelForm, CustomChannelIntegration } from './CustomChannelForm';
import type { CustomChannel } from './CustomChannelForm';

/** Kinds configured with free-form settings; mailboxes, Mattermost bots and Zalo accounts have their own forms and APIs. */
export type GenericKind = Exclude<OfferedKind, 'email' | 'mattermost' | 'zalo'>;

/** Suggested settings per kind (the admin may add others). Secret ones are never sent back. */
const KIND_FIELDS: Record<GenericKind, { key: string; label: string; type?: string; secret?: boolean }[]> = {
  custom: [{ key: 'webhook_url', label: 'Webhook URL (agent replies are POSTed here)', type: 'url' }],
};
const MASK = '********';

/** The kind picker of a new channel's dialog: email switches to the mailbox form. */
export function KindField({ kind, onChange, disabled }: { kind: ChannelKind; onChange?: (k: OfferedKind) => void; disabled?: boolean }) {
  return (
    <label class="field">
      <span>Kind</span>
      <select value={kind} onChange={(e) => onChange?.(e.currentTarget.value as OfferedKind)} disabled={disabled}>
        {OFFERED_KINDS.map((k) => (
          <option key={k} value={k}>
            {KIND_LABEL[k]}
          </option>
        ))}
      </select>
    </label>
  );
}

/** Adding a channel: the generic form, or the kind's own form (mailbox, Mattermost bot, Zalo account). */
export function NewChannel({ onClose, onSaved }: { onClose: () => void; onSaved: () => void }) {
  const [kind, setKind] = useState<OfferedKind>('custom');
  const [created, setCreated] = useState<CustomChannel | null>(null);
  const kindField = <KindField kind={kind} onChange={setKind} />;
  if (created) return <CustomChannelIntegration channel={created} onClose={onClose} />;
  return kind === 'email' ? (
    <MailboxForm mailbox={null} kindField={kindField} onClose={onClose} onSaved={onSaved} />
  ) : kind === 'mattermost' ? (
    <MattermostForm bot={null} kindField={kindField} onClose={onClose} onSaved={onSaved} />
  ) : kind === 'zalo' ? (
    <ZaloForm zalo={null} kindField={kindField} onClose={onClose} onSaved={onSaved} />
  ) : (
    <CustomChannelForm channel={null} kindField={kindField} onClose={onClose} onCreated={setCreated} />
  );
}

export function ChannelForm({ channel, kind, kindField, onClose }: { channel: Channel | null; kind: GenericKind; kindField: ComponentChildren; onClose: () => void }) {
  const [name, setName] = useState(channel?.name ?? '');
  const [mode, setMode] = useState(channel?.mode ?? 'sync');
  const [basics, setBasics] = useState<Basics>(() => basicsOf(channel));
  const original = (channel?.settings ?? {}) as Record<string, unknown>;
  const [settings, setSettings] = useState<Record<string, string>>(
    Object.fromEntries(Object.entries(original).map(([k, v]) => [k, v === MASK ? '' : typeof v === 'string' ? v : JSON.stringify(v)])),
  );
  const [touched, setTouched] = useState(false);
  const [extraKey, setExtraKey] = useState('');
  const [error, setError] = useState('');
  const fields = KIND_FIELDS[kind];
  const extra = Object.keys(settings).filter((k) => !fields.some((f) => f.key === k));
  const masked = Object.entries(original).filter(([, v]) => v === MASK).map(([k]) => k);
  const setField = (k: string, v: string) => {
    setTouched(true);
    setSettings({ ...settings, [k]: v });
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setError('');
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(settings)) {
      if (v === '') continue;
      const f = fields.find((x) => x.key === k);
      out[k] = f?.type === 'number' && /^\d+$/.test(v) ? Number(v) : v === 'true' ? true : v === 'false' ? false : v;
    }
    const { default_team_id, ...rest } = basicsFields(basics);
    const body: Record<string, unknown> = { name, ...rest };
    if (channel) {
      body.default_team_id = default_team_id;
      if (touched) {
        const lost = masked.filter((k) => !settings[k]);
        if (lost.length) {
          setError(`Secrets are never shown again: re-enter ${lost.join(', ')} to save changed settings, or close without saving.`);
          return;
        }
        body.settings = out;
      }
      if (kind === 'custom') body.mode = mode;
    } else {
      body.kind = kind;
      body.settings = out;
      if (default_team_id !== null) body.default_team_id = default_team_id;
      if (kind === 'custom') body.mode = mode;
    }
    try {
      if (channel) await api.patch(`/channels/${channel.id}`, body);
      else await api.post('/channels', body);
      await loadReference();
      toast(channel ? 'Channel saved' : 'Channel created', 'success');
      onClose();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <form class="form" onSubmit={submit}>
      <div class="grid2">
        {kindField}
        <label class="field">
          <span>Name</span>
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} required maxLength={100} />
        </label>
        <label class="field">
          <span>Type</span>
          <select value={kind === 'custom' ? mode : 'sync'} onChange={(e) => setMode(e.currentTarget.value as 'sync' | 'async')} disabled={kind !== 'custom'}>
            <option value="sync">Chat (sync)</option>
            <option value="async">Ticket (async)</option>
          </select>
        </label>
      </div>
      <fieldset class="settings">
        <legend>{KIND_LABEL[kind]} settings</legend>
        <div class="grid2">
          {fields.map((f) => (
            <label key={f.key} class="field">
              <span>{f.label}</span>
              <input
                type={(f.secret ? 'password' : f.type ?? 'text') as 'text'}
                autocomplete="off"
                value={settings[f.key] ?? ''}
                placeholder={f.secret && masked.includes(f.key) ? 'set — re-enter to change' : ''}
                onInput={(e) => setField(f.key, e.currentTarget.value)}
              />
            </label>
          ))}
          {extra.map((k) => (
            <label key={k} class="field">
              <span>{k}</span>
              <input value={settings[k]} placeholder={masked.includes(k) ? 'set — re-enter to change' : ''} onInput={(e) => setField(k, e.currentTarget.value)} />
            </label>
          ))}
        </div>
        <div class="row">
          <input aria-label="Another setting's name" placeholder="another setting" value={extraKey} onInput={(e) => setExtraKey(e.currentTarget.value)} />
          <button
            type="button"
            class="btn small"
            disabled={!extraKey.trim()}
            onClick={() => {
              setField(extraKey.trim(), '');
              setExtraKey('');
            }}
          >
            Add setting
          </button>
        </div>
      </fieldset>
      <ChannelBasics idPrefix="channel" chat={kind !== 'custom' || mode === 'sync'} enabledLabel="Enabled" value={basics} onChange={(b) => setBasics({ ...basics, ...b })} />
      <FormEnd error={error} onCancel={onClose} submit={channel ? 'Save' : 'Create channel'} />
    </form>
  );
}
