// Administration › Teams: names, descriptions and members.

import { useState } from 'preact/hooks';
import { api, errorText } from '../../api';
import { app, loadReference } from '../../state';
import { useStore } from '../../store';
import type { Team } from '../../types';
import { Modal } from '../../components/common';
import { confirmDelete, DataTable, FormEnd, SectionHead } from './kit';

function TeamForm({ team, onClose }: { team: Team | null; onClose: () => void }) {
  const agents = useStore(app, (s) => s.agents);
  const [name, setName] = useState(team?.name ?? '');
  const [description, setDescription] = useState(team?.description ?? '');
  const [members, setMembers] = useState<number[]>(team?.member_ids ?? []);
  const [error, setError] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      if (team) {
        await api.patch(`/teams/${team.id}`, { name, description });
        await api.put(`/teams/${team.id}/members`, { agent_ids: members });
      } else {
        await api.post('/teams', { name, description, member_ids: members });
      }
      await loadReference();
      onClose();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <Modal title={team ? `Edit team ${team.name}` : 'New team'} onClose={onClose}>
      <form class="form" onSubmit={submit}>
        <label class="field">
          <span>Name</span>
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} required maxLength={100} />
        </label>
        <label class="field">
          <span>Description</span>
          <textarea rows={2} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
        </label>
        <fieldset class="checks">
          <legend>Members</legend>
          {agents.map((a) => (
            <label key={a.id} class="check">
              <input type="checkbox" checked={members.includes(a.id)} onChange={(e) => setMembers(e.currentTarget.checked ? [...members, a.id] : members.filter((x) => x !== a.id))} />{' '}
              {a.name}
            </label>
          ))}
        </fieldset>
        <FormEnd error={error} onCancel={onClose} />
      </form>
    </Modal>
  );
}

export function Teams() {
  const teams = useStore(app, (s) => s.teams);
  const agents = useStore(app, (s) => s.agents);
  const [editing, setEditing] = useState<Team | null | 'new'>(null);
  const remove = async (t: Team) => {
    await confirmDelete(`Delete the team ${t.name}?`, `/teams/${t.id}`, loadReference);
  };
  return (
    <section>
      <SectionHead title="Teams" action="New team" onAction={() => setEditing('new')} />
      <DataTable columns={['Name', 'Description', 'Members']}>
      {teams.map((t) => (
        <tr key={t.id}>
          <td>{t.name}</td>
          <td class="small">{t.description}</td>
          <td class="small">{t.member_ids.map((id) => agents.find((a) => a.id === id)?.name ?? id).join(', ') || <span class="muted">none</span>}</td>
          <td class="actions">
            <button type="button" class="btn small" onClick={() => setEditing(t)}>
              Edit
            </button>
            <button type="button" class="btn small danger-outline" onClick={() => remove(t)}>
              Delete
            </button>
          </td>
        </tr>
      ))}
      {!teams.length && (
        <tr>
          <td colSpan={4} class="muted">
            No teams yet.
          </td>
        </tr>
      )}
      </DataTable>
      {editing && <TeamForm team={editing === 'new' ? null : editing} onClose={() => setEditing(null)} />}
    </section>
  );
}
