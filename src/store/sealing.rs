//! Secrets at rest in the database (issue #13): a channel's signing `secret` and the secret fields
//! of its `settings` JSON (mailbox and SMTP passwords, tokens; `secrets::SECRET_FIELDS`) are
//! sealed when written and opened when a channel is handed out (`channels::*`, a delivery's
//! context), so no other code sees ciphertext and no row holds plaintext. Zalo's rotating tokens
//! live in their own table (`zalo_tokens`, sealed by `store::zalo`); this module reseals them too,
//! so it stays the one inventory of what is sealed at rest.
//!
//! [`prepare`] runs once on start, after the schema migrations: it checks the node's key against
//! the one the database records (the `secret_key_id` counter: a node with another key refuses to
//! start instead of writing values the others cannot read), then seals what is not sealed under
//! the current key — plaintext rows of older versions and values sealed under a previous key
//! (rotation). It is idempotent, and each row is rewritten only if nobody changed it meanwhile.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::Value;

use super::models::ChannelInstance;
use super::schema::{channel_instances, counters, zalo_tokens};
use super::{Store, StoreError, StoreResult};
use crate::db;
use crate::secrets::KeyId;

/// The counter that records which key seals this database's secrets.
const KEY_COUNTER: &str = "secret_key_id";

/// What [`prepare`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Values sealed (or sealed again) now: plaintext from older versions, or under a previous key.
    pub sealed: usize,
    /// The previous key this start rotated away from, if it did.
    pub rotated_from: Option<KeyId>,
}

/// Why the node's key does not fit this database.
#[derive(Debug, thiserror::Error)]
#[error(
    "this database's secrets are sealed with key {recorded}, but this node's key is {current}: start every node \
     with the same SWITCHBOARD_SECRET_KEY (or a copy of the first node's secret.key); to change keys, give the old \
     one as SWITCHBOARD_SECRET_KEY_PREVIOUS (README, \"Secrets at rest\")"
)]
pub struct WrongKey {
    pub recorded: KeyId,
    pub current: KeyId,
}

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    WrongKey(#[from] WrongKey),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Check the key and seal everything not sealed under it (see the module header).
pub async fn prepare(store: &Store) -> Result<Prepared, PrepareError> {
    let secrets = store.secrets()?;
    let current = secrets.current_id();
    let recorded = record_key(store, current).await?;
    let rotated_from = if recorded == current {
        None
    } else if secrets.is_previous(recorded) {
        Some(recorded)
    } else {
        return Err(WrongKey { recorded, current }.into());
    };
    let sealed =
        reseal_channels(store).await? + store.run(|store| async move { reseal_zalo_tokens(&store).await }).await?;
    if rotated_from.is_some() {
        set_recorded_key(store, current).await?;
    }
    Ok(Prepared { sealed, rotated_from })
}

/// The key id the database records; the first node to ask records its own.
async fn record_key(store: &Store, current: KeyId) -> StoreResult<KeyId> {
    let candidate = current.0 as i64;
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let value = super::counters::get_or_init(&mut conn.tx(), KEY_COUNTER, candidate).await?;
            Ok(KeyId(value as u64))
        })
        .await
}

async fn set_recorded_key(store: &Store, current: KeyId) -> StoreResult<()> {
    let value = current.0 as i64;
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            db!(
                tx,
                diesel::update(counters::table.find(KEY_COUNTER)).set(counters::value.eq(value)).execute(tx).await
            )?;
            Ok(())
        })
        .await
}

/// Seal every channel secret not sealed under the current key. Returns how many values changed.
async fn reseal_channels(store: &Store) -> StoreResult<usize> {
    store
        .run(move |store| async move {
            let secrets = store.secrets()?;
            let rows: Vec<(i64, String, Option<String>)> = {
                let mut conn = store.read().await?;
                let tx = &mut conn.tx();
                db!(
                    tx,
                    channel_instances::table
                        .select((channel_instances::id, channel_instances::settings, channel_instances::secret))
                        .order(channel_instances::id)
                        .load(tx)
                        .await
                )?
            };
            let mut sealed = 0;
            for (id, settings, secret) in rows {
                let new_settings = match serde_json::from_str::<Value>(&settings) {
                    Ok(mut v) => secrets.reseal_fields(&mut v)?.then(|| v.to_string()),
                    Err(_) => None,
                };
                let new_secret = match &secret {
                    Some(s) => secrets.reseal_text(s)?.map(|s| s.into_string()),
                    None => None,
                };
                let mut conn = store.write().await?;
                let tx = &mut conn.tx();
                // Each rewrite only if the value is still the one read: an admin's change made
                // meanwhile (already sealed) wins, and running this twice changes nothing.
                if let Some(new) = new_settings {
                    let row = channel_instances::table.find(id).filter(channel_instances::settings.eq(&settings));
                    sealed += db!(tx, diesel::update(row).set(channel_instances::settings.eq(&new)).execute(tx).await)?;
                }
                if let (Some(old), Some(new)) = (&secret, new_secret) {
                    let row = channel_instances::table.find(id).filter(channel_instances::secret.eq(old));
                    sealed += db!(tx, diesel::update(row).set(channel_instances::secret.eq(&new)).execute(tx).await)?;
                }
            }
            Ok(sealed)
        })
        .await
}

/// A channel as callers see it: its secrets opened.
pub(crate) fn open_channel(store: &Store, mut channel: ChannelInstance) -> StoreResult<ChannelInstance> {
    let secrets = store.secrets()?;
    channel.settings = open_settings(store, &channel.settings)?;
    if let Some(s) = &channel.secret {
        channel.secret = Some(secrets.open_text(s)?);
    }
    Ok(channel)
}

/// Settings JSON with its secret fields opened (text that is not JSON is left alone).
pub(crate) fn open_settings(store: &Store, settings: &str) -> StoreResult<String> {
    match serde_json::from_str::<Value>(settings) {
        Ok(mut v) => {
            store.secrets()?.open_fields(&mut v)?;
            Ok(v.to_string())
        }
        Err(_) => Ok(settings.to_owned()),
    }
}

/// Settings JSON as stored: its secret fields sealed.
pub(crate) fn seal_settings(store: &Store, settings: &str) -> StoreResult<String> {
    match serde_json::from_str::<Value>(settings) {
        Ok(mut v) => {
            store.secrets()?.seal_fields(&mut v);
            Ok(v.to_string())
        }
        Err(_) => Ok(settings.to_owned()),
    }
}

/// A channel secret as stored: sealed.
pub(crate) fn seal_secret(store: &Store, secret: Option<&str>) -> StoreResult<Option<String>> {
    let secrets = store.secrets()?;
    Ok(secret.map(|s| secrets.seal(s).into_string()))
}

/// Seal again every Zalo token not sealed under the current key (the `zalo_tokens` table, issue #16). Returns how
/// many values changed.
async fn reseal_zalo_tokens(store: &Store) -> StoreResult<usize> {
    let secrets = store.secrets()?;
    let rows: Vec<(i64, String, String)> = {
        let mut conn = store.read().await?;
        let tx = &mut conn.tx();
        db!(
            tx,
            zalo_tokens::table
                .select((zalo_tokens::channel_instance_id, zalo_tokens::access_token, zalo_tokens::refresh_token))
                .load(tx)
                .await
        )?
    };
    let mut changed = 0;
    for (id, access, refresh) in rows {
        let new_access = secrets.reseal_text(&access)?.map(|s| s.into_string());
        let new_refresh = secrets.reseal_text(&refresh)?.map(|s| s.into_string());
        if new_access.is_none() && new_refresh.is_none() {
            continue;
        }
        let mut conn = store.write().await?;
        let tx = &mut conn.tx();
        // Only over the values read: a refresh committed meanwhile (sealed under the current key) wins.
        let row = zalo_tokens::table
            .find(id)
            .filter(zalo_tokens::access_token.eq(&access))
            .filter(zalo_tokens::refresh_token.eq(&refresh));
        let values = (
            zalo_tokens::access_token.eq(new_access.clone().unwrap_or(access.clone())),
            zalo_tokens::refresh_token.eq(new_refresh.clone().unwrap_or(refresh.clone())),
        );
        let n = db!(tx, diesel::update(row).set(values).execute(tx).await)?;
        changed += n * (new_access.is_some() as usize + new_refresh.is_some() as usize);
    }
    Ok(changed)
}
