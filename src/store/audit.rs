//! The audit log: who changed what (agents, teams, channels, statuses, tokens, conversation
//! properties, merges). Entries are written inside the transaction of the change they describe.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::AuditEntry;
use super::schema::audit_log;
use super::{Store, StoreResult, Tx, now};
use crate::db;

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// An agent in the dashboard or through their API token.
    Agent(i64),
    /// The server itself (timers, CLI, migrations).
    System,
    /// A customer in the portal or through a signed link (issue #18).
    Customer(i64),
}

impl Actor {
    fn parts(self) -> (&'static str, Option<i64>) {
        match self {
            Actor::Agent(id) => ("agent", Some(id)),
            Actor::System => ("system", None),
            Actor::Customer(id) => ("customer", Some(id)),
        }
    }

    pub fn agent_id(self) -> Option<i64> {
        match self {
            Actor::Agent(id) => Some(id),
            Actor::System | Actor::Customer(_) => None,
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = audit_log)]
pub struct NewAuditEntry {
    pub actor_kind: &'static str,
    pub actor_id: Option<i64>,
    pub action: String,
    pub entity_type: &'static str,
    pub entity_id: Option<i64>,
    pub details: String,
    pub created_at: NaiveDateTime,
}

/// Build an entry; insert it with [`write`] (or `diesel::insert_into(audit_log::table).values(&entry)`)
/// inside the transaction that makes the change.
pub fn entry(
    actor: Actor,
    action: impl Into<String>,
    entity_type: &'static str,
    entity_id: Option<i64>,
    details: serde_json::Value,
) -> NewAuditEntry {
    let (actor_kind, actor_id) = actor.parts();
    NewAuditEntry {
        actor_kind,
        actor_id,
        action: action.into(),
        entity_type,
        entity_id,
        details: details.to_string(),
        created_at: now(),
    }
}

/// Insert `entry` inside the transaction of the change it describes.
pub(crate) async fn write(tx: &mut Tx<'_>, entry: NewAuditEntry) -> StoreResult<()> {
    db!(tx, diesel::insert_into(audit_log::table).values(&entry).execute(tx).await)?;
    Ok(())
}

/// Newest first, optionally for one entity.
pub async fn list(
    store: &Store,
    entity: Option<(&str, Option<i64>)>,
    limit: i64,
    before_id: Option<i64>,
) -> StoreResult<Vec<AuditEntry>> {
    let entity = entity.map(|(a, b)| (a.to_owned(), b));
    store
        .run(move |store| async move {
            let entity: Option<(&str, Option<i64>)> = entity.as_ref().map(|(a, b)| (a.as_str(), *b));
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let rows = db!(tx, {
                let mut q = audit_log::table.select(AuditEntry::as_select()).into_boxed();
                if let Some((ty, id)) = entity {
                    q = q.filter(audit_log::entity_type.eq(ty.to_owned()));
                    if let Some(id) = id {
                        q = q.filter(audit_log::entity_id.eq(id));
                    }
                }
                if let Some(before) = before_id {
                    q = q.filter(audit_log::id.lt(before));
                }
                q.order(audit_log::id.desc()).limit(limit).load(tx).await
            })?;
            Ok(rows)
        })
        .await
}
