// The administration pages' small shared kit: loading on mount with errors as toasts, a form's error
// line, a labelled field with room for the API's complaint about it (and reading that complaint), a value to copy, a
// connected channel's state, a section's heading with its main action, a data table's frame, and deleting after a
// confirmation.

import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, errorText } from '../../api';
import { app, toast } from '../../state';
import { useStore } from '../../store';

export function useAsync(fn: () => Promise<void>, deps: unknown[]) {
  useEffect(() => {
    fn().catch((e) => toast(errorText(e), 'error'));
  }, deps);
}

export function FormError({ error }: { error: string }) {
  return error ? (
    <p class="form-error" role="alert">
      {error}
    </p>
  ) : null;
}

/** A labelled control (`children`) with room for the API's complaint about it: announced, and tied to the control
 *  when the control spreads `controlProps(id, error)`. */
export function Field({ id, label, error, children }: { id: string; label: string; error?: string; children: ComponentChildren }) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {children}
      {error && (
        <div class="field-error" id={id + '-error'} role="alert">
          {error}
        </div>
      )}
    </div>
  );
}

/** The props that tie a control to its `Field`'s label and error. */
export function controlProps(id: string, error?: string) {
  return {
    id,
    'aria-invalid': error ? ('true' as const) : undefined,
    'aria-describedby': error ? id + '-error' : undefined,
  };
}

/** A 400 answer about one of `fields` ("smtp.host: must be …") as [field, problem]; null for any other error. */
export function fieldProblem(e: unknown, fields: ReadonlySet<string>): [string, string] | null {
  if (!(e instanceof ApiError) || e.status !== 400) return null;
  const m = /^([a-z_]+(?:\.[a-z_]+)?): ([\s\S]+)$/.exec(e.message);
  if (!m || !fields.has(m[1])) return null;
  return [m[1], m[2].charAt(0).toUpperCase() + m[2].slice(1)];
}

/** A read-only value to paste elsewhere (a webhook URL) with a Copy button; what the copy did is announced. */
export function CopyField({ id, label, value }: { id: string; label: string; value: string }) {
  const input = useRef<HTMLInputElement>(null);
  const [said, setSaid] = useState('');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setSaid('Copied');
    } catch {
      // No clipboard API (not a secure context) or no permission: copy the selection instead.
      input.current?.select();
      setSaid(document.execCommand('copy') ? 'Copied' : 'Selected: press Ctrl+C to copy');
    }
  };
  return (
    <div class="field copy-field">
      <label for={id}>{label}</label>
      <div class="row">
        <input id={id} ref={input} class="grow mono" readOnly value={value} onFocus={(e) => e.currentTarget.select()} />
        <button type="button" class="btn small" onClick={copy} aria-label={'Copy the ' + label}>
          Copy
        </button>
      </div>
      <span class="muted small" role="status">
        {said}
      </span>
    </div>
  );
}

const STATE_LABEL: Record<string, { text: string; pill: string }> = {
  connected: { text: 'connected', pill: 'delivery-delivered' },
  reconnecting: { text: 'reconnecting', pill: 'delivery-pending' },
  needs_attention: { text: 'needs attention', pill: 'delivery-failed' },
  disabled: { text: 'disabled', pill: 'status-closed' },
};

/** A connected channel's state (Mattermost bots, Zalo accounts): a pill, and the reason when it is not connected.
 *  `data-state` carries the state for tests; changes are announced politely. */
export function ConnectionState({ enabled, state, reason, testid }: { enabled: boolean; state: string; reason: string | null; testid: string }) {
  const shown = enabled ? state : 'disabled';
  const label = STATE_LABEL[shown] ?? { text: shown.replace(/_/g, ' '), pill: 'delivery-pending' };
  return (
    <div data-testid={testid} data-state={shown} aria-live="polite">
      <span class={'pill ' + label.pill}>{label.text}</span>
      {reason && shown !== 'connected' && <div class="form-error inline small">{reason}</div>}
    </div>
  );
}

/** A section's heading, with its main action (e.g. "New team") when it has one. */
export function SectionHead({ title, action, onAction }: { title: string; action?: string; onAction?: () => void }) {
  return (
    <div class="section-head">
      <h2>{title}</h2>
      {action && (
        <button type="button" class="btn primary" onClick={onAction}>
          {action}
        </button>
      )}
    </div>
  );
}

/** A data table: its column headings (and an unnamed actions column unless `actions` is false), rows as children;
 *  it scrolls sideways on a narrow screen rather than squeezing its columns. */
export function DataTable({ columns, actions = true, children }: { columns: string[]; actions?: boolean; children: ComponentChildren }) {
  return (
    <div class="table-scroll">
    <table class="data">
      <thead>
        <tr>
          {columns.map((c) => (
            <th key={c} scope="col">
              {c}
            </th>
          ))}
          {actions && (
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          )}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
    </div>
  );
}

/** Ask `question`; when confirmed, DELETE `path` and then run `after` (a reload). A failure is a toast. */
export async function confirmDelete(question: string, path: string, after: () => unknown): Promise<void> {
  if (!confirm(question)) return;
  try {
    await api.del(path);
    await after();
  } catch (e) {
    toast(errorText(e), 'error');
  }
}

/** The end of a dialog's form: its error line, then Cancel and the submit button (`submit`, "Save" by default). */
export function FormEnd({ error, onCancel, submit = 'Save', busy }: { error: string; onCancel: () => void; submit?: string; busy?: boolean }) {
  return (
    <>
      <FormError error={error} />
      <div class="modal-actions">
        <button type="button" class="btn" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" class="btn primary" disabled={busy}>
          {submit}
        </button>
      </div>
    </>
  );
}

/** How often a connector list (Mattermost bots, Zalo accounts) reads its connection states again while open. */
const STATE_REFRESH_MS = 3000;

/** A list of connectors read from `path`, read again at once when the channels change (one was just added) and
 *  every few seconds for their connection states (a connector runs on one node; its state changes there). */
export function usePolledList<T>(path: string) {
  const [list, setList] = useState<T[] | null>(null);
  const [error, setError] = useState('');
  const load = () =>
    api
      .get<T[]>(path)
      .then((l) => {
        setList(l);
        setError('');
      })
      .catch((e) => setError(errorText(e)));
  const channels = useStore(app, (s) => s.channels);
  useEffect(() => {
    load();
  }, [channels]);
  useEffect(() => {
    const timer = setInterval(load, STATE_REFRESH_MS);
    return () => clearInterval(timer);
  }, []);
  return { list, error, load };
}
