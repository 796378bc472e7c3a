// The administration pages' small shared kit: loading on mount with errors as toasts, a form's error
// line, a labelled field with room for the API's complaint about it, a section's heading with its main action, a
// data table's frame, and deleting after a confirmation.

import type { ComponentChildren } from 'preact';
import { useEffect } from 'preact/hooks';
import { api, errorText } from '../../api';
import { toast } from '../../state';

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

/** A data table: its column headings (and an unnamed actions column unless `actions` is false), rows as children. */
export function DataTable({ columns, actions = true, children }: { columns: string[]; actions?: boolean; children: ComponentChildren }) {
  return (
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
