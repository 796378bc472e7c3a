//! Conversation statuses: the built-in open / pending / closed and the admin's custom ones (CORE-6).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;

use super::audit::{self, Actor};
use super::models::Status;
use super::schema::{audit_log, conversations, statuses};
use super::{Store, StoreError, StoreResult, now};
use crate::domain::StatusBase;
use crate::{db_run, db_tx};

pub async fn list(store: &Store) -> StoreResult<Vec<Status>> {
    store
        .run(move |store| async move {
            let store = &store;
            let mut conn = store.read().await?;
            Ok(db_run!(conn => statuses::table
            .order((statuses::position, statuses::id))
            .select(Status::as_select())
            .load(conn)
            .await)?)
        })
        .await
}

pub async fn get(store: &Store, key: &str) -> StoreResult<Status> {
    let key = key.to_owned();
    store
        .run(move |store| async move {
            let store = &store;
            let key: &str = &key;
            let mut conn = store.read().await?;
            Ok(db_run!(conn => statuses::table
            .filter(statuses::key.eq(key))
            .select(Status::as_select())
            .first(conn)
            .await)?)
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
    store.run(move |store| async move {
        let store = &store;
        let key: &str = &key;
        let name: &str = &name;
        let required_fields: &[String] = &required_fields;
        let required = serde_json::to_string(required_fields).unwrap_or_else(|_| "[]".into());
        let mut conn = store.write().await?;
        db_tx!(conn => {
            let position: Option<i64> = statuses::table.select(diesel::dsl::max(statuses::position)).first(conn).await?;
            let status: Status = diesel::insert_into(statuses::table)
                .values((
                    statuses::key.eq(key),
                    statuses::name.eq(name),
                    statuses::base.eq(base),
                    statuses::required_fields.eq(&required),
                    statuses::builtin.eq(false),
                    statuses::position.eq(position.unwrap_or(0) + 1),
                    statuses::created_at.eq(now()),
                ))
                .returning(Status::as_returning())
                .get_result(conn)
                .await
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(format!("a status with key {key:?} already exists")),
                    other => other,
                })?;
            diesel::insert_into(audit_log::table)
                .values(&audit::entry(actor, "status.create", "status", Some(status.id), json!({"key": key, "base": base, "required_fields": required_fields})))
                .execute(conn)
                .await?;
            Ok(status)
        })
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
    let required_fields = required_fields.map(<[String]>::to_vec);
    store.run(move |store| async move {
        let store = &store;
        let key: &str = &key;
        let name: Option<&str> = name.as_deref();
        let required_fields: Option<&[String]> = required_fields.as_deref();
        let mut conn = store.write().await?;
        db_tx!(conn => {
            let before: Status = statuses::table.filter(statuses::key.eq(key)).select(Status::as_select()).first(conn).await?;
            let required = match required_fields {
                Some(r) => serde_json::to_string(r).unwrap_or_else(|_| "[]".into()),
                None => before.required_fields.clone(),
            };
            let status: Status = diesel::update(statuses::table.find(before.id))
                .set((
                    statuses::name.eq(name.unwrap_or(&before.name)),
                    statuses::required_fields.eq(&required),
                    statuses::position.eq(position.unwrap_or(before.position)),
                ))
                .returning(Status::as_returning())
                .get_result(conn)
                .await?;
            diesel::insert_into(audit_log::table)
                .values(&audit::entry(actor, "status.update", "status", Some(status.id), json!({"name": status.name, "required_fields": status.required_fields()})))
                .execute(conn)
                .await?;
            Ok(status)
        })
    })
    .await
}

/// Delete a custom status that no conversation uses. Built-in statuses stay.
pub async fn delete(store: &Store, key: &str, actor: Actor) -> StoreResult<()> {
    let key = key.to_owned();
    store.run(move |store| async move {
        let store = &store;
        let key: &str = &key;
        let mut conn = store.write().await?;
        db_tx!(conn => {
            let status: Status = statuses::table.filter(statuses::key.eq(key)).select(Status::as_select()).first(conn).await?;
            if status.builtin {
                return Err(super::Violation::BuiltinStatus { key: key.to_owned() }.into());
            }
            let used: i64 = conversations::table.filter(conversations::status.eq(key)).count().get_result(conn).await?;
            if used > 0 {
                return Err(StoreError::Conflict(format!("{used} conversation(s) still have status {key:?}")));
            }
            diesel::delete(statuses::table.find(status.id)).execute(conn).await?;
            diesel::insert_into(audit_log::table)
                .values(&audit::entry(actor, "status.delete", "status", Some(status.id), json!({"key": key})))
                .execute(conn)
                .await?;
            Ok(())
        })
    })
    .await
}
