// @mentions in internal notes (#17 item 3): the note editor's autocomplete of the agents who may see
// the conversation's channel (GET /conversations/{id}/mentionable), the mention it inserts (an
// uneditable `@Name` chip whose agent id is sent with the note as `mentions`), and the highlight of
// mentions in a rendered note.

import type { RefObject } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api';
import type { Mention } from '../types';
import { Avatar } from './common';

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A regex of the `@Name`s of `mentions`, longest first (so `@Ann Lee` wins over `@Ann`); null when none. */
function mentionRe(mentions: Mention[]): RegExp | null {
  const names = mentions.map((m) => m.name).filter(Boolean).sort((a, b) => b.length - a.length);
  if (!names.length) return null;
  return new RegExp('(@(?:' + names.map(escapeRe).join('|') + ')(?![\\p{L}\\p{N}]))', 'gu');
}

/** A note's text with its mentions highlighted. */
export function MentionText({ text, mentions }: { text: string; mentions: Mention[] }) {
  const re = mentionRe(mentions);
  const parts = re ? text.split(re) : [text];
  return (
    <div class="msg-text">
      {parts.map((p, i) =>
        i % 2 === 1 ? (
          <mark key={i} class="mention" data-testid="mention">
            {p}
          </mark>
        ) : (
          p
        ),
      )}
    </div>
  );
}

/** A note's sanitised HTML with its mentions highlighted (text nodes only: markup is left alone). */
export function MentionHtml({ html, mentions }: { html: string; mentions: Mention[] }) {
  const ref = useRef<HTMLDivElement>(null);
  useLayoutEffect(() => {
    const el = ref.current;
    const re = mentionRe(mentions);
    if (!el || !re) return;
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    const nodes: Text[] = [];
    while (walker.nextNode()) nodes.push(walker.currentNode as Text);
    for (const node of nodes) {
      const parts = node.data.split(re);
      if (parts.length < 2) continue;
      const frag = document.createDocumentFragment();
      parts.forEach((p, i) => {
        if (i % 2 === 1) {
          const mark = document.createElement('mark');
          mark.className = 'mention';
          mark.dataset.testid = 'mention';
          mark.textContent = p;
          frag.appendChild(mark);
        } else if (p) {
          frag.appendChild(document.createTextNode(p));
        }
      });
      node.replaceWith(frag);
    }
  }, [html, mentions]);
  return <div class="msg-html" ref={ref} dangerouslySetInnerHTML={{ __html: html }} />;
}

const cache = new Map<number, Promise<Mention[]>>();
function mentionable(conversationId: number): Promise<Mention[]> {
  let p = cache.get(conversationId);
  if (!p) {
    p = api.get<Mention[]>(`/conversations/${conversationId}/mentionable`).catch(() => {
      cache.delete(conversationId);
      return [];
    });
    cache.set(conversationId, p);
  }
  return p;
}

interface Query {
  text: Text;
  /** Where the `@` is in `text`. */
  at: number;
  /** The caret's offset in `text`. */
  end: number;
  q: string;
}

/** The `@query` just before the caret, if the caret is in one. */
function queryAtCaret(root: HTMLElement): Query | null {
  const sel = window.getSelection();
  if (!sel || !sel.isCollapsed || !sel.anchorNode || sel.anchorNode.nodeType !== Node.TEXT_NODE) return null;
  const text = sel.anchorNode as Text;
  if (!root.contains(text)) return null;
  const before = text.data.slice(0, sel.anchorOffset);
  const m = /(?:^|[\s(\u00a0])@([^@\n\u00a0]{0,40})$/.exec(before);
  if (!m) return null;
  return { text, at: sel.anchorOffset - m[1].length - 1, end: sel.anchorOffset, q: m[1] };
}

/** The note editor's @mention autocomplete, for the contenteditable `editor`. Active only while `on` (note mode). */
export function useMentionPicker(conversationId: number, editor: RefObject<HTMLDivElement | null>, on: boolean) {
  const [agents, setAgents] = useState<Mention[]>([]);
  const [query, setQuery] = useState<Query | null>(null);
  const [active, setActive] = useState(0);

  useEffect(() => {
    if (!on) {
      setQuery(null);
      return;
    }
    let live = true;
    mentionable(conversationId).then((a) => live && setAgents(a));
    return () => {
      live = false;
    };
  }, [conversationId, on]);

  const q = query?.q.trim().toLowerCase() ?? '';
  const options = query
    ? agents.filter((a) => a.name.toLowerCase().startsWith(q) || a.name.toLowerCase().split(/\s+/).some((w) => w.startsWith(q))).slice(0, 8)
    : [];
  const open = on && options.length > 0;

  const onInput = () => {
    if (!on || !editor.current) return;
    setQuery(queryAtCaret(editor.current));
    setActive(0);
  };

  const pick = (a: Mention) => {
    const el = editor.current;
    if (!el || !query || !query.text.isConnected) return;
    const range = document.createRange();
    range.setStart(query.text, query.at);
    range.setEnd(query.text, Math.min(query.end, query.text.length));
    range.deleteContents();
    const chip = document.createElement('span');
    chip.className = 'mention';
    chip.contentEditable = 'false';
    chip.dataset.agentId = String(a.agent_id);
    chip.textContent = '@' + a.name;
    const space = document.createTextNode('\u00a0');
    range.insertNode(space);
    range.insertNode(chip);
    const sel = window.getSelection();
    const after = document.createRange();
    after.setStart(space, 1);
    after.collapse(true);
    sel?.removeAllRanges();
    sel?.addRange(after);
    el.focus();
    setQuery(null);
    el.dispatchEvent(new Event('input', { bubbles: true }));
  };

  /** Keys for the open list (↓ ↑ Enter Tab Escape); true when the key was used. */
  const onKeyDown = (e: KeyboardEvent): boolean => {
    if (!open) return false;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      setActive((i) => (e.key === 'ArrowDown' ? (i + 1) % options.length : (i - 1 + options.length) % options.length));
      return true;
    }
    if ((e.key === 'Enter' && !e.ctrlKey && !e.metaKey) || e.key === 'Tab') {
      e.preventDefault();
      pick(options[Math.min(active, options.length - 1)]);
      return true;
    }
    if (e.key === 'Escape') {
      e.preventDefault();
      setQuery(null);
      return true;
    }
    return false;
  };

  /** The agent ids of the mentions still in the editor. */
  const collect = (): number[] => {
    const ids = new Set<number>();
    editor.current?.querySelectorAll<HTMLElement>('.mention[data-agent-id]').forEach((chip) => {
      const a = agents.find((x) => String(x.agent_id) === chip.dataset.agentId);
      if (a && chip.textContent === '@' + a.name) ids.add(a.agent_id);
    });
    return [...ids];
  };

  const activeId = open ? `mention-option-${options[Math.min(active, options.length - 1)].agent_id}` : undefined;
  const list = open ? (
    <ul id="mention-list" class="mention-list" role="listbox" aria-label="Mention an agent" data-testid="mention-list">
      {options.map((a, i) => (
        <li
          key={a.agent_id}
          id={`mention-option-${a.agent_id}`}
          role="option"
          aria-selected={i === active}
          class={'mention-option' + (i === active ? ' active' : '')}
          onMouseDown={(e) => {
            e.preventDefault();
            pick(a);
          }}
        >
          <Avatar name={a.name} size={22} />
          <span>{a.name}</span>
        </li>
      ))}
    </ul>
  ) : null;

  return { list, open, activeId, onInput, onKeyDown, collect };
}
