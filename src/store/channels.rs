//! Channel instances (a mailbox, a Mattermost bot, a Zalo account, a custom channel) (CORE-1).
//!
//! Secrets are plaintext in what these functions take and give, sealed in the database
//! ([`super::sealing`]).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit::{self, Actor};
use super::models::ChannelInstance;
use super::schema::channel_instances;
use super::{Store, StoreError, StoreResult, Tx, now, sealing};
use crate::db;
use crate::domain::{ChannelKind, ChannelScope, Mode};

pub struct CreateChannel {
    pub kind: ChannelKind,
    pub name: String,
    pub mode: Mode,
    pub settings: String,
    pub secret: Option<String>,
    pub enabled: bool,
    pub inactivity_timeout_s: i64,
    pub default_team_id: Option<i64>,
}

#[derive(Default)]
pub struct ChannelPatch {
    pub name: Option<String>,
    pub mode: Option<Mode>,
    pub settings: Option<String>,
    pub enabled: Option<bool>,
    pub inactivity_timeout_s: Option<i64>,
    pub default_team_id: Option<Option<i64>>,
    pub secret: Option<String>,
}

pub async fn list(store: &Store, scope: &ChannelScope, kind: Option<ChannelKind>) -> StoreResult<Vec<ChannelInstance>> {
    let ids = scope.ids();
    store
        .run(move |store| async move {
            let rows: Vec<ChannelInstance> = {
                let mut conn = store.read().await?;
                let tx = &mut conn.tx();
                db!(tx, {
                    let mut q = channel_instances::table.select(ChannelInstance::as_select()).into_boxed();
                    if let Some(ids) = &ids {
                        q = q.filter(channel_instances::id.eq_any(ids));
                    }
                    if let Some(kind) = kind {
                        q = q.filter(channel_instances::kind.eq(kind));
                    }
                    q.order(channel_instances::id).load(tx).await
                })?
            };
            rows.into_iter().map(|c| sealing::open_channel(&store, c)).collect()
        })
        .await
}

/// The channel row as stored (its secrets sealed), inside a transaction or on a borrowed connection.
async fn row(tx: &mut Tx<'_>, id: i64) -> StoreResult<ChannelInstance> {
    Ok(db!(tx, channel_instances::table.find(id).select(ChannelInstance::as_select()).first(tx).await)?)
}

/// The channel, if it exists and `scope` allows it.
pub async fn get(store: &Store, id: i64, scope: &ChannelScope) -> StoreResult<ChannelInstance> {
    if !scope.allows(id) {
        return Err(StoreError::NotFound);
    }
    store
        .run(move |store| async move {
            let c = {
                let mut conn = store.read().await?;
                row(&mut conn.tx(), id).await?
            };
            sealing::open_channel(&store, c)
        })
        .await
}

/// [`get`] through the store's channel cache: for endpoints that read the channel on every
/// request (custom-channel inbound). A change through this node is seen by the next call; the
/// transaction that acts on the channel reads it again, so a stale entry never lets a write through.
pub async fn get_cached(store: &Store, id: i64, scope: &ChannelScope) -> StoreResult<ChannelInstance> {
    if !scope.allows(id) {
        return Err(StoreError::NotFound);
    }
    let generation = store.generation();
    if let Some(c) = store.channel_cache().get(&id, generation) {
        return Ok(c);
    }
    let c = get(store, id, &ChannelScope::All).await?;
    store.channel_cache().put(id, c.clone(), generation);
    Ok(c)
}

pub async fn create(store: &Store, input: CreateChannel, actor: Actor) -> StoreResult<ChannelInstance> {
    store
        .run_change(move |store| async move {
            let settings = sealing::seal_settings(&store, &input.settings)?;
            let secret = sealing::seal_secret(&store, input.secret.as_deref())?;
            let mut conn = store.write().await?;
            let ch = conn.transaction(async |tx| insert(tx, &input, &settings, &secret, actor).await).await?;
            sealing::open_channel(&store, ch)
        })
        .await
}

/// Insert a channel row and its audit entry inside the caller's transaction (a connector that stores more with
/// it: `zalo::connect`). `settings` and `secret` are already sealed; the row comes back as stored.
pub(crate) async fn insert(
    tx: &mut Tx<'_>,
    input: &CreateChannel,
    settings: &str,
    secret: &Option<String>,
    actor: Actor,
) -> StoreResult<ChannelInstance> {
    let t = now();
    let values = (
        channel_instances::kind.eq(input.kind),
        channel_instances::name.eq(&input.name),
        channel_instances::mode.eq(input.mode),
        channel_instances::settings.eq(settings),
        channel_instances::secret.eq(secret),
        channel_instances::enabled.eq(input.enabled),
        channel_instances::inactivity_timeout_s.eq(input.inactivity_timeout_s),
        channel_instances::default_team_id.eq(input.default_team_id),
        channel_instances::created_at.eq(t),
        channel_instances::updated_at.eq(t),
    );
    let ch: ChannelInstance = db!(
        tx,
        diesel::insert_into(channel_instances::table)
            .values(values)
            .returning(ChannelInstance::as_returning())
            .get_result(tx)
            .await
    )?;
    let details = json!({"kind": ch.kind, "name": ch.name, "mode": ch.mode});
    audit::write(tx, audit::entry(actor, "channel.create", "channel", Some(ch.id), details)).await?;
    Ok(ch)
}

pub async fn update(store: &Store, id: i64, patch: ChannelPatch, actor: Actor) -> StoreResult<ChannelInstance> {
    store
        .run_change(move |store| async move {
            let store = &store;
            let sealed_settings = patch.settings.as_deref().map(|s| sealing::seal_settings(store, s)).transpose()?;
            let sealed_secret = sealing::seal_secret(store, patch.secret.as_deref())?;
            let mut conn = store.write().await?;
            let ch = conn
                .transaction(async |tx| {
                    let before = row(tx, id).await?;
                    let enabled = patch.enabled.unwrap_or(before.enabled);
                    // Re-enabling clears the reason it was disabled (EM-5).
                    let disabled_reason = if enabled { None } else { before.disabled_reason.clone() };
                    let values = (
                        channel_instances::name.eq(patch.name.as_ref().unwrap_or(&before.name)),
                        channel_instances::mode.eq(patch.mode.unwrap_or(before.mode)),
                        channel_instances::settings.eq(sealed_settings.as_ref().unwrap_or(&before.settings)),
                        channel_instances::enabled.eq(enabled),
                        channel_instances::disabled_reason.eq(disabled_reason),
                        channel_instances::inactivity_timeout_s
                            .eq(patch.inactivity_timeout_s.unwrap_or(before.inactivity_timeout_s)),
                        channel_instances::default_team_id.eq(patch.default_team_id.unwrap_or(before.default_team_id)),
                        channel_instances::secret.eq(sealed_secret.clone().or(before.secret.clone())),
                        channel_instances::updated_at.eq(now()),
                    );
                    let ch: ChannelInstance = db!(
                        tx,
                        diesel::update(channel_instances::table.find(id))
                            .set(values)
                            .returning(ChannelInstance::as_returning())
                            .get_result(tx)
                            .await
                    )?;
                    let changed = channel_changes(store, &before, &ch, &patch);
                    audit::write(tx, audit::entry(actor, "channel.update", "channel", Some(id), changed)).await?;
                    Ok(ch)
                })
                .await?;
            sealing::open_channel(store, ch)
        })
        .await
}

/// What a channel update changed, for the audit log (secrets named, never shown).
fn channel_changes(
    store: &Store,
    before: &ChannelInstance,
    ch: &ChannelInstance,
    patch: &ChannelPatch,
) -> serde_json::Value {
    let mut changed = serde_json::Map::new();
    if ch.name != before.name {
        changed.insert("name".into(), json!(ch.name));
    }
    if ch.mode != before.mode {
        changed.insert("mode".into(), json!(ch.mode));
    }
    if ch.enabled != before.enabled {
        changed.insert("enabled".into(), json!(ch.enabled));
    }
    // Sealing draws a fresh nonce, so compare what the settings say, not their stored text.
    let said = |text: &str| {
        sealing::open_settings(store, text).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    };
    if patch
        .settings
        .as_deref()
        .is_some_and(|new| serde_json::from_str::<serde_json::Value>(new).ok() != said(&before.settings))
    {
        changed.insert("settings".into(), json!("changed"));
    }
    if ch.inactivity_timeout_s != before.inactivity_timeout_s {
        changed.insert("inactivity_timeout_s".into(), json!(ch.inactivity_timeout_s));
    }
    if ch.default_team_id != before.default_team_id {
        changed.insert("default_team_id".into(), json!(ch.default_team_id));
    }
    if patch.secret.is_some() {
        changed.insert("secret".into(), json!("rotated"));
    }
    serde_json::Value::Object(changed)
}

/// Delete a channel instance and everything that hangs off it (its conversations included).
pub async fn delete(store: &Store, id: i64, actor: Actor) -> StoreResult<()> {
    store
        .run_change(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let n = db!(tx, diesel::delete(channel_instances::table.find(id)).execute(tx).await)?;
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
                audit::write(tx, audit::entry(actor, "channel.delete", "channel", Some(id), json!({}))).await?;
                Ok(())
            })
            .await
        })
        .await
}

/// New conversations and customer messages need an enabled channel.
pub(crate) fn ensure_enabled(channel: &ChannelInstance) -> StoreResult<()> {
    if channel.enabled { Ok(()) } else { Err(super::Violation::ChannelDisabled { channel_id: channel.id }.into()) }
}

/// The `routing` object of a channel's settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RoutingSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub assign: Assign,
}

/// Who new conversations go to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Assign {
    /// Unassigned; any agent takes it.
    #[default]
    Nobody,
    /// Round-robin among these agents and the members of these teams who are online.
    RoundRobin {
        #[serde(default)]
        agent_ids: Vec<i64>,
        #[serde(default)]
        team_ids: Vec<i64>,
    },
    /// The customer's owner (`owner_agent_id`); an offline owner is also emailed.
    Owner,
}

/// The `routing` part of a channel's settings (CC-12), as the store's creation transactions read
/// it (the same key and type `channels::settings::read` reads with the rest). Mailboxes have no
/// routing yet; a malformed part reads as the defaults (the channel endpoints validate it on the
/// way in).
pub fn routing_of(channel: &ChannelInstance) -> RoutingSettings {
    #[derive(Deserialize, Default)]
    struct RoutingOnly {
        #[serde(default)]
        routing: RoutingSettings,
    }
    if channel.kind == crate::domain::ChannelKind::Email {
        return RoutingSettings::default();
    }
    serde_json::from_str::<RoutingOnly>(&channel.settings).unwrap_or_default().routing
}

/// A channel's auto-assignment rule (CC-12).
pub fn assign_rule(channel: &ChannelInstance) -> Assign {
    routing_of(channel).assign
}

/// The properties a channel gives its new conversations (CC-12), the `routing` part of its
/// settings as the one reader reads them (`channels::settings`): `team_id`, `priority`, `status`,
/// `tags`. Unknown priorities and tags that are not tags are ignored here; the channel endpoints
/// validate them on the way in.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Defaults {
    pub team_id: Option<i64>,
    pub priority: Option<String>,
    pub status: Option<String>,
    pub tags: Vec<String>,
}

impl Defaults {
    pub fn of(channel: &ChannelInstance) -> Self {
        let routing = routing_of(channel);
        Self {
            team_id: routing.team_id,
            priority: routing.priority.filter(|p| p.parse::<crate::domain::Priority>().is_ok()),
            status: routing.status,
            tags: {
                let mut tags: Vec<String> =
                    routing.tags.iter().filter_map(|t| crate::domain::text::normalize_tag(t)).collect();
                tags.sort();
                tags.dedup();
                tags
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_shapes() {
        let s: RoutingSettings = serde_json::from_str(
            r#"{"team_id":2,"tags":["vip"],"assign":{"mode":"round_robin","agent_ids":[1,2],"team_ids":[3]}}"#,
        )
        .unwrap();
        assert_eq!(s.assign, Assign::RoundRobin { agent_ids: vec![1, 2], team_ids: vec![3] });
        assert_eq!(serde_json::from_str::<RoutingSettings>("{}").unwrap().assign, Assign::Nobody);
        assert_eq!(
            serde_json::from_str::<RoutingSettings>(r#"{"assign":{"mode":"owner"}}"#).unwrap().assign,
            Assign::Owner
        );
        assert!(serde_json::from_str::<RoutingSettings>(r#"{"assign":{"mode":"random"}}"#).is_err());
        assert!(serde_json::from_str::<RoutingSettings>(r#"{"colour":"red"}"#).is_err());
    }
}
