// A conversation's activity trail (issue #17 item 4): what was changed on it, by whom and when, from
// GET /conversations/{id}/activity, and the words of each line. Read again whenever the conversation changes
// (its `updated_at` moves: a socket frame or a REST answer), so the trail stays live. Knows nothing of the UI.

import { api } from './api';
import { createStore } from './store';

export type ActivityKind =
  | 'status'
  | 'priority'
  | 'team'
  | 'assignee'
  | 'tags'
  | 'subject'
  | 'custom_field'
  | 'merged_from'
  | 'merged_into'
  | 'chat_ended';

export interface Activity {
  kind: ActivityKind;
  at: string;
  actor: { kind: 'agent' | 'system'; agent_id: number | null; name: string };
  audit_id: number;
  field: string | null;
  from: unknown;
  to: unknown;
  reason: string | null;
  conversation: { id: number; number: number } | null;
}

export const activity = createStore<{ byConv: Record<number, Activity[]> }>({ byConv: {} });

const asked: Record<number, string> = {};

/** Read the trail of conversation `id` (again when `version`, its `updated_at`, moved since the last read). */
export async function loadActivity(id: number, version: string) {
  if (asked[id] === version) return;
  asked[id] = version;
  try {
    const items = await api.get<Activity[]>(`/conversations/${id}/activity`);
    if (asked[id] !== version) return;
    activity.set((s) => ({ byConv: { ...s.byConv, [id]: items } }));
  } catch {
    delete asked[id];
  }
}

export interface Names {
  agent(id: number): string;
  team(id: number): string;
  status(key: string): string;
}

const str = (v: unknown) => (v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v));
const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
const ENDED: Record<string, string> = {
  agent: 'ended the chat',
  inactivity: 'The chat ended: nobody wrote for the inactivity timeout',
  rule: 'An automation rule ended the chat',
};

/** The line's words after the actor's name (`actorFirst`), or the whole sentence. */
export function describe(a: Activity, n: Names): { text: string; actorFirst: boolean } {
  const fromTo = (f: (v: unknown) => string) => (a.from !== undefined && a.from !== null && f(a.from) ? ` from ${f(a.from)}` : '') + ` to ${f(a.to) || 'none'}`;
  switch (a.kind) {
    case 'status':
      return { text: 'changed the status' + fromTo((v) => n.status(str(v))) + (a.reason === 'customer_message' ? ' (the customer wrote)' : a.reason === 'mail_command' ? ' (by a #close# mail)' : ''), actorFirst: true };
    case 'priority':
      return { text: 'changed the priority' + fromTo(str), actorFirst: true };
    case 'team':
      return { text: a.to === null ? 'removed the team' + (a.from ? ` ${n.team(Number(a.from))}` : '') : 'set the team' + fromTo((v) => n.team(Number(v))), actorFirst: true };
    case 'assignee':
      return { text: a.to === null ? 'unassigned it' + (a.from ? ` from ${n.agent(Number(a.from))}` : '') : `assigned it to ${n.agent(Number(a.to))}`, actorFirst: true };
    case 'tags': {
      const before = list(a.from);
      const after = list(a.to);
      const added = after.filter((t) => !before.includes(t));
      const removed = before.filter((t) => !after.includes(t));
      if (a.from === null || a.from === undefined) return { text: `set the tags to ${after.join(', ') || 'none'}`, actorFirst: true };
      const parts = [added.length ? `added the tag${added.length > 1 ? 's' : ''} ${added.join(', ')}` : '', removed.length ? `removed ${removed.join(', ')}` : ''].filter(Boolean);
      return { text: parts.join(' and ') || 'changed the tags', actorFirst: true };
    }
    case 'subject':
      return { text: `changed the subject to “${str(a.to)}”`, actorFirst: true };
    case 'custom_field':
      return { text: a.to === null ? `cleared ${a.field}` : `set ${a.field} to “${str(a.to)}”`, actorFirst: true };
    case 'merged_from':
      return { text: 'merged another conversation into this one', actorFirst: true };
    case 'merged_into':
      return { text: 'merged this conversation into another', actorFirst: true };
    case 'chat_ended':
      return a.reason === 'agent' || !a.reason ? { text: ENDED.agent, actorFirst: true } : { text: ENDED[a.reason] ?? `The chat ended (${a.reason})`, actorFirst: false };
  }
}
