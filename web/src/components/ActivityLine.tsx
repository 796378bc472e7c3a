// One line of a conversation's activity trail (issue #17 item 4), shown between its messages in the timeline:
// who changed what and when; a merge links the other conversation (the merged one's history stays reachable from
// the survivor).

import { clock, full } from '../format';
import { describe, type Activity } from '../activity';
import { agentName, app, statusOf } from '../state';
import { Link } from './common';

const names = {
  agent: (id: number) => agentName(id),
  team: (id: number) => app.get().teams.find((t) => t.id === id)?.name ?? `team ${id}`,
  status: (key: string) => statusOf(key)?.name ?? key,
};

export function ActivityLine({ a }: { a: Activity }) {
  const { text, actorFirst } = describe(a, names);
  const other = a.conversation;
  const link = other && (
    <Link href={`/tickets/${other.id}`} data-testid="activity-link">
      #{other.number}
    </Link>
  );
  return (
    <div class="activity-line" data-testid="activity" data-kind={a.kind}>
      <span class="activity-text">
        {actorFirst && <strong>{a.actor.name} </strong>}
        {a.kind === 'merged_from' && link ? (
          <>merged {link} into this conversation</>
        ) : a.kind === 'merged_into' && link ? (
          <>merged this conversation into {link}</>
        ) : (
          text
        )}
      </span>
      {' · '}
      <time dateTime={a.at} title={full(a.at)}>
        {clock(a.at)}
      </time>
    </div>
  );
}
