// A channel's delivery log (its newest outbound deliveries), shown in a dialog; each names its conversation by the
// number agents see, linked.

import { useEffect, useState } from 'preact/hooks';
import { api, errorText } from '../../api';
import { ago, full } from '../../format';
import type { DeliveryLogEntry } from '../../types';
import { Link } from '../../components/common';
import { FormError } from './kit';

export function Deliveries({ channelId }: { channelId: number }) {
  const [rows, setRows] = useState<DeliveryLogEntry[] | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    api
      .get<DeliveryLogEntry[]>(`/channels/${channelId}/deliveries`)
      .then(setRows)
      .catch((e) => setError(errorText(e)));
  }, [channelId]);
  if (error) return <FormError error={error} />;
  if (!rows) return <p class="muted">Loading the delivery log…</p>;
  if (!rows.length) return <p class="muted">Nothing was sent through this channel yet.</p>;
  return (
    <table class="data small">
      <thead>
        <tr>
          <th scope="col">When</th>
          <th scope="col">Conversation</th>
          <th scope="col">State</th>
          <th scope="col">Attempts</th>
          <th scope="col">Last error</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((d) => (
          <tr key={d.id}>
            <td title={full(d.created_at)}>{ago(d.created_at)}</td>
            <td>
              {d.conversation_id ? (
                <Link href={'/tickets/' + d.conversation_id} data-testid="delivery-conversation">
                  #{d.conversation_number ?? d.conversation_id}
                </Link>
              ) : (
                '—'
              )}
            </td>
            <td>
              <span class={'pill delivery-' + d.state}>{d.state}</span>
            </td>
            <td>{d.attempts}</td>
            <td class="small">{d.last_error ?? ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
