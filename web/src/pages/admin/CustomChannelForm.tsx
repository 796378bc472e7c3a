// A custom channel's form (issue #17 item 8), on the custom-channel API (`/custom-channels`): name, type, webhook
// URL, and the routing the API has — default team, priority, status and tags of new conversations, and who they are
// assigned to (nobody, round-robin among agents and teams, the customer's owner). After creating, the integration
// panel shows what an integrator needs: the channel id, the signing secret (once, with copy and rotate), the inbound
// URL and curl examples for the inbound call and for checking the reply webhook's signature.

import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, errorText } from '../../api';
import { app, loadReference, toast } from '../../state';
import { useStore } from '../../store';
import type { Channel } from '../../types';
import { ChannelBasics, basicsFields, basicsOf } from './ChannelBasics';
import type { Basics } from './ChannelBasics';
import { CopyField, FormEnd } from './kit';

type AssignMode = 'nobody' | 'round_robin' | 'owner';

interface Routing {
  team_id?: number;
  priority?: string;
  status?: string;
  tags?: string[];
  assign?: { mode: AssignMode; agent_ids?: number[]; team_ids?: number[] };
}

/** The channel as `/custom-channels` answers it; `secret` only in the answers to create and rotate. */
export interface CustomChannel {
  id: number;
  name: string;
  webhook_url: string;
  type: 'sync' | 'async';
  enabled: boolean;
  secret?: string;
  routing: Routing;
  inactivity_timeout_s: number;
}

const PRIORITIES = ['low', 'normal', 'high', 'urgent'];

function Checks<T extends { id: number; name: string }>({ legend, items, value, onChange }: { legend: string; items: T[]; value: number[]; onChange: (v: number[]) => void }) {
  return (
    <fieldset class="checks">
      <legend>{legend}</legend>
      {items.map((i) => (
        <label key={i.id} class="check">
          <input
            type="checkbox"
            checked={value.includes(i.id)}
            onChange={(e) => onChange(e.currentTarget.checked ? [...value, i.id] : value.filter((x) => x !== i.id))}
          />{' '}
          {i.name}
        </label>
      ))}
      {!items.length && <p class="muted small">None yet.</p>}
    </fieldset>
  );
}

/** New (`channel` null) or existing custom channel. `onCreated` gets the new channel, secret included. */
export function CustomChannelForm({
  channel,
  kindField,
  onClose,
  onCreated,
}: {
  channel: Channel | null;
  kindField: ComponentChildren;
  onClose: () => void;
  onCreated?: (c: CustomChannel) => void;
}) {
  const agents = useStore(app, (s) => s.agents);
  const teams = useStore(app, (s) => s.teams);
  const statuses = useStore(app, (s) => s.statuses);
  const [loaded, setLoaded] = useState(!channel);
  const [name, setName] = useState(channel?.name ?? '');
  const [mode, setMode] = useState<'sync' | 'async'>(channel?.mode ?? 'sync');
  const [webhook, setWebhook] = useState('');
  const [basics, setBasics] = useState<Basics>(() => basicsOf(channel));
  const [priority, setPriority] = useState('');
  const [status, setStatus] = useState('');
  const [tags, setTags] = useState('');
  const [assign, setAssign] = useState<AssignMode>('nobody');
  const [rrAgents, setRrAgents] = useState<number[]>([]);
  const [rrTeams, setRrTeams] = useState<number[]>([]);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!channel) return;
    api
      .get<CustomChannel>(`/custom-channels/${channel.id}`)
      .then((c) => {
        setWebhook(c.webhook_url);
        const r = c.routing ?? {};
        setPriority(r.priority ?? '');
        setStatus(r.status ?? '');
        setTags((r.tags ?? []).join(', '));
        setAssign(r.assign?.mode ?? 'nobody');
        setRrAgents(r.assign?.agent_ids ?? []);
        setRrTeams(r.assign?.team_ids ?? []);
        setLoaded(true);
      })
      .catch((e) => setError(errorText(e)));
  }, [channel?.id]);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError('');
    const b = basicsFields(basics);
    const routing: Routing = { assign: { mode: assign } };
    if (b.default_team_id !== null) routing.team_id = b.default_team_id;
    if (priority) routing.priority = priority;
    if (status) routing.status = status;
    const tagList = tags.split(',').map((t) => t.trim()).filter(Boolean);
    if (tagList.length) routing.tags = tagList;
    if (assign === 'round_robin') routing.assign = { mode: assign, agent_ids: rrAgents, team_ids: rrTeams };
    const body: Record<string, unknown> = { name, type: mode, webhook_url: webhook, routing };
    if (mode === 'sync') body.inactivity_timeout_s = b.inactivity_timeout_s;
    setBusy(true);
    try {
      if (channel) {
        await api.patch(`/custom-channels/${channel.id}`, { ...body, enabled: b.enabled });
        toast('Channel saved', 'success');
        await loadReference();
        onClose();
      } else {
        const created = await api.post<CustomChannel>('/custom-channels', body);
        await loadReference();
        toast('Channel created', 'success');
        onCreated?.(created);
      }
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };
  if (!loaded) return error ? <p class="form-error">{error}</p> : <p class="muted">Loading the channel…</p>;
  return (
    <form class="form" onSubmit={submit} data-testid="custom-channel-form">
      <div class="grid2">
        {kindField}
        <label class="field">
          <span>Name</span>
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} required maxLength={100} />
        </label>
        <label class="field">
          <span>Type</span>
          <select value={mode} onChange={(e) => setMode(e.currentTarget.value as 'sync' | 'async')}>
            <option value="sync">Chat (sync)</option>
            <option value="async">Ticket (async)</option>
          </select>
        </label>
        <label class="field">
          <span>Webhook URL (agent replies are POSTed here)</span>
          <input type="url" value={webhook} onInput={(e) => setWebhook(e.currentTarget.value)} required placeholder="https://app.example.com/switchboard" />
        </label>
      </div>
      <ChannelBasics idPrefix="custom" chat={mode === 'sync'} enabledLabel={channel ? 'Enabled' : undefined} value={basics} onChange={(p) => setBasics({ ...basics, ...p })}>
        <div class="grid2">
          <label class="field">
            <span>Priority of new conversations</span>
            <select value={priority} onChange={(e) => setPriority(e.currentTarget.value)}>
              <option value="">Default (normal)</option>
              {PRIORITIES.map((p) => (
                <option key={p} value={p}>
                  {p}
                </option>
              ))}
            </select>
          </label>
          <label class="field">
            <span>Status of new conversations</span>
            <select value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
              <option value="">Default (open)</option>
              {statuses.map((s) => (
                <option key={s.key} value={s.key}>
                  {s.name}
                </option>
              ))}
            </select>
          </label>
          <label class="field">
            <span>Tags of new conversations (comma-separated)</span>
            <input value={tags} onInput={(e) => setTags(e.currentTarget.value)} placeholder="app, vip" />
          </label>
          <label class="field">
            <span>Assign new conversations to</span>
            <select value={assign} onChange={(e) => setAssign(e.currentTarget.value as AssignMode)} data-testid="assign-mode">
              <option value="nobody">Nobody (anyone takes them)</option>
              <option value="round_robin">Round-robin among online agents</option>
              <option value="owner">The customer's owner</option>
            </select>
          </label>
        </div>
        {assign === 'round_robin' && (
          <div class="grid2">
            <Checks legend="Round-robin agents" items={agents.filter((a) => a.active)} value={rrAgents} onChange={setRrAgents} />
            <Checks legend="Round-robin teams (their members)" items={teams} value={rrTeams} onChange={setRrTeams} />
          </div>
        )}
        {assign === 'owner' && <p class="muted small">An owner who is offline is also emailed (through the first enabled mailbox).</p>}
      </ChannelBasics>
      <FormEnd error={error} onCancel={onClose} submit={channel ? 'Save' : 'Create channel'} busy={busy} />
    </form>
  );
}

/** What an integrator needs: the id, the secret (when just created or rotated), the inbound URL, curl examples. */
export function CustomChannelIntegration({ channel, onClose }: { channel: { id: number; name: string; secret?: string }; onClose: () => void }) {
  const [secret, setSecret] = useState(channel.secret ?? '');
  const [busy, setBusy] = useState(false);
  const inbound = `${location.origin}/api/v1/custom-channels/${channel.id}/inbound`;
  const rotate = async () => {
    if (!confirm('Replace the signing secret? The old one stops working at once.')) return;
    setBusy(true);
    try {
      const c = await api.post<CustomChannel>(`/custom-channels/${channel.id}/secret`);
      setSecret(c.secret ?? '');
      toast('New signing secret', 'success');
    } catch (e) {
      toast(errorText(e), 'error');
    } finally {
      setBusy(false);
    }
  };
  const curl = `curl -X POST '${inbound}' \\
  -H "Authorization: Bearer $SWITCHBOARD_TOKEN" \\
  -H 'Content-Type: application/json' \\
  -d '{"user_custom_id": "u-42", "name": "Kim", "content": "Hello from my app"}'`;
  const verify = `# Check a reply webhook: HMAC-SHA256 of "{X-Switchboard-Timestamp}.{raw body}" with the secret
expected="sha256=$(printf '%s.%s' "$TIMESTAMP" "$BODY" | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.*= //')"
[ "$expected" = "$X_SWITCHBOARD_SIGNATURE" ] && echo valid`;
  return (
    <div class="integration" data-testid="custom-channel-integration">
      <div class="grid2">
        <CopyField id="cc-id" label="Channel id" value={String(channel.id)} />
        <CopyField id="cc-inbound" label="Inbound URL" value={inbound} />
      </div>
      {secret ? (
        <>
          <CopyField id="cc-secret" label="Signing secret" value={secret} />
          <p class="muted small" role="note">
            Copy it now: it is shown only once. It signs every reply POSTed to your webhook (header X-Switchboard-Signature).
          </p>
        </>
      ) : (
        <p class="muted small">The signing secret was shown when the channel was created. Rotate it to get a new one.</p>
      )}
      <button type="button" class="btn small" onClick={rotate} disabled={busy} data-testid="rotate-secret">
        Rotate secret
      </button>
      <h3 class="small-heading">Send a customer message</h3>
      <p class="muted small">
        With an API token (Administration → API tokens) in <code>SWITCHBOARD_TOKEN</code>:
      </p>
      <pre class="code-block" data-testid="curl-example">
        <code>{curl}</code>
      </pre>
      <h3 class="small-heading">Check the reply webhook's signature</h3>
      <pre class="code-block">
        <code>{verify}</code>
      </pre>
      <div class="form-end">
        <button type="button" class="btn primary" onClick={onClose}>
          Done
        </button>
      </div>
    </div>
  );
}
