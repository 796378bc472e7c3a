// Small formatting helpers.

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const yearFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });

/** "now", "5m", "3h", "Mar 4", "Mar 4, 2024" — compact, for lists. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '';
  const t = Date.parse(iso);
  const s = Math.max(0, (now - t) / 1000);
  if (s < 45) return 'now';
  if (s < 3600) return Math.round(s / 60) + 'm';
  if (s < 86400) return Math.round(s / 3600) + 'h';
  const d = new Date(t);
  return d.getFullYear() === new Date(now).getFullYear() ? dayFmt.format(d) : yearFmt.format(d);
}

export function clock(iso: string): string {
  const d = new Date(iso);
  const today = new Date();
  return d.toDateString() === today.toDateString() ? timeFmt.format(d) : dayFmt.format(d) + ', ' + timeFmt.format(d);
}

export function full(iso: string | null | undefined): string {
  return iso ? fullFmt.format(new Date(iso)) : '';
}

export function bytes(n: number): string {
  if (n < 1024) return n + ' B';
  if (n < 1024 * 1024) return (n / 1024).toFixed(n < 10240 ? 1 : 0) + ' KB';
  return (n / 1024 / 1024).toFixed(1) + ' MB';
}

export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  if (!parts.length) return '?';
  return ((parts[0][0] ?? '') + (parts.length > 1 ? parts[parts.length - 1][0] : '')).toUpperCase();
}

/** A stable hue for an avatar, from a name. */
export function hue(name: string): number {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) % 360;
  return h;
}

export const KIND_LABEL: Record<string, string> = {
  email: 'Email',
  mattermost: 'Mattermost',
  zalo: 'Zalo',
  custom: 'Custom',
  web: 'Web portal',
};

export const CSAT_LABEL: Record<string, string> = { good: 'Good', average: 'Average', bad: 'Bad' };

export function titleOf(c: { subject: string; customer_name: string; mode: string }): string {
  if (c.subject) return c.subject;
  return (c.mode === 'sync' ? 'Chat with ' : 'Conversation with ') + c.customer_name;
}

export function listJoin(names: string[]): string {
  if (names.length <= 1) return names[0] ?? '';
  return names.slice(0, -1).join(', ') + ' and ' + names[names.length - 1];
}
