//! What the links in mail do to a ticket: a customer's rating (HD-12, one per ticket, changeable for a while) and
//! unsubscribing an address from it (EM-10).

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;

use super::tickets::own;
use crate::db;
use crate::domain::Rating;
use crate::store::audit::{self, Actor};
use crate::store::conversations::{ConversationRow, decorate};
use crate::store::events::{self, EventRow, NewEvent};
use crate::store::models::Conversation;
use crate::store::schema::{conversation_ratings, conversation_subscribers, conversations};
use crate::store::{Store, StoreError, StoreResult, Violation, now};

/// A customer's rating of a ticket (HD-12).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = conversation_ratings)]
pub struct RatingRow {
    pub conversation_id: i64,
    pub customer_id: i64,
    pub rating: Rating,
    pub rated_at: NaiveDateTime,
    pub changed_at: NaiveDateTime,
}

/// What rating a ticket changed.
pub struct Rated {
    pub conversation: ConversationRow,
    pub events: Vec<EventRow>,
    /// False when the same rating was given again (nothing written).
    pub changed: bool,
}

/// A customer rates their ticket (HD-12): one rating per ticket — a second one replaces it, for
/// [`crate::domain::links::RATING_TTL_SECS`] after the first; the conversation's `csat`, the rating row, its audit
/// entry and a `conversation.updated` event (so agents see it live), in one transaction.
pub async fn rate(store: &Store, customer_id: i64, id: i64, rating: Rating) -> StoreResult<Rated> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let t = now();
                let c = own(tx, customer_id, id).await?;
                let before: Option<RatingRow> = db!(
                    tx,
                    conversation_ratings::table.find(c.id).select(RatingRow::as_select()).first(tx).await.optional()
                )?;
                match &before {
                    Some(r) if r.rating == rating => {
                        let row = decorate(tx, vec![c]).await?.remove(0);
                        return Ok(Rated { conversation: row, events: vec![], changed: false });
                    }
                    Some(r) if r.rated_at + Duration::seconds(crate::domain::links::RATING_TTL_SECS) <= t => {
                        return Err(Violation::RatingLocked.into());
                    }
                    Some(_) => {
                        db!(
                            tx,
                            diesel::update(conversation_ratings::table.find(c.id))
                                .set((
                                    conversation_ratings::rating.eq(rating),
                                    conversation_ratings::customer_id.eq(customer_id),
                                    conversation_ratings::changed_at.eq(t),
                                ))
                                .execute(tx)
                                .await
                        )?;
                    }
                    None => {
                        db!(
                            tx,
                            diesel::insert_into(conversation_ratings::table)
                                .values((
                                    conversation_ratings::conversation_id.eq(c.id),
                                    conversation_ratings::customer_id.eq(customer_id),
                                    conversation_ratings::rating.eq(rating),
                                    conversation_ratings::rated_at.eq(t),
                                    conversation_ratings::changed_at.eq(t),
                                ))
                                .execute(tx)
                                .await
                        )?;
                    }
                }
                let updated: Conversation = db!(
                    tx,
                    diesel::update(conversations::table.find(c.id))
                        .set((conversations::csat.eq(Some(rating)), conversations::updated_at.eq(t)))
                        .returning(Conversation::as_returning())
                        .get_result(tx)
                        .await
                )?;
                let event = events::record(
                    tx,
                    NewEvent {
                        conversation_id: c.id,
                        channel_instance_id: c.channel_instance_id,
                        kind: events::CONVERSATION_UPDATED,
                        seq: None,
                        message_id: None,
                        created_at: t,
                    },
                )
                .await?;
                let details = json!({"rating": rating, "before": before.as_ref().map(|r| r.rating)});
                audit::write(
                    tx,
                    audit::entry(
                        Actor::Customer(customer_id),
                        "conversation.rate",
                        "conversation",
                        Some(c.id),
                        details,
                    ),
                )
                .await?;
                let row = decorate(tx, vec![updated]).await?.remove(0);
                Ok(Rated { conversation: row, events: vec![event], changed: true })
            })
            .await
        })
        .await
}

/// The rating of a ticket, if any.
pub async fn rating_of(store: &Store, conversation_id: i64) -> StoreResult<Option<RatingRow>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                conversation_ratings::table
                    .find(conversation_id)
                    .select(RatingRow::as_select())
                    .first(tx)
                    .await
                    .optional()
            )?)
        })
        .await
}

/// Remove `email` from a ticket's subscribers (EM-10; the unsubscribe link). Returns whether it was one; nothing
/// is written when it was not. A missing conversation is `NotFound`.
pub async fn unsubscribe(store: &Store, conversation_id: i64, email: String) -> StoreResult<bool> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let number: Option<i64> = db!(
                    tx,
                    conversations::table.find(conversation_id).select(conversations::number).first(tx).await.optional()
                )?;
                number.ok_or(StoreError::NotFound)?;
                let n = db!(
                    tx,
                    diesel::delete(
                        conversation_subscribers::table
                            .filter(conversation_subscribers::conversation_id.eq(conversation_id))
                            .filter(conversation_subscribers::email.eq(&email)),
                    )
                    .execute(tx)
                    .await
                )?;
                if n > 0 {
                    audit::write(
                        tx,
                        audit::entry(
                            Actor::System,
                            "conversation.unsubscribe",
                            "conversation",
                            Some(conversation_id),
                            json!({"email": email, "via": "link"}),
                        ),
                    )
                    .await?;
                }
                Ok(n > 0)
            })
            .await
        })
        .await
}

/// The subscribers of a ticket (EM-10), sorted.
pub async fn subscribers(store: &Store, conversation_id: i64) -> StoreResult<Vec<String>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                conversation_subscribers::table
                    .filter(conversation_subscribers::conversation_id.eq(conversation_id))
                    .order(conversation_subscribers::email)
                    .select(conversation_subscribers::email)
                    .load(tx)
                    .await
            )?)
        })
        .await
}
