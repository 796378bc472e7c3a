//! Conversation statuses: the built-in open / pending / closed and the admin's custom ones (CORE-6).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;

use super::audit::{self, Actor};
use super::models::Status;
use super::schema::{conversations, statuses};
use super::{Store, StoreError, StoreResult, Tx, now};
use crate::db;
use crate::domain::StatusBase;

pub async fn list(store: &Store) -> StoreResult<Vec<Status>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                statuses::table.order((statuses::position, statuses::id)).select(Status::as_select()).load(tx).await
            )?)
        })
        .await
}

/// The status with this key.
async fn by_key(tx: &mut Tx<'_>, key: &str) -> StoreResult<Status> {
    Ok(db!(tx, statuses::table.filter(statuses::key.eq(key)).select(Status::as_select()).first(tx).await)?)
}

pub async fn get(store: &Store, key: &str) -> StoreResult<Status> {
    let key = key.to_owned();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            by_key(&mut conn.tx(), &key).await
        })
        .await
}

pub async fn create(
    store: &Store,
    key: &str,
    name: &str,
    base: StatusBase,
    required_fields: &[String],
    actor: Actor,
) -> StoreResult<Status> {
    let key = key.to_owned();
    let name = name.to_owned();
    let required_fields = required_fields.to_vec();
    let required = serde_json::to_string(&required_fields).unwrap_or_else(|_| "[]".into());
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let position: Option<i64> =
                    db!(tx, statuses::table.select(diesel::dsl::max(statuses::position)).first(tx).await)?;
                let row = (
                    statuses::key.eq(&key),
                    statuses::name.eq(&name),
                    statuses::base.eq(base),
                    statuses::required_fields.eq(&required),
                    statuses::builtin.eq(false),
                    statuses::position.eq(position.unwrap_or(0) + 1),
                    statuses::created_at.eq(now()),
                );
                let status: Status = db!(
                    tx,
                    diesel::insert_into(statuses::table)
                        .values(row)
                        .returning(Status::as_returning())
                        .get_result(tx)
                        .await
                )
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => {
                        StoreError::Conflict(format!("a status with key {key:?} already exists"))
                    }
                    other => other,
                })?;
                let details = json!({"key": key, "base": base, "required_fields": required_fields});
                audit::write(tx, audit::entry(actor, "status.create", "status", Some(status.id), details)).await?;
                Ok(status)
            })
            .await
        })
        .await
}

pub async fn update(
    store: &Store,
    key: &str,
    name: Option<&str>,
    required_fields: Option<&[String]>,
    position: Option<i64>,
    actor: Actor,
) -> StoreResult<Status> {
    let key = key.to_owned();
    let name = name.map(str::to_owned);
    let required = required_fields.map(|r| serde_json::to_string(r).unwrap_or_else(|_| "[]".into()));
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let before = by_key(tx, &key).await?;
                let required = required.as_ref().unwrap_or(&before.required_fields);
                let status: Status = db!(
                    tx,
                    diesel::update(statuses::table.find(before.id))
                        .set((
                            statuses::name.eq(name.as_ref().unwrap_or(&before.name)),
                            statuses::required_fields.eq(required),
                            statuses::position.eq(position.unwrap_or(before.position)),
                        ))
                        .returning(Status::as_returning())
                        .get_result(tx)
                        .await
                )?;
                let details = json!({"name": status.name, "required_fields": status.required_fields()});
                audit::write(tx, audit::entry(actor, "status.update", "status", Some(status.id), details)).await?;
                Ok(status)
            })
            .await
        })
        .await
}

/// Delete a custom status that no conversation uses. Built-in statuses stay.
pub async fn delete(store: &Store, key: &str, actor: Actor) -> StoreResult<()> {
    let key = key.to_owned();
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let status = by_key(tx, &key).await?;
                if status.builtin {
                    return Err(super::Violation::BuiltinStatus { key: key.clone() }.into());
                }
                let used: i64 =
                    db!(tx, conversations::table.filter(conversations::status.eq(&key)).count().get_result(tx).await)?;
                if used > 0 {
                    return Err(StoreError::Conflict(format!("{used} conversation(s) still have status {key:?}")));
                }
                db!(tx, diesel::delete(statuses::table.find(status.id)).execute(tx).await)?;
                audit::write(tx, audit::entry(actor, "status.delete", "status", Some(status.id), json!({"key": key})))
                    .await?;
                Ok(())
            })
            .await
        })
        .await
}
