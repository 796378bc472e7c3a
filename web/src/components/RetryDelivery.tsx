// The Retry button of a reply that was not delivered (issue #17 item 5): the failed delivery is queued again on the
// server (one path: the outbox and its dispatcher), and the message's mark follows live (pending, then sent or failed
// again with the new reason).

import { useState } from 'preact/hooks';
import { api, errorText } from '../api';
import { replaceMessage, toast } from '../state';
import type { Message } from '../types';

export function RetryButton({ m }: { m: Message }) {
  const [busy, setBusy] = useState(false);
  const retry = async () => {
    setBusy(true);
    try {
      const updated = await api.post<Message>(`/conversations/${m.conversation_id}/messages/${m.id}/retry`);
      replaceMessage(m.conversation_id, updated);
    } catch (e) {
      toast(errorText(e), 'error');
    } finally {
      setBusy(false);
    }
  };
  return (
    <button type="button" class="btn small retry-delivery" onClick={retry} disabled={busy} data-testid="retry-delivery">
      {busy ? 'Retrying…' : 'Retry'}
    </button>
  );
}
