// The Zalo Official Accounts of the Channels page (ZL-1, ZL-2): each account's state, live (a refused token
// refresh shows as "needs attention" with Zalo's reason), its webhook URL to copy into Zalo's console, and the form
// that connects one, edits it or deletes it. The app secret, the OA secret key and the tokens are write-only: an
// empty field on edit keeps the stored one, and they are never shown again. docs/zalo.md is the admin's guide.

import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { api, errorText } from '../../api';
import { full } from '../../format';
import { loadReference, toast } from '../../state';
import type { ZaloChannel } from '../../types';
import { Modal } from '../../components/common';
import { basicsFields, basicsOf, ChannelBasics } from './ChannelBasics';
import type { Basics } from './ChannelBasics';
import { confirmDelete, ConnectionState, controlProps, CopyField, DataTable, Field, fieldProblem, FormEnd, usePolledList } from './kit';

/** Zalo's own addresses, used when the admin leaves the advanced fields empty. */
const DEFAULT_API_BASE = 'https://openapi.zalo.me';
const DEFAULT_OAUTH_BASE = 'https://oauth.zaloapp.com';

/** The write-only fields, as the API names them, with their labels. */
const SECRETS = [
  ['app_secret', 'App secret key'],
  ['oa_secret_key', 'OA secret key (signs the webhooks)'],
  ['access_token', 'OA access token'],
  ['refresh_token', 'OA refresh token'],
] as const;
type SecretKey = (typeof SECRETS)[number][0];

/** The fields the API may name in a validation message ("app_id: must not be empty"). */
const ZALO_FIELDS: ReadonlySet<string> = new Set([
  'name',
  'app_id',
  ...SECRETS.map(([k]) => k),
  'api_base_url',
  'oauth_base_url',
  'domain_verification.file_name',
  'domain_verification.content',
  'access_token_expires_in',
  'default_team_id',
  'inactivity_timeout_s',
]);

const fieldId = (key: string) => 'zalo-' + key.replace(/[._]/g, '-');

/** The Zalo accounts, their states refreshed every few seconds. */
export function ZaloChannels({ onChanged }: { onChanged: () => void }) {
  const { list, error, load } = usePolledList<ZaloChannel>('/zalo-channels');
  const [editing, setEditing] = useState<ZaloChannel | null>(null);
  const changed = () => {
    load();
    onChanged();
  };
  const remove = (z: ZaloChannel) => confirmDelete(`Disconnect the Zalo account ${z.name} and delete its conversations?`, `/zalo-channels/${z.id}`, changed);
  if (error && !list) return <p class="form-error">{error}</p>;
  if (!list) return <p class="muted small">Loading…</p>;
  if (!list.length) return <p class="muted small">None.</p>;
  return (
    <>
      <DataTable columns={['Name', 'Zalo app', 'Webhook URL', 'State']}>
        {list.map((z) => (
          <tr key={z.id} data-testid="zalo-channel">
            <td>{z.name}</td>
            <td>
              <code>{z.app_id}</code>
              {z.api_base_url !== DEFAULT_API_BASE && <div class="muted small">{z.api_base_url}</div>}
            </td>
            <td class="webhook-cell">
              <code class="small break">{z.webhook_url}</code>
              <CopyButton value={z.webhook_url} label={`Copy the webhook URL of ${z.name}`} />
            </td>
            <td>
              <ConnectionState enabled={z.enabled} state={z.state} reason={z.state_reason} testid="zalo-state" />
              {z.access_token_expires_at && (
                <div class="muted small">
                  Token valid until <time dateTime={z.access_token_expires_at}>{full(z.access_token_expires_at)}</time>
                </div>
              )}
              {z.events_pending > 0 && <div class="muted small">{z.events_pending} events waiting</div>}
            </td>
            <td class="actions">
              <button type="button" class="btn small" onClick={() => setEditing(z)}>
                Settings
              </button>
              <button type="button" class="btn small danger-outline" onClick={() => remove(z)}>
                Delete
              </button>
            </td>
          </tr>
        ))}
      </DataTable>
      {editing && (
        <Modal title={`${editing.name} — Zalo settings`} onClose={() => setEditing(null)} wide>
          <ZaloForm zalo={editing} onClose={() => setEditing(null)} onSaved={changed} />
        </Modal>
      )}
    </>
  );
}

/** A small Copy button for a table row; what it did is announced. */
function CopyButton({ value, label }: { value: string; label: string }) {
  const [said, setSaid] = useState('');
  // No clipboard API outside a secure context: say so rather than fail silently.
  const copy = () =>
    Promise.resolve()
      .then(() => navigator.clipboard.writeText(value))
      .then(() => setSaid('Copied'))
      .catch(() => setSaid('Could not copy: open Settings and copy it from there'));
  return (
    <>
      <button type="button" class="btn small" onClick={copy} aria-label={label}>
        Copy
      </button>{' '}
      <span class="muted small" role="status">
        {said}
      </span>
    </>
  );
}

/** After connecting: what to paste into Zalo's console, and where the domain-verification file is served. */
function ZaloSetup({ zalo, children }: { zalo: ZaloChannel; children?: ComponentChildren }) {
  const verification = zalo.domain_verification?.url;
  return (
    <section class="zalo-setup" data-testid="zalo-setup" aria-labelledby="zalo-setup-title">
      <h3 id="zalo-setup-title">Connect it in Zalo's developer console</h3>
      <CopyField id={fieldId('webhook-url')} label="Webhook URL" value={zalo.webhook_url} />
      <p class="muted small">
        Paste it under Official Account → Webhook, and subscribe to the user and OA message events, the receipts and follow / unfollow.
      </p>
      <p class="small" data-testid="zalo-verification">
        <strong>Domain verification:</strong>{' '}
        {verification ? (
          <>
            Zalo's file is served at{' '}
            <a href={verification} target="_blank" rel="noopener noreferrer">
              {verification}
            </a>
            .
          </>
        ) : (
          <>not set. If Zalo asks you to verify the webhook's domain, enter the file name it gives you under Settings → Domain verification.</>
        )}
      </p>
      {children}
    </section>
  );
}

/** The form's draft: text as typed. Secrets start empty (write-only). */
interface ZaloDraft {
  name: string;
  app_id: string;
  secrets: Record<SecretKey, string>;
  api_base_url: string;
  oauth_base_url: string;
  verification_file_name: string;
  /** Not sent back by the API: empty keeps the stored content while the file name stays. */
  verification_content: string;
  basics: Basics;
}

function draftOf(z: ZaloChannel | null): ZaloDraft {
  return {
    name: z?.name ?? '',
    app_id: z?.app_id ?? '',
    secrets: { app_secret: '', oa_secret_key: '', access_token: '', refresh_token: '' },
    // Zalo's defaults stay empty (shown as placeholders), so the stored value follows Zalo's.
    api_base_url: z && z.api_base_url !== DEFAULT_API_BASE ? z.api_base_url : '',
    oauth_base_url: z && z.oauth_base_url !== DEFAULT_OAUTH_BASE ? z.oauth_base_url : '',
    verification_file_name: z?.domain_verification?.file_name ?? '',
    verification_content: '',
    basics: basicsOf(z),
  };
}

/** The draft's domain verification as the API's field: null for none. */
function verificationOf(d: ZaloDraft): { file_name: string; content: string | null } | null {
  const file_name = d.verification_file_name.trim();
  return file_name ? { file_name, content: d.verification_content.trim() ? d.verification_content : null } : null;
}

/** The draft as the API's fields, secrets and domain verification apart. */
function apiFields(d: ZaloDraft, creating: boolean): Record<string, unknown> {
  const { enabled, ...shared } = basicsFields(d.basics);
  const fields: Record<string, unknown> = {
    name: d.name.trim(),
    app_id: d.app_id.trim(),
    api_base_url: d.api_base_url.trim() || DEFAULT_API_BASE,
    oauth_base_url: d.oauth_base_url.trim() || DEFAULT_OAUTH_BASE,
    ...shared,
  };
  // A new account starts enabled; the switch is on the edit form.
  if (!creating) fields.enabled = enabled;
  return fields;
}

/** Connect a Zalo Official Account (`zalo` null) or edit one. After connecting it shows the webhook URL. */
export function ZaloForm({ zalo, kindField, onClose, onSaved }: { zalo: ZaloChannel | null; kindField?: ComponentChildren; onClose: () => void; onSaved: () => void }) {
  const [d, setD] = useState<ZaloDraft>(() => draftOf(zalo));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<ZaloChannel | null>(null);
  const set = (patch: Partial<ZaloDraft>) => setD((x) => ({ ...x, ...patch }));
  const setSecret = (k: SecretKey, v: string) => setD((x) => ({ ...x, secrets: { ...x.secrets, [k]: v } }));
  const ctl = (k: string) => controlProps(fieldId(k), errors[k]);

  if (created) {
    return (
      <ZaloSetup zalo={created}>
        <div class="modal-actions">
          <button type="button" class="btn primary" onClick={onClose} autoFocus>
            Done
          </button>
        </div>
      </ZaloSetup>
    );
  }

  const submit = async (e: Event) => {
    e.preventDefault();
    setErrors({});
    setError('');
    // Zalo issues the two tokens as a pair: a new one alone would not work.
    const [access, refresh] = [d.secrets.access_token, d.secrets.refresh_token];
    if (zalo && !access !== !refresh) {
      const missing = access ? 'refresh_token' : 'access_token';
      setErrors({ [missing]: 'Give the new access token and refresh token together: Zalo issues them as a pair' });
      document.getElementById(fieldId(missing))?.focus();
      return;
    }
    const now = apiFields(d, !zalo);
    const verification = verificationOf(d);
    let body: Record<string, unknown>;
    if (zalo) {
      // Only what changed; an empty secret keeps the stored one.
      const before = apiFields(draftOf(zalo), false);
      body = {};
      for (const [k, v] of Object.entries(now)) if (v !== before[k]) body[k] = v;
      for (const [k] of SECRETS) if (d.secrets[k]) body[k] = d.secrets[k];
      const stored = zalo.domain_verification?.file_name ?? null;
      if ((verification?.file_name ?? null) !== stored || verification?.content) body.domain_verification = verification;
      if (!Object.keys(body).length) {
        onClose();
        return;
      }
    } else {
      body = { ...now, ...d.secrets };
      if (verification) body.domain_verification = verification;
    }
    setBusy(true);
    try {
      if (zalo) {
        await api.patch<ZaloChannel>(`/zalo-channels/${zalo.id}`, body);
        toast('Zalo account saved', 'success');
      } else {
        setCreated(await api.post<ZaloChannel>('/zalo-channels', body));
        toast('Zalo account connected', 'success');
      }
      await loadReference();
      onSaved();
      if (zalo) onClose();
    } catch (err) {
      const problem = fieldProblem(err, ZALO_FIELDS);
      if (problem) {
        setErrors({ [problem[0]]: problem[1] });
        // After the re-render: take the admin to the field.
        window.setTimeout(() => document.getElementById(fieldId(problem[0]))?.focus(), 0);
      } else {
        setError(errorText(err));
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      {zalo && <ZaloSetup zalo={zalo} />}
      <form class="form" onSubmit={submit} data-testid="zalo-form">
        <div class="grid2">
          {kindField}
          <Field id={fieldId('name')} label="Name" error={errors.name}>
            <input {...ctl('name')} value={d.name} onInput={(e) => set({ name: e.currentTarget.value })} required maxLength={100} placeholder="e.g. Shop on Zalo" />
          </Field>
        </div>
        <fieldset>
          <legend>Zalo app and Official Account</legend>
          <div class="grid2">
            <Field id={fieldId('app_id')} label="App ID" error={errors.app_id}>
              <input {...ctl('app_id')} value={d.app_id} onInput={(e) => set({ app_id: e.currentTarget.value })} required inputMode="numeric" autocomplete="off" />
            </Field>
            {SECRETS.map(([k, label]) => (
              <Field key={k} id={fieldId(k)} label={zalo ? label + ' (stored — leave empty to keep)' : label} error={errors[k]}>
                <input
                  {...ctl(k)}
                  type="password"
                  autocomplete="new-password"
                  value={d.secrets[k]}
                  onInput={(e) => setSecret(k, e.currentTarget.value)}
                  required={!zalo}
                  maxLength={4096}
                />
              </Field>
            ))}
          </div>
          <details class="advanced" open={!!(d.api_base_url || d.oauth_base_url || errors.api_base_url || errors.oauth_base_url)}>
            <summary>Advanced: Zalo's addresses</summary>
            <div class="grid2">
              <Field id={fieldId('api_base_url')} label="API base URL" error={errors.api_base_url}>
                <input {...ctl('api_base_url')} type="url" value={d.api_base_url} onInput={(e) => set({ api_base_url: e.currentTarget.value })} placeholder={DEFAULT_API_BASE} />
              </Field>
              <Field id={fieldId('oauth_base_url')} label="OAuth base URL" error={errors.oauth_base_url}>
                <input {...ctl('oauth_base_url')} type="url" value={d.oauth_base_url} onInput={(e) => set({ oauth_base_url: e.currentTarget.value })} placeholder={DEFAULT_OAUTH_BASE} />
              </Field>
            </div>
          </details>
        </fieldset>
        <fieldset>
          <legend>Domain verification (optional)</legend>
          <p class="muted small">
            Zalo may ask to verify the webhook's domain with a file <code>zalo_verifier….html</code>: Switchboard serves it at the root of its public URL
            (without content: Zalo's meta tag for the file's code).
          </p>
          <div class="grid2">
            <Field id={fieldId('domain_verification.file_name')} label="File name" error={errors['domain_verification.file_name']}>
              <input
                {...ctl('domain_verification.file_name')}
                value={d.verification_file_name}
                onInput={(e) => set({ verification_file_name: e.currentTarget.value })}
                placeholder="zalo_verifierABC123.html"
                pattern="zalo_verifier[A-Za-z0-9_\-]+\.html"
                title="zalo_verifier followed by Zalo's code and .html"
                autocomplete="off"
              />
            </Field>
            <Field
              id={fieldId('domain_verification.content')}
              label={zalo?.domain_verification ? 'File content (stored — leave empty to keep)' : 'File content (optional)'}
              error={errors['domain_verification.content']}
            >
              <textarea {...ctl('domain_verification.content')} rows={2} value={d.verification_content} onInput={(e) => set({ verification_content: e.currentTarget.value })} />
            </Field>
          </div>
        </fieldset>
        <ChannelBasics idPrefix="zalo" enabledLabel={zalo ? 'Enabled' : undefined} value={d.basics} onChange={(b) => set({ basics: { ...d.basics, ...b } })} errors={errors} />
        <FormEnd error={error} onCancel={onClose} submit={zalo ? 'Save' : 'Connect account'} busy={busy} />
      </form>
    </>
  );
}
