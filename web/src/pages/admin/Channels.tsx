// Administration › Channels: mailboxes first, then Mattermost bots, then Zalo Official Accounts, then the other offered
// kinds, each with its settings and delivery log.

import { useState } from 'preact/hooks';
import { errorText } from '../../api';
import { KIND_LABEL } from '../../format';
import { app, loadReference, toast } from '../../state';
import { useStore } from '../../store';
import { OFFERED_KINDS } from '../../types';
import type { Channel } from '../../types';
import { Modal } from '../../components/common';
import { ChannelForm, KindField, NewChannel } from './ChannelForm';
import type { GenericKind } from './ChannelForm';
import { CustomChannelForm, CustomChannelIntegration } from './CustomChannelForm';
import { Deliveries } from './Deliveries';
import { Mailboxes } from './Mailboxes';
import { MattermostBots } from './MattermostBots';
import { ZaloChannels } from './ZaloChannels';
import { confirmDelete, DataTable, SectionHead } from './kit';

export function Channels() {
  const channels = useStore(app, (s) => s.channels);
  const [editing, setEditing] = useState<Channel | null | 'new'>(null);
  const [log, setLog] = useState<Channel | null>(null);
  const [integration, setIntegration] = useState<Channel | null>(null);
  const remove = async (c: Channel) => {
    await confirmDelete(`Delete the channel ${c.name} and its conversations?`, `/channels/${c.id}`, loadReference);
  };
  const kinds: GenericKind[] = OFFERED_KINDS.filter((k): k is GenericKind => k !== 'email' && k !== 'mattermost' && k !== 'zalo');
  const reload = () => {
    loadReference().catch((e) => toast(errorText(e), 'error'));
  };
  return (
    <section>
      <SectionHead title="Channels" action="Add channel" onAction={() => setEditing('new')} />
      <div class="kind-group">
        <h3>{KIND_LABEL.email}</h3>
        <Mailboxes channels={channels.filter((c) => c.kind === 'email')} onChanged={reload} />
      </div>
      <div class="kind-group">
        <h3>{KIND_LABEL.mattermost}</h3>
        <MattermostBots onChanged={reload} />
      </div>
      <div class="kind-group">
        <h3>{KIND_LABEL.zalo}</h3>
        <ZaloChannels onChanged={reload} />
      </div>
      <div class="kind-group" data-testid="web-channels">
        <h3>{KIND_LABEL.web}</h3>
        {channels.some((c) => c.kind === 'web') ? (
          <DataTable columns={['Name', 'Type', 'State']}>
            {channels
              .filter((c) => c.kind === 'web')
              .map((c) => (
                <tr key={c.id}>
                  <td>{c.name}</td>
                  <td>Ticket</td>
                  <td>{c.enabled ? <span class="pill status-open">enabled</span> : <span class="pill status-closed">disabled</span>}</td>
                </tr>
              ))}
          </DataTable>
        ) : null}
        <p class="muted small">
          Tickets customers open in the <a href="/portal">customer portal</a>. The channel is created when the portal is first used; give
          agents access to it like to any channel.
        </p>
      </div>
      {kinds.map((k) => {
        const list = channels.filter((c) => c.kind === k);
        return (
          <div key={k} class="kind-group">
            <h3>{KIND_LABEL[k]}</h3>
            {!list.length ? (
              <p class="muted small">None.</p>
            ) : (
              <DataTable columns={['Name', 'Type', 'State', 'Idle chats end after']}>
              {list.map((c) => (
                <tr key={c.id}>
                  <td>{c.name}</td>
                  <td>{c.mode === 'sync' ? 'Chat' : 'Ticket'}</td>
                  <td>
                    {c.enabled ? <span class="pill status-open">enabled</span> : <span class="pill status-closed">disabled</span>}
                    {c.disabled_reason && <span class="form-error inline"> {c.disabled_reason}</span>}
                  </td>
                  <td>{c.mode === 'sync' ? Math.round(c.inactivity_timeout_s / 60) + ' min' : '—'}</td>
                  <td class="actions">
                    <button type="button" class="btn small" onClick={() => setEditing(c)}>
                      Settings
                    </button>
                    {c.kind === 'custom' && (
                      <button type="button" class="btn small" onClick={() => setIntegration(c)}>
                        Integration
                      </button>
                    )}
                    <button type="button" class="btn small" onClick={() => setLog(c)}>
                      Delivery log
                    </button>
                    <button type="button" class="btn small danger-outline" onClick={() => remove(c)}>
                      Delete
                    </button>
                  </td>
                </tr>
              ))}
              </DataTable>
            )}
          </div>
        );
      })}
      {editing && (
        <Modal title={editing === 'new' ? 'Add a channel' : `${editing.name} — settings`} onClose={() => setEditing(null)} wide>
          {editing === 'new' ? (
            <NewChannel onClose={() => setEditing(null)} onSaved={reload} />
          ) : editing.kind === 'custom' ? (
            <CustomChannelForm channel={editing} kindField={<KindField kind={editing.kind} disabled />} onClose={() => setEditing(null)} />
          ) : (
            <ChannelForm channel={editing} kind={editing.kind as GenericKind} kindField={<KindField kind={editing.kind} disabled />} onClose={() => setEditing(null)} />
          )}
        </Modal>
      )}
      {integration && (
        <Modal title={`${integration.name} — integration`} onClose={() => setIntegration(null)} wide>
          <CustomChannelIntegration channel={integration} onClose={() => setIntegration(null)} />
        </Modal>
      )}
      {log && (
        <Modal title={`${log.name} — delivery log`} onClose={() => setLog(null)} wide>
          <Deliveries channelId={log.id} />
        </Modal>
      )}
    </section>
  );
}
