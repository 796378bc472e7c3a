// Administration: one page per resource (web/src/pages/admin/: agents, teams, statuses, channels with
// their mailboxes, API tokens, email notifications and their templates), behind one tab bar.

import { useEffect } from 'preact/hooks';
import { loadReference } from '../state';
import { Link } from '../components/common';
import { Agents } from './admin/Agents';
import { Teams } from './admin/Teams';
import { Statuses } from './admin/Statuses';
import { Channels } from './admin/Channels';
import { Tokens } from './admin/Tokens';
import { Templates } from './admin/Templates';
import { Notifications } from './admin/Notifications';

const TABS = [
  ['agents', 'Agents'],
  ['teams', 'Teams'],
  ['statuses', 'Statuses'],
  ['channels', 'Channels'],
  ['tokens', 'API tokens'],
  ['templates', 'Notification templates'],
  ['notifications', 'Notifications'],
] as const;

export function AdminPage({ tab }: { tab: string }) {
  const current = TABS.find(([k]) => k === tab)?.[0] ?? 'agents';
  useEffect(() => {
    loadReference();
  }, []);
  return (
    <div class="page">
      <h1>Administration</h1>
      <nav class="tabs" aria-label="Administration">
        {TABS.map(([k, label]) => (
          <Link key={k} href={'/admin/' + k} class={'tab' + (k === current ? ' active' : '')} aria-current={k === current ? 'page' : undefined}>
            {label}
          </Link>
        ))}
      </nav>
      {current === 'agents' && <Agents />}
      {current === 'teams' && <Teams />}
      {current === 'statuses' && <Statuses />}
      {current === 'channels' && <Channels />}
      {current === 'tokens' && <Tokens />}
      {current === 'templates' && <Templates />}
      {current === 'notifications' && <Notifications />}
    </div>
  );
}
