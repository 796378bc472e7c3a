// The ticket list (CORE-3, CORE-5, HD-9): async conversations and ended chats, filtered
// (status, channel, assignee, team, tag, priority, text), sorted, and paged from the API while
// only the visible rows are in the DOM, so 10,000 tickets scroll as smoothly as 10. Saved views
// are kept per agent in this browser. Live events refresh the visible pages.
// Triage (issue #17 item 7): each row shows the last message's preview (from the server) and how long the customer
// has waited; every view shows its count (one call, counted by the server in the agent's channels); a compact
// density shows more rows (remembered); J / K work from page load; a search finds live chats too.

import { useEffect, useLayoutEffect, useReducer, useRef, useState } from 'preact/hooks';
import { api, errorText, qs } from '../api';
import { ago, full, titleOf } from '../format';
import { countViews, PHONE, prefs, setDensity, useMedia, useNow, waited, waitingSince } from '../queue';
import { reads, seedUnread } from '../reads';
import { navigate, useLocation } from '../router';
import { agentName, app, channelOf, isAdmin } from '../state';
import { createStore, useStore } from '../store';
import type { Conversation, Page } from '../types';
import { ChannelBadge, Collision, CsatBadge, Empty, Link, PriorityBadge, StatusPill } from '../components/common';
import { ConversationView } from '../components/ConversationView';
import { IconSearch, IconX } from '../components/icons';

/** Row heights: comfortable, compact (more rows per screen), and the phone's two-line cards. */
function rowHeight(compact: boolean, phone: boolean): number {
  if (phone) return compact ? 56 : 76;
  return compact ? 36 : 58;
}
const PER_PAGE = 100;
const OVERSCAN = 8;
const FILTER_KEYS = ['q', 'status', 'channel', 'assignee', 'team', 'tag', 'priority', 'csat', 'sort'] as const;
type Filters = Partial<Record<(typeof FILTER_KEYS)[number], string>>;

function filtersFrom(query: URLSearchParams): Filters {
  const f: Filters = {};
  for (const k of FILTER_KEYS) {
    const v = query.get(k);
    if (v) f[k] = v;
  }
  return f;
}

function searchOf(f: Filters): string {
  return qs(Object.fromEntries(FILTER_KEYS.map((k) => [k, f[k]])));
}

/** The cached list belongs to one agent and one set of filters. */
function listKey(f: Filters): string {
  return (app.get().me?.agent.id ?? 0) + ':' + searchOf(f);
}

// The list survives opening a ticket and coming back, and gives "next conversation" its order.
interface ListCache {
  key: string;
  total: number | null;
  pages: Map<number, Conversation[]>;
  error: string;
}
let cache: ListCache = { key: '\u0000', total: null, pages: new Map(), error: '' };
const meta = createStore<{ key: string; total: number | null }>({ key: '', total: null });
let lastSearch = '';

export function ticketOrder(): number[] {
  const ids: number[] = [];
  const pages = Array.from(cache.pages.keys()).sort((a, b) => a - b);
  for (const p of pages) for (const c of cache.pages.get(p)!) ids.push(c.id);
  return ids;
}

// ---------------------------------------------------------------------------------------------
// Saved views

interface View {
  name: string;
  search: string;
  builtin?: boolean;
}

const BUILTIN: View[] = [
  { name: 'All tickets', search: '', builtin: true },
  { name: 'Open', search: '?status=open', builtin: true },
  { name: 'Pending', search: '?status=pending', builtin: true },
  { name: 'Mine', search: '?assignee=me', builtin: true },
  { name: 'Unassigned', search: '?assignee=none', builtin: true },
  { name: 'Closed', search: '?status=closed', builtin: true },
];

function viewsKey() {
  return 'sb.views.' + (app.get().me?.agent.id ?? 0);
}
function loadViews(): View[] {
  try {
    return JSON.parse(localStorage.getItem(viewsKey()) ?? '[]');
  } catch {
    return [];
  }
}

/** The counts of the views, by view search; refreshed with the list (live events) at most every 1.5 s. */
function useViewCounts(all: View[]): Record<string, number> {
  const [counts, setCounts] = useState<Record<string, number>>({});
  const listVersion = useStore(app, (s) => s.listVersion);
  const searches = Array.from(new Set(all.map((v) => v.search))).sort();
  const key = searches.join('\u0001');
  useEffect(() => {
    const t = window.setTimeout(
      () => {
        const views: Record<string, string> = {};
        for (const q of searches) views[q || '?'] = q.replace(/^\?/, '').replace(/(^|&)sort=[^&]*/g, '');
        countViews(views)
          .then((got) => setCounts(Object.fromEntries(searches.map((q) => [q, got[q || '?']]))))
          .catch(() => undefined);
      },
      Object.keys(counts).length ? 1500 : 0,
    );
    return () => window.clearTimeout(t);
  }, [key, listVersion]);
  return counts;
}

function Views({ search }: { search: string }) {
  const [views, setViews] = useState<View[]>(loadViews);
  const [naming, setNaming] = useState(false);
  const [name, setName] = useState('');
  const save = (list: View[]) => {
    localStorage.setItem(viewsKey(), JSON.stringify(list));
    setViews(list);
  };
  const submit = (e: Event) => {
    e.preventDefault();
    const n = name.trim();
    if (!n) return;
    save([...views.filter((v) => v.name !== n), { name: n, search }]);
    setNaming(false);
    setName('');
  };
  const all = [...BUILTIN, ...views];
  const counts = useViewCounts(all);
  const isCurrent = (v: View) => v.search === search;
  return (
    <nav class="views" aria-label="Ticket views">
      <h2 class="views-title">Views</h2>
      <ul>
        {all.map((v) => (
          <li key={(v.builtin ? 'b:' : 'u:') + v.name} class={isCurrent(v) ? 'current' : ''}>
            <Link href={'/tickets' + v.search} aria-current={isCurrent(v) ? 'page' : undefined} data-testid="view-link">
              <span class="view-name">{v.name}</span>
              {counts[v.search] !== undefined && (
                <span class="view-count" data-testid="view-count">
                  <span class="sr-only">: </span>
                  {counts[v.search].toLocaleString()}
                </span>
              )}
            </Link>
            {!v.builtin && (
              <button type="button" class="icon-btn small" aria-label={'Delete view ' + v.name} onClick={() => save(views.filter((x) => x !== v))}>
                <IconX size={12} />
              </button>
            )}
          </li>
        ))}
      </ul>
      {naming ? (
        <form onSubmit={submit} class="save-view">
          <label class="sr-only" for="view-name">
            Name of the view
          </label>
          <input id="view-name" value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="View name" autoFocus maxLength={40} />
          <div class="row">
            <button class="btn small primary" type="submit">
              Save
            </button>
            <button class="btn small" type="button" onClick={() => setNaming(false)}>
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <button type="button" class="btn small block" onClick={() => setNaming(true)} disabled={all.some(isCurrent)} title="Save the current filters as a view">
          Save current filters
        </button>
      )}
    </nav>
  );
}

// ---------------------------------------------------------------------------------------------
// Filters

function DensityToggle() {
  const compact = useStore(prefs, (s) => s.density === 'compact');
  return (
    <button
      type="button"
      class="btn small"
      aria-pressed={compact}
      onClick={() => setDensity(compact ? 'comfortable' : 'compact')}
      title="More rows per screen"
      data-testid="density-toggle"
    >
      Compact rows
    </button>
  );
}

function FilterBar({ f }: { f: Filters }) {
  const m = useStore(meta, (s) => s);
  const total = m.key === listKey(f) ? m.total : null;
  const statuses = useStore(app, (s) => s.statuses);
  const channels = useStore(app, (s) => s.channels);
  const agents = useStore(app, (s) => s.agents);
  const teams = useStore(app, (s) => s.teams);
  const [q, setQ] = useState(f.q ?? '');
  const [tag, setTag] = useState(f.tag ?? '');
  const qRef = useRef<HTMLInputElement>(null);
  useEffect(() => setQ(f.q ?? ''), [f.q]);
  useEffect(() => setTag(f.tag ?? ''), [f.tag]);
  const set = (k: keyof Filters, v: string, replace = false) => {
    const next = { ...f, [k]: v || undefined };
    navigate('/tickets' + searchOf(next), { replace });
  };
  useEffect(() => {
    if ((f.q ?? '') === q) return;
    const t = window.setTimeout(() => set('q', q.trim(), true), 300);
    return () => window.clearTimeout(t);
  }, [q]);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (e.key === '/' && !t.closest('input, textarea, select, [contenteditable="true"]')) {
        e.preventDefault();
        qRef.current?.focus();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  const any = FILTER_KEYS.some((k) => k !== 'sort' && f[k]);
  return (
    <div class="filters" role="search">
      <div class="filters-row">
      <div class="search-box">
        <IconSearch size={16} />
        <label class="sr-only" for="ticket-search">
          Search tickets and chats
        </label>
        <input
          id="ticket-search"
          ref={qRef}
          type="search"
          placeholder="Search tickets and chats: subject, messages, customer, #number  ( / )"
          value={q}
          onInput={(e) => setQ(e.currentTarget.value)}
          onKeyDown={(e) => e.key === 'Enter' && set('q', q.trim(), true)}
        />
      </div>
      {any && (
        <button type="button" class="btn small" onClick={() => navigate('/tickets' + (f.sort ? '?sort=' + f.sort : ''))}>
          Clear filters
        </button>
      )}
      <span class="grow" />
      <span class="muted small" aria-live="polite" data-testid="ticket-total">
        {total === null ? '' : `${total.toLocaleString()} ${total === 1 ? 'ticket' : 'tickets'}`}
      </span>
      <DensityToggle />
      </div>
      <div class="filters-row">
      <select aria-label="Status" value={f.status ?? ''} onChange={(e) => set('status', e.currentTarget.value)} data-testid="filter-status">
        <option value="">Any status</option>
        <option value={statuses.filter((s) => s.base !== 'closed').map((s) => s.key).join(',')}>Not closed</option>
        {statuses.map((s) => (
          <option key={s.key} value={s.key}>
            {s.name}
          </option>
        ))}
      </select>
      <select aria-label="Channel" value={f.channel ?? ''} onChange={(e) => set('channel', e.currentTarget.value)}>
        <option value="">Any channel</option>
        {channels.map((c) => (
          <option key={c.id} value={c.id}>
            {c.name}
          </option>
        ))}
      </select>
      <select aria-label="Assignee" value={f.assignee ?? ''} onChange={(e) => set('assignee', e.currentTarget.value)}>
        <option value="">Anyone</option>
        <option value="me">Me</option>
        <option value="none">Unassigned</option>
        {agents.map((a) => (
          <option key={a.id} value={a.id}>
            {a.name}
          </option>
        ))}
      </select>
      <select aria-label="Team" value={f.team ?? ''} onChange={(e) => set('team', e.currentTarget.value)}>
        <option value="">Any team</option>
        {teams.map((t) => (
          <option key={t.id} value={t.id}>
            {t.name}
          </option>
        ))}
      </select>
      <select aria-label="Priority" value={f.priority ?? ''} onChange={(e) => set('priority', e.currentTarget.value)}>
        <option value="">Any priority</option>
        <option value="urgent">Urgent</option>
        <option value="high">High</option>
        <option value="normal">Normal</option>
        <option value="low">Low</option>
      </select>
      <select aria-label="Customer rating" value={f.csat ?? ''} onChange={(e) => set('csat', e.currentTarget.value)} data-testid="filter-csat">
        <option value="">Any rating</option>
        <option value="good">Rated good</option>
        <option value="average">Rated average</option>
        <option value="bad">Rated bad</option>
        <option value="none">Not rated</option>
      </select>
      <form
        class="tag-filter"
        onSubmit={(e) => {
          e.preventDefault();
          set('tag', tag.trim());
        }}
      >
        <label class="sr-only" for="tag-filter">
          Tag
        </label>
        <input id="tag-filter" placeholder="Tag" value={tag} onInput={(e) => setTag(e.currentTarget.value)} onBlur={() => (f.tag ?? '') !== tag.trim() && set('tag', tag.trim())} />
      </form>
      <select aria-label="Sort" value={f.sort ?? 'updated_desc'} onChange={(e) => set('sort', e.currentTarget.value === 'updated_desc' ? '' : e.currentTarget.value)}>
        <option value="updated_desc">Latest activity</option>
        <option value="updated_asc">Oldest activity</option>
        <option value="created_desc">Newest first</option>
        <option value="created_asc">Oldest first</option>
        <option value="waiting_longest">Longest waiting</option>
      </select>
      </div>
    </div>
  );
}

// ---------------------------------------------------------------------------------------------
// The virtualised list

function apiQuery(f: Filters, page: number) {
  return (
    '/conversations' +
    qs({
      q: f.q,
      status: f.status,
      channel: f.channel,
      assignee: f.assignee,
      team: f.team,
      tag: f.tag,
      priority: f.priority,
      csat: f.csat,
      sort: f.sort,
      // A search finds live chats too (issue #17 item 7); the list itself holds tickets and ended chats.
      show_active_chats: f.q ? true : undefined,
      page,
      per_page: PER_PAGE,
    })
  );
}

let firstPaintMarked = false;

// The first page of the list is asked for while the app is still finding out who is signed in,
// so a cold load of /tickets does not wait for one round trip after another.
let prefetched: { search: string; page: Promise<Page<Conversation>> } | null = null;

export function prefetchTickets() {
  if (location.pathname !== '/tickets') return;
  const f = filtersFrom(new URLSearchParams(location.search));
  const page = api.get<Page<Conversation>>(apiQuery(f, 1));
  page.catch(() => undefined);
  prefetched = { search: searchOf(f), page };
}

function takePrefetched(f: Filters, page: number): Promise<Page<Conversation>> | null {
  const p = prefetched;
  prefetched = null;
  return p && page === 1 && p.search === searchOf(f) ? p.page : null;
}

function TicketRow({ c, index, row, now, closed }: { c: Conversation | undefined; index: number; row: number; now: number; closed: Set<string> }) {
  if (!c) {
    return (
      <div class="trow skeleton" role="row" aria-rowindex={index + 2} style={{ top: `${index * row}px`, height: `${row}px` }}>
        <span role="cell" class="skel" />
      </div>
    );
  }
  const channel = channelOf(c.channel_id);
  const waiting = waitingSince(c, closed);
  const unread = useStore(reads, (s) => s.unread[c.id] ?? c.unread ?? 0);
  return (
    <div class={'trow' + (unread > 0 ? ' unread' : '')} role="row" aria-rowindex={index + 2} style={{ top: `${index * row}px`, height: `${row}px` }} data-testid="ticket-row" data-conversation-id={c.id}>
      <span role="cell" class="c-num">
        #{c.number}
      </span>
      <span role="cell" class="c-subject">
        <Link href={(c.active_chat ? '/chats/' : '/tickets/') + c.id} class="row-link" data-index={index}>
          <span class="subject">
            {c.active_chat && <span class="pill live-pill small">Live chat</span>}
            {titleOf(c)}
          </span>
          {unread > 0 && <span class="sr-only" data-testid="ticket-unread"> ({unread} unread)</span>}
          <span class="customer">
            <span class="row-customer">{c.customer_name}</span>
            {c.last_message_preview && (
              <span class="row-preview" data-testid="row-preview">
                {' — '}
                {c.last_message_preview}
              </span>
            )}
            {c.tags.length > 0 && <span class="row-tags">{c.tags.slice(0, 3).map((t) => <span key={t} class="tag small">{t}</span>)}</span>}
          </span>
        </Link>
        <Collision id={c.id} compact />
      </span>
      <span role="cell" class="c-channel">
        <ChannelBadge kind={c.channel_kind} name={channel?.name ?? c.channel_kind} />
      </span>
      <span role="cell" class="c-status">
        <StatusPill status={c.status} />
      </span>
      <span role="cell" class="c-priority">
        <PriorityBadge priority={c.priority} />
        <CsatBadge csat={c.csat} />
      </span>
      <span role="cell" class="c-assignee">
        {c.assignee_id ? agentName(c.assignee_id) : <span class="muted">—</span>}
      </span>
      <span role="cell" class="c-updated" title={full(c.updated_at)}>
        <span class="updated-ago">{ago(c.updated_at, now)}</span>
        {waiting && (
          <span class="wait-chip" data-testid="row-waiting" title={'Waiting for an answer since ' + full(waiting)}>
            <span class="sr-only">, waiting for an answer for </span>
            {waited(waiting, now)}
          </span>
        )}
      </span>
    </div>
  );
}

function TicketList({ f }: { f: Filters }) {
  const key = listKey(f);
  const listVersion = useStore(app, (s) => s.listVersion);
  useStore(app, (s) => s.agents);
  useStore(app, (s) => s.channels);
  const [, rerender] = useReducer((n: number) => n + 1, 0);
  const compact = useStore(prefs, (s) => s.density === 'compact');
  const phone = useMedia(PHONE);
  const ROW = rowHeight(compact, phone);
  const now = useNow(30_000);
  const statuses = useStore(app, (s) => s.statuses);
  const closed = new Set(statuses.filter((x) => x.base === 'closed').map((x) => x.key));
  const scroller = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  const inflight = useRef(new Map<number, number>());
  const gen = useRef(0);

  // The filters of the latest render: a refresh scheduled before a filter change (a live event just before a
  // search) must fetch the list now on screen, not the one it was scheduled for.
  const latest = useRef(f);
  latest.current = f;
  const fetchPage = (page: number, force = false) => {
    if (!force && (cache.pages.has(page) || inflight.current.has(page))) return;
    const g = gen.current;
    inflight.current.set(page, g);
    const now = latest.current;
    const get = () => api.get<Page<Conversation>>(apiQuery(now, page));
    (takePrefetched(now, page)?.catch(get) ?? get())
      .then((res) => {
        if (g !== gen.current) return;
        seedUnread(res.items);
        cache.pages.set(page, res.items);
        cache.total = res.total;
        cache.error = '';
        meta.set({ key: cache.key, total: res.total });
        // Drop pages past the new end (the list shrank).
        const last = Math.max(1, Math.ceil(res.total / PER_PAGE));
        for (const p of Array.from(cache.pages.keys())) if (p > last) cache.pages.delete(p);
        rerender(0);
      })
      .catch((e) => {
        if (g !== gen.current) return;
        cache.error = errorText(e);
        rerender(0);
      })
      .finally(() => {
        if (inflight.current.get(page) === g) inflight.current.delete(page);
      });
  };

  // A new filter: a new list.
  useEffect(() => {
    gen.current++;
    inflight.current.clear();
    if (cache.key !== key) {
      cache = { key, total: null, pages: new Map(), error: '' };
      if (scroller.current) scroller.current.scrollTop = 0;
      setScrollTop(0);
    }
    fetchPage(1, true);
  }, [key]);

  // Live events: refresh the pages on screen, at most twice a second.
  const firstVersion = useRef(listVersion);
  useEffect(() => {
    if (listVersion === firstVersion.current) return;
    const t = window.setTimeout(() => {
      gen.current++;
      inflight.current.clear();
      const pages = visiblePages();
      for (const p of Array.from(cache.pages.keys())) if (!pages.includes(p)) cache.pages.delete(p);
      for (const p of pages) fetchPage(p, true);
    }, 400);
    return () => window.clearTimeout(t);
  }, [listVersion]);

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    setHeight(el.clientHeight);
    return () => ro.disconnect();
  }, []);

  const total = cache.total ?? 0;
  const first = Math.max(0, Math.floor(scrollTop / ROW) - OVERSCAN);
  const last = Math.min(total, Math.ceil((scrollTop + height) / ROW) + OVERSCAN);
  function visiblePages(): number[] {
    const out: number[] = [];
    if (!total) return [1];
    for (let p = Math.floor(first / PER_PAGE) + 1; p <= Math.floor(Math.max(first, last - 1) / PER_PAGE) + 1; p++) out.push(p);
    return out;
  }
  useEffect(() => {
    for (const p of visiblePages()) fetchPage(p);
  }, [first, last, total, key]);

  const rows: preact.JSX.Element[] = [];
  for (let i = first; i < last; i++) {
    const page = cache.pages.get(Math.floor(i / PER_PAGE) + 1);
    rows.push(<TicketRow key={i} index={i} c={page?.[i % PER_PAGE]} row={ROW} now={now} closed={closed} />);
  }

  useEffect(() => {
    if (!firstPaintMarked && cache.total !== null) {
      firstPaintMarked = true;
      requestAnimationFrame(() => {
        performance.mark('switchboard:tickets-painted');
      });
    }
  });

  const onScroll = () => {
    const el = scroller.current;
    if (el) setScrollTop(el.scrollTop);
  };

  // J / K (and the arrows, once in the list) work from page load: with no row focused, the first key focuses the
  // first row on screen (issue #17 item 7).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (t.classList.contains('row-link') || e.ctrlKey || e.metaKey || e.altKey) return;
      if (t.closest('input, textarea, select, [contenteditable="true"], dialog')) return;
      if (e.key !== 'j' && e.key !== 'k') return;
      const el = scroller.current;
      if (!el || !total) return;
      e.preventDefault();
      const top = Math.min(total - 1, Math.ceil(el.scrollTop / ROW));
      (el.querySelector(`.row-link[data-index="${top}"]`) as HTMLElement | null)?.focus();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [total, ROW]);

  // Arrow keys move between rows; the list scrolls so the focused row is in view.
  const onKeyDown = (e: KeyboardEvent) => {
    const t = e.target as HTMLElement;
    if (!t.classList.contains('row-link')) return;
    const i = Number(t.dataset.index);
    let next = -1;
    if (e.key === 'ArrowDown' || e.key === 'j') next = Math.min(total - 1, i + 1);
    else if (e.key === 'ArrowUp' || e.key === 'k') next = Math.max(0, i - 1);
    else if (e.key === 'Home') next = 0;
    else if (e.key === 'End') next = total - 1;
    if (next < 0) return;
    e.preventDefault();
    const el = scroller.current!;
    if (next * ROW < el.scrollTop) el.scrollTop = next * ROW;
    else if ((next + 1) * ROW > el.scrollTop + el.clientHeight) el.scrollTop = (next + 1) * ROW - el.clientHeight;
    setScrollTop(el.scrollTop);
    requestAnimationFrame(() => (el.querySelector(`.row-link[data-index="${next}"]`) as HTMLElement | null)?.focus());
  };

  return (
    <div class={'ticket-table' + (compact ? ' compact' : '')} role="table" aria-label="Tickets" aria-rowcount={total + 1}>
      <div class="thead" role="row" aria-rowindex={1}>
        <span role="columnheader" class="c-num">
          #
        </span>
        <span role="columnheader" class="c-subject">
          Subject · customer
        </span>
        <span role="columnheader" class="c-channel">
          Channel
        </span>
        <span role="columnheader" class="c-status">
          Status
        </span>
        <span role="columnheader" class="c-priority">
          Priority
        </span>
        <span role="columnheader" class="c-assignee">
          Assignee
        </span>
        <span role="columnheader" class="c-updated" aria-sort={f.sort === 'updated_asc' ? 'ascending' : !f.sort || f.sort === 'updated_desc' ? 'descending' : 'none'}>
          <button
            type="button"
            class="link-btn"
            onClick={() => navigate('/tickets' + searchOf({ ...f, sort: f.sort === 'updated_asc' ? undefined : 'updated_asc' }))}
            title="Sort by last activity"
          >
            Updated {f.sort === 'updated_asc' ? '↑' : !f.sort || f.sort === 'updated_desc' ? '↓' : ''}
          </button>
        </span>
      </div>
      <div class="tbody" ref={scroller} onScroll={onScroll} onKeyDown={onKeyDown as any} role="rowgroup" data-testid="ticket-list">
        {cache.error ? (
          <p class="form-error" role="alert">
            {cache.error}
          </p>
        ) : cache.total === 0 ? (
          // An empty state is still a row of the table (axe: a rowgroup holds rows); without filters it says why.
          <div role="row">
            <div role="cell">
              {Object.keys(f).some((k) => k !== 'sort') ? (
                <Empty title="No tickets match">Try other filters, or clear them.</Empty>
              ) : (
                <Empty title="No tickets yet">
                  Conversations appear here when customers write in.{' '}
                  {isAdmin() ? <Link href="/admin/channels">Connect a channel</Link> : 'Ask an admin to give you access to a channel.'}
                </Empty>
              )}
            </div>
          </div>
        ) : (
          <div class="tspacer" style={{ height: `${total * ROW}px` }}>
            {rows}
          </div>
        )}
      </div>
    </div>
  );
}

export function TicketsPage({ id }: { id: number | null }) {
  const loc = useLocation();
  if (id) {
    return (
      <div class="ticket-open">
        <div class="crumbs">
          <Link href={'/tickets' + lastSearch}>← All tickets</Link>
        </div>
        <ConversationView id={id} siblings={ticketOrder} base="/tickets" />
      </div>
    );
  }
  const f = filtersFrom(loc.query);
  lastSearch = searchOf(f);
  return (
    <div class="tickets-page">
      <Views search={searchOf({ ...f })} />
      <section class="tickets-main" aria-labelledby="tickets-title">
        <h1 id="tickets-title" class="sr-only">
          Tickets
        </h1>
        <FilterBar f={f} />
        <TicketList f={f} />
      </section>
    </div>
  );
}
