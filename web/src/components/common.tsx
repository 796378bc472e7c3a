// Small shared pieces: avatars, presence dots, status and priority badges, collision chips, a
// modal dialog, and a link that routes on the client.

import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { hue, initials, listJoin } from '../format';
import { onLinkClick } from '../router';
import { app, statusOf } from '../state';
import { useStore } from '../store';
import type { Presence, Who } from '../types';
import { IconEye, IconPen, IconX } from './icons';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function Link(props: { href: string; children?: ComponentChildren } & Record<string, any>) {
  return <a {...props} onClick={onLinkClick as any} />;
}

export function Avatar({ name, size = 28, presence }: { name: string; size?: number; presence?: Presence }) {
  return (
    <span class="avatar" style={{ width: `${size}px`, height: `${size}px`, fontSize: `${Math.round(size * 0.4)}px`, background: `hsl(${hue(name)} 50% 31%)` }} aria-hidden="true">
      {initials(name)}
      {presence && <span class={'presence-dot ' + presence} />}
    </span>
  );
}

export function PresenceDot({ status, label }: { status: Presence; label?: string }) {
  return <span class={'presence-dot inline ' + status} role="img" aria-label={label ?? status} title={label ?? status} />;
}

export function StatusPill({ status }: { status: string }) {
  useStore(app, (s) => s.statuses);
  const st = statusOf(status);
  const base = st?.base ?? (status === 'closed' ? 'closed' : status === 'pending' ? 'pending' : 'open');
  return (
    <span class={'pill status-' + base} data-status={status}>
      {st?.name ?? status}
    </span>
  );
}

export function PriorityBadge({ priority }: { priority: string }) {
  if (priority === 'normal') return <span class="priority normal">Normal</span>;
  return <span class={'priority ' + priority}>{priority[0].toUpperCase() + priority.slice(1)}</span>;
}

/** The customer's rating of a ticket (HD-12), or nothing when not rated. */
export function CsatBadge({ csat }: { csat: string | null | undefined }) {
  if (!csat) return null;
  const label = csat === 'good' ? 'Good' : csat === 'average' ? 'Average' : 'Bad';
  return (
    <span class={'csat csat-' + csat} data-testid="csat" title={'Customer rating: ' + label}>
      <span class="sr-only">Customer rating: </span>
      {label}
    </span>
  );
}

export function ChannelBadge({ kind, name }: { kind: string; name?: string }) {
  return (
    <span class={'channel-badge kind-' + kind} title={name}>
      {name ?? kind}
    </span>
  );
}

/** "Ann is viewing", "Bob is writing a reply" — for a list row (compact) or a conversation (full). */
export function Collision({ id, compact }: { id: number; compact?: boolean }) {
  const me = useStore(app, (s) => s.me?.agent.id);
  const c = useStore(app, (s) => s.collisions[id]);
  if (!c) return null;
  const replying = c.replying.filter((w) => w.agent_id !== me);
  const replyingIds = new Set(replying.map((w) => w.agent_id));
  const viewing = c.viewing.filter((w) => w.agent_id !== me && !replyingIds.has(w.agent_id));
  if (!replying.length && !viewing.length) return null;
  const names = (ws: Who[]) => listJoin(ws.map((w) => w.name));
  if (compact) {
    return (
      <span class="collision-chips">
        {replying.length > 0 && (
          <span class="chip replying" title={names(replying) + ' writing a reply'} data-testid="collision-replying">
            <IconPen size={12} /> {names(replying)}
          </span>
        )}
        {viewing.length > 0 && (
          <span class="chip viewing" title={names(viewing) + ' viewing'} data-testid="collision-viewing">
            <IconEye size={12} /> {names(viewing)}
          </span>
        )}
      </span>
    );
  }
  return (
    <div class="collision" role="status" aria-live="polite">
      {replying.length > 0 && (
        <span class="collision-item replying" data-testid="collision-replying">
          <IconPen size={14} /> {names(replying)} {replying.length > 1 ? 'are' : 'is'} writing a reply
        </span>
      )}
      {viewing.length > 0 && (
        <span class="collision-item viewing" data-testid="collision-viewing">
          <IconEye size={14} /> {names(viewing)} {viewing.length > 1 ? 'are' : 'is'} viewing
        </span>
      )}
    </div>
  );
}

export function Modal({
  title,
  onClose,
  children,
  wide,
}: {
  title: string;
  onClose: () => void;
  children: ComponentChildren;
  wide?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    const prev = document.activeElement as HTMLElement | null;
    return () => prev?.focus?.();
  }, []);
  return (
    <dialog
      ref={ref}
      class={'modal' + (wide ? ' wide' : '')}
      aria-labelledby="modal-title"
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <header class="modal-head">
        <h2 id="modal-title">{title}</h2>
        <button type="button" class="icon-btn" aria-label="Close" onClick={onClose}>
          <IconX />
        </button>
      </header>
      <div class="modal-body">{children}</div>
    </dialog>
  );
}

export function Spinner({ label = 'Loading' }: { label?: string }) {
  return <span class="spinner" role="status" aria-label={label} />;
}

export function Empty({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <div class="empty">
      <p class="empty-title">{title}</p>
      {children && <p class="muted">{children}</p>}
    </div>
  );
}
