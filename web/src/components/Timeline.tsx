// The messages of one conversation, in seq order: customer messages, agent replies, internal
// notes (visibly different), quotes of earlier messages (MM-8, Zalo's quote_msg_id), attachments (images and stickers
// inline, voice and video playable, every file downloadable), links (a location's map link too), and where each outgoing
// message is on its way (sending, sent, delivered, read, or not delivered and why), live; between them, by time, the
// compact lines of the conversation's activity trail (who changed its status, priority, team, assignee, tags,
// subject or fields, merges, the end of a chat: `activity.ts`). Consecutive messages of one sender within a few
// minutes, with no day break or activity line between them, are one run under one header (issue #17 item 11).

import { Fragment } from 'preact';
import { useEffect, useLayoutEffect, useRef } from 'preact/hooks';
import { bytes, clock, full } from '../format';
import { app, loadEarlier, snippet, type Thread } from '../state';
import { useStore } from '../store';
import type { Attachment, Delivery, DeliveryState, Message } from '../types';
import { activity, loadActivity, type Activity } from '../activity';
import { ActivityLine } from './ActivityLine';
import { Avatar, Spinner } from './common';
import { RetryButton } from './RetryDelivery';
import { IconAlert, IconCheck, IconCheckDouble, IconClock, IconFile, IconQuote } from './icons';
import { MentionHtml, MentionText } from './Mentions';

const URL_RE = /(https?:\/\/[^\s<>"')]+[^\s<>"').,;:!?])/g;

function PlainText({ text }: { text: string }) {
  const parts = text.split(URL_RE);
  return (
    <div class="msg-text">
      {parts.map((p, i) =>
        i % 2 === 1 ? (
          <a key={i} href={p} target="_blank" rel="noopener noreferrer">
            {p}
          </a>
        ) : (
          p
        ),
      )}
    </div>
  );
}

function FileLink({ f }: { f: Attachment }) {
  return (
    <a class="file-attachment" href={f.url} target="_blank" rel="noopener" download={f.file_name}>
      <IconFile size={16} />
      <span class="file-name">{f.file_name}</span>
      <span class="muted small">{bytes(f.size)}</span>
    </a>
  );
}

/** Images (a sticker or a GIF is one) inline; voice notes and videos playable, and downloadable like any file. */
function Attachments({ files }: { files: Attachment[] }) {
  if (!files.length) return null;
  const images = files.filter((f) => f.mime_type.startsWith('image/') && f.mime_type !== 'image/svg+xml');
  const media = files.filter((f) => f.mime_type.startsWith('audio/') || f.mime_type.startsWith('video/'));
  const others = files.filter((f) => !images.includes(f) && !media.includes(f));
  return (
    <div class="attachments">
      {images.map((f) => (
        <a key={f.id} class="image-attachment" href={f.url} target="_blank" rel="noopener">
          <img src={f.url} alt={f.file_name} loading="lazy" />
        </a>
      ))}
      {media.map((f) => (
        <div key={f.id} class="media-attachment">
          {f.mime_type.startsWith('audio/') ? (
            <audio controls preload="metadata" src={f.url} aria-label={f.file_name} />
          ) : (
            <video controls preload="metadata" src={f.url} aria-label={f.file_name} />
          )}
          <FileLink f={f} />
        </div>
      ))}
      {others.map((f) => (
        <FileLink key={f.id} f={f} />
      ))}
    </div>
  );
}

const DELIVERY: Record<DeliveryState, { text: string; Icon: typeof IconCheck }> = {
  pending: { text: 'Sending…', Icon: IconClock },
  sent: { text: 'Sent', Icon: IconCheck },
  delivered: { text: 'Delivered', Icon: IconCheckDouble },
  read: { text: 'Read', Icon: IconCheckDouble },
  failed: { text: 'Not delivered', Icon: IconAlert },
};

/** An outgoing message's delivery: an icon and its words (a failure says why, and so does a retry), the time of the
 *  change on hover; a failed one has a Retry button (issue #17 item 5) that queues it again. */
function DeliveryMark({ m, d }: { m: Message; d: Delivery }) {
  const { text, Icon } = DELIVERY[d.state] ?? { text: d.state, Icon: IconClock };
  return (
    <div class={'delivery-mark ' + d.state} data-testid="delivery" data-state={d.state} title={full(d.updated_at)}>
      <Icon size={14} />
      <span>{d.state === 'failed' ? `${text}: ${d.error || 'no reason given'}` : d.state === 'pending' && d.error ? `${text} (last try failed: ${d.error})` : text}</span>
      {d.state === 'failed' && <RetryButton m={m} />}
    </div>
  );
}

function QuotedBlock({ id, thread }: { id: number; thread: Message[] }) {
  const q = thread.find((m) => m.id === id);
  return (
    <blockquote class="quoted" data-testid="quoted-message">
      {q ? (
        <>
          <span class="quoted-author">{q.author.name}</span>
          <span class="quoted-text">{snippet(q) || 'A message without text'}</span>
        </>
      ) : (
        <span class="muted">Quoting an earlier message</span>
      )}
    </blockquote>
  );
}

/** Messages closer than this to the previous one of the same sender continue its run (no new header). */
const RUN_GAP_MS = 5 * 60_000;

function sameRun(prev: Message | undefined, m: Message): boolean {
  if (!prev || prev.author.kind === 'system' || m.author.kind === 'system') return false;
  return (
    prev.direction === m.direction &&
    prev.author.kind === m.author.kind &&
    prev.author.id === m.author.id &&
    prev.author.name === m.author.name &&
    Date.parse(m.created_at) - Date.parse(prev.created_at) < RUN_GAP_MS
  );
}

function MessageItem({ m, thread, onQuote, continued }: { m: Message; thread: Message[]; onQuote: (m: Message) => void; continued?: boolean }) {
  const kind = m.author.kind === 'system' ? 'system' : m.direction;
  if (kind === 'system') {
    return (
      <div class="msg-system" data-seq={m.seq}>
        {m.content} · <time dateTime={m.created_at}>{clock(m.created_at)}</time>
      </div>
    );
  }
  const label = (kind === 'note' ? 'Internal note by ' : 'Message from ') + m.author.name;
  const quote = (
    <button type="button" class="icon-btn small quote-btn" onClick={() => onQuote(m)} aria-label={`Quote this message from ${m.author.name}`} title="Quote in reply">
      <IconQuote size={14} />
    </button>
  );
  if (continued) {
    // The same sender's run goes on: no avatar or header again; the time shows on hover (and is read out).
    return (
      <article class={'msg ' + kind + ' continued'} data-seq={m.seq} data-testid="message" aria-label={label}>
        <span class="avatar-gap" aria-hidden="true" />
        <div class="msg-main">
          <div class="msg-bubble">
            {m.quoted_message_id && <QuotedBlock id={m.quoted_message_id} thread={thread} />}
            {m.content_html ? <div class="msg-html" dangerouslySetInnerHTML={{ __html: m.content_html }} /> : <PlainText text={m.content} />}
            <Attachments files={m.attachments} />
          </div>
          <span class="msg-aside">
            <time class="muted small run-time" dateTime={m.created_at} title={full(m.created_at)}>
              {clock(m.created_at)}
            </time>
            {quote}
          </span>
          {kind === 'out' && m.delivery && <DeliveryMark m={m} d={m.delivery} />}
        </div>
      </article>
    );
  }
  return (
    <article class={'msg ' + kind} data-seq={m.seq} data-testid="message" aria-label={label}>
      <Avatar name={m.author.name} size={30} />
      <div class="msg-main">
        <header class="msg-head">
          <span class="msg-author">{m.author.name}</span>
          {kind === 'note' && <span class="note-tag">Internal note</span>}
          {m.source === 'api' && <span class="muted small">via API</span>}
          <time class="muted small" dateTime={m.created_at} title={full(m.created_at)}>
            {clock(m.created_at)}
          </time>
          {quote}
        </header>
        <div class="msg-bubble">
          {m.quoted_message_id && <QuotedBlock id={m.quoted_message_id} thread={thread} />}
          {m.mentions?.length ? (
            m.content_html ? <MentionHtml html={m.content_html} mentions={m.mentions} /> : <MentionText text={m.content} mentions={m.mentions} />
          ) : m.content_html ? (
            <div class="msg-html" dangerouslySetInnerHTML={{ __html: m.content_html }} />
          ) : (
            <PlainText text={m.content} />
          )}
          <Attachments files={m.attachments} />
        </div>
        {kind === 'out' && m.delivery && <DeliveryMark m={m} d={m.delivery} />}
      </div>
    </article>
  );
}

function dayLabel(iso: string): string {
  const d = new Date(iso);
  const today = new Date();
  const yesterday = new Date(Date.now() - 86400000);
  if (d.toDateString() === today.toDateString()) return 'Today';
  if (d.toDateString() === yesterday.toDateString()) return 'Yesterday';
  return d.toLocaleDateString(undefined, { weekday: 'long', month: 'long', day: 'numeric', year: 'numeric' });
}

export function Timeline({ id, thread, onQuote }: { id: number; thread: Thread | undefined; onQuote: (m: Message) => void }) {
  const ref = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const count = thread?.items.length ?? 0;
  const lastSeq = thread?.items[count - 1]?.seq ?? 0;
  const firstSeq = thread?.items[0]?.seq ?? 0;
  // A delivery mark appearing under the last message makes it taller: stay at the bottom.
  const lastDelivery = thread?.items[count - 1]?.delivery?.state;
  const prevFirst = useRef(firstSeq);
  const prevHeight = useRef(0);
  const typingUntil = useStore(app, (s) => s.customerTyping[id]);
  const version = useStore(app, (s) => s.convs[id]?.updated_at);
  const trail = useStore(activity, (s) => s.byConv[id]);
  useEffect(() => {
    if (version) loadActivity(id, version);
  }, [id, version]);
  const customerTyping = typingUntil !== undefined && typingUntil > Date.now();

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    if (firstSeq < prevFirst.current && prevHeight.current) {
      // Earlier messages were prepended: keep what the agent was reading in place.
      el.scrollTop += el.scrollHeight - prevHeight.current;
    } else if (stick.current) {
      el.scrollTop = el.scrollHeight;
    }
    prevFirst.current = firstSeq;
    prevHeight.current = el.scrollHeight;
  }, [count, lastSeq, firstSeq, customerTyping, lastDelivery, trail?.length]);

  useEffect(() => {
    stick.current = true;
  }, [id]);

  const onScroll = () => {
    const el = ref.current;
    if (!el) return;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
    prevHeight.current = el.scrollHeight;
  };

  let lastDay = '';
  const dayBreak = (iso: string) => {
    const day = dayLabel(iso);
    const sep = day !== lastDay;
    lastDay = day;
    return sep ? (
      <div class="day-sep">
        <span>{day}</span>
      </div>
    ) : null;
  };
  // Trail lines go before the first message newer than them; those older than the loaded page wait for it.
  const lines: Activity[] = (trail ?? []).filter((a) => !thread?.hasEarlier || !thread.items.length || Date.parse(a.at) >= Date.parse(thread.items[0].created_at));
  let next = 0;
  const linesBefore = (iso: string | null) => {
    const out = [];
    while (next < lines.length && (iso === null || Date.parse(lines[next].at) < Date.parse(iso))) {
      const a = lines[next++];
      out.push(
        <Fragment key={`a${a.audit_id}-${a.kind}-${a.field ?? ''}`}>
          {dayBreak(a.at)}
          <ActivityLine a={a} />
        </Fragment>,
      );
    }
    return out;
  };
  return (
    <div class="timeline" ref={ref} onScroll={onScroll} aria-label="Messages" role="log" aria-live="polite" tabIndex={0}>
      {thread?.hasEarlier && (
        <div class="load-earlier">
          <button type="button" class="btn small" onClick={() => loadEarlier(id)} disabled={thread.loading}>
            {thread.loading ? 'Loading…' : 'Load earlier messages'}
          </button>
        </div>
      )}
      {!thread || (thread.loading && !count) ? (
        <div class="center-pad">
          <Spinner label="Loading messages" />
        </div>
      ) : thread.error ? (
        <p class="form-error" role="alert">
          {thread.error}
        </p>
      ) : (
        <>
          {thread.items.map((m, i) => {
            const before = linesBefore(m.created_at);
            const sep = dayBreak(m.created_at);
            const continued = !sep && before.length === 0 && sameRun(thread.items[i - 1], m);
            return (
              <Fragment key={m.seq}>
                {before}
                {sep}
                <MessageItem m={m} thread={thread.items} onQuote={onQuote} continued={continued} />
              </Fragment>
            );
          })}
          {linesBefore(null)}
        </>
      )}
      {customerTyping && (
        <div class="typing-indicator" data-testid="customer-typing">
          <span class="dots" aria-hidden="true">
            <i />
            <i />
            <i />
          </span>
          Customer is typing…
        </div>
      )}
    </div>
  );
}
