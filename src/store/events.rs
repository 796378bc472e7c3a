//! The event log: one row per change a dashboard must see (a conversation created, a message,
//! a property change, a chat ended), written in the transaction of the change. Live delivery
//! goes over the bus; this table is what a reconnecting socket and a node repairing a dropped
//! bus message read from (DESIGN invariants 1 and 2).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::events;
use super::{Store, StoreResult, Tx, feed};
use crate::db;
use crate::domain::ChannelScope;

pub use super::models::{
    CONVERSATION_CREATED, CONVERSATION_ENDED, CONVERSATION_UPDATED, EventRow, MESSAGE_CREATED, MESSAGE_UPDATED,
};

#[derive(Debug, Insertable)]
#[diesel(table_name = events)]
pub struct NewEvent {
    pub conversation_id: i64,
    pub channel_instance_id: i64,
    pub kind: &'static str,
    pub seq: Option<i64>,
    pub message_id: Option<i64>,
    pub created_at: NaiveDateTime,
}

/// Insert one event inside a transaction, with its change-feed rows ([`feed::record`]).
pub(crate) async fn record(tx: &mut Tx<'_>, new: NewEvent) -> StoreResult<EventRow> {
    record_with(tx, new, &feed::Detail::default()).await
}

/// [`record`], telling the feed's consumers what the event row does not say: who made the change and
/// whom it assigned the conversation to ([`feed::Detail`]).
pub(crate) async fn record_with(tx: &mut Tx<'_>, new: NewEvent, detail: &feed::Detail) -> StoreResult<EventRow> {
    let row: EventRow = db!(
        tx,
        diesel::insert_into(events::table).values(&new).returning(EventRow::as_returning()).get_result(tx).await
    )?;
    feed::record(tx, &row, detail).await?;
    Ok(row)
}

/// Events after `after_id` on channels in `scope`, oldest first.
pub async fn since(store: &Store, after_id: i64, scope: &ChannelScope, limit: i64) -> StoreResult<Vec<EventRow>> {
    let ids = scope.ids();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(tx, {
                let mut q = events::table.filter(events::id.gt(after_id)).select(EventRow::as_select()).into_boxed();
                if let Some(ids) = &ids {
                    q = q.filter(events::channel_instance_id.eq_any(ids));
                }
                q.order(events::id.asc()).limit(limit).load(tx).await
            })?)
        })
        .await
}

/// The newest event id (0 when there is none).
pub async fn max_id(store: &Store) -> StoreResult<i64> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let max: Option<i64> = db!(tx, events::table.select(diesel::dsl::max(events::id)).first(tx).await)?;
            Ok(max.unwrap_or(0))
        })
        .await
}

/// The id of the deployment this database belongs to: drawn at random by the first node that asks
/// and kept in `counters` (as `deployment_id`), so every node sharing the database gets the same one.
/// The Redis bus names its channel and keys after it, so two deployments sharing one Redis server
/// never receive each other's events or markers (their event and conversation ids overlap).
pub async fn deployment_id(store: &Store) -> StoreResult<i64> {
    let candidate = (rand::random::<u64>() >> 1) as i64;
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            super::counters::get_or_init(&mut conn.tx(), "deployment_id", candidate).await
        })
        .await
}
