// Administration › Statuses: the built-in ones and custom ones with their required fields.

import { useState } from 'preact/hooks';
import { api, errorText } from '../../api';
import { app, loadReference } from '../../state';
import { useStore } from '../../store';
import type { Status } from '../../types';
import { Modal } from '../../components/common';
import { confirmDelete, DataTable, FormEnd, SectionHead } from './kit';

const REQUIRABLE = ['assignee', 'team', 'subject', 'tags'];

function StatusForm({ status, onClose }: { status: Status | null; onClose: () => void }) {
  const [key, setKey] = useState(status?.key ?? '');
  const [name, setName] = useState(status?.name ?? '');
  const [base, setBase] = useState(status?.base ?? 'open');
  const [required, setRequired] = useState<string[]>(status?.required_fields ?? []);
  const [customField, setCustomField] = useState('');
  const [error, setError] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      if (status) await api.patch(`/statuses/${status.key}`, { name, required_fields: required });
      else await api.post('/statuses', { key, name, base, required_fields: required });
      await loadReference();
      onClose();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <Modal title={status ? `Edit status ${status.name}` : 'New status'} onClose={onClose}>
      <form class="form" onSubmit={submit}>
        <div class="grid2">
          <label class="field">
            <span>Name</span>
            <input value={name} onInput={(e) => setName(e.currentTarget.value)} required maxLength={60} />
          </label>
          <label class="field">
            <span>Key</span>
            <input value={key} onInput={(e) => setKey(e.currentTarget.value)} required pattern="[a-z][a-z0-9_]{0,39}" disabled={!!status} title="lower-case letters, digits and _" />
          </label>
        </div>
        <label class="field">
          <span>Means</span>
          <select value={base} onChange={(e) => setBase(e.currentTarget.value as Status['base'])} disabled={!!status}>
            <option value="open">Open (needs work)</option>
            <option value="pending">Pending (waiting on the customer)</option>
            <option value="closed">Closed (done)</option>
          </select>
        </label>
        <fieldset class="checks">
          <legend>Required before a conversation may take this status</legend>
          {REQUIRABLE.map((f) => (
            <label key={f} class="check">
              <input type="checkbox" checked={required.includes(f)} onChange={(e) => setRequired(e.currentTarget.checked ? [...required, f] : required.filter((x) => x !== f))} /> {f}
            </label>
          ))}
          {required
            .filter((f) => f.startsWith('custom:'))
            .map((f) => (
              <label key={f} class="check">
                <input type="checkbox" checked onChange={() => setRequired(required.filter((x) => x !== f))} /> custom field “{f.slice(7)}”
              </label>
            ))}
          <div class="row">
            <input aria-label="Custom field to require" placeholder="custom field name" value={customField} onInput={(e) => setCustomField(e.currentTarget.value)} />
            <button
              type="button"
              class="btn small"
              disabled={!customField.trim()}
              onClick={() => {
                setRequired([...required, 'custom:' + customField.trim()]);
                setCustomField('');
              }}
            >
              Require
            </button>
          </div>
        </fieldset>
        <FormEnd error={error} onCancel={onClose} />
      </form>
    </Modal>
  );
}

export function Statuses() {
  const statuses = useStore(app, (s) => s.statuses);
  const [editing, setEditing] = useState<Status | null | 'new'>(null);
  const remove = async (s: Status) => {
    await confirmDelete(`Delete the status ${s.name}?`, `/statuses/${s.key}`, loadReference);
  };
  return (
    <section>
      <SectionHead title="Statuses" action="New status" onAction={() => setEditing('new')} />
      <DataTable columns={['Name', 'Key', 'Means', 'Requires']}>
      {statuses.map((s) => (
        <tr key={s.key}>
          <td>
            <span class={'pill status-' + s.base}>{s.name}</span> {s.builtin && <span class="muted small">built-in</span>}
          </td>
          <td>
            <code>{s.key}</code>
          </td>
          <td>{s.base}</td>
          <td class="small">{s.required_fields.join(', ') || <span class="muted">—</span>}</td>
          <td class="actions">
            <button type="button" class="btn small" onClick={() => setEditing(s)}>
              Edit
            </button>
            {!s.builtin && (
              <button type="button" class="btn small danger-outline" onClick={() => remove(s)}>
                Delete
              </button>
            )}
          </td>
        </tr>
      ))}
      </DataTable>
      {editing && <StatusForm status={editing === 'new' ? null : editing} onClose={() => setEditing(null)} />}
    </section>
  );
}
