// The settings every channel kind shares (D6): the team its new conversations go to, when an idle chat ends
// (chat channels only), and whether it is enabled. One fieldset, used by the generic channel form, the
// Mattermost bot form, the Zalo form and the mailbox form, so these read, validate and behave alike.

import type { ComponentChildren } from 'preact';
import { app } from '../../state';
import { useStore } from '../../store';
import { controlProps, Field } from './kit';

/** The shared settings as the form edits them (text as typed, '' for "no team"). */
export interface Basics {
  team: number | '';
  timeout: string;
  enabled: boolean;
}

/** A new chat channel ends idle chats after ten minutes unless told otherwise. */
export const DEFAULT_IDLE_S = 600;

/** The shared settings of a stored channel (or of a new one, `null`). */
export function basicsOf(c: { default_team_id: number | null; inactivity_timeout_s?: number; enabled: boolean } | null): Basics {
  return {
    team: c?.default_team_id ?? '',
    timeout: String(c?.inactivity_timeout_s ?? DEFAULT_IDLE_S),
    enabled: c?.enabled ?? true,
  };
}

/** The shared settings as the API's fields. */
export function basicsFields(b: Basics): { default_team_id: number | null; inactivity_timeout_s: number; enabled: boolean } {
  return {
    default_team_id: b.team === '' ? null : b.team,
    inactivity_timeout_s: Number(b.timeout) || DEFAULT_IDLE_S,
    enabled: b.enabled,
  };
}

/**
 * The fieldset. `idPrefix` names its controls (`{idPrefix}-default-team-id`, `{idPrefix}-inactivity-timeout-s`), so a
 * form can focus the one the API refused; `errors` holds the API's complaint per field (`default_team_id`,
 * `inactivity_timeout_s`). `chat` shows the idle timeout; `enabledLabel` the enabled switch (left out when absent).
 * `children` are the kind's own handling options, placed before the switch.
 */
export function ChannelBasics({
  value,
  onChange,
  idPrefix,
  chat = true,
  teamLabel = 'Default team',
  enabledLabel,
  legend = 'Handling',
  errors = {},
  children,
}: {
  value: Basics;
  onChange: (patch: Partial<Basics>) => void;
  idPrefix: string;
  chat?: boolean;
  teamLabel?: string;
  enabledLabel?: string;
  legend?: string;
  errors?: Record<string, string>;
  children?: ComponentChildren;
}) {
  const teams = useStore(app, (s) => s.teams);
  const teamId = `${idPrefix}-default-team-id`;
  const timeoutId = `${idPrefix}-inactivity-timeout-s`;
  return (
    <fieldset class="basics" data-testid="channel-basics">
      <legend>{legend}</legend>
      <div class="grid2">
        <Field id={teamId} label={teamLabel} error={errors.default_team_id}>
          <select
            {...controlProps(teamId, errors.default_team_id)}
            value={value.team}
            onChange={(e) => onChange({ team: e.currentTarget.value ? Number(e.currentTarget.value) : '' })}
          >
            <option value="">None</option>
            {teams.map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
              </option>
            ))}
          </select>
        </Field>
        {chat && (
          <Field id={timeoutId} label="End idle chats after (seconds)" error={errors.inactivity_timeout_s}>
            <input
              {...controlProps(timeoutId, errors.inactivity_timeout_s)}
              type="number"
              min={1}
              max={604800}
              value={value.timeout}
              onInput={(e) => onChange({ timeout: e.currentTarget.value })}
            />
          </Field>
        )}
      </div>
      {children}
      {enabledLabel && (
        <label class="check">
          <input type="checkbox" checked={value.enabled} onChange={(e) => onChange({ enabled: e.currentTarget.checked })} /> {enabledLabel}
        </label>
      )}
    </fieldset>
  );
}
