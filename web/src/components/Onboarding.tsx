// The first-run checklist an admin sees on the first screen (issue #17 item 9): connect a channel, invite a teammate,
// send a test message and answer it. Each step is computed by the server (`GET /onboarding`) from what the install
// holds and links to its screen; once every step is done it can be dismissed for good (`POST /onboarding/dismiss`).

import { useEffect, useState } from 'preact/hooks';
import { api, errorText } from '../api';
import { navigate, useLocation } from '../router';
import { app, toast } from '../state';
import { useStore } from '../store';
import { Link } from './common';
import { IconCheck } from './icons';

interface Step {
  key: 'connect_channel' | 'invite_teammate' | 'answer_message';
  done: boolean;
}

interface Checklist {
  steps: Step[];
  complete: boolean;
  dismissed: boolean;
}

/** Start a test conversation on the first custom channel, as a customer would, and open it. */
async function sendTestMessage(channelId: number) {
  try {
    const r = await api.post<{ conversation_id: number }>(`/custom-channels/${channelId}/inbound`, {
      user_custom_id: 'switchboard-test-customer',
      name: 'Test customer',
      content: 'Hello! This is a test message. Answer it to finish the set-up.',
    });
    const channel = app.get().channels.find((c) => c.id === channelId);
    navigate((channel?.mode === 'sync' ? '/chats/' : '/tickets/') + r.conversation_id);
  } catch (e) {
    toast(errorText(e), 'error');
  }
}

export function OnboardingChecklist() {
  const loc = useLocation();
  const channels = useStore(app, (s) => s.channels);
  const [list, setList] = useState<Checklist | null>(null);
  // Shown on the first screens (the lists), not over a conversation or a form.
  const here = loc.path === '/tickets' || loc.path === '/chats';
  useEffect(() => {
    if (!here) return;
    api
      .get<Checklist>('/onboarding')
      .then(setList)
      .catch(() => setList(null));
  }, [loc.path, channels.length]);
  if (!here || !list || list.dismissed) return null;
  const done = (k: Step['key']) => list.steps.find((s) => s.key === k)?.done ?? false;
  const custom = channels.find((c) => c.kind === 'custom' && c.enabled);
  const dismiss = async () => {
    try {
      await api.post('/onboarding/dismiss');
      setList({ ...list, dismissed: true });
    } catch (e) {
      toast(errorText(e), 'error');
    }
  };
  const item = (k: Step['key'], content: preact.ComponentChildren) => (
    <li class={'onboarding-step' + (done(k) ? ' done' : '')} data-step={k} data-done={done(k) ? 'true' : 'false'}>
      <span class="onboarding-mark" aria-hidden="true">
        {done(k) ? <IconCheck size={14} /> : null}
      </span>
      {content}
      {done(k) && <span class="sr-only"> (done)</span>}
    </li>
  );
  return (
    <section class="onboarding" aria-labelledby="onboarding-title" data-testid="onboarding">
      <h2 id="onboarding-title">{list.complete ? 'You are all set' : 'Get started'}</h2>
      <ol>
        {item('connect_channel', <Link href="/admin/channels">Connect a channel</Link>)}
        {item('invite_teammate', <Link href="/admin/agents">Invite a teammate</Link>)}
        {item(
          'answer_message',
          custom && !done('answer_message') ? (
            <button type="button" class="link-btn" onClick={() => sendTestMessage(custom.id)} data-testid="send-test-message">
              Send a test message and answer it
            </button>
          ) : (
            <span>Send a test message and answer it</span>
          ),
        )}
      </ol>
      {list.complete && (
        <button type="button" class="btn small" onClick={dismiss} data-testid="dismiss-onboarding">
          Dismiss
        </button>
      )}
    </section>
  );
}
