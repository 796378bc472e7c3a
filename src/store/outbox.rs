//! The durable outbox: one row per outbound delivery (an agent reply to send by SMTP, to POST to
//! a webhook, …), written in the same transaction as the message it delivers, so a crash can
//! never lose a reply nor send one that was not stored. Each channel's dispatcher drains it.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::OutboxItem;
use super::schema::outbox;
use super::{Store, StoreResult};
use crate::db_run;

#[derive(Debug, Insertable)]
#[diesel(table_name = outbox)]
pub struct NewDelivery {
    pub delivery_id: String,
    pub channel_instance_id: i64,
    pub conversation_id: Option<i64>,
    pub message_id: Option<i64>,
    pub kind: &'static str,
    pub payload: String,
    pub state: &'static str,
    pub attempts: i64,
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

/// A pending delivery of message `message_id`, due now.
pub fn new_delivery(channel_instance_id: i64, conversation_id: i64, message_id: i64, at: NaiveDateTime) -> NewDelivery {
    NewDelivery {
        delivery_id: uuid::Uuid::new_v4().to_string(),
        channel_instance_id,
        conversation_id: Some(conversation_id),
        message_id: Some(message_id),
        kind: "message.created",
        payload: "{}".into(),
        state: "pending",
        attempts: 0,
        next_attempt_at: at,
        created_at: at,
    }
}

/// The newest deliveries of a channel (its delivery log).
pub async fn list_for_channel(store: &Store, channel_instance_id: i64, limit: i64) -> StoreResult<Vec<OutboxItem>> {
    store
        .run(move |store| async move {
            let store = &store;
            let mut conn = store.read().await?;
            Ok(db_run!(conn => outbox::table
            .filter(outbox::channel_instance_id.eq(channel_instance_id))
            .order(outbox::id.desc())
            .limit(limit)
            .select(OutboxItem::as_select())
            .load(conn)
            .await)?)
        })
        .await
}

/// Deliveries queued for one message (tests and the message view use it).
pub async fn for_message(store: &Store, message_id: i64) -> StoreResult<Vec<OutboxItem>> {
    store
        .run(move |store| async move {
            let store = &store;
            let mut conn = store.read().await?;
            Ok(db_run!(conn => outbox::table
            .filter(outbox::message_id.eq(message_id))
            .order(outbox::id)
            .select(OutboxItem::as_select())
            .load(conn)
            .await)?)
        })
        .await
}
